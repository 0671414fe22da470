//! AVX2 vector helpers the row and prefill kernels share: horizontal sums, f16 scales, nibble
//! and high-bit unpacking, the u8 x i8 dot products and the K-quants' sub-block scale vectors.

use std::arch::x86_64::*;

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn hsum(v: __m256) -> f32 {
    let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
    let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    let s = _mm_add_ss(s, _mm_movehdup_ps(s));
    _mm_cvtss_f32(s)
}

/// The little-endian f16 at `p`, as f32.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    let bits = u16::from_le_bytes([*p, *p.add(1)]);
    _mm_cvtss_f32(_mm_cvtph_ps(_mm_cvtsi32_si128(bits as i32)))
}

#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn load256(p: *const u8) -> __m256i {
    _mm256_loadu_si256(p as *const __m256i)
}

/// 16 bytes at `p` as 32 nibbles in value order: low nibbles (values 0..16), then high nibbles.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn nibbles(p: *const u8) -> __m256i {
    let v = _mm_loadu_si128(p as *const __m128i);
    let both = _mm256_set_m128i(_mm_srli_epi16::<4>(v), v);
    _mm256_and_si256(both, _mm256_set1_epi8(0xF))
}

/// Byte `j` is 0xFF where bit `j` of `bits` is set, else 0.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn bit_bytes(bits: u32) -> __m256i {
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
pub(super) unsafe fn dot_u8_i8(u: __m256i, s: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
}

/// As [`dot_u8_i8`], each 16-bit pair sum weighted by the i16 in `scales` first.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn dot_u8_i8_scaled(u: __m256i, s: __m256i, scales: __m256i) -> __m256i {
    _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), scales)
}

/// For K-quants with 16-value sub-blocks: the 16 i16 scales of a super-block as two vectors
/// (scales 0..8 in both 128-bit lanes, scales 8..16 in both lanes), from which [`scale_pair`]
/// picks the scales of a 32-value group.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
pub(super) unsafe fn scale_halves(scales16: __m256i) -> [__m256i; 2] {
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
pub(super) unsafe fn scale_pair(halves: &[__m256i; 2], g: usize) -> __m256i {
    _mm256_shuffle_epi8(halves[g / 4], load256(PAIR_MASKS[g % 4].as_ptr()))
}
