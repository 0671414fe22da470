//! x86-64 AVX2 + FMA (+ F16C for scale conversion) kernels, chosen at run time.
//!
//! Every quantized dot product is 8-bit integer work: a weight block is unpacked into 32 bytes,
//! `maddubs` multiplies unsigned weight bytes by signed activation bytes into 16-bit pair sums,
//! `madd` widens them to 32 bits (multiplying by a sub-block scale where there is one), and each
//! block's integer sum is scaled into f32 accumulators with one FMA. Types whose values are signed
//! (Q4_0, Q5_0, Q8_0) use the sign trick: `|w| * (y * sign(w))`.
//!
//! Two kernel shapes:
//! - row functions, generic over `T <= 4` activation rows dotted at once (the weight block is
//!   unpacked once, used `T` times): decode (`T = 1`), small batches, and float weights;
//! - eight-token functions (`row8_*`, end of file) for quantized prefill, one token per 32-bit
//!   lane, so that the per-block work is shared by eight tokens (see `mod.rs`).
//!
//! Weight bytes are read with unaligned loads (GGUF data has no alignment guarantee).
//!
//! Overflow bounds: `maddubs` saturates at ±32767. Weights are at most 63 (Q6_K, unsigned) or
//! 128 (|Q8_0|), activations at most 127 in magnitude (our quantizers never emit -128), so a pair
//! sum is at most 2 * 128 * 127 = 32512.

// Token loops index several per-token arrays (accumulators, sums, activation rows) at once.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

use super::blocks::{q3k_scales, q4k_scales_mins, BlockQ8, BlockQ8K, BlockQ8Kx8, BlockQ8x8, QK_K};
use super::{Kernel, TOKENS_PER_TILE};
use crate::gguf::QType;

/// The AVX2 kernel for `t`, if this CPU has AVX2, FMA and F16C.
pub(crate) fn kernel(t: QType) -> Option<Kernel> {
    if !(is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c"))
    {
        return None;
    }
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

/// Defines `Tile` functions from row functions `row::<T>(row, x, x_stride) -> [f32; T]`, given
/// the weight bytes that go with one activation element (one f32, or one Q8/Q8_K block).
macro_rules! tiles {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr;)*) => {$(
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], xs: usize, nt: usize, out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!((1..=TOKENS_PER_TILE).contains(&nt) && out.len() >= nt * nrows);
            // The row functions read x[t * xs..][..rb / bytes_per_act] through raw pointers.
            assert!(rb % $bytes_per_act == 0 && x.len() >= (nt - 1) * xs + rb / $bytes_per_act);
            for (r, row) in w.chunks_exact(rb).enumerate() {
                match nt {
                    1 => store(out, nrows, r, $row::<1>(row, x, xs)),
                    2 => store(out, nrows, r, $row::<2>(row, x, xs)),
                    3 => store(out, nrows, r, $row::<3>(row, x, xs)),
                    _ => store(out, nrows, r, $row::<4>(row, x, xs)),
                }
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

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The little-endian f16 at `p`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn load256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// 16 bytes at `p` as 32 nibbles in value order: low nibbles (values 0..16), then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn nibbles(p: *const u8) -> __m256i {
    let v = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(v), v);
    _mm256_and_si256(both, _mm256_set1_epi8(0xF))
}

/// Byte `j` is 0xFF where bit `j` of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bit_bytes(bits: u32) -> __m256i {
    // Copy byte j / 8 of `bits` into byte j (shuffles stay within 128-bit lanes; each lane holds
    // all four bytes), then test bit j % 8.
    let spread = _mm256_shuffle_epi8(
        _mm256_set1_epi32(bits as i32),
        _mm256_setr_epi8(
            0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, //
            2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3,
        ),
    );
    let select = _mm256_set1_epi64x(0x8040_2010_0804_0201u64 as i64);
    _mm256_cmpeq_epi8(_mm256_and_si256(spread, select), select)
}

/// Eight i32 sums of `u * s` over groups of 4 bytes (u unsigned, s signed).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_u8_i8(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

/// As [`dot_u8_i8`], each 16-bit pair sum weighted by the i16 in `scales` first.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn dot_u8_i8_scaled(u: __m256i, s: __m256i, scales: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scales)
}

/// For K-quants with 16-value sub-blocks: the 16 i16 scales of a super-block as two vectors
/// (scales 0..8 in both 128-bit lanes, scales 8..16 in both lanes), from which [`scale_pair`]
/// picks the scales of a 32-value group.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_halves(scales16: __m256i) -> [__m256i; 2] {
    [
        _mm256_permute2x128_si256::<0x00>(scales16, scales16),
        _mm256_permute2x128_si256::<0x11>(scales16, scales16),
    ]
}

