// y = scale * (v + b), then soft-capped (y = cap * tanh(y / cap)) where cap is not 0, over st.n
// rows of `len` (flags bit 3: the batch's last token only, as row 0), with v from src (or, flags
// bit 2, dst's own value) and the bias b where flags bit 1 says; dst = y (bit 0 clear) or
// dst += y (set). What a matmul's output needs past the product: the biases of the attention
// output and the MLP's down projection with Granite's residual scale (proj into x), and the
// output bias, logit scale and Gemma 2's soft-cap on the logits in place.
struct Params { len: u32, flags: u32, scale: f32, cap: f32 }
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read_write> dst: array<f32>;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * 32768u * 64u;
    let rows = select(st.n, 1u, (p.flags & 8u) != 0u);
    if (i >= rows * p.len) {
        return;
    }
    var v: f32;
    if ((p.flags & 4u) != 0u) {
        v = dst[i];
    } else {
        v = src[i];
    }
    if ((p.flags & 2u) != 0u) {
        v += b[i % p.len];
    }
    v *= p.scale;
    if (p.cap != 0.0) {
        // tanh's argument is clamped: some implementations compute it from exp and overflow.
        v = p.cap * tanh(clamp(v / p.cap, -15.0, 15.0));
    }
    if ((p.flags & 1u) != 0u) {
        dst[i] += v;
    } else {
        dst[i] = v;
    }
}
