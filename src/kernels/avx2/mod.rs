//! x86-64 AVX2 + FMA (+ F16C for scale conversion) kernels, chosen at run time.
//!
//! Every quantized dot product is 8-bit integer work: a weight block is unpacked into 32 bytes,
//! `maddubs` multiplies unsigned weight bytes by signed activation bytes into 16-bit pair sums,
//! `madd` widens them to 32 bits (multiplying by a sub-block scale where there is one), and each
//! block's integer sum is scaled into f32 accumulators with one FMA. Types whose values are signed
//! (Q4_0, Q5_0, Q8_0) use the sign trick: `|w| * (y * sign(w))`.
//!
//! The files, one concern each (the same split as `simd128`):
//! - this file: the kernel table and the `#[target_feature]` entry points into the shared tile
//!   driver (`kernels::tile`);
//! - `ops`: vector helpers; `float`, `legacy`, `kquant`, `iq`: the row kernels of each family
//!   for decode and token tiles of up to four (the weight block is unpacked once, used `T` times);
//! - `prefill`: the eight-token row kernels, one token per 32-bit lane, so that the per-block
//!   work is shared by eight tokens (see `kernels/mod.rs`).
//!
//! Weight bytes are read with unaligned loads (GGUF data has no alignment guarantee).
//!
//! Overflow bounds: `maddubs` saturates at ±32767. Weights are at most 63 (Q6_K, unsigned) or
//! 128 (|Q8_0|), activations at most 127 in magnitude (our quantizers never emit -128), so a pair
//! sum is at most 2 * 128 * 127 = 32512.

// Token loops index several per-token arrays (accumulators, sums, activation rows) at once.
#![allow(clippy::needless_range_loop)]

use std::arch::x86_64::*;

mod float;
mod iq;
mod kquant;
mod legacy;
mod ops;
mod prefill;

use super::blocks::{Iq2S, Iq2Xs, Iq2Xxs, Iq3S, Iq3Xxs};
use super::tile::{self as driver, FloatRows, KRows, LegacyRows, Rows, Rows8};
use super::Kernel;
use crate::gguf::QType;
use float::{BF16W, F16W, F32W};
use kquant::{K2, K3, K4, K5, K6};
use legacy::{Q40, Q41, Q50, Q51, Q80};

/// The AVX2 kernel for `t`, if this CPU has AVX2, FMA and F16C.
pub(crate) fn kernel(t: QType) -> Option<Kernel> {
    if !(is_x86_feature_detected!("avx2")
        && is_x86_feature_detected!("fma")
        && is_x86_feature_detected!("f16c"))
    {
        return None;
    }
    Some(match t {
        QType::F32 => Kernel::F32(tile::<FloatRows<F32W>>),
        QType::F16 => Kernel::F32(tile::<FloatRows<F16W>>),
        QType::BF16 => Kernel::F32(tile::<FloatRows<BF16W>>),
        QType::Q4_0 => Kernel::Q8(tile::<LegacyRows<Q40>>, Some(tile8::<LegacyRows<Q40>>)),
        QType::Q4_1 => Kernel::Q8(tile::<LegacyRows<Q41>>, Some(tile8::<LegacyRows<Q41>>)),
        QType::Q5_0 => Kernel::Q8(tile::<LegacyRows<Q50>>, Some(tile8::<LegacyRows<Q50>>)),
        QType::Q5_1 => Kernel::Q8(tile::<LegacyRows<Q51>>, Some(tile8::<LegacyRows<Q51>>)),
        QType::Q8_0 => Kernel::Q8(tile::<LegacyRows<Q80>>, Some(tile8::<LegacyRows<Q80>>)),
        QType::Q2K => Kernel::Q8K(tile::<KRows<K2>>, Some(tile8::<KRows<K2>>)),
        QType::Q3K => Kernel::Q8K(tile::<KRows<K3>>, Some(tile8::<KRows<K3>>)),
        QType::Q4K => Kernel::Q8K(tile::<KRows<K4>>, Some(tile8::<KRows<K4>>)),
        QType::Q5K => Kernel::Q8K(tile::<KRows<K5>>, Some(tile8::<KRows<K5>>)),
        QType::Q6K => Kernel::Q8K(tile::<KRows<K6>>, Some(tile8::<KRows<K6>>)),
        // No eight-token IQ kernels yet: prefill runs them in token tiles.
        QType::IQ2XXS => Kernel::Q8K(tile::<KRows<Iq2Xxs>>, None),
        QType::IQ2XS => Kernel::Q8K(tile::<KRows<Iq2Xs>>, None),
        QType::IQ2S => Kernel::Q8K(tile::<KRows<Iq2S>>, None),
        QType::IQ3XXS => Kernel::Q8K(tile::<KRows<Iq3Xxs>>, None),
        QType::IQ3S => Kernel::Q8K(tile::<KRows<Iq3S>>, None),
    })
}

/// One weight type's AVX2 row kernel: one row against `T <= 4` tokens (the weight block is
/// unpacked once and used `T` times). AVX2 dots one row per pass; its 16 registers hold one
/// row's unpacked block and the tokens' accumulators.
pub(crate) trait Row {
    type Act;
    const BYTES_PER_ACT: usize;
    /// One row of `rb` bytes at `w` against the `T` activation rows at `x + t * xs`.
    unsafe fn row<const T: usize>(
        w: *const u8,
        rb: usize,
        x: *const Self::Act,
        xs: usize,
    ) -> [f32; T];
}

impl<K: Row> Rows for K {
    type Act = K::Act;
    const BYTES_PER_ACT: usize = K::BYTES_PER_ACT;
    const DECODE_ROWS: usize = 1;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows<const R: usize, const T: usize>(
        w: [*const u8; R],
        rb: usize,
        x: *const K::Act,
        xs: usize,
        _ahead: *const u8,
    ) -> [[f32; T]; R] {
        let mut out = [[0f32; T]; R];
        for r in 0..R {
            out[r] = K::row::<T>(w[r], rb, x, xs);
        }
        out
    }
}

/// One weight type's AVX2 eight-token prefill kernel: one row against eight tokens, one per
/// 32-bit lane.
pub(crate) trait Row8 {
    type Act8;
    const BYTES_PER_ACT: usize;
    unsafe fn row8(w: *const u8, rb: usize, x: &[Self::Act8]) -> __m256;
}

impl<K: Row8> Rows8 for K {
    type Act8 = K::Act8;
    const BYTES_PER_ACT: usize = K::BYTES_PER_ACT;
    const PASS_ROWS: usize = 1;
    #[inline]
    #[target_feature(enable = "avx2,fma,f16c")]
    unsafe fn rows8<const R: usize>(w: [*const u8; R], rb: usize, x: &[K::Act8]) -> [[f32; 8]; R] {
        let mut out = [[0f32; 8]; R];
        for r in 0..R {
            _mm256_storeu_ps(out[r].as_mut_ptr(), K::row8(w[r], rb, x));
        }
        out
    }
}

/// The shared [`driver::run`] compiled with AVX2: the row kernels are `#[target_feature]`
/// functions, and LLVM inlines them only into a caller with the same features.
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile<K: Rows>(w: &[u8], rb: usize, x: &[K::Act], xs: usize, nt: usize, out: &mut [f32]) {
    driver::run::<K>(w, rb, x, xs, nt, out)
}

/// [`driver::run8`] compiled with AVX2, as [`tile`].
#[target_feature(enable = "avx2,fma,f16c")]
unsafe fn tile8<K: Rows8>(w: &[u8], rb: usize, x: &[K::Act8], out: &mut [f32]) {
    driver::run8::<K>(w, rb, x, out)
}
