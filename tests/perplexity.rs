//! Perplexity with llama.cpp's llama-perplexity conventions (src/perplexity.rs) against the
//! numbers llama.cpp computes on the fixture texts (tests/fixtures/<model>/perplexity.json,
//! recorded by `scripts/fixtures all --only perplexity`): within 1% on both real models, with the
//! same token, chunk and scored counts; and the CLI's `wick perplexity --json` contract.

mod common;

use std::process::Command;
use std::sync::Arc;

use common::*;
use wick::perplexity::PerplexityRun;
use wick::{Engine, Session};

/// How far wick's perplexity may be from llama.cpp's (the criterion: within 1%).
const TOLERANCE: f64 = 0.01;

fn agrees_with_llama_cpp(key: &str, file: &str) {
    let fixture = fixture(key, "perplexity.json");
    let engine = Arc::new(Engine::open(&model_path(file)).unwrap());
    for case in fixture["cases"].as_array().unwrap() {
        let name = case["text"].as_str().unwrap();
        let ctx = case["n_ctx"].as_u64().unwrap() as usize;
        let text = fixture["texts"][name].as_str().unwrap();
        let mut run = PerplexityRun::new(&engine, text, ctx).unwrap();
        let mut session = Session::new(engine.clone(), ctx);
        let mut estimates = Vec::new();
        while let Some(r) = run.next_chunk(&mut session).unwrap() {
            estimates.push(r.perplexity);
        }
        let report = run.report();
        let reference = case["perplexity"].as_f64().unwrap();
        let off = report.perplexity / reference - 1.0;
        eprintln!(
            "{key} {name} ctx {ctx}: perplexity {:.4} +/- {:.4} vs llama.cpp {reference:.4} ({:+.3}%), {} tokens, {} chunks, {} scored",
            report.perplexity,
            report.uncertainty,
            off * 100.0,
            report.tokens,
            report.chunks,
            report.scored
        );
        assert_eq!(
            report.tokens as u64,
            case["tokens"].as_u64().unwrap(),
            "{key} {name}: tokens"
        );
        assert_eq!(
            report.chunks as u64,
            case["chunks"].as_u64().unwrap(),
            "{key} {name}: chunks"
        );
        assert_eq!(
            report.scored as u64,
            case["scored"].as_u64().unwrap(),
            "{key} {name}: scored"
        );
        assert_eq!(estimates.len(), report.chunks, "one estimate per chunk");
        assert!(
            off.abs() < TOLERANCE,
            "{key} {name} ctx {ctx}: {:.4} vs {reference:.4}",
            report.perplexity
        );
        assert!(report.uncertainty > 0.0 && report.uncertainty < report.perplexity);
    }
}

#[test]
fn smollm2_perplexity_is_llama_cpps_within_one_percent() {
    agrees_with_llama_cpp("smollm2", SMOLLM2);
}

#[test]
fn gemma3_perplexity_is_llama_cpps_within_one_percent() {
    agrees_with_llama_cpp("gemma3", GEMMA3);
}

#[test]
fn a_text_shorter_than_two_chunks_is_refused_with_the_counts() {
    let engine = Engine::open(&model_path(SMOLLM2)).unwrap();
    let err = PerplexityRun::new(&engine, "A short text.", 64)
        .err()
        .unwrap();
    assert_eq!(err.kind(), "invalid_parameter");
    assert!(err.to_string().contains("needs at least 128"), "{err}");
}

#[test]
fn the_cli_prints_perplexity_tokens_and_chunks_as_json() {
    let fixture = fixture("smollm2", "perplexity.json");
    let case = &fixture["cases"][0];
    let dir = std::env::temp_dir().join(format!("wick-ppl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("text.txt");
    std::fs::write(
        &text,
        fixture["texts"][case["text"].as_str().unwrap()]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let ctx = case["n_ctx"].to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args([
            "perplexity",
            model_path(SMOLLM2).to_str().unwrap(),
            text.to_str().unwrap(),
            "--ctx",
            &ctx,
            "--json",
        ])
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["tokens"], case["tokens"]);
    assert_eq!(v["chunks"], case["chunks"]);
    let ppl = v["perplexity"].as_f64().unwrap();
    assert!(
        (ppl / case["perplexity"].as_f64().unwrap() - 1.0).abs() < TOLERANCE,
        "{v}"
    );
    // Progress per chunk on stderr, as llama-perplexity prints it: [1]P,[2]P,...
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(
        progress.contains("[1]") && progress.contains(&format!("[{}]", case["chunks"])),
        "{progress}"
    );
}
