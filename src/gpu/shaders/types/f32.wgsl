// F32 weights: one word per value. Values 4k..4k+4 of unit u (32 values) of the row at `row`.
fn load4(row: u32, u: u32, k: u32) -> vec4<f32> {
    let b = row + u * 32u + 4u * k;
    return vec4(bitcast<f32>(w[b]), bitcast<f32>(w[b + 1u]), bitcast<f32>(w[b + 2u]), bitcast<f32>(w[b + 3u]));
}
