//! Gemma 3: like llama, but with GELU (tanh) in the MLP, RMSNorm on every query and key head,
//! norms after attention and after the MLP as well as before, embeddings scaled by sqrt(width),
//! rotary halves, tied output embeddings, and local layers that attend only to a sliding window
//! (with their own rope base) interleaved with global layers.
//!
//! The GGUF converter already folds Gemma's `(1 + w)` norm convention into the stored weights,
//! so the norms here are plain RMSNorm.
//!
//! This file only reads and checks the GGUF; [`decoder`](super::decoder) runs the [`Plan`].

use super::hparams::Hparams;
use super::ops::RopeStyle;
use super::plan::{Activation, Plan, RopePlan};
use super::weights::WeightLoader;
use crate::error::{Error, Result};
use crate::gguf::{self, Gguf};

/// Gemma 3's local layers use this rope base whatever the global one is (not stored in GGUF).
const ROPE_BASE_LOCAL: f32 = 10_000.0;
/// Five local layers, then one global layer, repeating (when the file does not say otherwise).
const DEFAULT_SLIDING_WINDOW_PATTERN: usize = 6;

/// Index of the global layers' rope in [`Plan::ropes`]; the local layers' is `ROPE_LOCAL`.
const ROPE_GLOBAL: usize = 0;
const ROPE_LOCAL: usize = 1;

/// Reads a Gemma 3 model into a [`Plan`].
pub fn load(g: &Gguf) -> Result<Plan> {
    let h = Hparams::read(g, "gemma3")?;
    let (n_embd, head_dim) = (h.n_embd, h.head_dim);
    if head_dim % 2 != 0 {
        return Err(Error::InvalidMetadata {
            key: h.key("attention.key_length"),
            reason: format!("heads of {head_dim} dimensions cannot be rotated in pairs"),
        });
    }
    let window = gguf::get_usize(&g.metadata, &h.key("attention.sliding_window"))?.max(1);
    let pattern = h
        .usize_opt("attention.sliding_window_pattern")?
        .unwrap_or(DEFAULT_SLIDING_WINDOW_PATTERN)
        .max(1);
    // Gemma 3 scales queries by query_pre_attn_scalar^-1/2, which is head_dim except for the
    // 27B model (62 layers), where it is n_embd / n_head. GGUF does not store it.
    let attn_scale = if h.n_layer == 62 {
        1.0 / ((n_embd / h.n_head) as f32).sqrt()
    } else {
        1.0 / (head_dim as f32).sqrt()
    };
    let w = WeightLoader { gguf: g };
    let (embed, output) = w.embeddings_and_output(n_embd)?;
    let layers = (0..h.n_layer)
        .map(|i| {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let local = i % pattern < pattern - 1;
            let mut layer = w.layer(i, h.layer_shape())?;
            layer.q_norm = Some(w.vector(&p("attn_q_norm"), head_dim)?);
            layer.k_norm = Some(w.vector(&p("attn_k_norm"), head_dim)?);
            layer.post_attn_norm = Some(w.vector(&p("post_attention_norm"), n_embd)?);
            layer.post_ffn_norm = Some(w.vector(&p("post_ffw_norm"), n_embd)?);
            layer.rope = if local { ROPE_LOCAL } else { ROPE_GLOBAL };
            layer.window = local.then_some(window);
            Ok(layer)
        })
        .collect::<Result<Vec<_>>>()?;
    let rope = |base, scale| RopePlan {
        dims: head_dim,
        base,
        scale,
        factors: None,
    };
    let mut ropes = vec![rope(0.0, 1.0); 2];
    ropes[ROPE_GLOBAL] = rope(h.rope_base(1_000_000.0)?, h.rope_linear_scale()?);
    ropes[ROPE_LOCAL] = rope(ROPE_BASE_LOCAL, 1.0);
    Ok(Plan {
        n_embd,
        n_ff: h.n_ff,
        n_head: h.n_head,
        n_kv_head: h.n_kv_head,
        head_dim,
        attn_scale,
        eps: h.eps,
        embed,
        embed_scale: (n_embd as f32).sqrt(),
        activation: Activation::GeluTanh,
        rope_style: RopeStyle::Halves,
        ropes,
        layers,
        output_norm: w.vector("output_norm.weight", n_embd)?,
        output,
        max_context: h.context,
    })
}
