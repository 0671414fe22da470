//! The CPU kernels against independent truths:
//! - dequantization against candle's (bit for bit), on random blocks (the IQ types, which candle
//!   lacks, against gguf-py's in tests/iq_quants.rs);
//! - the quantized activations against candle's Q8_0 and a re-derivation of llama.cpp's Q8_K;
//! - every instruction set's dot products and matmul against an f64 dot of the dequantized
//!   weights and the dequantized (quantized) activations, tightly, and against the f32
//!   activations within the quantization error bound;
//! - SIMD against the reference, and prefill (token tiles, eight-token kernels, threads) against
//!   decode;
//! - saturated blocks against constant activations, where narrow accumulators would overflow.
//!
//! The same tests run under wasm (the SIMD128 kernels, or the reference without `+simd128`), in
//! Node's WASI through `scripts/wasm-test-runner.mjs`:
//! ```text
//! RUSTFLAGS='-C target-feature=+simd128' \
//! CARGO_TARGET_WASM32_WASIP1_RUNNER='node scripts/wasm-test-runner.mjs' \
//! cargo test --release --test kernels --target wasm32-wasip1
//! ```
//! (wasm32-wasip1 aborts on panic, so the `should_panic` test is skipped there.)
//!
//! Benchmarks: `cargo test --release --test kernels -- --ignored --nocapture bench`
//! (`BENCH_ONLY=Q4K:640x2048,Q6K:640x2048` picks cases, `BENCH_ISAS=simd128` instruction sets;
//! the same under wasm with the variables above).
//!
//! Tolerances are relative to `sum |w_i * x_i|`: 1e-5 of it is far below what one wrong nibble,
//! bit or scale index in a 1024-value row costs (about 1e-3 of it), so every check can fail.

use candle_core::quantized::ggml_file::qtensor_from_ggml;
use candle_core::quantized::GgmlDType;
use candle_core::Device;
use half::{bf16, f16};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wick::gguf::QType;
use wick::kernels::{self, testing};

/// Tight tolerance, as a fraction of `sum |w_i * x_i|`.
const TIGHT: f64 = 1e-5;

/// `(values, bytes)` per block, written out here independently of the crate.
/// `rows` x `cols` weights `w` of type `t`, as `testing::matmul_isa` takes them.
fn mat(t: QType, w: &[u8], rows: usize, cols: usize) -> testing::QMatrix<'_> {
    testing::QMatrix {
        qtype: t,
        w,
        rows,
        cols,
    }
}

fn shape(t: QType) -> (usize, usize) {
    use QType::*;
    match t {
        F32 => (1, 4),
        F16 | BF16 => (1, 2),
        Q4_0 => (32, 18),
        Q4_1 => (32, 20),
        Q5_0 => (32, 22),
        Q5_1 => (32, 24),
        Q8_0 => (32, 34),
        Q2K => (256, 84),
        Q3K => (256, 110),
        Q4K => (256, 144),
        Q5K => (256, 176),
        Q6K => (256, 210),
        IQ2XXS => (256, 66),
        IQ2XS => (256, 74),
        IQ2S => (256, 82),
        IQ3XXS => (256, 98),
        IQ3S => (256, 110),
    }
}

/// candle's type for `t`, where candle has one (it has no IQ types: tests/iq_quants.rs holds
/// those against gguf-py's dequantizers instead).
fn candle_type(t: QType) -> Option<GgmlDType> {
    use QType::*;
    Some(match t {
        F32 => GgmlDType::F32,
        F16 => GgmlDType::F16,
        BF16 => GgmlDType::BF16,
        Q4_0 => GgmlDType::Q4_0,
        Q4_1 => GgmlDType::Q4_1,
        Q5_0 => GgmlDType::Q5_0,
        Q5_1 => GgmlDType::Q5_1,
        Q8_0 => GgmlDType::Q8_0,
        Q2K => GgmlDType::Q2K,
        Q3K => GgmlDType::Q3K,
        Q4K => GgmlDType::Q4K,
        Q5K => GgmlDType::Q5K,
        Q6K => GgmlDType::Q6K,
        IQ2XXS | IQ2XS | IQ2S | IQ3XXS | IQ3S => return None,
    })
}

