// out[t][row] = dot(weight row, activation t), with the activations quantized as the CPU path
// quantizes them (quantize.wgsl) and the products done in integers, so that the GPU and the CPU
// differ only in float summation order. Prefended by common.wgsl and one types/*.wgsl.
//
// A workgroup of 64 threads computes ROWS rows for a tile of up to TILE tokens: LANES threads
// per row take every LANES-th unit of 32 weights, decode it once and dot it with each token.
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
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xm: array<vec4<f32>>;
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
            let wu = load_unit(base, u);
            for (var t = 0u; t < nt; t++) {
                let xb = (t0 + t) * p.units + u;
                var s0 = 0i;
                var s1 = 0i;
                var c0 = 0i;
                var c1 = 0i;
                for (var k = 0u; k < 4u; k++) {
                    let x0 = xq[xb * 8u + k];
                    let x1 = xq[xb * 8u + 4u + k];
                    s0 += dot4I8Packed(wu.q[k], x0);
                    s1 += dot4I8Packed(wu.q[k + 4u], x1);
                    if (OFF != 0i) {
                        c0 += dot4I8Packed(0x01010101u, x0);
                        c1 += dot4I8Packed(0x01010101u, x1);
                    }
                }
                s0 -= OFF * c0;
                s1 -= OFF * c1;
                let m = xm[xb];
                acc[t] += m.x * (wu.a.x * f32(s0) + wu.a.y * f32(s1)) + wu.m.x * m.y + wu.m.y * m.z;
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
