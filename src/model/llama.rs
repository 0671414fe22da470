//! The llama family and its close relatives, all RMSNorm + rotary + SwiGLU decoders: Llama
//! 1/2/3 (SmolLM, TinyLlama, Mistral and fine-tunes), Qwen 2 / 2.5, Qwen 3, SmolLM3, Granite 3,
//! OLMo 2 and Phi-3 / Phi-4-mini. A [`Variant`] says how a member differs from Llama:
//! - Qwen 2 adds biases to the query, key and value projections, and rotates halves (NEOX);
//! - Qwen 3 norms each query and key head instead, and rotates halves;
//! - SmolLM3 skips RoPE on every fourth layer;
//! - Granite scales the embeddings, each block's output, the attention and the logits;
//! - OLMo 2 norms after attention and the MLP only, and norms the whole query and key vectors;
//! - Phi-3 fuses q/k/v and gate/up (split at load by the weight loader), rotates halves over part
//!   of each head, and may carry LongRoPE factors (read with every rope, [`Hparams::rope`]).
//!
//! Fused tensors, biases, `rope_freqs` and rope scaling are read for every member alike.
//! This file only reads and checks the GGUF; [`decoder`](super::decoder) runs the [`Plan`].

use super::hparams::Hparams;
use super::ops::RopeStyle;
use super::plan::{HeadNorm, Plan};
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
    /// Biases on the query, key and value projections are required (`attn_q.bias`, ...).
    pub qkv_bias: bool,
    /// Every n-th layer (the n-th, 2n-th, ...) runs without RoPE.
    pub no_rope_every: Option<usize>,
    /// Granite's embedding, residual, attention and logit scales.
    pub granite_scales: bool,
    /// OLMo 2: norms after attention and the MLP instead of before, and RMSNorm over the whole
    /// query and key vectors.
    pub post_norms_only: bool,
}

const LLAMA_LIKE: Variant = Variant {
    arch: "llama",
    rope_style: RopeStyle::Interleaved,
    head_norms: false,
    qkv_bias: false,
    no_rope_every: None,
    granite_scales: false,
    post_norms_only: false,
};

pub const LLAMA: Variant = LLAMA_LIKE;

pub const QWEN2: Variant = Variant {
    arch: "qwen2",
    rope_style: RopeStyle::Halves,
    qkv_bias: true,
    ..LLAMA_LIKE
};

pub const QWEN3: Variant = Variant {
    arch: "qwen3",
    rope_style: RopeStyle::Halves,
    head_norms: true,
    ..LLAMA_LIKE
};

/// SmolLM3: llama.cpp fixes the no-RoPE period at 4 (the file does not store it).
pub const SMOLLM3: Variant = Variant {
    arch: "smollm3",
    no_rope_every: Some(4),
    ..LLAMA_LIKE
};

pub const GRANITE: Variant = Variant {
    arch: "granite",
    granite_scales: true,
    ..LLAMA_LIKE
};

pub const OLMO2: Variant = Variant {
    arch: "olmo2",
    rope_style: RopeStyle::Halves,
    post_norms_only: true,
    ..LLAMA_LIKE
};

pub const PHI3: Variant = Variant {
    arch: "phi3",
    rope_style: RopeStyle::Halves,
    ..LLAMA_LIKE
};

/// Reads a llama-family model (`variant` says which member) into a [`Plan`].
pub fn load(g: &Gguf, variant: Variant) -> Result<Plan> {
    let h = Hparams::read(g, variant.arch)?;
    let head_dim = h.head_dim;
    let rope_dims = h.rope_dims()?;
    let w = WeightLoader { gguf: g };
    let mut layers = h.layers(&w)?;
    for (i, layer) in layers.iter_mut().enumerate() {
        let name = |s: &str| format!("blk.{i}.{s}");
        if variant.post_norms_only {
            if h.usize_opt("attention.sliding_window")?
                .is_some_and(|w| w > 0)
            {
                return Err(Error::UnsupportedFeature(
                    "OLMo 3's sliding-window attention".into(),
                ));
            }
            layer.attn_norm = None;
            layer.ffn_norm = None;
            layer.post_attn_norm = Some(w.norm(&name("post_attention_norm"), h.n_embd)?);
            layer.post_ffn_norm = Some(w.norm(&name("post_ffw_norm"), h.n_embd)?);
            let (q_dim, kv_dim) = (h.n_head * head_dim, h.n_kv_head * head_dim);
            layer.q_norm = Some(HeadNorm {
                norm: w.norm(&name("attn_q_norm"), q_dim)?,
                group: q_dim,
            });
            layer.k_norm = Some(HeadNorm {
                norm: w.norm(&name("attn_k_norm"), kv_dim)?,
                group: kv_dim,
            });
        } else {
            Hparams::require(&layer.attn_norm, name("attn_norm"))?;
            Hparams::require(&layer.ffn_norm, name("ffn_norm"))?;
        }
        if layer.gate.is_none() {
            return Err(Error::MissingTensor(name("ffn_gate.weight")));
        }
        if variant.head_norms {
            layer.q_norm = Some(w.shared_head_norm(&name("attn_q_norm.weight"), head_dim)?);
            layer.k_norm = Some(w.shared_head_norm(&name("attn_k_norm.weight"), head_dim)?);
        }
        if variant.qkv_bias && layer.qkv_bias.is_none() {
            return Err(Error::MissingTensor(name("attn_q.bias")));
        }
        if let Some(n) = variant.no_rope_every {
            if (i + 1) % n == 0 {
                layer.rope = None;
            }
        }
    }
    let rope = h.rope(&w, rope_dims, 10_000.0)?;
    let mut plan = h.plan(&w, layers, vec![rope])?;
    plan.rope_style = variant.rope_style;
    if variant.granite_scales {
        // llama.cpp: logits divided by `logit_scale` (required), blocks' outputs times
        // `residual_scale`, q·k times `attention.scale` (each optional, 0 meaning unset).
        let logit_scale = crate::gguf::get_f32(&g.metadata, &h.key("logit_scale"))?;
        if logit_scale == 0.0 || !logit_scale.is_finite() {
            return Err(Error::InvalidMetadata {
                key: h.key("logit_scale"),
                reason: format!("{logit_scale} cannot divide the logits"),
            });
        }
        plan.logit_scale = 1.0 / logit_scale;
        plan.embed_scale = h
            .f32_opt("embedding_scale")?
            .filter(|&s| s != 0.0)
            .unwrap_or(1.0);
        plan.residual_scale = h
            .f32_opt("residual_scale")?
            .filter(|&s| s != 0.0)
            .unwrap_or(1.0);
    }
    if variant.granite_scales || variant.no_rope_every.is_some() {
        if let Some(scale) = h.f32_opt("attention.scale")?.filter(|&s| s != 0.0) {
            plan.attn_scale = scale;
        }
    }
    Ok(plan)
}
