//! The tokenizer, built from GGUF metadata alone, matching llama.cpp token for token.
//!
//! A GGUF file carries its vocabulary (`tokenizer.ggml.*`): token texts, types, scores or merges,
//! special ids and flags. From these wick builds its encoder (for byte-level BPE, `tokenizers`'
//! pre-tokenizers and wick's merge table over token ids, [`bpe`]) and adds the parts of llama.cpp's
//! behaviour that `tokenizers` does not model:
//!
//! * **Special tokens in text.** Control, user-defined and unknown tokens written in the input
//!   are found the way llama.cpp's `tokenizer_st_partition` finds them (longest token first, see
//!   [`special`]); the text between them is tokenized normally. User-defined tokens are always
//!   recognised; control tokens only with `parse_special` (on in [`Tokenizer::encode`]).
//! * **BOS / EOS.** Added as `tokenizer.ggml.add_bos_token` / `add_eos_token` say, with
//!   llama.cpp's defaults when absent (SentencePiece adds BOS; byte-level BPE adds it for the
//!   Llama 3, Tekken and Chameleon pre-tokenizers only).
//! * **SentencePiece** (`tokenizer.ggml.model = llama`: Llama 2, Mistral, Gemma...): llama.cpp
//!   merges pieces by token score, leftmost first among equal scores ([`spm`]); each text
//!   fragment gets a leading space when `add_space_prefix` says so. The equivalent `tokenizers`
//!   BPE (merges derived from the vocabulary, [`build`]) is available from [`Tokenizer::hf`].
//! * **Byte-level BPE** (`gpt2`: GPT-2, Llama 3, Qwen, SmolLM...): the stored merges ([`bpe`],
//!   `tokenizers`' BPE algorithm over ids) and the pre-tokenizer regexes llama.cpp picks for
//!   `tokenizer.ggml.pre` ([`pretok`]). The equivalent `tokenizers` object is built on request
//!   ([`Tokenizer::hf`]).
//! * **Decoding** follows llama.cpp's `token_to_piece` / `detokenize` exactly (including its
//!   `clean_spaces` pass for the pre types that use it), and [`StreamDecoder`] releases the same
//!   text incrementally, never splitting a UTF-8 character.
//!
//! A tokenizer can be stored with [`Tokenizer::to_json`] and restored with
//! [`Tokenizer::from_json`] without the GGUF file.

mod bpe;
mod build;
mod detok;
mod pretok;
mod special;
mod spm;
mod vocab;

use std::ops::Range;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use tokenizers::{
    OffsetReferential, OffsetType, PreTokenizedString, PreTokenizer, PreTokenizerWrapper,
};

use crate::error::{Error, Result};
use crate::gguf::Metadata;
use bpe::Bpe;
use special::{Fragment, SpecialMatcher};
use spm::Spm;
use vocab::{attr, Config, Header, TokenizerKind as Kind, Vocab};

pub use detok::StreamDecoderState;
pub use vocab::TokenizerKind;

/// A tokenizer for one model, built from its GGUF metadata.
pub struct Tokenizer {
    vocab: Vocab,
    specials: SpecialMatcher,
    engine: Engine,
}

#[allow(clippy::large_enum_variant)] // one per tokenizer
enum Engine {
    /// SentencePiece: wick's encoder; the `tokenizers` equivalent is built on first request.
    Spm {
        spm: Spm,
        hf: OnceLock<std::result::Result<tokenizers::Tokenizer, String>>,
    },
    /// Byte-level BPE: `tokenizers`' pre-tokenizer, then wick's merges; the `tokenizers`
    /// equivalent is built on first request.
    Bpe {
        pre: PreTokenizerWrapper,
        bpe: Bpe,
        hf: OnceLock<std::result::Result<tokenizers::Tokenizer, String>>,
    },
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("kind", &self.vocab.cfg.kind)
            .field("pre", &self.vocab.cfg.pre)
            .field("vocab_size", &self.vocab.cfg.n_tokens)
            .field("bos", &self.vocab.cfg.bos)
            .field("eos", &self.vocab.cfg.eos)
            .field("add_bos", &self.vocab.cfg.add_bos)
            .finish()
    }
}

/// What [`Tokenizer::to_json`] writes: the vocabulary and settings, not derived tables.
#[derive(Serialize, Deserialize)]
struct Stored {
    format: String,
    version: u32,
    config: Config,
    tokens: Vec<String>,
    /// SentencePiece: token scores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scores: Option<Vec<f32>>,
    /// Byte-level BPE: the merges, in rank order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    merges: Option<Vec<(String, String)>>,
}