/// `shuffle_epi8` masks for [`scale_pair`]: for pair k, i16 number 2k of the source into every
/// i16 of the low lane, number 2k + 1 into the high lane.
const PAIR_MASKS: [[u8; 32]; 4] = {
    let mut m = [[0u8; 32]; 4];
    let mut k = 0;
    while k < 4 {
        let mut i = 0;
        while i < 16 {
            m[k][i] = (4 * k + i % 2) as u8; // bytes of i16 2k
            m[k][16 + i] = (4 * k + 2 + i % 2) as u8; // bytes of i16 2k + 1
            i += 1;
        }
        k += 1;
    }
    m
};

/// The scales of 32-value group `g` (sub-blocks 2g and 2g + 1): sub-block 2g's scale in the low
/// lane's 8 i16s (its 16 values' pair sums), 2g + 1's in the high lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn scale_pair(halves: &[__m256i; 2], g: usize) -> __m256i {
    _mm256_shuffle_epi8(halves[g / 4], load256(PAIR_MASKS[g % 4].as_ptr()))
}

// ---------------------------------------------------------------------------------------------
// Float weights.

macro_rules! float_row {
    ($name:ident, $size:expr, |$p:ident| $load8:expr, |$b:ident| $load1:expr) => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const T: usize>(w: &[u8], x: &[f32], xs: usize) -> [f32; T] {
            let cols = w.len() / $size;
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            // Two accumulators per token hide the FMA latency when T = 1.
            let mut acc = [[_mm256_setzero_ps(); 2]; T];
            let mut i = 0;
            while i + 16 <= cols {
                for u in 0..2 {
                    let $p = wp.add((i + 8 * u) * $size);
                    let wv = $load8;
                    for t in 0..T {
                        let xv = _mm256_loadu_ps(xp.add(t * xs + i + 8 * u));
                        acc[t][u] = _mm256_fmadd_ps(wv, xv, acc[t][u]);
                    }
                }
                i += 16;
            }
            let mut out = [0f32; T];
            for t in 0..T {
                out[t] = hsum(_mm256_add_ps(acc[t][0], acc[t][1]));
                for j in i..cols {
                    let $b = &w[j * $size..(j + 1) * $size];
                    out[t] += $load1 * x[t * xs + j];
                }
            }
            out
        }
    };
}

float_row!(row_f32, 4, |p| _mm256_loadu_ps(p as *const f32), |b| {
    f32::from_le_bytes([b[0], b[1], b[2], b[3]])
});
float_row!(
    row_f16,
    2,
    |p| _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i)),
    |b| super::blocks::f16_to_f32(u16::from_le_bytes([b[0], b[1]]))
);
float_row!(
    row_bf16,
    2,
    |p| _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
        _mm_loadu_si128(p as *const __m128i)
    ))),
    |b| f32::from_bits((u16::from_le_bytes([b[0], b[1]]) as u32) << 16)
);

// ---------------------------------------------------------------------------------------------
// Legacy 32-value blocks against Q8_0 / Q8_1 activations.

/// Shared body of the legacy types: `unpack(block) -> (d, m, w)` gives the block's scale, offset
/// (0 for symmetric types) and 32 weight bytes; `SIGNED` says whether `w` is signed (sign trick)
/// or unsigned (direct `maddubs`, plus `m * s` from Q8_1). Even and odd blocks go to separate
/// accumulators: one block's work is short next to an FMA's latency.
macro_rules! legacy_row {
    ($name:ident, $bytes:expr, $signed:expr, |$p:ident| $unpack:expr) => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name<const T: usize>(w: &[u8], x: &[BlockQ8], xs: usize) -> [f32; T] {
            #[inline]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn block<const T: usize>(
                $p: *const u8,
                y: *const BlockQ8,
                xs: usize,
                acc: &mut [__m256; T],
                offset: &mut [f32; T],
            ) {
                let (d, m, wq): (f32, f32, __m256i) = $unpack;
                // Unsigned weight bytes for maddubs, and the sign each activation takes.
                let wu = if $signed {
                    _mm256_sign_epi8(wq, wq)
                } else {
                    wq
                };
                for t in 0..T {
                    let y = &*y.add(t * xs);
                    let yv = load256(y.qs.as_ptr() as *const u8);
                    let yv = if $signed {
                        _mm256_sign_epi8(yv, wq)
                    } else {
                        yv
                    };
                    let sum = _mm256_cvtepi32_ps(dot_u8_i8(wu, yv));
                    acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), sum, acc[t]);
                    if !$signed {
                        offset[t] = m.mul_add(y.s, offset[t]);
                    }
                }
            }
            let nb = w.len() / $bytes;
            let (wp, xp) = (w.as_ptr(), x.as_ptr());
            let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
            let (mut off0, mut off1) = ([0f32; T], [0f32; T]);
            let mut b = 0;
            while b + 2 <= nb {
                block(wp.add(b * $bytes), xp.add(b), xs, &mut acc0, &mut off0);
                block(
                    wp.add((b + 1) * $bytes),
                    xp.add(b + 1),
                    xs,
                    &mut acc1,
                    &mut off1,
                );
                b += 2;
            }
            if b < nb {
                block(wp.add(b * $bytes), xp.add(b), xs, &mut acc0, &mut off0);
            }
            let mut out = [0f32; T];
            for t in 0..T {
                out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + (off0[t] + off1[t]);
            }
            out
        }
    };
}

