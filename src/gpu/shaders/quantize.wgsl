// Quantizes activation rows exactly as the CPU kernels do (kernels/blocks.rs), into the layout
// matmul.wgsl reads: per unit of 32 values, 8 words of packed signed bytes (xq) and
// (d, s0, s1, 0) in xm, where s0/s1 are the float sums the weights' min terms multiply:
//   mode 0, Q8_0: d = f16(amax / 127), q = round_half_even(x * (127 / amax)) (llama.cpp's SIMD
//                 quantizer, which is what it runs); no sums.
//   mode 1, Q8_1: as Q8_0, s0 = f16(sum(q) * amax / 127) for the whole unit.
//   mode 2, Q8_K (one thread per 256): d = 1 / (-127 / max) with max the first value of largest
//           magnitude, q = min(round_half_even(x * -127 / max), 127); s0/s1 = d * sum(q) per 16.
struct Params {
    units: u32,      // units per row
    mode: u32,
    in_offset: u32,
    in_stride: u32,  // floats between rows of x
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }
// Divisions here are plain `/`: WGSL allows them 2.5 ulp where the CPU's are exact, so on some
// GPUs a scale can differ in its last bit and move a rounding tie (an fma-based correction is no
// cure: SPIR-V does not promise that fma is fused). Lavapipe and SwiftShader divide exactly.

@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xm: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;

fn through_f16(v: f32) -> f32 {
    return unpack2x16float(pack2x16float(vec2(v, 0.0))).x;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (p.mode == 2u) {
        let sbs = p.units / 8u;
        let t = i / sbs;
        let sb = i % sbs;
        if (t >= st.n) {
            return;
        }
        let src = p.in_offset + t * p.in_stride + sb * 256u;
        var amax = 0.0;
        var mx = 0.0;
        for (var j = 0u; j < 256u; j++) {
            let v = x[src + j];
            if (abs(v) > amax) {
                amax = abs(v);
                mx = v;
            }
        }
        let ub = t * p.units + sb * 8u;
        if (amax == 0.0) {
            for (var u = 0u; u < 8u; u++) {
                for (var k = 0u; k < 8u; k++) {
                    xq[(ub + u) * 8u + k] = 0u;
                }
                xm[ub + u] = vec4(0.0);
            }
            return;
        }
        let iscale = -127.0 / mx;
        let d = 1.0 / iscale;
        for (var u = 0u; u < 8u; u++) {
            var sums = vec2(0i, 0i);
            for (var k = 0u; k < 8u; k++) {
                var word = 0u;
                for (var j = 0u; j < 4u; j++) {
                    let q = min(i32(round(iscale * x[src + u * 32u + k * 4u + j])), 127);
                    sums[k / 4u] += q;
                    word |= (bitcast<u32>(q) & 0xffu) << (8u * j);
                }
                xq[(ub + u) * 8u + k] = word;
            }
            xm[ub + u] = vec4(d, d * f32(sums.x), d * f32(sums.y), 0.0);
        }
        return;
    }
    let t = i / p.units;
    let u = i % p.units;
    if (t >= st.n) {
        return;
    }
    let src = p.in_offset + t * p.in_stride + u * 32u;
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        amax = max(amax, abs(x[src + j]));
    }
    let d = amax / 127.0;
    let id = select(0.0, 127.0 / amax, amax != 0.0);
    var sum = 0i;
    for (var k = 0u; k < 8u; k++) {
        var word = 0u;
        for (var j = 0u; j < 4u; j++) {
            let q = i32(round(x[src + k * 4u + j] * id));
            sum += q;
            word |= (bitcast<u32>(q) & 0xffu) << (8u * j);
        }
        xq[(t * p.units + u) * 8u + k] = word;
    }
    let s = select(0.0, through_f16(f32(sum) * d), p.mode == 1u);
    xm[t * p.units + u] = vec4(through_f16(d), s, 0.0, 0.0);
}
