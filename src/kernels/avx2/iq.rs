//! AVX2 rows of the IQ2 / IQ3 types against Q8_K activations, for decode and small token tiles.
//!
//! Per 32-value group (`blocks::IqLayout::group`), the four grid entries are set into one vector
//! and given their signs with `sign_epi8` (`blocks::SIGN_BYTES` turns a sign byte into eight
//! bytes of +1 / -1), decoded once per row and used by every token of the tile. The dot is the
//! sign trick (`|w| * (y * sign(w))`), each 16-value half weighted by its `ls = 2 * scale + 1` in
//! the `madd`; the block's integer sum is scaled by `d * y.d` and the row's total by the type's
//! factor, as `reference::dot_iq`. Every IQ type is a [`KQuant`] through this one row kernel.
//!
//! Overflow: magnitudes are at most 62, activations at most 127, so a `maddubs` pair sum is at
//! most 2 * 62 * 127 = 15748, and `madd` by `ls <= 31` stays far inside i32.

use std::arch::x86_64::*;

use super::kquant::{act, act_d, KQuant};
use super::ops::{f16_at, hsum};
use crate::kernels::blocks::{BlockQ8K, IqLayout, SIGN_BYTES};

/// Group `ib` of the block at `b`: its 32 signed values, and the 16 i16 `ls` for `madd` (the
/// first half's in the low 128-bit lane, the second's in the high one).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn group<I: IqLayout>(b: *const u8, ib: usize) -> (__m256i, __m256i) {
    let g = I::group(b, ib);
    let [g0, g1, g2, g3] = g.grid.map(|v| v as i64);
    let [s0, s1, s2, s3] = g.signs.map(|s| SIGN_BYTES[s as usize] as i64);
    let values = _mm256_sign_epi8(
        _mm256_set_epi64x(g3, g2, g1, g0),
        _mm256_set_epi64x(s3, s2, s1, s0),
    );
    let [lo, hi] = I::scales(b, ib).map(|s| _mm_set1_epi16(2 * s as i16 + 1));
    (values, _mm256_set_m128i(hi, lo))
}

impl<I: IqLayout> KQuant for I {
    const BYTES: usize = I::BYTES;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8K,
        xs: usize,
    ) -> [f32; T] {
        let mut acc = [_mm256_setzero_ps(); T];
        for blk in 0..rb / I::BYTES {
            let b = wp.add(blk * I::BYTES);
            let d = f16_at(b);
            let mut isum = [_mm256_setzero_si256(); T];
            for ib in 0..8 {
                let (v, ls) = group::<I>(b, ib);
                let mag = _mm256_sign_epi8(v, v);
                for t in 0..T {
                    let q = _mm256_sign_epi8(act(xp, xs, t, blk, 32 * ib), v);
                    let p = _mm256_maddubs_epi16(mag, q);
                    isum[t] = _mm256_add_epi32(isum[t], _mm256_madd_epi16(p, ls));
                }
            }
            for t in 0..T {
                let dy = _mm256_set1_ps(d * act_d(xp, xs, t, blk));
                acc[t] = _mm256_fmadd_ps(dy, _mm256_cvtepi32_ps(isum[t]), acc[t]);
            }
        }
        let mut out = [0f32; T];
        for t in 0..T {
            out[t] = I::FACTOR * hsum(acc[t]);
        }
        out
    }
}
