//! `wick apply-template` and `wick detokenize`: the JSON contract (`{"text": ...}`, errors as
//! `{"error": {"kind", "message"}}` with exit status 1), on llama.cpp's vocabulary-only GGUF files
//! (`tests/fixtures/vocab/`) and real templates (`tests/fixtures/templates/`).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn vocab(name: &str) -> String {
    let p = root().join(format!("tests/fixtures/vocab/ggml-vocab-{name}.gguf"));
    p.to_str().unwrap().to_string()
}

fn template(name: &str) -> String {
    let p = root().join(format!("tests/fixtures/templates/{name}.jinja"));
    p.to_str().unwrap().to_string()
}

/// Writes `value` as JSON to a file of its own for this test.
fn file(test: &str, what: &str, value: &Value) -> String {
    raw(test, what, &value.to_string())
}

/// Writes `text` to a file of its own for this test.
fn raw(test: &str, what: &str, text: &str) -> String {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli_templates");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{test}-{what}.json"));
    std::fs::write(&p, text).unwrap();
    p.to_str().unwrap().to_string()
}

fn wick(args: &[&str]) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_wick"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?}: {e}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn the_models_own_template() {
    // llama.cpp's qwen2 vocabulary carries Qwen 2's template.
    let m = file(
        "own",
        "messages",
        &json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]),
    );
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("qwen2"),
        "--messages",
        &m,
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    let chatml = "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n";
    assert_eq!(
        v,
        json!({ "text": format!("{chatml}<|im_start|>assistant\n") })
    );
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("qwen2"),
        "--messages",
        &m,
        "--no-generation-prompt",
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v, json!({ "text": chatml }));
    // Phi-3's template writes `bos_token`, the model's BOS text.
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("phi-3"),
        "--messages",
        &m,
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    assert!(v["text"].as_str().unwrap().starts_with("<s>"), "{v}");
}

#[test]
fn a_given_template_with_tools_and_tool_calls() {
    let m = file(
        "tools",
        "messages",
        &json!([
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": "", "tool_calls": [{"id": "call12345", "type": "function",
             "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
            {"role": "tool", "tool_call_id": "call12345", "content": "{\"temperature\": 21}"}
        ]),
    );
    // Written by hand: keys in this order (serde_json's `json!` would sort them).
    let t = raw(
        "tools",
        "tools",
        r#"[{"type": "function", "function": {"name": "get_weather", "description": "Weather",
             "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]"#,
    );
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("llama-bpe"),
        "--messages",
        &m,
        "--tools",
        &t,
        "--template",
        &template("meta-llama-Llama-3.1-8B-Instruct"),
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    let text = v["text"].as_str().unwrap();
    // The model's BOS text, the tool definition as transformers' `tojson(indent=4)` writes it
    // (keys in the given order), the call and its result.
    assert!(
        text.starts_with("<|begin_of_text|><|start_header_id|>system"),
        "{text}"
    );
    assert!(
        text.contains("{\n    \"type\": \"function\",\n    \"function\": {\n        \"name\": \"get_weather\""),
        "{text}"
    );
    assert!(
        text.contains(r#"{"name": "get_weather", "parameters": {"city": "Paris"}}<|eot_id|>"#),
        "{text}"
    );
    assert!(
        text.contains(
            "<|start_header_id|>ipython<|end_header_id|>\n\n\"{\\\"temperature\\\": 21}\""
        ),
        "{text}"
    );
    assert!(
        text.ends_with("<|start_header_id|>assistant<|end_header_id|>\n\n"),
        "{text}"
    );
}

#[test]
fn errors_are_reported_as_json() {
    let m = file(
        "errors",
        "messages",
        &json!([{"role": "user", "content": "Hi"}]),
    );
    // No template in the file and none given.
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("gpt-2"),
        "--messages",
        &m,
        "--json",
    ]);
    assert_eq!(rc, 1);
    assert_eq!(v["error"]["kind"], "chat_template", "{v}");
    // Messages that are not a JSON array.
    let bad = file("errors", "bad", &json!({"role": "user"}));
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("qwen2"),
        "--messages",
        &bad,
        "--json",
    ]);
    assert_eq!(rc, 1);
    assert_eq!(v["error"]["kind"], "invalid_parameter", "{v}");
    // raise_exception in the template: its message.
    let sys = file(
        "errors",
        "system",
        &json!([{"role": "system", "content": "x"}, {"role": "user", "content": "Hi"}]),
    );
    let (rc, v) = wick(&[
        "apply-template",
        &vocab("gpt-2"),
        "--messages",
        &sys,
        "--template",
        &template("google-gemma-2-2b-it"),
        "--json",
    ]);
    assert_eq!(rc, 1);
    assert_eq!(v["error"]["kind"], "chat_template", "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("System role not supported"),
        "{v}"
    );
}

#[test]
fn detokenize() {
    let (rc, v) = wick(&[
        "detokenize",
        &vocab("llama-bpe"),
        "128000",
        "9906",
        "1917",
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v, json!({"text": "<|begin_of_text|>Hello world"}));
    let (rc, v) = wick(&[
        "detokenize",
        &vocab("llama-bpe"),
        "128000",
        "9906",
        "1917",
        "--skip-special",
        "--json",
    ]);
    assert_eq!(rc, 0, "{v}");
    assert_eq!(v, json!({"text": "Hello world"}));
}
