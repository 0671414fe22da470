//! Building `tokenizers::Tokenizer`s from the vocabulary.
//!
//! * Byte-level BPE (`gpt2`): the stored merges, the pre-tokenizer regexes of
//!   [`super::pretok`], GPT-2's byte-to-character mapping. wick encodes these vocabularies with
//!   the same pre-tokenizer and its own merge table ([`super::bpe`], built from ids in a fraction
//!   of the time); this `tokenizers` object is built only on request, for interoperability.
//! * SentencePiece (`llama`): llama.cpp merges adjacent pieces whenever their concatenation is a
//!   token, highest token score first. That is BPE whose merge list holds every split of every
//!   token into two tokens, ranked by the token's score (ties: lower id first), with text escaped
//!   (" " -> "▁", plus a leading "▁" when `add_space_prefix`) and `<0xXX>` byte fallback. wick
//!   encodes these vocabularies with [`super::spm`] (exact on ties, and no million-merge table to
//!   build); this equivalent is built only on request, for interoperability.
//!
//! Special tokens are registered as added tokens (control and unknown ones as special) so a
//! `tokenizers` object is complete on its own, but wick's encoding bypasses `tokenizers`'
//! added-token matching: it partitions the text as llama.cpp does ([`super::special`]) and runs
//! only the normalizer, pre-tokenizer and model on the text between special tokens.

use std::collections::HashSet;

use candle_core::quantized::gguf_file::Value;
use tokenizers::decoders::byte_fallback::ByteFallback;
use tokenizers::decoders::fuse::Fuse;
use tokenizers::decoders::sequence::Sequence as DecoderSequence;
use tokenizers::decoders::strip::Strip;
use tokenizers::models::bpe::{BpeBuilder, Vocab as BpeVocab, BPE};
use tokenizers::normalizers::{Prepend, Replace, Sequence as NormalizerSequence};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::sequence::Sequence as PreSequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, NormalizerWrapper, PreTokenizerWrapper, SplitDelimiterBehavior,
    Tokenizer as HfTokenizer,
};

use super::pretok::PreTokenizer;
use super::vocab::{attr, Vocab, KEY_MERGES};
use crate::error::{Error, Result};
use crate::gguf::Metadata;

fn tk_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Tokenizer(format!("{what}: {e}"))
}

fn bpe_vocab(tokens: &[String]) -> BpeVocab {
    tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect()
}

/// Every split of every token into two tokens, ranked by the token's score (highest first,
/// then lowest id): llama.cpp's SentencePiece merge order.
pub(crate) fn derive_spm_merges(tokens: &[String], scores: &[f32]) -> Vec<(String, String)> {
    let index: HashSet<&str> = tokens.iter().map(String::as_str).collect();
    let mut order: Vec<u32> = (0..tokens.len() as u32).collect();
    order.sort_by(|&a, &b| {
        scores[b as usize]
            .total_cmp(&scores[a as usize])
            .then(a.cmp(&b))
    });
    let mut merges = Vec::with_capacity(tokens.len() * 2);
    for id in order {
        let t = tokens[id as usize].as_str();
        let mut bounds = t.char_indices().map(|(i, _)| i).skip(1).peekable();
        if bounds.peek().is_none() {
            continue;
        }
        for k in bounds {
            let (a, b) = t.split_at(k);
            if index.contains(a) && index.contains(b) {
                merges.push((a.to_string(), b.to_string()));
            }
        }
    }
    merges
}

/// `tokenizer.ggml.merges` as text pairs borrowed from the metadata, in rank order, split like
/// llama.cpp (at the first space after the first byte; an entry with no such space is skipped).
/// [`super::bpe::Bpe::new`] drops the merges that are not between tokens.
pub(crate) fn stored_merges(md: &Metadata) -> Result<Vec<(&str, &str)>> {
    let arr = match md.get(KEY_MERGES) {
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(Error::InvalidMetadata {
                key: KEY_MERGES.into(),
                reason: "expected an array of strings".into(),
            })
        }
        None => {
            return Err(Error::MissingMetadata(format!(
                "{KEY_MERGES}` (a `gpt2` byte-level BPE vocabulary needs its merges)`"
            )))
        }
    };
    let mut merges = Vec::with_capacity(arr.len());
    for (i, v) in arr.iter().enumerate() {
        let Value::String(s) = v else {
            return Err(Error::InvalidMetadata {
                key: KEY_MERGES.into(),
                reason: format!("expected an array of strings, but element {i} is not a string"),
            });
        };
        let Some(p) = s
            .as_bytes()
            .iter()
            .skip(1)
            .position(|&b| b == b' ')
            .map(|p| p + 1)
        else {
            continue;
        };
        merges.push((&s[..p], &s[p + 1..]));
    }
    Ok(merges)
}

