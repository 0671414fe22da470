//! Perplexity of a text under the model, with llama.cpp's `llama-perplexity` conventions, so a
//! person can see what a quantization costs on their own text and compare with llama.cpp's
//! numbers:
//!
//! - the whole text is tokenized once, with BOS where the model adds one;
//! - it is cut into `tokens / ctx` chunks of exactly `ctx` tokens (the rest is left out), each
//!   run from an empty cache with its first token replaced by BOS where the model adds one;
//! - in each chunk only the second half is scored: the log-probability of token `j + 1` given
//!   the logits at position `j`, for `j` from `ctx / 2` to `ctx - 2` (so every scored token has
//!   at least half a context before it);
//! - perplexity is `exp` of the mean negative log-likelihood over all scored tokens, and its
//!   uncertainty the standard error of that mean, carried through `exp` (as llama.cpp prints
//!   `PPL = P +/- U`).
//!
//! A text must hold at least `2 * ctx` tokens (llama.cpp's rule). The work goes a chunk per
//! [`PerplexityRun::next_chunk`] call, so a caller can show progress and stop between chunks
//! (the browser worker does both).

use serde::Serialize;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::session::Session;

/// A perplexity measurement in progress (see the module documentation).
pub struct PerplexityRun {
    tokens: Vec<u32>,
    ctx: usize,
    bos: Option<u32>,
    chunks: usize,
    done: usize,
    /// Sum of the negative log-likelihoods of the scored tokens, and of their squares.
    nll: f64,
    nll2: f64,
    scored: usize,
}

/// Where a measurement stands (after each chunk) or ended.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerplexityReport {
    /// `exp` of the mean negative log-likelihood of the scored tokens so far.
    pub perplexity: f64,
    /// The standard error of that estimate (`+/-`, as llama.cpp prints it); 0 below two tokens.
    pub uncertainty: f64,
    /// Tokens of the whole text.
    pub tokens: usize,
    /// Tokens scored so far (`ctx - ctx / 2 - 1` per chunk).
    pub scored: usize,
    /// Chunks run so far.
    pub chunks_done: usize,
    /// Chunks the text makes.
    pub chunks: usize,
    /// Tokens per chunk.
    pub ctx: usize,
}

impl PerplexityRun {
    /// Tokenizes `text` for a measurement in chunks of `ctx` tokens. An `invalid_parameter`
    /// error when `ctx` is below 4, or when the text is shorter than two chunks (saying how many
    /// tokens it has and needs).
    pub fn new(engine: &Engine, text: &str, ctx: usize) -> Result<Self> {
        if ctx < 4 {
            return Err(Error::InvalidParameter(format!(
                "a perplexity chunk needs at least 4 tokens, got {ctx}"
            )));
        }
        let tokens = engine.tokenizer.encode(text, true)?;
        if tokens.len() < 2 * ctx {
            return Err(Error::InvalidParameter(format!(
                "the text is {} tokens; perplexity with chunks of {ctx} needs at least {} \
                 (two chunks): give a longer text or a smaller context",
                tokens.len(),
                2 * ctx
            )));
        }
        let bos = if engine.tokenizer.adds_bos() {
            engine.tokenizer.bos_id()
        } else {
            None
        };
        Ok(Self {
            chunks: tokens.len() / ctx,
            tokens,
            ctx,
            bos,
            done: 0,
            nll: 0.0,
            nll2: 0.0,
            scored: 0,
        })
    }

    /// Whether every chunk has run.
    pub fn is_finished(&self) -> bool {
        self.done == self.chunks
    }

    /// Runs the next chunk in `session` (whose context must hold `ctx` tokens; its cache is
    /// cleared) and returns the estimate so far; `None` once every chunk has run.
    pub fn next_chunk(&mut self, session: &mut Session) -> Result<Option<PerplexityReport>> {
        if self.is_finished() {
            return Ok(None);
        }
        let start = self.done * self.ctx;
        let mut chunk = self.tokens[start..start + self.ctx].to_vec();
        if let Some(bos) = self.bos {
            chunk[0] = bos;
        }
        let first = self.ctx / 2;
        let (mut nll, mut nll2) = (0.0, 0.0);
        session.score(&chunk, |j, logits| {
            if j < first || j + 1 >= chunk.len() {
                return;
            }
            let lp = log_softmax_at(logits, chunk[j + 1] as usize);
            nll -= lp;
            nll2 += lp * lp;
        })?;
        self.nll += nll;
        self.nll2 += nll2;
        self.scored += self.ctx - first - 1;
        self.done += 1;
        Ok(Some(self.report()))
    }

    /// The estimate over the chunks run so far.
    pub fn report(&self) -> PerplexityReport {
        let n = self.scored.max(1) as f64;
        let mean = self.nll / n;
        let perplexity = mean.exp();
        let variance = self.nll2 / n - mean * mean;
        let uncertainty = if self.scored > 1 && variance > 0.0 {
            (variance / (n - 1.0)).sqrt() * perplexity
        } else {
            0.0
        };
        PerplexityReport {
            perplexity,
            uncertainty,
            tokens: self.tokens.len(),
            scored: self.scored,
            chunks_done: self.done,
            chunks: self.chunks,
            ctx: self.ctx,
        }
    }
}

/// `log softmax(logits)[id]`, in f64.
fn log_softmax_at(logits: &[f32], id: usize) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    logits[id] as f64 - max - sum.ln()
}

#[cfg(test)]
mod tests {
    use super::log_softmax_at;

    #[test]
    fn log_softmax_of_equal_logits_is_minus_log_n() {
        let lp = log_softmax_at(&[3.0; 8], 5);
        assert!((lp + (8f64).ln()).abs() < 1e-12, "{lp}");
        // Shifting every logit changes nothing.
        let a = log_softmax_at(&[1.0, 2.0, 3.0], 2);
        let b = log_softmax_at(&[101.0, 102.0, 103.0], 2);
        assert!((a - b).abs() < 1e-12);
    }
}
