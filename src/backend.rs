//! Where the forward pass runs. A [`Backend`] owns a KV cache and turns tokens into logits; the
//! [`crate::Session`] above it (prompt reuse, sampling, stop strings, streaming) is the same for
//! all of them.
//!
//! - [`CpuBackend`]: `model::Model` with its `KvCache` (SIMD kernels, rayon threads).
//! - `GpuBackend` (native, and in the browser through WebGPU): `gpu::GpuModel`, in
//!   `src/gpu/backend.rs` and re-exported here.
//!
//! `forward` is async because reading GPU results in a browser is: the worker awaits it. Natively
//! and on the CPU the future is ready at once, and [`now`] takes its value without an executor.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::model::KvCache;

/// What a forward pass must return.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Enough to sample the next token: the backend may return only the best candidates.
    Sample,
    /// The last token's whole logits row.
    Last,
    /// Every token's logits rows, in order.
    All,
}

/// Logits as a backend returns them.
#[derive(Clone, Debug)]
pub enum Logits {
    /// Whole rows (`vocab` floats each).
    Full(Vec<f32>),
    /// The best `(id, logit)` candidates of the last token, best first (the GPU's top-k).
    Top(Vec<(u32, f32)>),
}

impl Default for Logits {
    fn default() -> Self {
        Logits::Full(Vec::new())
    }
}

impl Logits {
    /// The whole-rows vector, made so if it held candidates (its capacity is kept otherwise).
    pub fn full_mut(&mut self) -> &mut Vec<f32> {
        if let Logits::Top(_) = self {
            *self = Logits::Full(Vec::new());
        }
        match self {
            Logits::Full(v) => v,
            Logits::Top(_) => unreachable!(),
        }
    }
}

pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

pub trait Backend {
    /// "cpu" or "gpu".
    fn name(&self) -> &'static str;
    /// Positions the cache holds room for.
    fn context(&self) -> usize;
    /// Keeps cached positions `0..len` if it can (a sliding-window ring may not): returns how
    /// many it kept, `len` or 0.
    fn rewind(&mut self, len: usize) -> usize;
    /// Runs `tokens` after the cached positions and appends them to the cache; the logits go
    /// to `out` (whose buffer the CPU reuses: decoding allocates nothing per token).
    fn forward<'a>(&'a mut self, tokens: &'a [u32], want: Want, out: &'a mut Logits)
        -> Pending<'a>;
    /// Starts (or stops) timing the backend's work per kind of operation, where it can.
    fn set_profiling(&mut self, _on: bool) -> Result<()> {
        Err(Error::InvalidParameter(format!(
            "the {} backend has no profiler",
            self.name()
        )))
    }
    /// What the profiler measured so far.
    fn profile_report(&self) -> Option<String> {
        None
    }
}

/// The value of a future that needs no waiting (the CPU backend's, and native GPU's, which
/// block inside); an error if it would have to wait.
pub fn now<T>(f: impl Future<Output = Result<T>>) -> Result<T> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => Err(Error::Gpu(
            "this backend is asynchronous here: use the async step".into(),
        )),
    }
}

pub struct CpuBackend {
    engine: Arc<Engine>,
    cache: KvCache,
}

impl CpuBackend {
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
