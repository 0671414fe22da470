//! The LayerNorm families: GPT-2, Falcon, MPT and StableLM 2. Each normalizes with LayerNorm
//! (mean and variance, usually with a bias) where the llama family uses RMSNorm, and each has
//! one or two habits of its own:
//! - GPT-2 learns its position embeddings (no RoPE), fuses q/k/v, and has biases everywhere;
//!   its MLP is ungated GELU;
//! - Falcon runs attention and the MLP in parallel from the same normed input (Falcon 40B norms
//!   attention's input with `attn_norm_2`), shares one key/value head among all queries (7B),
//!   and has an ungated GELU MLP;
//! - MPT biases attention by distance (ALiBi) instead of rotating, clamps q/k/v, and has an
//!   ungated GELU MLP;
//! - StableLM 2 rotates a quarter of each head, has q/k/v biases, and in its 12B form norms
//!   each query and key head with weights of its own and runs the MLP in parallel (no
//!   `ffn_norm`).
//!
//! This file only reads and checks the GGUF; [`decoder`](super::decoder) runs the [`Plan`].

use super::hparams::Hparams;
use super::ops::RopeStyle;
use super::plan::{Activation, HeadNorm, NormKind, Plan};
use super::weights::WeightLoader;
use crate::error::{Error, Result};
use crate::gguf::{qtype_name, Gguf, QType};

/// Which family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Gpt2,
    Falcon,
    Mpt,
    StableLm,
}

impl Family {
    fn arch(self) -> &'static str {
        match self {
            Family::Gpt2 => "gpt2",
            Family::Falcon => "falcon",
            Family::Mpt => "mpt",
            Family::StableLm => "stablelm",
        }
    }
}

/// Reads a GPT-2, Falcon, MPT or StableLM model into a [`Plan`].
pub fn load(g: &Gguf, family: Family) -> Result<Plan> {
    let h = Hparams::read(g, family.arch())?;
    let (n_embd, head_dim) = (h.n_embd, h.head_dim);
    let w = WeightLoader { gguf: g };
    let mut layers = h.layers(&w)?;
    for (i, layer) in layers.iter_mut().enumerate() {
        let name = |s: &str| format!("blk.{i}.{s}");
        Hparams::require(&layer.attn_norm, name("attn_norm"))?;
        let gated = layer.gate.is_some();
        match family {
            Family::Gpt2 | Family::Mpt => {
                Hparams::require(&layer.ffn_norm, name("ffn_norm"))?;
                layer.rope = None;
            }
            Family::Falcon => {
                // Attention reads `attn_norm_2` where the file has it (40B) and the MLP
                // `attn_norm`; otherwise both read `attn_norm`.
                if let Some(norm_2) = w.norm_opt(&name("attn_norm_2"), n_embd)? {
                    layer.ffn_norm = layer.attn_norm.replace(norm_2);
                } else {
                    layer.ffn_norm = None;
                }
                layer.parallel = true;
            }
            Family::StableLm => {
                layer.parallel = layer.ffn_norm.is_none();
                // Per-head norms with weights of their own for each head (12B).
                layer.q_norm =
                    stablelm_head_norm(&w, &name("attn_q_norm.weight"), h.n_head, head_dim)?;
                layer.k_norm =
                    stablelm_head_norm(&w, &name("attn_k_norm.weight"), h.n_kv_head, head_dim)?;
            }
        }
        if family == Family::Mpt {
            if w.has(&name("ffn_act.scales")) {
                return Err(Error::UnsupportedFeature(
                    "MPT's learned activation scales (`ffn_act.scales`)".into(),
                ));
            }
            // Optional LayerNorms over the whole query and key vectors, with biases.
            for (slot, t, len) in [
                (&mut layer.q_norm, "attn_q_norm", h.n_head * head_dim),
                (&mut layer.k_norm, "attn_k_norm", h.n_kv_head * head_dim),
            ] {
                *slot = w
                    .norm_opt(&name(t), len)?
                    .map(|norm| HeadNorm { norm, group: len });
            }
        }
        // Only StableLM's MLP is gated; the others' must not be.
        if gated != (family == Family::StableLm) {
            return Err(Error::MissingTensor(name(if gated {
                "ffn_up.weight (ungated)"
            } else {
                "ffn_gate.weight"
            })));
        }
    }
    let ropes = match family {
        Family::Gpt2 | Family::Mpt => Vec::new(),
        Family::Falcon | Family::StableLm => vec![h.rope(&w, h.rope_dims()?, 10_000.0)?],
    };
    let mut plan = h.plan(&w, layers, ropes)?;
    plan.norm_kind = NormKind::Layer;
    plan.rope_style = RopeStyle::Halves;
    plan.activation = match family {
        Family::StableLm => Activation::Silu,
        _ => Activation::GeluTanh,
    };
    match family {
        Family::Gpt2 => {
            plan.position_embed = Some(w.matrix("position_embd.weight", h.context, n_embd)?);
        }
        Family::Mpt => {
            if w.has("position_embd.weight") {
                plan.position_embed = Some(w.matrix("position_embd.weight", h.context, n_embd)?);
            }
            plan.alibi_max_bias = h.f32_opt("attention.max_alibi_bias")?.filter(|&b| b > 0.0);
            plan.clamp_kqv = h.f32_opt("attention.clamp_kqv")?.filter(|&c| c > 0.0);
        }
        Family::Falcon | Family::StableLm => {}
    }
    Ok(plan)
}

/// StableLM 2 12B's per-head query or key norm: a `[heads, head_dim]` weight, one row per head.
fn stablelm_head_norm(
    w: &WeightLoader<'_>,
    name: &str,
    heads: usize,
    head_dim: usize,
) -> Result<Option<HeadNorm>> {
    if !w.has(name) {
        return Ok(None);
    }
    let t = w.tensor(name)?;
    if t.shape != [heads, head_dim] {
        return Err(Error::TensorShape {
            name: name.into(),
            got: t.shape.clone(),
            expected: vec![heads, head_dim],
        });
    }
    if !matches!(t.qtype, QType::F32 | QType::F16 | QType::BF16) {
        return Err(Error::UnsupportedQuant {
            tensor: name.into(),
            qtype: format!("{} (norm weights must be float)", qtype_name(t.qtype)),
        });
    }
    let mut weight = vec![0f32; heads * head_dim];
    crate::kernels::dequantize_row(t.qtype, &t.data, &mut weight);
    Ok(Some(HeadNorm {
        norm: super::plan::Norm { weight, bias: None },
        group: head_dim,
    }))
}
