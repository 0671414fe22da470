// Causal attention over the KV cache, split along the keys (flash-decoding): a query at position
// pos sees keys first..=pos (first = pos - window + 1 on sliding-window layers), and those keys
// are cut into chunks of `chunk` keys. `partial` runs one workgroup per (head, token, chunk) and
// writes the chunk's running max, its sum of exponentials and its unnormalised output; `combine`
// runs one workgroup per (head, token) and merges the chunks. A decode step of one token thus
// spreads over heads x chunks workgroups instead of one workgroup per head walking every key.
struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,   // a multiple of 4, at most 4 * 64
    window: u32,     // 0: no window
    scale: f32,
    chunk: u32,      // keys per chunk, a multiple of 64
    max_chunks: u32, // chunk records per (token, head) in `part`
    _a: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> v: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;
// One record of head_dim + 2 floats per (token, head, chunk): max, sum, then the output.
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> prob: array<f32, 64>;

const NONE = -3.0e38;

// The first key the query of token t sees, and how many it sees.
fn span(t: u32) -> vec2<u32> {
    let pos = st.start + t;
    var first = 0u;
    if (p.window != 0u && pos + 1u > p.window) {
        first = pos + 1u - p.window;
    }
    return vec2(first, pos + 1u - first);
}

fn record(t: u32, h: u32, c: u32) -> u32 {
    return ((t * p.n_head + h) * p.max_chunks + c) * (p.head_dim + 2u);
}

@compute @workgroup_size(64)
fn partial(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let c = wid.z;
    let sp = span(t);
    let lo = sp.x + c * p.chunk;
    // Workgroup-uniform: chunks past this query's keys have nothing to do (combine skips them).
    if (c * p.chunk >= sp.y) {
        return;
    }
    let hi = min(lo + p.chunk, sp.x + sp.y); // one past the last key
    let hd4 = p.head_dim / 4u;
    let kv4 = p.n_kv_head * hd4;
    let kv_off4 = (h / (p.n_head / p.n_kv_head)) * hd4;
    let qbase4 = (t * p.n_head + h) * hd4;
    if (li < hd4) {
        qs[li] = q[qbase4 + li];
    }
    workgroupBarrier();
    let kv_dim = kv4 * 4u;
    let kv_off = kv_off4 * 4u;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var m = NONE;
    var l = 0.0;
    for (var c0 = lo; c0 < hi; c0 += 64u) {
        let key = c0 + li;
        var sc = NONE;
        if (key < hi) {
            let kb = key * kv4 + kv_off4;
            var d = vec4(0.0);
            for (var i = 0u; i < hd4; i++) {
                d += qs[i] * k[kb + i];
            }
            sc = (d.x + d.y + d.z + d.w) * p.scale;
        }
        let m_new = max(m, max_all(li, sc));
        let corr = exp(m - m_new);
        var e = 0.0;
        if (key < hi) {
            e = exp(sc - m_new);
        }
        prob[li] = e;
        l = l * corr + sum_all(li, e);
        m = m_new;
        let count = min(64u, hi - c0);
        for (var j = 0u; j < 4u; j++) {
            let dim = li + 64u * j;
            if (dim < p.head_dim) {
                var a = acc[j] * corr;
                for (var kk = 0u; kk < count; kk++) {
                    a += prob[kk] * v[(c0 + kk) * kv_dim + kv_off + dim];
                }
                acc[j] = a;
            }
        }
        workgroupBarrier();
    }
    let r = record(t, h, c);
    if (li == 0u) {
        part[r] = m;
        part[r + 1u] = l;
    }
    for (var j = 0u; j < 4u; j++) {
        let dim = li + 64u * j;
        if (dim < p.head_dim) {
            part[r + 2u + dim] = acc[j];
        }
    }
}

@compute @workgroup_size(64)
fn combine(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let h = wid.x;
    let t = wid.y;
    let chunks = (span(t).y + p.chunk - 1u) / p.chunk;
    var m = NONE;
    for (var c = 0u; c < chunks; c++) {
        m = max(m, part[record(t, h, c)]);
    }
    var l = 0.0;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    for (var c = 0u; c < chunks; c++) {
        let r = record(t, h, c);
        let f = exp(part[r] - m);
        l += f * part[r + 1u];
        for (var j = 0u; j < 4u; j++) {
            let dim = li + 64u * j;
            if (dim < p.head_dim) {
                acc[j] += f * part[r + 2u + dim];
            }
        }
    }
    let inv = 1.0 / l;
    let obase = (t * p.n_head + h) * p.head_dim;
    for (var j = 0u; j < 4u; j++) {
        let dim = li + 64u * j;
        if (dim < p.head_dim) {
            out[obase + dim] = acc[j] * inv;
        }
    }
}
