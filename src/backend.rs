//! Where the forward pass runs. A [`Backend`] owns a KV cache and turns tokens into logits; the
//! [`crate::Session`] above it (prompt reuse, sampling, stop strings, streaming) is the same for
//! all of them. The trait and what it returns live in [`crate::forward`] (re-exported here), so
//! that `gpu` and `sampler` need not import this module.
//!
//! - [`CpuBackend`]: `model::Model` with its `KvCache` (SIMD kernels, rayon threads).
//! - `GpuBackend` (native, and in the browser through WebGPU): `gpu::GpuModel`, in
//!   `src/gpu/backend.rs` and re-exported here.
//!
//! `forward` is async because reading GPU results in a browser is: the worker awaits it. Natively
//! and on the CPU the future is ready at once, and [`now`] takes its value without an executor.

use std::sync::Arc;

use crate::engine::Engine;
use crate::model::KvCache;

pub use crate::forward::{now, Backend, Logits, Pending, Want};

/// The forward pass on the CPU: the engine's [`crate::model::Model`] with a KV cache of its own.
pub struct CpuBackend {
    engine: Arc<Engine>,
    cache: KvCache,
}

impl CpuBackend {
    /// A backend with a cache for `context` tokens (clamped to the model's maximum).
    pub fn new(engine: Arc<Engine>, context: usize) -> Self {
        let cache = engine.model.new_cache(context);
        Self { engine, cache }
    }
}

impl Backend for CpuBackend {
    fn name(&self) -> &'static str {
        "cpu"
    }

    fn context(&self) -> usize {
        self.cache.context
    }

    fn rewind(&mut self, len: usize) -> usize {
        let len = if self.cache.can_rewind_to(len) {
            len
        } else {
            0
        };
        self.cache.rewind(len);
        len
    }

    fn forward<'a>(
        &'a mut self,
        tokens: &'a [u32],
        want: Want,
        out: &'a mut Logits,
    ) -> Pending<'a> {
        let r = self.engine.model.forward_into(
            tokens,
            &mut self.cache,
            want == Want::All,
            out.full_mut(),
        );
        Box::pin(std::future::ready(r))
    }
}

// The GPU's backend lives with the GPU code; callers keep naming it here.
#[cfg(not(target_os = "wasi"))]
pub use crate::gpu::GpuBackend;
