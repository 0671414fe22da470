//! What a forward pass is, for every backend and for whoever reads its output: what to return
//! ([`Want`]), what comes back ([`Logits`], at most [`TOP_CANDIDATES`] candidates where a backend
//! returns candidates), and the [`Backend`] trait that runs it.
//!
//! This module imports nothing from the crate but `error`, so the sampler, the backends
//! (`backend`, `gpu`) and the session all depend on it and not on each other.
//!
//! `forward` is async because reading GPU results in a browser is: the worker awaits it. Natively
//! and on the CPU the future is ready at once, and [`now`] takes its value without an executor.

use std::future::Future;
use std::pin::Pin;

use crate::error::{Error, Result};

/// Candidates a backend may return instead of whole rows (the GPU's top-k); sampling with
/// `top_k` up to this needs nothing else.
pub const TOP_CANDIDATES: usize = 64;

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

/// What [`Backend::forward`] returns: a future that resolves when the logits are in `out`
/// (at once on the CPU; [`now`] takes its value there).
pub type Pending<'a> = Pin<Box<dyn Future<Output = Result<()>> + 'a>>;

/// Where forward passes run: owns a KV cache and turns tokens into logits. A
/// [`crate::Session`] drives one.
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
