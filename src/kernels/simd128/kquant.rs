//! SIMD128 rows of the K-quants (Q2_K..Q6_K, 256-value super-blocks) against Q8_K activations,
//! one row per decode pass (their unpacking needs the registers). Each type says how a
//! super-block's scalars decode (`head`) and how a chunk of two 32-value groups unpacks into i16
//! lanes (`pair`); the decode rows here and the prefill rows (`prefill.rs`) share both.
//!
//! Per super-block and token, integer sums of
//! `scale * (q . y)` stay in i32 lanes and are scaled once by `d * y.d`; min terms (Q2_K, Q4_K,
//! Q5_K) and the offsets of unsigned storage (Q3_K: -4, Q6_K: -32) come from the activations'
//! 16-value sums `bsums`, exactly in integers.
//!
//! Each type's `pair(p, c)` unpacks the two 32-value groups of chunk `c` (0..4, see
//! `pair_groups`) into four i16 vectors each; the decode rows and the prefill unpacking share it.
//! Shifts that depend on `c` are done as a multiply by a power of two followed by constant shifts
//! (V8 re-masks a variable shift count for every use), and the chunk loops stay rolled.
//!

use core::arch::wasm32::*;

use super::ops::{act32, each4, f16_at, hsum, i8x8, mul2, opaque, prefetch, u8x8, ZERO};
use crate::kernels::blocks::{q3k_scales, q4k_scales_mins, BlockQ8K};
use crate::kernels::tile::{KRows, Rows};

/// The per-super-block scalars and sums shared by the K-quant row functions: `(d, dmin)`, the
/// sub-block scales as i16 (16 of 16 values, or 8 of 32), and per 16-value group the factor of its
/// activation sum in two i16x8 vectors (`None` when there is no such term).
#[derive(Clone, Copy)]
pub(crate) struct KHead {
    pub(super) d: f32,
    pub(super) dmin: f32,
    pub(super) scale: [i16; 16],
    /// Factors of `bsums`: subtracted as `dmin * y.d * sum_g f_g * bsum_g`.
    pub(super) group_f: [v128; 2],
}

/// A K-quant type: its super-block size, sub-block length, the offset its prefill unpacking
/// subtracts, and how a super-block's scalars and 32-value groups decode. (A trait rather than
/// closures: LLVM would not inline a closure called from 8 unrolled groups, and a call returning
/// four vectors goes through the wasm stack in memory.)
pub(crate) trait KQuant {
    const BYTES: usize;
    /// Sub-block length: 16 or 32. With 16, the two halves of a group have their own scales.
    const SUB: usize;
    /// Subtracted from every unpacked value by the prefill kernels (Q3_K: 4, Q6_K: 32); the
    /// decode kernels apply it through `bsums` instead.
    const OFFSET: i16;
    /// The groups of chunk `c`: `(2c, 2c + 1)` except for Q6_K.
    const PAIR_STRIDE: usize;
    unsafe fn head(p: *const u8) -> KHead;
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2];
    #[inline(always)]
    fn pair_groups(c: usize) -> [usize; 2] {
        if Self::PAIR_STRIDE == 1 {
            [2 * c, 2 * c + 1]
        } else {
            // Q6_K: chunk 2 * half + jj holds groups 4 * half + jj and 4 * half + jj + 2.
            let g = 4 * (c / 2) + c % 2;
            [g, g + 2]
        }
    }
}

/// Q2_K (84 bytes): scales[16] (scale | min << 4), qs[64], d, dmin. Group g = 4 * half + j is
/// bits 2j..2j+2 of qs[32 * half..][..32]; chunk c = 2 * half + j / 2 holds groups 2c, 2c + 1.
pub(crate) struct K2;
impl KQuant for K2 {
    const BYTES: usize = 84;
    const SUB: usize = 16;
    const OFFSET: i16 = 0;
    const PAIR_STRIDE: usize = 1;
    /// Q2_K: 16 scales and mins in the low and high nibbles of the first 16 bytes.
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        let mut scale = [0i16; 16];
        for g in 0..16 {
            scale[g] = (*p.add(g) & 0xF) as i16;
        }
        KHead {
            d: f16_at(p.add(80)),
            dmin: f16_at(p.add(82)),
            scale,
            group_f: [u16x8_shr(u8x8(p), 4), u16x8_shr(u8x8(p.add(8)), 4)],
        }
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        let qs = p.add(16 + 32 * (c / 2));
        // Bits 4 * (c % 2).. moved to bit 4.
        let m = i16x8_splat(16 >> (4 * (c % 2)));
        let y = each4!(|k| i16x8_mul(u8x8(qs.add(8 * k)), m));
        [
            each4!(|k| v128_and(u16x8_shr(y[k], 4), i16x8_splat(3))),
            each4!(|k| v128_and(u16x8_shr(y[k], 6), i16x8_splat(3))),
        ]
    }
}

