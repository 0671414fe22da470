//! [`GpuBackend`]: the [`Backend`] that runs on a [`GpuModel`]. It checks a request, splits it
//! into passes of at most [`MAX_TOKENS`] tokens ([`MAX_LOGIT_ROWS`] when every row's logits are
//! wanted) and asks the earlier passes for the smallest readback. `crate::backend` re-exports it.

use std::sync::Arc;

use super::model::{MAX_LOGIT_ROWS, MAX_TOKENS};
use super::{Gpu, GpuModel};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::forward::{Backend, Logits, Pending, Want};

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
