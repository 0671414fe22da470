//! CPU kernels: quantized matrix products straight from GGUF's block layouts.
//!
//! `matmul` computes `out[t * rows + r] = dot(weight row r, activation row t)`. Following llama.cpp
//! (our correctness reference), the f32 activations are quantized once per call into the weight
//! type's "vec-dot" format (Q8_0/Q8_1 blocks of 32, or Q8_K super-blocks of 256; float weights
//! take f32 as is), and every weight block is dotted in integers against it. No weight is ever
//! converted to f32 beyond a register.
//!
//! The pieces, one concern per file:
//! - `blocks`: byte layouts, activation block structs and quantizers, scale unpacking.
//! - `reference`: a scalar kernel for every type; the tests' truth and the portable fallback.
//! - `tile`: the tile driver both SIMD instruction sets share (the loops over rows and token
//!   tiles), generic over a per-type row kernel ([`tile::Rows`], [`tile::Rows8`]).
//! - `avx2/`: x86-64 AVX2+FMA kernels, chosen at run time.
//! - `simd128/`: wasm32 SIMD128 kernels, compiled in when the module is built with `+simd128`
//!   (wasm has no run-time feature detection; without it the reference runs), and with
//!   `+relaxed-simd` relaxed prefill kernels for some types (`simd128/relaxed.rs`; the browser
//!   picks the build).
//!   Both folders split the same way: `mod.rs` (kernel table), `ops` (vector helpers), `float`,
//!   `legacy` (Q4_0..Q8_0), `kquant` (Q2_K..Q6_K), `prefill` (eight-token kernels).
//! - `check`: the fastest kernels against the reference at run time, on random blocks.
//! - this file: the public API, the choice of kernel, and the work split (`parallel`, token tiles).
//!
//! A kernel is a [`Tile`] function: it dots a run of weight rows against up to
//! [`TOKENS_PER_TILE`] activation rows (decode is one; the reference runs prefill this way too).
//! A SIMD instruction set can add a [`Tile8`] prefill kernel that takes eight tokens interleaved
//! so that each token sits in its own 32-bit lane ([`blocks::BlockQ8x8`]): one broadcast weight
//! group then multiplies eight tokens at once, and the sums stay per token in integer lanes until
//! a block's scale is applied, once per block for all eight. That is what makes prefill a
//! matrix-matrix product rather than repeated matrix-vector products.
//!
//! Kernels are picked once per call by a `match` on the type in each instruction set's `mod.rs`
//! (`avx2::kernel`, `simd128::kernel`), so adding an instruction set is one folder plus one
//! line in [`select`].

mod blocks;
mod check;
mod iq_grids;
mod reference;
#[cfg(any(
    target_arch = "x86_64",
    all(target_arch = "wasm32", target_feature = "simd128")
))]
mod tile;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd128;

use crate::gguf::QType;
use crate::parallel::{self, SharedMut};
use crate::scratch::{self, Slot};
use blocks::{Activation, BlockQ8, BlockQ8K, BlockQ8Kx8, BlockQ8x8, VecDotType};
pub use check::self_check;

/// Most activation rows a [`Tile`] call takes. Prefill reuses each decoded weight block this many
/// times; 4 keeps a tile's accumulators in AVX2's 16 registers.
pub(crate) const TOKENS_PER_TILE: usize = 4;

/// Dots every row of `w` (`w.len() / row_bytes` rows of `row_bytes` bytes) with `nt` activation
/// rows (`1 <= nt <= TOKENS_PER_TILE`) that start `x_stride` elements apart in `x`, writing
/// `out[t * nrows + r]`. Unsafe because SIMD versions need their CPU features; [`select`] only
/// hands out a kernel whose features were detected.
pub(crate) type Tile<A> =
    unsafe fn(w: &[u8], row_bytes: usize, x: &[A], x_stride: usize, nt: usize, out: &mut [f32]);

