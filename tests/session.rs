//! Generation behaviour on the real SmolLM2 model: prefix reuse across chat turns, stop strings,
//! end-of-turn tokens, aborts, seeds, and a prompt longer than the context.

mod common;

use std::sync::{Arc, OnceLock};

use common::*;
use wick::chat::ChatMessage;
use wick::sampler::SamplingParams;
use wick::{Engine, Error, Event, FinishReason, GenerateOptions, Session};

fn engine() -> Arc<Engine> {
    static E: OnceLock<Arc<Engine>> = OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::open(&model_path(SMOLLM2)).unwrap()))
        .clone()
}

fn greedy(max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams::greedy(),
        ..Default::default()
    }
}

fn msg(role: &str, content: &str) -> ChatMessage {
    ChatMessage {
        role: role.into(),
        content: content.into(),
    }
}

#[test]
fn a_chat_answers_and_stops_at_end_of_turn() {
    let e = engine();
    // (With the template's default system prompt this 135M model answers nonsense, greedy, in
    // llama.cpp too; a plain system prompt gets the answer.)
    let prompt = e
        .chat_prompt(&[
            msg("system", "You are a helpful assistant."),
            msg("user", "What is the capital of France?"),
        ])
        .unwrap();
    let mut s = Session::new(e, 1024);
    let out = s.generate(&prompt, &greedy(64), |_| true).unwrap();
    assert_eq!(out.text, "The capital of France is Paris.");
    assert_eq!(out.finish_reason, FinishReason::Stop, "{:?}", out.text);
    assert!(!out.text.contains("<|im_end|>"));
}

#[test]
fn a_second_turn_reuses_the_first_turns_cache_and_gives_the_same_answer() {
    let e = engine();
    let first = vec![msg("user", "Name a color.")];
    let mut s = Session::new(e.clone(), 1024);
    let a1 = s
        .generate(&e.chat_prompt(&first).unwrap(), &greedy(24), |_| true)
        .unwrap();
    let second = vec![
        first[0].clone(),
        msg("assistant", &a1.text),
        msg("user", "Name another one."),
    ];
    let p2 = e.chat_prompt(&second).unwrap();
    let reused = s.generate(&p2, &greedy(24), |_| true).unwrap();
    assert!(
        reused.reused_tokens > 10,
        "reused only {} tokens",
        reused.reused_tokens
    );
    let mut fresh = Session::new(e, 1024);
    let again = fresh.generate(&p2, &greedy(24), |_| true).unwrap();
    assert_eq!(again.reused_tokens, 0);
    // Prefilling only the new tokens runs other batch shapes than a fresh prefill (other kernel
    // tiles, so another float summation order): the answers must agree up to the first near-tie.
    let firm = again
        .margins
        .iter()
        .zip(&reused.margins)
        .take_while(|(a, b)| a.min(**b) >= 0.25)
        .count();
    assert!(firm >= 8, "a near-tie after only {firm} tokens");
    assert_eq!(
        reused.ids[..firm],
        again.ids[..firm],
        "reusing the cache changed the answer"
    );
}

#[test]
fn stop_strings_cut_the_text_and_are_never_streamed() {
    let e = engine();
    let prompt = e.encode("Count: one, two, three, four, five,").unwrap();
    let mut s = Session::new(e, 512);
    let opts = GenerateOptions {
        stop: vec![" eight".into()],
        ..greedy(40)
    };
    let mut streamed = String::new();
    let out = s
        .generate(&prompt, &opts, |ev| {
            if let Event::Token { text, .. } = ev {
                streamed.push_str(text);
            }
            true
        })
        .unwrap();
    assert_eq!(out.finish_reason, FinishReason::Stop, "{:?}", out.text);
    assert!(
        out.text.contains("seven") && !out.text.contains("eight"),
        "{:?}",
        out.text
    );
    assert_eq!(streamed, out.text);
}

