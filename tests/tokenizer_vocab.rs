//! llama.cpp's tokenizer test suite (`tests/test-tokenizer-0.cpp`) run through wick's tokenizer.
//!
//! llama.cpp keeps vocabulary-only GGUF files (`models/ggml-vocab-*.gguf`) with test inputs
//! (`.gguf.inp`, strings separated by `\n__ggml_vocab_test__\n`) and the ids Hugging Face's
//! tokenizers gives for them (`.gguf.out`, one line of space-separated ids per input). llama.cpp
//! compares `common_tokenize(ctx, text, add_special = false, parse_special = false)` with them;
//! this test does the same with [`Tokenizer::encode_with`]`(text, false, false)`, and requires every
//! case to be identical for every vocabulary wick supports. Vocabularies of tokenizer models wick
//! does not support (`bert`/WPM, `t5`/UGM, `gemma4`) must fail to build with a typed `tokenizer`
//! error.
//!
//! The small vocabularies are committed in `tests/fixtures/vocab/` (see its README). The two large
//! ones (command-r, 11 MB; gemma-4, 16 MB) are read from `$WICK_VOCAB_DIR` (for example
//! llama.cpp's `models/` folder) when set, and skipped with a message otherwise.

use std::path::{Path, PathBuf};

use wick::tokenizer::Tokenizer;
use wick::Gguf;

const SEP: &str = "\n__ggml_vocab_test__\n";

/// What wick must do with a vocabulary.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Expect {
    /// Build, and give llama.cpp's ids on every case.
    Identical,
    /// Refuse to build with a `tokenizer` error (the tokenizer model is not supported).
    Unsupported,
}

/// Every vocabulary of llama.cpp's suite (`tests/CMakeLists.txt`, `test-tokenizer-0-*`).
const VOCABS: &[(&str, Expect)] = &[
    ("llama-spm", Expect::Identical),
    ("phi-3", Expect::Identical),
    ("gpt-2", Expect::Identical),
    ("falcon", Expect::Identical),
    ("mpt", Expect::Identical),
    ("refact", Expect::Identical),
    ("starcoder", Expect::Identical),
    ("deepseek-coder", Expect::Identical),
    ("deepseek-llm", Expect::Identical),
    ("qwen2", Expect::Identical),
    ("qwen35", Expect::Identical),
    ("llama-bpe", Expect::Identical),
    ("command-r", Expect::Identical),
    ("bert-bge", Expect::Unsupported),
    ("gemma-4", Expect::Unsupported),
];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The vocabulary file: the committed fixture, else `$WICK_VOCAB_DIR`.
fn vocab_path(name: &str) -> Option<PathBuf> {
    let file = format!("ggml-vocab-{name}.gguf");
    let committed = root().join("tests/fixtures/vocab").join(&file);
    if committed.exists() {
        return Some(committed);
    }
    let dir = std::env::var_os("WICK_VOCAB_DIR")?;
    let p = Path::new(&dir).join(&file);
    p.exists().then_some(p)
}

/// The cases of `<vocab>.inp` / `<vocab>.out`, read as test-tokenizer-0.cpp reads them.
fn cases(gguf: &Path) -> Vec<(String, Vec<u32>)> {
    let read = |ext: &str| {
        let p = PathBuf::from(format!("{}.{ext}", gguf.display()));
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    };
    let inp = read("inp");
    let out = read("out");
    // As llama.cpp splits: a separator at the very end opens no further case.
    let mut inputs: Vec<&str> = inp.split(SEP).collect();
    if inp.ends_with(SEP) {
        inputs.pop();
    }
    let outputs: Vec<&str> = out.lines().collect();
    assert_eq!(
        inputs.len(),
        outputs.len(),
        "{}: input and output files have different numbers of tests",
        gguf.display()
    );
    inputs
        .into_iter()
        .zip(outputs)
        .map(|(i, o)| {
            let ids = o
                .split_whitespace()
                .map(|t| t.parse().unwrap_or_else(|e| panic!("id {t:?}: {e}")))
                .collect();
            (i.to_string(), ids)
        })
        .collect()
}

struct Report {
    name: &'static str,
    status: String,
    failures: Vec<String>,
}