/// Prefill kernel: dots every row of `w` with the eight tokens of `x` (one row of eight-token
/// blocks), writing `out[t * nrows + r]` for all eight `t` (zeros for padding tokens).
pub(crate) type Tile8<A8> = unsafe fn(w: &[u8], row_bytes: usize, x: &[A8], out: &mut [f32]);

/// A weight type's kernels, by the activation format they take.
#[derive(Clone, Copy)]
pub(crate) enum Kernel {
    F32(Tile<f32>),
    Q8(Tile<BlockQ8>, Option<Tile8<BlockQ8x8>>),
    Q8K(Tile<BlockQ8K>, Option<Tile8<BlockQ8Kx8>>),
}

/// From this many tokens on, prefill uses a [`Tile8`] kernel where there is one (below it, most
/// of its eight lanes would be padding).
const TILE8_MIN_TOKENS: usize = 4;

/// The instruction sets a kernel can come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Isa {
    Reference,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    Simd128,
    /// SIMD128 with the relaxed-SIMD kernels where a type has them.
    #[cfg(target_feature = "relaxed-simd")]
    Relaxed,
}

/// The kernel for `t` from `isa`, or `None` if this CPU lacks it (or it has no such kernel).
fn kernel_from(isa: Isa, t: QType) -> Option<Kernel> {
    match isa {
        Isa::Reference => Some(reference::kernel(t)),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => avx2::kernel(t),
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        Isa::Simd128 => simd128::kernel(t),
        #[cfg(target_feature = "relaxed-simd")]
        Isa::Relaxed => simd128::kernel_relaxed(t).or_else(|| simd128::kernel(t)),
    }
}

/// The fastest kernel for `t` on this CPU.
fn select(t: QType) -> Kernel {
    #[cfg(target_feature = "relaxed-simd")]
    if let Some(k) = simd128::kernel_relaxed(t) {
        return k;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(k) = avx2::kernel(t) {
        return k;
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
    if let Some(k) = simd128::kernel(t) {
        return k;
    }
    reference::kernel(t)
}

/// `out[t * rows + r] = dot(row r of w, x[t * cols .. (t + 1) * cols])` for `t < n`.
/// `w` holds `rows` rows of `cols` values in GGUF's native block layout for `qtype`.
///
/// Panics if `cols` is not a whole number of blocks or a slice has the wrong length.
pub fn matmul(
    qtype: QType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    out: &mut [f32],
) {
    let m = QMatrix {
        qtype,
        w,
        rows,
        cols,
    };
    matmul_with(select(qtype), m, x, n, out)
}

/// A weight matrix: `rows` rows of `cols` values of `qtype`, in GGUF's block layout.
#[derive(Clone, Copy)]
pub struct QMatrix<'a> {
    pub qtype: QType,
    pub w: &'a [u8],
    pub rows: usize,
    pub cols: usize,
}

/// The weights as the work split sees them: `rows` rows of `rb` bytes.
#[derive(Clone, Copy)]
struct Weights<'a> {
    w: &'a [u8],
    rb: usize,
    rows: usize,
}

/// Q5_0 blocks rewritten as Q8_0 blocks with the same values: each 5-bit `q` becomes the byte
/// `q - 16` under the same f16 scale, so nothing is rounded. Q8_0 needs no bit unpacking: its
/// kernels run about twice as fast (AVX2 and SIMD128) for 55% more bytes.
pub fn q5_0_as_q8_0(q5: &[u8]) -> Vec<u8> {
    blocks::q5_0_as_q8_0(q5)
}

/// IQ4_NL blocks as Q8_0 blocks of the same values (see `blocks::iq4_nl_as_q8_0`).
pub fn iq4_nl_as_q8_0(iq4: &[u8]) -> Vec<u8> {
    blocks::iq4_nl_as_q8_0(iq4)
}

/// IQ4_XS super-blocks as Q8_0 blocks (see `blocks::iq4_xs_as_q8_0`).
pub fn iq4_xs_as_q8_0(iq4: &[u8]) -> Vec<u8> {
    blocks::iq4_xs_as_q8_0(iq4)
}