// Q4_0: d, 16 nibble bytes; value = nibble - 8.
legacy_row!(row_q4_0, 18, true, |p| (
    f16_at(p),
    0.0,
    _mm256_sub_epi8(nibbles(p.add(2)), _mm256_set1_epi8(8))
));
// Q4_1: d, m, 16 nibble bytes; value = nibble * d + m.
legacy_row!(row_q4_1, 20, false, |p| (
    f16_at(p),
    f16_at(p.add(2)),
    nibbles(p.add(4))
));
// Q5_0: d, qh, 16 nibble bytes; value = (nibble | bit << 4) - 16, i.e. the nibble with 0xF0 or'ed
// in (two's complement of nibble - 16) where the bit is clear.
legacy_row!(row_q5_0, 22, true, |p| (
    f16_at(p),
    0.0,
    _mm256_or_si256(
        nibbles(p.add(6)),
        _mm256_andnot_si256(
            bit_bytes(u32::from_le_bytes([
                *p.add(2),
                *p.add(3),
                *p.add(4),
                *p.add(5)
            ])),
            _mm256_set1_epi8(0xF0u8 as i8)
        ),
    )
));
// Q5_1: d, m, qh, 16 nibble bytes; value = (nibble | bit << 4) * d + m.
legacy_row!(row_q5_1, 24, false, |p| (
    f16_at(p),
    f16_at(p.add(2)),
    _mm256_or_si256(
        nibbles(p.add(8)),
        _mm256_and_si256(
            bit_bytes(u32::from_le_bytes([
                *p.add(4),
                *p.add(5),
                *p.add(6),
                *p.add(7)
            ])),
            _mm256_set1_epi8(0x10)
        ),
    )
));
// Q8_0: d, 32 signed bytes.
legacy_row!(row_q8_0, 34, true, |p| (f16_at(p), 0.0, load256(p.add(2))));

// ---------------------------------------------------------------------------------------------
// K-quants against Q8_K activations. Per super-block, integer sums of `scale * (q . y)` are kept
// per token and scaled once by `d * y.d`; min terms (Q2_K, Q4_K, Q5_K) and offsets (Q3_K: -4,
// Q6_K: -32) come from the activations' 16-value sums `bsums`.

/// `y.qs[at..at + 32]` of activation block `b` of token `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act(xp: *const BlockQ8K, xs: usize, t: usize, b: usize, at: usize) -> __m256i {
    _mm256_loadu_si256((*xp.add(t * xs + b)).qs.as_ptr().add(at) as *const __m256i)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bsums(xp: *const BlockQ8K, xs: usize, t: usize, b: usize) -> __m256i {
    _mm256_loadu_si256((*xp.add(t * xs + b)).bsums.as_ptr() as *const __m256i)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn act_d(xp: *const BlockQ8K, xs: usize, t: usize, b: usize) -> f32 {
    (*xp.add(t * xs + b)).d
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn finish<const T: usize>(acc: [__m256; T]) -> [f32; T] {
    let mut out = [0f32; T];
    for t in 0..T {
        out[t] = hsum(acc[t]);
    }
    out
}

/// Q2_K (84 bytes): scales[16] (scale | min << 4), qs[64], d, dmin. Group g = 4 * half + j of 32
/// values is bits 2j..2j+2 of qs[32 * half ..][..32]; its sub-blocks are 2g and 2g + 1.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q2_k<const T: usize>(w: &[u8], x: &[BlockQ8K], xs: usize) -> [f32; T] {
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..w.len() / 84 {
        let p = wp.add(b * 84);
        let (d, dmin) = (f16_at(p.add(80)), f16_at(p.add(82)));
        let sc = _mm_loadu_si128(p as *const __m128i);
        let m4 = _mm_set1_epi8(0xF);
        let scales = scale_halves(_mm256_cvtepu8_epi16(_mm_and_si128(sc, m4)));
        let mins = _mm256_cvtepu8_epi16(_mm_and_si128(_mm_srli_epi16::<4>(sc), m4));
        let mut sum = [_mm256_setzero_si256(); T];
        for t in 0..T {
            let m = _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(xp, xs, t, b), mins));
            acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * act_d(xp, xs, t, b)), m, acc[t]);
        }
        for half in 0..2 {
            let mut bits = load256(p.add(16 + 32 * half));
            for j in 0..4 {
                let q = _mm256_and_si256(bits, _mm256_set1_epi8(3));
                bits = _mm256_srli_epi16::<2>(bits);
                let g = 4 * half + j;
                let s = scale_pair(&scales, g);
                for t in 0..T {
                    sum[t] =
                        _mm256_add_epi32(sum[t], dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s));
                }
            }
        }
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(
                _mm256_set1_ps(d * act_d(xp, xs, t, b)),
                _mm256_cvtepi32_ps(sum[t]),
                acc[t],
            );
        }
    }
    finish(acc)
}

/// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Values as Q2_K's plus a third bit, bit
/// g of hmask[l]; stored unsigned (0..8) and shifted by -4 through `bsums`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q3_k<const T: usize>(w: &[u8], x: &[BlockQ8K], xs: usize) -> [f32; T] {
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..w.len() / 110 {
        let p = wp.add(b * 110);
        let d = f16_at(p.add(108));
        let sc = q3k_scales(std::slice::from_raw_parts(p.add(96), 12));
        let scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(sc.as_ptr() as *const __m128i));
        let scales = scale_halves(scales16);
        let mut sum = [_mm256_setzero_si256(); T];
        for t in 0..T {
            let offset = _mm256_madd_epi16(bsums(xp, xs, t, b), scales16);
            sum[t] = _mm256_sub_epi32(sum[t], _mm256_slli_epi32::<2>(offset));
        }
        let mut high = load256(p);
        for half in 0..2 {
            let mut bits = load256(p.add(32 + 32 * half));
            for j in 0..4 {
                let low = _mm256_and_si256(bits, _mm256_set1_epi8(3));
                bits = _mm256_srli_epi16::<2>(bits);
                // Bit 0 of each hmask byte (shifted down once per group) becomes bit 2 of q.
                let hb = _mm256_and_si256(_mm256_slli_epi16::<2>(high), _mm256_set1_epi8(4));
                high = _mm256_srli_epi16::<1>(high);
                let q = _mm256_or_si256(low, hb);
                let g = 4 * half + j;
                let s = scale_pair(&scales, g);
                for t in 0..T {
                    sum[t] =
                        _mm256_add_epi32(sum[t], dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s));
                }
            }
        }
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(
                _mm256_set1_ps(d * act_d(xp, xs, t, b)),
                _mm256_cvtepi32_ps(sum[t]),
                acc[t],
            );
        }
    }
    finish(acc)
}

/// The min terms of Q4_K/Q5_K: `mins` (8 x u8) doubled into 16 i16 so that one `madd` with
/// the 16 `bsums` gives `min_g * (bsum_2g + bsum_2g+1)`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn mins_x2(mins: [u8; 8]) -> __m256i {
    let m = _mm_cvtepu8_epi16(_mm_loadl_epi64(mins.as_ptr() as *const __m128i));
    _mm256_set_m128i(_mm_unpackhi_epi16(m, m), _mm_unpacklo_epi16(m, m))
}

/// Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Chunk c of 64 values is qs[32c..][..32],
/// low nibbles (sub-block 2c) then high nibbles (2c + 1).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q4_k<const T: usize>(w: &[u8], x: &[BlockQ8K], xs: usize) -> [f32; T] {
    row_q45_k::<T, false>(w, x, xs)
}

/// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. Q4_K plus a 5th bit: bit (2c + hi)
/// of qh[l].
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q5_k<const T: usize>(w: &[u8], x: &[BlockQ8K], xs: usize) -> [f32; T] {
    row_q45_k::<T, true>(w, x, xs)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q45_k<const T: usize, const Q5: bool>(
    w: &[u8],
    x: &[BlockQ8K],
    xs: usize,
) -> [f32; T] {
    let bytes = if Q5 { 176 } else { 144 };
    let qs_at = if Q5 { 48 } else { 16 };
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..w.len() / bytes {
        let p = wp.add(b * bytes);
        let (d, dmin) = (f16_at(p), f16_at(p.add(2)));
        let (sc, mn) = q4k_scales_mins(std::slice::from_raw_parts(p.add(4), 12));
        let mins = mins_x2(mn);
        let mut sum = [_mm256_setzero_si256(); T];
        for t in 0..T {
            let m = _mm256_cvtepi32_ps(_mm256_madd_epi16(bsums(xp, xs, t, b), mins));
            acc[t] = _mm256_fnmadd_ps(_mm256_set1_ps(dmin * act_d(xp, xs, t, b)), m, acc[t]);
        }
        let mut high = if Q5 {
            load256(p.add(16))
        } else {
            _mm256_setzero_si256()
        };
        let m4 = _mm256_set1_epi8(0xF);
        for c in 0..4 {
            let v = load256(p.add(qs_at + 32 * c));
            let mut lo = _mm256_and_si256(v, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
            if Q5 {
                // Bits 0 and 1 of each qh byte (shifted down 2 per chunk) become bit 4.
                let h = _mm256_set1_epi8(0x10);
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(high), h));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(high), h));
                high = _mm256_srli_epi16::<2>(high);
            }
            let s_lo = _mm256_set1_epi16(sc[2 * c] as i16);
            let s_hi = _mm256_set1_epi16(sc[2 * c + 1] as i16);
            for t in 0..T {
                let a = dot_u8_i8_scaled(lo, act(xp, xs, t, b, 64 * c), s_lo);
                let z = dot_u8_i8_scaled(hi, act(xp, xs, t, b, 64 * c + 32), s_hi);
                sum[t] = _mm256_add_epi32(sum[t], _mm256_add_epi32(a, z));
            }
        }
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(
                _mm256_set1_ps(d * act_d(xp, xs, t, b)),
                _mm256_cvtepi32_ps(sum[t]),
                acc[t],
            );
        }
    }
    finish(acc)
}

