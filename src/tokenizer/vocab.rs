//! The vocabulary as llama.cpp sees it: token texts, per-token attributes, the special token ids
//! and the flags that steer encoding and decoding, all read from GGUF metadata.
//!
//! Everything here follows llama.cpp's `llama_vocab::impl::load` (the reference for correctness):
//! its per-model defaults, which metadata keys override them, which tokens it promotes to
//! control tokens by their text, and which tokens end generation.

use std::collections::BTreeSet;

use candle_core::quantized::gguf_file::Value;
use serde::{Deserialize, Serialize};

use super::pretok::PreTokenizer;
use crate::error::{Error, Result};
use crate::gguf::{invalid, value_kind, Metadata};

/// Per-token attributes, llama.cpp's `llama_token_attr` bits.
pub(crate) mod attr {
    pub const UNDEFINED: u16 = 0;
    pub const UNKNOWN: u16 = 1 << 0;
    pub const UNUSED: u16 = 1 << 1;
    pub const NORMAL: u16 = 1 << 2;
    pub const CONTROL: u16 = 1 << 3;
    pub const USER_DEFINED: u16 = 1 << 4;
    pub const BYTE: u16 = 1 << 5;

    /// GGUF `tokenizer.ggml.token_type` values (llama.cpp's `llama_token_type`) to attributes.
    pub fn from_token_type(t: i64) -> u16 {
        match t {
            1 => NORMAL,
            2 => UNKNOWN,
            3 => CONTROL,
            4 => USER_DEFINED,
            5 => UNUSED,
            6 => BYTE,
            _ => UNDEFINED,
        }
    }
}

pub(crate) const KEY_MODEL: &str = "tokenizer.ggml.model";
pub(crate) const KEY_PRE: &str = "tokenizer.ggml.pre";
pub(crate) const KEY_TOKENS: &str = "tokenizer.ggml.tokens";
pub(crate) const KEY_TYPES: &str = "tokenizer.ggml.token_type";
pub(crate) const KEY_SCORES: &str = "tokenizer.ggml.scores";
pub(crate) const KEY_MERGES: &str = "tokenizer.ggml.merges";

/// The two tokenizer families wick supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenizerKind {
    /// `tokenizer.ggml.model = llama`: SentencePiece BPE with byte fallback (Llama 2, Mistral,
    /// TinyLlama, Gemma...).
    SentencePiece,
    /// `tokenizer.ggml.model = gpt2`: byte-level BPE with stored merges (GPT-2, Llama 3, Qwen,
    /// SmolLM...).
    ByteLevelBpe,
}

/// Flags and special ids: everything about the vocabulary except the token texts. This is the
/// part of a built tokenizer that `to_json` stores beside the `tokenizers` JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Config {
    pub kind: TokenizerKind,
    /// `tokenizer.ggml.pre` as written in the file (empty when absent).
    pub pre: String,
    pub n_tokens: usize,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    /// SentencePiece: prefix every text fragment with a space; both kinds: drop one leading
    /// space from the first decoded token.
    pub add_space_prefix: bool,
    /// llama.cpp's `clean_spaces` decode post-pass (" ." -> ".", " 's" -> "'s", ...).
    pub clean_spaces: bool,
    /// Tokens that end generation, sorted.
    pub eog: Vec<u32>,
    /// Attributes of every token whose attribute is not NORMAL (the rest are NORMAL).
    pub attrs_not_normal: Vec<(u32, u16)>,
}

/// The vocabulary: texts and attributes by id, plus the [`Config`].
pub(crate) struct Vocab {
    pub tokens: Vec<String>,
    pub attrs: Vec<u16>,
    pub cfg: Config,
    pub index: TokenIndex,
}

/// Token text to id, as an open-addressing table of ids (the texts stay in `tokens`, so a
/// 262,144-token vocabulary costs one megabyte here, not a second copy of every string).
pub(crate) struct TokenIndex {
    slots: Vec<u32>,
    mask: usize,
}

const EMPTY: u32 = u32::MAX;

