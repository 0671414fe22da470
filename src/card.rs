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
    pub name: Option<String>,
    pub architecture: String,
    pub file_size: u64,
    pub parameters: u64,
    /// The file's declared type (`general.file_type`), e.g. "Q4_K_M", when it says.
    pub file_type: Option<String>,
    /// Bytes of tensor data per quantization type.
    pub quant_types: BTreeMap<String, u64>,
    pub context_length: usize,
    pub embedding_length: usize,
    pub block_count: usize,
    pub head_count: usize,
    pub head_count_kv: usize,
    pub vocab_size: usize,
    pub tokenizer_model: String,
    pub bos_token: Option<SpecialToken>,
    pub eos_token: Option<SpecialToken>,
    pub eot_tokens: Vec<SpecialToken>,
    pub add_bos: bool,
    pub license: Option<String>,
    pub has_chat_template: bool,
    /// Why the chat template cannot be used (it does not parse, or is not a string), e.g.
    /// "syntax error: unexpected end of block (in chat_template:1)"; `None` when it is fine or
    /// absent. The model still does raw completion.
    pub chat_template_error: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpecialToken {
    pub id: u32,
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
        32 => "BF16",
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
        })
    }
}
