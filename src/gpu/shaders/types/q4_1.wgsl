// Q4_1: [d f16, m f16][16 bytes of nibbles as Q4_0], value d*q + m.
const BLOCK_WORDS = 5u;
const UNITS = 1u;
const OFF = 0i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + u * BLOCK_WORDS;
    var r: WUnit;
    let d = f16lo(w[b]);
    let m = f16hi(w[b]);
    for (var k = 0u; k < 4u; k++) {
        let q = w[b + 1u + k];
        r.q[k] = q & 0x0f0f0f0fu;
        r.q[k + 4u] = (q >> 4u) & 0x0f0f0f0fu;
    }
    r.a = vec2(d, d);
    r.m = vec2(m, m);
    return r;
}
