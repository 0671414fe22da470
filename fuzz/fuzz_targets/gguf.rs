//! Any byte string fed to the GGUF reader, the model card and the engine loader (model and tokenizer) must give a value
//! or a typed error: no panic, no abort, no huge allocation.
//!
//! Run: `cargo +nightly fuzz run gguf -- -max_total_time=600 -rss_limit_mb=2048`
//! (seed corpus: fuzz/seeds/, tiny models written by tests/gguf.rs).
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(gguf) = wick::Gguf::from_bytes(Arc::new(data.to_vec())) else {
        return;
    };
    let _ = wick::ModelCard::from_gguf(&gguf);
    let _ = wick::Engine::load(&gguf);
});
