//! AVX2 rows of the K-quants (Q2_K..Q6_K, 256-value super-blocks) against Q8_K activations, for
//! decode and small token tiles. Per super-block, integer sums of `scale * (q . y)` are kept per
//! token and scaled once by `d * y.d`; min terms (Q2_K, Q4_K, Q5_K) and offsets (Q3_K: -4,
//! Q6_K: -32) come from the activations' 16-value sums `bsums`.

use std::arch::x86_64::*;

use super::ops::{dot_u8_i8_scaled, f16_at, hsum, load256, scale_halves, scale_pair};
use super::Row;
use crate::kernels::blocks::{q3k_scales, q4k_scales_mins, BlockQ8K};
use crate::kernels::tile::KRows;

/// A K-quant type: its super-block size and its row kernel (each type unpacks differently).
pub(crate) trait KQuant {
    const BYTES: usize;
    /// One row of `rb` bytes against the `T` tokens at `xp + t * xs`.
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T];
}

impl<K: KQuant> Row for KRows<K> {
    type Act = BlockQ8K;
    const BYTES_PER_ACT: usize = K::BYTES;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        w: *const u8,
        rb: usize,
        x: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        K::row::<T>(w, rb, x, xs)
    }
}

/// `y.qs[at..at + 32]` of activation block `b` of token `t`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn act(xp: *const BlockQ8K, xs: usize, t: usize, b: usize, at: usize) -> __m256i {
    _mm256_loadu_si256((*xp.add(t * xs + b)).qs.as_ptr().add(at) as *const __m256i)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn bsums(xp: *const BlockQ8K, xs: usize, t: usize, b: usize) -> __m256i {
    _mm256_loadu_si256((*xp.add(t * xs + b)).bsums.as_ptr() as *const __m256i)
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn act_d(xp: *const BlockQ8K, xs: usize, t: usize, b: usize) -> f32 {
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
pub(crate) struct K2;
impl KQuant for K2 {
    const BYTES: usize = 84;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..rb / 84 {
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
                        sum[t] = _mm256_add_epi32(
                            sum[t],
                            dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s),
                        );
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
}

/// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Values as Q2_K's plus a third bit, bit
/// g of hmask[l]; stored unsigned (0..8) and shifted by -4 through `bsums`.
pub(crate) struct K3;
impl KQuant for K3 {
    const BYTES: usize = 110;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        let mut acc = [_mm256_setzero_ps(); T];
        for b in 0..rb / 110 {
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
                        sum[t] = _mm256_add_epi32(
                            sum[t],
                            dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s),
                        );
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
pub(crate) struct K4;
impl KQuant for K4 {
    const BYTES: usize = 144;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        row_q45_k::<T, false>(wp, rb, xp, xs)
    }
}

/// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. Q4_K plus a 5th bit: bit (2c + hi)
/// of qh[l].
pub(crate) struct K5;
impl KQuant for K5 {
    const BYTES: usize = 176;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        row_q45_k::<T, true>(wp, rb, xp, xs)
    }
}

/// The row kernel of Q4_K (`Q5 = false`) and Q5_K.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row_q45_k<const T: usize, const Q5: bool>(
    wp: *const u8,
    rb: usize,
    xp: *const BlockQ8K,
    xs: usize,
) -> [f32; T] {
    let bytes = if Q5 { 176 } else { 144 };
    let qs_at = if Q5 { 48 } else { 16 };
    let mut acc = [_mm256_setzero_ps(); T];
    for b in 0..rb / bytes {
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
pub(crate) struct K6;
impl KQuant for K6 {
    const BYTES: usize = 210;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        let mut acc = [_mm256_setzero_ps(); T];
        let m4 = _mm256_set1_epi8(0xF);
        let m2 = _mm256_set1_epi8(0x30);
        for b in 0..rb / 210 {
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
                        sum[t] = _mm256_add_epi32(
                            sum[t],
                            dot_u8_i8_scaled(q, act(xp, xs, t, b, 32 * g), s),
                        );
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
}
