// `load4` for the quantized types, from their `load_unit` (common.wgsl): values 4k..4k+4 of unit
// u, a[h] * (q - OFF) + m[h]. What the float types' files define directly, so that a shader
// reading weight values (embed.wgsl) serves every type.
fn load4(row: u32, u: u32, k: u32) -> vec4<f32> {
    let wu = load_unit(row, u);
    let h = k / 4u;
    var v: vec4<f32>;
    for (var j = 0u; j < 4u; j++) {
        v[j] = wu.a[h] * f32(sbyte_at(wu.q[k], j) - OFF) + wu.m[h];
    }
    return v;
}
