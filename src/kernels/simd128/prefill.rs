//! SIMD128 eight-token prefill rows (see `mod.rs` of `kernels`), two weight rows per pass,
//! which share every activation load: one weight row against eight interleaved tokens.
//!
//! A weight block is unpacked once into an i16 buffer in value order (true signed values, except
//! Q4_1/Q5_1's `q` and the K-quant types with mins, whose min terms come from activation sums).
//! Step k broadcasts weight values 4k..4k+4 to both halves of a vector and multiplies it with
//! `x.qs[k]` sign-extended, two tokens per vector: lanes `[t: 4 values, t + 1: 4 values]`. The
//! products are summed in i16 over a block or sub-block (bounds in the header), then widened with
//! `dot` (by ones or by the sub-block scale) into i32 lanes holding pair sums of two tokens, which
//! `pair_sums` folds into one lane per token.
//!

use core::arch::wasm32::*;

use super::kquant::KQuant;
use super::legacy::Legacy;
use super::ops::{each4, i8x8, opaque, ZERO};
use crate::kernels::blocks::{BlockQ8Kx8, BlockQ8x8, QK_K};
use crate::kernels::tile::{KRows, LegacyRows, Rows8};

impl<L: Legacy> Rows8 for LegacyRows<L> {
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
        to_f32x8(legacy_row8::<L, R>(w, rb, x))
    }
}

impl<K: KQuant> Rows8 for KRows<K> {
    type Act8 = BlockQ8Kx8;
    const BYTES_PER_ACT: usize = K::BYTES;
    const PASS_ROWS: usize = 2;
    // Inlined into the tile driver, as the per-type tile functions were: called across
    // codegen units it would not inline, and its results would travel through memory.
    #[inline(always)]
    unsafe fn rows8<const R: usize>(
        w: [*const u8; R],
        rb: usize,
        x: &[BlockQ8Kx8],
    ) -> [[f32; 8]; R] {
        to_f32x8(k_row8::<K, R>(w, rb, x))
    }
}

/// Per row, the vectors of tokens 0..4 and 4..8 as eight floats.
#[inline(always)]
pub(super) fn to_f32x8<const R: usize>(v: [[v128; 2]; R]) -> [[f32; 8]; R] {
    let mut out = [[0f32; 8]; R];
    for r in 0..R {
        // SAFETY: `out[r]` holds eight f32, two vectors' worth.
        unsafe {
            v128_store(out[r].as_mut_ptr() as *mut v128, v[r][0]);
            v128_store(out[r].as_mut_ptr().add(4) as *mut v128, v[r][1]);
        }
    }
    out
}

/// Unpacked weights, aligned for the vector stores.
#[derive(Clone, Copy)]
#[repr(C, align(16))]
struct Unpacked<const N: usize>([i16; N]);

/// From lanes `[t: a, b, t + 1: c, d]` of two vectors (tokens t..t + 4), one lane per token.
#[inline(always)]
fn pair_sums(a: v128, b: v128) -> v128 {
    i32x4_add(
        i32x4_shuffle::<0, 2, 4, 6>(a, b),
        i32x4_shuffle::<1, 3, 5, 7>(a, b),
    )
}

/// Weight values `4k..4k + 4` (i16) in both halves of a vector.
#[inline(always)]
unsafe fn bcast4(q: *const i16, k: usize) -> v128 {
    v128_load64_splat(q.add(4 * k) as *const u64)
}

