// Q5_K: [d f16, dmin f16][12 scale bytes as Q4_K][qh 32 bytes: bit u of byte l is the fifth bit
// of weight l of unit u][128 bytes of nibbles as Q4_K]. Value d*sc[u]*q - dmin*mn[u].
const BLOCK_WORDS = 44u;
const UNITS = 8u;
const OFF = 0i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + (u / 8u) * BLOCK_WORDS;
    let s = u % 8u;
    var r: WUnit;
    let sh = 4u * (s % 2u);
    for (var k = 0u; k < 8u; k++) {
        let lo = (w[b + 12u + 8u * (s / 2u) + k] >> sh) & 0x0f0f0f0fu;
        r.q[k] = lo | (((w[b + 4u + k] >> s) & 0x01010101u) << 4u);
    }
    let dd = w[b];
    let sm = scale_min_k4(b, s);
    let a = f16lo(dd) * f32(sm.x);
    let m = -f16hi(dd) * f32(sm.y);
    r.a = vec2(a, a);
    r.m = vec2(m, m);
    return r;
}