#[test]
fn abort_stops_at_once_and_the_session_stays_usable() {
    let e = engine();
    let prompt = e.encode("Once upon a time").unwrap();
    let mut s = Session::new(e, 512);
    let mut tokens = 0;
    let out = s
        .generate(&prompt, &greedy(50), |ev| {
            if let Event::Token { .. } = ev {
                tokens += 1;
            }
            tokens < 3
        })
        .unwrap();
    assert_eq!(out.finish_reason, FinishReason::Aborted);
    assert_eq!(out.ids.len(), 3);
    let next = s.generate(&prompt, &greedy(5), |_| true).unwrap();
    assert_eq!(next.ids[..3], out.ids[..], "greedy after an abort differs");
}

#[test]
fn same_seed_same_text_different_seed_different_text() {
    let e = engine();
    let prompt = e.encode("My favourite food is").unwrap();
    let run = |seed| {
        let opts = GenerateOptions {
            max_tokens: 24,
            ignore_eos: true,
            sampling: SamplingParams {
                temperature: 1.0,
                top_k: 0,
                top_p: 1.0,
                min_p: 0.0,
                seed: Some(seed),
                ..Default::default()
            },
            ..Default::default()
        };
        Session::new(e.clone(), 256)
            .generate(&prompt, &opts, |_| true)
            .unwrap()
            .ids
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
}

#[test]
fn a_prompt_longer_than_the_context_is_a_typed_error() {
    let e = engine();
    let prompt = e.encode(&"word ".repeat(300)).unwrap();
    let mut s = Session::new(e, 128);
    match s.generate(&prompt, &greedy(4), |_| true) {
        Err(err @ Error::ContextOverflow { .. }) => assert_eq!(err.kind(), "context_overflow"),
        other => panic!("{:?}", other.map(|g| g.text)),
    }
    // The session still works afterwards.
    let short = s.engine().encode("Hello").unwrap();
    assert_eq!(
        s.generate(&short, &greedy(2), |_| true).unwrap().ids.len(),
        2
    );
}

#[test]
fn generation_stops_when_the_context_is_full() {
    let e = engine();
    let prompt = e.encode("The alphabet: a b c d e f").unwrap();
    let ctx = prompt.len() + 5;
    let mut s = Session::new(e, ctx);
    let opts = GenerateOptions {
        ignore_eos: true,
        ..greedy(100)
    };
    let out = s.generate(&prompt, &opts, |_| true).unwrap();
    assert_eq!(out.finish_reason, FinishReason::Length);
    assert!(
        out.ids.len() <= 6,
        "{} tokens in a context of {ctx}",
        out.ids.len()
    );
}

#[test]
fn step_by_step_prefill_can_be_aborted_and_what_ran_is_reused() {
    let e = engine();
    let text = "The history of the printing press begins long before Gutenberg. ".repeat(12);
    let prompt = e.encode(&text).unwrap();
    assert!(prompt.len() > 100, "{} tokens", prompt.len());
    let mut s = Session::new(e.clone(), 1024);

    // The prompt runs a chunk per step; abort after the first chunk.
    let mut req = s.begin(&prompt, &greedy(8)).unwrap();
    assert!(req.is_prefilling());
    let first = s.step(&mut req).unwrap();
    let left = first.prompt_left.expect("a prefill step");
    assert!(
        left > 0 && left < prompt.len(),
        "{left} of {} left",
        prompt.len()
    );
    assert!(first.id.is_none() && first.text.is_empty() && first.finish.is_none());
    let end = s.abort(&mut req);
    assert_eq!(end.finish, Some(FinishReason::Aborted));
    assert!(req.generation().ids.is_empty());

    // The same prompt again reuses the chunk that ran, and answers as a fresh session does.
    let mut req = s.begin(&prompt, &greedy(8)).unwrap();
    assert_eq!(req.generation().reused_tokens, prompt.len() - left);
    while req.is_prefilling() {
        s.step(&mut req).unwrap();
    }
    let mut ids = Vec::new();
    loop {
        let step = s.step(&mut req).unwrap();
        ids.extend(step.id);
        if step.finish.is_some() {
            break;
        }
    }
    let fresh = Session::new(e, 1024)
        .generate(&prompt, &greedy(8), |_| true)
        .unwrap();
    assert_eq!(ids, fresh.ids);
}
