//! One error type for the engine. Every variant names what is wrong in words a person can act on;
//! [`Error::kind`] gives the stable machine-readable category that crosses the worker boundary
//! and the CLI's JSON output.
//!
//! This module is a leaf: it imports nothing from the crate, so every other module can use it.

use thiserror::Error;

/// The engine's result type: `Err` is always an [`Error`] unless a caller says otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong, from reading a file to generating; the message is for a
/// person, [`Error::kind`] for code.
#[derive(Debug, Error)]
pub enum Error {
    /// The bytes are not a GGUF file (wrong magic, or too short for a header); `kind()`
    /// `invalid_model`.
    #[error("not a GGUF file: {0}")]
    NotGguf(String),
    /// The file ends before what its header announces (often an unfinished download);
    /// `kind()` `invalid_model`.
    #[error("the GGUF file is truncated: {0}")]
    Truncated(String),
    /// The file is GGUF but inconsistent (bad offsets, sizes or values); `kind()`
    /// `invalid_model`.
    #[error("the GGUF file is corrupt: {0}")]
    Corrupt(String),
    /// `general.architecture` names a family wick does not run; `kind()` `unsupported_model`.
    #[error("unsupported model architecture `{}` (wick supports: {})", .0.name, .0.supported.join(", "))]
    UnsupportedArchitecture(UnknownArchitecture),
    #[error("tensor `{tensor}` uses quantization {qtype}, which wick does not support")]
    /// A tensor is stored in a quantization type wick has no kernels for; `kind()`
    /// `unsupported_model`.
    UnsupportedQuant {
        /// The tensor's name in the file.
        tensor: String,
        /// The type's name, e.g. "IQ1_S".
        qtype: String,
    },
    /// The architecture is supported, but this file uses a feature of it wick does not run
    /// (mixture of experts, an unknown RoPE scaling type...); `kind()` `unsupported_model`.
    #[error("this model uses {0}, which wick does not run")]
    UnsupportedFeature(String),
    /// The file is one shard of a split model, which is not a model alone; `kind()`
    /// `unsupported_model` (the browser does not load split models yet; natively, opening the
    /// first shard's path opens them all).
    #[error("this file is shard {shard} of {count} of a split model: open all {count} shards together (natively, the first shard's path opens them all; the browser does not load split models yet)")]
    SplitShard {
        /// Which shard, from 1.
        shard: usize,
        /// How many there are.
        count: usize,
    },
    /// A metadata key the model needs is absent (the key is the payload); `kind()`
    /// `invalid_model`.
    #[error("the GGUF file has no `{0}` metadata, which this model needs")]
    MissingMetadata(String),
    #[error("metadata `{key}` is invalid: {reason}")]
    /// A metadata value has the wrong type or an unusable value; `kind()` `invalid_model`.
    InvalidMetadata {
        /// The metadata key, e.g. "llama.block_count".
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
    /// A tensor the model needs is absent (its name is the payload); `kind()` `invalid_model`.
    #[error("the GGUF file has no tensor `{0}`, which this model needs")]
    MissingTensor(String),
    #[error("tensor `{name}` has shape {got:?}, expected {expected:?}")]
    /// A tensor's dimensions disagree with the hyperparameters; `kind()` `invalid_model`.
    TensorShape {
        /// The tensor's name in the file.
        name: String,
        /// Its dimensions as the file declares them.
        got: Vec<usize>,
        /// The dimensions the hyperparameters imply.
        expected: Vec<usize>,
    },
    /// The tokenizer metadata cannot be used, or text or ids cannot be converted; `kind()`
    /// `tokenizer`.
    #[error("tokenizer: {0}")]
    Tokenizer(String),
    /// The chat template does not parse or fails to render these messages; `kind()`
    /// `chat_template`.
    #[error("chat template: {0}")]
    ChatTemplate(String),
    /// A chat prompt was asked of a model without a usable template; `kind()` `chat_template`.
    #[error(
        "this model has no chat template (`tokenizer.chat_template`); use raw completion instead"
    )]
    NoChatTemplate,
    #[error("the prompt is {prompt} tokens but the context holds {context}; shorten the prompt or raise the context size")]
    /// The prompt does not fit in the session's KV cache; `kind()` `context_overflow`.
    ContextOverflow {
        /// The prompt's length in tokens.
        prompt: usize,
        /// The session's context size in tokens.
        context: usize,
    },
    /// A caller-supplied option is out of range (e.g. `max_tokens` of 0); `kind()`
    /// `invalid_parameter`.
    #[error("invalid parameter: {0}")]
    InvalidParameter(String),
    /// No GPU adapter, or one whose limits are too small for wick; `kind()`
    /// `gpu_unavailable`. The CPU backend still works.
    #[error("no usable GPU: {0}")]
    GpuUnavailable(String),
    /// The GPU backend cannot run this model (shapes its shaders do not handle) or a GPU
    /// operation failed (a lost device first); `kind()` `gpu`. The CPU backend may still work.
    #[error("GPU error: {0}")]
    Gpu(String),
    /// The caller stopped the work before it finished; `kind()` `aborted`.
    #[error("generation was aborted")]
    Aborted,
    /// Reading the model file failed; `kind()` `io`.
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
            Error::UnsupportedArchitecture(_)
            | Error::UnsupportedQuant { .. }
            | Error::UnsupportedFeature(_)
            | Error::SplitShard { .. } => "unsupported_model",
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
