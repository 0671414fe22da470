//! wasm32 SIMD128 kernels, compiled in when the module is built with `+simd128` (a wasm module
//! has no run-time feature detection: it validates with SIMD or it does not load at all).
//!
//! Baseline SIMD128 has no 8-bit multiply, so all integer work is 16-bit. Weights are unpacked
//! straight into i16 lanes (`v128.load8x8_u` zero-extends 8 bytes into 8 lanes; nibbles and high
//! bits are then masked and shifted there), activations are loaded sign-extended the same way
//! (`v128.load8x8_s`), and `i16x8.mul` products are summed in i16 while that provably cannot
//! overflow. `i32x4.dot_i16x8_s` then widens them to i32, against ones or against a K-quant
//! sub-block's scale, which it applies for free. A block's i32 sums are scaled into f32 lanes
//! once per block and token. (On ARM `i16x8.mul` is one instruction and `dot` three; on x86 both
//! are one, `pmullw` and `pmaddwd`.)
//!
//! Overflow bounds: activations are at most 127 in magnitude (our quantizers never emit -128).
//! Summed in i16: 4 products of Q4/Q5 weights (|w| <= 31: 4 * 31 * 127 = 15748), 2 of Q6_K
//! (63: 16002), 8 of the prefill kernels' Q4/Q5 (8 * 31 * 127 = 31496 < 32767); Q8_0 products
//! (up to 16256) are widened one by one.
//!
//! Two kernel shapes, as in `avx2`:
//! - row functions over `R` weight rows and `T <= 4` tokens: the activations of a block are
//!   loaded once for all `R` rows and the weights unpacked once for all `T` tokens. Decode runs
//!   `R = 2` (two independent accumulation chains, half the activation loads);
//! - eight-token prefill functions (`row8_*`) against [`BlockQ8x8`] / [`BlockQ8Kx8`]: a weight
//!   block is unpacked once into an i16 buffer, each group of four values is broadcast
//!   (`v128.load64_splat`) and multiplied with two tokens' four activations per vector, so the
//!   unpacking and the per-block scaling are shared by eight tokens.

// Token and row loops index several per-token arrays at once.
#![allow(clippy::needless_range_loop)]

use core::arch::wasm32::*;

use super::blocks::{q3k_scales, q4k_scales_mins, BlockQ8, BlockQ8K, BlockQ8Kx8, BlockQ8x8, QK_K};
use super::{Kernel, TOKENS_PER_TILE};
use crate::gguf::QType;

/// The SIMD128 kernel for `t` (every weight type has one).
pub(crate) fn kernel(t: QType) -> Option<Kernel> {
    use QType::*;
    Some(match t {
        F32 => Kernel::F32(tile_f32),
        F16 => Kernel::F32(tile_f16),
        BF16 => Kernel::F32(tile_bf16),
        Q4_0 => Kernel::Q8(tile_q4_0, Some(tile8_q4_0)),
        Q4_1 => Kernel::Q8(tile_q4_1, Some(tile8_q4_1)),
        Q5_0 => Kernel::Q8(tile_q5_0, Some(tile8_q5_0)),
        Q5_1 => Kernel::Q8(tile_q5_1, Some(tile8_q5_1)),
        Q8_0 => Kernel::Q8(tile_q8_0, Some(tile8_q8_0)),
        Q2K => Kernel::Q8K(tile_q2_k, Some(tile8_q2_k)),
        Q3K => Kernel::Q8K(tile_q3_k, Some(tile8_q3_k)),
        Q4K => Kernel::Q8K(tile_q4_k, Some(tile8_q4_k)),
        Q5K => Kernel::Q8K(tile_q5_k, Some(tile8_q5_k)),
        Q6K => Kernel::Q8K(tile_q6_k, Some(tile8_q6_k)),
        Q8_1 | Q8K => return None,
    })
}

/// Weight rows a decode pass (one token) dots at once.
const DECODE_ROWS: usize = 2;

/// Defines `Tile` functions from row functions
/// `row::<R, T>(rows, row_bytes, x, x_stride) -> [[f32; T]; R]`, given the weight bytes that go
/// with one activation element (one f32, or one Q8/Q8_K block).
macro_rules! tiles {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr;)*) => {$(
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], xs: usize, nt: usize, out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!((1..=TOKENS_PER_TILE).contains(&nt) && out.len() >= nt * nrows);
            // The row functions read x[t * xs..][..rb / bytes_per_act] through raw pointers.
            assert!(rb % $bytes_per_act == 0 && x.len() >= (nt - 1) * xs + rb / $bytes_per_act);
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            let mut r = 0;
            if nt == 1 {
                while r + DECODE_ROWS <= nrows {
                    let rows = core::array::from_fn(|i| wp.add((r + i) * rb));
                    let v = $row::<DECODE_ROWS, 1>(rows, rb, xp, xs);
                    for i in 0..DECODE_ROWS {
                        out[r + i] = v[i][0];
                    }
                    r += DECODE_ROWS;
                }
            }
            while r < nrows {
                let p = [wp.add(r * rb)];
                match nt {
                    1 => store(out, nrows, r, $row::<1, 1>(p, rb, xp, xs)[0]),
                    2 => store(out, nrows, r, $row::<1, 2>(p, rb, xp, xs)[0]),
                    3 => store(out, nrows, r, $row::<1, 3>(p, rb, xp, xs)[0]),
                    _ => store(out, nrows, r, $row::<1, 4>(p, rb, xp, xs)[0]),
                }
                r += 1;
            }
        }
    )*};
}