/// Dequantizes one row (`out.len()` values) of `qtype` blocks.
pub fn dequantize_row(qtype: QType, row: &[u8], out: &mut [f32]) {
    assert!(
        row.len() >= blocks::row_bytes(qtype, out.len()),
        "kernels: row too short"
    );
    reference::dequantize(qtype, row, out)
}

fn matmul_with(k: Kernel, m: QMatrix, x: &[f32], n: usize, out: &mut [f32]) {
    let QMatrix {
        qtype,
        w,
        rows,
        cols,
    } = m;
    let rb = blocks::row_bytes(qtype, cols);
    assert_eq!(
        w.len(),
        rows * rb,
        "kernels: weight bytes do not match {rows} x {cols} {qtype:?}"
    );
    assert_eq!(
        x.len(),
        n * cols,
        "kernels: activations are not {n} x {cols}"
    );
    assert_eq!(out.len(), n * rows, "kernels: output is not {n} x {rows}");
    if rows == 0 || n == 0 {
        return;
    }
    if cols == 0 {
        out.fill(0.0);
        return;
    }
    let wt = Weights { w, rb, rows };
    match k {
        Kernel::F32(k) => run(k, wt, x, cols, n, out),
        Kernel::Q8(k, k8) => run_quantized(k, k8, wt, x, cols, n, out),
        Kernel::Q8K(k, k8) => run_quantized(k, k8, wt, x, cols, n, out),
    }
}

/// Quantizes the activations into `B` blocks, then runs the eight-token prefill kernel `k8` if
/// there is one and enough tokens, else `k`.
fn run_quantized<B: Activation>(
    k: Tile<B>,
    k8: Option<Tile8<B::X8>>,
    wt: Weights,
    x: &[f32],
    cols: usize,
    n: usize,
    out: &mut [f32],
) {
    let nb = cols / B::VALUES;
    scratch::with(Slot::Activations, n * nb, |xq: &mut [B]| {
        if n * cols >= 1 << 16 {
            let xq_ptr = SharedMut::new(xq);
            parallel::for_each(n, |t| {
                // SAFETY: each task writes its own row of `xq`.
                let q = unsafe { xq_ptr.slice(t * nb, nb) };
                B::quantize(&x[t * cols..(t + 1) * cols], q)
            });
        } else {
            B::quantize(x, xq);
        }
        match k8 {
            Some(k8) if n >= TILE8_MIN_TOKENS => {
                // Groups of eight tokens, the last one padded with zeros.
                scratch::with(
                    Slot::Interleaved,
                    n.div_ceil(8) * nb,
                    |x8: &mut [B::X8]| {
                        for (g, o) in x8.chunks_mut(nb).enumerate() {
                            B::interleave(&xq[8 * g * nb..], (n - 8 * g).min(8), nb, o);
                        }
                        run8(k8, wt, x8, nb, n, out)
                    },
                )
            }
            _ => run(k, wt, xq, nb, n, out),
        }
    })
}

/// Below this many weight bytes (times tokens, for prefill) a product runs on the calling thread.
/// Inside a forward pass a fork/join on the spinning team ([`parallel`]) costs about a
/// microsecond, the time to stream ~10-20 KB.
const MIN_PARALLEL_BYTES: usize = 32 << 10;
/// Weight bytes a decode task streams at least (amortizes claiming it).
const MIN_TASK_BYTES: usize = 16 << 10;
/// ...and at most: on a shared machine a thread can lose its core mid-task, and the others then
/// wait at the product's end for that task alone; small tasks bound the wait (the output
/// projection, 30-180 MB, would otherwise be eight tasks of several MB).
const MAX_TASK_BYTES: usize = 256 << 10;
/// Weight bytes of the rows a prefill task keeps in cache while it runs every token tile over them.
const PREFILL_TASK_BYTES: usize = 32 << 10;

