//! Any byte string fed to the GGUF reader, the model card and the engine loader (model and tokenizer) must give a value
//! or a typed error: no panic, no abort, no huge allocation.
//!
//! Run: `cargo +nightly fuzz run gguf fuzz/corpus/gguf fuzz/seeds -- -max_total_time=600 -rss_limit_mb=2048`
//! (fuzz/corpus/gguf: the minimized corpus of earlier runs, committed; fuzz/seeds: a tiny model).
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
