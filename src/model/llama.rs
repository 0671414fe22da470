//! The llama family: Llama 1/2/3, SmolLM, TinyLlama, Mistral and their fine-tunes, Qwen 2 / 2.5
//! and Qwen 3.
//! Pre-norm blocks (RMSNorm), rotary embeddings, grouped-query attention, SwiGLU MLP, and an
//! output projection that may be tied to the token embeddings. A [`Variant`] says how a member
//! differs from Llama: Qwen 2 adds biases to the query, key and value projections, Qwen 3 norms
//! each query and key head instead; both rotate halves (NEOX) instead of adjacent pairs.
//!
//! This file only reads and checks the GGUF; [`decoder`](super::decoder) runs the [`Plan`].

use super::hparams::Hparams;
use super::ops::RopeStyle;
use super::plan::{Activation, Plan, RopePlan};
use super::weights::WeightLoader;
use crate::error::{Error, Result};
use crate::gguf::Gguf;

/// A member of the family: its GGUF architecture name and what sets it apart.
#[derive(Clone, Copy, Debug)]
pub struct Variant {
    pub arch: &'static str,
    pub rope_style: RopeStyle,
    /// Per-head RMSNorm of queries and keys before RoPE (`attn_q_norm`, `attn_k_norm`).
    pub head_norms: bool,
    /// Biases on the query, key and value projections (`attn_q.bias`, ...).
    pub qkv_bias: bool,
}

pub const LLAMA: Variant = Variant {
    arch: "llama",
    rope_style: RopeStyle::Interleaved,
    head_norms: false,
    qkv_bias: false,
};

pub const QWEN2: Variant = Variant {
    arch: "qwen2",
    rope_style: RopeStyle::Halves,
    head_norms: false,
    qkv_bias: true,
};

pub const QWEN3: Variant = Variant {
    arch: "qwen3",
    rope_style: RopeStyle::Halves,
    head_norms: true,
    qkv_bias: false,
};

/// Reads a llama-family model (`variant` says which member) into a [`Plan`].
pub fn load(g: &Gguf, variant: Variant) -> Result<Plan> {
    let h = Hparams::read(g, variant.arch)?;
    let head_dim = h.head_dim;
    let rope_dims = h.usize_opt("rope.dimension_count")?.unwrap_or(head_dim);
    if rope_dims > head_dim || rope_dims % 2 != 0 {
        return Err(Error::InvalidMetadata {
            key: h.key("rope.dimension_count"),
            reason: format!("{rope_dims} rotated dimensions for heads of {head_dim}"),
        });
    }
    let w = WeightLoader { gguf: g };
    let (embed, output) = w.embeddings_and_output(h.n_embd)?;
    let shape = h.layer_shape();
    let layers = (0..h.n_layer)
        .map(|i| {
            let p = |s: &str| format!("blk.{i}.{s}.weight");
            let bias = |s: &str| format!("blk.{i}.{s}.bias");
            let mut layer = w.layer(i, shape)?;
            if variant.head_norms {
                layer.q_norm = Some(w.vector(&p("attn_q_norm"), head_dim)?);
                layer.k_norm = Some(w.vector(&p("attn_k_norm"), head_dim)?);
            }
            if variant.qkv_bias {
                let mut b = w.vector(&bias("attn_q"), shape.q_dim)?;
                b.extend(w.vector(&bias("attn_k"), shape.kv_dim)?);
                b.extend(w.vector(&bias("attn_v"), shape.kv_dim)?);
                layer.qkv_bias = Some(b);
            }
            Ok(layer)
        })
        .collect::<Result<Vec<_>>>()?;
    // Llama 3.1's per-frequency divisors, when present.
    let factors = if w.has("rope_freqs.weight") {
        Some(w.vector("rope_freqs.weight", rope_dims / 2)?)
    } else {
        None
    };
    Ok(Plan {
        n_embd: h.n_embd,
        n_ff: h.n_ff,
        n_head: h.n_head,
        n_kv_head: h.n_kv_head,
        head_dim,
        attn_scale: 1.0 / (head_dim as f32).sqrt(),
        eps: h.eps,
        embed,
        embed_scale: 1.0,
        activation: Activation::Silu,
        rope_style: variant.rope_style,
        ropes: vec![RopePlan {
            dims: rope_dims,
            base: h.rope_base(10_000.0)?,
            scale: h.rope_linear_scale()?,
            factors,
        }],
        layers,
        output_norm: w.vector("output_norm.weight", h.n_embd)?,
        output,
        max_context: h.context,
    })
}
