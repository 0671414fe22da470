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
//!   `R = 4` for Q4_0/Q5_0/Q8_0 (four accumulation chains, a quarter of the activation loads, one
//!   vector f16 conversion for the four rows' scales), `R = 2` for float types and Q4_1/Q5_1
//!   (their scale lanes hold `d, m` pairs) and `R = 1` for K-quants (their unpacking needs the
//!   registers). Decode passes also touch the weights of a later pass ([`prefetch`]);
//! - eight-token prefill functions (`row8_*`) against [`BlockQ8x8`] / [`BlockQ8Kx8`], two rows
//!   per pass: a weight block is unpacked once into an i16 buffer, each group of four values is
//!   broadcast (`v128.load64_splat`) and multiplied with two tokens' four activations per vector,
//!   so the unpacking and the per-block scaling are shared by eight tokens and every activation
//!   load by two rows.
//!
//! What the code looks like is dictated by V8's code generation (x64, read with
//! `node --print-wasm-code`): V8 has 16 vector registers and spills whatever LLVM keeps live, and
//! LLVM, targeting a machine with unlimited locals, hoists every load of an unrolled loop to its
//! top. So loops over a block's groups and steps are kept rolled ([`opaque`] trip counts); shifts
//! are by constants (V8 re-masks a variable shift count at every use; shifts that depend on the
//! group are multiplies by powers of two); no closure or array `map` in hot code (LLVM may leave
//! them as calls, and four vectors returned from a call travel through memory); per-lane
//! multiplies by powers of two are avoided (LLVM turns them into per-lane shifts, which SIMD128
//! lacks, and scalarizes them).

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

/// A relaxed-SIMD build's kernels for the types that have relaxed ones (`None` for the others,
/// whose [`kernel`] is used): the eight-token prefill of the unsigned-storage legacy types, with
/// `i32x4.relaxed_dot_i8x16_i7x16_add`. Decode keeps the SIMD128 kernels, which measured as fast
/// or faster on a CPU without dot-product instructions; so does Q8_0, whose signed weights need
/// their signs moved onto the activations first (slower there, in both shapes).
#[cfg(target_feature = "relaxed-simd")]
pub(crate) fn kernel_relaxed(t: QType) -> Option<Kernel> {
    use QType::*;
    Some(match t {
        Q4_0 => Kernel::Q8(tile_q4_0, Some(tile8_q4_0_relaxed)),
        Q4_1 => Kernel::Q8(tile_q4_1, Some(tile8_q4_1_relaxed)),
        Q5_0 => Kernel::Q8(tile_q5_0, Some(tile8_q5_0_relaxed)),
        Q5_1 => Kernel::Q8(tile_q5_1, Some(tile8_q5_1_relaxed)),
        _ => return None,
    })
}

/// Defines `Tile` functions from row functions
/// `row::<R, T>(rows, row_bytes, x, x_stride) -> [[f32; T]; R]`, given the weight bytes that go
/// with one activation element (one f32, or one Q8/Q8_K block) and how many rows a decode pass
/// (one token) dots at once.
macro_rules! tiles {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr, $decode_rows:expr;)*) => {$(
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], xs: usize, nt: usize, out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!((1..=TOKENS_PER_TILE).contains(&nt) && out.len() >= nt * nrows);
            // The row functions read x[t * xs..][..rb / bytes_per_act] through raw pointers.
            assert!(rb % $bytes_per_act == 0 && x.len() >= (nt - 1) * xs + rb / $bytes_per_act);
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            let mut r = 0;
            const DECODE_ROWS: usize = $decode_rows;
            if nt == 1 && DECODE_ROWS > 1 {
                while r + DECODE_ROWS <= nrows {
                    // The rows this pass touches ahead, if they are inside `w`.
                    let at = (r + DECODE_ROWS) * rb + PREFETCH_AHEAD;
                    let ahead = if at + DECODE_ROWS * rb <= w.len() { wp.add(at) } else { core::ptr::null() };
                    let mut rows = [wp; DECODE_ROWS];
                    for i in 0..DECODE_ROWS {
                        rows[i] = wp.add((r + i) * rb);
                    }
                    let v = $row::<DECODE_ROWS, 1>(rows, rb, xp, xs, ahead);
                    for i in 0..DECODE_ROWS {
                        out[r + i] = v[i][0];
                    }
                    r += DECODE_ROWS;
                }
            }
            while r < nrows {
                let p = [wp.add(r * rb)];
                let at = (r + 1) * rb + PREFETCH_AHEAD;
                let ahead = if nt == 1 && at + rb <= w.len() { wp.add(at) } else { core::ptr::null() };
                match nt {
                    1 => store(out, nrows, r, $row::<1, 1>(p, rb, xp, xs, ahead)[0]),
                    2 => store(out, nrows, r, $row::<1, 2>(p, rb, xp, xs, ahead)[0]),
                    3 => store(out, nrows, r, $row::<1, 3>(p, rb, xp, xs, ahead)[0]),
                    _ => store(out, nrows, r, $row::<1, 4>(p, rb, xp, xs, ahead)[0]),
                }
                r += 1;
            }
        }
    )*};
}

