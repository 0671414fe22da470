//! Architectures that no small real model here represents, on tiny random-weight GGUF files
//! (scripts/tiny_models.py) against llama.cpp's logits for the same files: the wiring of each
//! variant (head norms, rotation style, head width) must match, where the real-model parity
//! tests (tests/parity.rs) cover the llama and Gemma 3 families.
//!
//! The fixtures are recorded with an f32 KV cache, as wick's CPU keeps (llama.cpp's default f16
//! cache alone moves these logits by up to 0.27). Then wick's logits equal llama.cpp's to the
//! fixture's 5 decimals, while a skipped head norm or the wrong rotation pairing moves them by
//! several units (measured: 6.5 and 9.9). Top-1 agreement says little here: in a random model
//! with tied embeddings each position's top-1 is mostly its own input token.
//!
//! scripts/test runs these natively and again as wasm32 + SIMD128 under Node's WASI (as
//! tests/kernels.rs says how).

mod common;

use std::sync::Arc;

use common::*;
use wick::{Engine, Session};

/// Largest logit difference from llama.cpp allowed (the logits' standard deviations are 3.5 to
/// 5).
const MAX_LOGIT_DIFF: f32 = 0.01;

/// Under wasm32 + SIMD128. The SIMD128 kernels sum a row's block products in another order than
/// AVX2 (and llama.cpp's x86 kernels) do; on a value that sits on an 8-bit rounding boundary of
/// the next layer's activation quantization, that flips one rounding, which these sensitive models
/// turn into a jump: measured 0.21 on smollm3, 0.19 on phi3_long, 0.11 on llama_rope_freqs (the
/// GPU backend, which also sums in its own order, shows the same 0.112 there), 5e-6 on the other
/// non-GELU fixtures. The results are deterministic; wiring errors still cost units.
const WASM_MAX_LOGIT_DIFF: f32 = 0.3;

/// The same for the families with a GELU MLP (Gemma 2 and 3, GPT-2, Falcon, MPT). llama.cpp's CPU
/// GELU looks its result up in a table indexed by the input rounded to f16, and stores the result
/// as f16; wick computes it in f32. On these deliberately sensitive models that alone moves
/// logits by up to a quarter (measured: gemma3 0.26 over six layers, gpt2 0.19, falcon 0.19, mpt
/// 0.19, falcon_norm2 0.17, gemma2 0.16). With wick's GELU made to round as the table does (an
/// experiment, not kept), gemma3, falcon and gpt2 agree to 6e-6 and gemma2 and mpt to 5e-6 at
/// most positions, with a few jumps of up to 0.14 where one value falls on the other side of an
/// f16 rounding boundary. The wiring errors this file guards against move logits by whole units.
const GELU_MAX_LOGIT_DIFF: f32 = 0.4;

fn matches_llama_cpp(name: &str) {
    let tiny = tiny_model(name);
    // From bytes, as the browser loads a model, so that this runs under wasm too.
    let gguf = open_bytes(std::fs::read(&tiny.path).unwrap()).unwrap();
    let engine = Arc::new(Engine::load(&gguf).unwrap());
    let engine_arch = engine.card.architecture.clone();
    let (ids, want) = (&tiny.ids, &tiny.logits);
    let mut got = Vec::new();
    // The session's context is llama.cpp's: it chooses Phi-3's LongRoPE factors.
    Session::new(engine, tiny.n_ctx)
        .score(ids, |_, logits| got.push(logits.to_vec()))
        .unwrap();
    assert_eq!(got.len(), want.len());
    let mut max_diff = 0f32;
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.len(), w.len(), "vocabulary size");
        max_diff = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(max_diff, f32::max);
    }
    eprintln!(
        "{name}: {} positions, max logit difference from llama.cpp {max_diff:e}",
        got.len()
    );
    let gelu = ["gemma2", "gemma3", "gpt2", "falcon", "mpt"].contains(&engine_arch.as_str());
    let limit = if gelu {
        GELU_MAX_LOGIT_DIFF
    } else {
        MAX_LOGIT_DIFF
    };
    let limit = if cfg!(target_arch = "wasm32") {
        limit.max(WASM_MAX_LOGIT_DIFF)
    } else {
        limit
    };
    assert!(max_diff <= limit, "{name}: logits differ by {max_diff}");
}

/// One test per fixture, named after it.
macro_rules! fixtures {
    ($($test:ident: $name:literal,)*) => {$(
        #[test]
        fn $test() {
            matches_llama_cpp($name);
        }
    )*};
}

fixtures! {
    qwen3_matches_llama_cpp: "qwen3",
    qwen2_matches_llama_cpp: "qwen2",
    qwen2_yarn_matches_llama_cpp: "qwen2_yarn",
    llama_linear_scaling_matches_llama_cpp: "llama_linear",
    llama_yarn_matches_llama_cpp: "llama_yarn",
    llama_rope_freqs_matches_llama_cpp: "llama_rope_freqs",
    phi3_short_factors_matches_llama_cpp: "phi3",
    phi3_long_factors_matches_llama_cpp: "phi3_long",
    gemma2_matches_llama_cpp: "gemma2",
    gemma3_matches_llama_cpp: "gemma3",
    smollm3_matches_llama_cpp: "smollm3",
    granite_matches_llama_cpp: "granite",
    olmo2_matches_llama_cpp: "olmo2",
    stablelm_matches_llama_cpp: "stablelm",
    stablelm_parallel_matches_llama_cpp: "stablelm_parallel",
    gpt2_matches_llama_cpp: "gpt2",
    falcon_matches_llama_cpp: "falcon",
    falcon_norm2_matches_llama_cpp: "falcon_norm2",
    mpt_matches_llama_cpp: "mpt",
    iq4_nl_matches_llama_cpp: "qwen2_iq4_xs",
}

