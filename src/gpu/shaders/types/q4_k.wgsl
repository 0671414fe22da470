// Q4_K: [d f16, dmin f16][12 bytes: 8 six-bit scales and 8 mins][128 bytes: each 64 weights use
// 32 bytes, low nibbles then high]. Unit u: value d*sc[u]*q - dmin*mn[u].
const BLOCK_WORDS = 36u;
const UNITS = 8u;
const OFF = 0i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + (u / 8u) * BLOCK_WORDS;
    let s = u % 8u;
    var r: WUnit;
    let sh = 4u * (s % 2u);
    for (var k = 0u; k < 8u; k++) {
        r.q[k] = (w[b + 4u + 8u * (s / 2u) + k] >> sh) & 0x0f0f0f0fu;
    }
    let dd = w[b];
    let sm = scale_min_k4(b, s);
    let a = f16lo(dd) * f32(sm.x);
    let m = -f16hi(dd) * f32(sm.y);
    r.a = vec2(a, a);
    r.m = vec2(m, m);
    return r;
}
