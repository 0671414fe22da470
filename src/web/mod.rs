//! The browser glue, and the only place that knows about wasm-bindgen. The worker (www/worker.js)
//! drives these objects; the page never talks to wasm directly.
//!
//! - [`ModelBuffer`]: wasm memory the worker reads a stored model into, with no copy in between,
//!   and its XXH3 checksum, summed in place.
//! - [`WebEngine`]: a loaded model and its session; requests run one token per `step()` call so
//!   the worker's event loop can deliver an abort between any two tokens.
//! - [`WebTokenizer`] (`Tokenizer` in JS): a model's tokenizer alone, from a GGUF's metadata
//!   (no weights), for counting and inspecting tokens.
//! - [`Hasher`]: the streaming hashes of a model as it is stored, SHA-256 and XXH3-64 (WebCrypto
//!   has no incremental digest, nor any fast checksum).
//!
//! Errors cross into JS as plain objects `{kind, message}` (the kinds of [`crate::Error::kind`]),
//! which www/errors.js turns into `WickError`s.

mod engine;
mod hash;
mod model_buffer;
mod tokenizer;

pub use engine::WebEngine;
pub use hash::Hasher;
pub use model_buffer::ModelBuffer;
pub use tokenizer::WebTokenizer;

use wasm_bindgen::prelude::*;

/// Spawns the rayon pool's Web Workers (the threaded build only); the JS side awaits it once.
#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

#[wasm_bindgen(start)]
fn start() {
    // A panic aborts the wasm instance; say why in the console before it does.
    std::panic::set_hook(Box::new(|info| {
        web_sys::console::error_1(&format!("wick panicked: {info}").into());
    }));
}

/// Which of the two builds this is: "threads" (shared memory + rayon in Web Workers) or "simd".
#[wasm_bindgen(js_name = buildFlavour)]
pub fn build_flavour() -> String {
    if cfg!(feature = "threads") {
        "threads"
    } else {
        "simd"
    }
    .into()
}

/// Runs this build's kernels against the reference ([`crate::kernels::self_check`]): `undefined`
/// when they agree, else what disagreed. The worker runs it before trusting relaxed SIMD.
#[wasm_bindgen(js_name = kernelCheck)]
pub fn kernel_check() -> Option<String> {
    crate::kernels::self_check().err()
}

/// The SIMD instruction set the kernels were compiled for.
#[wasm_bindgen(js_name = simdFlavour)]
pub fn simd_flavour() -> String {
    if cfg!(target_feature = "relaxed-simd") {
        "relaxed-simd"
    } else if cfg!(target_feature = "simd128") {
        "simd128"
    } else {
        "none"
    }
    .into()
}

/// Threads the kernels split work across (1 in the SIMD-only build).
#[wasm_bindgen(js_name = threadCount)]
pub fn thread_count() -> usize {
    rayon::current_num_threads()
}

/// `{kind, message}` for JS.
pub(crate) fn js_error(kind: &str, message: &str) -> JsValue {
    let obj = js_sys::Object::new();
    // Setting a property on a fresh plain object cannot fail.
    let _ = js_sys::Reflect::set(&obj, &"kind".into(), &kind.into());
    let _ = js_sys::Reflect::set(&obj, &"message".into(), &message.into());
    obj.into()
}

impl From<crate::Error> for JsValue {
    fn from(e: crate::Error) -> Self {
        js_error(e.kind(), &e.to_string())
    }
}
