// F16 weights: two values per word, low half first (unpack2x16float, core WGSL: no shader-f16
// needed to read them). Values 4k..4k+4 of unit u (32 values) of the row at `row`.
fn load4(row: u32, u: u32, k: u32) -> vec4<f32> {
    let b = row + u * 16u + 2u * k;
    return vec4(unpack2x16float(w[b]), unpack2x16float(w[b + 1u]));
}