tiles! {
    tile_f32 => row_f32, f32, 4;
    tile_f16 => row_f16, f32, 2;
    tile_bf16 => row_bf16, f32, 2;
    tile_q4_0 => row_q4_0, BlockQ8, 18;
    tile_q4_1 => row_q4_1, BlockQ8, 20;
    tile_q5_0 => row_q5_0, BlockQ8, 22;
    tile_q5_1 => row_q5_1, BlockQ8, 24;
    tile_q8_0 => row_q8_0, BlockQ8, 34;
    tile_q2_k => row_q2_k, BlockQ8K, 84;
    tile_q3_k => row_q3_k, BlockQ8K, 110;
    tile_q4_k => row_q4_k, BlockQ8K, 144;
    tile_q5_k => row_q5_k, BlockQ8K, 176;
    tile_q6_k => row_q6_k, BlockQ8K, 210;
}

#[inline(always)]
fn store<const T: usize>(out: &mut [f32], nrows: usize, r: usize, v: [f32; T]) {
    for (t, v) in v.into_iter().enumerate() {
        out[t * nrows + r] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

const ZERO: v128 = i32x4(0, 0, 0, 0);

#[inline(always)]
fn hsum(v: v128) -> f32 {
    let s = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let s = f32x4_add(s, i32x4_shuffle::<1, 0, 3, 2>(s, s));
    f32x4_extract_lane::<0>(s)
}

/// f16 bits to f32, exactly (subnormals, infinities, NaN), in integer operations and one
/// int-to-float conversion: no denormal f32 is ever an operand (x86 would take a slow assist).
#[inline(always)]
fn f16_to_f32(bits: u16) -> f32 {
    let h = bits as u32;
    let m = h & 0x7fff;
    let v = if m < 0x400 {
        // Zero or subnormal: m * 2^-24.
        (m as f32 * (1.0 / 16_777_216.0)).to_bits()
    } else if m >= 0x7c00 {
        (m << 13) | 0x7f80_0000
    } else {
        (m << 13) + (112 << 23)
    };
    f32::from_bits(v | ((h & 0x8000) << 16))
}

/// The little-endian f16 at `p`, as f32.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    f16_to_f32(u16::from_le_bytes([*p, *p.add(1)]))
}

/// Four f16 (the low halves of four u32 lanes) to f32, as [`f16_to_f32`].
#[inline(always)]
fn f16x4_to_f32(h: v128) -> v128 {
    let m = v128_and(h, u32x4_splat(0x7fff));
    let shifted = i32x4_shl(m, 13);
    let normal = i32x4_add(shifted, u32x4_splat(112 << 23));
    let sub = f32x4_mul(f32x4_convert_i32x4(m), f32x4_splat(1.0 / 16_777_216.0));
    let inf = v128_or(shifted, u32x4_splat(0x7f80_0000));
    let v = v128_bitselect(inf, normal, u32x4_ge(m, u32x4_splat(0x7c00)));
    let v = v128_bitselect(sub, v, u32x4_lt(m, u32x4_splat(0x400)));
    v128_or(v, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// Eight bytes at `p`, zero-extended into i16 lanes.
#[inline(always)]
unsafe fn u8x8(p: *const u8) -> v128 {
    u16x8_load_extend_u8x8(p)
}

/// Eight signed bytes at `p`, sign-extended into i16 lanes.
#[inline(always)]
unsafe fn i8x8(p: *const i8) -> v128 {
    i16x8_load_extend_i8x8(p)
}

/// 16 nibble bytes at `p` as 32 values in i16 lanes, in value order: the low nibbles (values
/// 0..16), then the high nibbles (16..32).
#[inline(always)]
unsafe fn nibbles(p: *const u8) -> [v128; 4] {
    let lo = u8x8(p);
    let hi = u8x8(p.add(8));
    let m = i16x8_splat(0xF);
    [v128_and(lo, m), v128_and(hi, m), u16x8_shr(lo, 4), u16x8_shr(hi, 4)]
}

/// Per value `j` of 32: all ones in its i16 lane where bit `j` of `qh` is set, else zero
/// (vector `k` holds values `8k..8k + 8`). The multiply moves bit `j` to the sign bit.
#[inline(always)]
fn bit_masks(qh: u32) -> [v128; 4] {
    const TO_SIGN_LO: v128 = i16x8(i16::MIN, 1 << 14, 1 << 13, 1 << 12, 1 << 11, 1 << 10, 1 << 9, 1 << 8);
    const TO_SIGN_HI: v128 = i16x8(1 << 7, 1 << 6, 1 << 5, 1 << 4, 1 << 3, 1 << 2, 1 << 1, 1);
    let a = i16x8_splat(qh as i16);
    let b = i16x8_splat((qh >> 16) as i16);
    [
        i16x8_shr(i16x8_mul(a, TO_SIGN_LO), 15),
        i16x8_shr(i16x8_mul(a, TO_SIGN_HI), 15),
        i16x8_shr(i16x8_mul(b, TO_SIGN_LO), 15),
        i16x8_shr(i16x8_mul(b, TO_SIGN_HI), 15),
    ]
}

/// Sum of `q[k] * a[k]` over 32 values: four i32 lanes. `WIDE` widens each product pair with
/// `dot` (needed for Q8_0), else the products are summed in i16 first.
#[inline(always)]
fn dot32(q: &[v128; 4], a: &[v128; 4], wide: bool) -> v128 {
    if wide {
        i32x4_add(
            i32x4_add(i32x4_dot_i16x8(q[0], a[0]), i32x4_dot_i16x8(q[1], a[1])),
            i32x4_add(i32x4_dot_i16x8(q[2], a[2]), i32x4_dot_i16x8(q[3], a[3])),
        )
    } else {
        i32x4_extadd_pairwise_i16x8(i16x8_add(
            i16x8_add(i16x8_mul(q[0], a[0]), i16x8_mul(q[1], a[1])),
            i16x8_add(i16x8_mul(q[2], a[2]), i16x8_mul(q[3], a[3])),
        ))
    }
}

/// `sum q[k] * a[k]` over two vectors (16 values), in i16: the caller bounds it.
#[inline(always)]
fn mul2(q0: v128, a0: v128, q1: v128, a1: v128) -> v128 {
    i16x8_add(i16x8_mul(q0, a0), i16x8_mul(q1, a1))
}

/// Four activation vectors (32 values from `p`) sign-extended to i16.
#[inline(always)]
unsafe fn act32(p: *const i8) -> [v128; 4] {
    [i8x8(p), i8x8(p.add(8)), i8x8(p.add(16)), i8x8(p.add(24))]
}

// ---------------------------------------------------------------------------------------------
// Float weights.

/// How a float weight type is read: four values at a time, or one.
trait FloatWeights {
    const SIZE: usize;
    unsafe fn load4(p: *const u8) -> v128;
    unsafe fn load1(p: *const u8) -> f32;
}

struct F32W;
impl FloatWeights for F32W {
    const SIZE: usize = 4;
    #[inline(always)]
    unsafe fn load4(p: *const u8) -> v128 {
        v128_load(p as *const v128)
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        f32::from_le_bytes([*p, *p.add(1), *p.add(2), *p.add(3)])
    }
}

struct F16W;
impl FloatWeights for F16W {
    const SIZE: usize = 2;
    #[inline(always)]
    unsafe fn load4(p: *const u8) -> v128 {
        f16x4_to_f32(u32x4_load_extend_u16x4(p as *const u16))
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        f16_at(p)
    }
}

struct BF16W;
impl FloatWeights for BF16W {
    const SIZE: usize = 2;
    #[inline(always)]
    unsafe fn load4(p: *const u8) -> v128 {
        i32x4_shl(u32x4_load_extend_u16x4(p as *const u16), 16)
    }
    #[inline(always)]
    unsafe fn load1(p: *const u8) -> f32 {
        f32::from_bits((u16::from_le_bytes([*p, *p.add(1)]) as u32) << 16)
    }
}

/// Float rows: eight columns per step in two accumulators per row and token (an f32 add's
/// latency is longer than a step).
#[inline(always)]
unsafe fn float_rows<F: FloatWeights, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
) -> [[f32; T]; R] {
    let cols = rb / F::SIZE;
    let mut acc = [[[f32x4_splat(0.0); 2]; T]; R];
    let mut i = 0;
    while i + 8 <= cols {
        for u in 0..2 {
            let mut xv = [ZERO; T];
            for t in 0..T {
                xv[t] = v128_load(x.add(t * xs + i + 4 * u) as *const v128);
            }
            for r in 0..R {
                let wv = F::load4(w[r].add((i + 4 * u) * F::SIZE));
                for t in 0..T {
                    acc[r][t][u] = f32x4_add(acc[r][t][u], f32x4_mul(wv, xv[t]));
                }
            }
        }
        i += 8;
    }
    let mut out = [[0f32; T]; R];
    for r in 0..R {
        for t in 0..T {
            let mut s = hsum(f32x4_add(acc[r][t][0], acc[r][t][1]));
            for j in i..cols {
                s += F::load1(w[r].add(j * F::SIZE)) * *x.add(t * xs + j);
            }
            out[r][t] = s;
        }
    }
    out
}

unsafe fn row_f32<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
) -> [[f32; T]; R] {
    float_rows::<F32W, R, T>(w, rb, x, xs)
}

unsafe fn row_f16<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
) -> [[f32; T]; R] {
    float_rows::<F16W, R, T>(w, rb, x, xs)
}

