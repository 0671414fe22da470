// The MLP's activation: act 0 is SiLU, 1 is GELU (tanh). Prefixed to gated.wgsl and to
// quantize.wgsl (whose gated_quantize fuses it with the quantizing for the down projection).
fn act_value(x: f32, act: u32) -> f32 {
    if (act == 0u) {
        return x / (1.0 + exp(-x));
    }
    // tanh's argument is clamped: some implementations compute it from exp and overflow.
    let z = clamp(0.7978846 * x * (1.0 + 0.044715 * x * x), -15.0, 15.0);
    return 0.5 * x * (1.0 + tanh(z));
}

// act(x) * up for a gated MLP.
fn gated_value(x: f32, up: f32, act: u32) -> f32 {
    return act_value(x, act) * up;
}
