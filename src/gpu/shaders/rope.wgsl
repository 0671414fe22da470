// From each token's q, k and v side by side (as the matmuls wrote them): RoPE on the queries
// into q, RoPE on the keys into the K cache and the values copied into the V cache, in one
// dispatch of one workgroup per (head, token): query heads, then key heads, then value heads.
// Where the model adds biases to q, k and v (Qwen 2), they are added first; where it norms each
// head (Gemma 3's and Qwen 3's q/k norms), the workgroup does that too: RMSNorm over the head,
// then the rotation of the normed values, exactly the CPU's steps.
// The cos/sin tables were computed by the CPU in f64 for this batch's positions (the same
// numbers the CPU path uses). The cache holds `kv` values (f16 under shader-f16, else f32; the
// host prefixes the alias and `to_kv`). style 0 rotates adjacent pairs (2i, 2i+1), style 1 halves
// (i, i + half); dimensions past 2 * half are not rotated.
struct Params {
    n_head: u32,
    n_kv_head: u32,
    head_dim: u32,
    half: u32,       // rotated pairs per head
    style: u32,
    table: u32,      // first float of this table's cos (sin follows after table_len)
    table_len: u32,
    norm: u32,       // 1: RMSNorm each q and k head first, with qn / kn and eps
    eps: f32,
    bias: u32,       // 1: add bias (q, k and v biases end to end) to each head first
    _b: u32,
    _c: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> qkv: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;
@group(0) @binding(4) var<storage, read_write> q: array<f32>;
@group(0) @binding(5) var<storage, read> qn: array<f32>;
@group(0) @binding(6) var<storage, read> kn: array<f32>;
@group(0) @binding(7) var<storage, read_write> k_cache: array<kv>;
@group(0) @binding(8) var<storage, read_write> v_cache: array<kv>;
@group(0) @binding(9) var<storage, read> bias: array<f32>;


fn store(is_k: bool, i: u32, v: f32) {
    if (is_k) {
        k_cache[i] = to_kv(v);
    } else {
        q[i] = v;
    }
}

// Element j of head g, whose values start at `src` in qkv, with its bias when the model has one.
fn input(src: u32, g: u32, j: u32) -> f32 {
    let v = qkv[src + j];
    if (p.bias == 0u) {
        return v;
    }
    return v + bias[g * p.head_dim + j];
}

// Element j of head g (at `src` in qkv), normed when the model norms heads.
fn normed(is_k: bool, src: u32, g: u32, j: u32, scale: f32) -> f32 {
    let v = input(src, g, j);
    if (p.norm == 0u) {
        return v;
    }
    if (is_k) {
        return v * scale * kn[j];
    }
    return v * scale * qn[j];
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let g = wid.x;
    let hd = p.head_dim;
    let kv_dim = p.n_kv_head * hd;
    let src = t * (p.n_head * hd + 2u * kv_dim) + g * hd;
    let kv_row = (st.start + t) * kv_dim;
    if (g >= p.n_head + p.n_kv_head) {
        let dst = kv_row + (g - p.n_head - p.n_kv_head) * hd;
        for (var j = li; j < hd; j += 64u) {
            v_cache[dst + j] = to_kv(input(src, g, j));
        }
        return;
    }
    let is_k = g >= p.n_head;
    var dst = t * p.n_head * hd + g * hd;
    if (is_k) {
        dst = kv_row + (g - p.n_head) * hd;
    }
    var scale = 1.0;
    if (p.norm != 0u) {
        var ss = 0.0;
        for (var j = li; j < hd; j += 64u) {
            let v = input(src, g, j);
            ss += v * v;
        }
        scale = 1.0 / sqrt(sum_all(li, ss) / f32(hd) + p.eps);
    }
    for (var j = 2u * p.half + li; j < hd; j += 64u) {
        store(is_k, dst + j, normed(is_k, src, g, j, scale));
    }
    for (var i = li; i < p.half; i += 64u) {
        let c = cs[p.table + t * p.half + i];
        let s = cs[p.table + p.table_len + t * p.half + i];
        var a = 2u * i;
        var b = a + 1u;
        if (p.style == 1u) {
            a = i;
            b = i + p.half;
        }
        let x0 = normed(is_k, src, g, a, scale);
        let x1 = normed(is_k, src, g, b, scale);
        store(is_k, dst + a, x0 * c - x1 * s);
        store(is_k, dst + b, x0 * s + x1 * c);
    }
}