fn hash(text: &str) -> usize {
    // FNV-1a, folded: fast on short keys, and no dependency.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in text.as_bytes() {
        h = (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    (h ^ (h >> 29)) as usize
}

impl TokenIndex {
    /// Indexes `tokens`; `Err((first, second))` for a duplicate text.
    pub fn new(tokens: &[String]) -> std::result::Result<Self, (usize, usize)> {
        let cap = (tokens.len() * 2).next_power_of_two().max(16);
        let mut slots = vec![EMPTY; cap];
        let mask = cap - 1;
        for (id, t) in tokens.iter().enumerate() {
            let mut i = hash(t) & mask;
            loop {
                match slots[i] {
                    EMPTY => {
                        slots[i] = id as u32;
                        break;
                    }
                    other if tokens[other as usize] == *t => return Err((other as usize, id)),
                    _ => i = (i + 1) & mask,
                }
            }
        }
        Ok(Self { slots, mask })
    }

    pub fn get(&self, tokens: &[String], text: &str) -> Option<u32> {
        let mut i = hash(text) & self.mask;
        loop {
            match self.slots[i] {
                EMPTY => return None,
                id if tokens[id as usize] == text => return Some(id),
                _ => i = (i + 1) & self.mask,
            }
        }
    }
}

pub(crate) fn value_as_i64(v: &Value) -> Option<i64> {
    Some(match *v {
        Value::U8(x) => x as i64,
        Value::I8(x) => x as i64,
        Value::U16(x) => x as i64,
        Value::I16(x) => x as i64,
        Value::U32(x) => x as i64,
        Value::I32(x) => x as i64,
        Value::U64(x) => i64::try_from(x).ok()?,
        Value::I64(x) => x,
        _ => return None,
    })
}

fn value_as_f32(v: &Value) -> Option<f32> {
    match *v {
        Value::F32(x) => Some(x),
        Value::F64(x) => Some(x as f32),
        _ => value_as_i64(v).map(|x| x as f32),
    }
}

/// `tokenizer.ggml.tokens` as a slice of strings, or a clear error.
pub(crate) fn token_array(md: &Metadata) -> Result<&[Value]> {
    let v = md
        .get(KEY_TOKENS)
        .ok_or_else(|| Error::MissingMetadata(KEY_TOKENS.into()))?;
    let arr = match v {
        Value::Array(a) => a.as_slice(),
        v => {
            return Err(invalid(
                KEY_TOKENS,
                format!("expected an array of strings, found {}", value_kind(v)),
            ))
        }
    };
    if arr.is_empty() {
        return Err(invalid(KEY_TOKENS, "the vocabulary is empty"));
    }
    if let Some((i, v)) = arr
        .iter()
        .enumerate()
        .find(|(_, v)| !matches!(v, Value::String(_)))
    {
        return Err(invalid(
            KEY_TOKENS,
            format!(
                "expected an array of strings, but element {i} is {}",
                value_kind(v)
            ),
        ));
    }
    Ok(arr)
}

fn token_str(v: &Value) -> &str {
    match v {
        Value::String(s) => s,
        _ => "",
    }
}

/// `tokenizer.ggml.token_type` as attributes (all NORMAL when absent).
fn token_attrs(md: &Metadata, n_tokens: usize) -> Result<Vec<u16>> {
    let Some(v) = md.get(KEY_TYPES) else {
        return Ok(vec![attr::NORMAL; n_tokens]);
    };
    let arr = match v {
        Value::Array(a) => a,
        v => {
            return Err(invalid(
                KEY_TYPES,
                format!("expected an array of integers, found {}", value_kind(v)),
            ))
        }
    };
    if arr.len() < n_tokens {
        return Err(invalid(
            KEY_TYPES,
            format!(
                "has {} entries but the vocabulary has {n_tokens} tokens",
                arr.len()
            ),
        ));
    }
    arr[..n_tokens]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            value_as_i64(v).map(attr::from_token_type).ok_or_else(|| {
                invalid(
                    KEY_TYPES,
                    format!(
                        "expected an array of integers, but element {i} is {}",
                        value_kind(v)
                    ),
                )
            })
        })
        .collect()
}

/// `tokenizer.ggml.scores` (all zero when absent).
pub(crate) fn token_scores(md: &Metadata, n_tokens: usize) -> Result<Vec<f32>> {
    let Some(v) = md.get(KEY_SCORES) else {
        return Ok(vec![0.0; n_tokens]);
    };
    let arr = match v {
        Value::Array(a) => a,
        v => {
            return Err(invalid(
                KEY_SCORES,
                format!("expected an array of numbers, found {}", value_kind(v)),
            ))
        }
    };
    if arr.len() < n_tokens {
        return Err(invalid(
            KEY_SCORES,
            format!(
                "has {} entries but the vocabulary has {n_tokens} tokens",
                arr.len()
            ),
        ));
    }
    arr[..n_tokens]
        .iter()
        .enumerate()
        .map(|(i, v)| {
            value_as_f32(v).ok_or_else(|| {
                invalid(
                    KEY_SCORES,
                    format!(
                        "expected an array of numbers, but element {i} is {}",
                        value_kind(v)
                    ),
                )
            })
        })
        .collect()
}

