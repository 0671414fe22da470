//! Everything loaded from one GGUF file, ready to generate: the card, the model, the tokenizer,
//! the chat template and the tokens that end generation.

use crate::chat::{ChatMessage, ChatTemplate};
use crate::error::{Error, Result};
use crate::gguf::{Gguf, ModelCard};
use crate::model::{Model, SUPPORTED_ARCHITECTURES};
use crate::tokenizer::{self, Tokenizer};

pub struct Engine {
    pub card: ModelCard,
    pub model: Model,
    pub tokenizer: Tokenizer,
    /// `None` when the model has no chat template (raw completion still works).
    pub chat_template: Option<ChatTemplate>,
    /// Tokens that end a generation (EOS, end-of-turn...).
    pub end_of_generation: Vec<u32>,
}

impl Engine {
    /// Opens and loads a model file natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        Self::load(&Gguf::open(path)?)
    }

    pub fn load(gguf: &Gguf) -> Result<Self> {
        let arch = gguf.architecture()?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(Error::UnsupportedArchitecture(arch.into()));
        }
        let card = ModelCard::from_gguf(gguf)?;
        let tokenizer = Tokenizer::from_metadata(&gguf.metadata)?;
        let model = Model::load(gguf)?;
        if tokenizer.vocab_size() != model.vocab_size() {
            return Err(Error::InvalidMetadata {
                key: "tokenizer.ggml.tokens".into(),
                reason: format!(
                    "{} tokens, but the output layer has {} rows",
                    tokenizer.vocab_size(),
                    model.vocab_size()
                ),
            });
        }
        let chat_template = match ChatTemplate::from_metadata(&gguf.metadata) {
            Ok(t) => Some(t),
            Err(Error::NoChatTemplate) => None,
            Err(e) => return Err(e),
        };
        Ok(Self {
            card,
            model,
            tokenizer,
            chat_template,
            end_of_generation: tokenizer::end_of_generation_ids(&gguf.metadata),
        })
    }

    /// Tokenizes a raw prompt: BOS as the model says, special tokens written as text parsed.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// The prompt for a conversation, rendered with the model's template and tokenized, ending
    /// where the assistant's answer begins.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        let template = self.chat_template.as_ref().ok_or(Error::NoChatTemplate)?;
        let text = template.render_prompt(messages, true)?;
        let ids = self.tokenizer.encode(&text, true)?;
        Ok(ids)
    }
}
