// Q3_K: [hmask 32 bytes: bit u of byte l is the high bit of weight l of unit u][64 bytes of 2-bit
// quants as Q2_K][12 bytes: 16 six-bit scales][d f16, pad]. Value d*(sc-32)*(q - 4) with the
// high bit set meaning +4, so q = low | high << 2 and OFF = 4.
const BLOCK_WORDS = 28u;
const UNITS = 8u;
const OFF = 4i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + (u / 8u) * BLOCK_WORDS;
    let s = u % 8u;
    let n = s / 4u;
    let j = s % 4u;
    var r: WUnit;
    for (var k = 0u; k < 8u; k++) {
        let lo = (w[b + 8u + 8u * n + k] >> (2u * j)) & 0x03030303u;
        let hi = ((w[b + k] >> s) & 0x01010101u) << 2u;
        r.q[k] = lo | hi;
    }
    let d = f16lo(w[b + 27u]);
    // The scales word holding scales 2s and 2s+1 (ggml's aux[s / 2] after unpacking).
    let a = s / 2u;
    let s0 = w[b + 24u];
    let s1 = w[b + 25u];
    let s2 = w[b + 26u];
    let low = (select(s0, s1, (a & 1u) == 1u) >> (4u * (a / 2u))) & 0x0f0f0f0fu;
    let aux = low | (((s2 >> (2u * a)) & 0x03030303u) << 4u);
    let i0 = (2u * s) % 4u;
    r.a = vec2(d * f32(i32(byte_at(aux, i0)) - 32), d * f32(i32(byte_at(aux, i0 + 1u)) - 32));
    r.m = vec2(0.0, 0.0);
    return r;
}
