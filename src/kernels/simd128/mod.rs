//! wasm32 SIMD128 kernels, compiled in when the module is built with `+simd128` (a wasm module
//! has no run-time feature detection: it validates with SIMD or it does not load at all).
//!
//! Baseline SIMD128 has no 8-bit multiply, so all integer work is 16-bit. Weights are unpacked
//! straight into i16 lanes (`v128.load8x8_u` zero-extends 8 bytes into 8 lanes; nibbles and high
//! bits are then masked and shifted there), activations are loaded sign-extended the same way
//! (`v128.load8x8_s`), and `i16x8.mul` products are summed in i16 while that provably cannot
//! overflow. `i32x4.dot_i16x8_s` then widens them to i32, against ones or against a K-quant
//! sub-block's scale, which it applies for free. A block's i32 sums are scaled into f32 lanes
//! once per block and token. (On ARM `i16x8.mul` is one instruction and `dot` three; on x86 both
//! are one, `pmullw` and `pmaddwd`.)
//!
//! Overflow bounds: activations are at most 127 in magnitude (our quantizers never emit -128).
//! Summed in i16: 4 products of Q4/Q5 weights (|w| <= 31: 4 * 31 * 127 = 15748), 2 of Q6_K
//! (63: 16002), 8 of the prefill kernels' Q4/Q5 (8 * 31 * 127 = 31496 < 32767); Q8_0 products
//! (up to 16256) are widened one by one.
//!
//! The files, one concern each (the same split as `avx2`; the shared tile driver in
//! `kernels::tile` walks the rows and calls them):
//! - this file: the kernel table;
//! - `ops`: vector helpers, and the decode prefetch;
//! - `float`, `legacy`, `kquant` (and `iq`, the IQ2 / IQ3 layouts as K-quants): row kernels over `R` weight rows and `T <= 4` tokens: the
//!   activations of a block are loaded once for all `R` rows and the weights unpacked once for
//!   all `T` tokens. Decode runs `R = 4` for Q4_0/Q5_0/Q8_0 (four accumulation chains, a quarter
//!   of the activation loads, one vector f16 conversion for the four rows' scales), `R = 2` for
//!   float types and Q4_1/Q5_1 (their scale lanes hold `d, m` pairs) and `R = 1` for K-quants
//!   (their unpacking needs the registers). Decode passes also touch the weights of a later pass
//!   (`ops::prefetch`);
//! - `prefill`: eight-token kernels against `BlockQ8x8` / `BlockQ8Kx8`, two rows per pass: a
//!   weight block is unpacked once into an i16 buffer, each group of four values is broadcast
//!   (`v128.load64_splat`) and multiplied with two tokens' four activations per vector, so the
//!   unpacking and the per-block scaling are shared by eight tokens and every activation load by
//!   two rows;
//! - `relaxed`: all relaxed-SIMD code, compiled only with `+relaxed-simd`.
//!
//! What the code looks like is dictated by V8's code generation (x64, read with
//! `node --print-wasm-code`): V8 has 16 vector registers and spills whatever LLVM keeps live, and
//! LLVM, targeting a machine with unlimited locals, hoists every load of an unrolled loop to its
//! top. So loops over a block's groups and steps are kept rolled (`ops::opaque` trip counts); shifts
//! are by constants (V8 re-masks a variable shift count at every use; shifts that depend on the
//! group are multiplies by powers of two); no closure or array `map` in hot code (LLVM may leave
//! them as calls, and four vectors returned from a call travel through memory); per-lane
//! multiplies by powers of two are avoided (LLVM turns them into per-lane shifts, which SIMD128
//! lacks, and scalarizes them).

// Token and row loops index several per-token arrays at once.
#![allow(clippy::needless_range_loop)]

mod float;
mod iq;
mod kquant;
mod legacy;
mod ops;
mod prefill;
#[cfg(target_feature = "relaxed-simd")]
mod relaxed;

#[cfg(target_feature = "relaxed-simd")]
pub(crate) use relaxed::kernel_relaxed;

// SIMD128 is a compile-time feature, so the shared drivers are the kernels as they are (AVX2
// needs `#[target_feature]` entry points instead).
use super::blocks::{Iq2S, Iq2Xs, Iq2Xxs, Iq3S, Iq3Xxs};
use super::tile::{run as tile, run8 as tile8, FloatRows, KRows, LegacyRows};
use super::Kernel;
use crate::gguf::QType;
use float::{BF16W, F16W, F32W};
use kquant::{K2, K3, K4, K5, K6};
use legacy::{Q40, Q41, Q50, Q51, Q80};

/// The SIMD128 kernel for `t` (every weight type has one).
pub(crate) fn kernel(t: QType) -> Option<Kernel> {
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
        QType::IQ2XXS => Kernel::Q8K(tile::<KRows<Iq2Xxs>>, Some(tile8::<KRows<Iq2Xxs>>)),
        QType::IQ2XS => Kernel::Q8K(tile::<KRows<Iq2Xs>>, Some(tile8::<KRows<Iq2Xs>>)),
        QType::IQ2S => Kernel::Q8K(tile::<KRows<Iq2S>>, Some(tile8::<KRows<Iq2S>>)),
        QType::IQ3XXS => Kernel::Q8K(tile::<KRows<Iq3Xxs>>, Some(tile8::<KRows<Iq3Xxs>>)),
        QType::IQ3S => Kernel::Q8K(tile::<KRows<Iq3S>>, Some(tile8::<KRows<Iq3S>>)),
    })
}