fn check(name: &'static str, expect: Expect) -> Report {
    let Some(path) = vocab_path(name) else {
        return Report {
            name,
            status: "SKIPPED (not committed; set WICK_VOCAB_DIR to llama.cpp's models/)".into(),
            failures: Vec::new(),
        };
    };
    let gguf = Gguf::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let built = Tokenizer::from_metadata(&gguf.metadata);
    let cases = cases(&path);
    match (expect, built) {
        (Expect::Unsupported, Err(e)) => Report {
            name,
            status: if e.kind() == "tokenizer" {
                format!("{} cases, refused as expected: {e}", cases.len())
            } else {
                format!("refused with error kind {} instead of tokenizer", e.kind())
            },
            failures: if e.kind() == "tokenizer" {
                Vec::new()
            } else {
                vec![format!("wrong error kind {}: {e}", e.kind())]
            },
        },
        (Expect::Unsupported, Ok(_)) => Report {
            name,
            status: "built, but was expected to be refused".into(),
            failures: vec!["unexpectedly supported: move it to Expect::Identical".into()],
        },
        (Expect::Identical, Err(e)) => Report {
            name,
            status: format!("failed to build: {e}"),
            failures: vec![format!("build: {e}")],
        },
        (Expect::Identical, Ok(t)) => {
            let mut failures = Vec::new();
            for (text, want) in &cases {
                match t.encode_with(text, false, false) {
                    Ok(got) if &got == want => {}
                    Ok(got) => {
                        failures.push(format!("{text:?}\n      want {want:?}\n      got  {got:?}"))
                    }
                    Err(e) => failures.push(format!("{text:?}: error {e}")),
                }
            }
            Report {
                name,
                status: format!(
                    "{} cases, {} identical, {} differ",
                    cases.len(),
                    cases.len() - failures.len(),
                    failures.len()
                ),
                failures,
            }
        }
    }
}

#[test]
fn llama_cpp_vocab_suite() {
    let reports: Vec<Report> = VOCABS.iter().map(|&(n, e)| check(n, e)).collect();
    let mut bad = 0;
    for r in &reports {
        eprintln!("{:<16} {}", r.name, r.status);
        for f in &r.failures {
            bad += 1;
            eprintln!("    {f}");
        }
    }
    assert_eq!(bad, 0, "{bad} vocabulary-suite failures (listed above)");
}

/// Every committed vocabulary of the suite is listed in [`VOCABS`].
#[test]
fn every_committed_vocab_is_checked() {
    let dir = root().join("tests/fixtures/vocab");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(v) = name
            .strip_prefix("ggml-vocab-")
            .and_then(|n| n.strip_suffix(".gguf"))
        {
            assert!(
                VOCABS.iter().any(|(n, _)| *n == v),
                "{name} is not in VOCABS"
            );
        }
    }
}

/// `wick tokenize` works on a vocabulary-only file (no tensors), with the same `--json` contract.
#[test]
fn cli_tokenizes_vocab_only_files() {
    let wick = |file: &str, text: &str| {
        let path = root().join("tests/fixtures/vocab").join(file);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_wick"))
            .args(["tokenize", path.to_str().unwrap(), text, "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{file}: {e}: {}", String::from_utf8_lossy(&out.stdout)));
        (out.status.success(), v)
    };
    // Llama 3 adds BOS (128000) by default; "Hello world" is 9906, 1917.
    let (ok, v) = wick("ggml-vocab-llama-bpe.gguf", "Hello world");
    assert!(ok);
    assert_eq!(v, serde_json::json!({"ids": [128000, 9906, 1917]}));
    let (ok, v) = wick("ggml-vocab-bert-bge.gguf", "Hello world");
    assert!(!ok);
    assert_eq!(v["error"]["kind"], "tokenizer", "{v}");
}