const STORED_FORMAT: &str = "wick-tokenizer";
const STORED_VERSION: u32 = 1;

impl Tokenizer {
    /// Builds the tokenizer from `tokenizer.ggml.*` metadata.
    pub fn from_metadata(md: &Metadata) -> Result<Self> {
        let vocab = Vocab::from_metadata(md)?;
        match vocab.cfg.kind {
            Kind::SentencePiece => {
                let scores = vocab::token_scores(md, vocab.cfg.n_tokens)?;
                Self::from_parts(vocab, Some(scores), None)
            }
            Kind::ByteLevelBpe => {
                let merges = build::stored_merges(md)?;
                Self::from_parts(vocab, None, Some(&merges))
            }
        }
    }

    fn from_parts(
        vocab: Vocab,
        scores: Option<Vec<f32>>,
        merges: Option<&[(&str, &str)]>,
    ) -> Result<Self> {
        let missing = |what: &str| {
            Error::Tokenizer(format!("internal: {what} missing for this tokenizer kind"))
        };
        let engine = match vocab.cfg.kind {
            Kind::SentencePiece => {
                let scores = scores.ok_or_else(|| missing("scores"))?;
                if scores.len() != vocab.cfg.n_tokens {
                    return Err(Error::Tokenizer(
                        "stored tokenizer has a score count unlike its token count".into(),
                    ));
                }
                Engine::Spm {
                    spm: Spm::new(&vocab, scores),
                    hf: OnceLock::new(),
                }
            }
            Kind::ByteLevelBpe => {
                let merges = merges.ok_or_else(|| missing("merges"))?;
                let pre = pretok::PreTokenizer::for_pre(&vocab.cfg.pre);
                Engine::Bpe {
                    bpe: Bpe::new(
                        &vocab,
                        merges.iter().copied(),
                        merges.len(),
                        pre.ignore_merges,
                    ),
                    pre: build::byte_level_pre_tokenizer(&pre)?,
                    hf: OnceLock::new(),
                }
            }
        };
        let specials = SpecialMatcher::new(&vocab.tokens, &vocab.attrs);
        Ok(Self {
            vocab,
            specials,
            engine,
        })
    }

    /// Serializes the tokenizer: its vocabulary (texts, attributes, scores or merges) and
    /// settings, as JSON. [`Tokenizer::from_json`] rebuilds the same tokenizer from it without the
    /// GGUF file.
    pub fn to_json(&self) -> Result<String> {
        let (scores, merges) = match &self.engine {
            Engine::Spm { spm, .. } => (Some(spm.scores().to_vec()), None),
            Engine::Bpe { bpe, .. } => (None, Some(self.merge_texts(bpe))),
        };
        let stored = Stored {
            format: STORED_FORMAT.into(),
            version: STORED_VERSION,
            config: self.vocab.cfg.clone(),
            tokens: self.vocab.tokens.clone(),
            scores,
            merges,
        };
        serde_json::to_string(&stored)
            .map_err(|e| Error::Tokenizer(format!("serializing the tokenizer: {e}")))
    }

    /// Restores a tokenizer written by [`Tokenizer::to_json`].
    pub fn from_json(json: &str) -> Result<Self> {
        let stored: Stored = serde_json::from_str(json)
            .map_err(|e| Error::Tokenizer(format!("not a stored wick tokenizer: {e}")))?;
        if stored.format != STORED_FORMAT || stored.version != STORED_VERSION {
            return Err(Error::Tokenizer(format!(
                "stored tokenizer has format {} version {}; this build reads {STORED_FORMAT} version {STORED_VERSION}",
                stored.format, stored.version
            )));
        }
        let vocab = Vocab::from_parts(stored.config, stored.tokens)?;
        let merges: Option<Vec<(&str, &str)>> = stored
            .merges
            .as_ref()
            .map(|m| m.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect());
        Self::from_parts(vocab, stored.scores, merges.as_deref())
    }

    /// A byte-level vocabulary's merges as text pairs, in rank order.
    fn merge_texts(&self, bpe: &Bpe) -> Vec<(String, String)> {
        let text = |id: u32| self.vocab.tokens[id as usize].clone();
        bpe.merges()
            .into_iter()
            .map(|(a, b)| (text(a), text(b)))
            .collect()
    }