/// Q6_K (210 bytes): ql[128], qh[64], scales[16] (i8), d. Per half, four rows of 32 values:
/// ql[0..32] low nibbles, ql[32..64] low, ql[0..32] high, ql[32..64] high, each with 2 bits of
/// qh[0..32] on top (bits 0-1, 2-3, 4-5, 6-7). Stored unsigned (0..64), shifted by -32 through
/// `bsums`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q6_k<const T: usize>(w: &[u8], x: &[BlockQ8K], xs: usize) -> [f32; T] {
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut acc = [_mm256_setzero_ps(); T];
    let m4 = _mm256_set1_epi8(0xF);
    let m2 = _mm256_set1_epi8(0x30);
    for b in 0..w.len() / 210 {
        let p = wp.add(b * 210);
        let d = f16_at(p.add(208));
        let scales16 = _mm256_cvtepi8_epi16(_mm_loadu_si128(p.add(192) as *const __m128i));
        let scales = scale_halves(scales16);
        let mut sum = [_mm256_setzero_si256(); T];
        for t in 0..T {
            let offset = _mm256_madd_epi16(bsums(xp, xs, t, b), scales16);
            sum[t] = _mm256_sub_epi32(sum[t], _mm256_slli_epi32::<5>(offset));
        }
        for half in 0..2 {
            let l0 = load256(p.add(64 * half));
            let l1 = load256(p.add(64 * half + 32));
            let h = load256(p.add(128 + 32 * half));
            let q = [
                _mm256_or_si256(
                    _mm256_and_si256(l0, m4),
                    _mm256_and_si256(_mm256_slli_epi16::<4>(h), m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(l1, m4),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(h), m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l0), m4),
                    _mm256_and_si256(h, m2),
                ),
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l1), m4),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(h), m2),
                ),
            ];
            for (j, q) in q.into_iter().enumerate() {
                let g = 4 * half + j;
                let s = scale_pair(&scales, g);
                for t in 0..T {
                    sum[t] =
                        _mm256_add_epi32(sum[t], dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s));
                }
            }
        }
        for t in 0..T {
            acc[t] = _mm256_fmadd_ps(
                _mm256_set1_ps(d * act_d(xp, xs, t, b)),
                _mm256_cvtepi32_ps(sum[t]),
                acc[t],
            );
        }
    }
    finish(acc)
}

// ---------------------------------------------------------------------------------------------
// Prefill: one weight row against eight interleaved tokens, one token per 32-bit lane.
//
// A weight block is unpacked once into a stack buffer of unsigned bytes (signed for Q8_0) in
// value order. Step k broadcasts weight bytes 4k..4k+4 to all lanes and `maddubs` them with the
// eight tokens' values 4k..4k+4 (`x.qs[k]`): each lane gets two i16 pair sums of one token.
// Steps are summed in i16 while that cannot overflow (16 * max weight * 127 < 32768 for 8
// steps of Q4, 4 of Q5, 2 of Q6), then `madd` folds them into i32 per token, weighted by the
// sub-block scale. Offsets of unsigned storage (Q4_0: -8, Q5_0: -16, Q3_K: -4, Q6_K: -32) and
// K-quant mins come from per-token activation sums, exactly in integers.

