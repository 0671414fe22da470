// out = act(gate) * up, elementwise over st.n rows of `len`, from each token's gate and up
// side by side in gu (as the matmuls wrote them): act 0 is SiLU, 1 is GELU (tanh).
struct Params { len: u32, act: u32, _a: u32, _b: u32 }
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= st.n * p.len) {
        return;
    }
    let at = (i / p.len) * 2u * p.len + i % p.len;
    let x = gu[at];
    var y: f32;
    if (p.act == 0u) {
        y = x / (1.0 + exp(-x));
    } else {
        // tanh's argument is clamped: some implementations compute it from exp and overflow.
        let z = clamp(0.7978846 * x * (1.0 + 0.044715 * x * x), -15.0, 15.0);
        y = 0.5 * x * (1.0 + tanh(z));
    }
    out[i] = y * gu[at + p.len];
}
