// Causal attention over the KV cache, split along the keys (flash-decoding): a query at position
// pos sees keys first..=pos (first = pos - window + 1 on sliding-window layers), and those keys
// are cut into chunks of `chunk` keys. `partial` runs one workgroup per (head, token, chunk) and
// writes the chunk's running max, its sum of exponentials and its unnormalised output; `combine`
// runs one workgroup per (head, token) and merges the chunks. The chunk length follows the keys
// the layer's last query sees (`chunk_len`, which the host mirrors to size the dispatch): 16
// keys while there are few, doubling so that there are at most 64 chunks. A decode step thus
// spreads over many workgroups whatever the position; measured on an H200, 16-key chunks took
// Gemma 3's attention at position 128 from 70 to 38 us against fixed 64-key chunks.
// Keys and values are `kv` (the host prefixes the alias): f16 under shader-f16, which halves
// what this memory-bound kernel reads; the arithmetic stays f32 (f16 q.k products flipped a
// Gemma 3 greedy token that f16 storage alone kept, and buy nothing in a kernel that waits on
// memory).
struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,   // a multiple of 4, at most 4 * 64
    window: u32,     // 0: no window
    scale: f32,
    max_chunks: u32, // chunk records per (token, head) in `part`
    chunk: u32,      // keys per chunk if not 0 (timing probes), else chunk_len's
    softcap: f32,    // scores become softcap * tanh(score / softcap) (Gemma 2); 0: none
    alibi_m0: f32,   // ALiBi (MPT): head h < alibi_n has slope alibi_m0^(h + 1), a later one
    alibi_m1: f32,   // alibi_m1^(2 (h - alibi_n) + 1) (ops::alibi_slope); alibi_n 0: no ALiBi
    alibi_n: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> q: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> k: array<kv4>;
@group(0) @binding(2) var<storage, read> v: array<kv>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<uniform> p: Params;
@group(0) @binding(5) var<uniform> st: Step;
// One record of head_dim + 2 floats per (token, head, chunk): max, sum, then the output.
@group(0) @binding(6) var<storage, read_write> part: array<f32>;

var<workgroup> qs: array<vec4<f32>, 64>;
var<workgroup> prob: array<f32, 64>;
var<workgroup> dots: array<f32, 64>;

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

// Keys per chunk: 16, or the power of two that makes at most max_chunks chunks of the keys the
// batch's last query sees in this layer (model.rs's attention_chunk says the same).
fn chunk_len() -> u32 {
    if (p.chunk != 0u) {
        return p.chunk;
    }
    var keys = st.start + st.n;
    if (p.window != 0u) {
        keys = min(keys, p.window);
    }
    var c = 16u;
    while (c * p.max_chunks < keys) {
        c *= 2u;
    }
    return c;
}

// Head h's ALiBi slope (0 without ALiBi).
fn alibi_slope(h: u32) -> f32 {
    if (p.alibi_n == 0u) {
        return 0.0;
    }
    if (h < p.alibi_n) {
        return pow(p.alibi_m0, f32(h + 1u));
    }
    return pow(p.alibi_m1, f32(2u * (h - p.alibi_n) + 1u));
}

// A scaled score with the model's adjustments, in the CPU's order: the soft-cap, then ALiBi's
// bias of -slope * (query position - key position). Both are uniform branches, free when off.
fn adjust(s: f32, slope: f32, distance: u32) -> f32 {
    var x = s;
    if (p.softcap != 0.0) {
        // tanh's argument is clamped: some implementations compute it from exp and overflow.
        x = p.softcap * tanh(clamp(x / p.softcap, -15.0, 15.0));
    }
    if (p.alibi_n != 0u) {
        x -= slope * f32(distance);
    }
    return x;
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
    let chunk = chunk_len();
    let lo = sp.x + c * chunk;
    // Workgroup-uniform: chunks past this query's keys have nothing to do (combine skips them).
    if (c * chunk >= sp.y) {
        return;
    }
    let hi = min(lo + chunk, sp.x + sp.y); // one past the last key
    let hd4 = p.head_dim / 4u;
    let row4 = p.n_kv_head * hd4;
    let kv_off4 = (h / (p.n_head / p.n_kv_head)) * hd4;
    let qbase4 = (t * p.n_head + h) * hd4;
    if (li < hd4) {
        qs[li] = q[qbase4 + li];
    }
    workgroupBarrier();
    let kv_dim = row4 * 4u;
    let kv_off = kv_off4 * 4u;
    let slope = alibi_slope(h);
    let pos = st.start + t;
    var acc = array<f32, 4>(0.0, 0.0, 0.0, 0.0);
    var m = NONE;
    var l = 0.0;
    // A step takes `keys` keys, `tpk` threads per key (chunks shorter than 64 keys split each
    // key's dot product so that no thread idles): thread li works on key c0 + li / tpk.
    let tpk = 64u / min(64u, chunk);
    let keys = 64u / tpk;
    let lane = li % tpk;
    for (var c0 = lo; c0 < hi; c0 += keys) {
        let key = c0 + li / tpk;
        var d = vec4(0.0);
        if (key < hi) {
            let kb = key * row4 + kv_off4;
            for (var i = lane; i < hd4; i += tpk) {
                d += qs[i] * vec4<f32>(k[kb + i]);
            }
        }
        // Thread li < keys now owns key c0 + li (with one thread per key, its own dot).
        let valid = li < keys && c0 + li < hi;
        var sc = NONE;
        if (tpk == 1u) {
            if (valid) {
                sc = adjust((d.x + d.y + d.z + d.w) * p.scale, slope, pos - (c0 + li));
            }
        } else {
            dots[li] = d.x + d.y + d.z + d.w;
            workgroupBarrier();
            if (valid) {
                var s = 0.0;
                for (var j = 0u; j < tpk; j++) {
                    s += dots[li * tpk + j];
                }
                sc = adjust(s * p.scale, slope, pos - (c0 + li));
            }
        }
        let m_new = max(m, max_all(li, sc));
        let corr = exp(m - m_new);
        var e = 0.0;
        if (valid) {
            e = exp(sc - m_new);
        }
        prob[li] = e;
        l = l * corr + sum_all(li, e);
        m = m_new;
        let count = min(keys, hi - c0);
        for (var j = 0u; j < 4u; j++) {
            let dim = li + 64u * j;
            if (dim < p.head_dim) {
                var a = acc[j] * corr;
                for (var kk = 0u; kk < count; kk++) {
                    a += prob[kk] * f32(v[(c0 + kk) * kv_dim + kv_off + dim]);
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
    let chunk = chunk_len();
    let chunks = (span(t).y + chunk - 1u) / chunk;
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