tiles! {
    tile_f32 => row_f32, f32, 4, 2;
    tile_f16 => row_f16, f32, 2, 2;
    tile_bf16 => row_bf16, f32, 2, 2;
    tile_q4_0 => row_q4_0, BlockQ8, 18, 4;
    tile_q4_1 => row_q4_1, BlockQ8, 20, 2;
    tile_q5_0 => row_q5_0, BlockQ8, 22, 4;
    tile_q5_1 => row_q5_1, BlockQ8, 24, 2;
    tile_q8_0 => row_q8_0, BlockQ8, 34, 4;
    tile_q2_k => row_q2_k, BlockQ8K, 84, 1;
    tile_q3_k => row_q3_k, BlockQ8K, 110, 1;
    tile_q4_k => row_q4_k, BlockQ8K, 144, 1;
    tile_q5_k => row_q5_k, BlockQ8K, 176, 1;
    tile_q6_k => row_q6_k, BlockQ8K, 210, 1;
}

#[inline(always)]
fn store<const T: usize>(out: &mut [f32], nrows: usize, r: usize, v: [f32; T]) {
    for (t, v) in v.into_iter().enumerate() {
        out[t * nrows + r] = v;
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

/// How far ahead of its own rows a decode pass reads the weights (see [`prefetch`]).
const PREFETCH_AHEAD: usize = 2048;

/// Touches the cache lines of `ahead[at..at + n]` (one volatile byte load per 64 bytes) unless
/// `ahead` is null. Wasm has no prefetch instruction, and V8's decode loops alone leave memory
/// idle much of the time: a decode pass that touches the rows [`PREFETCH_AHEAD`] bytes past its
/// own, spread over its blocks, streams a matrix that is not in cache about twice as fast
/// (Q8_0, 178 MB: 2.3-2.6 -> 5.9 GB/s in Node, as fast as the AVX2 kernel on this machine).
#[inline(always)]
unsafe fn prefetch(ahead: *const u8, at: usize, n: usize) {
    if !ahead.is_null() {
        let mut i = 0;
        while i < n {
            core::ptr::read_volatile(ahead.add(at + i));
            i += 64;
        }
    }
}

/// `[e(0), e(1), e(2), e(3)]` written out (`core::array::from_fn` and `map` take closures that
/// LLVM may leave as calls, and a call returning vectors goes through the wasm stack in memory).
macro_rules! each4 {
    (|$k:ident| $e:expr) => {
        [
            {
                let $k = 0usize;
                $e
            },
            {
                let $k = 1usize;
                $e
            },
            {
                let $k = 2usize;
                $e
            },
            {
                let $k = 3usize;
                $e
            },
        ]
    };
}

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
    f16_to_f32((p as *const u16).read_unaligned())
}

/// Four f16 (the low halves of four u32 lanes) to f32, exactly. Normal numbers (block scales,
/// nearly always) take a few integer operations; a vector with a zero, subnormal, infinity or
/// NaN goes to [`f16x4_to_f32_special`].
#[inline(always)]
fn f16x4_to_f32(h: v128) -> v128 {
    let e = v128_and(h, u32x4_splat(0x7c00));
    let special = v128_or(i32x4_eq(e, ZERO), i32x4_eq(e, u32x4_splat(0x7c00)));
    if v128_any_true(special) {
        return f16x4_to_f32_special(h);
    }
    let m = v128_and(h, u32x4_splat(0x7fff));
    let normal = i32x4_add(i32x4_shl(m, 13), u32x4_splat(112 << 23));
    v128_or(normal, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// [`f16x4_to_f32`] for any f16, in integer operations and one int-to-float conversion: no
/// denormal f32 is ever an operand (x86 would take a slow assist).
#[cold]
#[inline(never)]
fn f16x4_to_f32_special(h: v128) -> v128 {
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
    [
        v128_and(lo, m),
        v128_and(hi, m),
        u16x8_shr(lo, 4),
        u16x8_shr(hi, 4),
    ]
}

/// 16 nibble bytes at `p` as 32 unsigned bytes in value order: low nibbles, then high nibbles.
#[inline(always)]
unsafe fn nibbles_u8(p: *const u8) -> [v128; 2] {
    let v = v128_load(p as *const v128);
    let m = u8x16_splat(0xF);
    [v128_and(v, m), v128_and(u16x8_shr(v, 4), m)]
}

/// Ors bit `j` of `qh`, as 16, into byte `j` of the 32 values `n`: each byte tests its bit of
/// the byte of `qh` that a swizzle put in its lane.
#[inline(always)]
fn fifth_bits_u8(n: [v128; 2], qh: u32) -> [v128; 2] {
    const BITS: v128 = u8x16(1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128);
    const LO: v128 = u8x16(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
    const HI: v128 = u8x16(2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
    let h = u32x4_splat(qh);
    let bit = |idx| {
        v128_and(
            i8x16_eq(v128_and(i8x16_swizzle(h, idx), BITS), BITS),
            u8x16_splat(16),
        )
    };
    [v128_or(n[0], bit(LO)), v128_or(n[1], bit(HI))]
}

/// `c + sum a * b` over groups of four bytes, `b` 7-bit unsigned (relaxed SIMD).
#[cfg(target_feature = "relaxed-simd")]
#[inline(always)]
fn relaxed_dot(a: v128, b: v128, c: v128) -> v128 {
    i32x4_relaxed_dot_i8x16_i7x16_add(a, b, c)
}

#[cfg(not(target_feature = "relaxed-simd"))]
#[inline(always)]
fn relaxed_dot(_a: v128, _b: v128, _c: v128) -> v128 {
    unreachable!("relaxed SIMD kernels run only in a +relaxed-simd build")
}

/// Per value `j` of 32: all ones in its i16 lane where bit `j` of `qh` is set, else zero
/// (vector `k` holds values `8k..8k + 8`): each lane tests its own bit of a splat of 16 bits.
/// (Not a multiply by per-lane powers of two: LLVM turns that into a per-lane shift, which
/// SIMD128 lacks, and scalarizes it.)
#[inline(always)]
fn bit_masks(qh: u32) -> [v128; 4] {
    const LO: v128 = i16x8(1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7);
    const HI: v128 = i16x8(
        1 << 8,
        1 << 9,
        1 << 10,
        1 << 11,
        1 << 12,
        1 << 13,
        1 << 14,
        i16::MIN,
    );
    let a = i16x8_splat(qh as i16);
    let b = i16x8_splat((qh >> 16) as i16);
    [
        i16x8_eq(v128_and(a, LO), LO),
        i16x8_eq(v128_and(a, HI), HI),
        i16x8_eq(v128_and(b, LO), LO),
        i16x8_eq(v128_and(b, HI), HI),
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
        (p as *const f32).read_unaligned()
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
        f32::from_bits(((p as *const u16).read_unaligned() as u32) << 16)
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
    ahead: *const u8,
) -> [[f32; T]; R] {
    let cols = rb / F::SIZE;
    let mut acc = [[[f32x4_splat(0.0); 2]; T]; R];
    let mut i = 0;
    while i + 8 <= cols {
        prefetch(ahead, i * F::SIZE * R, 8 * F::SIZE * R);
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
    ahead: *const u8,
) -> [[f32; T]; R] {
    float_rows::<F32W, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_f16<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    float_rows::<F16W, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_bf16<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const f32,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    float_rows::<BF16W, R, T>(w, rb, x, xs, ahead)
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
    /// Relaxed SIMD: the offset subtracted from the unsigned 5-bit values of [`Self::unpack_u7`]
    /// (8, 16, or 0 for Q4_1/Q5_1); `None` for Q8_0, which is stored signed.
    const U7_OFFSET: Option<i8> = None;
    /// The 32 stored values as unsigned bytes (0..32) in two vectors: the operand that
    /// `relaxed_dot_i8x16_i7x16` needs to be 7-bit. Only called where `U7_OFFSET` is `Some`.
    #[inline(always)]
    unsafe fn unpack_u7(_p: *const u8) -> [v128; 2] {
        unreachable!()
    }
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
        let n = nibbles(p.add(2));
        each4!(|k| i16x8_sub(n[k], i16x8_splat(8)))
    }
    const U7_OFFSET: Option<i8> = Some(8);
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        nibbles_u8(p.add(2))
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
    const U7_OFFSET: Option<i8> = Some(0);
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        nibbles_u8(p.add(4))
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
        let b = bit_masks((p.add(2) as *const u32).read_unaligned());
        each4!(|k| i16x8_add(n[k], v128_andnot(i16x8_splat(-16), b[k])))
    }
    const U7_OFFSET: Option<i8> = Some(16);
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        fifth_bits_u8(
            nibbles_u8(p.add(6)),
            (p.add(2) as *const u32).read_unaligned(),
        )
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
        let b = bit_masks((p.add(4) as *const u32).read_unaligned());
        each4!(|k| v128_or(n[k], v128_and(b[k], i16x8_splat(16))))
    }
    const U7_OFFSET: Option<i8> = Some(0);
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        fifth_bits_u8(
            nibbles_u8(p.add(8)),
            (p.add(4) as *const u32).read_unaligned(),
        )
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

/// The f16 scales of `R` legacy blocks at `p` as f32 lanes: `[d_0, m_0, d_1, m_1]` for the
/// types with an offset (`R <= 2`), `[d_0, d_1, d_2, d_3]` otherwise (`R <= 4`). One vector
/// conversion instead of a scalar one (a dozen instructions with its branches) per scale.
#[inline(always)]
unsafe fn legacy_scales<L: Legacy, const R: usize>(p: &[*const u8; R]) -> v128 {
    // Unused lanes hold 1.0, which keeps the conversion on its fast path.
    let mut v = u16x8_splat(0x3c00);
    for r in 0..R {
        if L::MIN {
            let dm = (p[r] as *const i32).read_unaligned();
            v = match r {
                0 => i32x4_replace_lane::<0>(v, dm),
                _ => i32x4_replace_lane::<1>(v, dm),
            };
        } else {
            let d = (p[r] as *const i16).read_unaligned();
            v = match r {
                0 => i16x8_replace_lane::<0>(v, d),
                1 => i16x8_replace_lane::<1>(v, d),
                2 => i16x8_replace_lane::<2>(v, d),
                _ => i16x8_replace_lane::<3>(v, d),
            };
        }
    }
    f16x4_to_f32(u32x4_extend_low_u16x8(v))
}

/// Lane `i` of `v` in every lane.
#[inline(always)]
fn lane_splat(v: v128, i: usize) -> v128 {
    match i {
        0 => i32x4_shuffle::<0, 0, 0, 0>(v, v),
        1 => i32x4_shuffle::<1, 1, 1, 1>(v, v),
        2 => i32x4_shuffle::<2, 2, 2, 2>(v, v),
        _ => i32x4_shuffle::<3, 3, 3, 3>(v, v),
    }
}

/// `R` legacy rows against `T` tokens: per block, the activations are loaded once for all rows,
/// each row's weights unpacked once for all tokens, and all rows' scales converted at once.
#[inline(always)]
unsafe fn legacy_rows<L: Legacy, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    const { assert!(R <= 4 && (R <= 2 || !L::MIN)) };
    let nb = rb / L::BYTES;
    let mut acc = [[f32x4_splat(0.0); T]; R];
    // Q8_1 offsets: lane 2r + 1 sums row r's `m * s`.
    let mut off = [f32x4_splat(0.0); T];
    for b in 0..nb {
        prefetch(ahead, b * L::BYTES * R, L::BYTES * R);
        let mut p = w;
        for r in 0..R {
            p[r] = w[r].add(b * L::BYTES);
        }
        let dm = legacy_scales::<L, R>(&p);
        let mut a = [[ZERO; 4]; T];
        let mut scale = [ZERO; T];
        for t in 0..T {
            let y = &*x.add(t * xs + b);
            a[t] = act32(y.qs.as_ptr());
            scale[t] = if L::MIN {
                // [d_0 * y.d, m_0 * y.s, d_1 * y.d, m_1 * y.s]
                let f = f32x4_mul(dm, v128_load64_splat(&y.d as *const f32 as *const u64));
                off[t] = f32x4_add(off[t], f);
                f
            } else {
                f32x4_mul(dm, f32x4_splat(y.d))
            };
        }
        for r in 0..R {
            let q = L::unpack(p[r]);
            for t in 0..T {
                let s = f32x4_convert_i32x4(dot32(&q, &a[t], L::WIDE));
                let d = lane_splat(scale[t], if L::MIN { 2 * r } else { r });
                acc[r][t] = f32x4_add(acc[r][t], f32x4_mul(s, d));
            }
        }
    }
    let mut out = [[0f32; T]; R];
    for r in 0..R {
        for t in 0..T {
            out[r][t] = hsum(acc[r][t]);
            if L::MIN {
                out[r][t] += f32x4_extract_lane_dyn(off[t], 2 * r + 1);
            }
        }
    }
    out
}

#[inline(always)]
fn f32x4_extract_lane_dyn(v: v128, i: usize) -> f32 {
    match i {
        0 => f32x4_extract_lane::<0>(v),
        1 => f32x4_extract_lane::<1>(v),
        2 => f32x4_extract_lane::<2>(v),
        _ => f32x4_extract_lane::<3>(v),
    }
}

macro_rules! legacy_row_fns {
    ($($name:ident => $ty:ty;)*) => {$(
        unsafe fn $name<const R: usize, const T: usize>(
            w: [*const u8; R],
            rb: usize,
            x: *const BlockQ8,
            xs: usize,
            ahead: *const u8,
        ) -> [[f32; T]; R] {
            legacy_rows::<$ty, R, T>(w, rb, x, xs, ahead)
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
// Each type has a `*_pair(p, c)` that unpacks the two 32-value groups of chunk `c` (0..4, see
// `pair_groups`) into four i16 vectors each; the decode rows and the prefill unpacking share it.
// Shifts that depend on `c` are done as a multiply by a power of two followed by constant shifts
// (V8 re-masks a variable shift count for every use), and the chunk loops stay rolled.

/// Q2_K (84 bytes): scales[16] (scale | min << 4), qs[64], d, dmin. Group g = 4 * half + j is
/// bits 2j..2j+2 of qs[32 * half..][..32]; chunk c = 2 * half + j / 2 holds groups 2c, 2c + 1.
#[inline(always)]
unsafe fn q2k_pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
    let qs = p.add(16 + 32 * (c / 2));
    // Bits 4 * (c % 2).. moved to bit 4.
    let m = i16x8_splat(16 >> (4 * (c % 2)));
    let y = each4!(|k| i16x8_mul(u8x8(qs.add(8 * k)), m));
    [
        each4!(|k| v128_and(u16x8_shr(y[k], 4), i16x8_splat(3))),
        each4!(|k| v128_and(u16x8_shr(y[k], 6), i16x8_splat(3))),
    ]
}

/// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Q2_K's two bits plus a third, bit g of
/// hmask[l]; unsigned (0..8), the -4 applied through `bsums`.
#[inline(always)]
unsafe fn q3k_pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
    let [lo, hi] = q2k_pair(p.add(16), c);
    // Bits 2c, 2c + 1 of hmask moved to bits 8, 9.
    let m = i16x8_splat((256 >> (2 * c)) as i16);
    let z = each4!(|k| i16x8_mul(u8x8(p.add(8 * k)), m));
    [
        each4!(|k| v128_or(lo[k], u16x8_shr(v128_and(z[k], i16x8_splat(0x100)), 6))),
        each4!(|k| v128_or(hi[k], u16x8_shr(v128_and(z[k], i16x8_splat(0x200)), 7))),
    ]
}

/// Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Groups 2c, 2c + 1 are the low and high
/// nibbles of qs[32c..][..32].
#[inline(always)]
unsafe fn q4k_pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
    let qs = p.add(16 + 32 * c);
    let x = each4!(|k| u8x8(qs.add(8 * k)));
    [
        each4!(|k| v128_and(x[k], i16x8_splat(0xF))),
        each4!(|k| u16x8_shr(x[k], 4)),
    ]
}

/// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. Q4_K's nibbles plus a 5th bit, bit g
/// of qh[l].
#[inline(always)]
unsafe fn q5k_pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
    let qs = p.add(48 + 32 * c);
    let x = each4!(|k| u8x8(qs.add(8 * k)));
    // Bits 2c, 2c + 1 of qh moved to bits 8, 9.
    let m = i16x8_splat((256 >> (2 * c)) as i16);
    let z = each4!(|k| i16x8_mul(u8x8(p.add(16 + 8 * k)), m));
    [
        each4!(|k| {
            let high = u16x8_shr(v128_and(z[k], i16x8_splat(0x100)), 4);
            v128_or(v128_and(x[k], i16x8_splat(0xF)), high)
        }),
        each4!(|k| {
            let high = u16x8_shr(v128_and(z[k], i16x8_splat(0x200)), 5);
            v128_or(u16x8_shr(x[k], 4), high)
        }),
    ]
}

/// Q6_K (210 bytes): ql[128], qh[64], scales[16] (i8), d. Group g = 4 * half + j: nibble j / 2 of
/// ql[64 * half + 32 * (j % 2)..][..32], topped with bits 2j..2j+2 of qh[32 * half..][..32];
/// unsigned (0..64), the -32 applied through `bsums` (or at unpacking, for prefill). Chunk
/// c = 2 * half + jj holds groups j = jj and j = jj + 2, which share their ql bytes.
#[inline(always)]
unsafe fn q6k_pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
    let (half, jj) = (c / 2, c % 2);
    let ql = p.add(64 * half + 32 * jj);
    let qh = p.add(128 + 32 * half);
    let x = each4!(|k| u8x8(ql.add(8 * k)));
    // Bits 2jj.. moved to bit 2 (and 2jj + 4.. to bit 6).
    let m = i16x8_splat(4 >> (2 * jj));
    let y = each4!(|k| i16x8_mul(u8x8(qh.add(8 * k)), m));
    [
        each4!(|k| {
            let high = v128_and(i16x8_shl(y[k], 2), i16x8_splat(0x30));
            v128_or(v128_and(x[k], i16x8_splat(0xF)), high)
        }),
        each4!(|k| {
            let high = v128_and(u16x8_shr(y[k], 2), i16x8_splat(0x30));
            v128_or(u16x8_shr(x[k], 4), high)
        }),
    ]
}

/// The per-super-block scalars and sums shared by the K-quant row functions: `(d, dmin)`, the
/// sub-block scales as i16 (16 of 16 values, or 8 of 32), and per 16-value group the factor of its
/// activation sum in two i16x8 vectors (`None` when there is no such term).
#[derive(Clone, Copy)]
struct KHead {
    d: f32,
    dmin: f32,
    scale: [i16; 16],
    /// Factors of `bsums`: subtracted as `dmin * y.d * sum_g f_g * bsum_g`.
    group_f: [v128; 2],
}

/// A K-quant type: its super-block size, sub-block length, the offset its prefill unpacking
/// subtracts, and how a super-block's scalars and 32-value groups decode. (A trait rather than
/// closures: LLVM would not inline a closure called from 8 unrolled groups, and a call returning
/// four vectors goes through the wasm stack in memory.)
trait KQuant {
    const BYTES: usize;
    /// Sub-block length: 16 or 32. With 16, the two halves of a group have their own scales.
    const SUB: usize;
    /// Subtracted from every unpacked value by the prefill kernels (Q3_K: 4, Q6_K: 32); the
    /// decode kernels apply it through `bsums` instead.
    const OFFSET: i16;
    /// The groups of chunk `c`: `(2c, 2c + 1)` except for Q6_K.
    const PAIR_STRIDE: usize;
    unsafe fn head(p: *const u8) -> KHead;
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2];
    #[inline(always)]
    fn pair_groups(c: usize) -> [usize; 2] {
        if Self::PAIR_STRIDE == 1 {
            [2 * c, 2 * c + 1]
        } else {
            // Q6_K: chunk 2 * half + jj holds groups 4 * half + jj and 4 * half + jj + 2.
            let g = 4 * (c / 2) + c % 2;
            [g, g + 2]
        }
    }
}

macro_rules! kquants {
    ($($ty:ident: $bytes:expr, $sub:expr, $offset:expr, $stride:expr, $head:ident, $pair:ident;)*) => {$(
        struct $ty;
        impl KQuant for $ty {
            const BYTES: usize = $bytes;
            const SUB: usize = $sub;
            const OFFSET: i16 = $offset;
            const PAIR_STRIDE: usize = $stride;
            #[inline(always)]
            unsafe fn head(p: *const u8) -> KHead {
                $head(p)
            }
            #[inline(always)]
            unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
                $pair(p, c)
            }
        }
    )*};
}

kquants! {
    K2: 84, 16, 0, 1, q2k_head, q2k_pair;
    K3: 110, 16, 4, 1, q3k_head, q3k_pair;
    K4: 144, 32, 0, 1, q45k_head, q4k_pair;
    K5: 176, 32, 0, 1, q45k_head, q5k_pair;
    K6: 210, 16, 32, 2, q6k_head, q6k_pair;
}

/// `R` K-quant rows against `T` tokens.
#[inline(always)]
unsafe fn k_rows<K: KQuant, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    let nb = rb / K::BYTES;
    let chunks = opaque(4);
    let mut acc = [[f32x4_splat(0.0); T]; R];
    for b in 0..nb {
        prefetch(ahead, b * K::BYTES * R, K::BYTES * R);
        let mut p = w;
        for r in 0..R {
            p[r] = w[r].add(b * K::BYTES);
        }
        let mut h = [K::head(p[0]); R];
        for r in 1..R {
            h[r] = K::head(p[r]);
        }
        let mut isum = [[ZERO; T]; R];
        for c in 0..chunks {
            let mut q = [[[ZERO; 4]; 2]; R];
            for r in 0..R {
                q[r] = K::pair(p[r], c);
            }
            for (i, g) in K::pair_groups(c).into_iter().enumerate() {
                for t in 0..T {
                    let a = act32((*x.add(t * xs + b)).qs.as_ptr().add(32 * g));
                    for r in 0..R {
                        let q = &q[r][i];
                        let sc = h[r].scale.as_ptr();
                        let s = if K::SUB == 32 {
                            let s16 = i16x8_add(
                                mul2(q[0], a[0], q[1], a[1]),
                                mul2(q[2], a[2], q[3], a[3]),
                            );
                            i32x4_dot_i16x8(s16, v128_load16_splat(sc.add(g) as *const u16))
                        } else {
                            i32x4_add(
                                i32x4_dot_i16x8(
                                    mul2(q[0], a[0], q[1], a[1]),
                                    v128_load16_splat(sc.add(2 * g) as *const u16),
                                ),
                                i32x4_dot_i16x8(
                                    mul2(q[2], a[2], q[3], a[3]),
                                    v128_load16_splat(sc.add(2 * g + 1) as *const u16),
                                ),
                            )
                        };
                        isum[r][t] = i32x4_add(isum[r][t], s);
                    }
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
                let f = &h[r].group_f;
                let m = i32x4_add(i32x4_dot_i16x8(bs0, f[0]), i32x4_dot_i16x8(bs1, f[1]));
                let m = f32x4_convert_i32x4(m);
                acc[r][t] = f32x4_sub(acc[r][t], f32x4_mul(m, f32x4_splat(h[r].dmin * y.d)));
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
        group_f: [u16x8_shr(u8x8(p), 4), u16x8_shr(u8x8(p.add(8)), 4)],
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
        scale: {
            let mut s = [0i16; 16];
            for g in 0..16 {
                s[g] = sc[g] as i16;
            }
            s
        },
        group_f: [i8x8(sc.as_ptr()), i8x8(sc.as_ptr().add(8))],
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
        group_f: [
            i16x8_shuffle::<0, 0, 1, 1, 2, 2, 3, 3>(m, m),
            i16x8_shuffle::<4, 4, 5, 5, 6, 6, 7, 7>(m, m),
        ],
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
        group_f: [i8x8(p.add(192) as *const i8), i8x8(p.add(200) as *const i8)],
    }
}

unsafe fn row_q2_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    k_rows::<K2, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_q3_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    k_rows::<K3, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_q4_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    k_rows::<K4, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_q5_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    k_rows::<K5, R, T>(w, rb, x, xs, ahead)
}

unsafe fn row_q6_k<const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    k_rows::<K6, R, T>(w, rb, x, xs, ahead)
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

/// Defines `Tile8` functions from `row8::<R>(rows, row_bytes, x) -> [[v128; 2]; R]` (tokens
/// 0..4 and 4..8 of each row); rows go in pairs, which share every activation load.
macro_rules! tiles8 {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr;)*) => {$(
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!(out.len() >= 8 * nrows && rb % $bytes_per_act == 0 && x.len() >= rb / $bytes_per_act);
            let wp = w.as_ptr();
            let mut store = |r: usize, v: [v128; 2]| {
                let mut o = [0f32; 8];
                v128_store(o.as_mut_ptr() as *mut v128, v[0]);
                v128_store(o.as_mut_ptr().add(4) as *mut v128, v[1]);
                for (t, o) in o.into_iter().enumerate() {
                    out[t * nrows + r] = o;
                }
            };
            let mut r = 0;
            while r + 2 <= nrows {
                let v = $row::<2>([wp.add(r * rb), wp.add((r + 1) * rb)], rb, x);
                store(r, v[0]);
                store(r + 1, v[1]);
                r += 2;
            }
            if r < nrows {
                store(r, $row::<1>([wp.add(r * rb)], rb, x)[0]);
            }
        }
    )*};
}

