//! SIMD128 rows of float weights (F32, F16, BF16) against f32 activations, two rows per decode
//! pass: F16 scales widen exactly in integer lanes, BF16 by a shift.

use core::arch::wasm32::*;

use super::ops::{f16_at, f16x4_to_f32, hsum, prefetch, ZERO};
use crate::kernels::tile::{FloatRows, Rows};

/// How a float weight type is read: four values at a time, or one.
pub(crate) trait FloatWeights {
    const SIZE: usize;
    unsafe fn load4(p: *const u8) -> v128;
    unsafe fn load1(p: *const u8) -> f32;
}

pub(crate) struct F32W;
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

pub(crate) struct F16W;
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

pub(crate) struct BF16W;
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
pub(super) unsafe fn float_rows<F: FloatWeights, const R: usize, const T: usize>(
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

impl<F: FloatWeights> Rows for FloatRows<F> {
    type Act = f32;
    const BYTES_PER_ACT: usize = F::SIZE;
    const DECODE_ROWS: usize = 2;
    // Inlined into the tile driver, as the per-type tile functions were: called across
    // codegen units it would not inline, and its results would travel through memory.
    #[inline(always)]
    unsafe fn rows<const R: usize, const T: usize>(
        w: [*const u8; R],
        rb: usize,
        x: *const f32,
        xs: usize,
        ahead: *const u8,
    ) -> [[f32; T]; R] {
        float_rows::<F, R, T>(w, rb, x, xs, ahead)
    }
}