fn is_q8_1(t: QType) -> bool {
    matches!(t, QType::Q4_1 | QType::Q5_1)
}

/// Activations per quantized block (32, 256), or 1 for float weights.
fn act_block(t: QType) -> usize {
    match shape(t).0 {
        1 => 1,
        32 => 32,
        _ => 256,
    }
}

/// `rows` random rows of `cols` values: random bytes for the quantized payload (every nibble,
/// bit and K-quant scale byte), random f16 block scales in [-0.05, 0.05], random floats in [-1, 1].
fn random_weights(rng: &mut SmallRng, t: QType, rows: usize, cols: usize) -> Vec<u8> {
    let (values, bytes) = shape(t);
    assert_eq!(cols % values, 0);
    let n = rows * cols / values;
    let mut w = vec![0u8; n * bytes];
    match t {
        QType::F32 => w
            .chunks_exact_mut(4)
            .for_each(|c| c.copy_from_slice(&rng.random_range(-1f32..1.0).to_le_bytes())),
        QType::F16 => w.chunks_exact_mut(2).for_each(|c| {
            c.copy_from_slice(&f16::from_f32(rng.random_range(-1f32..1.0)).to_le_bytes())
        }),
        QType::BF16 => w.chunks_exact_mut(2).for_each(|c| {
            c.copy_from_slice(&bf16::from_f32(rng.random_range(-1f32..1.0)).to_le_bytes())
        }),
        _ => {
            rng.fill(&mut w[..]);
            for block in w.chunks_exact_mut(bytes) {
                for &at in testing::scale_offsets(t) {
                    let s = f16::from_f32(rng.random_range(-0.05f32..0.05));
                    block[at..at + 2].copy_from_slice(&s.to_le_bytes());
                }
            }
        }
    }
    w
}

/// Random activations in [-1, 1] with a few outliers and, if there is room, one all-zero block.
fn random_activations(rng: &mut SmallRng, n: usize, cols: usize, zero_block: usize) -> Vec<f32> {
    let mut x: Vec<f32> = (0..n * cols)
        .map(|_| {
            if rng.random_range(0..50) == 0 {
                rng.random_range(-8f32..8.0)
            } else {
                rng.random_range(-1f32..1.0)
            }
        })
        .collect();
    if cols >= 2 * zero_block && zero_block > 1 {
        x[zero_block..2 * zero_block].fill(0.0);
    }
    x
}

fn dequantize(t: QType, w: &[u8], cols: usize) -> Vec<f32> {
    let rb = testing::row_bytes(t, cols);
    let mut out = vec![0f32; w.len() / rb * cols];
    for (row, o) in w.chunks_exact(rb).zip(out.chunks_exact_mut(cols)) {
        kernels::dequantize_row(t, row, o);
    }
    out
}

/// The f64 truth for one weight row and one activation row, as the kernels should compute it from
/// the quantized activations (`xq`, with Q8_1's stored block sums `s`), and `sum |w_i * xq_i|`.
///
/// For Q4_1/Q5_1 the kernels add `m * s` per block, where llama.cpp's `s` is `f16(d * sum(q))`
/// rather than the exact sum of the dequantized activations; the truth uses `s` the same way.
fn truth(t: QType, w_row: &[u8], wd: &[f32], xq: &[f32], s: &[f32]) -> (f64, f64) {
    let mut dot: f64 = wd.iter().zip(xq).map(|(&a, &b)| a as f64 * b as f64).sum();
    let mut scale: f64 = wd
        .iter()
        .zip(xq)
        .map(|(&a, &b)| (a as f64 * b as f64).abs())
        .sum();
    if is_q8_1(t) {
        let bytes = shape(t).1;
        for (b, block) in w_row.chunks_exact(bytes).enumerate() {
            let m = f16::from_le_bytes([block[2], block[3]]).to_f64();
            let exact: f64 = xq[32 * b..32 * b + 32].iter().map(|&v| v as f64).sum();
            dot += m * (s[b] as f64 - exact);
            scale += (m * s[b] as f64).abs();
        }
    }
    (dot, scale)
}