#[cfg(target_feature = "relaxed-simd")]
tiles8! {
    tile8_q4_0_relaxed => row8_q4_0_relaxed, BlockQ8x8, 18;
    tile8_q4_1_relaxed => row8_q4_1_relaxed, BlockQ8x8, 20;
    tile8_q5_0_relaxed => row8_q5_0_relaxed, BlockQ8x8, 22;
    tile8_q5_1_relaxed => row8_q5_1_relaxed, BlockQ8x8, 24;
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
#[derive(Clone, Copy)]
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

/// A loop count LLVM cannot see through. Loops over a block's groups or steps must stay rolled:
/// unrolled, LLVM schedules every load of the block first (wasm has unlimited locals) and V8,
/// with 16 vector registers, spills them all.
#[inline(always)]
fn opaque(n: usize) -> usize {
    core::hint::black_box(n)
}

/// Steps `k0..k0 + n` (`n` even, [`opaque`]) of `R` rows' broadcast weights (`q[r]`) times the
/// eight tokens' activations, summed in i16 (`WIDE`: widened to i32 by `dot` at every step):
/// per row four vectors, tokens (0, 1), (2, 3), (4, 5), (6, 7). The caller bounds the sums. One
/// step per iteration for two rows, two for one (what fits V8's registers).
#[inline(always)]
unsafe fn steps<const WIDE: bool, const R: usize>(
    q: [*const i16; R],
    x: &[[i8; 32]],
    k0: usize,
    n: usize,
) -> [[v128; 4]; R] {
    let mut s = [[ZERO; 4]; R];
    let x = x.as_ptr();
    let unroll = if R == 1 { 2 } else { 1 };
    let mut k = k0;
    while k < k0 + n {
        for k in k..k + unroll {
            let xk = (*x.add(k)).as_ptr();
            let a = each4!(|pp| i8x8(xk.add(8 * pp)));
            for r in 0..R {
                let wk = bcast4(q[r], k);
                for pp in 0..4 {
                    s[r][pp] = if WIDE {
                        i32x4_add(s[r][pp], i32x4_dot_i16x8(a[pp], wk))
                    } else {
                        i16x8_add(s[r][pp], i16x8_mul(a[pp], wk))
                    };
                }
            }
        }
        k += unroll;
    }
    s
}

/// `R` rows of legacy blocks against eight tokens.
#[inline(always)]
unsafe fn legacy_row8<L: Legacy, const R: usize, const RELAXED: bool>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8x8],
) -> [[v128; 2]; R] {
    if RELAXED && L::U7_OFFSET.is_some() {
        return legacy_row8_relaxed::<L, R>(w, rb, x);
    }
    let nb = rb / L::BYTES;
    let mut acc = Acc8::<R>::new();
    let mut buf = [Unpacked([0i16; 32]); R];
    let n8 = opaque(8);
    for (b, y) in x.iter().enumerate().take(nb) {
        let mut wb = [buf[0].0.as_ptr(); R];
        for r in 0..R {
            let q = L::unpack(w[r].add(b * L::BYTES));
            for k in 0..4 {
                v128_store(buf[r].0.as_mut_ptr().add(8 * k) as *mut v128, q[k]);
            }
            wb[r] = buf[r].0.as_ptr();
        }
        let s = if L::WIDE {
            steps::<true, R>(wb, &y.qs, 0, n8)
        } else {
            steps::<false, R>(wb, &y.qs, 0, n8)
        };
        for r in 0..R {
            let s = if L::WIDE {
                s[r]
            } else {
                each4!(|k| i32x4_extadd_pairwise_i16x8(s[r][k]))
            };
            let isum = [pair_sums(s[0], s[1]), pair_sums(s[2], s[3])];
            acc.add::<L>(r, w[r].add(b * L::BYTES), y, isum);
        }
    }
    acc.finish()
}

