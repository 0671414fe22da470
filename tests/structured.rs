//! Structured output on the two real models: 33 JSON schemas of real-world shapes (nested
//! objects, arrays with bounds, enums, string patterns and formats, optional and nullable fields,
//! `anyOf`, a recursive `$ref`, a tuple) and OpenAI's "any JSON object" mode
//! (`tests/fixtures/structured/schemas.json`). Every output must end by itself (not at
//! `max_tokens`), parse, and validate against its schema under an independent validator (the
//! `jsonschema` crate, formats checked). Also: Lark grammars and regexes, and bad schemas as
//! typed errors.

mod common;

use std::sync::Arc;

use common::*;
use wick::chat::ChatMessage;
use wick::constraint::Grammar;
use wick::sampler::SamplingParams;
use wick::{Engine, FinishReason, GenerateOptions, Session};

struct Case {
    name: String,
    prompt: String,
    schema: Option<serde_json::Value>,
}

fn cases() -> Vec<Case> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/structured/schemas.json");
    let all: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    all.into_iter()
        .map(|c| Case {
            name: c["name"].as_str().unwrap().into(),
            prompt: c["prompt"].as_str().unwrap().into(),
            schema: (!c["schema"].is_null()).then(|| c["schema"].clone()),
        })
        .collect()
}

fn constrained(grammar: Grammar, max_tokens: usize) -> GenerateOptions {
    GenerateOptions {
        max_tokens,
        sampling: SamplingParams::greedy(),
        grammar: Some(grammar),
        ..Default::default()
    }
}

/// The suite decodes greedily with the mild repetition penalty chat front ends set (1.1): plain
/// greedy makes these 135M/270M models repeat a digit or a nested object until the token limit,
/// grammar or not (`17171717...`); sampling at the default temperature 0.8 makes them ramble in
/// unbounded numbers and strings (`0.98657234714864664025...`) on some paths.
fn suite_options(grammar: Grammar) -> GenerateOptions {
    GenerateOptions {
        max_tokens: 600,
        sampling: SamplingParams {
            repetition_penalty: 1.1,
            ..SamplingParams::greedy()
        },
        grammar: Some(grammar),
        ..Default::default()
    }
}

