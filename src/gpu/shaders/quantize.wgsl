// Quantizes activation rows exactly as the CPU kernels do (kernels/blocks.rs), into the layout
// matmul.wgsl reads: per unit of 32 values, 8 words of packed signed bytes (xq) and
// (d, s0, s1, 0) in xm, where s0/s1 are the float sums the weights' min terms multiply:
//   mode 0, Q8_0: d = f16(amax / 127), q = round_half_even(x * (127 / amax)) (llama.cpp's SIMD
//                 quantizer, which is what it runs); no sums.
//   mode 1, Q8_1: as Q8_0, s0 = f16(sum(q) * amax / 127) for the whole unit.
//   mode 2, Q8_K (one thread per 256): d = 1 / (-127 / max) with max the first value of largest
//           magnitude, q = min(round_half_even(x * -127 / max), 127); s0/s1 = d * sum(q) per 16.
// Entry `main` quantizes x. `norm_quantize` first writes x = norm(res) * g (+ b) (the arithmetic of
// norm.wgsl), `gated_quantize` x = act(gate) * up (or act(up) without a gate) from res = each token's gate and up side by
// side (gated.wgsl's), one workgroup per token, and quantizes that: a dispatch saved before each
// matmul that follows a norm or the MLP's activation. Prefixed by reduce.wgsl and activation.wgsl.
struct Params {
    units: u32,      // units per row
    mode: u32,
    in_offset: u32,
    in_stride: u32,  // floats between rows of x
    eps: f32,        // norm_quantize only
    act: u32,        // gated_quantize only: bit 0 GELU (else SiLU), bit 1 ungated (res holds up)
    flags: u32,      // bit 0: LayerNorm (norm_quantize); bit 1: add `b` (the norm's bias, or up's)
    _c: u32,
}
struct Step { n: u32, start: u32, _a: u32, _b: u32 }
// Scales are divided with div_rn, not `/`: WGSL allows `/` 2.5 ulp where the CPU's division is
// correctly rounded, and a scale off in its last bit moves roundings of x * id (seen on an NVIDIA
// H100; lavapipe divides exactly). div_rn picks among a / b's neighbours by their exact residual
// |c * b - a| in integers, since an fma-based correction is no cure: SPIR-V does not promise that
// fma is fused.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> xq: array<u32>;
@group(0) @binding(2) var<storage, read_write> xm: array<vec4<f32>>;
@group(0) @binding(3) var<uniform> p: Params;
@group(0) @binding(4) var<uniform> st: Step;
// norm_quantize: the residual stream it norms, and the norm's weights; gated_quantize: gate, up.
@group(0) @binding(5) var<storage, read> res: array<f32>;
@group(0) @binding(6) var<storage, read> g: array<f32>;
// norm_quantize: the norm's bias; gated_quantize: the up projection's (flags bit 1).
@group(0) @binding(7) var<storage, read> b: array<f32>;

// a * b for a, b < 2^24 as the (hi, lo) words of the 48-bit product, in 12-bit limbs so that no
// partial sum overflows 32 bits.
fn mul24(a: u32, b: u32) -> vec2<u32> {
    let a0 = a & 0xfffu;
    let a1 = a >> 12u;
    let b0 = b & 0xfffu;
    let b1 = b >> 12u;
    let mid = a1 * b0 + a0 * b1;
    let low = a0 * b0 + ((mid & 0xfffu) << 12u);
    let high = a1 * b1 + (mid >> 12u) + (low >> 24u); // the product's bits from 24 up
    return vec2(high >> 8u, (low & 0xffffffu) | (high << 24u));
}

// v << s for s < 64 (WGSL masks shift counts, so the word boundary needs its own cases).
fn shl64(v: vec2<u32>, s: u32) -> vec2<u32> {
    if (s == 0u) {
        return v;
    }
    if (s >= 32u) {
        return vec2(v.y << (s - 32u), 0u);
    }
    return vec2((v.x << s) | (v.y >> (32u - s)), v.y << s);
}

fn lt64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.x < b.x || (a.x == b.x && a.y < b.y);
}

fn absdiff64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let swap = lt64(a, b);
    let x = select(a, b, swap);
    let y = select(b, a, swap);
    return vec2(x.x - y.x - select(0u, 1u, x.y < y.y), x.y - y.y);
}

fn mantissa(bits: u32) -> u32 {
    return (bits & 0x7fffffu) | 0x800000u;
}

// The correctly rounded a / b for positive normal a, b, given q0 within 3 ulp of it: of the 7
// floats around q0 the one nearest the quotient, i.e. with the least |c * b - a| (never a tie: a
// quotient of 24-bit mantissas is no midpoint). Out of that domain (zero, subnormal, inf, NaN, a
// candidate that is not normal), q0 itself. On the scale of the lowest candidate's mc * mb, the
// others' are shifted by 0 or 1 (one exponent step at most) and a's mantissa by about 24.
fn div_rn_near(a: f32, b: f32, q0: f32) -> f32 {
    let ab = bitcast<u32>(a);
    let bb = bitcast<u32>(b);
    let qb = bitcast<u32>(q0);
    let ea = ab >> 23u;
    let eb = bb >> 23u;
    if (ea - 1u >= 254u || eb - 1u >= 254u || qb < 0x00800003u || qb > 0x7f7ffffcu) {
        return q0;
    }
    let e_lo = (qb - 3u) >> 23u;
    let s = i32(ea) + 150 - i32(e_lo) - i32(eb);
    if (s < 0 || s > 39) {
        return q0;
    }
    let scaled_a = shl64(vec2(0u, mantissa(ab)), u32(s));
    var best = qb;
    var least = vec2(0xffffffffu);
    for (var c = qb - 3u; c <= qb + 3u; c++) {
        let r = absdiff64(shl64(mul24(mantissa(c), mantissa(bb)), (c >> 23u) - e_lo), scaled_a);
        if (lt64(r, least)) {
            best = c;
            least = r;
        }
    }
    return bitcast<f32>(best);
}