    /// The `tokenizers` object equivalent to this tokenizer: model, normalizer, pre-tokenizer and
    /// decoder, with special tokens registered as added tokens. It is built on the first call. For
    /// byte-level BPE vocabularies it runs the same pre-tokenizer and merges as wick's encoder.
    /// For SentencePiece ones (about a second to build for Gemma's 262,144 tokens) it matches
    /// wick except where token scores tie (its merge ranks are unique). Either way prefer
    /// [`Tokenizer::encode`], which matches llama.cpp where `tokenizers`' own `encode` may not
    /// (special-token priority, BOS/EOS).
    pub fn hf(&self) -> Result<&tokenizers::Tokenizer> {
        match &self.engine {
            Engine::Bpe { bpe, hf, .. } => hf.get_or_init(|| {
                let pre = pretok::PreTokenizer::for_pre(&self.vocab.cfg.pre);
                build::build_bpe_hf(&self.vocab, self.merge_texts(bpe), &pre)
                    .map_err(|e| e.to_string())
            }),
            Engine::Spm { spm, hf } => hf.get_or_init(|| {
                build::build_spm_hf(&self.vocab, spm.scores()).map_err(|e| e.to_string())
            }),
        }
        .as_ref()
        .map_err(|e| Error::Tokenizer(e.clone()))
    }

    /// Encodes `text`. `add_special`: add BOS (and EOS) as the model's metadata says. Special
    /// tokens written as text in `text` are parsed (llama.cpp's `parse_special = true`).
    pub fn encode(&self, text: &str, add_special: bool) -> Result<Vec<u32>> {
        self.encode_with(text, add_special, true)
    }

    /// Like [`Tokenizer::encode`], choosing whether control tokens written in the text are parsed
    /// as such (`parse_special`; user-defined tokens always are, as in llama.cpp).
    pub fn encode_with(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
    ) -> Result<Vec<u32>> {
        self.encode_parts(text, add_special, parse_special, &[])
    }

    /// Like [`Tokenizer::encode`] (control tokens parsed), except in the `literal` byte ranges of
    /// `text` (sorted, disjoint): a control token that overlaps one is read as text, as
    /// `parse_special = false` reads it. This is how a chat prompt is encoded: the template's own
    /// markers are control tokens, text from the messages never is. With no literal ranges the ids
    /// are exactly [`Tokenizer::encode`]'s.
    pub fn encode_with_literal(
        &self,
        text: &str,
        add_special: bool,
        literal: &[Range<usize>],
    ) -> Result<Vec<u32>> {
        self.encode_parts(text, add_special, true, literal)
    }

    /// The byte ranges of `text` that hold control-token text (`<|im_end|>`, `<start_of_turn>`...):
    /// what [`Tokenizer::encode`] would turn into control tokens, overlapping occurrences merged.
    pub fn control_token_spans(&self, text: &str) -> Vec<Range<usize>> {
        self.specials.control_spans(text)
    }

    fn encode_parts(
        &self,
        text: &str,
        add_special: bool,
        parse_special: bool,
        literal: &[Range<usize>],
    ) -> Result<Vec<u32>> {
        let cfg = &self.vocab.cfg;
        let mut out = Vec::with_capacity(text.len() / 3 + 2);
        if add_special && cfg.add_bos {
            out.extend(cfg.bos);
        }
        for fragment in self.specials.partition(text, parse_special, literal) {
            match fragment {
                Fragment::Token(id) => out.push(id),
                Fragment::Text(t) => self.encode_fragment(t, &mut out)?,
            }
        }
        if add_special && cfg.add_eos {
            out.extend(cfg.eos);
        }
        Ok(out)
    }

    /// Tokenizes text that holds no special tokens.
    fn encode_fragment(&self, text: &str, out: &mut Vec<u32>) -> Result<()> {
        match &self.engine {
            Engine::Spm { spm, .. } => {
                // llama.cpp: a space before every fragment (each follows a special token or starts
                // the text) when `add_space_prefix`, then spaces escaped.
                let mut escaped = String::with_capacity(text.len() + 8);
                if self.vocab.cfg.add_space_prefix {
                    escaped.push('\u{2581}');
                }
                for c in text.chars() {
                    escaped.push(if c == ' ' { '\u{2581}' } else { c });
                }
                spm.encode(&self.vocab, &escaped, out);
                Ok(())
            }
            Engine::Bpe { pre, bpe, .. } => {
                // The pre-tokenizer (regex splits, then GPT-2's byte characters), then the merges
                // on each piece.
                let mut pieces = PreTokenizedString::from(text);
                pre.pre_tokenize(&mut pieces)
                    .map_err(|e| Error::Tokenizer(format!("encoding failed: {e}")))?;
                for (piece, _, _) in
                    pieces.get_splits(OffsetReferential::Normalized, OffsetType::None)
                {
                    bpe.encode_word(&self.vocab, piece, out);
                }
                Ok(())
            }
        }
    }

