// From each token's q, k and v side by side (as the matmuls wrote them): RoPE on the queries
// into q, RoPE on the keys into the K cache and the values copied into the V cache, in one
// dispatch of one workgroup per (head, token): query heads, then key heads, then value heads.
// The CPU's steps before the rotation, each where the model has it: the biases (Qwen 2, GPT-2),
// a clamp to [-clamp, clamp] (MPT), the q/k norm (RMSNorm or LayerNorm, by `norm`) over each
// head (Gemma 3, Qwen 3, StableLM 2 12B) or over the whole q or k vector (OLMo 2, `norm_flags`
// bit 0: each workgroup sums its whole vector itself), with weights shared by every head or one
// set per head (bit 1), and a bias (bit 2: stored in qn / kn right after the weights). A layer without RoPE (SmolLM3's every fourth, GPT-2, MPT) has half 0.
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
    norm: u32,       // 0: none; 1: RMSNorm, 2: LayerNorm of q and k with qn / kn and eps
    eps: f32,
    bias: u32,       // 1: add bias (q, k and v biases end to end) to each head first
    clamp: f32,      // 0: none
    norm_flags: u32, // bit 0: norm over the whole vector; bit 1: weights per head; bit 2: bias
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

// Value `idx` of the token's q, k, v row (starting at `row` in qkv), with its bias and clamp
// where the model has them (the biases are laid out as the row is).
fn input(row: u32, idx: u32) -> f32 {
    var v = qkv[row + idx];
    if (p.bias != 0u) {
        v += bias[idx];
    }
    if (p.clamp != 0.0) {
        v = clamp(v, -p.clamp, p.clamp);
    }
    return v;
}

// Element j of head g, normed (with the group's mean and inverse deviation) where the model norms
// q and k; `first` is the head's first value in the row.
fn normed(is_k: bool, row: u32, first: u32, j: u32, mean: f32, scale: f32) -> f32 {
    let v = input(row, first + j);
    if (p.norm == 0u) {
        return v;
    }
    var w = j;
    var len = p.head_dim; // weights (the bias follows them)
    if ((p.norm_flags & 2u) != 0u) {
        // One set per head: the head's place within q (or k).
        w = first + j;
        len = p.n_head * p.head_dim;
        if (is_k) {
            w -= len;
            len = p.n_kv_head * p.head_dim;
        }
    }
    var y: f32;
    var b = 0.0;
    if (is_k) {
        y = (v - mean) * scale * kn[w];
        if ((p.norm_flags & 4u) != 0u) {
            b = kn[len + w];
        }
    } else {
        y = (v - mean) * scale * qn[w];
        if ((p.norm_flags & 4u) != 0u) {
            b = qn[len + w];
        }
    }
    return y + b;
}

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.y;
    let g = wid.x;
    let hd = p.head_dim;
    let kv_dim = p.n_kv_head * hd;
    let q_dim = p.n_head * hd;
    let row = t * (q_dim + 2u * kv_dim);
    let first = g * hd;
    let kv_row = (st.start + t) * kv_dim;
    if (g >= p.n_head + p.n_kv_head) {
        let dst = kv_row + (g - p.n_head - p.n_kv_head) * hd;
        for (var j = li; j < hd; j += 64u) {
            v_cache[dst + j] = to_kv(input(row, first + j));
        }
        return;
    }
    let is_k = g >= p.n_head;
    var dst = t * q_dim + g * hd;
    if (is_k) {
        dst = kv_row + (g - p.n_head) * hd;
    }
    var mean = 0.0;
    var scale = 1.0;
    if (p.norm != 0u) {
        // The group the norm's statistics cover: this head, or the whole q (or k) vector.
        var lo = first;
        var count = hd;
        if ((p.norm_flags & 1u) != 0u) {
            lo = select(0u, q_dim, is_k);
            count = select(q_dim, kv_dim, is_k);
        }
        if (p.norm == 2u) {
            var s = 0.0;
            for (var j = li; j < count; j += 64u) {
                s += input(row, lo + j);
            }
            mean = sum_all(li, s) / f32(count);
        }
        var ss = 0.0;
        for (var j = li; j < count; j += 64u) {
            let v = input(row, lo + j) - mean;
            ss += v * v;
        }
        scale = 1.0 / sqrt(sum_all(li, ss) / f32(count) + p.eps);
    }
    for (var j = 2u * p.half + li; j < hd; j += 64u) {
        store(is_k, dst + j, normed(is_k, row, first, j, mean, scale));
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
        let x0 = normed(is_k, row, first, a, mean, scale);
        let x1 = normed(is_k, row, first, b, mean, scale);
        store(is_k, dst + a, x0 * c - x1 * s);
        store(is_k, dst + b, x0 * s + x1 * c);
    }
}
