// Q5_1: [d f16, m f16][qh: bit j is weight j's fifth bit][16 bytes of nibbles], value d*q + m.
const BLOCK_WORDS = 6u;
const UNITS = 1u;
const OFF = 0i;
// Four bits to bit 4 of each of four bytes.
fn spread4(b: u32) -> u32 {
    return ((b & 1u) << 4u) | ((b & 2u) << 11u) | ((b & 4u) << 18u) | ((b & 8u) << 25u);
}
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + u * BLOCK_WORDS;
    var r: WUnit;
    let d = f16lo(w[b]);
    let m = f16hi(w[b]);
    let qh = w[b + 1u];
    for (var k = 0u; k < 4u; k++) {
        let q = w[b + 2u + k];
        r.q[k] = (q & 0x0f0f0f0fu) | spread4(qh >> (4u * k));
        r.q[k + 4u] = ((q >> 4u) & 0x0f0f0f0fu) | spread4(qh >> (16u + 4u * k));
    }
    r.a = vec2(d, d);
    r.m = vec2(m, m);
    return r;
}
