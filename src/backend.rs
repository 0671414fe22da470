//! Where the forward pass runs. A [`Backend`] owns a KV cache and turns tokens into logits; the
//! [`crate::Session`] above it (prompt reuse, sampling, stop strings, streaming) is the same for
//! all of them.
//!
//! - [`CpuBackend`]: `model::Model` with its `KvCache` (SIMD kernels, rayon threads).
//! - `GpuBackend` (native, and in the browser through WebGPU): `gpu::GpuModel`.
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

#[cfg(not(target_os = "wasi"))]
pub use gpu_backend::GpuBackend;

#[cfg(not(target_os = "wasi"))]
mod gpu_backend {
    use super::*;
    use crate::gpu::model::{MAX_LOGIT_ROWS, MAX_TOKENS};
    use crate::gpu::{Gpu, GpuModel};

    pub struct GpuBackend {
        model: GpuModel,
    }

    impl GpuBackend {
        /// Uploads `engine`'s model to `gpu` with a cache of `context` positions.
        pub fn new(gpu: Arc<Gpu>, engine: &Engine, context: usize) -> Result<Self> {
            Ok(Self {
                model: GpuModel::new(gpu, engine.model.plan(), context)?,
            })
        }
    }

    impl Backend for GpuBackend {
        fn name(&self) -> &'static str {
            "gpu"
        }

        fn context(&self) -> usize {
            self.model.context()
        }

        fn rewind(&mut self, len: usize) -> usize {
            self.model.rewind(len);
            self.model.len()
        }

        fn set_profiling(&mut self, on: bool) -> Result<()> {
            self.model.set_profiling(on)
        }

        fn profile_report(&self) -> Option<String> {
            self.model.profile_report()
        }

        fn forward<'a>(
            &'a mut self,
            tokens: &'a [u32],
            want: Want,
            out: &'a mut Logits,
        ) -> Pending<'a> {
            Box::pin(async move {
                let vocab = self.model.vocab_size();
                if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
                    return Err(Error::InvalidParameter(format!(
                        "token id {bad} is outside the vocabulary of {vocab}"
                    )));
                }
                if tokens.is_empty() {
                    return Err(Error::InvalidParameter("no tokens to run".into()));
                }
                if self.model.len() + tokens.len() > self.model.context() {
                    return Err(Error::ContextOverflow {
                        prompt: self.model.len() + tokens.len(),
                        context: self.model.context(),
                    });
                }
                let chunk = if want == Want::All {
                    MAX_LOGIT_ROWS
                } else {
                    MAX_TOKENS
                };
                let chunks: Vec<&[u32]> = tokens.chunks(chunk).collect();
                let mut all = Vec::new();
                for (i, c) in chunks.iter().enumerate() {
                    let last = i + 1 == chunks.len();
                    // Earlier chunks only fill the cache: the smallest readback will do.
                    let w = if last || want == Want::All {
                        want
                    } else {
                        Want::Sample
                    };
                    match self.model.forward(c, w).await? {
                        Logits::Full(l) if want == Want::All => all.extend(l),
                        logits if last => {
                            *out = logits;
                            return Ok(());
                        }
                        _ => {}
                    }
                }
                *out = Logits::Full(all);
                Ok(())
            })
        }
    }
}