/// The f32 sums of `R` legacy rows against eight tokens (vectors of tokens 0..4 and 4..8), with
/// Q4_1/Q5_1's min terms kept apart until the end.
struct Acc8<const R: usize> {
    acc: [[v128; 2]; R],
    min: [[v128; 2]; R],
}

impl<const R: usize> Acc8<R> {
    #[inline(always)]
    fn new() -> Self {
        Self {
            acc: [[ZERO; 2]; R],
            min: [[ZERO; 2]; R],
        }
    }

    /// Adds row `r`'s block at `p` against `y`: the block's integer sum per token times
    /// `d * y.d`, and `m * y.s` for the types with a min.
    #[inline(always)]
    unsafe fn add<L: Legacy>(&mut self, r: usize, p: *const u8, y: &BlockQ8x8, isum: [v128; 2]) {
        let (d, m) = L::scales(p);
        let dw = f32x4_splat(d);
        let dy = y.d.as_ptr() as *const v128;
        for h in 0..2 {
            let scale = f32x4_mul(dw, v128_load(dy.add(h)));
            let v = f32x4_mul(f32x4_convert_i32x4(isum[h]), scale);
            self.acc[r][h] = f32x4_add(self.acc[r][h], v);
            if L::MIN {
                let ys = v128_load((y.s.as_ptr() as *const v128).add(h));
                self.min[r][h] = f32x4_add(self.min[r][h], f32x4_mul(f32x4_splat(m), ys));
            }
        }
    }