fn split(regex: &str) -> Result<PreTokenizerWrapper> {
    Split::new(
        SplitPattern::Regex(regex.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map(PreTokenizerWrapper::Split)
    .map_err(|e| {
        tk_err(
            &format!("pre-tokenizer regex {regex:?} does not compile"),
            e,
        )
    })
}

/// The byte-level BPE pre-tokenizer: the pre type's regex splits, then GPT-2's byte mapping.
pub(crate) fn byte_level_pre_tokenizer(pre: &PreTokenizer) -> Result<PreTokenizerWrapper> {
    let mut seq = Vec::with_capacity(pre.regexes.len() + 1);
    for r in &pre.regexes {
        seq.push(split(r)?);
    }
    seq.push(PreTokenizerWrapper::ByteLevel(ByteLevel::new(
        false, false, false,
    )));
    Ok(PreTokenizerWrapper::Sequence(PreSequence::new(seq)))
}

/// The `tokenizers` equivalent of a SentencePiece vocabulary: BPE over merges derived from the
/// vocabulary (see the module docs; equal scores are ordered by id, where llama.cpp, and wick's
/// own encoder, break ties by position).
pub(crate) fn build_spm_hf(vocab: &Vocab, scores: &[f32]) -> Result<HfTokenizer> {
    let cfg = &vocab.cfg;
    let merges = derive_spm_merges(&vocab.tokens, scores);
    let mut b = BpeBuilder::new()
        .vocab_and_merges(bpe_vocab(&vocab.tokens), merges)
        .byte_fallback(true)
        .fuse_unk(true);
    if let Some(unk) = cfg.unk {
        b = b.unk_token(vocab.tokens[unk as usize].clone());
    }
    let bpe: BPE = b
        .build()
        .map_err(|e| tk_err("building the SentencePiece BPE model", e))?;
    let mut hf = HfTokenizer::new(bpe);
    let mut norm: Vec<NormalizerWrapper> = Vec::new();
    if cfg.add_space_prefix {
        norm.push(Prepend::new("\u{2581}".into()).into());
    }
    norm.push(
        Replace::new(" ", "\u{2581}")
            .map_err(|e| tk_err("normalizer", e))?
            .into(),
    );
    hf.with_normalizer(Some(NormalizerWrapper::Sequence(NormalizerSequence::new(
        norm,
    ))));
    let mut dec: Vec<DecoderWrapper> = vec![
        DecoderWrapper::Replace(Replace::new("\u{2581}", " ").map_err(|e| tk_err("decoder", e))?),
        DecoderWrapper::ByteFallback(ByteFallback::new()),
        DecoderWrapper::Fuse(Fuse::new()),
    ];
    if cfg.add_space_prefix {
        dec.push(DecoderWrapper::Strip(Strip::new(' ', 1, 0)));
    }
    hf.with_decoder(Some(DecoderWrapper::Sequence(DecoderSequence::new(dec))));
    add_special_tokens(&mut hf, vocab);
    Ok(hf)
}

/// The `tokenizers` equivalent of a byte-level BPE vocabulary: its merges (between tokens, no
/// duplicates, in rank order), the pre type's regexes, GPT-2's byte mapping.
pub(crate) fn build_bpe_hf(
    vocab: &Vocab,
    merges: Vec<(String, String)>,
    pre: &PreTokenizer,
) -> Result<HfTokenizer> {
    let bpe: BPE = BpeBuilder::new()
        .vocab_and_merges(bpe_vocab(&vocab.tokens), merges)
        .ignore_merges(pre.ignore_merges)
        .build()
        .map_err(|e| tk_err("building the byte-level BPE model", e))?;
    let mut hf = HfTokenizer::new(bpe);
    hf.with_pre_tokenizer(Some(byte_level_pre_tokenizer(pre)?));
    hf.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    add_special_tokens(&mut hf, vocab);
    Ok(hf)
}

/// Control and unknown tokens as special added tokens, user-defined ones as plain added tokens
/// (matched on the raw text).
fn add_special_tokens(hf: &mut HfTokenizer, vocab: &Vocab) {
    let mut special = Vec::new();
    let mut user = Vec::new();
    for (i, &a) in vocab.attrs.iter().enumerate() {
        let text = &vocab.tokens[i];
        if a & (attr::CONTROL | attr::UNKNOWN) != 0 {
            special.push(AddedToken::from(text.clone(), true));
        } else if a & attr::USER_DEFINED != 0 {
            user.push(AddedToken::from(text.clone(), false).normalized(false));
        }
    }
    hf.add_special_tokens(&special);
    hf.add_tokens(&user);
}
