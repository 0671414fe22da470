// out[t][row] = dot(weight row, activation t) for float weights (F32, F16, BF16): the f32
// activations as they are, as the CPU's float kernels take them. Prefixed by one of
// types/f32.wgsl, f16.wgsl, bf16.wgsl (`load4`). Same layout of work and parameters as
// matmul.wgsl: a workgroup of 64 threads computes ROWS rows for a tile of up to TILE tokens,
// LANES threads per row taking every LANES-th unit of 32 columns.
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

@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;

const LANES = 16u;
const ROWS = 4u;
const TILE = 8u;
const WG_X = 32768u;
var<workgroup> part: array<array<f32, 8>, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let lane = li % LANES;
    let row = (wid.x + wid.y * WG_X) * ROWS + li / LANES;
    let last_only = (p.flags & 2u) != 0u;
    var t0 = wid.z * TILE;
    var nt = min(TILE, st.n - min(t0, st.n));
    if (last_only) {
        t0 = st.n - 1u;
        nt = 1u;
    }
    var acc: array<f32, 8>;
    if (row < p.rows) {
        let base = row * p.row_words;
        for (var u = lane; u < p.units; u += LANES) {
            for (var k = 0u; k < 8u; k++) {
                let wk = load4(base, u, k);
                for (var t = 0u; t < nt; t++) {
                    acc[t] += dot(wk, x[((t0 + t) * p.units + u) * 8u + k]);
                }
            }
        }
    }
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
            let ot = select(t0 + t, 0u, last_only);
            let o = p.out_offset + st.start * p.start_stride + ot * p.out_stride + p.row_offset + row;
            if ((p.flags & 1u) != 0u) {
                out[o] += s;
            } else {
                out[o] = s;
            }
        }
    }
}