/// Real vocabularies from the package registries (Llama 3 and 4, Mistral SentencePiece v1/v2/v3/v7
/// and Tekken, Qwen and Qwen 3.6), converted to vocabulary-only GGUFs as llama.cpp's converter
/// would (`scripts/registry_vocab.py build`, run by `scripts/fetch-vocabs` from `scripts/setup`,
/// into `models/vocab/`), against llama.cpp's ids for them (`tests/fixtures/registry-vocab/*.json`,
/// recorded by `scripts/fixtures vocab`). Each case is checked twice: as llama.cpp's suite does
/// (no BOS/EOS, special-token text as text) and as a prompt is tokenized (BOS/EOS as the
/// vocabulary says, special-token text read as the tokens). The converted file must be the one
/// the ids were recorded for (its SHA-256 is in the fixture).
#[test]
fn registry_vocabularies() {
    use sha2::{Digest, Sha256};
    let dir = root().join("tests/fixtures/registry-vocab");
    let mut fixtures: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    fixtures.sort();
    assert!(
        fixtures.len() >= 10,
        "registry vocabulary fixtures missing in {}",
        dir.display()
    );
    let mut bad = 0;
    for fixture in &fixtures {
        let f: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        let name = f["name"].as_str().unwrap();
        let gguf_path = root().join(f["gguf"].as_str().unwrap());
        let bytes = std::fs::read(&gguf_path).unwrap_or_else(|e| {
            panic!(
                "{}: {e} (scripts/fetch-vocabs writes it; scripts/setup runs that)",
                gguf_path.display()
            )
        });
        let sha = format!("{:x}", Sha256::digest(&bytes));
        assert_eq!(
            sha,
            f["gguf_sha256"].as_str().unwrap(),
            "{name}: {} is not the file the ids were recorded for; rerun scripts/fetch-vocabs",
            gguf_path.display()
        );
        let gguf = Gguf::open(&gguf_path).unwrap();
        let t = Tokenizer::from_metadata(&gguf.metadata)
            .unwrap_or_else(|e| panic!("{name}: failed to build: {e}"));
        let cases = f["cases"].as_array().unwrap();
        let ids = |v: &serde_json::Value| -> Vec<u32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as u32)
                .collect()
        };
        let mut differ = Vec::new();
        for case in cases {
            let text = case["text"].as_str().unwrap();
            for (add_special, parse_special, key) in
                [(false, false, "ids"), (true, true, "ids_special")]
            {
                let want = ids(&case[key]);
                match t.encode_with(text, add_special, parse_special) {
                    Ok(got) if got == want => {}
                    Ok(got) => differ.push(format!(
                        "{key} {text:?}\n      want {want:?}\n      got  {got:?}"
                    )),
                    Err(e) => differ.push(format!("{key} {text:?}: error {e}")),
                }
            }
        }
        eprintln!(
            "{name:<16} {} tokens, {} cases x 2, {} identical, {} differ",
            f["n_tokens"],
            cases.len(),
            2 * cases.len() - differ.len(),
            differ.len()
        );
        for d in &differ {
            eprintln!("    {}", d.chars().take(600).collect::<String>());
        }
        bad += differ.len();
    }
    assert_eq!(
        bad, 0,
        "{bad} registry-vocabulary cases differ from llama.cpp (listed above)"
    );
}

/// wick's byte-level BPE merge step (`src/tokenizer/bpe.rs`, over ids) gives the ids of the
/// `tokenizers` BPE model it replaces (which `Tokenizer::hf` still builds), on every input of
/// every byte-level vocabulary's suite and on this repository's own docs, line groups included.
#[test]
fn byte_level_merges_match_tokenizers_bpe() {
    let mut texts: Vec<String> = Vec::new();
    for (name, _) in VOCABS {
        if let Some(p) = vocab_path(name) {
            texts.extend(cases(&p).into_iter().map(|(t, _)| t));
        }
    }
    for doc in ["README.md", "ARCHITECTURE.md"] {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        texts.extend(lines.chunks(3).map(|c| c.join("\n")));
    }
    for &(name, expect) in VOCABS {
        let Some(path) = vocab_path(name).filter(|_| expect == Expect::Identical) else {
            continue;
        };
        let gguf = Gguf::open(&path).unwrap();
        let t = Tokenizer::from_metadata(&gguf.metadata).unwrap();
        if t.kind() != wick::tokenizer::TokenizerKind::ByteLevelBpe {
            continue;
        }
        let hf = t.hf().unwrap();
        for text in &texts {
            // `tokenizers` matches added tokens its own way; compare on plain text only.
            if !t.control_token_spans(text).is_empty() {
                continue;
            }
            let want = hf.encode(text.as_str(), false).unwrap().get_ids().to_vec();
            let got = t.encode_with(text, false, false).unwrap();
            assert_eq!(got, want, "{name}: {text:?}");
        }
    }
}
