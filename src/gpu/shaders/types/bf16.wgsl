// BF16 weights: two values per word, low half first; a bf16 is the top half of an f32.
fn load4(row: u32, u: u32, k: u32) -> vec4<f32> {
    let b = row + u * 16u + 2u * k;
    let a = w[b];
    let c = w[b + 1u];
    return vec4(bitcast<f32>(a << 16u), bitcast<f32>(a & 0xffff0000u), bitcast<f32>(c << 16u), bitcast<f32>(c & 0xffff0000u));
}
