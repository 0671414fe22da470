// out[t][row] = dot(weight row, activation t), with the activations quantized as the CPU path
// quantizes them (quantize.wgsl) and the products done in integers, so that the GPU and the CPU
// differ only in float summation order. Prefixed by common.wgsl, one types/*.wgsl and
// matmul_common.wgsl (parameters, work layout, `finish`): LANES threads per row take every
// LANES-th unit of 32 weights, decode it once and dot it with each token.
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read> xq: array<u32>;
@group(0) @binding(2) var<storage, read> xm: array<vec4<f32>>;

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
            let wu = load_unit(base, u);
            for (var t = 0u; t < nt; t++) {
                let xb = (t0 + t) * p.units + u;
                var s0 = 0i;
                var s1 = 0i;
                var c0 = 0i;
                var c1 = 0i;
                for (var k = 0u; k < 4u; k++) {
                    let x0 = xq[xb * 8u + k];
                    let x1 = xq[xb * 8u + 4u + k];
                    s0 += dot4I8Packed(wu.q[k], x0);
                    s1 += dot4I8Packed(wu.q[k + 4u], x1);
                    if (OFF != 0i) {
                        c0 += dot4I8Packed(0x01010101u, x0);
                        c1 += dot4I8Packed(0x01010101u, x1);
                    }
                }
                s0 -= OFF * c0;
                s1 -= OFF * c1;
                let m = xm[xb];
                acc[t] += m.x * (wu.a.x * f32(s0) + wu.a.y * f32(s1)) + wu.m.x * m.y + wu.m.y * m.z;
            }
        }
    }
    finish(li, row, t0, nt, acc);
}
