//! Everything loaded from one GGUF file, ready to generate: the card, the model, the tokenizer,
//! the chat template and the tokens that end generation.

use crate::card::ModelCard;
use crate::chat::{ChatMessage, ChatTemplate};
use crate::constraint::{Constraint, ConstraintCompiler, Grammar};
use crate::error::{Error, Result, UnknownArchitecture};
use crate::gguf::Gguf;
use crate::model::{Model, SUPPORTED_ARCHITECTURES};
use crate::tokenizer::{self, Tokenizer};

/// A loaded model, shared (through an `Arc`) by the sessions that generate with it.
pub struct Engine {
    /// What the file says about the model.
    pub card: ModelCard,
    /// The weights (views into the file) and the CPU forward pass.
    pub model: Model,
    /// Text to token ids and back, built from the file's metadata.
    pub tokenizer: Tokenizer,
    /// `None` when the model has none, or a broken one (then `card.chat_template_error` says
    /// why); raw completion works either way.
    chat_template: Option<ChatTemplate>,
    /// Tokens that end a generation (EOS, end-of-turn...).
    pub end_of_generation: Vec<u32>,
    /// The vocabulary compiled for structured output, built on the first constrained request.
    constraints: std::sync::OnceLock<std::result::Result<ConstraintCompiler, String>>,
}

impl Engine {
    /// Opens and loads a model file natively.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        Self::load(&Gguf::open(path)?)
    }

    /// Loads a model from a parsed file (in the browser, from its bytes). Fails with
    /// [`Error::UnsupportedArchitecture`] for a family wick does not run, and when the
    /// tokenizer's vocabulary and the output layer disagree in size.
    pub fn load(gguf: &Gguf) -> Result<Self> {
        let arch = gguf.architecture()?;
        if !SUPPORTED_ARCHITECTURES.contains(&arch) {
            return Err(Error::UnsupportedArchitecture(arch.into()));
        }
        let mut card = ModelCard::from_gguf(gguf)?;
        let tokenizer = Tokenizer::from_metadata(&gguf.metadata)?;
        let model = Model::load(gguf)?;
        card.features = model.plan().features();
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
        // A template that does not parse is reported by the card, not fatal: the model still
        // does raw completion.
        let chat_template = ChatTemplate::from_metadata(&gguf.metadata)
            .ok()
            .map(|mut t| {
                t.set_context_length(card.context_length);
                t
            });
        Ok(Self {
            card,
            model,
            tokenizer,
            chat_template,
            end_of_generation: tokenizer::end_of_generation_ids(&gguf.metadata),
            constraints: std::sync::OnceLock::new(),
        })
    }

    /// Compiles `grammar` against this model's vocabulary for one request (the vocabulary side
    /// is built once, on first use).
    pub fn constraint(&self, grammar: &Grammar) -> Result<Constraint> {
        let compiler = self
            .constraints
            .get_or_init(|| {
                ConstraintCompiler::new(&self.tokenizer, &self.end_of_generation)
                    .map_err(|e| e.to_string())
            })
            .as_ref()
            .map_err(|e| Error::InvalidParameter(e.clone()))?;
        compiler.compile(grammar)
    }

    /// The model's chat template; `Error::NoChatTemplate` when it has none, `Error::ChatTemplate`
    /// when it is broken.
    pub fn chat_template(&self) -> Result<&ChatTemplate> {
        match (&self.chat_template, &self.card.chat_template_error) {
            (Some(t), _) => Ok(t),
            (None, Some(problem)) => Err(crate::chat::broken_template(problem)),
            (None, None) => Err(Error::NoChatTemplate),
        }
    }

    /// Tokenizes a raw prompt: BOS as the model says, special tokens written as text parsed.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer.encode(text, true)
    }

    /// The prompt for a conversation, rendered with the model's template and tokenized, ending
    /// where the assistant's answer begins. Special-token text in the messages stays text.
    pub fn chat_prompt(&self, messages: &[ChatMessage]) -> Result<Vec<u32>> {
        self.chat_prompt_with(messages, false)
    }

    /// [`Engine::chat_prompt`], choosing whether special-token text in the messages is read as
    /// control tokens (`parse_special_tokens`: for callers that write turn markers on purpose and
    /// trust every message).
    pub fn chat_prompt_with(
        &self,
        messages: &[ChatMessage],
        parse_special_tokens: bool,
    ) -> Result<Vec<u32>> {
        let template = self.chat_template()?;
        if parse_special_tokens {
            let text = template.render_prompt(messages, true)?;
            return self.tokenizer.encode(&text, true);
        }
        let prompt = template.prompt(messages, true, &self.tokenizer)?;
        self.tokenizer
            .encode_with_literal(&prompt.text, true, &prompt.literal)
    }
}

/// `Error::UnsupportedArchitecture(name.into())`, wherever it is raised (here and in
/// `model::Model::load`), names the architectures wick runs. It lives here because `error` is a
/// leaf and `model` only raises the error.
impl From<&str> for UnknownArchitecture {
    fn from(name: &str) -> Self {
        Self {
            name: name.into(),
            supported: &SUPPORTED_ARCHITECTURES,
        }
    }
}