/// Steps `k0..k0 + n` (`n` even, [`opaque`]) of `R` rows' broadcast weights (`q[r]`) times the
/// eight tokens' activations, summed in i16 (`WIDE`: widened to i32 by `dot` at every step):
/// per row four vectors, tokens (0, 1), (2, 3), (4, 5), (6, 7). The caller bounds the sums. One
/// step per iteration for two rows, two for one (what fits V8's registers).
#[inline(always)]
unsafe fn steps<const WIDE: bool, const R: usize>(
    q: [*const i16; R],
    x: &[[i8; 32]],
    k0: usize,
    n: usize,
) -> [[v128; 4]; R] {
    let mut s = [[ZERO; 4]; R];
    let x = x.as_ptr();
    let unroll = if R == 1 { 2 } else { 1 };
    let mut k = k0;
    while k < k0 + n {
        for k in k..k + unroll {
            let xk = (*x.add(k)).as_ptr();
            let a = each4!(|pp| i8x8(xk.add(8 * pp)));
            for r in 0..R {
                let wk = bcast4(q[r], k);
                for pp in 0..4 {
                    s[r][pp] = if WIDE {
                        i32x4_add(s[r][pp], i32x4_dot_i16x8(a[pp], wk))
                    } else {
                        i16x8_add(s[r][pp], i16x8_mul(a[pp], wk))
                    };
                }
            }
        }
        k += unroll;
    }
    s
}

/// `R` rows of legacy blocks against eight tokens.
#[inline(always)]
unsafe fn legacy_row8<L: Legacy, const R: usize>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8x8],
) -> [[v128; 2]; R] {
    let nb = rb / L::BYTES;
    let mut acc = Acc8::<R>::new();
    let mut buf = [Unpacked([0i16; 32]); R];
    let n8 = opaque(8);
    for (b, y) in x.iter().enumerate().take(nb) {
        let mut wb = [buf[0].0.as_ptr(); R];
        for r in 0..R {
            let q = L::unpack(w[r].add(b * L::BYTES));
            for k in 0..4 {
                v128_store(buf[r].0.as_mut_ptr().add(8 * k) as *mut v128, q[k]);
            }
            wb[r] = buf[r].0.as_ptr();
        }
        let s = if L::WIDE {
            steps::<true, R>(wb, &y.qs, 0, n8)
        } else {
            steps::<false, R>(wb, &y.qs, 0, n8)
        };
        for r in 0..R {
            let s = if L::WIDE {
                s[r]
            } else {
                each4!(|k| i32x4_extadd_pairwise_i16x8(s[r][k]))
            };
            let isum = [pair_sums(s[0], s[1]), pair_sums(s[2], s[3])];
            acc.add::<L>(r, w[r].add(b * L::BYTES), y, isum);
        }
    }
    acc.finish()
}

/// The f32 sums of `R` legacy rows against eight tokens (vectors of tokens 0..4 and 4..8), with
/// Q4_1/Q5_1's min terms kept apart until the end.
pub(super) struct Acc8<const R: usize> {
    acc: [[v128; 2]; R],
    min: [[v128; 2]; R],
}

impl<const R: usize> Acc8<R> {
    #[inline(always)]
    pub(super) fn new() -> Self {
        Self {
            acc: [[ZERO; 2]; R],
            min: [[ZERO; 2]; R],
        }
    }

    /// Adds row `r`'s block at `p` against `y`: the block's integer sum per token times
    /// `d * y.d`, and `m * y.s` for the types with a min.
    #[inline(always)]
    pub(super) unsafe fn add<L: Legacy>(
        &mut self,
        r: usize,
        p: *const u8,
        y: &BlockQ8x8,
        isum: [v128; 2],
    ) {
        let (d, m) = L::scales(p);
        let dw = f32x4_splat(d);
        let dy = y.d.as_ptr() as *const v128;
        for h in 0..2 {
            let scale = f32x4_mul(dw, v128_load(dy.add(h)));
            let v = f32x4_mul(f32x4_convert_i32x4(isum[h]), scale);
            self.acc[r][h] = f32x4_add(self.acc[r][h], v);
            if L::MIN {
                let ys = v128_load((y.s.as_ptr() as *const v128).add(h));
                self.min[r][h] = f32x4_add(self.min[r][h], f32x4_mul(f32x4_splat(m), ys));
            }
        }
    }

    #[inline(always)]
    pub(super) fn finish(self) -> [[v128; 2]; R] {
        let mut out = [[ZERO; 2]; R];
        for r in 0..R {
            for h in 0..2 {
                out[r][h] = f32x4_add(self.acc[r][h], self.min[r][h]);
            }
        }
        out
    }
}

