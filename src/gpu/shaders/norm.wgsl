// The model's norm of rows of `len` floats, one workgroup per row: RMSNorm
// y = x / sqrt(mean(x^2) + eps) * g, or LayerNorm (flags bit 1) y = (x - mean) / sqrt(var + eps) * g,
// plus the bias b (flags bit 2), times `scale` (a residual scale; 1 otherwise).
// dst = y (flags bit 0 clear) or dst += y (set: a residual add).
// Rows are st.n * rows_per_token; offsets move by start_stride per cached position so that a
// norm can run on keys already written into the KV cache.
struct Params {
    len: u32,
    rows_per_token: u32,
    eps: f32,
    flags: u32,
    src_offset: u32,
    dst_offset: u32,
    start_stride: u32,
    scale: f32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> g: array<f32>;
@group(0) @binding(1) var<uniform> p: Params;
@group(0) @binding(2) var<uniform> st: Step;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> src: array<f32>;
@group(0) @binding(5) var<storage, read> b: array<f32>;


@compute @workgroup_size(64)
fn into(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let row = wid.x + wid.y * 32768u;
    if (row >= st.n * p.rows_per_token) {
        return;
    }
    let shift = st.start * p.start_stride + row * p.len;
    let sbase = p.src_offset + shift;
    let dbase = p.dst_offset + shift;
    var mean = 0.0;
    if ((p.flags & 2u) != 0u) {
        var s = 0.0;
        for (var i = li; i < p.len; i += 64u) {
            s += src[sbase + i];
        }
        mean = sum_all(li, s) / f32(p.len);
    }
    var ss = 0.0;
    for (var i = li; i < p.len; i += 64u) {
        let v = src[sbase + i] - mean;
        ss += v * v;
    }
    let scale = 1.0 / sqrt(sum_all(li, ss) / f32(p.len) + p.eps);
    for (var i = li; i < p.len; i += 64u) {
        var y = (src[sbase + i] - mean) * scale * g[i];
        if ((p.flags & 4u) != 0u) {
            y += b[i];
        }
        y *= p.scale;
        if ((p.flags & 1u) != 0u) {
            dst[dbase + i] += y;
        } else {
            dst[dbase + i] = y;
        }
    }
}