fn opt_bool(md: &Metadata, key: &str) -> Option<bool> {
    match md.get(key) {
        Some(Value::Bool(b)) => Some(*b),
        Some(v) => value_as_i64(v).map(|x| x != 0),
        None => None,
    }
}

fn opt_str<'a>(md: &'a Metadata, key: &str) -> Option<&'a str> {
    match md.get(key) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    }
}

/// What the metadata says before the token list is looked at: the family, the pre-tokenizer,
/// the add-BOS/EOS flags and the special ids (llama.cpp's defaults, then the file's values).
pub(crate) struct Header {
    pub kind: TokenizerKind,
    pub pre: String,
    pub bos: Option<u32>,
    pub eos: Option<u32>,
    pub eot: Option<u32>,
    pub eom: Option<u32>,
    pub unk: Option<u32>,
    pub fim_pad: Option<u32>,
    pub fim_rep: Option<u32>,
    pub fim_sep: Option<u32>,
    pub add_bos: bool,
    pub add_eos: bool,
    pub add_space_prefix: bool,
    pub clean_spaces: bool,
}

impl Header {
    pub fn read(md: &Metadata, n_tokens: usize) -> Result<Self> {
        let model = match md.get(KEY_MODEL) {
            Some(Value::String(s)) => s.as_str(),
            Some(v) => {
                return Err(invalid(
                    KEY_MODEL,
                    format!("expected a string, found {}", value_kind(v)),
                ))
            }
            None => return Err(Error::MissingMetadata(KEY_MODEL.into())),
        };
        let pre = opt_str(md, KEY_PRE).unwrap_or("").to_string();
        let (kind, mut bos, mut eos, mut unk) = match model {
            "llama" => (TokenizerKind::SentencePiece, Some(1), Some(2), Some(0)),
            "gpt2" => (TokenizerKind::ByteLevelBpe, Some(11), Some(11), None),
            other => {
                return Err(Error::Tokenizer(format!(
                    "tokenizer model `{other}` is not supported (wick supports `llama` \
                     SentencePiece and `gpt2` byte-level BPE vocabularies)"
                )))
            }
        };
        let (mut add_bos, mut add_space_prefix, mut clean_spaces) = match kind {
            TokenizerKind::SentencePiece => (true, true, false),
            TokenizerKind::ByteLevelBpe => {
                let p = PreTokenizer::for_pre(&pre);
                if p.no_bos {
                    bos = None;
                }
                (p.add_bos, false, p.clean_spaces)
            }
        };
        let mut add_eos = false;
        if let Some(b) = opt_bool(md, "tokenizer.ggml.add_space_prefix") {
            add_space_prefix = b;
        }
        if kind == TokenizerKind::SentencePiece {
            clean_spaces = false;
        }
        let in_range = |id: Option<u32>| id.filter(|&i| (i as usize) < n_tokens);
        bos = in_range(bos);
        eos = in_range(eos);
        unk = in_range(unk);
        // The file's ids win when they are in range (llama.cpp keeps its default otherwise).
        let id = |key: &str, default: Option<u32>| -> Option<u32> {
            match md.get(key).and_then(value_as_i64) {
                Some(x) if x >= 0 && (x as usize) < n_tokens => Some(x as u32),
                _ => default,
            }
        };
        bos = id("tokenizer.ggml.bos_token_id", bos);
        eos = id("tokenizer.ggml.eos_token_id", eos);
        unk = id("tokenizer.ggml.unknown_token_id", unk);
        let eot = id("tokenizer.ggml.eot_token_id", None);
        let eom = id("tokenizer.ggml.eom_token_id", None);
        let fim_pad = id("tokenizer.ggml.fim_pad_token_id", None);
        let fim_rep = id("tokenizer.ggml.fim_rep_token_id", None);
        let fim_sep = id("tokenizer.ggml.fim_sep_token_id", None);
        if let Some(b) = opt_bool(md, "tokenizer.ggml.add_bos_token") {
            add_bos = b;
        }
        if let Some(b) = opt_bool(md, "tokenizer.ggml.add_eos_token") {
            add_eos = b;
        }
        Ok(Self {
            kind,
            pre,
            bos,
            eos,
            eot,
            eom,
            unk,
            fim_pad,
            fim_rep,
            fim_sep,
            add_bos,
            add_eos,
            add_space_prefix,
            clean_spaces,
        })
    }
}

