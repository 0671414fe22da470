//! The tokenizer against llama.cpp: every recorded string of `tests/fixtures/<model>/tokenize.json`
//! (llama.cpp's `llama_tokenize` with add_special = true, parse_special = true / false) must
//! encode to exactly the same ids, and decoding must match llama.cpp's `llama_detokenize`.
//!
//! The models are read from `models/`; a test whose model file is absent is skipped with a
//! message (run `scripts/fetch-models`).

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Instant;

use serde::Deserialize;
use wick::tokenizer::Tokenizer;
use wick::Gguf;

const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn gguf(file: &str) -> Option<Gguf> {
    let path = root().join("models").join(file);
    if !path.exists() {
        eprintln!(
            "SKIPPED: {} is absent (run scripts/fetch-models)",
            path.display()
        );
        return None;
    }
    Some(Gguf::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

/// Built once per model for the whole test binary (Gemma's takes about a second).
fn tokenizer(file: &'static str) -> Option<&'static Tokenizer> {
    static SMOL: OnceLock<Option<Tokenizer>> = OnceLock::new();
    static GEMMA: OnceLock<Option<Tokenizer>> = OnceLock::new();
    let cell = if file == SMOLLM2 { &SMOL } else { &GEMMA };
    cell.get_or_init(|| {
        let g = gguf(file)?;
        let t0 = Instant::now();
        let t = Tokenizer::from_metadata(&g.metadata).unwrap_or_else(|e| panic!("{file}: {e}"));
        eprintln!("{file}: tokenizer built in {:?}", t0.elapsed());
        Some(t)
    })
    .as_ref()
}

#[derive(Deserialize)]
struct TokenizeFixture {
    cases: Vec<TokenizeCase>,
}

#[derive(Deserialize)]
struct TokenizeCase {
    text: String,
    ids: Vec<u32>,
    ids_no_special: Vec<u32>,
}

#[derive(Deserialize)]
struct GreedyFixture {
    cases: Vec<GreedyCase>,
}

#[derive(Deserialize)]
struct GreedyCase {
    name: String,
    ids: Vec<u32>,
    text: String,
    text_skip_special: String,
}

fn fixture_dir(key: &str) -> PathBuf {
    root().join("tests").join("fixtures").join(key)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> T {
    let s = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn short(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    format!("{out:?}")
}

/// Every fixture string encodes to llama.cpp's ids, with and without special-token parsing.
fn check_tokenize(file: &'static str, key: &str) {
    let Some(t) = tokenizer(file) else { return };
    let fx: TokenizeFixture = read_json(&fixture_dir(key).join("tokenize.json"));
    assert!(!fx.cases.is_empty());
    let mut failures = Vec::new();
    for c in &fx.cases {
        let ids = t.encode(&c.text, true).unwrap();
        if ids != c.ids {
            failures.push(format!(
                "{} parse_special: got {ids:?}, llama.cpp {:?}",
                short(&c.text),
                c.ids
            ));
        }
        let ids = t.encode_with(&c.text, true, false).unwrap();
        if ids != c.ids_no_special {
            failures.push(format!(
                "{} no parse_special: got {ids:?}, llama.cpp {:?}",
                short(&c.text),
                c.ids_no_special
            ));
        }
    }
    eprintln!(
        "{key}: {} of {} strings match llama.cpp (x2: with and without parse_special)",
        fx.cases.len() * 2 - failures.len(),
        fx.cases.len() * 2
    );
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn smollm2_matches_llama_cpp_tokenize() {
    check_tokenize(SMOLLM2, "smollm2");
}

#[test]
fn gemma3_matches_llama_cpp_tokenize() {
    check_tokenize(GEMMA3, "gemma3");
}

/// Decoding generated ids gives llama.cpp's `llama_detokenize` text, with special tokens rendered
/// and skipped.
fn check_detokenize(file: &'static str, key: &str) {
    let Some(t) = tokenizer(file) else { return };
    let path = fixture_dir(key).join("greedy.json");
    if !path.exists() {
        eprintln!("SKIPPED: {} is absent", path.display());
        return;
    }
    let fx: GreedyFixture = read_json(&path);
    for c in &fx.cases {
        assert_eq!(t.decode(&c.ids).unwrap(), c.text, "{key} {}", c.name);
        assert_eq!(
            t.decode_skip_special(&c.ids).unwrap(),
            c.text_skip_special,
            "{key} {}",
            c.name
        );
        let streamed = stream(t, &c.ids, false);
        assert_eq!(streamed.concat(), c.text, "{key} {} streamed", c.name);
        let streamed = stream(t, &c.ids, true);
        assert_eq!(
            streamed.concat(),
            c.text_skip_special,
            "{key} {} streamed, skip special",
            c.name
        );
    }
}

#[test]
fn smollm2_matches_llama_cpp_detokenize() {
    check_detokenize(SMOLLM2, "smollm2");
}

#[test]
fn gemma3_matches_llama_cpp_detokenize() {
    check_detokenize(GEMMA3, "gemma3");
}

fn stream(t: &Tokenizer, ids: &[u32], skip_special: bool) -> Vec<String> {
    let mut d = if skip_special {
        t.stream_decoder_skip_special()
    } else {
        t.stream_decoder()
    };
    let mut pieces = Vec::new();
    for &id in ids {
        if let Some(p) = d.push(id).unwrap() {
            assert!(!p.is_empty());
            pieces.push(p);
        }
    }
    let rest = d.finish().unwrap();
    if !rest.is_empty() {
        pieces.push(rest);
    }
    pieces
}

/// Every fixture string round-trips through encode/decode, and streaming gives the same text.
fn check_round_trip(file: &'static str, key: &str) {
    let Some(t) = tokenizer(file) else { return };
    let fx: TokenizeFixture = read_json(&fixture_dir(key).join("tokenize.json"));
    for c in &fx.cases {
        let ids = t.encode(&c.text, false).unwrap();
        assert_eq!(
            t.decode(&ids).unwrap(),
            c.text,
            "{key}: round trip of {}",
            short(&c.text)
        );
        let full = t.decode(&c.ids).unwrap();
        assert_eq!(
            stream(t, &c.ids, false).concat(),
            full,
            "{key}: streaming {}",
            short(&c.text)
        );
        let full = t.decode_skip_special(&c.ids).unwrap();
        assert_eq!(
            stream(t, &c.ids, true).concat(),
            full,
            "{key}: streaming {}",
            short(&c.text)
        );
    }
}

#[test]
fn smollm2_round_trips() {
    check_round_trip(SMOLLM2, "smollm2");
}

#[test]
fn gemma3_round_trips() {
    check_round_trip(GEMMA3, "gemma3");
}

/// Emoji and CJK split across byte-fallback tokens (Gemma) or byte-level tokens that end inside a
/// character (SmolLM2): every streamed piece is whole UTF-8 and nothing is lost.
#[test]
fn stream_decoder_never_splits_characters() {
    let texts = [
        "👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 ❤️‍🔥 🇫🇷 🤦🏻‍♂️",
        "我能吞下玻璃而不伤身体。中华人民共和国成立于1949年。",
        "いろはにほへと ちりぬるを 東京タワー",
        "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𓂀 𝄞 ꙮ",
        "Ünïcödé façade naïve café — très cher €",
    ];
    for file in [SMOLLM2, GEMMA3] {
        let Some(t) = tokenizer(file) else { continue };
        let mut partial_tokens = 0;
        for text in texts {
            let ids = t.encode(text, false).unwrap();
            let pieces = stream(t, &ids, false);
            assert_eq!(pieces.concat(), text, "{file}");
            assert!(
                pieces.iter().all(|p| !p.contains('\u{FFFD}')),
                "{file}: {pieces:?}"
            );
            partial_tokens += ids
                .iter()
                .filter(|&&id| t.token_piece(id).unwrap().contains('\u{FFFD}'))
                .count();
        }
        // Some tokens must end inside a character for this test to mean anything.
        assert!(
            partial_tokens > 5,
            "{file}: only {partial_tokens} tokens hold part of a character"
        );
        // An unfinished character at the end is flushed by `finish` as U+FFFD, like `decode`.
        let ids = t.encode("a👋", false).unwrap();
        let cut = &ids[..ids.len() - 1];
        let dec = t.decode(cut).unwrap();
        assert_eq!(stream(t, cut, false).concat(), dec, "{file}");
    }
}

#[test]
fn json_round_trip_encodes_identically() {
    for (file, key) in [(SMOLLM2, "smollm2"), (GEMMA3, "gemma3")] {
        let Some(t) = tokenizer(file) else { continue };
        let t0 = Instant::now();
        let json = t.to_json().unwrap();
        let t1 = Instant::now();
        let back = Tokenizer::from_json(&json).unwrap();
        eprintln!(
            "{key}: to_json {:?} ({} bytes), from_json {:?}",
            t1 - t0,
            json.len(),
            t1.elapsed()
        );
        assert_eq!(back.vocab_size(), t.vocab_size());
        assert_eq!(back.end_of_generation_ids(), t.end_of_generation_ids());
        let fx: TokenizeFixture = read_json(&fixture_dir(key).join("tokenize.json"));
        for c in &fx.cases {
            assert_eq!(
                back.encode(&c.text, true).unwrap(),
                c.ids,
                "{key}: {}",
                short(&c.text)
            );
            assert_eq!(
                back.encode_with(&c.text, true, false).unwrap(),
                c.ids_no_special
            );
            assert_eq!(back.decode(&c.ids).unwrap(), t.decode(&c.ids).unwrap());
        }
    }
    assert!(Tokenizer::from_json("{}").is_err());
    assert!(Tokenizer::from_json("not json").is_err());
}

#[test]
fn special_ids_and_flags() {
    if let Some(g) = gguf(SMOLLM2) {
        let md = &g.metadata;
        assert!(!wick::tokenizer::adds_bos(md));
        // <|endoftext|>, <|im_end|>, and <reponame> (a fill-in-the-middle repo marker llama.cpp
        // also treats as end of generation).
        assert_eq!(wick::tokenizer::end_of_generation_ids(md), vec![0, 2, 4]);
        let t = tokenizer(SMOLLM2).unwrap();
        assert_eq!(t.vocab_size(), 49152);
        assert_eq!(t.end_of_generation_ids(), &[0, 2, 4]);
        assert_eq!(t.token_text(2), Some("<|im_end|>"));
        assert_eq!(t.token_id("<|im_start|>"), Some(1));
        assert_eq!(
            t.token_piece(t.token_id("Ġworld").unwrap()),
            Some(" world".into())
        );
        assert!(t.is_control(1));
        assert!(!t.adds_bos());
        assert_eq!(t.encode("", true).unwrap(), Vec::<u32>::new());
        assert!(t.decode(&[49152]).is_err());
    }
    if let Some(g) = gguf(GEMMA3) {
        let md = &g.metadata;
        assert!(wick::tokenizer::adds_bos(md));
        let eog = wick::tokenizer::end_of_generation_ids(md);
        // <eos>, <end_of_turn>, and `</s>` (llama.cpp lists it among end-of-generation texts).
        assert_eq!(eog, vec![1, 106, 212]);
        let t = tokenizer(GEMMA3).unwrap();
        assert_eq!(t.vocab_size(), 262144);
        assert_eq!(t.bos_id(), Some(2));
        assert_eq!(t.encode("", true).unwrap(), vec![2]);
        assert_eq!(t.token_text(106), Some("<end_of_turn>"));
        assert!(t.is_end_of_generation(106));
        assert_eq!(t.decode_skip_special(&[2, 105, 2364]).unwrap(), "user");
    }
}

/// Cross-check against any number of llama.cpp results: set `WICK_TOKENIZER_CROSSCHECK` to a
/// JSON file `[{"model": "<path, or file in models/>", "text": ..., "ids": [...],
/// "ids_ns": [...], "dec": ..., "dec_skip": ...}]` (`ids`: add_special and parse_special;
/// `ids_ns`: add_special only; `dec` / `dec_skip`: llama_detokenize of `ids` with specials
/// rendered / removed).
#[test]
#[ignore = "needs WICK_TOKENIZER_CROSSCHECK"]
fn crosscheck_file() {
    #[derive(Deserialize)]
    struct Case {
        model: String,
        text: String,
        ids: Vec<u32>,
        ids_ns: Vec<u32>,
        dec: String,
        dec_skip: String,
    }
    let path = std::env::var("WICK_TOKENIZER_CROSSCHECK").expect("set WICK_TOKENIZER_CROSSCHECK");
    let cases: Vec<Case> = read_json(Path::new(&path));
    let mut built: std::collections::HashMap<String, Tokenizer> = Default::default();
    let mut bad = 0;
    for c in &cases {
        let t = built.entry(c.model.clone()).or_insert_with(|| {
            let p = root().join("models").join(&c.model);
            let g = Gguf::open(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            Tokenizer::from_metadata(&g.metadata).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        });
        let checks = [
            ("ids", t.encode(&c.text, true).unwrap() == c.ids),
            (
                "ids_ns",
                t.encode_with(&c.text, true, false).unwrap() == c.ids_ns,
            ),
            ("dec", t.decode(&c.ids).unwrap() == c.dec),
            (
                "dec_skip",
                t.decode_skip_special(&c.ids).unwrap() == c.dec_skip,
            ),
            ("stream", stream(t, &c.ids, false).concat() == c.dec),
            (
                "stream_skip",
                stream(t, &c.ids, true).concat() == c.dec_skip,
            ),
        ];
        for (what, ok) in checks {
            if !ok {
                bad += 1;
                eprintln!("{} {what} differs for {:?}", c.model, c.text);
                match what {
                    "ids" => eprintln!(
                        "  got {:?}\n  ref {:?}",
                        t.encode(&c.text, true).unwrap(),
                        c.ids
                    ),
                    "dec" => eprintln!("  got {:?}\n  ref {:?}", t.decode(&c.ids).unwrap(), c.dec),
                    "dec_skip" => eprintln!(
                        "  got {:?}\n  ref {:?}",
                        t.decode_skip_special(&c.ids).unwrap(),
                        c.dec_skip
                    ),
                    _ => {}
                }
            }
        }
    }
    eprintln!("{} cases, {bad} differences", cases.len());
    assert_eq!(bad, 0);
}

// ---- odd metadata: clear errors, never a panic ----------------------------------------------

mod odd_metadata {
    use candle_core::quantized::gguf_file::Value;
    use wick::gguf::Metadata;
    use wick::tokenizer::{adds_bos, end_of_generation_ids, Tokenizer};
    use wick::Error;

    fn s(x: &str) -> Value {
        Value::String(x.into())
    }

    fn strings(xs: &[&str]) -> Value {
        Value::Array(xs.iter().map(|x| s(x)).collect())
    }

    /// A tiny SentencePiece vocabulary: <unk> <s> </s>, 256 byte tokens, then pieces.
    fn spm() -> Metadata {
        let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
        tokens.extend((0..256).map(|b| format!("<0x{b:02X}>")));
        let pieces = [
            "▁",
            "h",
            "e",
            "l",
            "o",
            "he",
            "ll",
            "hell",
            "hello",
            "▁hello",
            "▁▁",
            "▁▁▁▁",
        ];
        tokens.extend(pieces.iter().map(|p| p.to_string()));
        let n = tokens.len();
        let mut types = vec![Value::I32(3), Value::I32(3), Value::I32(3)];
        types.extend((0..256).map(|_| Value::I32(6)));
        types.extend(pieces.iter().map(|_| Value::I32(1)));
        let scores: Vec<Value> = (0..n)
            .map(|i| Value::F32(if i < 259 { 0.0 } else { -(i as f32) }))
            .collect();
        let mut md = Metadata::new();
        md.insert("tokenizer.ggml.model".into(), s("llama"));
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        );
        md.insert("tokenizer.ggml.token_type".into(), Value::Array(types));
        md.insert("tokenizer.ggml.scores".into(), Value::Array(scores));
        md
    }

    /// A tiny byte-level BPE vocabulary: the 256 byte characters, "he", "ll", "hell", "hello".
    fn bpe() -> Metadata {
        let mut tokens: Vec<String> = Vec::new();
        for b in 0u32..256 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            if printable {
                tokens.push(char::from_u32(b).unwrap().to_string());
            }
        }
        let mut n = 0;
        for b in 0u32..256 {
            let printable = (0x21..=0x7E).contains(&b)
                || (0xA1..=0xAC).contains(&b)
                || (0xAE..=0xFF).contains(&b);
            if !printable {
                tokens.push(char::from_u32(256 + n).unwrap().to_string());
                n += 1;
            }
        }
        tokens.extend(["he", "ll", "hell", "hello", "<|endoftext|>"].map(String::from));
        let mut md = Metadata::new();
        md.insert("tokenizer.ggml.model".into(), s("gpt2"));
        md.insert("tokenizer.ggml.pre".into(), s("gpt-2"));
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        );
        md.insert(
            "tokenizer.ggml.merges".into(),
            strings(&["h e", "l l", "he ll", "hell o", "x y"]),
        );
        md.insert(
            "tokenizer.ggml.eos_token_id".into(),
            Value::U32(tokens.len() as u32 - 1),
        );
        md
    }

    fn err(md: &Metadata) -> Error {
        Tokenizer::from_metadata(md).expect_err("should fail")
    }

    #[test]
    fn tiny_vocabularies_work() {
        let t = Tokenizer::from_metadata(&spm()).unwrap();
        let hello = t.token_id("▁hello").unwrap();
        // SentencePiece defaults: BOS added, a space prefix, and that space dropped on decode.
        assert_eq!(t.encode("hello", true).unwrap(), vec![1, hello]);
        assert_eq!(t.decode(&[1, hello]).unwrap(), "<s> hello");
        assert_eq!(t.decode(&[hello]).unwrap(), "hello");
        assert_eq!(t.decode_skip_special(&[1, hello]).unwrap(), " hello");
        // Unknown characters fall back to bytes: "é" is C3 A9.
        let ids = t.encode("é", false).unwrap();
        assert_eq!(ids, vec![t.token_id("▁").unwrap(), 3 + 0xC3, 3 + 0xA9]);
        assert_eq!(t.decode(&ids).unwrap(), "é");
        assert!(adds_bos(&spm()));
        assert_eq!(end_of_generation_ids(&spm()), vec![2]);
        // JSON round trip of a SentencePiece tokenizer.
        let back = Tokenizer::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(
            back.encode("hello  hello", true).unwrap(),
            t.encode("hello  hello", true).unwrap()
        );

        let t = Tokenizer::from_metadata(&bpe()).unwrap();
        let ids = t.encode("hello", true).unwrap();
        assert_eq!(ids, vec![t.token_id("hello").unwrap()]);
        assert_eq!(t.decode(&ids).unwrap(), "hello");
        assert!(!adds_bos(&bpe()));
        let back = Tokenizer::from_json(&t.to_json().unwrap()).unwrap();
        assert_eq!(
            back.encode("hello hell", true).unwrap(),
            t.encode("hello hell", true).unwrap()
        );
    }

    /// The `tokenizers` object behind (or, for SentencePiece, beside) wick's encoder.
    #[test]
    fn tokenizers_equivalent() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Tokenizer>();
        for md in [spm(), bpe()] {
            let t = Tokenizer::from_metadata(&md).unwrap();
            let hf = t.hf().unwrap();
            assert_eq!(hf.get_vocab_size(true), t.vocab_size());
            let ids = hf.encode("hello hello", false).unwrap().get_ids().to_vec();
            assert_eq!(ids, t.encode("hello hello", false).unwrap());
            assert_eq!(hf.decode(&ids, false).unwrap(), t.decode(&ids).unwrap());
        }
    }

    #[test]
    fn clear_errors() {
        let mut md = spm();
        md.remove("tokenizer.ggml.model");
        assert!(matches!(err(&md), Error::MissingMetadata(k) if k == "tokenizer.ggml.model"));

        let mut md = spm();
        md.insert("tokenizer.ggml.model".into(), s("bert"));
        assert!(matches!(err(&md), Error::Tokenizer(m) if m.contains("bert")));

        let mut md = spm();
        md.remove("tokenizer.ggml.tokens");
        assert!(matches!(err(&md), Error::MissingMetadata(_)));

        let mut md = spm();
        md.insert("tokenizer.ggml.tokens".into(), s("not an array"));
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, .. } if key == "tokenizer.ggml.tokens")
        );

        let mut md = spm();
        md.insert(
            "tokenizer.ggml.tokens".into(),
            Value::Array(vec![s("a"), Value::U32(7)]),
        );
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, reason } if key == "tokenizer.ggml.tokens" && reason.contains("element 1"))
        );

        let mut md = spm();
        md.insert("tokenizer.ggml.tokens".into(), Value::Array(vec![]));
        assert!(matches!(err(&md), Error::InvalidMetadata { .. }));

        let mut md = spm();
        md.insert(
            "tokenizer.ggml.token_type".into(),
            Value::Array(vec![Value::I32(1); 5]),
        );
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, reason } if key == "tokenizer.ggml.token_type" && reason.contains("5 entries"))
        );

        let mut md = spm();
        md.insert("tokenizer.ggml.token_type".into(), strings(&["x"; 300]));
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, .. } if key == "tokenizer.ggml.token_type")
        );

        let mut md = spm();
        md.insert(
            "tokenizer.ggml.scores".into(),
            Value::Array(vec![Value::F32(0.0); 3]),
        );
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, .. } if key == "tokenizer.ggml.scores")
        );

        let mut md = spm();
        md.insert("tokenizer.ggml.tokens".into(), strings(&["a", "b", "a"]));
        md.remove("tokenizer.ggml.token_type");
        md.remove("tokenizer.ggml.scores");
        assert!(
            matches!(err(&md), Error::InvalidMetadata { reason, .. } if reason.contains("duplicate"))
        );

        let mut md = bpe();
        md.remove("tokenizer.ggml.merges");
        assert!(matches!(err(&md), Error::MissingMetadata(k) if k.contains("merges")));

        let mut md = bpe();
        md.insert(
            "tokenizer.ggml.merges".into(),
            Value::Array(vec![Value::U8(1)]),
        );
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, .. } if key == "tokenizer.ggml.merges")
        );

        // BOS requested but no usable BOS id.
        let mut md = spm();
        md.insert("tokenizer.ggml.bos_token_id".into(), Value::U32(1_000_000));
        md.insert("tokenizer.ggml.tokens".into(), strings(&["x"]));
        md.remove("tokenizer.ggml.token_type");
        md.remove("tokenizer.ggml.scores");
        assert!(
            matches!(err(&md), Error::InvalidMetadata { key, .. } if key == "tokenizer.ggml.add_bos_token")
        );
    }

    #[test]
    fn tolerated_oddities() {
        // Out-of-range or mistyped special ids keep llama.cpp's defaults; unknown pre types use
        // GPT-2's expression; empty token texts get placeholder names.
        let mut md = bpe();
        md.insert("tokenizer.ggml.bos_token_id".into(), Value::I32(-1));
        md.insert("tokenizer.ggml.eot_token_id".into(), s("nope"));
        md.insert("tokenizer.ggml.pre".into(), s("some-future-pre"));
        let t = Tokenizer::from_metadata(&md).unwrap();
        assert_eq!(t.encode("hello", false).unwrap().len(), 1);

        let mut md = spm();
        if let Some(Value::Array(a)) = md.get_mut("tokenizer.ggml.tokens") {
            a[270] = s("");
        }
        let t = Tokenizer::from_metadata(&md).unwrap();
        assert_eq!(t.token_text(270), Some("[EMPTY_270]"));

        // The free functions never panic on garbage.
        let mut md = Metadata::new();
        assert!(!adds_bos(&md));
        assert!(end_of_generation_ids(&md).is_empty());
        md.insert("tokenizer.ggml.tokens".into(), Value::U64(3));
        assert!(!adds_bos(&md));
        assert!(end_of_generation_ids(&md).is_empty());
    }
}

/// Throughput, for the record (`cargo test --release -- --ignored --nocapture encode_speed`).
#[test]
#[ignore = "timing only"]
fn encode_speed() {
    let fx: TokenizeFixture = read_json(&fixture_dir("gemma3").join("tokenize.json"));
    let long = &fx.cases.last().unwrap().text;
    for file in [SMOLLM2, GEMMA3] {
        let Some(t) = tokenizer(file) else { continue };
        let t0 = Instant::now();
        let mut n = 0;
        for _ in 0..20 {
            n += t.encode(long, true).unwrap().len();
        }
        let el = t0.elapsed();
        let ids = t.encode(long, true).unwrap();
        let t1 = Instant::now();
        for _ in 0..20 {
            let mut d = t.stream_decoder();
            for &id in &ids {
                d.push(id).unwrap();
            }
            d.finish().unwrap();
        }
        eprintln!(
            "{file}: encode {:.1} MB/s ({} tokens per {} bytes), stream-decode {:.2} µs/token",
            (20 * long.len()) as f64 / el.as_secs_f64() / 1e6,
            n / 20,
            long.len(),
            t1.elapsed().as_secs_f64() * 1e6 / (20 * ids.len()) as f64
        );
    }
}
