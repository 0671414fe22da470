//! Opening GGUF files: the real models' cards, and every kind of bad file giving a typed error
//! (never a panic, never a huge allocation driven by a lying header).

mod common;

use std::sync::Arc;

use candle_core::quantized::gguf_file::Value;
use common::*;
use wick::{Engine, Error, Gguf, ModelCard};

#[test]
fn smollm2_card() {
    let g = Gguf::open(&model_path(SMOLLM2)).unwrap();
    let c = ModelCard::from_gguf(&g).unwrap();
    assert_eq!(c.architecture, "llama");
    assert_eq!(
        (
            c.block_count,
            c.embedding_length,
            c.head_count,
            c.head_count_kv
        ),
        (30, 576, 9, 3)
    );
    assert_eq!(c.context_length, 8192);
    assert_eq!(c.vocab_size, 49152);
    assert_eq!(c.tokenizer_model, "gpt2");
    assert_eq!(c.file_type.as_deref(), Some("Q4_1"));
    assert!(c.quant_types.contains_key("Q4_1") && c.quant_types.contains_key("Q8_0"));
    assert!(
        (134_000_000..136_000_000).contains(&c.parameters),
        "{}",
        c.parameters
    );
    assert_eq!(c.license.as_deref(), Some("apache-2.0"));
    assert!(c.has_chat_template);
    assert!(!c.add_bos);
    assert!(
        c.eot_tokens.iter().any(|t| t.text == "<|im_end|>"),
        "{:?}",
        c.eot_tokens
    );
}

#[test]
fn gemma3_card() {
    let g = Gguf::open(&model_path(GEMMA3)).unwrap();
    let c = ModelCard::from_gguf(&g).unwrap();
    assert_eq!(c.architecture, "gemma3");
    assert_eq!(
        (
            c.block_count,
            c.embedding_length,
            c.head_count,
            c.head_count_kv
        ),
        (18, 640, 4, 1)
    );
    assert_eq!(c.vocab_size, 262144);
    assert_eq!(c.file_type.as_deref(), Some("Q4_K_M"));
    for q in ["Q8_0", "Q5_0", "Q4_K", "Q6_K"] {
        assert!(
            c.quant_types.contains_key(q),
            "{q} missing from {:?}",
            c.quant_types
        );
    }
    assert!(
        (260_000_000..300_000_000).contains(&c.parameters),
        "{}",
        c.parameters
    );
    assert_eq!(c.license.as_deref(), Some("gemma"));
    assert!(c.add_bos);
    assert_eq!(c.bos_token.as_ref().map(|t| t.id), Some(2));
    assert!(
        c.eot_tokens.iter().any(|t| t.text == "<end_of_turn>"),
        "{:?}",
        c.eot_tokens
    );
}

#[test]
fn tiny_model_loads() {
    let g = open_bytes(Tiny::default().bytes()).unwrap();
    Engine::load(&g).unwrap();
}

#[test]
fn every_truncation_of_a_real_header_is_a_typed_error() {
    // The first 2 MiB hold the whole header and the start of the tensor data.
    let bytes = std::fs::read(model_path(SMOLLM2)).unwrap();
    let full = bytes.len();
    let mut cuts: Vec<usize> = (0..64).chain((64..2 << 20).step_by(7919)).collect();
    cuts.extend([full / 2, full - 1]);
    for cut in cuts {
        let r = open_bytes(bytes[..cut].to_vec());
        match r {
            Err(Error::Truncated(_) | Error::Corrupt(_)) => {}
            Err(e) => panic!("cut at {cut}: unexpected error kind {e:?}"),
            Ok(_) => panic!("cut at {cut}: a truncated file opened"),
        }
    }
}

#[test]
fn not_gguf_files_are_named_as_such() {
    let html = b"<!DOCTYPE html><html><body>404 Not Found</body></html>".to_vec();
    match open_bytes(html) {
        Err(Error::NotGguf(m)) => assert!(m.contains("HTML"), "{m}"),
        other => panic!("{:?}", other.err()),
    }
    assert!(matches!(
        open_bytes(b"PK\x03\x04 zip file".to_vec()),
        Err(Error::NotGguf(_))
    ));
    assert!(matches!(open_bytes(Vec::new()), Err(Error::Truncated(_))));
}

/// Byte offset of the first occurrence of `needle`.
fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

#[test]
fn a_lying_string_length_does_not_allocate() {
    let mut bytes = Tiny::default().bytes();
    // The first key's length prefix sits right after the 24-byte header.
    bytes[24..32].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        open_bytes(bytes),
        Err(Error::Corrupt(_) | Error::Truncated(_))
    ));
}

#[test]
fn a_lying_tensor_count_is_rejected() {
    let mut bytes = Tiny::default().bytes();
    bytes[8..16].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        open_bytes(bytes),
        Err(Error::Corrupt(_) | Error::Truncated(_))
    ));
}