/// `R` K-quant rows against eight tokens. `K::OFFSET` is subtracted from every unpacked value
/// (the offsets of Q3_K and Q6_K are applied here rather than through the activation sums), so
/// `head.group_f` is only used for mins.
#[inline(always)]
unsafe fn k_row8<K: KQuant, const R: usize>(
    w: [*const u8; R],
    rb: usize,
    x: &[BlockQ8Kx8],
) -> [[v128; 2]; R] {
    let nb = rb / K::BYTES;
    let mut acc = [[f32x4_splat(0.0); 2]; R];
    let mut buf = [Unpacked([0i16; QK_K]); R];
    let (chunks, sub_steps) = (opaque(4), opaque(K::SUB / 4));
    for (b, y) in x.iter().enumerate().take(nb) {
        let mut h = [K::head(w[0].add(b * K::BYTES)); R];
        let mut wb = [buf[0].0.as_ptr(); R];
        for r in 0..R {
            let p = w[r].add(b * K::BYTES);
            if r > 0 {
                h[r] = K::head(p);
            }
            for c in 0..chunks {
                let q = K::pair(p, c);
                for (i, g) in K::pair_groups(c).into_iter().enumerate() {
                    for k in 0..4 {
                        let v = if K::OFFSET != 0 {
                            i16x8_sub(q[i][k], i16x8_splat(K::OFFSET))
                        } else {
                            q[i][k]
                        };
                        v128_store(buf[r].0.as_mut_ptr().add(32 * g + 8 * k) as *mut v128, v);
                    }
                }
            }
            wb[r] = buf[r].0.as_ptr();
        }
        let mut s = [[ZERO; 4]; R];
        for sb in 0..QK_K / K::SUB {
            let s16 = steps::<false, R>(wb, &y.qs, sb * K::SUB / 4, sub_steps);
            for r in 0..R {
                let scale = v128_load16_splat(h[r].scale.as_ptr().add(sb) as *const u16);
                for pp in 0..4 {
                    s[r][pp] = i32x4_add(s[r][pp], i32x4_dot_i16x8(s16[r][pp], scale));
                }
            }
        }
        let dy = y.d.as_ptr() as *const v128;
        for r in 0..R {
            let dw = f32x4_splat(h[r].d);
            for half in 0..2 {
                let dy = v128_load(dy.add(half));
                let isum = f32x4_convert_i32x4(pair_sums(s[r][2 * half], s[r][2 * half + 1]));
                acc[r][half] = f32x4_add(acc[r][half], f32x4_mul(isum, f32x4_mul(dw, dy)));
                if K::OFFSET == 0 {
                    // Per token: sum over 16-value groups of factor * bsum, two groups per dot.
                    let mut m = ZERO;
                    for (j, pair) in lane_splats(&h[r].group_f).into_iter().enumerate() {
                        let bs = v128_load((y.bsums[j].as_ptr() as *const v128).add(half));
                        m = i32x4_add(m, i32x4_dot_i16x8(bs, pair));
                    }
                    let dm = f32x4_mul(f32x4_splat(h[r].dmin), dy);
                    acc[r][half] = f32x4_sub(acc[r][half], f32x4_mul(f32x4_convert_i32x4(m), dm));
                }
            }
        }
    }
    acc
}

/// Each 32-bit lane of `f` (a pair of i16 group factors) splatted: pair `j` goes with
/// `BlockQ8Kx8::bsums[j]`.
#[inline(always)]
fn lane_splats(f: &[v128; 2]) -> [v128; 8] {
    [
        i32x4_shuffle::<0, 0, 0, 0>(f[0], f[0]),
        i32x4_shuffle::<1, 1, 1, 1>(f[0], f[0]),
        i32x4_shuffle::<2, 2, 2, 2>(f[0], f[0]),
        i32x4_shuffle::<3, 3, 3, 3>(f[0], f[0]),
        i32x4_shuffle::<0, 0, 0, 0>(f[1], f[1]),
        i32x4_shuffle::<1, 1, 1, 1>(f[1], f[1]),
        i32x4_shuffle::<2, 2, 2, 2>(f[1], f[1]),
        i32x4_shuffle::<3, 3, 3, 3>(f[1], f[1]),
    ]
}

const _: () = assert!(QK_K == 256);