/// A bound on `|dot(w, x) - dot(w, xq)|` from how the activations were quantized: each value is
/// off by at most half a step `d = amax / 127` (plus f16 rounding of `d`), and Q8_1's `s` by at
/// most 32 half-steps plus its own f16 rounding.
fn quantization_bound(t: QType, w_row: &[u8], wd: &[f32], x: &[f32], s: &[f32]) -> f64 {
    let block = act_block(t);
    if block == 1 {
        return 0.0;
    }
    let mut bound = 0.0;
    for (b, (xb, wb)) in x.chunks(block).zip(wd.chunks(block)).enumerate() {
        let d = xb.iter().fold(0f64, |m, v| m.max(v.abs() as f64)) / 127.0;
        bound += 0.57 * d * wb.iter().map(|v| v.abs() as f64).sum::<f64>();
        if is_q8_1(t) {
            let block_bytes = &w_row[b * shape(t).1..];
            let m = f16::from_le_bytes([block_bytes[2], block_bytes[3]])
                .to_f64()
                .abs();
            bound += m * (32.0 * 0.57 * d + 1e-3 * s[b].abs() as f64);
        }
    }
    bound
}

#[test]
fn dequantize_matches_candle_bit_for_bit() {
    let mut rng = SmallRng::seed_from_u64(1);
    for t in QType::ALL {
        let Some(ct) = candle_type(t) else { continue };
        let values = shape(t).0;
        for blocks in [1, 2, 7] {
            let cols = if values == 1 {
                37 * blocks
            } else {
                values * blocks
            };
            for rows in [1, 3] {
                let w = random_weights(&mut rng, t, rows, cols);
                let ours = dequantize(t, &w, cols);
                let theirs = qtensor_from_ggml(ct, &w, vec![rows, cols], &Device::Cpu)
                    .unwrap()
                    .dequantize(&Device::Cpu)
                    .unwrap()
                    .flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap();
                assert_eq!(ours.len(), theirs.len());
                for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
                    assert!(
                        a.to_bits() == b.to_bits(),
                        "{t:?} {rows}x{cols} value {i}: ours {a} candle {b}"
                    );
                }
            }
        }
    }
}

/// Makes a block whose scale is exactly 1 (its largest magnitude is `max`, +-127) and whose other
/// values are exact halves, so the quantizers' tie rounding (to even, as llama.cpp's SIMD
/// quantizers and its Q8_K one round) shows.
fn ties(block: &mut [f32], max: f32) {
    for (i, v) in block.iter_mut().enumerate() {
        *v = ((i % 40) as f32 - 20.0) * 2.5 + 0.5;
    }
    block[0] = max;
}

/// Q8_0 as llama.cpp's SIMD `quantize_row_q8_0` (what it runs on x86, ARM and wasm), recomputed
/// here: `q = round_half_even(x * (127 / amax))`, `d = f16(amax / 127)`. (Its scalar `_ref`
/// version, which candle copies, multiplies by `1 / d` and rounds halves away from zero.)
#[test]
fn q8_0_activations_follow_llama_cpp() {
    let mut rng = SmallRng::seed_from_u64(2);
    for cols in [32, 64, 320] {
        let mut x = random_activations(&mut rng, 1, cols, 32);
        ties(&mut x[..32], 127.0);
        let (ours, _) = testing::quantized_activations(QType::Q8_0, &x);
        for (b, xb) in x.chunks(32).enumerate() {
            let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
            let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
            let d16 = f16::from_f32(amax / 127.0).to_f32();
            for (i, &v) in xb.iter().enumerate() {
                let want = (v * id).round_ties_even() * d16;
                let got = ours[32 * b + i];
                // `==`, not bits: a small negative value rounds to -0 here and to q = 0 (+0) in
                // the quantizer, the same activation.
                assert!(
                    got == want,
                    "Q8_0 activation {}: ours {got} llama.cpp {want}",
                    32 * b + i
                );
            }
        }
    }
}

