// Causal attention of each (token, head) over the KV cache, one workgroup each, with a running
// (online) softmax over chunks of 64 keys so that no score buffer is needed. A query at position
// pos sees keys first..=pos, first = pos - window + 1 for sliding-window layers.
struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,   // at most 4 * 64
    window: u32,     // 0: no window
    scale: f32,
    _a: u32,
    _b: u32,
    _c: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> k: array<f32>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;

var<workgroup> qs: array<f32, 256>;
var<workgroup> prob: array<f32, 64>;
var<workgroup> red: array<f32, 64>;

fn reduce_max(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] = max(red[li], red[li + s]);
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

fn reduce_sum(li: u32, v: f32) -> f32 {
    red[li] = v;
    workgroupBarrier();
    for (var s = 32u; s > 0u; s >>= 1u) {
        if (li < s) {
            red[li] += red[li + s];
        }
        workgroupBarrier();
    }
    let r = red[0];
    workgroupBarrier();
    return r;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let hd = p.head_dim;
    let kv_dim = p.n_kv_head * hd;
    let kv_off = (h / (p.n_head / p.n_kv_head)) * hd;
    let pos = st.start + t;
    var first = 0u;
    if (p.window != 0u && pos + 1u > p.window) {
        first = pos + 1u - p.window;
    }
    let qbase = t * p.n_head * hd + h * hd;
    for (var i = li; i < hd; i += 64u) {
        qs[i] = q[qbase + i];
    }
    workgroupBarrier();
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var m = -3.0e38;
    var l = 0.0;
    for (var c = first; c <= pos; c += 64u) {
        let key = c + li;
        var sc = -3.0e38;
        if (key <= pos) {
            let kb = key * kv_dim + kv_off;
            var d = 0.0;
            for (var i = 0u; i < hd; i++) {
                d += qs[i] * k[kb + i];
            }
            sc = d * p.scale;
        }
        let cm = reduce_max(li, sc);
        let m_new = max(m, cm);
        let corr = exp(m - m_new);
        var e = 0.0;
        if (key <= pos) {
            e = exp(sc - m_new);
        }
        prob[li] = e;
        let cs = reduce_sum(li, e);
        l = l * corr + cs;
        m = m_new;
        let count = min(64u, pos + 1u - c);
        for (var j = 0u; j < 4u; j++) {
            let dim = li + 64u * j;
            if (dim < hd) {
                var a = acc[j] * corr;
                for (var kk = 0u; kk < count; kk++) {
                    a += prob[kk] * v[(c + kk) * kv_dim + kv_off + dim];
                }
                acc[j] = a;
            }
        }
        workgroupBarrier();
    }
    let inv = 1.0 / l;
    for (var j = 0u; j < 4u; j++) {
        let dim = li + 64u * j;
        if (dim < hd) {
            out[qbase + dim] = acc[j] * inv;
        }
    }
}