/// Texts llama.cpp treats as end-of-turn / end-of-generation markers wherever they appear in a
/// vocabulary (it also marks them as control tokens).
pub(crate) const EOG_TEXTS: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
    "[e~[",
];

/// Fill-in-the-middle marker texts llama.cpp recognises (it marks them as control tokens; the
/// pad, repo and file-separator ones also end generation).
const FIM_PRE_TEXTS: &[&str] = &[
    "<|fim_prefix|>",
    "<fim-prefix>",
    "<fim_prefix>",
    "<｜fim▁begin｜>",
    "<PRE>",
    "▁<PRE>",
    "<|code_prefix|>",
    "<|prefix|>",
];
const FIM_SUF_TEXTS: &[&str] = &[
    "<|fim_suffix|>",
    "<fim-suffix>",
    "<fim_suffix>",
    "<｜fim▁hole｜>",
    "<SUF>",
    "▁<SUF>",
    "<|code_suffix|>",
    "<|suffix|>",
];
const FIM_MID_TEXTS: &[&str] = &[
    "<|fim_middle|>",
    "<fim-middle>",
    "<fim_middle>",
    "<｜fim▁end｜>",
    "<MID>",
    "▁<MID>",
    "<|code_middle|>",
    "<|middle|>",
];
const FIM_PAD_TEXTS: &[&str] = &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"];
const FIM_REP_TEXTS: &[&str] = &[
    "<|fim_repo|>",
    "<|repo_name|>",
    "<fim-repo>",
    "<REPO>",
    "<reponame>",
];
const FIM_SEP_TEXTS: &[&str] = &["<|file_sep|>"];

/// The end-of-generation set and the attribute changes llama.cpp derives from token texts.
/// `text(id)` gives the token text; `attrs` is updated in place.
pub(crate) fn detect_eog<'t>(
    h: &Header,
    n_tokens: usize,
    text: impl Fn(usize) -> &'t str,
    attrs: &mut [u16],
) -> Vec<u32> {
    // Every marker text starts with one of these bytes ('▁' is E2 ..).
    let candidate = |t: &str| matches!(t.as_bytes().first(), Some(b'<' | b'[' | b'_' | 0xE2));
    let (mut fim_pad, mut fim_rep, mut fim_sep) = (h.fim_pad, h.fim_rep, h.fim_sep);
    let mut eog = BTreeSet::new();
    for (i, a) in attrs.iter_mut().enumerate().take(n_tokens) {
        let t = text(i);
        if !candidate(t) {
            continue;
        }
        let is_eog = EOG_TEXTS.contains(&t);
        if is_eog {
            eog.insert(i as u32);
        }
        if FIM_PAD_TEXTS.contains(&t) && fim_pad.is_none() {
            fim_pad = Some(i as u32);
        }
        if FIM_REP_TEXTS.contains(&t) && fim_rep.is_none() {
            fim_rep = Some(i as u32);
        }
        if FIM_SEP_TEXTS.contains(&t) && fim_sep.is_none() {
            fim_sep = Some(i as u32);
        }
        let is_fim = FIM_PRE_TEXTS.contains(&t)
            || FIM_SUF_TEXTS.contains(&t)
            || FIM_MID_TEXTS.contains(&t)
            || FIM_PAD_TEXTS.contains(&t)
            || FIM_REP_TEXTS.contains(&t)
            || FIM_SEP_TEXTS.contains(&t);
        if is_eog || is_fim || t == "<|eom_id|>" {
            *a |= attr::CONTROL;
        }
        // gpt-oss: these structural tokens are always rendered.
        if matches!(
            t,
            "<|channel|>" | "<|message|>" | "<|start|>" | "<|constrain|>"
        ) {
            *a = attr::USER_DEFINED;
        }
    }
    eog.extend([fim_pad, fim_rep, fim_sep].into_iter().flatten());
    eog.extend([h.eos, h.eot, h.eom].into_iter().flatten());
    // (llama.cpp also picks an EOT token by text when the file names none; every such text is
    // in EOG_TEXTS, so the set is the same.)
    let find =
        |eog: &BTreeSet<u32>, s: &str| eog.iter().copied().find(|&id| text(id as usize) == s);
    // o200k_harmony / solar-open: `<|end|>` does not end generation there.
    let harmony = find(&eog, "<|return|>").is_some() && find(&eog, "<|call|>").is_some();
    let solar = find(&eog, "<|calls|>").is_some() && find(&eog, "<|flush|>").is_some();
    if harmony || solar {
        if let Some(end) = find(&eog, "<|end|>") {
            eog.remove(&end);
            attrs[end as usize] = attr::USER_DEFINED;
        }
    }
    // Gemma 4 / PaddleOCR: `</s>` is an ordinary token when `<|tool_response>` exists.
    if find(&eog, "<|tool_response>").is_some() {
        if let Some(s) = find(&eog, "</s>") {
            eog.remove(&s);
            attrs[s as usize] = attr::NORMAL;
        }
    }
    eog.into_iter().collect()
}