/// Q8_1 (values and `s`) as llama.cpp's SIMD `quantize_row_q8_1`, and Q8_K as its
/// `quantize_row_q8_K_ref` (which x86 runs), recomputed here.
#[test]
fn q8_1_and_q8_k_activations_follow_llama_cpp() {
    let mut rng = SmallRng::seed_from_u64(3);
    let mut x = random_activations(&mut rng, 1, 1024, 256);
    ties(&mut x[..32], 127.0);
    ties(&mut x[512..768], -127.0);
    // Q8_1: s = f16(d * sum(q)) with the unrounded d.
    let (xq, s) = testing::quantized_activations(QType::Q4_1, &x);
    for (b, xb) in x.chunks(32).enumerate() {
        let amax = xb.iter().fold(0f32, |m, v| m.max(v.abs()));
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        let sum: i32 = xb.iter().map(|&v| (v * id).round_ties_even() as i32).sum();
        assert_eq!(
            s[b],
            f16::from_f32(sum as f32 * d).to_f32(),
            "Q8_1 s of block {b}"
        );
        let d16 = f16::from_f32(d).to_f32();
        for (i, &v) in xb.iter().enumerate() {
            assert_eq!(
                xq[32 * b + i],
                (v * id).round_ties_even() * d16,
                "Q8_1 value {}",
                32 * b + i
            );
        }
    }
    // Q8_K: d = -max / 127 with max the signed value of largest magnitude, q = round half to even.
    let (xq, _) = testing::quantized_activations(QType::Q4K, &x);
    for (b, xb) in x.chunks(256).enumerate() {
        let max = xb
            .iter()
            .fold(0f32, |m, &v| if v.abs() > m.abs() { v } else { m });
        for (i, &v) in xb.iter().enumerate() {
            let want = if max == 0.0 {
                0.0
            } else {
                let iscale = -127.0 / max;
                (iscale * v).round_ties_even().min(127.0) * (1.0 / iscale)
            };
            assert_eq!(xq[256 * b + i], want, "Q8_K value {}", 256 * b + i);
        }
    }
}

/// Columns to test a type's dot product with: one block, a few, and a long row.
fn test_cols(t: QType) -> Vec<usize> {
    match shape(t).0 {
        1 => vec![1, 7, 8, 16, 37, 1000],
        32 => vec![32, 96, 1024],
        _ => vec![256, 768, 2048],
    }
}

#[test]
fn every_isa_vec_dot_matches_f64_truth() {
    let mut rng = SmallRng::seed_from_u64(4);
    for isa in testing::isas() {
        for t in QType::ALL {
            for cols in test_cols(t) {
                for _ in 0..4 {
                    let w = random_weights(&mut rng, t, 1, cols);
                    let x = random_activations(&mut rng, 1, cols, act_block(t));
                    let mut out = [0f32];
                    testing::matmul_isa(isa, mat(t, &w, 1, cols), &x, 1, &mut out);
                    let (xq, s) = testing::quantized_activations(t, &x);
                    let wd = dequantize(t, &w, cols);
                    let (want, scale) = truth(t, &w, &wd, &xq, &s);
                    let err = (out[0] as f64 - want).abs();
                    assert!(
                        err <= TIGHT * scale + 1e-30,
                        "{isa} {t:?} cols {cols}: got {} want {want} (err {err:e}, scale {scale:e})",
                        out[0]
                    );
                }
            }
        }
    }
}

