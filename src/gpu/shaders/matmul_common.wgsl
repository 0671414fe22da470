// Shared by matmul.wgsl and matmul_float.wgsl: the parameters, the output binding, and the
// end of a workgroup's work. A workgroup of 64 threads computes ROWS rows for a tile of up to
// TILE tokens, LANES threads per row; `finish` sums the lanes' partial dots and writes them.
struct Params {
    rows: u32,        // rows in this weight chunk
    units: u32,       // units of 32 per row (cols / 32)
    row_words: u32,   // words per weight row
    row_offset: u32,  // this chunk's first row in the output
    out_stride: u32,  // floats between two tokens' outputs
    out_offset: u32,  // first output float
    start_stride: u32,// added to out_offset per cached position (writing into the KV cache)
    flags: u32,       // 1: accumulate into out; 2: only the last token (written as token 0)
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;

const LANES = 16u;
const ROWS = 4u;
const TILE = 8u;
const WG_X = 32768u;
var<workgroup> part: array<array<f32, 8>, 64>;

// The workgroup's row for thread `li`, and its token tile: (row, first token, tokens).
fn tile(li: u32, wid: vec3<u32>) -> vec3<u32> {
    let row = (wid.x + wid.y * WG_X) * ROWS + li / LANES;
    if ((p.flags & 2u) != 0u) {
        return vec3(row, st.n - 1u, 1u);
    }
    let t0 = wid.z * TILE;
    return vec3(row, t0, min(TILE, st.n - min(t0, st.n)));
}

// Sums the LANES partial dots of each row and token and writes (or adds) them.
fn finish(li: u32, row: u32, t0: u32, nt: u32, acc: array<f32, 8>) {
    let lane = li % LANES;
    for (var t = 0u; t < TILE; t++) {
        part[li][t] = acc[t];
    }
    workgroupBarrier();
    if (lane == 0u && row < p.rows) {
        let first = li - lane;
        for (var t = 0u; t < nt; t++) {
            var s = 0.0;
            for (var l = 0u; l < LANES; l++) {
                s += part[first + l][t];
            }
            let ot = select(t0 + t, 0u, (p.flags & 2u) != 0u);
            let o = p.out_offset + st.start * p.start_stride + ot * p.out_stride + p.row_offset + row;
            if ((p.flags & 1u) != 0u) {
                out[o] += s;
            } else {
                out[o] = s;
            }
        }
    }
}
