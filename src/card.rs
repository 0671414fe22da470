//! The [`ModelCard`]: what a person (or the page) wants to know about a GGUF file before running
//! it. It reads the file's metadata ([`crate::gguf`]) and asks the tokenizer and the chat
//! template code what they make of it, so it sits above all three.

use std::collections::BTreeMap;

use candle_core::quantized::gguf_file::Value;
use serde::Serialize;

use crate::chat;
use crate::error::Result;
use crate::gguf::{get_array, get_str, get_str_opt, get_usize, get_usize_opt, qtype_name, Gguf};
use crate::tokenizer;

/// What a person (or the page) wants to know about a model before running it.
#[derive(Clone, Debug, Serialize)]
pub struct ModelCard {
    /// `general.name`; `None` when the file does not say.
    pub name: Option<String>,
    /// `general.architecture`, e.g. "llama" or "qwen2"; it prefixes the hyperparameter keys.
    pub architecture: String,
    /// What sets the model apart within its family, in words ("partial RoPE (24 of 32
    /// dimensions, halves)", "sliding window 4096 on 13 of 26 layers", ...), from the network
    /// the engine built; empty on a card read from metadata alone.
    pub features: Vec<String>,
    /// Size of the whole file in bytes.
    pub file_size: u64,
    /// Weights counted over every tensor (elements, not bytes).
    pub parameters: u64,
    /// The file's declared type (`general.file_type`), e.g. "Q4_K_M", when it says.
    pub file_type: Option<String>,
    /// Bytes of tensor data per quantization type.
    pub quant_types: BTreeMap<String, u64>,
    /// The longest context in tokens the model was trained for (`{arch}.context_length`); a
    /// session's context is clamped to it.
    pub context_length: usize,
    /// Width of the hidden state (`{arch}.embedding_length`).
    pub embedding_length: usize,
    /// Number of transformer layers.
    pub block_count: usize,
    /// Attention (query) heads per layer.
    pub head_count: usize,
    /// Key/value heads per layer; equal to `head_count` when the file does not say (no grouped-query
    /// attention).
    pub head_count_kv: usize,
    /// Tokens in the vocabulary (`tokenizer.ggml.tokens`).
    pub vocab_size: usize,
    /// `tokenizer.ggml.model`, e.g. "gpt2" (byte-level BPE) or "llama" (SentencePiece).
    pub tokenizer_model: String,
    /// The beginning-of-sequence token; `None` when the file names none (or an id outside the
    /// vocabulary).
    pub bos_token: Option<SpecialToken>,
    /// The end-of-sequence token; `None` as for `bos_token`.
    pub eos_token: Option<SpecialToken>,
    /// Every token that ends a generation (EOS, end-of-turn...), as the engine uses them.
    pub eot_tokens: Vec<SpecialToken>,
    /// Whether the tokenizer puts `bos_token` in front of a prompt.
    pub add_bos: bool,
    /// `general.license`; `None` when the file does not say.
    pub license: Option<String>,
    /// Whether the file has a `tokenizer.chat_template`, usable or not (see
    /// `chat_template_error`).
    pub has_chat_template: bool,
    /// Why the chat template cannot be used (it does not parse, or is not a string), e.g.
    /// "syntax error: unexpected end of block (in chat_template:1)"; `None` when it is fine or
    /// absent. The model still does raw completion.
    pub chat_template_error: Option<String>,
}

/// A special token as the card shows it.
#[derive(Clone, Debug, Serialize)]
pub struct SpecialToken {
    /// Its id in the vocabulary.
    pub id: u32,
    /// Its text in the vocabulary, e.g. "<|im_end|>".
    pub text: String,
}

/// llama.cpp's `general.file_type` numbering (LLAMA_FTYPE_*).
fn file_type_name(ft: usize) -> Option<&'static str> {
    Some(match ft {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        7 => "Q8_0",
        8 => "Q5_0",
        9 => "Q5_1",
        10 => "Q2_K",
        11 => "Q3_K_S",
        12 => "Q3_K_M",
        13 => "Q3_K_L",
        14 => "Q4_K_S",
        15 => "Q4_K_M",
        16 => "Q5_K_S",
        17 => "Q5_K_M",
        18 => "Q6_K",
        19 => "IQ2_XXS",
        20 => "IQ2_XS",
        21 => "Q2_K_S",
        22 => "IQ3_XS",
        23 => "IQ3_XXS",
        24 => "IQ1_S",
        25 => "IQ4_NL",
        26 => "IQ3_S",
        27 => "IQ3_M",
        28 => "IQ2_S",
        29 => "IQ2_M",
        30 => "IQ4_XS",
        31 => "IQ1_M",
        32 => "BF16",
        36 => "TQ1_0",
        37 => "TQ2_0",
        38 => "MXFP4_MOE",
        39 => "NVFP4",
        40 => "Q1_0",
        41 => "Q2_0",
        _ => return None,
    })
}

impl ModelCard {
    /// Builds the card for a file whose architecture wick supports; hyperparameters are checked
    /// by the model loader, the card only reports them.
    pub fn from_gguf(g: &Gguf) -> Result<Self> {
        let md = &g.metadata;
        let arch = g.architecture()?.to_string();
        let key = |k: &str| format!("{arch}.{k}");
        let head_count = get_usize(md, &key("attention.head_count"))?;
        let tokens = get_array(md, "tokenizer.ggml.tokens")?;
        let token_text = |id: usize| -> Option<String> {
            match tokens.get(id) {
                Some(Value::String(s)) => Some(s.clone()),
                _ => None,
            }
        };
        let special = |k: &str| -> Result<Option<SpecialToken>> {
            Ok(get_usize_opt(md, k)?.and_then(|id| {
                token_text(id).map(|text| SpecialToken {
                    id: id as u32,
                    text,
                })
            }))
        };
        let mut quant_types = BTreeMap::new();
        let mut parameters = 0u64;
        for t in g.tensors() {
            parameters += t.elem_count() as u64;
            *quant_types
                .entry(qtype_name(t.qtype).to_string())
                .or_insert(0) += t.data.len() as u64;
        }
        // Tensors of types wick does not run count too: the card describes the file.
        for t in g.unrunnable() {
            parameters += t.elements;
            *quant_types.entry(t.type_name.clone()).or_insert(0) += t.bytes;
        }
        Ok(Self {
            name: get_str_opt(md, "general.name")?.map(str::to_string),
            file_size: g.file_size,
            parameters,
            file_type: get_usize_opt(md, "general.file_type")?
                .and_then(file_type_name)
                .map(str::to_string),
            quant_types,
            context_length: get_usize(md, &key("context_length"))?,
            embedding_length: get_usize(md, &key("embedding_length"))?,
            block_count: get_usize(md, &key("block_count"))?,
            head_count,
            head_count_kv: get_usize_opt(md, &key("attention.head_count_kv"))?
                .unwrap_or(head_count),
            vocab_size: tokens.len(),
            tokenizer_model: get_str(md, "tokenizer.ggml.model")?.to_string(),
            bos_token: special("tokenizer.ggml.bos_token_id")?,
            eos_token: special("tokenizer.ggml.eos_token_id")?,
            eot_tokens: tokenizer::end_of_generation_ids(md)
                .into_iter()
                .filter_map(|id| token_text(id as usize).map(|text| SpecialToken { id, text }))
                .collect(),
            add_bos: tokenizer::adds_bos(md),
            license: get_str_opt(md, "general.license")?.map(str::to_string),
            has_chat_template: md.contains_key("tokenizer.chat_template"),
            chat_template_error: chat::template_problem(md),
            architecture: arch,
            features: Vec::new(),
        })
    }
}
