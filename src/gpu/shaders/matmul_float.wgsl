// out[t][row] = dot(weight row, activation t) for float weights (F32, F16, BF16): the f32
// activations as they are, as the CPU's float kernels take them. Prefixed by one of
// types/f32.wgsl, f16.wgsl, bf16.wgsl (`load4`) and matmul_common.wgsl (parameters, work layout,
// `finish`): LANES threads per row take every LANES-th unit of 32 columns.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let lane = li % LANES;
    let tl = tile(li, wid);
    let row = tl.x;
    let t0 = tl.y;
    let nt = tl.z;
    var acc: array<f32, 8>;
    if (row < p.rows) {
        let base = row * p.row_words;
        for (var u = lane; u < p.units; u += LANES) {
            for (var k = 0u; k < 8u; k++) {
                let wk = load4(base, u, k);
                for (var t = 0u; t < nt; t++) {
                    acc[t] += dot(wk, x[((t0 + t) * p.units + u) * 8u + k]);
                }
            }
        }
    }
    finish(li, row, t0, nt, acc);
}