    /// Decodes ids as llama.cpp's `detokenize(remove_special = false, unparse_special = true)`:
    /// special tokens appear as their text, so `decode(encode(text, false)) == text` for the
    /// texts llama.cpp round-trips. Bytes that are not valid UTF-8 become U+FFFD.
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.vocab.detokenize(ids, false, true)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Decodes ids as llama.cpp's `detokenize(remove_special = true, unparse_special = false)`:
    /// control tokens produce no text, and a leading BOS (trailing EOS) that the tokenizer adds
    /// itself is dropped. This is the text to show for generated tokens.
    pub fn decode_skip_special(&self, ids: &[u32]) -> Result<String> {
        let bytes = self.vocab.detokenize(ids, true, false)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Number of tokens in the vocabulary (the model's embedding rows).
    pub fn vocab_size(&self) -> usize {
        self.vocab.cfg.n_tokens
    }

    /// The token's text as stored in the vocabulary (`▁` for spaces in SentencePiece vocabularies,
    /// GPT-2's byte characters in byte-level ones).
    pub fn token_text(&self, id: u32) -> Option<&str> {
        self.vocab.tokens.get(id as usize).map(String::as_str)
    }

    /// The text token `id` decodes to on its own (llama.cpp's `token_to_piece` with
    /// `special = true`); `None` for an id out of range. A byte token, or a byte-level token
    /// holding part of a character, gives U+FFFD.
    pub fn token_piece(&self, id: u32) -> Option<String> {
        let mut out = Vec::new();
        self.vocab.push_piece(id, true, false, &mut out).ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    }

    /// The bytes token `id` stands for in text (llama.cpp's `token_to_piece` without specials):
    /// `None` for control and unknown tokens, which text never produces, and for tokens that
    /// decode to nothing.
    pub fn token_bytes(&self, id: u32) -> Option<Vec<u8>> {
        if self.is_control(id) {
            return None;
        }
        let mut out = Vec::new();
        self.vocab.push_piece(id, false, false, &mut out).ok()?;
        (!out.is_empty()).then_some(out)
    }

    /// The id of the token whose vocabulary text is exactly `text`.
    pub fn token_id(&self, text: &str) -> Option<u32> {
        self.vocab.id(text)
    }

    /// Whether `id` is a control or unknown token (rendered only when decoding with specials).
    pub fn is_control(&self, id: u32) -> bool {
        self.vocab
            .attrs
            .get(id as usize)
            .is_some_and(|a| a & (attr::CONTROL | attr::UNKNOWN) != 0)
    }

    pub fn kind(&self) -> TokenizerKind {
        self.vocab.cfg.kind
    }

    pub fn bos_id(&self) -> Option<u32> {
        self.vocab.cfg.bos
    }

    pub fn eos_id(&self) -> Option<u32> {
        self.vocab.cfg.eos
    }

    /// Whether [`Tokenizer::encode`] with `add_special` prepends BOS.
    pub fn adds_bos(&self) -> bool {
        self.vocab.cfg.add_bos && self.vocab.cfg.bos.is_some()
    }

    /// Whether [`Tokenizer::encode`] with `add_special` appends EOS.
    pub fn adds_eos(&self) -> bool {
        self.vocab.cfg.add_eos && self.vocab.cfg.eos.is_some()
    }

    /// Tokens that end generation (see [`end_of_generation_ids`]).
    pub fn end_of_generation_ids(&self) -> &[u32] {
        &self.vocab.cfg.eog
    }

    /// Whether `id` ends generation.
    pub fn is_end_of_generation(&self, id: u32) -> bool {
        self.vocab.cfg.eog.binary_search(&id).is_ok()
    }

    /// A streaming decoder with the semantics of [`Tokenizer::decode`] (special tokens rendered).
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        StreamDecoder {
            t: self,
            state: StreamDecoderState::new(false),
        }
    }

    /// A streaming decoder with the semantics of [`Tokenizer::decode_skip_special`].
    pub fn stream_decoder_skip_special(&self) -> StreamDecoder<'_> {
        StreamDecoder {
            t: self,
            state: StreamDecoderState::new(true),
        }
    }
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8. The pieces
/// concatenated equal [`Tokenizer::decode`] (or [`Tokenizer::decode_skip_special`]) of all the
/// ids; each token costs one piece lookup, never a re-decode of the sequence.
pub struct StreamDecoder<'a> {
    t: &'a Tokenizer,
    state: StreamDecoderState,
}