/// Runs every schema on `model`; returns the failures.
fn schema_suite(model: &str) -> Vec<String> {
    let e = Arc::new(Engine::open(&model_path(model)).unwrap());
    let mut session = Session::new(e.clone(), 2048);
    let mut failures = Vec::new();
    let mut tokens = 0;
    let started = std::time::Instant::now();
    for case in cases() {
        let messages = [
            ChatMessage::new("system", "You answer with one JSON object."),
            ChatMessage::new("user", &case.prompt),
        ];
        let prompt = match e.chat_prompt(&messages) {
            Ok(p) => p,
            // The Gemma 3 270M file is the base model, without a chat template: a plain prompt.
            Err(wick::Error::NoChatTemplate) => e
                .encode(&format!(
                    "Task: {}\nAnswer as one JSON object:\n",
                    case.prompt
                ))
                .unwrap(),
            Err(err) => panic!("{model} {}: {err}", case.name),
        };
        let grammar = match &case.schema {
            Some(schema) => Grammar::JsonSchema {
                schema: schema.clone(),
            },
            None => Grammar::JsonObject,
        };
        let out = session
            .generate(&prompt, &suite_options(grammar), |_| true)
            .unwrap_or_else(|err| panic!("{model} {}: {err}", case.name));
        tokens += out.ids.len();
        let problem = if out.finish_reason != FinishReason::Stop {
            Some(format!("ended by {:?}", out.finish_reason))
        } else {
            match serde_json::from_str::<serde_json::Value>(&out.text) {
                Err(err) => Some(format!("does not parse: {err}")),
                Ok(value) => {
                    let schema = case
                        .schema
                        .clone()
                        .unwrap_or_else(|| serde_json::json!({"type": "object"}));
                    let validator = jsonschema::options()
                        .should_validate_formats(true)
                        .build(&schema)
                        .unwrap_or_else(|err| panic!("{}: bad test schema: {err}", case.name));
                    let errors: Vec<String> = validator
                        .iter_errors(&value)
                        .map(|e| e.to_string())
                        .collect();
                    (!errors.is_empty()).then(|| format!("invalid: {}", errors.join("; ")))
                }
            }
        };
        eprintln!(
            "{model:<34} {:<16} {:>4} tokens  {}  {}",
            case.name,
            out.ids.len(),
            if problem.is_none() { "ok " } else { "BAD" },
            out.text.chars().take(140).collect::<String>()
        );
        if let Some(p) = problem {
            failures.push(format!("{} {}: {p}\n    {}", model, case.name, out.text));
        }
    }
    eprintln!(
        "{model}: {tokens} tokens in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    failures
}

#[test]
fn every_schema_output_parses_and_validates_on_smollm2() {
    let failures = schema_suite(SMOLLM2);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_schema_output_parses_and_validates_on_gemma3() {
    let failures = schema_suite(GEMMA3);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn smollm2() -> Arc<Engine> {
    static E: std::sync::OnceLock<Arc<Engine>> = std::sync::OnceLock::new();
    E.get_or_init(|| Arc::new(Engine::open(&model_path(SMOLLM2)).unwrap()))
        .clone()
}

fn chat(e: &Engine, user: &str) -> Vec<u32> {
    e.chat_prompt(&[
        ChatMessage::new("system", "You are a helpful assistant."),
        ChatMessage::new("user", user),
    ])
    .unwrap()
}

#[test]
fn a_lark_grammar_and_a_regex_shape_the_answer() {
    let e = smollm2();
    let mut s = Session::new(e.clone(), 1024);
    let lark = r#"
start: answer " because " reason
answer: "yes" | "no"
reason: /[a-z ,]{1,60}/ "."
"#;
    let out = s
        .generate(
            &chat(&e, "Is the sky blue? Answer yes or no and say why."),
            &constrained(
                Grammar::Lark {
                    grammar: lark.into(),
                },
                80,
            ),
            |_| true,
        )
        .unwrap();
    assert!(is_yes_no_because(&out.text), "{:?}", out.text);
    assert_eq!(out.finish_reason, FinishReason::Stop);

    let out = s
        .generate(
            &chat(&e, "What is today's date?"),
            &constrained(
                Grammar::Regex {
                    pattern: r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])".into(),
                },
                20,
            ),
            |_| true,
        )
        .unwrap();
    assert_eq!(out.text.len(), 10, "{:?}", out.text);
    assert!(out.text.starts_with("20"), "{:?}", out.text);
    assert_eq!(out.finish_reason, FinishReason::Stop);
}

/// `^(yes|no) because [a-z ,]{1,60}\.$`, checked by hand so that the test does not trust
/// llguidance's own regex engine to check llguidance's output.
fn is_yes_no_because(text: &str) -> bool {
    let Some((answer, rest)) = text.split_once(" because ") else {
        return false;
    };
    let Some(reason) = rest.strip_suffix('.') else {
        return false;
    };
    (answer == "yes" || answer == "no")
        && (1..=60).contains(&reason.len())
        && reason
            .chars()
            .all(|c| c.is_ascii_lowercase() || c == ' ' || c == ',')
}

#[test]
fn unsupported_or_broken_schemas_are_typed_errors_before_any_work() {
    let e = smollm2();
    let mut s = Session::new(e.clone(), 1024);
    let prompt = chat(&e, "Hi");
    for (schema, needle) in [
        (
            serde_json::json!({"type": "array", "uniqueItems": true}),
            "uniqueItems",
        ),
        (serde_json::json!({"type": "strnig"}), "strnig"),
        (serde_json::json!({"$ref": "#/$defs/missing"}), "missing"),
    ] {
        let err = s
            .begin(&prompt, &constrained(Grammar::JsonSchema { schema }, 8))
            .err()
            .expect("a bad schema must be refused");
        assert_eq!(err.kind(), "invalid_parameter", "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
    let err = s
        .begin(
            &prompt,
            &constrained(
                Grammar::Lark {
                    grammar: "start: undefined_rule".into(),
                },
                8,
            ),
        )
        .err()
        .expect("a bad grammar must be refused");
    assert_eq!(err.kind(), "invalid_parameter", "{err}");
    // The session still works after refusals.
    let out = s
        .generate(&prompt, &constrained(Grammar::JsonObject, 200), |_| true)
        .unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&out.text).is_ok(),
        "{}",
        out.text
    );
}
