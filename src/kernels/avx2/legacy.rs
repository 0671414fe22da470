//! AVX2 rows of the legacy 32-value block types (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) against Q8_0 /
//! Q8_1 activations, for decode and small token tiles. A block is unpacked into 32 weight bytes
//! once and dotted with each token's block by `maddubs`; symmetric types (Q4_0, Q5_0, Q8_0) take
//! the sign trick, `|w| * (y * sign(w))`, because `maddubs` wants one operand unsigned.

use std::arch::x86_64::*;

use super::ops::{bit_bytes, dot_u8_i8, f16_at, hsum, load256, nibbles};
use super::Row;
use crate::kernels::blocks::BlockQ8;
use crate::kernels::tile::LegacyRows;

/// A legacy block type: its size and how a block unpacks.
pub(crate) trait Legacy {
    const BYTES: usize;
    /// Q4_1/Q5_1: value = `q * d + m`, `q` unsigned; `m * s` (Q8_1's block sum) is added per
    /// block. The other types unpack to their true signed values.
    const MIN: bool;
    /// `(d, m, w)`: the block's scale, offset (0 for the symmetric types) and 32 weight bytes,
    /// signed unless [`Self::MIN`].
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i);
}

/// The five bits of Q5_0/Q5_1 value `j` come from bit `j` of the u32 at `p`.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn fifth_bits(p: *const u8) -> __m256i {
    bit_bytes((p as *const u32).read_unaligned())
}

/// Q4_0: d, 16 nibble bytes; value = nibble - 8.
pub(crate) struct Q40;
impl Legacy for Q40 {
    const BYTES: usize = 18;
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i) {
        let q = _mm256_sub_epi8(nibbles(p.add(2)), _mm256_set1_epi8(8));
        (f16_at(p), 0.0, q)
    }
}

/// Q4_1: d, m, 16 nibble bytes; value = nibble * d + m.
pub(crate) struct Q41;
impl Legacy for Q41 {
    const BYTES: usize = 20;
    const MIN: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i) {
        (f16_at(p), f16_at(p.add(2)), nibbles(p.add(4)))
    }
}

/// Q5_0: d, qh, 16 nibble bytes; value = (nibble | bit << 4) - 16, i.e. the nibble with 0xF0
/// or'ed in (two's complement of nibble - 16) where the bit is clear.
pub(crate) struct Q50;
impl Legacy for Q50 {
    const BYTES: usize = 22;
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i) {
        let high = _mm256_andnot_si256(fifth_bits(p.add(2)), _mm256_set1_epi8(0xF0u8 as i8));
        (f16_at(p), 0.0, _mm256_or_si256(nibbles(p.add(6)), high))
    }
}

/// Q5_1: d, m, qh, 16 nibble bytes; value = (nibble | bit << 4) * d + m.
pub(crate) struct Q51;
impl Legacy for Q51 {
    const BYTES: usize = 24;
    const MIN: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i) {
        let high = _mm256_and_si256(fifth_bits(p.add(4)), _mm256_set1_epi8(0x10));
        let q = _mm256_or_si256(nibbles(p.add(8)), high);
        (f16_at(p), f16_at(p.add(2)), q)
    }
}

/// Q8_0: d, 32 signed bytes.
pub(crate) struct Q80;
impl Legacy for Q80 {
    const BYTES: usize = 34;
    const MIN: bool = false;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack(p: *const u8) -> (f32, f32, __m256i) {
        (f16_at(p), 0.0, load256(p.add(2)))
    }
}

impl<L: Legacy> Row for LegacyRows<L> {
    type Act = BlockQ8;
    const BYTES_PER_ACT: usize = L::BYTES;
    /// Even and odd blocks go to separate accumulators: one block's work is short next to an
    /// FMA's latency.
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row<const T: usize>(
        wp: *const u8,
        rb: usize,
        xp: *const BlockQ8,
        xs: usize,
    ) -> [f32; T] {
        let nb = rb / L::BYTES;
        let (mut acc0, mut acc1) = ([_mm256_setzero_ps(); T], [_mm256_setzero_ps(); T]);
        let (mut off0, mut off1) = ([0f32; T], [0f32; T]);
        let mut b = 0;
        while b + 2 <= nb {
            block::<L, T>(wp.add(b * L::BYTES), xp.add(b), xs, &mut acc0, &mut off0);
            block::<L, T>(
                wp.add((b + 1) * L::BYTES),
                xp.add(b + 1),
                xs,
                &mut acc1,
                &mut off1,
            );
            b += 2;
        }
        if b < nb {
            block::<L, T>(wp.add(b * L::BYTES), xp.add(b), xs, &mut acc0, &mut off0);
        }
        let mut out = [0f32; T];
        for t in 0..T {
            out[t] = hsum(_mm256_add_ps(acc0[t], acc1[t])) + (off0[t] + off1[t]);
        }
        out
    }
}

/// Block `p` against the `T` tokens' blocks at `y + t * xs`, into `acc` (and `offset`, the
/// `m * s` terms of the types with a min).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn block<L: Legacy, const T: usize>(
    p: *const u8,
    y: *const BlockQ8,
    xs: usize,
    acc: &mut [__m256; T],
    offset: &mut [f32; T],
) {
    let (d, m, wq) = L::unpack(p);
    // Unsigned weight bytes for maddubs, and the sign each activation takes.
    let wu = if L::MIN { wq } else { _mm256_sign_epi8(wq, wq) };
    for t in 0..T {
        let y = &*y.add(t * xs);
        let yv = load256(y.qs.as_ptr() as *const u8);
        let yv = if L::MIN { yv } else { _mm256_sign_epi8(yv, wq) };
        let sum = _mm256_cvtepi32_ps(dot_u8_i8(wu, yv));
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * y.d), sum, acc[t]);
        if L::MIN {
            offset[t] = m.mul_add(y.s, offset[t]);
        }
    }
}