impl StreamDecoder<'_> {
    /// The text that token `id` completes, if any (bytes of an unfinished character, and with
    /// llama.cpp's `clean_spaces` a few characters whose spacing depends on what follows, are held
    /// back).
    pub fn push(&mut self, id: u32) -> Result<Option<String>> {
        self.state.push(self.t, id)
    }

    /// Whatever is still held back at the end of generation (an unfinished character becomes
    /// U+FFFD, as in [`Tokenizer::decode`]).
    pub fn finish(&mut self) -> Result<String> {
        self.state.finish(self.t)
    }
}

/// Whether encoding with `add_special` prepends BOS (`tokenizer.ggml.add_bos_token`, with
/// llama.cpp's per-tokenizer default when absent). False when the metadata is unusable.
pub fn adds_bos(md: &Metadata) -> bool {
    let n = vocab::token_array(md).map(|a| a.len()).unwrap_or(0);
    Header::read(md, n)
        .map(|h| h.add_bos && h.bos.is_some())
        .unwrap_or(false)
}

/// BOS / EOS token texts and whether encoding adds them, for chat templates.
pub(crate) struct SpecialTexts {
    pub bos: Option<String>,
    pub eos: Option<String>,
    pub adds_bos: bool,
    pub adds_eos: bool,
}

pub(crate) fn special_texts(md: &Metadata) -> SpecialTexts {
    let none = SpecialTexts {
        bos: None,
        eos: None,
        adds_bos: false,
        adds_eos: false,
    };
    let Ok(arr) = vocab::token_array(md) else {
        return none;
    };
    let Ok(h) = Header::read(md, arr.len()) else {
        return none;
    };
    let text = |id: Option<u32>| match id.and_then(|i| arr.get(i as usize)) {
        Some(candle_core::quantized::gguf_file::Value::String(s)) => Some(s.clone()),
        _ => None,
    };
    SpecialTexts {
        bos: text(h.bos),
        eos: text(h.eos),
        adds_bos: h.add_bos && h.bos.is_some(),
        adds_eos: h.add_eos && h.eos.is_some(),
    }
}

/// Token ids that end generation, as llama.cpp's `special_eog_ids`: EOS, EOT, EOM, the
/// fill-in-the-middle pad / repo / file-separator tokens, and every token whose text is a known
/// end-of-turn marker (`<|im_end|>`, `<end_of_turn>`, `<|eot_id|>`, `<|endoftext|>`, `</s>`,
/// `<|end|>`...). Sorted; empty when the metadata is unusable.
pub fn end_of_generation_ids(md: &Metadata) -> Vec<u32> {
    let Ok(arr) = vocab::token_array(md) else {
        return Vec::new();
    };
    let Ok(h) = Header::read(md, arr.len()) else {
        return Vec::new();
    };
    let text = |i: usize| match &arr[i] {
        candle_core::quantized::gguf_file::Value::String(s) => s.as_str(),
        _ => "",
    };
    // Attributes only matter for the result through the gpt-oss / Gemma 4 exceptions, which key
    // on text; start from all-normal.
    let mut attrs = vec![attr::NORMAL; arr.len()];
    vocab::detect_eog(&h, arr.len(), text, &mut attrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_pre_type_compiles() {
        for pre in pretok::KNOWN_PRE_TYPES {
            let p = pretok::PreTokenizer::for_pre(pre);
            assert!(p.known, "{pre}");
            build::byte_level_pre_tokenizer(&p).unwrap_or_else(|e| panic!("{pre}: {e}"));
        }
        let p = pretok::PreTokenizer::for_pre("some-future-pre");
        assert!(!p.known);
        assert_eq!(p.regexes, vec![pretok::GPT2]);
    }
}