/// Defines `Tile8` functions from `row8(row, x) -> __m256` (eight token results).
macro_rules! tiles8 {
    ($($tile:ident => $row:ident, $act:ty, $bytes_per_act:expr;)*) => {$(
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $tile(w: &[u8], rb: usize, x: &[$act], out: &mut [f32]) {
            let nrows = w.len() / rb;
            assert!(out.len() >= 8 * nrows && rb % $bytes_per_act == 0 && x.len() >= rb / $bytes_per_act);
            for (r, row) in w.chunks_exact(rb).enumerate() {
                let mut v = [0f32; 8];
                _mm256_storeu_ps(v.as_mut_ptr(), $row(row, x));
                for (t, v) in v.into_iter().enumerate() {
                    out[t * nrows + r] = v;
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

/// Unpacked weight bytes, aligned so that storing a decoded vector never splits a cache line.
#[repr(C, align(32))]
struct Unpacked<const N: usize>([u8; N]);

/// Hides from the optimizer what was just stored at `p`. Without it LLVM forwards the stored
/// vector into registers and rebuilds every 4-byte broadcast with two shuffles, which then
/// bottleneck on the shuffle ports; a broadcast from memory costs only a load.
#[inline(always)]
fn opaque(p: *const u8) -> *const u8 {
    std::hint::black_box(p)
}

/// Weight bytes `4k..4k + 4` of `w` in every 32-bit lane.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bcast4(w: *const u8, k: usize) -> __m256i {
    _mm256_set1_epi32((w.add(4 * k) as *const i32).read_unaligned())
}

/// `sum_{k in ks} maddubs(w[4k..4k + 4], x[k])`: per token lane, two i16 sums of unsigned weight
/// times signed activation. The caller keeps the range short enough not to overflow i16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn steps_i16(w: *const u8, x: &[[i8; 32]], ks: std::ops::Range<usize>) -> __m256i {
    let mut s = _mm256_setzero_si256();
    for k in ks {
        s = _mm256_add_epi16(
            s,
            _mm256_maddubs_epi16(bcast4(w, k), load256(x[k].as_ptr() as *const u8)),
        );
    }
    s
}

/// Legacy blocks against eight tokens. `$unpack(p) -> (d, m, w)` as in `legacy_row!`, with `w`
/// unsigned; `$offset_shift` is log2 of what to subtract per token times its `sum` (8 for Q4_0,
/// 16 for Q5_0, none when Q8_1's `m * s` applies); `$steps` is how many steps may sum in i16.
/// Even and odd blocks, and the `m * s` terms, go to separate accumulators so that the FMAs do
/// not wait on each other.
macro_rules! legacy_row8 {
    ($name:ident, $bytes:expr, $offset_shift:expr, $with_m:expr, $steps:expr, |$p:ident| $unpack:expr) => {
        #[inline]
        #[target_feature(enable = "avx2,fma,f16c")]
        unsafe fn $name(w: &[u8], x: &[BlockQ8x8]) -> __m256 {
            #[inline]
            #[target_feature(enable = "avx2,fma,f16c")]
            unsafe fn block($p: *const u8, y: &BlockQ8x8, acc: &mut __m256, acc_m: &mut __m256) {
                let (d, m, wq): (f32, f32, __m256i) = $unpack;
                let mut buf = Unpacked([0u8; 32]);
                _mm256_store_si256(buf.0.as_mut_ptr() as *mut __m256i, wq);
                let wb = opaque(buf.0.as_ptr());
                let mut isum = _mm256_setzero_si256();
                for k0 in (0..8).step_by($steps) {
                    let s = steps_i16(wb, &y.qs, k0..k0 + $steps);
                    isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
                }
                if $offset_shift > 0 {
                    let sum = _mm256_loadu_si256(y.sum.as_ptr() as *const __m256i);
                    isum = _mm256_sub_epi32(
                        isum,
                        _mm256_sll_epi32(sum, _mm_cvtsi32_si128($offset_shift)),
                    );
                }
                let dy = _mm256_loadu_ps(y.d.as_ptr());
                *acc = _mm256_fmadd_ps(
                    _mm256_cvtepi32_ps(isum),
                    _mm256_mul_ps(_mm256_set1_ps(d), dy),
                    *acc,
                );
                if $with_m {
                    *acc_m =
                        _mm256_fmadd_ps(_mm256_set1_ps(m), _mm256_loadu_ps(y.s.as_ptr()), *acc_m);
                }
            }
            let nb = w.len() / $bytes;
            let wp = w.as_ptr();
            let mut acc = [_mm256_setzero_ps(); 4];
            let [a0, a1, m0, m1] = &mut acc;
            let mut b = 0;
            while b + 2 <= nb {
                block(wp.add(b * $bytes), &x[b], a0, m0);
                block(wp.add((b + 1) * $bytes), &x[b + 1], a1, m1);
                b += 2;
            }
            if b < nb {
                block(wp.add(b * $bytes), &x[b], a0, m0);
            }
            _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))
        }
    };
}

legacy_row8!(row8_q4_0, 18, 3, false, 8, |p| (
    f16_at(p),
    0.0,
    nibbles(p.add(2))
));
legacy_row8!(row8_q4_1, 20, 0, true, 8, |p| (
    f16_at(p),
    f16_at(p.add(2)),
    nibbles(p.add(4))
));
legacy_row8!(row8_q5_0, 22, 4, false, 4, |p| (
    f16_at(p),
    0.0,
    _mm256_or_si256(
        nibbles(p.add(6)),
        _mm256_and_si256(
            bit_bytes(u32::from_le_bytes([
                *p.add(2),
                *p.add(3),
                *p.add(4),
                *p.add(5)
            ])),
            _mm256_set1_epi8(0x10)
        ),
    )
));
legacy_row8!(row8_q5_1, 24, 0, true, 4, |p| (
    f16_at(p),
    f16_at(p.add(2)),
    _mm256_or_si256(
        nibbles(p.add(8)),
        _mm256_and_si256(
            bit_bytes(u32::from_le_bytes([
                *p.add(4),
                *p.add(5),
                *p.add(6),
                *p.add(7)
            ])),
            _mm256_set1_epi8(0x10)
        ),
    )
));

/// Q8_0 against eight tokens: signed weights, so each step uses the sign trick and is folded to
/// i32 at once (|w| * |y| pair sums reach 32512).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q8_0(w: &[u8], x: &[BlockQ8x8]) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    for (b, y) in x.iter().enumerate().take(w.len() / 34) {
        let p = w.as_ptr().add(b * 34);
        let mut isum = _mm256_setzero_si256();
        for k in 0..8 {
            let wk = bcast4(p.add(2), k);
            let yk = _mm256_sign_epi8(load256(y.qs[k].as_ptr() as *const u8), wk);
            isum = _mm256_add_epi32(isum, dot_u8_i8(_mm256_sign_epi8(wk, wk), yk));
        }
        let dy = _mm256_loadu_ps(y.d.as_ptr());
        acc = _mm256_fmadd_ps(
            _mm256_cvtepi32_ps(isum),
            _mm256_mul_ps(_mm256_set1_ps(f16_at(p)), dy),
            acc,
        );
    }
    acc
}

