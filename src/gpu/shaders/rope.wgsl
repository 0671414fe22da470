// Rotary embeddings in place on rows of `width` floats (heads of head_dim), from cos/sin tables
// the CPU computed in f64 for this batch's positions (the same numbers the CPU path uses).
// style 0 rotates adjacent pairs (2i, 2i+1), style 1 halves (i, i + half).
struct Params {
    width: u32,
    head_dim: u32,
    half: u32,       // rotated pairs per head
    style: u32,
    offset: u32,
    start_stride: u32,
    table: u32,      // first float of this table's cos (sin follows after table_len)
    table_len: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read> cs: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let heads = p.width / p.head_dim;
    let i = gid.x % p.half;
    let h = (gid.x / p.half) % heads;
    let t = gid.x / (p.half * heads);
    if (t >= st.n) {
        return;
    }
    let c = cs[p.table + t * p.half + i];
    let s = cs[p.table + p.table_len + t * p.half + i];
    let base = p.offset + st.start * p.start_stride + t * p.width + h * p.head_dim;
    var a = base + 2u * i;
    var b = a + 1u;
    if (p.style == 1u) {
        a = base + i;
        b = base + i + p.half;
    }
    let x0 = x[a];
    let x1 = x[b];
    x[a] = x0 * c - x1 * s;
    x[b] = x0 * s + x1 * c;
}
