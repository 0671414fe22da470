//! AVX2 rows of float weights (F32, F16, BF16) against f32 activations: eight columns per FMA,
//! F16 widened with F16C, BF16 by a shift.

use std::arch::x86_64::*;

use super::ops::hsum;
use super::Row;
use crate::kernels::blocks::f16_to_f32;
use crate::kernels::tile::FloatRows;

/// How a float weight type's values load: eight at a time, or one (the row's tail).
pub(crate) trait FloatWeights {
    const SIZE: usize;
    unsafe fn load8(p: *const u8) -> __m256;
    unsafe fn load1(p: *const u8) -> f32;
}

pub(crate) struct F32W;
impl FloatWeights for F32W {
    const SIZE: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_loadu_ps(p as *const f32)
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load1(p: *const u8) -> f32 {
        (p as *const f32).read_unaligned()
    }
}

pub(crate) struct F16W;
impl FloatWeights for F16W {
    const SIZE: usize = 2;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(p as *const __m128i))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load1(p: *const u8) -> f32 {
        f16_to_f32((p as *const u16).read_unaligned())
    }
}

pub(crate) struct BF16W;
impl FloatWeights for BF16W {
    const SIZE: usize = 2;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load8(p: *const u8) -> __m256 {
        _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
            _mm_loadu_si128(p as *const __m128i),
        )))
    }
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn load1(p: *const u8) -> f32 {
        f32::from_bits(((p as *const u16).read_unaligned() as u32) << 16)
    }
}

impl<F: FloatWeights> Row for FloatRows<F> {
    type Act = f32;
    const BYTES_PER_ACT: usize = F::SIZE;
    /// Eight columns per FMA, sixteen per step.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(wp: *const u8, rb: usize, xp: *const f32, xs: usize) -> [f32; T] {
        let cols = rb / F::SIZE;
        // Two accumulators per token hide the FMA latency when T = 1.
        let mut acc = [[_mm256_setzero_ps(); 2]; T];
        let mut i = 0;
        while i + 16 <= cols {
            for u in 0..2 {
                let wv = F::load8(wp.add((i + 8 * u) * F::SIZE));
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
                out[t] += F::load1(wp.add(j * F::SIZE)) * *xp.add(t * xs + j);
            }
        }
        out
    }
}
