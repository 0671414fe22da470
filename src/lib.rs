//! # wick
//!
//! Runs quantized GGUF language models in a browser tab (WebAssembly, SIMD128, threads) and
//! natively (the `wick` CLI, which is how the engine is tested against llama.cpp and benchmarked).
//!
//! The engine is everything here outside `web/` and `bin/`: it compiles natively and on wasm32 and
//! knows nothing about the browser. Data flows one way:
//!
//! ```text
//! GGUF bytes -> gguf::Gguf (validated) -> card::ModelCard
//!            -> tokenizer::Tokenizer + chat::ChatTemplate      (from metadata)
//!            -> model::Model (weights as views into the file, one forward pass per family)
//!            -> kernels (quantized matmul: portable reference + AVX2 / SIMD128, rayon)
//!            -> backend::{CpuBackend, GpuBackend} (each owns its KV cache; forward::Backend)
//!            -> session::Session (prefix reuse, prefill/decode, stop strings) -> sampler -> text
//! ```
//!
//! The modules import each other without cycles; ARCHITECTURE.md's "Allowed imports" table says
//! which may use which, and `tests/imports.rs` holds `src/` to it.
//!
//! ## Generating text
//! Load a GGUF file into an [`Engine`] (model, tokenizer and chat template, shared between
//! sessions), open a [`Session`] (a KV cache of some context on the CPU), and generate from the
//! chat-formatted prompt, streaming each piece of text as it is sampled:
//!
//! ```
//! use std::sync::Arc;
//! use wick::chat::ChatMessage;
//! use wick::sampler::SamplingParams;
//! use wick::{Engine, Event, GenerateOptions, Session};
//!
//! # fn main() -> wick::Result<()> {
//! let engine = Arc::new(Engine::open("models/SmolLM2-135M-Instruct.Q4_1.gguf".as_ref())?);
//! let prompt = engine.chat_prompt(&[ChatMessage::new("user", "What is 2 + 2?")])?;
//! let mut session = Session::new(engine, 1024);
//! let options = GenerateOptions {
//!     max_tokens: 16,
//!     sampling: SamplingParams::greedy(), // the same text every run
//!     ..Default::default()
//! };
//! let mut text = String::new();
//! let done = session.generate(&prompt, &options, |event| {
//!     if let Event::Token { text: piece, .. } = event {
//!         text.push_str(piece); // a UI would show it now
//!     }
//!     true // returning false stops the generation
//! })?;
//! assert_eq!(done.text, text);
//! assert!(!text.is_empty() && done.ids.len() <= 16);
//! # Ok(())
//! # }
//! ```
//!
//! Errors are [`Error`]s, whose [`Error::kind`] is a stable category (`context_overflow`,
//! `unsupported_model`, ...). `examples/generate.rs` is the same as a program.

#[warn(missing_docs)]
pub mod backend;
#[warn(missing_docs)]
pub mod card;
#[warn(missing_docs)]
pub mod chat;
#[warn(missing_docs)]
pub mod constraint;
#[warn(missing_docs)]
pub mod engine;
#[warn(missing_docs)]
pub mod error;
#[warn(missing_docs)]
pub mod forward;
#[warn(missing_docs)]
pub mod gguf;
#[cfg(not(target_os = "wasi"))]
pub mod gpu;
// Internal: public only for the kernel tests and benchmarks.
#[doc(hidden)]
pub mod kernels;
pub mod model;
#[doc(hidden)]
pub mod parallel;
#[warn(missing_docs)]
pub mod sampler;
mod scratch;
#[warn(missing_docs)]
pub mod session;
pub mod tokenizer;
#[warn(missing_docs)]
pub mod tools;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod web;

pub use card::ModelCard;
pub use engine::Engine;
pub use error::{Error, Result};
pub use gguf::Gguf;
pub use session::{Event, FinishReason, GenerateOptions, Generation, Request, Session, Step};
