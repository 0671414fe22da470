//! Gemma 2 and Gemma 3: like llama, but with GELU (tanh) in the MLP, norms after attention and
//! after the MLP as well as before, embeddings scaled by sqrt(width), rotary halves, tied output
//! embeddings, and local layers that attend only to a sliding window interleaved with global
//! layers. Gemma 2 alternates them and soft-caps attention scores and logits; Gemma 3 has five
//! local layers per global one, each with its own rope base, and norms every query and key head.
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
use crate::gguf::Gguf;

/// Which Gemma.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Generation {
    Gemma2,
    Gemma3,
}

/// Index of the global layers' rope in [`Plan::ropes`]; the local layers' is `ROPE_LOCAL`.
const ROPE_GLOBAL: usize = 0;
const ROPE_LOCAL: usize = 1;

/// Reads a Gemma 2 or Gemma 3 model into a [`Plan`].
pub fn load(g: &Gguf, gen: Generation) -> Result<Plan> {
    let arch = match gen {
        Generation::Gemma2 => "gemma2",
        Generation::Gemma3 => "gemma3",
    };
    let h = Hparams::read(g, arch)?;
    let (n_embd, head_dim) = (h.n_embd, h.head_dim);
    if head_dim % 2 != 0 {
        return Err(Error::InvalidMetadata {
            key: h.key("attention.key_length"),
            reason: format!("heads of {head_dim} dimensions cannot be rotated in pairs"),
        });
    }
    // llama.cpp's defaults where the file is silent: Gemma 2 slides 4096 positions on every
    // other layer; Gemma 3 slides only when the file gives a window, five local layers per
    // global one.
    let (window, sliding) = match (gen, h.usize_opt("attention.sliding_window")?) {
        (_, Some(0)) | (Generation::Gemma3, None) => (1, vec![false; h.n_layer]),
        (Generation::Gemma2, window) => (window.unwrap_or(4096), h.sliding_layers(2)?),
        (Generation::Gemma3, Some(window)) => (window, h.sliding_layers(6)?),
    };
    let w = WeightLoader { gguf: g };
    let mut layers = h.layers(&w)?;
    for (i, layer) in layers.iter_mut().enumerate() {
        let name = |s: &str| format!("blk.{i}.{s}");
        Hparams::require(&layer.attn_norm, name("attn_norm"))?;
        Hparams::require(&layer.ffn_norm, name("ffn_norm"))?;
        if layer.gate.is_none() {
            return Err(Error::MissingTensor(name("ffn_gate.weight")));
        }
        if gen == Generation::Gemma3 {
            layer.q_norm = Some(w.shared_head_norm(&name("attn_q_norm.weight"), head_dim)?);
            layer.k_norm = Some(w.shared_head_norm(&name("attn_k_norm.weight"), head_dim)?);
        }
        layer.post_attn_norm = Some(w.norm(&name("post_attention_norm"), n_embd)?);
        layer.post_ffn_norm = Some(w.norm(&name("post_ffw_norm"), n_embd)?);
        let local = sliding[i];
        layer.rope = Some(if local { ROPE_LOCAL } else { ROPE_GLOBAL });
        layer.window = local.then_some(window);
    }
    let default_base = match gen {
        Generation::Gemma2 => 10_000.0,
        Generation::Gemma3 => 1_000_000.0,
    };
    let global = h.rope(&w, head_dim, default_base)?;
    // The local layers' rope: Gemma 3's is unscaled with base 10 000 unless the file gives
    // `rope.freq_base_swa`; Gemma 2's is the global one unless the file gives a local base.
    let local = match gen {
        Generation::Gemma3 => RopePlan::plain(
            head_dim,
            h.f32_opt("rope.freq_base_swa")?.unwrap_or(10_000.0),
            h.context,
        ),
        Generation::Gemma2 => RopePlan {
            base: h.f32_opt("rope.freq_base_swa")?.unwrap_or(global.base),
            ..global.clone()
        },
    };
    let mut ropes = vec![global.clone(); 2];
    ropes[ROPE_GLOBAL] = global;
    ropes[ROPE_LOCAL] = local;
    let mut plan = h.plan(&w, layers, ropes)?;
    // The output is always the embeddings, whatever else the file holds.
    plan.output = plan.embed.clone();
    plan.output_bias = None;
    // Queries are scaled by query_pre_attn_scalar^-1/2, which is head_dim except for the 27B
    // models (Gemma 2: 46 layers; Gemma 3: 62), where it is n_embd / n_head. GGUF does not
    // store it.
    let big = match gen {
        Generation::Gemma2 => h.n_layer == 46,
        Generation::Gemma3 => h.n_layer == 62,
    };
    if big {
        plan.attn_scale = 1.0 / ((n_embd / h.n_head) as f32).sqrt();
    }
    plan.embed_scale = (n_embd as f32).sqrt();
    plan.activation = Activation::GeluTanh;
    plan.rope_style = RopeStyle::Halves;
    let cap = |k: &str, default: f32| -> Result<Option<f32>> {
        Ok(Some(h.f32_opt(k)?.unwrap_or(default)).filter(|&c| c > 0.0))
    };
    match gen {
        Generation::Gemma2 => {
            plan.attn_softcap = cap("attn_logit_softcapping", 50.0)?;
            plan.final_softcap = cap("final_logit_softcapping", 30.0)?;
        }
        Generation::Gemma3 => plan.final_softcap = cap("final_logit_softcapping", 0.0)?,
    }
    Ok(plan)
}