/// IQ4_XS as llama.cpp's quantizer wrote it (256-wide rows, so real IQ4_XS super-blocks): wick
/// rewrites it at load as Q8_0 (group scales rounded to f16). llama.cpp's own IQ4_XS product
/// quantizes the activations to Q8_K (one scale per 256 values), so it is itself an
/// approximation: wick with the weights dequantized exactly to f32 differs from it by 0.56 on this
/// very peaked model (logit std 10.2); with the Q8_0 rewrite, by 0.69. The test holds the
/// difference under 1 and the top-1 token identical wherever llama.cpp's top-1/top-2 margin is at
/// least 0.5 (the project's teacher-forced criterion); wiring or block-layout errors cost units
/// (a swapped nibble order: measured in the note).
#[test]
fn iq4_xs_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq4_xs", 0.0);
}

/// The IQ2 / IQ3 types, every matrix (embeddings too) in the one type, as llama.cpp's quantizer
/// wrote them with an importance matrix. wick runs them as they are stored (no rewrite), dotting
/// against Q8_K activations with the integer sums llama.cpp's kernels compute, so only float
/// summation order separates the two; held to the IQ4_XS rule all the same.
#[test]
fn iq2_xxs_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq2_xxs", 0.9);
}

#[test]
fn iq2_xs_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq2_xs", 0.9);
}

#[test]
fn iq2_s_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq2_s", 0.9);
}

#[test]
fn iq3_xxs_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq3_xxs", 0.9);
}

#[test]
fn iq3_s_matches_llama_cpp() {
    quantized_matches_llama_cpp("qwen2_wide_iq3_s", 0.9);
}

/// The rule of the quantized fixtures: logits within 1 of llama.cpp's, and the top-1 token
/// identical wherever llama.cpp's top-1/top-2 margin is at least 0.5 (at three quarters of the
/// positions or more).
///
/// `min_close`: the share of positions whose logits must also agree to 1e-3. The IQ2 / IQ3 runs
/// do llama.cpp's integer arithmetic, so they agree to ~1e-5 except where one activation lands
/// on an 8-bit rounding boundary and flips. Measured natively (AVX2 kernels): at one position of
/// 64 for IQ3_XXS (0.34) and IQ2_XXS (0.03), at none for the others (4e-5 at most); with the
/// portable kernels, which sum in another order, IQ2_S flips one too (0.38). IQ4_XS is
/// rewritten as Q8_0 and differs everywhere (0).
fn quantized_matches_llama_cpp(name: &str, min_close: f32) {
    let tiny = tiny_model(name);
    let gguf = open_bytes(std::fs::read(&tiny.path).unwrap()).unwrap();
    let engine = Arc::new(Engine::load(&gguf).unwrap());
    let mut got = Vec::new();
    Session::new(engine, tiny.n_ctx)
        .score(&tiny.ids, |_, logits| got.push(logits.to_vec()))
        .unwrap();
    let top2 = |row: &[f32]| {
        let mut idx: Vec<usize> = (0..row.len()).collect();
        idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        (idx[0], row[idx[0]] - row[idx[1]])
    };
    let mut max_diff = 0f32;
    let (mut compared, mut close) = (0, 0);
    for (g, w) in got.iter().zip(&tiny.logits) {
        let diff = g
            .iter()
            .zip(w)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        max_diff = max_diff.max(diff);
        close += (diff <= 1e-3) as usize;
        let (want_top, margin) = top2(w);
        if margin >= 0.5 {
            assert_eq!(
                top2(g).0,
                want_top,
                "top-1 where llama.cpp's margin is {margin}"
            );
            compared += 1;
        }
    }
    eprintln!(
        "{name}: max logit difference {max_diff}, within 1e-3 at {close} and top-1 identical at \
         {compared} of {} positions",
        got.len()
    );
    assert!(
        close as f32 >= min_close * got.len() as f32,
        "{name}: only {close} positions within 1e-3"
    );
    assert!(
        compared >= got.len() * 3 / 4,
        "only {compared} clear positions"
    );
    assert!(max_diff <= 1.0, "{name}: logits differ by {max_diff}");
}

/// Files wick must refuse by name, as `unsupported_model`, never as a broken file.
#[test]
fn mixture_of_experts_and_unknown_rope_scaling_are_refused_by_name() {
    for (file, says) in [
        ("llama_moe.gguf", "mixture of experts"),
        ("llama_unknown_scaling.gguf", "RoPE scaling type"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tiny")
            .join(file);
        let gguf = open_bytes(std::fs::read(&path).unwrap()).unwrap();
        let err = Engine::load(&gguf).err().expect(file);
        assert_eq!(err.kind(), "unsupported_model", "{file}: {err}");
        assert!(err.to_string().contains(says), "{file}: {err}");
    }
}