// a / b rounded to nearest even, as on the CPU: the magnitudes divided, then the sign applied
// (rounding to nearest is symmetric).
fn div_rn(a: f32, b: f32) -> f32 {
    let q = div_rn_near(abs(a), abs(b), abs(a) / abs(b));
    return bitcast<f32>(bitcast<u32>(q) | ((bitcast<u32>(a) ^ bitcast<u32>(b)) & 0x80000000u));
}

// v rounded to the nearest f16 (ties to even, overflow to inf), as an f32: half::f16 on the CPU.
// In integers, as NVIDIA's Vulkan driver folds unpack2x16float(pack2x16float(v)) into v.
fn through_f16(v: f32) -> f32 {
    let b = bitcast<u32>(v);
    let mag = b & 0x7fffffffu;
    if (mag >= 0x7f800000u) {
        return v; // inf, NaN
    }
    if (mag < 0x38800000u) {
        // Below 2^-14, f16's subnormals: multiples of 2^-24 (both scalings are exact).
        return round(v * 16777216.0) * 5.9604645e-8;
    }
    let r = (mag + 0xfffu + ((mag >> 13u) & 1u)) & 0xffffe000u;
    return bitcast<f32>((b & 0x80000000u) | select(r, 0x7f800000u, r > 0x477fe000u)); // 65504
}

// Superblock sb (256 values) of token t's row, in mode 2.
fn quantize_superblock(t: u32, sb: u32) {
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
    let iscale = div_rn(-127.0, mx);
    let d = div_rn(1.0, iscale);
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
}

// Unit u (32 values) of token t's row, in mode 0 or 1.
fn quantize_unit(t: u32, u: u32) {
    let src = p.in_offset + t * p.in_stride + u * 32u;
    var amax = 0.0;
    for (var j = 0u; j < 32u; j++) {
        amax = max(amax, abs(x[src + j]));
    }
    let d = div_rn(amax, 127.0);
    let id = select(0.0, div_rn(127.0, amax), amax != 0.0);
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

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (p.mode == 2u) {
        let sbs = p.units / 8u;
        if (i / sbs < st.n) {
            quantize_superblock(i / sbs, i % sbs);
        }
    } else if (i / p.units < st.n) {
        quantize_unit(i / p.units, i % p.units);
    }
}

@compute @workgroup_size(64)
fn norm_quantize(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.x + wid.y * 32768u;
    if (t >= st.n) {
        return;
    }
    let len = p.units * 32u;
    let rbase = t * len;
    let xbase = p.in_offset + t * p.in_stride;
    var mean = 0.0;
    if ((p.flags & 1u) != 0u) {
        var s = 0.0;
        for (var i = li; i < len; i += 64u) {
            s += res[rbase + i];
        }
        mean = sum_all(li, s) / f32(len);
    }
    var ss = 0.0;
    for (var i = li; i < len; i += 64u) {
        let v = res[rbase + i] - mean;
        ss += v * v;
    }
    let scale = 1.0 / sqrt(sum_all(li, ss) / f32(len) + p.eps);
    for (var i = li; i < len; i += 64u) {
        var y = (res[rbase + i] - mean) * scale * g[i];
        if ((p.flags & 2u) != 0u) {
            y += b[i];
        }
        x[xbase + i] = y;
    }
    quantize_row(li, t);
}

@compute @workgroup_size(64)
fn gated_quantize(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let t = wid.x + wid.y * 32768u;
    if (t >= st.n) {
        return;
    }
    let len = p.units * 32u;
    let xbase = p.in_offset + t * p.in_stride;
    for (var i = li; i < len; i += 64u) {
        x[xbase + i] = mlp_value(t, i, len);
    }
    quantize_row(li, t);
}

// Value i of token t's MLP activation from res: act(gate) * (up + b) with each token's gate and
// up side by side, or act(up + b) where the MLP has no gate (act bit 1: rows of up alone).
fn mlp_value(t: u32, i: u32, len: u32) -> f32 {
    var bias = 0.0;
    if ((p.flags & 2u) != 0u) {
        bias = b[i];
    }
    if ((p.act & 2u) != 0u) {
        return act_value(res[t * len + i] + bias, p.act & 1u);
    }
    let at = t * 2u * len + i;
    return gated_value(res[at], res[at + len] + bias, p.act & 1u);
}

// Quantizes token t's row of x, which the whole workgroup just wrote.
fn quantize_row(li: u32, t: u32) {
    // The row's values, written by the whole workgroup, are read back by the unit owners.
    storageBarrier();
    if (p.mode == 2u) {
        for (var sb = li; sb < p.units / 8u; sb += 64u) {
            quantize_superblock(t, sb);
        }
    } else {
        for (var u = li; u < p.units; u += 64u) {
            quantize_unit(t, u);
        }
    }
}
