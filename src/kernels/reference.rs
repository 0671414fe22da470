//! Portable scalar kernels: dequantization and the vec-dot (one weight row · one activation row)
//! of every weight type.
//!
//! This is the truth the SIMD kernels are tested against and the fallback on targets without a SIMD
//! version, so it is written to be read, not to be fast: each type has one `decode_*` function
//! that turns a block into small integers plus its scales, and dequantization and the dot products
//! are shared over those. Integer sums are exact; the float arithmetic follows ggml's order
//! (`(d * scale) * q - dmin * min`) so dequantization matches ggml's bit for bit.

use super::blocks::{
    f16_at, q3k_scales, q4k_scales_mins, u32_at, vec_dot_type, BlockQ8, BlockQ8K, VecDotType, QK,
    QK_K,
};
use super::iq_grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS};
use super::{Kernel, TOKENS_PER_TILE};
use crate::gguf::QType;

/// The kernel table entry for `t` (every supported type has one here).
pub(crate) fn kernel(t: QType) -> Kernel {
    use QType::*;
    match t {
        F32 => Kernel::F32(|w, rb, x, xs, nt, out| {
            tile((dot_float::<4>, f32_elem), w, rb, x, xs, nt, out)
        }),
        F16 => Kernel::F32(|w, rb, x, xs, nt, out| {
            tile((dot_float::<2>, f16_elem), w, rb, x, xs, nt, out)
        }),
        BF16 => Kernel::F32(|w, rb, x, xs, nt, out| {
            tile((dot_float::<2>, bf16_elem), w, rb, x, xs, nt, out)
        }),
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => Kernel::Q8(
            |w, rb, x, xs, nt, out| tile((dot_legacy, ()), w, rb, x, xs, nt, out),
            None,
        ),
        Q2K | Q3K | Q4K | Q5K | Q6K => Kernel::Q8K(
            |w, rb, x, xs, nt, out| tile((dot_k, ()), w, rb, x, xs, nt, out),
            None,
        ),
        IQ2XXS | IQ2XS | IQ2S | IQ3XXS | IQ3S => Kernel::Q8K(
            |w, rb, x, xs, nt, out| tile((dot_iq, ()), w, rb, x, xs, nt, out),
            None,
        ),
    }
}

/// A one-row, one-token dot product and the parameter it takes (an element reader, or nothing).
type Dot<A, P> = (fn(&[u8], &[A], P) -> f32, P);

