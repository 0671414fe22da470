//! llama.cpp's collection of real chat templates (`models/templates/*.jinja`, copied to
//! `tests/fixtures/templates/`) rendered by wick and compared with Python jinja2 set up as Hugging
//! Face transformers renders chat templates (`scripts/template_fixtures.py` records
//! `expected.json`: each template, for each conversation, with and without
//! `add_generation_prompt`).
//!
//! A case agrees when wick's text is identical, or when both fail: for `raise_exception` with the
//! same message, for other jinja2 errors (undefined attributes, type errors, the sandbox) with any
//! template error. Cases known to differ are listed in [`KNOWN_DIFFERENCES`] with the reason;
//! the test fails on any other difference, and on a known one that starts agreeing.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use wick::chat::ChatTemplate;

/// 2024-07-26 12:00:00 UTC, the time the fixtures were rendered at (`strftime_now`).
const NOW: i64 = 1_721_995_200;

const NONE_ITER: &str = "jinja2 raises TypeError iterating `tools` = None (no tools given); minijinja iterates none as empty";

const GENERATOR: &str = "jinja2 cannot `tojson` the generator `map()` returns (a template bug); minijinja serializes the sequence";
const MARKUP: &str = "jinja2 HTML-escapes a string added to a `|safe` string (markupsafe's Markup.__add__); minijinja concatenates";

/// `(template, case pattern, why)`: where wick and transformers differ. A case pattern is a case
/// (`tools/gen`), a conversation (`tools/*`: both cases) or `"*"` (any case of the template). The
/// cases a case or conversation pattern names must differ, so a fix shows up; with `"*"` any case
/// may agree.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[
    ("CohereForAI-c4ai-command-r-plus-tool_use", "*", NONE_ITER),
    ("NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use", "*", NONE_ITER),
    ("NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "*", NONE_ITER),
    ("LFM2.5-8B-A1B", "parallel_tool_calls/*", "jinja2 raises TypeError iterating an assistant message's `content: null`; minijinja iterates none as empty"),
    ("llama-cpp-deepseek-r1", "tools/*", GENERATOR),
    ("llama-cpp-deepseek-r1", "parallel_tool_calls/*", GENERATOR),
    ("meetkai-functionary-medium-v3.1", "tools/*", MARKUP),
    ("meetkai-functionary-medium-v3.1", "parallel_tool_calls/*", MARKUP),
];

#[derive(Deserialize)]
struct Fixture {
    bos_token: String,
    eos_token: String,
    conversations: Vec<Conversation>,
    expected: BTreeMap<String, BTreeMap<String, Expected>>,
}

#[derive(Deserialize)]
struct Conversation {
    name: String,
    messages: String,
    tools: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Expected {
    Text(String),
    Error(JinjaError),
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum JinjaError {
    Raise(String),
    Other(String),
}

fn dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/templates")
}

fn known(template: &str, case: &str) -> Option<&'static str> {
    KNOWN_DIFFERENCES
        .iter()
        .find(|(t, c, _)| {
            *t == template
                && (*c == "*"
                    || *c == case
                    || c.strip_suffix('*').is_some_and(|p| case.starts_with(p)))
        })
        .map(|(_, _, why)| *why)
}

fn known_everywhere(template: &str) -> bool {
    KNOWN_DIFFERENCES
        .iter()
        .any(|(t, c, _)| *t == template && *c == "*")
}

/// The first place two texts differ, with some context.
fn first_difference(want: &str, got: &str) -> String {
    let at = want
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(want.len().min(got.len()));
    let at = (0..=at)
        .rev()
        .find(|&i| want.is_char_boundary(i) && got.is_char_boundary(i))
        .unwrap_or(0);
    let ctx = |s: &str| {
        let start = (0..=at.saturating_sub(40))
            .rev()
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(0);
        let end = (at + 60..=s.len())
            .find(|&i| s.is_char_boundary(i))
            .unwrap_or(s.len());
        format!("{:?}", &s[start..end.min(s.len())])
    };
    format!(
        "at byte {at}:\n        want {}\n        got  {}",
        ctx(want),
        ctx(got)
    )
}

#[test]
fn real_templates_match_transformers() {
    let text = std::fs::read_to_string(dir().join("expected.json")).unwrap();
    let fixture: Fixture = serde_json::from_str(&text).unwrap();
    let mut total = 0;
    let mut agree = 0;
    let mut failures = Vec::new();
    let mut summary = Vec::new();
    for (name, cases) in &fixture.expected {
        let source = std::fs::read_to_string(dir().join(format!("{name}.jinja"))).unwrap();
        let template =
            ChatTemplate::new(source, &fixture.bos_token, &fixture.eos_token).map(|mut t| {
                t.set_now(NOW);
                t
            });
        let (mut n, mut same, mut differ) = (0, 0, Vec::new());
        for conv in &fixture.conversations {
            for gen in [true, false] {
                let case = format!("{}/{}", conv.name, if gen { "gen" } else { "nogen" });
                let Some(expected) = cases.get(&case) else {
                    continue;
                };
                n += 1;
                let got = template.as_ref().map_err(|e| e.to_string()).and_then(|t| {
                    t.render_json(&conv.messages, conv.tools.as_deref(), gen)
                        .map_err(|e| match e {
                            wick::Error::ChatTemplate(m) => m,
                            e => format!("{} error: {e}", e.kind()),
                        })
                });
                let problem = match (expected, &got) {
                    (Expected::Text(w), Ok(g)) if w == g => None,
                    (Expected::Text(w), Ok(g)) => {
                        Some(format!("text differs {}", first_difference(w, g)))
                    }
                    (Expected::Text(_), Err(e)) => Some(format!("wick fails: {e}")),
                    (Expected::Error(JinjaError::Raise(w)), Err(g)) if w == g => None,
                    (Expected::Error(JinjaError::Raise(w)), Err(g)) => {
                        Some(format!("raise_exception({w:?}); wick: {g}"))
                    }
                    (Expected::Error(JinjaError::Other(_)), Err(_)) => None,
                    (Expected::Error(e), Ok(_)) => Some(format!(
                        "jinja2 fails ({}), wick renders",
                        match e {
                            JinjaError::Raise(m) | JinjaError::Other(m) => m,
                        }
                    )),
                };
                match (problem, known(name, &case)) {
                    (None, None) => same += 1,
                    (None, Some(_)) if known_everywhere(name) => same += 1,
                    (None, Some(_)) => {
                        same += 1;
                        failures.push(format!(
                            "{name} {case}: listed as a known difference but agrees now"
                        ));
                    }
                    (Some(p), Some(why)) => differ.push(format!("{case}: known ({why}): {p}")),
                    (Some(p), None) => {
                        failures.push(format!("{name} {case}: {p}"));
                        differ.push(case.clone());
                    }
                }
            }
        }
        total += n;
        agree += same;
        summary.push(format!(
            "{name:<56} {n:>3} cases {same:>3} identical {:>3} differ",
            differ.len()
        ));
        for d in differ.iter().filter(|d| d.contains("known")) {
            summary.push(format!("    {d}"));
        }
    }
    for s in &summary {
        eprintln!("{s}");
    }
    eprintln!(
        "{} templates, {total} cases, {agree} agree",
        fixture.expected.len()
    );
    for f in &failures {
        eprintln!("FAIL {f}");
    }
    assert!(
        failures.is_empty(),
        "{} template cases differ (listed above)",
        failures.len()
    );
}
