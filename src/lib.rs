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

pub mod backend;
pub mod card;
pub mod chat;
pub mod engine;
pub mod error;
pub mod forward;
pub mod gguf;
#[cfg(not(target_os = "wasi"))]
pub mod gpu;
pub mod kernels;
pub mod model;
pub mod parallel;
pub mod sampler;
mod scratch;
pub mod session;
pub mod tokenizer;
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod web;

pub use card::ModelCard;
pub use engine::Engine;
pub use error::{Error, Result};
pub use gguf::Gguf;
pub use session::{Event, FinishReason, GenerateOptions, Generation, Request, Session, Step};