/// The SIMD kernels a build must have: a wasm build with `+simd128` has to test them (a test run
/// that silently checked only the reference would pass for the wrong reason).
#[test]
fn expected_isas_are_tested() {
    let isas = testing::isas();
    println!("instruction sets: {isas:?}");
    assert_eq!(isas[0], "reference");
    if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
        assert!(isas.contains(&"simd128"), "{isas:?}");
    }
}

#[test]
fn simd_vec_dot_matches_reference() {
    let isas = testing::isas();
    if isas.len() == 1 {
        eprintln!("note: no SIMD kernels on this CPU; only the reference runs");
        return;
    }
    let mut rng = SmallRng::seed_from_u64(5);
    for isa in &isas[1..] {
        for t in QType::ALL {
            for cols in test_cols(t) {
                let w = random_weights(&mut rng, t, 1, cols);
                let x = random_activations(&mut rng, 1, cols, act_block(t));
                let (mut a, mut r) = ([0f32], [0f32]);
                testing::matmul_isa(isa, mat(t, &w, 1, cols), &x, 1, &mut a);
                testing::matmul_isa("reference", mat(t, &w, 1, cols), &x, 1, &mut r);
                let (xq, s) = testing::quantized_activations(t, &x);
                let (_, scale) = truth(t, &w, &dequantize(t, &w, cols), &xq, &s);
                let err = (a[0] as f64 - r[0] as f64).abs();
                assert!(
                    err <= TIGHT * scale,
                    "{isa} {t:?} cols {cols}: {} vs reference {} (scale {scale:e})",
                    a[0],
                    r[0]
                );
            }
        }
    }
}

/// Checks `out` (n x rows) against the truths for every token and row.
#[allow(clippy::too_many_arguments)]
fn check_matmul(
    label: &str,
    t: QType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
    out: &[f32],
) {
    let rb = testing::row_bytes(t, cols);
    let wd = dequantize(t, w, cols);
    for tok in 0..n {
        let xt = &x[tok * cols..(tok + 1) * cols];
        let (xq, s) = testing::quantized_activations(t, xt);
        for r in 0..rows {
            let (w_row, wd_row) = (&w[r * rb..(r + 1) * rb], &wd[r * cols..(r + 1) * cols]);
            let got = out[tok * rows + r] as f64;
            let (want, scale) = truth(t, w_row, wd_row, &xq, &s);
            let err = (got - want).abs();
            assert!(
                err <= TIGHT * scale + 1e-30,
                "{label} {t:?} {rows}x{cols} n={n} token {tok} row {r}: got {got} want {want} (err {err:e})"
            );
            // Against the unquantized activations, within the quantization error bound.
            let exact: f64 = wd_row
                .iter()
                .zip(xt)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum();
            let bound = quantization_bound(t, w_row, wd_row, xt, &s) + TIGHT * scale + 1e-30;
            assert!(
                (got - exact).abs() <= bound,
                "{label} {t:?} token {tok} row {r}: got {got}, f32 activations give {exact} (bound {bound:e})"
            );
        }
    }
}

#[test]
fn every_isa_matmul_matches_truth() {
    let mut rng = SmallRng::seed_from_u64(6);
    for isa in testing::isas() {
        for t in QType::ALL {
            let cols = if shape(t).0 == 1 { 45 } else { 512 };
            for rows in [1, 7, 129] {
                let w = random_weights(&mut rng, t, rows, cols);
                for n in [1, 3, 8, 17] {
                    let x = random_activations(&mut rng, n, cols, act_block(t));
                    let mut out = vec![f32::NAN; n * rows];
                    testing::matmul_isa(isa, mat(t, &w, rows, cols), &x, n, &mut out);
                    check_matmul(isa, t, &w, rows, cols, &x, n, &out);
                }
            }
        }
    }
}

