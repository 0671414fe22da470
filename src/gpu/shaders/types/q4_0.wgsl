// Q4_0: [d f16, pad][16 bytes: low nibbles are weights 0-15, high nibbles 16-31], value d*(q-8).
const BLOCK_WORDS = 5u;
const UNITS = 1u;
const OFF = 8i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + u * BLOCK_WORDS;
    var r: WUnit;
    let d = f16lo(w[b]);
    for (var k = 0u; k < 4u; k++) {
        let q = w[b + 1u + k];
        r.q[k] = q & 0x0f0f0f0fu;
        r.q[k + 4u] = (q >> 4u) & 0x0f0f0f0fu;
    }
    r.a = vec2(d, d);
    r.m = vec2(0.0, 0.0);
    return r;
}
