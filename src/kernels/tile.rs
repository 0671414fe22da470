//! The tile driver that both SIMD instruction sets share: the loops that walk a tile's weight
//! rows and call one weight type's row kernels, for [`Tile`](super::Tile) (up to
//! [`TOKENS_PER_TILE`] tokens) and [`Tile8`](super::Tile8) (eight interleaved prefill tokens).
//!
//! An instruction set describes a weight type's kernels by implementing [`Rows`] (and [`Rows8`]
//! for prefill), most often through the family wrappers below ([`FloatRows`], [`LegacyRows`],
//! [`KRows`]) over its own per-family traits. The drivers are `#[inline(always)]` and generic, so
//! `run::<K>` monomorphizes into the same loop a hand-written per-type tile function would be;
//! AVX2 calls them from a `#[target_feature]` function so that its row kernels (which carry the
//! same features) inline into that loop.

use std::marker::PhantomData;

use super::TOKENS_PER_TILE;

/// One weight type's row kernel on one instruction set.
pub(crate) trait Rows {
    /// What an activation row is made of: f32 (float weights), or Q8 / Q8_K blocks.
    type Act;
    /// Weight bytes that go with one activation element (one f32, or one Q8/Q8_K block).
    const BYTES_PER_ACT: usize;
    /// Rows a decode pass (one token) dots at once: 1, 2 or 4. More rows share each activation
    /// load; the register budget decides.
    const DECODE_ROWS: usize;
    /// Dots the `R` weight rows at `w` (`rb` bytes each) with the `T` activation rows at
    /// `x + t * xs`, as `[row][token]`. `ahead` is null, or weights a later decode pass reads:
    /// an instruction set without a prefetch instruction touches them while this pass computes
    /// (see `simd128::ops::prefetch`); others ignore it.
    ///
    /// Safety: the rows and `T` activation rows of `rb / BYTES_PER_ACT` elements are readable,
    /// and the CPU has the instruction set's features.
    unsafe fn rows<const R: usize, const T: usize>(
        w: [*const u8; R],
        rb: usize,
        x: *const Self::Act,
        xs: usize,
        ahead: *const u8,
    ) -> [[f32; T]; R];
}

/// One weight type's eight-token prefill kernel on one instruction set.
pub(crate) trait Rows8 {
    /// The eight-token activation block (`BlockQ8x8` or `BlockQ8Kx8`).
    type Act8;
    /// Weight bytes that go with one eight-token block.
    const BYTES_PER_ACT: usize;
    /// Rows a pass dots at once (1 or 2): rows in a pass share every activation load.
    const PASS_ROWS: usize;
    /// Dots the `R` weight rows at `w` (`rb` bytes each) with the eight tokens of `x`, as
    /// `[row][token]`. Safety as for [`Rows::rows`].
    unsafe fn rows8<const R: usize>(
        w: [*const u8; R],
        rb: usize,
        x: &[Self::Act8],
    ) -> [[f32; 8]; R];
}

/// Float weights (F32, F16, BF16) of type `F`: an instruction set implements [`Rows`] for it
/// once, over its own trait that says how `F`'s values load.
pub(crate) struct FloatRows<F>(PhantomData<F>);
/// Legacy 32-value blocks (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0) of type `L`, against Q8_0/Q8_1.
pub(crate) struct LegacyRows<L>(PhantomData<L>);
/// K-quant 256-value super-blocks (Q2_K..Q6_K) of type `K`, against Q8_K.
pub(crate) struct KRows<K>(PhantomData<K>);