/// Runs kernel `k` over all rows and tokens, splitting rows across threads ([`parallel`]).
fn run<A: Sync>(k: Tile<A>, wt: Weights, x: &[A], xs: usize, n: usize, out: &mut [f32]) {
    let Weights { w, rb, rows } = wt;
    let threads = parallel::threads();
    if n == 1 {
        // Decode: bound by streaming the weights. Row chunks write disjoint slices of `out`.
        let serial = threads == 1 || rows * rb < MIN_PARALLEL_BYTES;
        // SAFETY (all `k` calls): `k` came from `select`/`kernel_from`, which checked its CPU
        // features; slice lengths are as `Tile` documents.
        if serial {
            unsafe { k(w, rb, x, xs, 1, out) };
            return;
        }
        let per_task = rows
            .div_ceil(4 * threads)
            .min(MAX_TASK_BYTES / rb)
            .max(MIN_TASK_BYTES.div_ceil(rb));
        let out_ptr = SharedMut::new(out);
        parallel::for_each(rows.div_ceil(per_task), |i| {
            let (r0, r1) = (i * per_task, rows.min((i + 1) * per_task));
            // SAFETY: tasks own disjoint row ranges of `out`.
            let o = unsafe { out_ptr.slice(r0, r1 - r0) };
            unsafe { k(&w[r0 * rb..r1 * rb], rb, x, xs, 1, o) }
        });
        return;
    }

    prefill(wt, n, TOKENS_PER_TILE, out, |t0, w, buf| {
        let nt = TOKENS_PER_TILE.min(n - t0);
        unsafe {
            k(
                w,
                rb,
                &x[t0 * xs..],
                xs,
                nt,
                &mut buf[..nt * (w.len() / rb)],
            )
        }
    });
}

/// Prefill with an eight-token kernel: `x8` holds ceil(n / 8) rows of `nb` eight-token blocks.
fn run8<A: Sync>(k: Tile8<A>, wt: Weights, x8: &[A], nb: usize, n: usize, out: &mut [f32]) {
    let rb = wt.rb;
    prefill(wt, n, 8, out, |t0, w, buf| unsafe {
        k(w, rb, &x8[t0 / 8 * nb..(t0 / 8 + 1) * nb], buf)
    });
}

/// The prefill work split: each task takes a block of rows small enough to stay in cache and runs
/// every tile of `tile_tokens` tokens over it, so the weights are read from memory once.
/// `tile(t0, rows_bytes, buf)` computes tokens `t0..` for those rows into `buf[t * nr + r]`.
fn prefill<F>(wt: Weights, n: usize, tile_tokens: usize, out: &mut [f32], tile: F)
where
    F: Fn(usize, &[u8], &mut [f32]) + Sync,
{
    let Weights { w, rb, rows } = wt;
    let threads = parallel::threads();
    let serial = threads == 1 || rows * rb * n < MIN_PARALLEL_BYTES;
    let mut per_task = PREFILL_TASK_BYTES.div_ceil(rb).max(4);
    if !serial {
        // Enough tasks for every thread to get several.
        per_task = per_task.min(rows.div_ceil(2 * threads).max(4));
    }
    let out_ptr = SharedMut::new(out);
    let task = |i: usize| {
        let r0 = i * per_task;
        let r1 = rows.min(r0 + per_task);
        let nr = r1 - r0;
        scratch::with(Slot::Tile, tile_tokens * nr, |buf: &mut [f32]| {
            for t0 in (0..n).step_by(tile_tokens) {
                tile(t0, &w[r0 * rb..r1 * rb], buf);
                for t in 0..tile_tokens.min(n - t0) {
                    // SAFETY: tasks own disjoint row ranges, so these writes never overlap, and
                    // (t0 + t) * rows + r1 <= n * rows = out.len().
                    unsafe { out_ptr.write((t0 + t) * rows + r0, &buf[t * nr..(t + 1) * nr]) };
                }
            }
        })
    };
    let tasks = rows.div_ceil(per_task);
    if serial {
        (0..tasks).for_each(task);
    } else {
        parallel::for_each(tasks, task);
    }
}

