//! Everything relaxed SIMD (compiled only with `+relaxed-simd`; the browser loads that build
//! where it validates, after the worker's kernel self-check): the eight-token prefill of the
//! legacy types stored unsigned (Q4_0, Q4_1, Q5_0, Q5_1) with
//! `i32x4.relaxed_dot_i8x16_i7x16_add`. Decode keeps the SIMD128 kernels, which measured as fast
//! or faster on a CPU without dot-product instructions; so does Q8_0, whose signed weights need
//! their signs moved onto the activations first (slower there, in both shapes).

use core::arch::wasm32::*;

use super::legacy::{Legacy, Q40, Q41, Q50, Q51};
use super::ops::{opaque, ZERO};
use super::prefill::{to_f32x8, Acc8};
use crate::gguf::QType;
use crate::kernels::blocks::{BlockQ8, BlockQ8x8};
use crate::kernels::tile::{self, LegacyRows, Rows8};
use crate::kernels::{Kernel, Tile};
use std::marker::PhantomData;

/// A relaxed-SIMD build's kernels for the types that have relaxed ones (`None` for the others,
/// whose `simd128::kernel` is used).
pub(crate) fn kernel_relaxed(t: QType) -> Option<Kernel> {
    Some(match t {
        QType::Q4_0 => relaxed::<Q40>(),
        QType::Q4_1 => relaxed::<Q41>(),
        QType::Q5_0 => relaxed::<Q50>(),
        QType::Q5_1 => relaxed::<Q51>(),
        _ => return None,
    })
}

/// Legacy type `L`'s SIMD128 decode kernel with the relaxed prefill kernel.
fn relaxed<L: U7>() -> Kernel {
    let decode: Tile<BlockQ8> = tile::run::<LegacyRows<L>>;
    Kernel::Q8(decode, Some(tile::run8::<RelaxedRows<L>>))
}

/// A legacy type stored unsigned, as relaxed SIMD's 7-bit operand wants it.
pub(crate) trait U7: Legacy {
    /// Subtracted from the unsigned values of [`Self::unpack_u7`] (8, 16, or 0 for Q4_1/Q5_1).
    const OFFSET: i8;
    /// The 32 stored values as unsigned bytes (0..32) in two vectors: the operand that
    /// `relaxed_dot_i8x16_i7x16` needs to be 7-bit.
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2];
}

impl U7 for Q40 {
    const OFFSET: i8 = 8;
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        nibbles_u8(p.add(2))
    }
}

impl U7 for Q41 {
    const OFFSET: i8 = 0;
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        nibbles_u8(p.add(4))
    }
}

impl U7 for Q50 {
    const OFFSET: i8 = 16;
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        fifth_bits_u8(
            nibbles_u8(p.add(6)),
            (p.add(2) as *const u32).read_unaligned(),
        )
    }
}

impl U7 for Q51 {
    const OFFSET: i8 = 0;
    #[inline(always)]
    unsafe fn unpack_u7(p: *const u8) -> [v128; 2] {
        fifth_bits_u8(
            nibbles_u8(p.add(8)),
            (p.add(4) as *const u32).read_unaligned(),
        )
    }
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

/// The prefill kernel of legacy type `L` with relaxed SIMD.
pub(crate) struct RelaxedRows<L>(PhantomData<L>);

impl<L: U7> Rows8 for RelaxedRows<L> {
    type Act8 = BlockQ8x8;
    const BYTES_PER_ACT: usize = L::BYTES;
    const PASS_ROWS: usize = 2;
    // Inlined into the tile driver, as the per-type tile functions were: called across
    // codegen units it would not inline, and its results would travel through memory.
    #[inline(always)]
    unsafe fn rows8<const R: usize>(
        w: [*const u8; R],
        rb: usize,
        x: &[BlockQ8x8],
    ) -> [[f32; 8]; R] {
        to_f32x8(legacy_row8_relaxed::<L, R>(w, rb, x))
    }
}

/// `prefill::legacy_row8` with relaxed SIMD, for the types stored unsigned: step k's four weight bytes
/// (values 0..32, within the 7 bits the instruction's second operand must keep to) are
/// broadcast and dotted with the raw activation bytes, four tokens per vector, straight into
/// one i32 lane per token. Q4_0/Q5_0's offsets come back through the per-token sums. Integer
/// sums are exact and land in the same lanes as the plain kernel's, and the float steps are the
/// same, so results are bit for bit equal.
#[inline(always)]
unsafe fn legacy_row8_relaxed<L: U7, const R: usize>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8x8],
) -> [[v128; 2]; R] {
    #[derive(Clone, Copy)]
    #[repr(C, align(16))]
    struct Bytes([u8; 32]);
    let nb = rb / L::BYTES;
    let offset = i32x4_splat(L::OFFSET as i32);
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
                s[r][0] = i32x4_relaxed_dot_i8x16_i7x16_add(x0, wk, s[r][0]);
                s[r][1] = i32x4_relaxed_dot_i8x16_i7x16_add(x1, wk, s[r][1]);
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
