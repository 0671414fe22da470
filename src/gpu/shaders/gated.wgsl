// out = act(gate) * up, elementwise over st.n rows of `len`, from each token's gate and up
// side by side in gu (as the matmuls wrote them). Prefixed by activation.wgsl.
struct Params { len: u32, act: u32, _a: u32, _b: u32 }
struct Step { n: u32, start: u32, _a: u32, _b: u32 }

@group(0) @binding(0) var<storage, read> gu: array<f32>;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;
@group(0) @binding(2) var<uniform> p: Params;
@group(0) @binding(3) var<uniform> st: Step;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i >= st.n * p.len) {
        return;
    }
    let at = (i / p.len) * 2u * p.len + i % p.len;
    out[i] = gated_value(gu[at], gu[at + p.len], p.act);
}