unsafe fn row_bf16<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
) -> [[f32; T]; R] {
    float_rows::<BF16W, R, T>(w, rb, x, xs)
}

// ---------------------------------------------------------------------------------------------
// Legacy 32-value blocks against Q8_0 / Q8_1 activations.

/// A legacy block type: its size, how its 32 values unpack into i16 lanes (true signed values for
/// the symmetric types, the unsigned `q` of `q * d + m` for Q4_1/Q5_1), and its scales.
trait Legacy {
    const BYTES: usize;
    /// Q4_1/Q5_1: value = `q * d + m`; `m * s` (Q8_1's block sum) is added per block.
    const MIN: bool;
    /// Products too large to sum four in i16 (Q8_0): widen each pair with `dot`.
    const WIDE: bool;
    unsafe fn unpack(p: *const u8) -> [v128; 4];
    /// `(d, m)`, `m = 0` for the symmetric types.
    unsafe fn scales(p: *const u8) -> (f32, f32);
}

/// Q4_0: d, 16 nibble bytes; value = nibble - 8.
struct Q40;
impl Legacy for Q40 {
    const BYTES: usize = 18;
    const MIN: bool = false;
    const WIDE: bool = false;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        nibbles(p.add(2)).map(|v| i16x8_sub(v, i16x8_splat(8)))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), 0.0)
    }
}

