//! Log-probabilities on the real SmolLM2 model: each sampled token's `logprob` and its
//! `top_logprobs` are the log-softmax of the logits the model gives at that position, to 1e-5.
//! The reference runs the same model through a second CPU backend the way a session does
//! (the prompt in one pass, then one token at a time), so the logits are the same numbers, and
//! takes the log-softmax in f64 on its own.

mod common;

use std::sync::Arc;

use common::*;
use wick::backend::CpuBackend;
use wick::constraint::Grammar;
use wick::forward::{now, Backend, Logits, Want};
use wick::sampler::SamplingParams;
use wick::session::TokenLogprob;
use wick::{Engine, GenerateOptions, Session};

/// The model's log-softmax at each generated position, from a fresh backend.
fn reference(e: &Arc<Engine>, prompt: &[u32], ids: &[u32]) -> Vec<Vec<f64>> {
    let mut backend = CpuBackend::new(e.clone(), 1024);
    let mut out = Logits::default();
    let mut rows = Vec::new();
    let mut feed: Vec<u32> = prompt.to_vec();
    for &id in ids {
        now(backend.forward(&feed, Want::Last, &mut out)).unwrap();
        let Logits::Full(l) = &out else {
            unreachable!()
        };
        let max = l.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let lse = max + l.iter().map(|&x| (x as f64 - max).exp()).sum::<f64>().ln();
        rows.push(l.iter().map(|&x| x as f64 - lse).collect());
        feed = vec![id];
    }
    rows
}

fn check(e: &Arc<Engine>, prompt: &[u32], ids: &[u32], got: &[TokenLogprob], n: usize) {
    assert_eq!(got.len(), ids.len());
    let want = reference(e, prompt, ids);
    for (i, (lp, row)) in got.iter().zip(&want).enumerate() {
        assert_eq!(lp.id, ids[i]);
        let d = (lp.logprob as f64 - row[lp.id as usize]).abs();
        assert!(
            d < 1e-5,
            "position {i}: logprob {} vs {}",
            lp.logprob,
            row[lp.id as usize]
        );
        assert_eq!(lp.top.len(), n);
        let mut order: Vec<usize> = (0..row.len()).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
        for (k, &(id, v)) in lp.top.iter().enumerate() {
            assert_eq!(id as usize, order[k], "position {i}: top {k}");
            assert!(
                (v as f64 - row[id as usize]).abs() < 1e-5,
                "position {i}: top {k}"
            );
        }
    }
}

#[test]
fn logprobs_are_the_models_log_softmax() {
    let e = Arc::new(Engine::open(&model_path(SMOLLM2)).unwrap());
    let prompt = e.encode("The three primary colours are").unwrap();
    let mut s = Session::new(e.clone(), 1024);
    // Sampled (temperature 0.8, a seed) with a repetition penalty: the log-probabilities stay
    // the model's, not the sampler's.
    let opts = GenerateOptions {
        max_tokens: 16,
        sampling: SamplingParams {
            seed: Some(3),
            repetition_penalty: 1.3,
            ..SamplingParams::default()
        },
        logprobs: Some(5),
        ..Default::default()
    };
    let out = s.generate(&prompt, &opts, |_| true).unwrap();
    check(&e, &prompt, &out.ids, &out.logprobs, 5);

    // Under a grammar too: the mask shapes what is sampled, not what is reported.
    let opts = GenerateOptions {
        max_tokens: 16,
        sampling: SamplingParams::greedy(),
        grammar: Some(Grammar::Regex {
            pattern: "(red|green|blue), (red|green|blue) and (red|green|blue)".into(),
        }),
        logprobs: Some(0),
        ..Default::default()
    };
    let out = s.generate(&prompt, &opts, |_| true).unwrap();
    check(&e, &prompt, &out.ids, &out.logprobs, 0);
    assert!(out.logprobs.iter().all(|t| t.logprob <= 0.0));

    // Without the option there are none; past OpenAI's 20 it is refused.
    let out = s
        .generate(
            &prompt,
            &GenerateOptions {
                max_tokens: 2,
                ..Default::default()
            },
            |_| true,
        )
        .unwrap();
    assert!(out.logprobs.is_empty());
    let err = s
        .begin(
            &prompt,
            &GenerateOptions {
                logprobs: Some(21),
                ..Default::default()
            },
        )
        .err()
        .unwrap();
    assert_eq!(err.kind(), "invalid_parameter");
}
