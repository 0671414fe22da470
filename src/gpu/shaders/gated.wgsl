// out = act(gate) * (up + b), elementwise over st.n rows of `len`, from each token's gate and up
// side by side in gu (as the matmuls wrote them); or out = act(up + b) where the MLP has no gate
// (act bit 1: gu holds rows of up alone). b is up's bias (flags bit 0). Prefixed by
// activation.wgsl.
struct Params { len: u32, act: u32, flags: u32, _b: u32 }
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;
@group(0) @binding(4) var<storage, read> b: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= st.n * p.len) {
        return;
    }
    let j = i % p.len;
    var bias = 0.0;
    if ((p.flags & 1u) != 0u) {
        bias = b[j];
    }
    if ((p.act & 2u) != 0u) {
        out[i] = act_value(gu[i] + bias, p.act & 1u);
        return;
    }
    let at = (i / p.len) * 2u * p.len + j;
    out[i] = gated_value(gu[at], gu[at + p.len] + bias, p.act & 1u);
}
