//! AVX2 eight-token prefill rows (see `mod.rs` of `kernels`): one weight row against eight
//! interleaved tokens, one token per 32-bit lane, for every quantized type.
//!
//! A weight block is unpacked once into a stack buffer of unsigned bytes (signed for Q8_0) in
//! value order. Step k broadcasts weight bytes 4k..4k+4 to all lanes and `maddubs` them with the
//! eight tokens' values 4k..4k+4 (`x.qs[k]`): each lane gets two i16 pair sums of one token.
//! Steps are summed in i16 while that cannot overflow (16 * max weight * 127 < 32768 for 8
//! steps of Q4, 4 of Q5, 2 of Q6), then `madd` folds them into i32 per token, weighted by the
//! sub-block scale. Offsets of unsigned storage (Q4_0: -8, Q5_0: -16, Q3_K: -4, Q6_K: -32) and
//! K-quant mins come from per-token activation sums, exactly in integers.

use std::arch::x86_64::*;

use super::kquant::{KQuant, K2, K3, K4, K5, K6};
use super::legacy::{fifth_bits, Legacy, Q40, Q41, Q50, Q51, Q80};
use super::ops::{dot_u8_i8, f16_at, load256, nibbles};
use super::Row8;
use crate::kernels::blocks::{q3k_scales, q4k_scales_mins, BlockQ8Kx8, BlockQ8x8, QK_K};
use crate::kernels::tile::{KRows, LegacyRows};

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

/// How a legacy type's prefill unpacks: values as stored (unsigned, the storage offset applied
/// through the per-token activation sums), and how many steps may sum in i16.
pub(crate) trait Legacy8: Legacy {
    /// Q8_0: values stored signed; every step takes the sign trick ([`row8_q8_0`]).
    const STORED_SIGNED: bool = false;
    /// Steps of four values that may sum in i16: 8 for 4-bit values, 4 for 5-bit.
    const STEPS: usize = 8;
    /// log2 of the storage offset each token's `sum` is multiplied by (Q4_0: 8, Q5_0: 16); 0
    /// where there is none, or where Q8_1's `m * s` applies instead.
    const OFFSET_SHIFT: i32 = 0;
    /// `(d, m, w)` with `w` the 32 values as stored, unsigned.
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i);
}

impl Legacy8 for Q40 {
    const OFFSET_SHIFT: i32 = 3;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i) {
        (f16_at(p), 0.0, nibbles(p.add(2)))
    }
}

impl Legacy8 for Q41 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i) {
        Q41::unpack(p)
    }
}

impl Legacy8 for Q50 {
    const STEPS: usize = 4;
    const OFFSET_SHIFT: i32 = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i) {
        let high = _mm256_and_si256(fifth_bits(p.add(2)), _mm256_set1_epi8(0x10));
        (f16_at(p), 0.0, _mm256_or_si256(nibbles(p.add(6)), high))
    }
}

impl Legacy8 for Q51 {
    const STEPS: usize = 4;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i) {
        Q51::unpack(p)
    }
}

impl Legacy8 for Q80 {
    const STORED_SIGNED: bool = true;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn unpack_stored(p: *const u8) -> (f32, f32, __m256i) {
        Q80::unpack(p)
    }
}

impl<L: Legacy8> Row8 for LegacyRows<L> {
    type Act8 = BlockQ8x8;
    const BYTES_PER_ACT: usize = L::BYTES;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(w: *const u8, rb: usize, x: &[BlockQ8x8]) -> __m256 {
        if L::STORED_SIGNED {
            row8_q8_0(w, rb, x)
        } else {
            legacy_row8::<L>(w, rb, x)
        }
    }
}

/// A legacy row against eight tokens. Even and odd blocks, and the `m * s` terms, go to separate
/// accumulators so that the FMAs do not wait on each other.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn legacy_row8<L: Legacy8>(wp: *const u8, rb: usize, x: &[BlockQ8x8]) -> __m256 {
    let nb = rb / L::BYTES;
    let mut acc = [_mm256_setzero_ps(); 4];
    let [a0, a1, m0, m1] = &mut acc;
    let mut b = 0;
    while b + 2 <= nb {
        legacy_block8::<L>(wp.add(b * L::BYTES), &x[b], a0, m0);
        legacy_block8::<L>(wp.add((b + 1) * L::BYTES), &x[b + 1], a1, m1);
        b += 2;
    }
    if b < nb {
        legacy_block8::<L>(wp.add(b * L::BYTES), &x[b], a0, m0);
    }
    _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]))
}