/// Q4_1: d, m, 16 nibble bytes; value = nibble * d + m.
struct Q41;
impl Legacy for Q41 {
    const BYTES: usize = 20;
    const MIN: bool = true;
    const WIDE: bool = false;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        nibbles(p.add(4))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), f16_at(p.add(2)))
    }
}

/// Q5_0: d, qh (5th bit of value j in bit j), 16 nibble bytes; value = (nibble | bit << 4) - 16,
/// i.e. the nibble, minus 16 where the bit is clear.
struct Q50;
impl Legacy for Q50 {
    const BYTES: usize = 22;
    const MIN: bool = false;
    const WIDE: bool = false;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        let n = nibbles(p.add(6));
        let b = bit_masks(u32::from_le_bytes([*p.add(2), *p.add(3), *p.add(4), *p.add(5)]));
        core::array::from_fn(|k| i16x8_add(n[k], v128_andnot(i16x8_splat(-16), b[k])))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), 0.0)
    }
}

/// Q5_1: d, m, qh, 16 nibble bytes; value = (nibble | bit << 4) * d + m.
struct Q51;
impl Legacy for Q51 {
    const BYTES: usize = 24;
    const MIN: bool = true;
    const WIDE: bool = false;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        let n = nibbles(p.add(8));
        let b = bit_masks(u32::from_le_bytes([*p.add(4), *p.add(5), *p.add(6), *p.add(7)]));
        core::array::from_fn(|k| v128_or(n[k], v128_and(b[k], i16x8_splat(16))))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), f16_at(p.add(2)))
    }
}

/// Q8_0: d, 32 signed bytes.
struct Q80;
impl Legacy for Q80 {
    const BYTES: usize = 34;
    const MIN: bool = false;
    const WIDE: bool = true;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        act32(p.add(2) as *const i8)
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), 0.0)
    }
}

/// `R` legacy rows against `T` tokens: per block, the activations are loaded once for all rows,
/// each row's weights unpacked once for all tokens.
#[inline(always)]
unsafe fn legacy_rows<L: Legacy, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8,
    xs: usize,
) -> [[f32; T]; R] {
    let nb = rb / L::BYTES;
    let mut acc = [[f32x4_splat(0.0); T]; R];
    let mut off = [[0f32; T]; R];
    for b in 0..nb {
        let mut a = [[ZERO; 4]; T];
        for t in 0..T {
            a[t] = act32((*x.add(t * xs + b)).qs.as_ptr());
        }
        for r in 0..R {
            let p = w[r].add(b * L::BYTES);
            let q = L::unpack(p);
            let (d, m) = L::scales(p);
            for t in 0..T {
                let y = &*x.add(t * xs + b);
                let s = f32x4_convert_i32x4(dot32(&q, &a[t], L::WIDE));
                acc[r][t] = f32x4_add(acc[r][t], f32x4_mul(s, f32x4_splat(d * y.d)));
                if L::MIN {
                    off[r][t] += m * y.s;
                }
            }
        }
    }
    let mut out = [[0f32; T]; R];
    for r in 0..R {
        for t in 0..T {
            out[r][t] = hsum(acc[r][t]) + off[r][t];
        }
    }
    out
}

macro_rules! legacy_row_fns {
    ($($name:ident => $ty:ty;)*) => {$(
        unsafe fn $name<const R: usize, const T: usize>(
            w: [*const u8; R],
            rb: usize,
            x: *const BlockQ8,
            xs: usize,
        ) -> [[f32; T]; R] {
            legacy_rows::<$ty, R, T>(w, rb, x, xs)
        }
    )*};
}

legacy_row_fns! {
    row_q4_0 => Q40;
    row_q4_1 => Q41;
    row_q5_0 => Q50;
    row_q5_1 => Q51;
    row_q8_0 => Q80;
}

// ---------------------------------------------------------------------------------------------
// K-quants against Q8_K activations. Per super-block and token, integer sums of
// `scale * (q . y)` stay in i32 lanes and are scaled once by `d * y.d`; min terms (Q2_K, Q4_K,
// Q5_K) and the offsets of unsigned storage (Q3_K: -4, Q6_K: -32) come from the activations'
// 16-value sums `bsums`, exactly in integers.
//
// Each type has a `*_group(p, g)` that unpacks 32-value group `g` of a super-block into four
// i16 vectors; the decode rows and the prefill unpacking share it.

/// Q2_K (84 bytes): scales[16] (scale | min << 4), qs[64], d, dmin. Group g = 4 * half + j is
/// bits 2j..2j+2 of qs[32 * half..][..32].
#[inline(always)]
unsafe fn q2k_group(p: *const u8, g: usize) -> [v128; 4] {
    let (half, j) = (g / 4, g % 4);
    let qs = p.add(16 + 32 * half);
    core::array::from_fn(|k| v128_and(u16x8_shr(u8x8(qs.add(8 * k)), 2 * j as u32), i16x8_splat(3)))
}

/// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Q2_K's two bits plus a third, bit g of
/// hmask[l]; unsigned (0..8), the -4 applied through `bsums`.
#[inline(always)]
unsafe fn q3k_group(p: *const u8, g: usize) -> [v128; 4] {
    let (half, j) = (g / 4, g % 4);
    let qs = p.add(32 + 32 * half);
    core::array::from_fn(|k| {
        let low = v128_and(u16x8_shr(u8x8(qs.add(8 * k)), 2 * j as u32), i16x8_splat(3));
        let high = u16x8_shr(i16x8_shl(u8x8(p.add(8 * k)), 2), g as u32);
        v128_or(low, v128_and(high, i16x8_splat(4)))
    })
}

/// Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Group g is qs[32 * (g / 2)..][..32], low
/// nibbles for even g, high for odd.
#[inline(always)]
unsafe fn q4k_group(p: *const u8, g: usize) -> [v128; 4] {
    let qs = p.add(16 + 32 * (g / 2));
    core::array::from_fn(|k| {
        let v = u8x8(qs.add(8 * k));
        if g % 2 == 0 {
            v128_and(v, i16x8_splat(0xF))
        } else {
            u16x8_shr(v, 4)
        }
    })
}

/// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. Q4_K's nibbles plus a 5th bit, bit g
/// of qh[l].
#[inline(always)]
unsafe fn q5k_group(p: *const u8, g: usize) -> [v128; 4] {
    let qs = p.add(48 + 32 * (g / 2));
    core::array::from_fn(|k| {
        let v = u8x8(qs.add(8 * k));
        let low = if g % 2 == 0 {
            v128_and(v, i16x8_splat(0xF))
        } else {
            u16x8_shr(v, 4)
        };
        let high = u16x8_shr(i16x8_shl(u8x8(p.add(16 + 8 * k)), 4), g as u32);
        v128_or(low, v128_and(high, i16x8_splat(0x10)))
    })
}

/// Q6_K (210 bytes): ql[128], qh[64], scales[16] (i8), d. Group g = 4 * half + j: nibble j / 2 of
/// ql[64 * half + 32 * (j % 2)..][..32], topped with bits 2j..2j+2 of qh[32 * half..][..32];
/// unsigned (0..64), the -32 applied through `bsums` (or at unpacking, for prefill).
#[inline(always)]
unsafe fn q6k_group(p: *const u8, g: usize) -> [v128; 4] {
    let (half, j) = (g / 4, g % 4);
    let ql = p.add(64 * half + 32 * (j % 2));
    let qh = p.add(128 + 32 * half);
    core::array::from_fn(|k| {
        let l = u8x8(ql.add(8 * k));
        let low = if j < 2 {
            v128_and(l, i16x8_splat(0xF))
        } else {
            u16x8_shr(l, 4)
        };
        // Bits 2j..2j+2 of qh to bits 4..6.
        let h = i16x8_shl(u8x8(qh.add(8 * k)), 4);
        let high = v128_and(u16x8_shr(h, 2 * j as u32), i16x8_splat(0x30));
        v128_or(low, high)
    })
}

/// The per-super-block scalars and sums shared by the K-quant row functions: `(d, dmin)`, the
/// sub-block scales as i16 (16 of 16 values, or 8 of 32), and per 16-value group the factor of its
/// activation sum in two i16x8 vectors (`None` when there is no such term).
struct KHead {
    d: f32,
    dmin: f32,
    scale: [i16; 16],
    /// Factors of `bsums`: subtracted as `dmin * y.d * sum_g f_g * bsum_g`.
    group_f: Option<[v128; 2]>,
}

/// `R` K-quant rows against `T` tokens. `SUB` is the sub-block length (16 or 32); `head(p)`
/// decodes a super-block's scalars, `group(p, g)` its 32-value group `g`. With `SUB = 16` the
/// two halves of a group have their own scales.
#[inline(always)]
unsafe fn k_rows<const R: usize, const T: usize, const SUB: usize>(
    w: [*const u8; R],
    rb: usize,
    bytes: usize,
    x: *const BlockQ8K,
    xs: usize,
    head: impl Fn(*const u8) -> KHead,
    group: impl Fn(*const u8, usize) -> [v128; 4],
) -> [[f32; T]; R] {
    let nb = rb / bytes;
    let mut acc = [[f32x4_splat(0.0); T]; R];
    for b in 0..nb {
        let p: [*const u8; R] = core::array::from_fn(|r| w[r].add(b * bytes));
        let h: [KHead; R] = core::array::from_fn(|r| head(p[r]));
        let mut isum = [[ZERO; T]; R];
        for g in 0..8 {
            let q: [[v128; 4]; R] = core::array::from_fn(|r| group(p[r], g));
            for t in 0..T {
                let a = act32((*x.add(t * xs + b)).qs.as_ptr().add(32 * g));
                for r in 0..R {
                    let q = &q[r];
                    let s = if SUB == 32 {
                        let s16 = i16x8_add(mul2(q[0], a[0], q[1], a[1]), mul2(q[2], a[2], q[3], a[3]));
                        i32x4_dot_i16x8(s16, i16x8_splat(h[r].scale[g]))
                    } else {
                        i32x4_add(
                            i32x4_dot_i16x8(
                                mul2(q[0], a[0], q[1], a[1]),
                                i16x8_splat(h[r].scale[2 * g]),
                            ),
                            i32x4_dot_i16x8(
                                mul2(q[2], a[2], q[3], a[3]),
                                i16x8_splat(h[r].scale[2 * g + 1]),
                            ),
                        )
                    };
                    isum[r][t] = i32x4_add(isum[r][t], s);
                }
            }
        }
        for t in 0..T {
            let y = &*x.add(t * xs + b);
            let bs = y.bsums.as_ptr() as *const v128;
            let (bs0, bs1) = (v128_load(bs), v128_load(bs.add(1)));
            for r in 0..R {
                let s = f32x4_convert_i32x4(isum[r][t]);
                acc[r][t] = f32x4_add(acc[r][t], f32x4_mul(s, f32x4_splat(h[r].d * y.d)));
                if let Some(f) = h[r].group_f {
                    let m = i32x4_add(i32x4_dot_i16x8(bs0, f[0]), i32x4_dot_i16x8(bs1, f[1]));
                    let m = f32x4_convert_i32x4(m);
                    acc[r][t] = f32x4_sub(acc[r][t], f32x4_mul(m, f32x4_splat(h[r].dmin * y.d)));
                }
            }
        }
    }
    let mut out = [[0f32; T]; R];
    for r in 0..R {
        for t in 0..T {
            out[r][t] = hsum(acc[r][t]);
        }
    }
    out
}