/// Applies a one-row, one-token dot (with its parameter `p`) to every row of `w` and each of
/// `nt` activation rows. The dot gets the type through the row length (every block type has its
/// own byte size).
fn tile<A, P: Copy>(
    (dot, p): Dot<A, P>,
    w: &[u8],
    rb: usize,
    x: &[A],
    xs: usize,
    nt: usize,
    out: &mut [f32],
) {
    debug_assert!(nt <= TOKENS_PER_TILE);
    let nrows = w.len() / rb;
    for (r, row) in w.chunks_exact(rb).enumerate() {
        for t in 0..nt {
            out[t * nrows + r] = dot(row, &x[t * xs..(t + 1) * xs], p);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Float weights.

fn f32_elem(b: &[u8], i: usize) -> f32 {
    f32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
}
fn f16_elem(b: &[u8], i: usize) -> f32 {
    f16_at(b, 2 * i)
}
fn bf16_elem(b: &[u8], i: usize) -> f32 {
    f32::from_bits((u16::from_le_bytes([b[2 * i], b[2 * i + 1]]) as u32) << 16)
}

/// Dot of a float row (`SIZE` bytes per value, read by `at`) with f32 activations, summed in 8
/// lanes (which vectorizes, and errs less than one running sum).
fn dot_float<const SIZE: usize>(w: &[u8], x: &[f32], at: fn(&[u8], usize) -> f32) -> f32 {
    let mut lanes = [0f32; 8];
    for (i, &xi) in x.iter().enumerate() {
        lanes[i % 8] += at(w, i) * xi;
    }
    debug_assert_eq!(w.len(), x.len() * SIZE);
    lanes.iter().sum()
}

// ---------------------------------------------------------------------------------------------
// Legacy 32-value blocks: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0.

/// A decoded legacy block: value `i` is `q[i] * d + m`.
struct Legacy {
    d: f32,
    /// The offset of Q4_1/Q5_1 (`None` for the symmetric types).
    m: Option<f32>,
    q: [i8; QK],
}

/// The type of a legacy block, recognized from its byte size (18, 20, 22, 24 or 34).
fn decode_legacy(b: &[u8]) -> Legacy {
    let mut q = [0i8; QK];
    // Nibbles: value j in the low nibble of byte j, value j + 16 in the high nibble.
    let nibbles = |qs: &[u8], q: &mut [i8; QK]| {
        for j in 0..16 {
            q[j] = (qs[j] & 0xF) as i8;
            q[j + 16] = (qs[j] >> 4) as i8;
        }
    };
    // The 5th bit of value j is bit j of the little-endian u32 `qh`.
    let fifth_bits = |qh: u32, q: &mut [i8; QK]| {
        for (j, v) in q.iter_mut().enumerate() {
            *v |= (((qh >> j) & 1) << 4) as i8;
        }
    };
    match b.len() {
        18 => {
            nibbles(&b[2..18], &mut q);
            q.iter_mut().for_each(|v| *v -= 8);
            Legacy {
                d: f16_at(b, 0),
                m: None,
                q,
            }
        }
        20 => {
            nibbles(&b[4..20], &mut q);
            Legacy {
                d: f16_at(b, 0),
                m: Some(f16_at(b, 2)),
                q,
            }
        }
        22 => {
            nibbles(&b[6..22], &mut q);
            fifth_bits(u32_at(b, 2), &mut q);
            q.iter_mut().for_each(|v| *v -= 16);
            Legacy {
                d: f16_at(b, 0),
                m: None,
                q,
            }
        }
        24 => {
            nibbles(&b[8..24], &mut q);
            fifth_bits(u32_at(b, 4), &mut q);
            Legacy {
                d: f16_at(b, 0),
                m: Some(f16_at(b, 2)),
                q,
            }
        }
        34 => {
            q.iter_mut()
                .zip(&b[2..34])
                .for_each(|(v, &byte)| *v = byte as i8);
            Legacy {
                d: f16_at(b, 0),
                m: None,
                q,
            }
        }
        n => unreachable!("no legacy block is {n} bytes"),
    }
}

fn legacy_block_bytes(t: QType) -> usize {
    super::blocks::block_shape(t).1
}

/// `sum_b (d_w * d_x) * sum_i q_i * y_i  (+ m * s for Q4_1/Q5_1)`, as ggml's `vec_dot_*_q8_0/1`.
fn dot_legacy(w: &[u8], x: &[BlockQ8], _: ()) -> f32 {
    let bb = w.len() / x.len();
    let mut sum = 0f32;
    for (b, y) in w.chunks_exact(bb).zip(x) {
        let blk = decode_legacy(b);
        let isum: i32 = blk
            .q
            .iter()
            .zip(&y.qs)
            .map(|(&q, &v)| q as i32 * v as i32)
            .sum();
        sum += (blk.d * y.d) * isum as f32;
        if let Some(m) = blk.m {
            sum += m * y.s;
        }
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// K-quants: 256-value super-blocks with 16 sub-blocks of 16 or 8 sub-blocks of 32.

/// A decoded K-quant super-block: value `i` is `(d * scale[g]) * q[i] - dmin * min[g]`, with
/// `g = i / sub`.
struct KBlock {
    d: f32,
    dmin: f32,
    q: [i8; QK_K],
    /// Sub-block length: 16 or 32.
    sub: usize,
    scale: [i32; 16],
    min: [i32; 16],
}

fn decode_k(b: &[u8]) -> KBlock {
    let mut k = KBlock {
        d: 0.0,
        dmin: 0.0,
        q: [0; QK_K],
        sub: 16,
        scale: [0; 16],
        min: [0; 16],
    };
    match b.len() {
        // Q2_K. Each 128-half reads 32 bytes of qs four times, 2 bits at a time (bits 0-1 give
        // values 0..32 of the half, bits 2-3 values 32..64, ...).
        84 => {
            let (scales, qs) = (&b[0..16], &b[16..80]);
            for i in 0..QK_K {
                let (half, j, l) = (i / 128, (i % 128) / 32, i % 32);
                k.q[i] = ((qs[32 * half + l] >> (2 * j)) & 3) as i8;
            }
            for (g, &s) in scales.iter().enumerate() {
                k.scale[g] = (s & 0xF) as i32;
                k.min[g] = (s >> 4) as i32;
            }
            k.d = f16_at(b, 80);
            k.dmin = f16_at(b, 82);
        }
        // Q3_K: the 2 low bits as in Q2_K, the 3rd bit in hmask[l] at bit (4 * half + j);
        // a clear bit subtracts 4.
        110 => {
            let (hmask, qs) = (&b[0..32], &b[32..96]);
            for i in 0..QK_K {
                let (half, j, l) = (i / 128, (i % 128) / 32, i % 32);
                let low = ((qs[32 * half + l] >> (2 * j)) & 3) as i8;
                let high = (hmask[l] >> (4 * half + j)) & 1;
                k.q[i] = low - if high == 1 { 0 } else { 4 };
            }
            for (s, v) in k.scale.iter_mut().zip(q3k_scales(&b[96..108])) {
                *s = v as i32;
            }
            k.d = f16_at(b, 108);
        }
        // Q4_K: each 64 values read 32 bytes of qs, low nibbles first, then high nibbles.
        144 => {
            let qs = &b[16..144];
            for i in 0..QK_K {
                let (chunk, hi, l) = (i / 64, (i % 64) / 32, i % 32);
                k.q[i] = ((qs[32 * chunk + l] >> (4 * hi)) & 0xF) as i8;
            }
            k.sub = 32;
            let (sc, mn) = q4k_scales_mins(&b[4..16]);
            for g in 0..8 {
                k.scale[g] = sc[g] as i32;
                k.min[g] = mn[g] as i32;
            }
            k.d = f16_at(b, 0);
            k.dmin = f16_at(b, 2);
        }
        // Q5_K: Q4_K's nibbles plus a 5th bit in qh[l] at bit (2 * chunk + hi).
        176 => {
            let (qh, qs) = (&b[16..48], &b[48..176]);
            for i in 0..QK_K {
                let (chunk, hi, l) = (i / 64, (i % 64) / 32, i % 32);
                let low = (qs[32 * chunk + l] >> (4 * hi)) & 0xF;
                let high = (qh[l] >> (2 * chunk + hi)) & 1;
                k.q[i] = (low | (high << 4)) as i8;
            }
            k.sub = 32;
            let (sc, mn) = q4k_scales_mins(&b[4..16]);
            for g in 0..8 {
                k.scale[g] = sc[g] as i32;
                k.min[g] = mn[g] as i32;
            }
            k.d = f16_at(b, 0);
            k.dmin = f16_at(b, 2);
        }
        // Q6_K: per 128-half, 4 nibble rows (ql[0..32] low, ql[32..64] low, ql[0..32] high,
        // ql[32..64] high) each topped with 2 bits of qh[0..32] (bits 0-1, 2-3, 4-5, 6-7); minus 32.
        210 => {
            let (ql, qh) = (&b[0..128], &b[128..192]);
            for i in 0..QK_K {
                let (half, j, l) = (i / 128, (i % 128) / 32, i % 32);
                let low = (ql[64 * half + 32 * (j % 2) + l] >> (4 * (j / 2))) & 0xF;
                let high = (qh[32 * half + l] >> (2 * j)) & 3;
                k.q[i] = (low | (high << 4)) as i8 - 32;
            }
            for g in 0..16 {
                k.scale[g] = b[192 + g] as i8 as i32;
            }
            k.d = f16_at(b, 208);
        }
        n => unreachable!("no K-quant block is {n} bytes"),
    }
    k
}

/// `sum_b (d_w * d_x) * sum_g scale_g * (q . y)_g  -  (dmin_w * d_x) * sum_g min_g * sum(y)_g`,
/// as ggml's `vec_dot_*_K_q8_K`; the activation sums come from Q8_K's `bsums`.
fn dot_k(w: &[u8], x: &[BlockQ8K], _: ()) -> f32 {
    let bb = w.len() / x.len();
    let mut sum = 0f32;
    for (b, y) in w.chunks_exact(bb).zip(x) {
        let k = decode_k(b);
        let (mut isum, mut imin) = (0i32, 0i32);
        for g in 0..QK_K / k.sub {
            let range = g * k.sub..(g + 1) * k.sub;
            let qy: i32 = k.q[range.clone()]
                .iter()
                .zip(&y.qs[range])
                .map(|(&q, &v)| q as i32 * v as i32)
                .sum();
            isum += k.scale[g] * qy;
            let ysum: i32 = y.bsums[g * k.sub / 16..(g + 1) * k.sub / 16]
                .iter()
                .map(|&s| s as i32)
                .sum();
            imin += k.min[g] * ysum;
        }
        sum += (k.d * y.d) * isum as f32 - (k.dmin * y.d) * imin as f32;
    }
    sum
}

// ---------------------------------------------------------------------------------------------
// IQ2 / IQ3: 256-value super-blocks of 8-value (IQ2) or 4-value (IQ3) groups, each an index into
// a grid of magnitudes (`iq_grids`), with one sign per value and a 4-bit scale per 16 or 32 values.

/// A decoded IQ super-block: value `i` is `(d * ls[i / 16] * factor) * q[i]`, where `q` is a grid
/// magnitude with its sign (|q| <= 62) and `ls = 2 * scale + 1`. `factor` is a power of two
/// (1/8 for IQ2, 1/4 for IQ3_XXS, 1 for IQ3_S), so this is ggml's `d * (0.5 + scale) * 0.25`
/// (and its IQ3 forms) to the bit.
struct IqBlock {
    d: f32,
    factor: f32,
    ls: [i32; 16],
    q: [i8; QK_K],
}

/// The byte `j` of a grid entry (value `j` of its group).
fn grid_byte(entry: u64, j: usize) -> i8 {
    (entry >> (8 * j)) as u8 as i8
}

/// Writes the 8 values of group `g` (values `8g..8g + 8`): magnitudes `mag(j)`, value `j` negated
/// where bit `j` of `signs` is set.
fn put_group(q: &mut [i8; QK_K], g: usize, signs: u8, mag: impl Fn(usize) -> i8) {
    for j in 0..8 {
        let m = mag(j);
        q[8 * g + j] = if signs >> j & 1 == 1 { -m } else { m };
    }
}

/// The type of an IQ block, recognized from its byte size (66, 74, 82, 98 or 110: 110 is also
/// Q3_K's, so the caller says which with `t`).
fn decode_iq(t: QType, b: &[u8]) -> IqBlock {
    let mut k = IqBlock {
        d: f16_at(b, 0),
        factor: 0.125,
        ls: [0; 16],
        q: [0; QK_K],
    };
    let nibble = |byte: u8, hi: usize| ((byte >> (4 * hi)) & 0xF) as i32 * 2 + 1;
    match t {
        // Per 32 values, two u32: four grid indices (a byte each), then four 7-bit sign indices
        // (bits 0..28) and the scale (bits 28..32).
        QType::IQ2XXS => {
            for ib in 0..8 {
                let (idx, aux) = (&b[2 + 8 * ib..6 + 8 * ib], u32_at(b, 6 + 8 * ib));
                k.ls[2 * ib] = (aux >> 28) as i32 * 2 + 1;
                k.ls[2 * ib + 1] = k.ls[2 * ib];
                for l in 0..4 {
                    let grid = IQ2XXS_GRID[idx[l] as usize];
                    let signs = KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127];
                    put_group(&mut k.q, 4 * ib + l, signs, |j| grid_byte(grid, j));
                }
            }
        }
        // Per group of 8, a u16: the grid index (9 bits) and a 7-bit sign index; per 32 values a
        // scale byte, its low nibble for the first 16, its high one for the next 16.
        QType::IQ2XS => {
            for g in 0..32 {
                let v = u16::from_le_bytes([b[2 + 2 * g], b[3 + 2 * g]]);
                let grid = IQ2XS_GRID[(v & 511) as usize];
                put_group(&mut k.q, g, KSIGNS_IQ2XS[(v >> 9) as usize], |j| {
                    grid_byte(grid, j)
                });
            }
            for (g, ls) in k.ls.iter_mut().enumerate() {
                *ls = nibble(b[66 + g / 2], g % 2);
            }
        }
        // Per group of 8: the grid index's low 8 bits in qs, its top 2 in qh (2 bits per group,
        // 4 groups per byte), and a sign byte; scales as IQ2_XS.
        QType::IQ2S => {
            let (qs, signs, qh) = (&b[2..34], &b[34..66], &b[66..74]);
            for g in 0..32 {
                let high = ((qh[g / 4] >> (2 * (g % 4))) & 3) as usize;
                let grid = IQ2S_GRID[qs[g] as usize | high << 8];
                put_group(&mut k.q, g, signs[g], |j| grid_byte(grid, j));
            }
            for (g, ls) in k.ls.iter_mut().enumerate() {
                *ls = nibble(b[74 + g / 2], g % 2);
            }
        }
        // Per group of 8, two grid indices (a byte each, 4 values each); per 32 values a u32 of
        // four 7-bit sign indices and the scale (bits 28..32), after all 64 index bytes.
        QType::IQ3XXS => {
            k.factor = 0.25;
            for ib in 0..8 {
                let aux = u32_at(b, 66 + 4 * ib);
                k.ls[2 * ib] = (aux >> 28) as i32 * 2 + 1;
                k.ls[2 * ib + 1] = k.ls[2 * ib];
                for l in 0..4 {
                    let g = 4 * ib + l;
                    let (lo, hi) = (
                        IQ3XXS_GRID[b[2 + 2 * g] as usize],
                        IQ3XXS_GRID[b[3 + 2 * g] as usize],
                    );
                    let signs = KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127];
                    put_group(&mut k.q, g, signs, |j| {
                        grid_byte((if j < 4 { lo } else { hi }) as u64, j % 4)
                    });
                }
            }
        }
        // Per group of 8, two 9-bit grid indices (low bytes in qs, the 9th bits in qh, two per
        // group) and a sign byte; a scale nibble per 32 values.
        QType::IQ3S => {
            k.factor = 1.0;
            let (qs, qh, signs) = (&b[2..66], &b[66..74], &b[74..106]);
            for g in 0..32 {
                let index = |h: usize| {
                    let ninth = (qh[g / 4] >> (2 * (g % 4) + h)) & 1;
                    qs[2 * g + h] as usize | (ninth as usize) << 8
                };
                let (lo, hi) = (IQ3S_GRID[index(0)], IQ3S_GRID[index(1)]);
                put_group(&mut k.q, g, signs[g], |j| {
                    grid_byte((if j < 4 { lo } else { hi }) as u64, j % 4)
                });
            }
            for (g, ls) in k.ls.iter_mut().enumerate() {
                *ls = nibble(b[106 + g / 4], (g / 2) % 2);
            }
        }
        _ => unreachable!("{t:?} is not an IQ type"),
    }
    k
}

/// The IQ type of a block of `bytes` bytes (the caller knows it is one).
fn iq_type(bytes: usize) -> QType {
    match bytes {
        66 => QType::IQ2XXS,
        74 => QType::IQ2XS,
        82 => QType::IQ2S,
        98 => QType::IQ3XXS,
        110 => QType::IQ3S,
        n => unreachable!("no IQ block is {n} bytes"),
    }
}

/// `factor * sum_b (d_w * d_x) * sum_g ls_g * (q . y)_g`, as ggml's `vec_dot_iq*_q8_K`.
fn dot_iq(w: &[u8], x: &[BlockQ8K], _: ()) -> f32 {
    let bb = w.len() / x.len();
    let t = iq_type(bb);
    let mut sum = 0f32;
    let mut factor = 1.0;
    for (b, y) in w.chunks_exact(bb).zip(x) {
        let k = decode_iq(t, b);
        let mut isum = 0i32;
        for g in 0..16 {
            let qy: i32 = k.q[16 * g..16 * g + 16]
                .iter()
                .zip(&y.qs[16 * g..16 * g + 16])
                .map(|(&q, &v)| q as i32 * v as i32)
                .sum();
            isum += k.ls[g] * qy;
        }
        sum += (k.d * y.d) * isum as f32;
        factor = k.factor;
    }
    factor * sum
}

// ---------------------------------------------------------------------------------------------
// Dequantization.

/// Dequantizes `out.len()` values of `t` from `row`.
pub fn dequantize(t: QType, row: &[u8], out: &mut [f32]) {
    let n = out.len();
    match vec_dot_type(t) {
        VecDotType::F32 => {
            let at = match t {
                QType::F32 => f32_elem,
                QType::F16 => f16_elem,
                _ => bf16_elem,
            };
            out.iter_mut()
                .enumerate()
                .for_each(|(i, o)| *o = at(row, i));
        }
        VecDotType::Q8 => {
            let bb = legacy_block_bytes(t);
            assert!(n % QK == 0 && row.len() >= n / QK * bb);
            for (b, o) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK)) {
                let blk = decode_legacy(b);
                for (v, &q) in o.iter_mut().zip(&blk.q) {
                    *v = match blk.m {
                        Some(m) => q as f32 * blk.d + m,
                        None => q as f32 * blk.d,
                    };
                }
            }
        }
        VecDotType::Q8K
            if matches!(
                t,
                QType::IQ2XXS | QType::IQ2XS | QType::IQ2S | QType::IQ3XXS | QType::IQ3S
            ) =>
        {
            let bb = legacy_block_bytes(t);
            assert!(n % QK_K == 0 && row.len() >= n / QK_K * bb);
            for (b, o) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK_K)) {
                let k = decode_iq(t, b);
                for (i, v) in o.iter_mut().enumerate() {
                    *v = (k.d * k.ls[i / 16] as f32 * k.factor) * k.q[i] as f32;
                }
            }
        }
        VecDotType::Q8K => {
            let bb = legacy_block_bytes(t);
            assert!(n % QK_K == 0 && row.len() >= n / QK_K * bb);
            for (b, o) in row.chunks_exact(bb).zip(out.chunks_exact_mut(QK_K)) {
                let k = decode_k(b);
                for (i, v) in o.iter_mut().enumerate() {
                    let g = i / k.sub;
                    let scaled = (k.d * k.scale[g] as f32) * k.q[i] as f32;
                    *v = if matches!(t, QType::Q3K | QType::Q6K) {
                        scaled
                    } else {
                        scaled - k.dmin * k.min[g] as f32
                    };
                }
            }
        }
    }
}