#[test]
fn a_tensor_past_the_end_is_truncation() {
    let bytes = Tiny::default().bytes();
    let end = bytes.len();
    let r = open_bytes(bytes[..end - 4096].to_vec());
    assert!(matches!(r, Err(Error::Truncated(_))), "{:?}", r.err());
}

#[test]
fn a_huge_tensor_offset_is_rejected() {
    let mut bytes = Tiny::default().bytes();
    // The tensor info of token_embd.weight ends with its u64 offset (0): make it huge.
    let at = find(&bytes, b"token_embd.weight") + "token_embd.weight".len() + 4 + 16 + 4;
    bytes[at..at + 8].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(matches!(open_bytes(bytes), Err(Error::Truncated(_))));
}

#[test]
fn unsupported_quant_type_is_named() {
    // ggml type 39 is MXFP4, which wick does not run yet; 99 is no type at all. Either way the
    // file opens and has a card that counts the tensor; loading names the tensor and the type.
    for (id, name) in [(39u32, "MXFP4"), (99, "type 99")] {
        let mut bytes = Tiny::default().bytes();
        let at = find(&bytes, b"token_embd.weight") + "token_embd.weight".len() + 4 + 16;
        bytes[at..at + 4].copy_from_slice(&id.to_le_bytes());
        let g = open_bytes(bytes).unwrap();
        let card = wick::ModelCard::from_gguf(&g).unwrap();
        assert!(
            card.quant_types.contains_key(name),
            "{:?}",
            card.quant_types
        );
        match Engine::load(&g) {
            Err(e @ Error::UnsupportedQuant { .. }) => {
                assert_eq!(e.kind(), "unsupported_model");
                assert!(e.to_string().contains("token_embd.weight"), "{e}");
                assert!(e.to_string().contains(name), "{e}");
            }
            other => panic!("{:?}", other.err()),
        }
    }
}

/// A file llama.cpp's own quantizer wrote (scripts/tiny_models.py: the tiny Qwen 2 model to
/// IQ4_XS; its rows are narrower than 256, so llama.cpp falls back to IQ4_NL, as real IQ files
/// do for such rows): wick's reader opens it and the card says what the file holds (the model
/// runs: tests/architectures.rs).
#[test]
fn a_llama_cpp_iq_file_has_a_card() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/tiny/qwen2_iq4_xs.gguf");
    let g = open_bytes(std::fs::read(&path).unwrap()).unwrap();
    let card = wick::ModelCard::from_gguf(&g).unwrap();
    assert_eq!(card.file_type.as_deref(), Some("IQ4_XS"));
    assert_eq!(
        card.quant_types.keys().collect::<Vec<_>>(),
        ["F32", "IQ4_NL", "Q8_0"]
    );
    assert_eq!(card.architecture, "qwen2");
    assert_eq!(card.vocab_size, 262);
    // 14 matrices of IQ4_NL: 18 bytes per 32 weights.
    let iq: u64 = g.unrunnable().iter().map(|t| t.bytes).sum();
    let weights: u64 = g.unrunnable().iter().map(|t| t.elements).sum();
    assert_eq!(g.unrunnable().len(), 14);
    assert_eq!(iq, weights / 32 * 18);
    g.check_runnable().unwrap();
}

/// The IQ2 / IQ3 files llama.cpp's quantizer wrote (tests/architectures.rs runs them): their
/// tensors are the engine's own types, kept as stored, none set aside; the card names the type.
#[test]
fn iq2_and_iq3_tensors_are_runnable_as_stored() {
    for (file, ty) in [
        ("qwen2_wide_iq2_xxs", "IQ2_XXS"),
        ("qwen2_wide_iq2_xs", "IQ2_XS"),
        ("qwen2_wide_iq2_s", "IQ2_S"),
        ("qwen2_wide_iq3_xxs", "IQ3_XXS"),
        ("qwen2_wide_iq3_s", "IQ3_S"),
    ] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("tests/fixtures/tiny/{file}.gguf"));
        let g = open_bytes(std::fs::read(&path).unwrap()).unwrap();
        assert!(g.unrunnable().is_empty(), "{file}");
        let card = wick::ModelCard::from_gguf(&g).unwrap();
        assert_eq!(
            card.quant_types.keys().collect::<Vec<_>>(),
            ["F32", ty],
            "{file}"
        );
        let n = g
            .tensors()
            .filter(|t| wick::gguf::qtype_name(t.qtype) == ty)
            .count();
        assert_eq!(n, 8, "{file}: token_embd and seven matrices");
    }
}