/// The public `matmul` (best kernels, rayon splits) on matrices big enough to run in parallel,
/// against the truths, and each token of a prefill against decoding that token alone: bit for bit
/// for small batches (they run the decode kernels on several tokens at once), within the tight
/// tolerance for larger ones (they may run eight-token prefill kernels, which sum in another
/// order).
#[test]
fn parallel_prefill_matches_decode() {
    let mut rng = SmallRng::seed_from_u64(7);
    for t in QType::ALL {
        let cols = if shape(t).0 == 1 { 333 } else { 512 };
        let rows = 1031;
        let w = random_weights(&mut rng, t, rows, cols);
        let wd = dequantize(t, &w, cols);
        let rb = testing::row_bytes(t, cols);
        for n in [3, 13] {
            let x = random_activations(&mut rng, n, cols, act_block(t));
            let mut out = vec![f32::NAN; n * rows];
            kernels::matmul(t, &w, rows, cols, &x, n, &mut out);
            check_matmul("matmul", t, &w, rows, cols, &x, n, &out);
            for tok in 0..n {
                let xt = &x[tok * cols..(tok + 1) * cols];
                let mut one = vec![f32::NAN; rows];
                kernels::matmul(t, &w, rows, cols, xt, 1, &mut one);
                let (xq, s) = testing::quantized_activations(t, xt);
                for r in 0..rows {
                    let (a, b) = (one[r], out[tok * rows + r]);
                    if n < 4 {
                        assert!(
                            a.to_bits() == b.to_bits(),
                            "{t:?} n={n} token {tok} row {r}: decode {a} prefill {b}"
                        );
                    } else {
                        let (_, scale) = truth(
                            t,
                            &w[r * rb..(r + 1) * rb],
                            &wd[r * cols..(r + 1) * cols],
                            &xq,
                            &s,
                        );
                        let err = (a as f64 - b as f64).abs();
                        assert!(
                            err <= TIGHT * scale,
                            "{t:?} n={n} token {tok} row {r}: decode {a} prefill {b}"
                        );
                    }
                }
            }
        }
    }
}