/// The [`Tile`](super::Tile) kernel of `K`: every row of `w` against `nt` tokens.
///
/// Safety: the CPU has the features of `K`'s instruction set (slice lengths are checked here).
#[inline(always)]
pub(crate) unsafe fn run<K: Rows>(
    w: &[u8],
    rb: usize,
    x: &[K::Act],
    xs: usize,
    nt: usize,
    out: &mut [f32],
) {
    let nrows = w.len() / rb;
    assert!((1..=TOKENS_PER_TILE).contains(&nt) && out.len() >= nt * nrows);
    // The row kernels read x[t * xs..][..rb / BYTES_PER_ACT] through raw pointers.
    assert!(rb % K::BYTES_PER_ACT == 0 && x.len() >= (nt - 1) * xs + rb / K::BYTES_PER_ACT);
    let mut r = 0;
    if nt == 1 {
        // A constant after monomorphization: only the type's own pass is compiled in.
        r = match K::DECODE_ROWS {
            4 => decode_passes::<K, 4>(w, rb, x, xs, out),
            2 => decode_passes::<K, 2>(w, rb, x, xs, out),
            _ => 0,
        };
    }
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    while r < nrows {
        let p = [wp.add(r * rb)];
        let at = (r + 1) * rb + PREFETCH_AHEAD;
        let ahead = if nt == 1 && at + rb <= w.len() {
            wp.add(at)
        } else {
            core::ptr::null()
        };
        match nt {
            1 => store(out, nrows, r, K::rows::<1, 1>(p, rb, xp, xs, ahead)[0]),
            2 => store(out, nrows, r, K::rows::<1, 2>(p, rb, xp, xs, ahead)[0]),
            3 => store(out, nrows, r, K::rows::<1, 3>(p, rb, xp, xs, ahead)[0]),
            _ => store(out, nrows, r, K::rows::<1, 4>(p, rb, xp, xs, ahead)[0]),
        }
        r += 1;
    }
}

/// How far past its own rows a decode pass has the row kernel touch the weights (`ahead`).
const PREFETCH_AHEAD: usize = 2048;

/// Decode in passes of `R` rows; returns how many rows it did (the rest go one by one).
#[inline(always)]
unsafe fn decode_passes<K: Rows, const R: usize>(
    w: &[u8],
    rb: usize,
    x: &[K::Act],
    xs: usize,
    out: &mut [f32],
) -> usize {
    let nrows = w.len() / rb;
    let (wp, xp) = (w.as_ptr(), x.as_ptr());
    let mut r = 0;
    while r + R <= nrows {
        // The rows this pass touches ahead, if they are inside `w`.
        let at = (r + R) * rb + PREFETCH_AHEAD;
        let ahead = if at + R * rb <= w.len() {
            wp.add(at)
        } else {
            core::ptr::null()
        };
        let mut rows = [wp; R];
        for (i, row) in rows.iter_mut().enumerate() {
            *row = wp.add((r + i) * rb);
        }
        let v = K::rows::<R, 1>(rows, rb, xp, xs, ahead);
        for i in 0..R {
            out[r + i] = v[i][0];
        }
        r += R;
    }
    r
}

/// The [`Tile8`](super::Tile8) kernel of `K`: every row of `w` against the eight tokens of `x`.
///
/// Safety: as for [`run`].
#[inline(always)]
pub(crate) unsafe fn run8<K: Rows8>(w: &[u8], rb: usize, x: &[K::Act8], out: &mut [f32]) {
    let nrows = w.len() / rb;
    assert!(
        out.len() >= 8 * nrows && rb % K::BYTES_PER_ACT == 0 && x.len() >= rb / K::BYTES_PER_ACT
    );
    let wp = w.as_ptr();
    let mut r = 0;
    if K::PASS_ROWS == 2 {
        while r + 2 <= nrows {
            let v = K::rows8::<2>([wp.add(r * rb), wp.add((r + 1) * rb)], rb, x);
            store(out, nrows, r, v[0]);
            store(out, nrows, r + 1, v[1]);
            r += 2;
        }
    }
    while r < nrows {
        store(out, nrows, r, K::rows8::<1>([wp.add(r * rb)], rb, x)[0]);
        r += 1;
    }
}

/// Writes row `r`'s results for `N` tokens into the token-major `out` (`out[t * nrows + r]`).
#[inline(always)]
fn store<const N: usize>(out: &mut [f32], nrows: usize, r: usize, v: [f32; N]) {
    for (t, v) in v.into_iter().enumerate() {
        out[t * nrows + r] = v;
    }
}
