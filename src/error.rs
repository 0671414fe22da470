//! One error type for the engine. Every variant names what is wrong in words a person can act on;
//! [`Error::kind`] gives the stable machine-readable category that crosses the worker boundary
//! and the CLI's JSON output.
//!
//! This module is a leaf: it imports nothing from the crate, so every other module can use it.

use thiserror::Error;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, Error)]
pub enum Error {
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    #[error("the GGUF file is truncated: {0}")]
    Truncated(String),
    #[error("the GGUF file is corrupt: {0}")]
    Corrupt(String),
    #[error("unsupported model architecture `{}` (wick supports: {})", .0.name, .0.supported.join(", "))]
    UnsupportedArchitecture(UnknownArchitecture),
    #[error("tensor `{tensor}` uses quantization {qtype}, which wick does not support")]
    UnsupportedQuant { tensor: String, qtype: String },
    #[error("the GGUF file has no `{0}` metadata, which this model needs")]
    MissingMetadata(String),
    #[error("metadata `{key}` is invalid: {reason}")]
    InvalidMetadata { key: String, reason: String },
    #[error("the GGUF file has no tensor `{0}`, which this model needs")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {got:?}, expected {expected:?}")]
    TensorShape {
        name: String,
        got: Vec<usize>,
        expected: Vec<usize>,
    },
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    #[error("chat template: {0}")]
    ChatTemplate(String),
    #[error(
        "this model has no chat template (`tokenizer.chat_template`); use raw completion instead"
    )]
    NoChatTemplate,
    #[error("the prompt is {prompt} tokens but the context holds {context}; shorten the prompt or raise the context size")]
    ContextOverflow { prompt: usize, context: usize },
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    #[error("no usable GPU: {0}")]
    GpuUnavailable(String),
    #[error("GPU error: {0}")]
    Gpu(String),
    #[error("generation was aborted")]
    Aborted,
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// An architecture wick does not run, and the ones it does. The list travels as data so that
/// this module needs nothing from `model`: `Error::UnsupportedArchitecture(name.into())` fills
/// it in from `model::SUPPORTED_ARCHITECTURES` (the `From<&str>` impl is in `engine`, which
/// sees both).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownArchitecture {
    /// `general.architecture` as the file says it.
    pub name: String,
    /// Every architecture wick runs.
    pub supported: &'static [&'static str],
}

impl Error {
    /// Stable category name, used by the CLI's JSON errors and the JS API's typed errors.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::NotGguf(_) | Error::Truncated(_) | Error::Corrupt(_) => "invalid_model",
            Error::UnsupportedArchitecture(_) | Error::UnsupportedQuant { .. } => {
                "unsupported_model"
            }
            Error::MissingMetadata(_)
            | Error::InvalidMetadata { .. }
            | Error::MissingTensor(_)
            | Error::TensorShape { .. } => "invalid_model",
            Error::Tokenizer(_) => "tokenizer",
            Error::ChatTemplate(_) | Error::NoChatTemplate => "chat_template",
            Error::ContextOverflow { .. } => "context_overflow",
            Error::InvalidParameter(_) => "invalid_parameter",
            Error::GpuUnavailable(_) => "gpu_unavailable",
            Error::Gpu(_) => "gpu",
            Error::Aborted => "aborted",
            Error::Io(_) => "io",
        }
    }
}
