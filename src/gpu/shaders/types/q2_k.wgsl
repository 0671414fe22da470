// Q2_K: [16 scale bytes (low nibble scale, high nibble min, per 16 weights)][64 bytes of 2-bit
// quants: each 128 weights use 32 bytes at shifts 0, 2, 4, 6][d f16, dmin f16].
// Unit u = 4n + j: bytes 32n.. at shift 2j; value d*sc*q - dmin*mn.
const BLOCK_WORDS = 21u;
const UNITS = 8u;
const OFF = 0i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + (u / 8u) * BLOCK_WORDS;
    let s = u % 8u;
    let n = s / 4u;
    let j = s % 4u;
    var r: WUnit;
    for (var k = 0u; k < 8u; k++) {
        r.q[k] = (w[b + 4u + 8u * n + k] >> (2u * j)) & 0x03030303u;
    }
    let dd = w[b + 20u];
    let d = f16lo(dd);
    let dmin = f16hi(dd);
    let is0 = 8u * n + 2u * j;
    let sc0 = byte_at(w[b + is0 / 4u], is0 % 4u);
    let sc1 = byte_at(w[b + (is0 + 1u) / 4u], (is0 + 1u) % 4u);
    r.a = vec2(d * f32(sc0 & 15u), d * f32(sc1 & 15u));
    r.m = vec2(-dmin * f32(sc0 >> 4u), -dmin * f32(sc1 >> 4u));
    return r;
}