/// Q2_K: 16 scales and mins in the low and high nibbles of the first 16 bytes.
#[inline(always)]
unsafe fn q2k_head(p: *const u8) -> KHead {
    let mut scale = [0i16; 16];
    for g in 0..16 {
        scale[g] = (*p.add(g) & 0xF) as i16;
    }
    KHead {
        d: f16_at(p.add(80)),
        dmin: f16_at(p.add(82)),
        scale,
        group_f: Some([u16x8_shr(u8x8(p), 4), u16x8_shr(u8x8(p.add(8)), 4)]),
    }
}

/// Q3_K: 16 signed 6-bit scales; the -4 offset as `d * 4 * scale` per group sum.
#[inline(always)]
unsafe fn q3k_head(p: *const u8) -> KHead {
    let sc = q3k_scales(core::slice::from_raw_parts(p.add(96), 12));
    let d = f16_at(p.add(108));
    KHead {
        d,
        dmin: 4.0 * d,
        scale: sc.map(|s| s as i16),
        group_f: Some([i8x8(sc.as_ptr()), i8x8(sc.as_ptr().add(8))]),
    }
}

/// Q4_K / Q5_K: 8 scales and 8 mins of 6 bits; each min covers two 16-value groups.
#[inline(always)]
unsafe fn q45k_head(p: *const u8) -> KHead {
    let (sc, mn) = q4k_scales_mins(core::slice::from_raw_parts(p.add(4), 12));
    let mut scale = [0i16; 16];
    for g in 0..8 {
        scale[g] = sc[g] as i16;
    }
    let m = u8x8(mn.as_ptr());
    KHead {
        d: f16_at(p),
        dmin: f16_at(p.add(2)),
        scale,
        group_f: Some([
            i16x8_shuffle::<0, 0, 1, 1, 2, 2, 3, 3>(m, m),
            i16x8_shuffle::<4, 4, 5, 5, 6, 6, 7, 7>(m, m),
        ]),
    }
}

/// Q6_K: 16 signed 8-bit scales; the -32 offset as `d * 32 * scale` per group sum.
#[inline(always)]
unsafe fn q6k_head(p: *const u8) -> KHead {
    let mut scale = [0i16; 16];
    for g in 0..16 {
        scale[g] = *p.add(192 + g) as i8 as i16;
    }
    let d = f16_at(p.add(208));
    KHead {
        d,
        dmin: 32.0 * d,
        scale,
        group_f: Some([
            i8x8(p.add(192) as *const i8),
            i8x8(p.add(200) as *const i8),
        ]),
    }
}

unsafe fn row_q2_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
) -> [[f32; T]; R] {
    k_rows::<R, T, 16>(w, rb, 84, x, xs, |p| q2k_head(p), |p, g| q2k_group(p, g))
}

unsafe fn row_q3_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
) -> [[f32; T]; R] {
    k_rows::<R, T, 16>(w, rb, 110, x, xs, |p| q3k_head(p), |p, g| q3k_group(p, g))
}

unsafe fn row_q4_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
) -> [[f32; T]; R] {
    k_rows::<R, T, 32>(w, rb, 144, x, xs, |p| q45k_head(p), |p, g| q4k_group(p, g))
}

unsafe fn row_q5_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
) -> [[f32; T]; R] {
    k_rows::<R, T, 32>(w, rb, 176, x, xs, |p| q45k_head(p), |p, g| q5k_group(p, g))
}

unsafe fn row_q6_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
) -> [[f32; T]; R] {
    k_rows::<R, T, 16>(w, rb, 210, x, xs, |p| q6k_head(p), |p, g| q6k_group(p, g))
}

// ---------------------------------------------------------------------------------------------
// Prefill: one weight row against eight interleaved tokens.
//
// A weight block is unpacked once into an i16 buffer in value order (true signed values, except
// Q4_1/Q5_1's `q` and the K-quant types with mins, whose min terms come from activation sums).
// Step k broadcasts weight values 4k..4k+4 to both halves of a vector and multiplies it with
// `x.qs[k]` sign-extended, two tokens per vector: lanes `[t: 4 values, t + 1: 4 values]`. The
// products are summed in i16 over a block or sub-block (bounds in the header), then widened with
// `dot` (by ones or by the sub-block scale) into i32 lanes holding pair sums of two tokens, which
// `pair_sums` folds into one lane per token.