/// A split model (gguf-py's `split_max_tensors`, llama.cpp's shard format and naming; the script
/// checked that llama.cpp loads the shards to the single file's logits): the first shard's path
/// opens all three, and the model scores as the single file does. One shard alone, shards out of
/// order and a missing shard are typed errors.
#[test]
fn a_split_model_opens_from_its_first_shard() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tiny");
    let shard = |i: usize| dir.join(format!("split/qwen3-{i:05}-of-00003.gguf"));
    let split = Engine::open(&shard(1)).unwrap();
    let single = Engine::open(&dir.join("qwen3.gguf")).unwrap();
    assert_eq!(split.card.architecture, "qwen3");
    assert_eq!(split.card.parameters, single.card.parameters);
    let ids: Vec<u32> = (0..24).map(|i| (i * 37 % 250) as u32).collect();
    let logits = |e: Engine| {
        let mut rows = Vec::new();
        wick::Session::new(std::sync::Arc::new(e), 64)
            .score(&ids, |_, l| rows.push(l.to_vec()))
            .unwrap();
        rows
    };
    assert_eq!(
        logits(split),
        logits(single),
        "the same weights, the same logits"
    );

    let bytes = |i: usize| -> wick::gguf::FileBytes {
        std::sync::Arc::new(std::fs::read(shard(i)).unwrap())
    };
    let alone = wick::Gguf::from_bytes(bytes(1)).err().unwrap();
    assert_eq!(alone.kind(), "unsupported_model");
    assert!(alone.to_string().contains("shard 1 of 3"), "{alone}");
    let swapped = wick::Gguf::from_shards(vec![bytes(1), bytes(3), bytes(2)])
        .err()
        .unwrap();
    assert!(
        matches!(swapped, Error::InvalidMetadata { .. }),
        "{swapped}"
    );
    let short = wick::Gguf::from_shards(vec![bytes(1), bytes(2)])
        .err()
        .unwrap();
    assert!(short.to_string().contains("3, but 2 files"), "{short}");

    let tmp = std::env::temp_dir().join(format!("wick-split-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    for i in 1..=2 {
        std::fs::copy(shard(i), tmp.join(format!("qwen3-{i:05}-of-00003.gguf"))).unwrap();
    }
    let missing = wick::Gguf::open(&tmp.join("qwen3-00001-of-00003.gguf"))
        .err()
        .unwrap();
    std::fs::remove_dir_all(&tmp).unwrap();
    assert_eq!(missing.kind(), "io");
    assert!(
        missing.to_string().contains("qwen3-00003-of-00003.gguf"),
        "{missing}"
    );
}

#[test]
fn unsupported_architecture_is_named() {
    let t = Tiny::default();
    let (mut meta, tensors) = t.parts();
    set(
        &mut meta,
        "general.architecture",
        Value::String("mamba".into()),
    );
    let g = open_bytes(write_gguf(&meta, &tensors)).unwrap();
    match Engine::load(&g) {
        Err(e @ Error::UnsupportedArchitecture(_)) => {
            assert!(
                e.to_string().contains("mamba") && e.to_string().contains("gemma3"),
                "{e}"
            );
            assert_eq!(e.kind(), "unsupported_model");
        }
        other => panic!("{:?}", other.err()),
    }
}

#[test]
fn inconsistent_metadata_is_named() {
    let t = Tiny::default();
    let (meta, tensors) = t.parts();
    // Heads that do not divide the width.
    let mut m = meta.clone();
    set(&mut m, "llama.attention.head_count", Value::U32(5));
    assert!(matches!(
        Engine::load(&open_bytes(write_gguf(&m, &tensors)).unwrap()),
        Err(Error::InvalidMetadata { .. })
    ));
    // A width that does not match the tensors.
    let mut m = meta.clone();
    set(&mut m, "llama.embedding_length", Value::U32(128));
    match Engine::load(&open_bytes(write_gguf(&m, &tensors)).unwrap()) {
        Err(Error::TensorShape { name, .. }) => assert_eq!(name, "token_embd.weight"),
        other => panic!("{:?}", other.err()),
    }
    // More layers than the file has.
    let mut m = meta.clone();
    set(&mut m, "llama.block_count", Value::U32(3));
    match Engine::load(&open_bytes(write_gguf(&m, &tensors)).unwrap()) {
        Err(Error::MissingTensor(name)) => assert!(name.starts_with("blk.2."), "{name}"),
        other => panic!("{:?}", other.err()),
    }
    // A missing required key.
    let m: Meta = meta
        .iter()
        .filter(|(k, _)| k != "llama.feed_forward_length")
        .cloned()
        .collect();
    assert!(matches!(
        Engine::load(&open_bytes(write_gguf(&m, &tensors)).unwrap()),
        Err(Error::MissingMetadata(_))
    ));
    // A key of the wrong type.
    let mut m = meta.clone();
    set(&mut m, "llama.block_count", Value::String("two".into()));
    assert!(matches!(
        Engine::load(&open_bytes(write_gguf(&m, &tensors)).unwrap()),
        Err(Error::InvalidMetadata { .. })
    ));
}

#[test]
fn tensor_views_share_the_file_bytes() {
    let bytes = Arc::new(Tiny::default().bytes());
    let g = Gguf::from_bytes(bytes.clone()).unwrap();
    let t = g.tensor("token_embd.weight").unwrap();
    let base = bytes.as_ptr() as usize;
    let p = t.data.as_ptr() as usize;
    assert!(
        p >= base && p + t.data.len() <= base + bytes.len(),
        "tensor bytes were copied"
    );
}