/// Q3_K (110 bytes): hmask[32], qs[64], scales[12], d. Q2_K's two bits plus a third, bit g of
/// hmask[l]; unsigned (0..8), the -4 applied through `bsums`.
pub(crate) struct K3;
impl KQuant for K3 {
    const BYTES: usize = 110;
    const SUB: usize = 16;
    const OFFSET: i16 = 4;
    const PAIR_STRIDE: usize = 1;
    /// Q3_K: 16 signed 6-bit scales; the -4 offset as `d * 4 * scale` per group sum.
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        let sc = q3k_scales(core::slice::from_raw_parts(p.add(96), 12));
        let d = f16_at(p.add(108));
        KHead {
            d,
            dmin: 4.0 * d,
            scale: {
                let mut s = [0i16; 16];
                for g in 0..16 {
                    s[g] = sc[g] as i16;
                }
                s
            },
            group_f: [i8x8(sc.as_ptr()), i8x8(sc.as_ptr().add(8))],
        }
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        let [lo, hi] = K2::pair(p.add(16), c);
        // Bits 2c, 2c + 1 of hmask moved to bits 8, 9.
        let m = i16x8_splat((256 >> (2 * c)) as i16);
        let z = each4!(|k| i16x8_mul(u8x8(p.add(8 * k)), m));
        [
            each4!(|k| v128_or(lo[k], u16x8_shr(v128_and(z[k], i16x8_splat(0x100)), 6))),
            each4!(|k| v128_or(hi[k], u16x8_shr(v128_and(z[k], i16x8_splat(0x200)), 7))),
        ]
    }
}

/// Q4_K (144 bytes): d, dmin, scales[12], qs[128]. Groups 2c, 2c + 1 are the low and high
/// nibbles of qs[32c..][..32].
pub(crate) struct K4;
impl KQuant for K4 {
    const BYTES: usize = 144;
    const SUB: usize = 32;
    const OFFSET: i16 = 0;
    const PAIR_STRIDE: usize = 1;
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        q45k_head(p)
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        let qs = p.add(16 + 32 * c);
        let x = each4!(|k| u8x8(qs.add(8 * k)));
        [
            each4!(|k| v128_and(x[k], i16x8_splat(0xF))),
            each4!(|k| u16x8_shr(x[k], 4)),
        ]
    }
}

/// Q5_K (176 bytes): d, dmin, scales[12], qh[32], qs[128]. Q4_K's nibbles plus a 5th bit, bit g
/// of qh[l].
pub(crate) struct K5;
impl KQuant for K5 {
    const BYTES: usize = 176;
    const SUB: usize = 32;
    const OFFSET: i16 = 0;
    const PAIR_STRIDE: usize = 1;
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        q45k_head(p)
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        let qs = p.add(48 + 32 * c);
        let x = each4!(|k| u8x8(qs.add(8 * k)));
        // Bits 2c, 2c + 1 of qh moved to bits 8, 9.
        let m = i16x8_splat((256 >> (2 * c)) as i16);
        let z = each4!(|k| i16x8_mul(u8x8(p.add(16 + 8 * k)), m));
        [
            each4!(|k| {
                let high = u16x8_shr(v128_and(z[k], i16x8_splat(0x100)), 4);
                v128_or(v128_and(x[k], i16x8_splat(0xF)), high)
            }),
            each4!(|k| {
                let high = u16x8_shr(v128_and(z[k], i16x8_splat(0x200)), 5);
                v128_or(u16x8_shr(x[k], 4), high)
            }),
        ]
    }
}

/// Q6_K (210 bytes): ql[128], qh[64], scales[16] (i8), d. Group g = 4 * half + j: nibble j / 2 of
/// ql[64 * half + 32 * (j % 2)..][..32], topped with bits 2j..2j+2 of qh[32 * half..][..32];
/// unsigned (0..64), the -32 applied through `bsums` (or at unpacking, for prefill). Chunk
/// c = 2 * half + jj holds groups j = jj and j = jj + 2, which share their ql bytes.
pub(crate) struct K6;
impl KQuant for K6 {
    const BYTES: usize = 210;
    const SUB: usize = 16;
    const OFFSET: i16 = 32;
    const PAIR_STRIDE: usize = 2;
    /// Q6_K: 16 signed 8-bit scales; the -32 offset as `d * 32 * scale` per group sum.
    #[inline(always)]
    unsafe fn head(p: *const u8) -> KHead {
        let mut scale = [0i16; 16];
        for g in 0..16 {
            scale[g] = *p.add(192 + g) as i8 as i16;
        }
        let d = f16_at(p.add(208));
        KHead {
            d,
            dmin: 32.0 * d,
            scale,
            group_f: [i8x8(p.add(192) as *const i8), i8x8(p.add(200) as *const i8)],
        }
    }
    #[inline(always)]
    unsafe fn pair(p: *const u8, c: usize) -> [[v128; 4]; 2] {
        let (half, jj) = (c / 2, c % 2);
        let ql = p.add(64 * half + 32 * jj);
        let qh = p.add(128 + 32 * half);
        let x = each4!(|k| u8x8(ql.add(8 * k)));
        // Bits 2jj.. moved to bit 2 (and 2jj + 4.. to bit 6).
        let m = i16x8_splat(4 >> (2 * jj));
        let y = each4!(|k| i16x8_mul(u8x8(qh.add(8 * k)), m));
        [
            each4!(|k| {
                let high = v128_and(i16x8_shl(y[k], 2), i16x8_splat(0x30));
                v128_or(v128_and(x[k], i16x8_splat(0xF)), high)
            }),
            each4!(|k| {
                let high = v128_and(u16x8_shr(y[k], 2), i16x8_splat(0x30));
                v128_or(u16x8_shr(x[k], 4), high)
            }),
        ]
    }
}