/// Defines `Tile8` functions from `row8(row, x) -> [v128; 2]` (tokens 0..4 and 4..8).
macro_rules! tiles8 {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr;)*) => {$(
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!(out.len() >= 8 * nrows && rb % $bytes_per_act == 0 && x.len() >= rb / $bytes_per_act);
            for (r, row) in w.chunks_exact(rb).enumerate() {
                let v = $row(row, x);
                let mut o = [0f32; 8];
                v128_store(o.as_mut_ptr() as *mut v128, v[0]);
                v128_store(o.as_mut_ptr().add(4) as *mut v128, v[1]);
                for (t, o) in o.into_iter().enumerate() {
                    out[t * nrows + r] = o;
                }
            }
        }
    )*};
}

tiles8! {
    tile8_q4_0 => row8_q4_0, BlockQ8x8, 18;
    tile8_q4_1 => row8_q4_1, BlockQ8x8, 20;
    tile8_q5_0 => row8_q5_0, BlockQ8x8, 22;
    tile8_q5_1 => row8_q5_1, BlockQ8x8, 24;
    tile8_q8_0 => row8_q8_0, BlockQ8x8, 34;
    tile8_q2_k => row8_q2_k, BlockQ8Kx8, 84;
    tile8_q3_k => row8_q3_k, BlockQ8Kx8, 110;
    tile8_q4_k => row8_q4_k, BlockQ8Kx8, 144;
    tile8_q5_k => row8_q5_k, BlockQ8Kx8, 176;
    tile8_q6_k => row8_q6_k, BlockQ8Kx8, 210;
}

/// Unpacked weights, aligned for the vector stores.
#[repr(C, align(16))]
struct Unpacked<const N: usize>([i16; N]);

/// From lanes `[t: a, b, t + 1: c, d]` of two vectors (tokens t..t + 4), one lane per token.
#[inline(always)]
fn pair_sums(a: v128, b: v128) -> v128 {
    i32x4_add(
        i32x4_shuffle::<0, 2, 4, 6>(a, b),
        i32x4_shuffle::<1, 3, 5, 7>(a, b),
    )
}

/// Weight values `4k..4k + 4` (i16) in both halves of a vector.
#[inline(always)]
unsafe fn bcast4(q: *const i16, k: usize) -> v128 {
    v128_load64_splat(q.add(4 * k) as *const u64)
}

/// `sum_{k in ks}` of broadcast weights times the eight tokens' activations, in i16: four
/// vectors, tokens (0, 1), (2, 3), (4, 5), (6, 7). The caller bounds the range.
#[inline(always)]
unsafe fn steps_i16(q: *const i16, x: &[[i8; 32]], ks: core::ops::Range<usize>) -> [v128; 4] {
    let mut s = [ZERO; 4];
    for k in ks {
        let wk = bcast4(q, k);
        let xk = x[k].as_ptr();
        for pp in 0..4 {
            s[pp] = i16x8_add(s[pp], i16x8_mul(i8x8(xk.add(8 * pp)), wk));
        }
    }
    s
}

/// Legacy blocks against eight tokens.
#[inline(always)]
unsafe fn legacy_row8<L: Legacy>(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    let nb = w.len() / L::BYTES;
    let mut acc = [f32x4_splat(0.0); 2];
    let mut acc_m = [f32x4_splat(0.0); 2];
    let mut buf = Unpacked([0i16; 32]);
    for (b, y) in x.iter().enumerate().take(nb) {
        let p = w.as_ptr().add(b * L::BYTES);
        let (d, m) = L::scales(p);
        let q = L::unpack(p);
        for k in 0..4 {
            v128_store(buf.0.as_mut_ptr().add(8 * k) as *mut v128, q[k]);
        }
        let wb = buf.0.as_ptr();
        let s: [v128; 4] = if L::WIDE {
            let mut s = [ZERO; 4];
            for k in 0..8 {
                let wk = bcast4(wb, k);
                let xk = y.qs[k].as_ptr();
                for pp in 0..4 {
                    s[pp] = i32x4_add(s[pp], i32x4_dot_i16x8(i8x8(xk.add(8 * pp)), wk));
                }
            }
            s
        } else {
            steps_i16(wb, &y.qs, 0..8).map(|v| i32x4_extadd_pairwise_i16x8(v))
        };
        let dw = f32x4_splat(d);
        let dy = y.d.as_ptr() as *const v128;
        for h in 0..2 {
            let isum = f32x4_convert_i32x4(pair_sums(s[2 * h], s[2 * h + 1]));
            let scale = f32x4_mul(dw, v128_load(dy.add(h)));
            acc[h] = f32x4_add(acc[h], f32x4_mul(isum, scale));
            if L::MIN {
                let ys = v128_load((y.s.as_ptr() as *const v128).add(h));
                acc_m[h] = f32x4_add(acc_m[h], f32x4_mul(f32x4_splat(m), ys));
            }
        }
    }
    [f32x4_add(acc[0], acc_m[0]), f32x4_add(acc[1], acc_m[1])]
}