/// Block `p` against the eight tokens of `y`, into `acc` (and `acc_m`, Q8_1's `m * s` terms).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn legacy_block8<L: Legacy8>(
    p: *const u8,
    y: &BlockQ8x8,
    acc: &mut __m256,
    acc_m: &mut __m256,
) {
    let (d, m, wq) = L::unpack_stored(p);
    let mut buf = Unpacked([0u8; 32]);
    _mm256_store_si256(buf.0.as_mut_ptr() as *mut __m256i, wq);
    let wb = opaque(buf.0.as_ptr());
    let mut isum = _mm256_setzero_si256();
    for k0 in (0..8).step_by(L::STEPS) {
        let s = steps_i16(wb, &y.qs, k0..k0 + L::STEPS);
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(s, _mm256_set1_epi16(1)));
    }
    if L::OFFSET_SHIFT > 0 {
        let sum = _mm256_loadu_si256(y.sum.as_ptr() as *const __m256i);
        isum = _mm256_sub_epi32(
            isum,
            _mm256_sll_epi32(sum, _mm_cvtsi32_si128(L::OFFSET_SHIFT)),
        );
    }
    let dy = _mm256_loadu_ps(y.d.as_ptr());
    *acc = _mm256_fmadd_ps(
        _mm256_cvtepi32_ps(isum),
        _mm256_mul_ps(_mm256_set1_ps(d), dy),
        *acc,
    );
    if L::MIN {
        *acc_m = _mm256_fmadd_ps(_mm256_set1_ps(m), _mm256_loadu_ps(y.s.as_ptr()), *acc_m);
    }
}

/// Q8_0 against eight tokens: signed weights, so each step uses the sign trick and is folded to
/// i32 at once (|w| * |y| pair sums reach 32512).
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q8_0(wp: *const u8, rb: usize, x: &[BlockQ8x8]) -> __m256 {
    let mut acc = _mm256_setzero_ps();
    for (b, y) in x.iter().enumerate().take(rb / 34) {
        let p = wp.add(b * 34);
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

/// How a K-quant's prefill unpacks a super-block (into [`KUnpacked`]) and runs [`k_row8`].
pub(crate) trait KQuant8: KQuant {
    /// One row of `rb` bytes against the eight tokens of `x`.
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256;
}

impl<K: KQuant8> Row8 for KRows<K> {
    type Act8 = BlockQ8Kx8;
    const BYTES_PER_ACT: usize = K::BYTES;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(w: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        K::row8(w, rb, x)
    }
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

/// Q2_K: 2-bit values (as in `kquant.rs`), 16 sub-blocks, mins subtracted with `dmin`.
impl KQuant8 for K2 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        let mut acc = _mm256_setzero_ps();
        let mut k = new_k();
        for (b, y) in x.iter().enumerate().take(rb / 84) {
            let p = wp.add(b * 84);
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
}

/// Q3_K: 3-bit values stored unsigned (0..8), offset -4 per value through the group sums.
impl KQuant8 for K3 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        let mut acc = _mm256_setzero_ps();
        let mut k = new_k();
        for (b, y) in x.iter().enumerate().take(rb / 110) {
            let p = wp.add(b * 110);
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
}

/// Q4_K / Q5_K: 8 sub-blocks of 32 with 6-bit scales and mins.
#[inline]
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn row8_q45_k<const Q5: bool>(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
    let bytes = if Q5 { 176 } else { 144 };
    let qs_at = if Q5 { 48 } else { 16 };
    let mut acc = _mm256_setzero_ps();
    let mut k = new_k();
    let m4 = _mm256_set1_epi8(0xF);
    for (b, y) in x.iter().enumerate().take(rb / bytes) {
        let p = wp.add(b * bytes);
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

impl KQuant8 for K4 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        row8_q45_k::<false>(wp, rb, x)
    }
}

impl KQuant8 for K5 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        row8_q45_k::<true>(wp, rb, x)
    }
}

/// Q6_K: 6-bit values stored unsigned (0..64), offset -32 per value through the group sums.
impl KQuant8 for K6 {
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn row8(wp: *const u8, rb: usize, x: &[BlockQ8Kx8]) -> __m256 {
        let mut acc = _mm256_setzero_ps();
        let mut k = new_k();
        let m4 = _mm256_set1_epi8(0xF);
        let m2 = _mm256_set1_epi8(0x30);
        for (b, y) in x.iter().enumerate().take(rb / 210) {
            let p = wp.add(b * 210);
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
}

const _: () = assert!(QK_K == 256);
