//! The models: a registry of families, each a loader from GGUF to a [`Plan`] (the network as
//! data), and one CPU [`decoder`] that runs any Plan.
//!
//! A family's file (`llama.rs`, `gemma.rs`, `classic.rs`) reads its hyperparameters and weights from the GGUF,
//! checking every shape, and returns a Plan; it holds no forward pass. [`Model`] adds what is
//! common: validation of inputs against the context and the vocabulary, and splitting long
//! inputs into batches. Adding a family: a loader file, a line in [`FAMILIES`], and a field in
//! [`plan`] (read by `decoder.rs` and the GPU builders) for anything the Plan cannot say yet.

pub mod classic;
pub mod decoder;
pub mod gemma;
pub mod hparams;
pub mod kv_cache;
pub mod llama;
pub mod ops;
pub mod plan;
pub mod weights;
pub mod workspace;

use crate::error::{Error, Result};
use crate::gguf::Gguf;
pub use kv_cache::KvCache;
use plan::Plan;

/// A supported GGUF architecture name (`general.architecture`) and how to read it into a Plan.
pub struct Family {
    pub arch: &'static str,
    pub load: fn(&Gguf) -> Result<Plan>,
}

/// Every architecture wick runs: the one list that both names them (in errors, the model card)
/// and dispatches loading.
pub const FAMILIES: &[Family] = &[
    Family {
        arch: "llama",
        load: |g| llama::load(g, llama::LLAMA),
    },
    Family {
        arch: "qwen2",
        load: |g| llama::load(g, llama::QWEN2),
    },
    Family {
        arch: "qwen3",
        load: |g| llama::load(g, llama::QWEN3),
    },
    Family {
        arch: "smollm3",
        load: |g| llama::load(g, llama::SMOLLM3),
    },
    Family {
        arch: "granite",
        load: |g| llama::load(g, llama::GRANITE),
    },
    Family {
        arch: "olmo2",
        load: |g| llama::load(g, llama::OLMO2),
    },
    Family {
        arch: "phi3",
        load: |g| llama::load(g, llama::PHI3),
    },
    Family {
        arch: "gemma2",
        load: |g| gemma::load(g, gemma::Generation::Gemma2),
    },
    Family {
        arch: "gemma3",
        load: |g| gemma::load(g, gemma::Generation::Gemma3),
    },
    Family {
        arch: "stablelm",
        load: |g| classic::load(g, classic::Family::StableLm),
    },
    Family {
        arch: "gpt2",
        load: |g| classic::load(g, classic::Family::Gpt2),
    },
    Family {
        arch: "falcon",
        load: |g| classic::load(g, classic::Family::Falcon),
    },
    Family {
        arch: "mpt",
        load: |g| classic::load(g, classic::Family::Mpt),
    },
];

/// The names of [`FAMILIES`], in order.
pub const SUPPORTED_ARCHITECTURES: [&str; FAMILIES.len()] = {
    let mut names = [""; FAMILIES.len()];
    let mut i = 0;
    while i < FAMILIES.len() {
        names[i] = FAMILIES[i].arch;
        i += 1;
    }
    names
};

/// The largest number of tokens one forward batch processes (bounds activation memory and the
/// sliding-window ring size).
pub const MAX_BATCH: usize = 256;

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
    plan: Plan,
}

impl Model {
    pub fn load(gguf: &Gguf) -> Result<Self> {
        let name = gguf.architecture()?;
        gguf.check_runnable()?;
        let family = FAMILIES
            .iter()
            .find(|f| f.arch == name)
            .ok_or_else(|| Error::UnsupportedArchitecture(name.into()))?;
        Ok(Self {
            plan: (family.load)(gguf)?,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.plan.vocab_size()
    }

    /// The context length the model was trained for.
    pub fn max_context(&self) -> usize {
        self.plan.max_context
    }

    /// The network as data, for other backends (the GPU).
    pub fn plan(&self) -> &Plan {
        &self.plan
    }

    /// A cache for `context` positions (clamped to the model's maximum).
    pub fn new_cache(&self, context: usize) -> KvCache {
        KvCache::new(
            self.plan.kv_dim(),
            &self.plan.windows(),
            context.clamp(1, self.max_context()),
            MAX_BATCH,
        )
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
                decoder::forward_batch(&self.plan, batch, cache, out);
            }
        });
        Ok(())
    }
}