unsafe fn row8_q4_0(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    legacy_row8::<Q40>(w, x)
}
unsafe fn row8_q4_1(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    legacy_row8::<Q41>(w, x)
}
unsafe fn row8_q5_0(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    legacy_row8::<Q50>(w, x)
}
unsafe fn row8_q5_1(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    legacy_row8::<Q51>(w, x)
}
unsafe fn row8_q8_0(w: &[u8], x: &[BlockQ8x8]) -> [v128; 2] {
    legacy_row8::<Q80>(w, x)
}

/// A K-quant row against eight tokens. `SUB` is the sub-block length (16 or 32); `OFFSET` is
/// subtracted from every unpacked value (4 for Q3_K, 32 for Q6_K: their offsets are applied here
/// rather than through the activation sums), and `head.group_f` is then only used for mins.
#[inline(always)]
unsafe fn k_row8<const SUB: usize, const OFFSET: i16>(
    w: &[u8],
    bytes: usize,
    x: &[BlockQ8Kx8],
    head: impl Fn(*const u8) -> KHead,
    group: impl Fn(*const u8, usize) -> [v128; 4],
) -> [v128; 2] {
    let nb = w.len() / bytes;
    let mut acc = [f32x4_splat(0.0); 2];
    let mut buf = Unpacked([0i16; QK_K]);
    for (b, y) in x.iter().enumerate().take(nb) {
        let p = w.as_ptr().add(b * bytes);
        let h = head(p);
        for g in 0..8 {
            let q = group(p, g);
            for k in 0..4 {
                let v = if OFFSET != 0 {
                    i16x8_sub(q[k], i16x8_splat(OFFSET))
                } else {
                    q[k]
                };
                v128_store(buf.0.as_mut_ptr().add(32 * g + 8 * k) as *mut v128, v);
            }
        }
        let wb = buf.0.as_ptr();
        let mut s = [ZERO; 4];
        for sb in 0..QK_K / SUB {
            let s16 = steps_i16(wb, &y.qs, sb * SUB / 4..(sb + 1) * SUB / 4);
            let scale = i16x8_splat(h.scale[sb]);
            for pp in 0..4 {
                s[pp] = i32x4_add(s[pp], i32x4_dot_i16x8(s16[pp], scale));
            }
        }
        let dw = f32x4_splat(h.d);
        let dy = y.d.as_ptr() as *const v128;
        for half in 0..2 {
            let dy = v128_load(dy.add(half));
            let isum = f32x4_convert_i32x4(pair_sums(s[2 * half], s[2 * half + 1]));
            acc[half] = f32x4_add(acc[half], f32x4_mul(isum, f32x4_mul(dw, dy)));
            if let (0, Some(f)) = (OFFSET, &h.group_f) {
                // Per token: sum over 16-value groups of factor * bsum, two groups per dot.
                let mut m = ZERO;
                for (j, pair) in lane_splats(f).into_iter().enumerate() {
                    let bs = v128_load((y.bsums[j].as_ptr() as *const v128).add(half));
                    m = i32x4_add(m, i32x4_dot_i16x8(bs, pair));
                }
                let dm = f32x4_mul(f32x4_splat(h.dmin), dy);
                acc[half] = f32x4_sub(acc[half], f32x4_mul(f32x4_convert_i32x4(m), dm));
            }
        }
    }
    acc
}

/// Each 32-bit lane of `f` (a pair of i16 group factors) splatted: pair `j` goes with
/// `BlockQ8Kx8::bsums[j]`.
#[inline(always)]
fn lane_splats(f: &[v128; 2]) -> [v128; 8] {
    [
        i32x4_shuffle::<0, 0, 0, 0>(f[0], f[0]),
        i32x4_shuffle::<1, 1, 1, 1>(f[0], f[0]),
        i32x4_shuffle::<2, 2, 2, 2>(f[0], f[0]),
        i32x4_shuffle::<3, 3, 3, 3>(f[0], f[0]),
        i32x4_shuffle::<0, 0, 0, 0>(f[1], f[1]),
        i32x4_shuffle::<1, 1, 1, 1>(f[1], f[1]),
        i32x4_shuffle::<2, 2, 2, 2>(f[1], f[1]),
        i32x4_shuffle::<3, 3, 3, 3>(f[1], f[1]),
    ]
}

unsafe fn row8_q2_k(w: &[u8], x: &[BlockQ8Kx8]) -> [v128; 2] {
    k_row8::<16, 0>(w, 84, x, |p| q2k_head(p), |p, g| q2k_group(p, g))
}
unsafe fn row8_q3_k(w: &[u8], x: &[BlockQ8Kx8]) -> [v128; 2] {
    k_row8::<16, 4>(w, 110, x, |p| q3k_head(p), |p, g| q3k_group(p, g))
}
unsafe fn row8_q4_k(w: &[u8], x: &[BlockQ8Kx8]) -> [v128; 2] {
    k_row8::<32, 0>(w, 144, x, |p| q45k_head(p), |p, g| q4k_group(p, g))
}
unsafe fn row8_q5_k(w: &[u8], x: &[BlockQ8Kx8]) -> [v128; 2] {
    k_row8::<32, 0>(w, 176, x, |p| q45k_head(p), |p, g| q5k_group(p, g))
}
unsafe fn row8_q6_k(w: &[u8], x: &[BlockQ8Kx8]) -> [v128; 2] {
    k_row8::<16, 32>(w, 210, x, |p| q6k_head(p), |p, g| q6k_group(p, g))
}

const _: () = assert!(QK_K == 256);