    #[inline(always)]
    fn finish(self) -> [[v128; 2]; R] {
        let mut out = [[ZERO; 2]; R];
        for r in 0..R {
            for h in 0..2 {
                out[r][h] = f32x4_add(self.acc[r][h], self.min[r][h]);
            }
        }
        out
    }
}

/// [`legacy_row8`] with relaxed SIMD, for the types stored unsigned: step k's four weight bytes
/// (values 0..32, within the 7 bits the instruction's second operand must keep to) are
/// broadcast and dotted with the raw activation bytes, four tokens per vector, straight into
/// one i32 lane per token. Q4_0/Q5_0's offsets come back through the per-token sums. Integer
/// sums are exact and land in the same lanes as the plain kernel's, and the float steps are the
/// same, so results are bit for bit equal.
#[inline(always)]
unsafe fn legacy_row8_relaxed<L: Legacy, const R: usize>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8x8],
) -> [[v128; 2]; R] {
    #[derive(Clone, Copy)]
    #[repr(C, align(16))]
    struct Bytes([u8; 32]);
    let nb = rb / L::BYTES;
    let offset = i32x4_splat(L::U7_OFFSET.unwrap_or(0) as i32);
    let mut acc = Acc8::<R>::new();
    let mut q = [Bytes([0; 32]); R];
    let n8 = opaque(8);
    for (b, y) in x.iter().enumerate().take(nb) {
        for r in 0..R {
            let [lo, hi] = L::unpack_u7(w[r].add(b * L::BYTES));
            let qp = q[r].0.as_mut_ptr() as *mut v128;
            v128_store(qp, lo);
            v128_store(qp.add(1), hi);
        }
        let mut s = [[ZERO; 2]; R];
        for k in 0..n8 {
            let xk = y.qs[k].as_ptr() as *const v128;
            let (x0, x1) = (v128_load(xk), v128_load(xk.add(1)));
            for r in 0..R {
                let wk = v128_load32_splat(q[r].0.as_ptr().add(4 * k) as *const u32);
                s[r][0] = relaxed_dot(x0, wk, s[r][0]);
                s[r][1] = relaxed_dot(x1, wk, s[r][1]);
            }
        }
        let sums = y.sum.as_ptr() as *const v128;
        for r in 0..R {
            let isum =
                [0, 1].map(|h| i32x4_sub(s[r][h], i32x4_mul(offset, v128_load(sums.add(h)))));
            acc.add::<L>(r, w[r].add(b * L::BYTES), y, isum);
        }
    }
    acc.finish()
}

