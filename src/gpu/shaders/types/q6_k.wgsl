// Q6_K: [ql 128 bytes][qh 64 bytes][16 signed scales][d f16, pad]. Each 128 weights (n) use 64
// ql bytes and 32 qh bytes; unit g of them takes ql bytes 32*(g&1).. (low nibbles for g < 2,
// high for g >= 2) and qh bits 2g..2g+1. Value d*sc*(q - 32), one scale per 16 weights.
const BLOCK_WORDS = 53u;
const UNITS = 8u;
const OFF = 32i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + (u / 8u) * BLOCK_WORDS;
    let s = u % 8u;
    let n = s / 4u;
    let g = s % 4u;
    var r: WUnit;
    let lsh = 4u * (g / 2u);
    for (var k = 0u; k < 8u; k++) {
        let lo = (w[b + 16u * n + 8u * (g & 1u) + k] >> lsh) & 0x0f0f0f0fu;
        let hi = ((w[b + 32u + 8u * n + k] >> (2u * g)) & 0x03030303u) << 4u;
        r.q[k] = lo | hi;
    }
    let d = f16lo(w[b + 52u]);
    let is0 = 8u * n + 2u * g;
    let sw = w[b + 48u + is0 / 4u];
    r.a = vec2(d * f32(sbyte_at(sw, is0 % 4u)), d * f32(sbyte_at(sw, is0 % 4u + 1u)));
    r.m = vec2(0.0, 0.0);
    return r;
}
