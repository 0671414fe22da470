// x[t] = scale * (row ids[t] of the embedding matrix), or with `positions` x[t] += row start + t
// (GPT-2's learned positions), its values decoded by `load4`. One thread
// per (token, unit of 32). A matrix split into chunks runs once per chunk; a thread whose token's
// row lies in another chunk does nothing. Prefixed by one types/*.wgsl: a float type's, or a
// quantized type's with common.wgsl and types/unit_values.wgsl.
struct Params {
    rows: u32,       // rows in this chunk
    units: u32,      // units per row
    row_words: u32,
    row_offset: u32, // this chunk's first row
    scale: f32,
    positions: u32,  // 1: row st.start + t (learned positions, GPT-2) added to x; else row ids[t]
    _b: u32,
    _c: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> x: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    let t = i / p.units;
    let u = i % p.units;
    if (t >= st.n) {
        return;
    }
    var id = ids[t];
    if (p.positions != 0u) {
        id = st.start + t;
    }
    if (id < p.row_offset || id >= p.row_offset + p.rows) {
        return;
    }
    let row = (id - p.row_offset) * p.row_words;
    let o = t * p.units * 32u + u * 32u;
    for (var k = 0u; k < 8u; k++) {
        let v = load4(row, u, k) * p.scale;
        for (var j = 0u; j < 4u; j++) {
            if (p.positions != 0u) {
                x[o + 4u * k + j] += v[j];
            } else {
                x[o + 4u * k + j] = v[j];
            }
        }
    }
}
