//! SIMD128 rows of the IQ2 / IQ3 types: every IQ layout (`blocks::IqLayout`) is a [`KQuant`]
//! with 16-value sub-blocks (`ls = 2 * scale + 1` per half group), no min and no offset, so the
//! K-quant decode rows and eight-token prefill rows run them. `head` folds the type's factor
//! (1/8, 1/4 or 1: a power of two, so exactly) into `d`; `pair` widens a group's grid bytes into
//! i16 lanes and multiplies them by their signs (`blocks::SIGN_BYTES`, widened to +1 / -1).
//!
//! Bounds: |value| <= 62, so the K-quant rows' i16 sums (two products in decode, four in
//! prefill: 4 * 62 * 127 = 31496) cannot overflow, as for Q6_K.

use core::arch::wasm32::*;

use super::kquant::{KHead, KQuant};
use super::ops::{f16_at, ZERO};
use crate::kernels::blocks::{IqLayout, SIGN_BYTES};

/// The 32 values of group `ib` of the block at `p`, as four i16x8 vectors.
#[inline(always)]
unsafe fn values<I: IqLayout>(p: *const u8, ib: usize) -> [v128; 4] {
    let g = I::group(p, ib);
    let mut out = [ZERO; 4];
    for l in 0..4 {
        let grid = u16x8_extend_low_u8x16(u64x2_splat(g.grid[l]));
        let signs = i16x8_extend_low_i8x16(u64x2_splat(SIGN_BYTES[g.signs[l] as usize]));
        out[l] = i16x8_mul(grid, signs);
    }
    out
}

impl<I: IqLayout> KQuant for I {
    const BYTES: usize = I::BYTES;
    const SUB: usize = 16;
    const OFFSET: i16 = 0;
    const PAIR_STRIDE: usize = 1;
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        let mut scale = [0i16; 16];
        for ib in 0..8 {
            let [lo, hi] = I::scales(p, ib);
            scale[2 * ib] = 2 * lo as i16 + 1;
            scale[2 * ib + 1] = 2 * hi as i16 + 1;
        }
        KHead {
            d: f16_at(p) * I::FACTOR,
            dmin: 0.0,
            scale,
            group_f: [ZERO; 2],
        }
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        [values::<I>(p, 2 * c), values::<I>(p, 2 * c + 1)]
    }
}
