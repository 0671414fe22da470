//! Chat templates from GGUF metadata, rendered with minijinja (SKELETON: being written).
use crate::error::Result;
use crate::gguf::Metadata;
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

pub struct ChatTemplate {}

impl ChatTemplate {
    /// `Err(Error::NoChatTemplate)` when the model has none.
    pub fn from_metadata(_md: &Metadata) -> Result<Self> {
        todo!()
    }
    pub fn render(&self, _messages: &[ChatMessage], _add_generation_prompt: bool) -> Result<String> {
        todo!()
    }
}