/// The per-super-block parts of a K-quant against eight tokens: unpacked values `q` (256 unsigned
/// bytes in value order), sub-block scales, and per 16-value group the factor of its activation
/// sum (the min, or scale times the storage offset), applied with `d_sum`.
struct KUnpacked {
    q: Unpacked<256>,
    d: f32,
    /// Scale of each sub-block (16 of 16 values, or 8 of 32).
    scale: [i16; 16],
    /// Factor of each 16-value group's activation sum; the result is
    /// `d * y.d * (sum_g scale_g * (q . y)_g) - d_sum * y.d * (sum_g group_f_g * sum(y)_g)`.
    group_f: [i16; 16],
    d_sum: f32,
}

/// A K-quant super-block row against eight tokens, given its unpacking. `SUB` is the sub-block
/// length (16 or 32) and `STEPS` how many 4-value steps may sum in i16.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn k_row8<const SUB: usize, const STEPS: usize>(
    k: &KUnpacked,
    y: &BlockQ8Kx8,
    acc: __m256,
) -> __m256 {
    const { assert!((SUB / 4) % STEPS == 0) };
    let mut isum = _mm256_setzero_si256();
    let q = opaque(k.q.0.as_ptr());
    for g in 0..QK_K / SUB {
        let scale = _mm256_set1_epi16(k.scale[g]);
        for k0 in (g * SUB / 4..(g + 1) * SUB / 4).step_by(STEPS) {
            let s = steps_i16(q, &y.qs, k0..k0 + STEPS);
            isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s, scale));
        }
    }
    // Per token: sum over groups of group_f * bsum, a pair of groups per madd.
    let mut gsum = _mm256_setzero_si256();
    for j in 0..8 {
        let f = (k.group_f[2 * j] as u16 as u32) | ((k.group_f[2 * j + 1] as u16 as u32) << 16);
        let bs = _mm256_loadu_si256(y.bsums[j].as_ptr() as *const __m256i);
        gsum = _mm256_add_epi32(gsum, _mm256_madd_epi16(bs, _mm256_set1_epi32(f as i32)));
    }
    let dy = _mm256_loadu_ps(y.d.as_ptr());
    let acc = _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(isum),
        _mm256_mul_ps(_mm256_set1_ps(k.d), dy),
        acc,
    );
    _mm256_fnmadd_ps(
        _mm256_cvtepi32_ps(gsum),
        _mm256_mul_ps(_mm256_set1_ps(k.d_sum), dy),
        acc,
    )
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn store32(q: &mut Unpacked<256>, at: usize, v: __m256i) {
    _mm256_store_si256(q.0.as_mut_ptr().add(at) as *mut __m256i, v);
}

fn new_k() -> KUnpacked {
    KUnpacked {
        q: Unpacked([0; 256]),
        d: 0.0,
        scale: [0; 16],
        group_f: [0; 16],
        d_sum: 0.0,
    }
}

/// Q2_K: 2-bit values (as in `row_q2_k`), 16 sub-blocks, mins subtracted with `dmin`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q2_k(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    let mut k = new_k();
    for (b, y) in x.iter().enumerate().take(w.len() / 84) {
        let p = w.as_ptr().add(b * 84);
        for half in 0..2 {
            let mut bits = load256(p.add(16 + 32 * half));
            for j in 0..4 {
                store32(
                    &mut k.q,
                    128 * half + 32 * j,
                    _mm256_and_si256(bits, _mm256_set1_epi8(3)),
                );
                bits = _mm256_srli_epi16::<2>(bits);
            }
        }
        for g in 0..16 {
            k.scale[g] = (*p.add(g) & 0xF) as i16;
            k.group_f[g] = (*p.add(g) >> 4) as i16;
        }
        k.d = f16_at(p.add(80));
        k.d_sum = f16_at(p.add(82));
        acc = k_row8::<16, 4>(&k, y, acc);
    }
    acc
}

