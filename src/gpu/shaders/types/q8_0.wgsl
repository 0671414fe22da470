// Q8_0: [d f16, pad][32 signed bytes], value d*q.
const BLOCK_WORDS = 9u;
const UNITS = 1u;
const OFF = 0i;
fn load_unit(row: u32, u: u32) -> WUnit {
    let b = row + u * BLOCK_WORDS;
    var r: WUnit;
    let d = f16lo(w[b]);
    for (var k = 0u; k < 8u; k++) {
        r.q[k] = w[b + 1u + k];
    }
    r.a = vec2(d, d);
    r.m = vec2(0.0, 0.0);
    return r;
}