/// Q4_K / Q5_K: 8 scales and 8 mins of 6 bits; each min covers two 16-value groups.
#[inline(always)]
unsafe fn q45k_head(p: *const u8) -> KHead {
    let (sc, mn) = q4k_scales_mins(core::slice::from_raw_parts(p.add(4), 12));
    let mut scale = [0i16; 16];
    for g in 0..8 {
        scale[g] = sc[g] as i16;
    }
    let m = u8x8(mn.as_ptr());
    KHead {
        d: f16_at(p),
        dmin: f16_at(p.add(2)),
        scale,
        group_f: [
            i16x8_shuffle::<0, 0, 1, 1, 2, 2, 3, 3>(m, m),
            i16x8_shuffle::<4, 4, 5, 5, 6, 6, 7, 7>(m, m),
        ],
    }
}

impl<K: KQuant> Rows for KRows<K> {
    type Act = BlockQ8K;
    const BYTES_PER_ACT: usize = K::BYTES;
    const DECODE_ROWS: usize = 1;
    // Inlined into the tile driver, as the per-type tile functions were: called across
    // codegen units it would not inline, and its results would travel through memory.
    #[inline(always)]
    unsafe fn rows<const R: usize, const T: usize>(
        w: [*const u8; R],
        rb: usize,
        x: *const BlockQ8K,
        xs: usize,
        ahead: *const u8,
    ) -> [[f32; T]; R] {
        k_rows::<K, R, T>(w, rb, x, xs, ahead)
    }
}

/// `R` K-quant rows against `T` tokens.
#[inline(always)]
unsafe fn k_rows<K: KQuant, const R: usize, const T: usize>(
    w: [*const u8; R],
    rb: usize,
    x: *const BlockQ8K,
    xs: usize,
    ahead: *const u8,
) -> [[f32; T]; R] {
    let nb = rb / K::BYTES;
    let chunks = opaque(4);
    let mut acc = [[f32x4_splat(0.0); T]; R];
    for b in 0..nb {
        prefetch(ahead, b * K::BYTES * R, K::BYTES * R);
        let mut p = w;
        for r in 0..R {
            p[r] = w[r].add(b * K::BYTES);
        }
        let mut h = [K::head(p[0]); R];
        for r in 1..R {
            h[r] = K::head(p[r]);
        }
        let mut isum = [[ZERO; T]; R];
        for c in 0..chunks {
            let mut q = [[[ZERO; 4]; 2]; R];
            for r in 0..R {
                q[r] = K::pair(p[r], c);
            }
            for (i, g) in K::pair_groups(c).into_iter().enumerate() {
                for t in 0..T {
                    let a = act32((*x.add(t * xs + b)).qs.as_ptr().add(32 * g));
                    for r in 0..R {
                        let q = &q[r][i];
                        let sc = h[r].scale.as_ptr();
                        let s = if K::SUB == 32 {
                            let s16 = i16x8_add(
                                mul2(q[0], a[0], q[1], a[1]),
                                mul2(q[2], a[2], q[3], a[3]),
                            );
                            i32x4_dot_i16x8(s16, v128_load16_splat(sc.add(g) as *const u16))
                        } else {
                            i32x4_add(
                                i32x4_dot_i16x8(
                                    mul2(q[0], a[0], q[1], a[1]),
                                    v128_load16_splat(sc.add(2 * g) as *const u16),
                                ),
                                i32x4_dot_i16x8(
                                    mul2(q[2], a[2], q[3], a[3]),
                                    v128_load16_splat(sc.add(2 * g + 1) as *const u16),
                                ),
                            )
                        };
                        isum[r][t] = i32x4_add(isum[r][t], s);
                    }
                }
            }
        }
        for t in 0..T {
            let y = &*x.add(t * xs + b);
            let bs = y.bsums.as_ptr() as *const v128;
            let (bs0, bs1) = (v128_load(bs), v128_load(bs.add(1)));
            for r in 0..R {
                let s = f32x4_convert_i32x4(isum[r][t]);
                acc[r][t] = f32x4_add(acc[r][t], f32x4_mul(s, f32x4_splat(h[r].d * y.d)));
                let f = &h[r].group_f;
                let m = i32x4_add(i32x4_dot_i16x8(bs0, f[0]), i32x4_dot_i16x8(bs1, f[1]));
                let m = f32x4_convert_i32x4(m);
                acc[r][t] = f32x4_sub(acc[r][t], f32x4_mul(m, f32x4_splat(h[r].dmin * y.d)));
            }
        }
    }
    let mut out = [[0f32; T]; R];
    for r in 0..R {
        for t in 0..T {
            out[r][t] = hsum(acc[r][t]);
        }
    }
    out
}
