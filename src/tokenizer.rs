//! Tokenizer built from GGUF metadata (SKELETON: being written).
use crate::error::Result;
use crate::gguf::Metadata;

pub struct Tokenizer {}

impl Tokenizer {
    pub fn from_metadata(_md: &Metadata) -> Result<Self> {
        todo!()
    }
    /// `add_special`: add BOS (and EOS) as the model's metadata says. Special tokens written as text
    /// in `text` are always parsed (llama.cpp's parse_special = true).
    pub fn encode(&self, _text: &str, _add_special: bool) -> Result<Vec<u32>> {
        todo!()
    }
    pub fn decode(&self, _ids: &[u32]) -> Result<String> {
        todo!()
    }
    pub fn vocab_size(&self) -> usize {
        todo!()
    }
    pub fn stream_decoder(&self) -> StreamDecoder<'_> {
        todo!()
    }
}

/// Turns a stream of token ids into text pieces that are always whole UTF-8.
pub struct StreamDecoder<'a> {
    _t: &'a Tokenizer,
}

impl StreamDecoder<'_> {
    /// The text that token `id` completes, if any (bytes of an unfinished character are held back).
    pub fn push(&mut self, _id: u32) -> Result<Option<String>> {
        todo!()
    }
    /// Whatever is still held back at the end of generation.
    pub fn finish(&mut self) -> Result<String> {
        todo!()
    }
}

/// Whether encoding with `add_special` prepends BOS (`tokenizer.ggml.add_bos_token`, with
/// llama.cpp's per-tokenizer default when absent).
pub fn adds_bos(_md: &Metadata) -> bool {
    todo!()
}

/// Token ids that end generation: EOS, EOT and the end-of-turn tokens llama.cpp recognises.
pub fn end_of_generation_ids(_md: &Metadata) -> Vec<u32> {
    todo!()
}
