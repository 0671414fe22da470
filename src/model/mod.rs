//! Model forward passes, one file per architecture family, assembled from [`blocks`].
//!
//! A family implements [`Architecture`]: it reads its hyperparameters and weights from the GGUF
//! (checking every shape) and runs a batch of tokens through the network, appending to the
//! [`KvCache`]. [`Model`] adds what is common: validation of inputs against the context and the
//! vocabulary, and splitting long inputs into batches.

pub mod blocks;
pub mod gemma3;
pub mod kv_cache;
pub mod llama;
pub mod plan;
pub mod weights;
pub mod workspace;

use crate::error::{Error, Result};
use crate::gguf::Gguf;
pub use kv_cache::KvCache;

pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "qwen3", "gemma3"];

/// The largest number of tokens one forward batch processes (bounds activation memory and the
/// sliding-window ring size).
pub const MAX_BATCH: usize = 256;

pub trait Architecture: Send + Sync {
    fn vocab_size(&self) -> usize;
    /// The context length the model was trained for.
    fn max_context(&self) -> usize;
    fn new_cache(&self, context: usize) -> KvCache;
    /// Runs `tokens` (at most [`MAX_BATCH`]) at positions `cache.len..`, appends them to the cache
    /// and appends the logits that `out` asks for to its vector.
    fn forward_batch(&self, tokens: &[u32], cache: &mut KvCache, out: LogitsOut<'_>);
    /// The network as data, for other backends (the GPU).
    fn plan(&self) -> plan::Plan<'_>;
}

/// Which logits a forward batch appends, and where.
pub enum LogitsOut<'a> {
    /// None: the batch only fills the cache (an earlier part of a long prompt).
    Skip,
    /// The last token's row.
    Last(&'a mut Vec<f32>),
    /// Every token's row, in order.
    All(&'a mut Vec<f32>),
}

pub struct Model {
    arch: Box<dyn Architecture>,
}

impl Model {
    pub fn load(gguf: &Gguf) -> Result<Self> {
        let name = gguf.architecture()?;
        let arch: Box<dyn Architecture> = match (name, llama::variant(name)) {
            (_, Some(variant)) => Box::new(llama::Llama::load(gguf, variant)?),
            ("gemma3", None) => Box::new(gemma3::Gemma3::load(gguf)?),
            (other, None) => return Err(Error::UnsupportedArchitecture(other.into())),
        };
        Ok(Self { arch })
    }

    pub fn vocab_size(&self) -> usize {
        self.arch.vocab_size()
    }

    pub fn max_context(&self) -> usize {
        self.arch.max_context()
    }

    pub fn plan(&self) -> plan::Plan<'_> {
        self.arch.plan()
    }

    /// A cache for `context` positions (clamped to the model's maximum).
    pub fn new_cache(&self, context: usize) -> KvCache {
        self.arch.new_cache(context.clamp(1, self.max_context()))
    }

    /// Runs `tokens` after what the cache holds. Returns the last token's logits (`vocab` floats),
    /// or every token's (`tokens.len() * vocab`) when `all_logits`.
    pub fn forward(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_logits: bool,
    ) -> Result<Vec<f32>> {
        let mut logits = Vec::new();
        self.forward_into(tokens, cache, all_logits, &mut logits)?;
        Ok(logits)
    }

    /// [`Model::forward`] into `logits` (cleared first), whose capacity is reused: with the
    /// cache's workspace, a decode step allocates nothing.
    pub fn forward_into(
        &self,
        tokens: &[u32],
        cache: &mut KvCache,
        all_logits: bool,
        logits: &mut Vec<f32>,
    ) -> Result<()> {
        logits.clear();
        if tokens.is_empty() {
            return Err(Error::InvalidParameter("no tokens to run".into()));
        }
        if cache.len + tokens.len() > cache.context {
            return Err(Error::ContextOverflow {
                prompt: cache.len + tokens.len(),
                context: cache.context,
            });
        }
        let vocab = self.vocab_size();
        if let Some(&bad) = tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(Error::InvalidParameter(format!(
                "token id {bad} is outside the vocabulary of {vocab}"
            )));
        }
        // One team of threads for the whole call: its products start without waking anyone.
        crate::parallel::with_team(|| {
            let batches = tokens.chunks(MAX_BATCH);
            let last = batches.len() - 1;
            for (i, batch) in batches.enumerate() {
                let out = if all_logits {
                    LogitsOut::All(logits)
                } else if i == last {
                    LogitsOut::Last(logits)
                } else {
                    LogitsOut::Skip
                };
                self.arch.forward_batch(batch, cache, out);
            }
        });
        Ok(())
    }
}

/// Final norm and output projection of the rows `out` asks for (prefill needs just the last;
/// skipping the others saves a vocabulary-sized matmul per prompt token), appended to its vector.
/// `normed` is scratch.
#[allow(clippy::too_many_arguments)]
fn output_logits(
    x: &[f32],
    n: usize,
    d: usize,
    norm: &[f32],
    eps: f32,
    output: &weights::Matrix,
    normed: &mut Vec<f32>,
    out: LogitsOut<'_>,
) {
    let (rows, logits) = match out {
        LogitsOut::Skip => return,
        LogitsOut::Last(l) => (&x[(n - 1) * d..], l),
        LogitsOut::All(l) => (x, l),
    };
    normed.clear();
    normed.extend_from_slice(rows);
    blocks::rms_norm(normed, norm, eps);
    let m = normed.len() / d;
    let at = logits.len();
    logits.resize(at + m * output.rows, 0.0);
    output.matmul(normed, m, &mut logits[at..]);
}
