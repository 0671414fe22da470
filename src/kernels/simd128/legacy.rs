//! SIMD128 rows of the legacy 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against
//! Q8_0 / Q8_1 activations, for decode and small token tiles. Decode runs four rows per pass
//! (Q4_0/Q5_0/Q8_0: four accumulation chains, a quarter of the activation loads, one vector f16
//! conversion for the four rows' scales) or two (Q4_1/Q5_1, whose scale lanes hold `d, m` pairs).

use core::arch::wasm32::*;

use super::ops::{
    act32, bit_masks, dot32, each4, f16_at, f16x4_to_f32, f32x4_extract_lane_dyn, hsum, lane_splat,
    nibbles, prefetch, ZERO,
};
use crate::kernels::blocks::BlockQ8;
use crate::kernels::tile::{LegacyRows, Rows};

/// A legacy block type: its size, how its 32 values unpack into i16 lanes (true signed values for
/// the symmetric types, the unsigned `q` of `q * d + m` for Q4_1/Q5_1), and its scales.
pub(crate) trait Legacy {
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
pub(crate) struct Q40;
impl Legacy for Q40 {
    const BYTES: usize = 18;
    const MIN: bool = false;
    const WIDE: bool = false;
    #[inline(always)]
    unsafe fn unpack(p: *const u8) -> [v128; 4] {
        let n = nibbles(p.add(2));
        each4!(|k| i16x8_sub(n[k], i16x8_splat(8)))
    }
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), 0.0)
    }
}

/// Q4_1: d, m, 16 nibble bytes; value = nibble * d + m.
pub(crate) struct Q41;
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
pub(crate) struct Q50;
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
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), 0.0)
    }
}

/// Q5_1: d, m, qh, 16 nibble bytes; value = (nibble | bit << 4) * d + m.
pub(crate) struct Q51;
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
    #[inline(always)]
    unsafe fn scales(p: *const u8) -> (f32, f32) {
        (f16_at(p), f16_at(p.add(2)))
    }
}

/// Q8_0: d, 32 signed bytes.
pub(crate) struct Q80;
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
pub(super) unsafe fn legacy_scales<L: Legacy, const R: usize>(p: &[*const u8; R]) -> v128 {
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

/// `R` legacy rows against `T` tokens: per block, the activations are loaded once for all rows,
/// each row's weights unpacked once for all tokens, and all rows' scales converted at once.
#[inline(always)]
pub(super) unsafe fn legacy_rows<L: Legacy, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    // Not a `const` assert: the tile driver names every type's 4-row pass, used or not.
    assert!(R <= 4 && (R <= 2 || !L::MIN));
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

impl<L: Legacy> Rows for LegacyRows<L> {
    type Act = BlockQ8;
    const BYTES_PER_ACT: usize = L::BYTES;
    const DECODE_ROWS: usize = if L::MIN { 2 } else { 4 };
    // Inlined into the tile driver, as the per-type tile functions were: called across
    // codegen units it would not inline, and its results would travel through memory.
    #[inline(always)]
    unsafe fn rows<const R: usize, const T: usize>(
        w: [*const u8; R],
        rb: usize,
        x: *const BlockQ8,
        xs: usize,
        ahead: *const u8,
    ) -> [[f32; T]; R] {
        legacy_rows::<L, R, T>(w, rb, x, xs, ahead)
    }
}