/// Saturated blocks (every payload byte 0x00, 0xFF, 0x80, ...) against constant activations
/// (every quantized value +-127): the largest integer sums the kernels can meet, where an i16 or
/// i32 accumulator that is too narrow, or summed too long, would overflow.
#[test]
fn extreme_blocks_do_not_overflow() {
    for isa in testing::isas() {
        for t in QType::ALL.into_iter().filter(|&t| shape(t).0 > 1) {
            let (values, bytes) = shape(t);
            let cols = 2 * values.max(256);
            for pattern in [0x00u8, 0xFF, 0x80, 0x7F, 0x55, 0xAA] {
                let mut w = vec![pattern; cols / values * bytes];
                for block in w.chunks_exact_mut(bytes) {
                    for (i, &at) in testing::scale_offsets(t).iter().enumerate() {
                        let v = if i == 0 { 0.01 } else { -0.02 };
                        block[at..at + 2].copy_from_slice(&f16::from_f32(v).to_le_bytes());
                    }
                }
                for (sign_a, sign_b) in [(1.0, 1.0), (-1.0, -1.0), (1.0, -1.0)] {
                    let n = 8;
                    let x: Vec<f32> = (0..n * cols)
                        .map(|i| if (i / 2) % 2 == 0 { sign_a } else { sign_b })
                        .collect();
                    for n in [1, n] {
                        let mut out = vec![f32::NAN; n];
                        testing::matmul_isa(isa, mat(t, &w, 1, cols), &x[..n * cols], n, &mut out);
                        check_matmul(
                            &format!("{isa} pattern {pattern:#x}"),
                            t,
                            &w,
                            1,
                            cols,
                            &x,
                            n,
                            &out,
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn empty_and_tiny_shapes() {
    let mut out: [f32; 0] = [];
    kernels::matmul(QType::Q4_0, &[], 0, 32, &[0.0; 32], 1, &mut out);
    kernels::matmul(QType::Q4_0, &[0; 18], 1, 32, &[], 0, &mut out);
    let mut out = [1f32; 2];
    kernels::matmul(QType::Q8_0, &[0; 34 * 2], 2, 32, &[0.0; 32], 1, &mut out);
    assert_eq!(out, [0.0, 0.0]);
}

#[test]
#[should_panic(expected = "whole number")]
fn rejects_partial_blocks() {
    let mut out = [0f32; 1];
    kernels::matmul(QType::Q4K, &[0; 144], 1, 100, &[0.0; 100], 1, &mut out);
}

/// Best time of a few runs of `f` after a warm-up (at least `secs` seconds in all).
fn best_of(secs: f64, mut f: impl FnMut()) -> f64 {
    f();
    let (mut best, mut total, mut reps) = (f64::MAX, 0.0, 0);
    while total < secs || reps < 3 {
        let t0 = std::time::Instant::now();
        f();
        let dt = t0.elapsed().as_secs_f64();
        best = best.min(dt);
        total += dt;
        reps += 1;
    }
    best
}

/// Throughput numbers, not a check: `cargo test --release --test kernels -- --ignored --nocapture bench`.
/// Per instruction set (`BENCH_ISAS=reference,avx2` picks some): matrix-vector GB/s of weight bytes
/// on 1 and 2 threads (1 under wasm), and prefill (n = 128, or `BENCH_PREFILL_N`) per token against
/// n = 1.
#[test]
#[ignore]
fn bench() {
    let mut rng = SmallRng::seed_from_u64(8);
    /// [`best_of`] on a pool of `threads` (wasm: the calling thread).
    fn time<F: FnMut() + Send>(threads: usize, f: F) -> f64 {
        if cfg!(target_family = "wasm") {
            return best_of(1.0, f);
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| best_of(1.0, f))
    }
    let threads: &[usize] = if cfg!(target_family = "wasm") {
        &[1]
    } else {
        &[1, 2]
    };
    println!(
        "loadavg: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_else(|_| "(unavailable)".into())
            .trim()
    );
    let isas: Vec<String> = match std::env::var("BENCH_ISAS") {
        Ok(v) => v.split(',').map(String::from).collect(),
        Err(_) => testing::isas().into_iter().map(String::from).collect(),
    };
    println!("isas: {isas:?}");
    let cases: &[(QType, usize, usize, bool)] = &[
        (QType::Q4_1, 64, 576, true),
        (QType::Q4K, 64, 2048, true),
        (QType::Q4_1, 1536, 576, true),
        (QType::Q4_1, 576, 1536, true),
        (QType::Q5_0, 2048, 640, true),
        (QType::Q8_0, 2048, 640, true),
        (QType::Q4K, 640, 2048, true),
        (QType::Q6K, 640, 2048, true),
        (QType::F16, 1536, 576, true),
        (QType::Q8_0, 262144, 640, false),
        (QType::Q4K, 65536, 2048, false),
        (QType::Q5_0, 65536, 2048, false),
    ];
    let only = std::env::var("BENCH_ONLY").ok();
    let np: usize = std::env::var("BENCH_PREFILL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(128);
    for &(t, rows, cols, prefill) in cases {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|o| o == format!("{t:?}:{rows}x{cols}")))
        {
            continue;
        }
        let w = random_weights(&mut rng, t, rows, cols);
        let mb = w.len() as f64 / 1e6;
        let x = random_activations(&mut rng, np, cols, 0);
        let mut out = vec![0f32; np * rows];
        for isa in &isas {
            let mut line = format!("{t:?} {rows}x{cols} ({mb:.1} MB) {isa}:");
            for &threads in threads {
                let dt = time(threads, || {
                    testing::matmul_isa(
                        isa,
                        mat(t, &w, rows, cols),
                        &x[..cols],
                        1,
                        &mut out[..rows],
                    )
                });
                line += &format!(
                    "  n=1 {threads}T {:.3} ms {:.2} GB/s",
                    dt * 1e3,
                    mb / 1e3 / dt
                );
                if prefill {
                    let dp = time(threads, || {
                        testing::matmul_isa(isa, mat(t, &w, rows, cols), &x, np, &mut out)
                    });
                    let per_token = dp / np as f64;
                    line += &format!(
                        " | n={np} {:.4} ms/token {:.2} GB/s ({:.1}x n=1)",
                        per_token * 1e3,
                        mb / 1e3 / per_token,
                        dt / per_token
                    );
                }
            }
            println!("{line}");
        }
    }
}

/// The kernel-speed yardstick for decode and prefill, not a check:
/// `cargo test --release --test kernels -- --ignored --nocapture throughput` (natively: set
/// `RAYON_NUM_THREADS=1` for one thread). Per type, the best kernels through the public
/// `matmul` on a matrix the size of a model's (legacy types 8192 x 640 like Gemma's
/// projections, K-quants 2560 x 2048): GB/s of weight bytes for one token and, per token, for a
/// prefill of 64 (`BENCH_PREFILL_N`). `BENCH_TYPES=Q8_0,Q5_0` picks types.
#[test]
#[ignore]
fn throughput() {
    let mut rng = SmallRng::seed_from_u64(9);
    let np: usize = std::env::var("BENCH_PREFILL_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let only = std::env::var("BENCH_TYPES").ok();
    println!(
        "threads {}, loadavg {}",
        rayon::current_num_threads(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_else(|_| "(unavailable)".into())
            .trim()
    );
    for t in QType::ALL {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|o| o == format!("{t:?}")))
        {
            continue;
        }
        let (rows, cols) = match shape(t).0 {
            256 => (2560, 2048),
            _ => (8192, 640),
        };
        let w = random_weights(&mut rng, t, rows, cols);
        let mb = w.len() as f64 / 1e6;
        let x = random_activations(&mut rng, np, cols, 0);
        let mut out = vec![0f32; np * rows];
        let d1 = best_of(0.5, || {
            kernels::matmul(t, &w, rows, cols, &x[..cols], 1, &mut out[..rows])
        });
        let dp = best_of(0.5, || kernels::matmul(t, &w, rows, cols, &x, np, &mut out)) / np as f64;
        println!(
            "{t:?} {rows}x{cols}: decode {:.2} GB/s | prefill n={np} {:.2} GB/s per token",
            mb / 1e3 / d1,
            mb / 1e3 / dp
        );
    }
}

#[test]
fn q5_0_rewritten_as_q8_0_keeps_every_value_and_every_dot() {
    let mut rng = SmallRng::seed_from_u64(11);
    let (rows, cols) = (37, 640);
    let q5 = random_weights(&mut rng, QType::Q5_0, rows, cols);
    let q8 = kernels::q5_0_as_q8_0(&q5);
    assert_eq!(q8.len(), q5.len() / 22 * 34);
    assert_eq!(
        dequantize(QType::Q5_0, &q5, cols),
        dequantize(QType::Q8_0, &q8, cols),
        "the same values, bit for bit"
    );
    for n in [1, 3, 9] {
        let x = random_activations(&mut rng, n, cols, 32);
        let (mut a, mut b) = (vec![0f32; n * rows], vec![0f32; n * rows]);
        kernels::matmul(QType::Q5_0, &q5, rows, cols, &x, n, &mut a);
        kernels::matmul(QType::Q8_0, &q8, rows, cols, &x, n, &mut b);
        for (i, (a, b)) in a.iter().zip(&b).enumerate() {
            // Integer block sums are equal; only the float accumulation order may differ.
            assert!(
                (a - b).abs() <= 1e-4 * a.abs().max(1.0),
                "n={n} out {i}: {a} vs {b}"
            );
        }
    }
}

/// The self-check the browser worker runs before trusting a relaxed-SIMD build passes here (the
/// fastest kernels of this target against the reference).
#[test]
fn kernel_self_check_passes() {
    kernels::self_check().unwrap();
}