/// Q3_K: 3-bit values stored unsigned (0..8), offset -4 per value through the group sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q3_k(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    let mut k = new_k();
    for (b, y) in x.iter().enumerate().take(w.len() / 110) {
        let p = w.as_ptr().add(b * 110);
        let mut high = load256(p);
        for half in 0..2 {
            let mut bits = load256(p.add(32 + 32 * half));
            for j in 0..4 {
                let low = _mm256_and_si256(bits, _mm256_set1_epi8(3));
                bits = _mm256_srli_epi16::<2>(bits);
                let hb = _mm256_and_si256(_mm256_slli_epi16::<2>(high), _mm256_set1_epi8(4));
                high = _mm256_srli_epi16::<1>(high);
                store32(&mut k.q, 128 * half + 32 * j, _mm256_or_si256(low, hb));
            }
        }
        let sc = q3k_scales(std::slice::from_raw_parts(p.add(96), 12));
        for g in 0..16 {
            k.scale[g] = sc[g] as i16;
            k.group_f[g] = sc[g] as i16; // times 4 (d_sum = 4 d): -4 * scale * sum(y)
        }
        k.d = f16_at(p.add(108));
        k.d_sum = 4.0 * k.d;
        acc = k_row8::<16, 4>(&k, y, acc);
    }
    acc
}

/// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q45_k<const Q5: bool>(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    let bytes = if Q5 { 176 } else { 144 };
    let qs_at = if Q5 { 48 } else { 16 };
    let mut acc = _mm256_setzero_ps();
    let mut k = new_k();
    let m4 = _mm256_set1_epi8(0xF);
    for (b, y) in x.iter().enumerate().take(w.len() / bytes) {
        let p = w.as_ptr().add(b * bytes);
        let mut high = if Q5 {
            load256(p.add(16))
        } else {
            _mm256_setzero_si256()
        };
        for c in 0..4 {
            let v = load256(p.add(qs_at + 32 * c));
            let mut lo = _mm256_and_si256(v, m4);
            let mut hi = _mm256_and_si256(_mm256_srli_epi16::<4>(v), m4);
            if Q5 {
                let h = _mm256_set1_epi8(0x10);
                lo = _mm256_or_si256(lo, _mm256_and_si256(_mm256_slli_epi16::<4>(high), h));
                hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_slli_epi16::<3>(high), h));
                high = _mm256_srli_epi16::<2>(high);
            }
            store32(&mut k.q, 64 * c, lo);
            store32(&mut k.q, 64 * c + 32, hi);
        }
        let (sc, mn) = q4k_scales_mins(std::slice::from_raw_parts(p.add(4), 12));
        for j in 0..8 {
            k.scale[j] = sc[j] as i16;
            k.group_f[2 * j] = mn[j] as i16;
            k.group_f[2 * j + 1] = mn[j] as i16;
        }
        k.d = f16_at(p);
        k.d_sum = f16_at(p.add(2));
        acc = if Q5 {
            k_row8::<32, 4>(&k, y, acc)
        } else {
            k_row8::<32, 8>(&k, y, acc)
        };
    }
    acc
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q4_k(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    row8_q45_k::<false>(w, x)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q5_k(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    row8_q45_k::<true>(w, x)
}

/// Q6_K: 6-bit values stored unsigned (0..64), offset -32 per value through the group sums.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q6_k(w: &[u8], x: &[BlockQ8Kx8]) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    let mut k = new_k();
    let m4 = _mm256_set1_epi8(0xF);
    let m2 = _mm256_set1_epi8(0x30);
    for (b, y) in x.iter().enumerate().take(w.len() / 210) {
        let p = w.as_ptr().add(b * 210);
        for half in 0..2 {
            let l0 = load256(p.add(64 * half));
            let l1 = load256(p.add(64 * half + 32));
            let h = load256(p.add(128 + 32 * half));
            let at = 128 * half;
            store32(
                &mut k.q,
                at,
                _mm256_or_si256(
                    _mm256_and_si256(l0, m4),
                    _mm256_and_si256(_mm256_slli_epi16::<4>(h), m2),
                ),
            );
            store32(
                &mut k.q,
                at + 32,
                _mm256_or_si256(
                    _mm256_and_si256(l1, m4),
                    _mm256_and_si256(_mm256_slli_epi16::<2>(h), m2),
                ),
            );
            store32(
                &mut k.q,
                at + 64,
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l0), m4),
                    _mm256_and_si256(h, m2),
                ),
            );
            store32(
                &mut k.q,
                at + 96,
                _mm256_or_si256(
                    _mm256_and_si256(_mm256_srli_epi16::<4>(l1), m4),
                    _mm256_and_si256(_mm256_srli_epi16::<2>(h), m2),
                ),
            );
        }
        for g in 0..16 {
            let sc = *p.add(192 + g) as i8 as i16;
            k.scale[g] = sc;
            k.group_f[g] = sc; // times 32 (d_sum = 32 d)
        }
        k.d = f16_at(p.add(208));
        k.d_sum = 32.0 * k.d;
        acc = k_row8::<16, 2>(&k, y, acc);
    }
    acc
}

const _: () = assert!(QK_K == 256);