impl Vocab {
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let arr = token_array(md)?;
        let n_tokens = arr.len();
        if n_tokens > u32::MAX as usize {
            return Err(invalid(KEY_TOKENS, "more tokens than fit in a u32 id"));
        }
        let h = Header::read(md, n_tokens)?;
        let mut attrs = token_attrs(md, n_tokens)?;
        let tokens: Vec<String> = arr
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let s = token_str(v);
                if s.is_empty() {
                    format!("[EMPTY_{i}]")
                } else {
                    s.to_string()
                }
            })
            .collect();
        let index = TokenIndex::new(&tokens).map_err(|(a, b)| {
            invalid(
                KEY_TOKENS,
                format!(
                    "duplicate token {:?} at ids {a} and {b} (llama.cpp rejects this too)",
                    tokens[a]
                ),
            )
        })?;
        let eog = detect_eog(&h, n_tokens, |i| tokens[i].as_str(), &mut attrs);
        let check = |what: &str, key: &str, on: bool, id: Option<u32>| -> Result<()> {
            if on && id.is_none() {
                return Err(invalid(
                    key,
                    format!("the file asks to add {what} but names no valid {what} token id"),
                ));
            }
            Ok(())
        };
        check("BOS", "tokenizer.ggml.add_bos_token", h.add_bos, h.bos)?;
        check("EOS", "tokenizer.ggml.add_eos_token", h.add_eos, h.eos)?;
        let attrs_not_normal = attrs
            .iter()
            .enumerate()
            .filter(|(_, &a)| a != attr::NORMAL)
            .map(|(i, &a)| (i as u32, a))
            .collect();
        let cfg = Config {
            kind: h.kind,
            pre: h.pre.clone(),
            n_tokens,
            bos: h.bos,
            eos: h.eos,
            eot: h.eot,
            eom: h.eom,
            unk: h.unk,
            add_bos: h.add_bos,
            add_eos: h.add_eos,
            add_space_prefix: h.add_space_prefix,
            clean_spaces: h.clean_spaces,
            eog,
            attrs_not_normal,
        };
        Ok(Self {
            tokens,
            attrs,
            cfg,
            index,
        })
    }

    /// Rebuilds the vocabulary from a stored [`Config`] and the token texts by id.
    pub fn from_parts(cfg: Config, tokens: Vec<String>) -> Result<Self> {
        if tokens.len() != cfg.n_tokens {
            return Err(Error::Tokenizer(format!(
                "stored tokenizer is inconsistent: {} tokens, expected {}",
                tokens.len(),
                cfg.n_tokens
            )));
        }
        let mut attrs = vec![attr::NORMAL; cfg.n_tokens];
        for &(id, a) in &cfg.attrs_not_normal {
            match attrs.get_mut(id as usize) {
                Some(slot) => *slot = a,
                None => {
                    return Err(Error::Tokenizer(format!(
                        "stored tokenizer names token {id}, out of range"
                    )))
                }
            }
        }
        let index = TokenIndex::new(&tokens).map_err(|(a, b)| {
            Error::Tokenizer(format!("stored tokenizer has token {a} twice (also {b})"))
        })?;
        Ok(Self {
            tokens,
            attrs,
            cfg,
            index,
        })
    }

    pub fn id(&self, text: &str) -> Option<u32> {
        self.index.get(&self.tokens, text)
    }
}
