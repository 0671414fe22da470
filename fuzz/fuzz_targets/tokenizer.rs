//! Any text through the real tokenizers of the project's two models (SmolLM2: byte-level BPE;
//! Gemma 3: SentencePiece), and any token ids back through the detokenizers, must give a value
//! or a typed error: no panic, no abort, no runaway allocation. Where the text has no special
//! token in it, the streaming decoder yields what the whole-sequence decoder does, and encoding
//! what was decoded gives the same text again. Gemma's vocabulary has a token for every byte, so
//! there decoding gives the text back exactly; SmolLM2's lacks 21 of the 256 byte tokens (0x16,
//! 0xc0, 0xff, ...), and like llama.cpp wick drops those bytes, so there the first round trip may
//! lose them and only the second must be exact (so too for Gemma on text holding U+2581, which
//! SentencePiece reads back as a space).
//!
//! Needs the real models (`scripts/fetch-models`). Run from the repository root:
//! `cargo +nightly fuzz run tokenizer fuzz/corpus/tokenizer fuzz/seeds/tokenizer -- -max_total_time=1800 -max_len=4096`
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use wick::tokenizer::Tokenizer;

/// The models, and whether their vocabulary has a token for every byte.
const MODELS: &[(&str, bool)] = &[
    ("models/SmolLM2-135M-Instruct.Q4_1.gguf", false),
    ("models/gemma-3-270m-q4_k_m.gguf", true),
];

fn tokenizers() -> &'static [(Tokenizer, bool)] {
    static TOKENIZERS: OnceLock<Vec<(Tokenizer, bool)>> = OnceLock::new();
    TOKENIZERS.get_or_init(|| {
        MODELS
            .iter()
            .map(|&(path, every_byte)| {
                let gguf = wick::Gguf::open(std::path::Path::new(path)).unwrap_or_else(|e| {
                    panic!("{path}: {e} (run scripts/fetch-models, from the repository root)")
                });
                let t = Tokenizer::from_metadata(&gguf.metadata)
                    .expect("the real models' tokenizers build");
                (t, every_byte)
            })
            .collect()
    })
}

/// Decodes `ids` whole and streamed, and checks that both give the same text.
fn decode_both_ways(t: &Tokenizer, ids: &[u32]) -> String {
    let decoded = t.decode(ids).expect("ids the tokenizer made decode");
    let mut stream = t.stream_decoder();
    let mut streamed = String::new();
    for &id in ids {
        if let Some(piece) = stream.push(id).expect("a streamed id decodes") {
            streamed.push_str(&piece);
        }
    }
    streamed.push_str(&stream.finish().expect("the stream finishes"));
    assert_eq!(
        streamed, decoded,
        "streaming decode differs from whole decode"
    );
    decoded
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks what to fuzz, the rest is the input.
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    for (t, every_byte) in tokenizers() {
        if mode % 2 == 0 {
            let text = String::from_utf8_lossy(rest);
            let _ = t.encode(&text, true);
            let Ok(ids) = t.encode(&text, false) else {
                continue;
            };
            if ids.iter().any(|&id| t.is_control(id)) {
                continue;
            }
            let decoded = decode_both_ways(t, &ids);
            // SentencePiece writes spaces as U+2581 and reads every U+2581 back as a space.
            if *every_byte && !text.contains('\u{2581}') {
                assert_eq!(decoded, text, "decode(encode(text)) differs");
            } else {
                let again = t.encode(&decoded, false).expect("decoded text encodes");
                assert_eq!(
                    decode_both_ways(t, &again),
                    decoded,
                    "a second round trip differs"
                );
            }
        } else {
            // Arbitrary ids, in range and out of it: text or a typed error.
            let n = t.vocab_size() as u32;
            let ids: Vec<u32> = rest
                .chunks(3)
                .map(|c| c.iter().fold(0u32, |a, &b| a << 8 | b as u32) % (n + 16))
                .collect();
            let _ = t.decode(&ids);
            let _ = t.decode_skip_special(&ids);
            let mut stream = t.stream_decoder();
            for &id in &ids {
                let _ = stream.push(id);
            }
            let _ = stream.finish();
        }
    }
});