macro_rules! legacy_row8_fns {
    ($($name:ident => $ty:ty, $relaxed:expr;)*) => {$(
        unsafe fn $name<const R: usize>(w: [*const u8; R], rb: usize, x: &[BlockQ8x8]) -> [[v128; 2]; R] {
            legacy_row8::<$ty, R, $relaxed>(w, rb, x)
        }
    )*};
}

legacy_row8_fns! {
    row8_q4_0 => Q40, false;
    row8_q4_1 => Q41, false;
    row8_q5_0 => Q50, false;
    row8_q5_1 => Q51, false;
    row8_q8_0 => Q80, false;
}

#[cfg(target_feature = "relaxed-simd")]
legacy_row8_fns! {
    row8_q4_0_relaxed => Q40, true;
    row8_q4_1_relaxed => Q41, true;
    row8_q5_0_relaxed => Q50, true;
    row8_q5_1_relaxed => Q51, true;
}

/// `R` K-quant rows against eight tokens. `K::OFFSET` is subtracted from every unpacked value
/// (the offsets of Q3_K and Q6_K are applied here rather than through the activation sums), so
/// `head.group_f` is only used for mins.
#[inline(always)]
unsafe fn k_row8<K: KQuant, const R: usize>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8Kx8],
) -> [[v128; 2]; R] {
    let nb = rb / K::BYTES;
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    let mut buf = [Unpacked([0i16; QK_K]); R];
    let (chunks, sub_steps) = (opaque(4), opaque(K::SUB / 4));
    for (b, y) in x.iter().enumerate().take(nb) {
        let mut h = [K::head(w[0].add(b * K::BYTES)); R];
        let mut wb = [buf[0].0.as_ptr(); R];
        for r in 0..R {
            let p = w[r].add(b * K::BYTES);
            if r > 0 {
                h[r] = K::head(p);
            }
            for c in 0..chunks {
                let q = K::pair(p, c);
                for (i, g) in K::pair_groups(c).into_iter().enumerate() {
                    for k in 0..4 {
                        let v = if K::OFFSET != 0 {
                            i16x8_sub(q[i][k], i16x8_splat(K::OFFSET))
                        } else {
                            q[i][k]
                        };
                        v128_store(buf[r].0.as_mut_ptr().add(32 * g + 8 * k) as *mut v128, v);
                    }
                }
            }
            wb[r] = buf[r].0.as_ptr();
        }
        let mut s = [[ZERO; 4]; R];
        for sb in 0..QK_K / K::SUB {
            let s16 = steps::<false, R>(wb, &y.qs, sb * K::SUB / 4, sub_steps);
            for r in 0..R {
                let scale = v128_load16_splat(h[r].scale.as_ptr().add(sb) as *const u16);
                for pp in 0..4 {
                    s[r][pp] = i32x4_add(s[r][pp], i32x4_dot_i16x8(s16[r][pp], scale));
                }
            }
        }
        let dy = y.d.as_ptr() as *const v128;
        for r in 0..R {
            let dw = f32x4_splat(h[r].d);
            for half in 0..2 {
                let dy = v128_load(dy.add(half));
                let isum = f32x4_convert_i32x4(pair_sums(s[r][2 * half], s[r][2 * half + 1]));
                acc[r][half] = f32x4_add(acc[r][half], f32x4_mul(isum, f32x4_mul(dw, dy)));
                if K::OFFSET == 0 {
                    // Per token: sum over 16-value groups of factor * bsum, two groups per dot.
                    let mut m = ZERO;
                    for (j, pair) in lane_splats(&h[r].group_f).into_iter().enumerate() {
                        let bs = v128_load((y.bsums[j].as_ptr() as *const v128).add(half));
                        m = i32x4_add(m, i32x4_dot_i16x8(bs, pair));
                    }
                    let dm = f32x4_mul(f32x4_splat(h[r].dmin), dy);
                    acc[r][half] = f32x4_sub(acc[r][half], f32x4_mul(f32x4_convert_i32x4(m), dm));
                }
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

macro_rules! k_row8_fns {
    ($($name:ident => $ty:ty;)*) => {$(
        unsafe fn $name<const R: usize>(w: [*const u8; R], rb: usize, x: &[BlockQ8Kx8]) -> [[v128; 2]; R] {
            k_row8::<$ty, R>(w, rb, x)
        }
    )*};
}

k_row8_fns! {
    row8_q2_k => K2;
    row8_q3_k => K3;
    row8_q4_k => K4;
    row8_q5_k => K5;
    row8_q6_k => K6;
}

const _: () = assert!(QK_K == 256);