/// Hooks for `tests/kernels.rs` and benchmarks: run a chosen instruction set, see the quantized
/// activations. Not part of the engine's API.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Names of the instruction sets whose kernels this CPU can run, best last.
    pub fn isas() -> Vec<&'static str> {
        let simd: &[(&str, bool)] = &[
            #[cfg(target_arch = "x86_64")]
            ("avx2", avx2::kernel(QType::Q8_0).is_some()),
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            ("simd128", true),
            #[cfg(target_feature = "relaxed-simd")]
            ("relaxed-simd", true),
        ];
        std::iter::once("reference")
            .chain(simd.iter().filter(|s| s.1).map(|s| s.0))
            .collect()
    }

    fn isa(name: &str) -> Isa {
        match name {
            "reference" => Isa::Reference,
            #[cfg(target_arch = "x86_64")]
            "avx2" => Isa::Avx2,
            #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
            "simd128" => Isa::Simd128,
            #[cfg(target_feature = "relaxed-simd")]
            "relaxed-simd" => Isa::Relaxed,
            _ => panic!("unknown instruction set {name}"),
        }
    }

    pub use super::QMatrix;

    /// Where a block's f16 scales sit (random test weights get finite values there).
    pub use super::blocks::f16_scale_offsets as scale_offsets;

    /// The IQ2 / IQ3 lookup tables, for checking them against an independent copy.
    pub use super::iq_grids::{
        IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS,
    };

    /// [`matmul`](super::matmul) of `m` with the kernels of instruction set `isa` (a name from
    /// [`isas`]); a type that instruction set has no kernel for runs the reference, as
    /// [`select`](super::select) falls back to it.
    pub fn matmul_isa(isa_name: &str, m: QMatrix, x: &[f32], n: usize, out: &mut [f32]) {
        let k = kernel_from(isa(isa_name), m.qtype).unwrap_or_else(|| reference::kernel(m.qtype));
        matmul_with(k, m, x, n, out)
    }

    /// The activation row `x` as the kernels for `qtype` see it after quantization: the
    /// dequantized values (`q * d`), and for Q8_1 (Q4_1/Q5_1 weights) each block's stored `s`
    /// (empty otherwise). Panics if a Q8_K block's `bsums` disagree with its values.
    pub fn quantized_activations(qtype: QType, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        match blocks::vec_dot_type(qtype) {
            VecDotType::F32 => (x.to_vec(), vec![]),
            VecDotType::Q8 => {
                let mut q = vec![BlockQ8::default(); x.len() / blocks::QK];
                blocks::quantize_q8(x, &mut q);
                let deq = q
                    .iter()
                    .flat_map(|b| b.qs.map(|v| v as f32 * b.d))
                    .collect();
                let s = if matches!(qtype, QType::Q4_1 | QType::Q5_1) {
                    q.iter().map(|b| b.s).collect()
                } else {
                    vec![]
                };
                (deq, s)
            }
            VecDotType::Q8K => {
                let mut q = vec![BlockQ8K::default(); x.len() / blocks::QK_K];
                blocks::quantize_q8k(x, &mut q);
                for b in &q {
                    for (g, s) in b.bsums.iter().enumerate() {
                        let sum: i32 = b.qs[16 * g..16 * g + 16].iter().map(|&v| v as i32).sum();
                        assert_eq!(sum, *s as i32, "Q8_K bsums");
                    }
                }
                (
                    q.iter()
                        .flat_map(|b| b.qs.map(|v| v as f32 * b.d))
                        .collect(),
                    vec![],
                )
            }
        }
    }

    /// Bytes of one row of `cols` values of `qtype`.
    pub fn row_bytes(qtype: QType, cols: usize) -> usize {
        blocks::row_bytes(qtype, cols)
    }
}
