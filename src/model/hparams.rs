//! The hyperparameters every decoder family stores under `<arch>.*` in GGUF, read and checked in
//! one place, so a family's loader reads only what sets it apart.

use super::ops::RopeStyle;
use super::plan::{Activation, LayerPlan, Norm, NormKind, Plan, RopePlan, RopeScaling};
use super::weights::{LayerShape, WeightLoader};
use crate::error::{Error, Result};
use crate::gguf::{self, Gguf, Metadata};

pub struct Hparams<'a> {
    md: &'a Metadata,
    arch: &'a str,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub n_ff: usize,
    /// The width of each query, key and value head (`attention.key_length`, else
    /// `n_embd / n_head`).
    pub head_dim: usize,
    /// Epsilon of the norms (`attention.layer_norm_rms_epsilon`, else
    /// `attention.layer_norm_epsilon` for LayerNorm families).
    pub eps: f32,
    /// The context length the model was trained for.
    pub context: usize,
}

impl<'a> Hparams<'a> {
    /// Reads `arch`'s keys, checking that the heads fit: whole KV groups, and heads that divide
    /// the width unless the file gives their size; value heads as wide as key heads.
    pub fn read(g: &'a Gguf, arch: &'a str) -> Result<Self> {
        let md = &g.metadata;
        let key = |k: &str| format!("{arch}.{k}");
        // Mixture-of-experts files share an architecture name with dense ones (Mixtral is
        // `llama`): refuse them by name before any tensor is missed.
        if let Some(experts) = gguf::get_usize_opt(md, &key("expert_count"))?.filter(|&e| e > 0) {
            return Err(Error::UnsupportedFeature(format!(
                "a mixture of experts ({experts} experts per layer)"
            )));
        }
        let n_embd = gguf::get_usize(md, &key("embedding_length"))?;
        let n_head = gguf::get_usize(md, &key("attention.head_count"))?;
        let n_kv_head = gguf::get_usize_opt(md, &key("attention.head_count_kv"))?.unwrap_or(n_head);
        let key_length = gguf::get_usize_opt(md, &key("attention.key_length"))?;
        // Heads may be wider than n_embd / n_head when the file says so (Qwen 3, Gemma 3).
        if n_head == 0
            || n_kv_head == 0
            || n_head % n_kv_head != 0
            || (key_length.is_none() && n_embd % n_head != 0)
            || key_length == Some(0)
        {
            return Err(Error::InvalidMetadata {
                key: key("attention.head_count"),
                reason: format!(
                    "{n_head} heads / {n_kv_head} KV heads do not divide embedding {n_embd}"
                ),
            });
        }
        let head_dim = key_length.unwrap_or(n_embd / n_head);
        let value_dim =
            gguf::get_usize_opt(md, &key("attention.value_length"))?.unwrap_or(head_dim);
        if value_dim != head_dim {
            return Err(Error::InvalidMetadata {
                key: key("attention.value_length"),
                reason: format!("value heads of {value_dim} differ from key heads of {head_dim}"),
            });
        }
        Ok(Self {
            md,
            arch,
            n_embd,
            n_layer: gguf::get_usize(md, &key("block_count"))?,
            n_head,
            n_kv_head,
            n_ff: gguf::get_usize(md, &key("feed_forward_length"))?,
            head_dim,
            eps: match gguf::get_f32_opt(md, &key("attention.layer_norm_rms_epsilon"))? {
                Some(eps) => eps,
                None => gguf::get_f32(md, &key("attention.layer_norm_epsilon"))?,
            },
            context: gguf::get_usize(md, &key("context_length"))?,
        })
    }

    /// `<arch>.<k>`, the name of one of this family's keys.
    pub fn key(&self, k: &str) -> String {
        format!("{}.{k}", self.arch)
    }

    pub fn usize_opt(&self, k: &str) -> Result<Option<usize>> {
        gguf::get_usize_opt(self.md, &self.key(k))
    }

    pub fn f32_opt(&self, k: &str) -> Result<Option<f32>> {
        gguf::get_f32_opt(self.md, &self.key(k))
    }

    /// The widths of each layer's tensors.
    pub fn layer_shape(&self) -> LayerShape {
        LayerShape {
            n_embd: self.n_embd,
            n_ff: self.n_ff,
            q_dim: self.n_head * self.head_dim,
            kv_dim: self.n_kv_head * self.head_dim,
        }
    }

    /// The rope's base frequency (`rope.freq_base`), else the family's default.
    pub fn rope_base(&self, default: f32) -> Result<f32> {
        Ok(self.f32_opt("rope.freq_base")?.unwrap_or(default))
    }

    /// How the file scales RoPE positions, as llama.cpp reads it: `rope.scaling.type` (absent
    /// means linear) with `rope.scaling.factor` (absent or 0 means none). "longrope" (Phi-3)
    /// scales like linear; its factors are tensors ([`Hparams::rope`]). Any other type is an
    /// error: a model run with the wrong positions talks nonsense.
    pub fn rope_scaling(&self) -> Result<RopeScaling> {
        let kind = gguf::get_str_opt(self.md, &self.key("rope.scaling.type"))?;
        let factor = match self.f32_opt("rope.scaling.factor")? {
            Some(f) => Some(f),
            None => self.f32_opt("rope.scale_linear")?,
        }
        .filter(|&f| f != 0.0);
        if let Some(f) = factor {
            if !(f.is_finite() && f > 0.0) {
                return Err(Error::InvalidMetadata {
                    key: self.key("rope.scaling.factor"),
                    reason: format!("{f} is not a positive scale"),
                });
            }
        }
        Ok(match kind {
            Some("none") => RopeScaling::None,
            None | Some("linear") | Some("longrope") => match factor {
                Some(factor) => RopeScaling::Linear { factor },
                None => RopeScaling::None,
            },
            // llama.cpp's ramp bounds; it reads no `yarn_beta_*` keys from files, so neither
            // does wick (the reference and wick must agree on the same file).
            Some("yarn") => RopeScaling::Yarn {
                factor: factor.unwrap_or(1.0),
                beta_fast: 32.0,
                beta_slow: 1.0,
            },
            Some(other) => {
                return Err(Error::UnsupportedFeature(format!(
                "RoPE scaling type `{other}` (in {}; wick runs none, linear, yarn and longrope)",
                self.key("rope.scaling.type")
            )))
            }
        })
    }

    /// The model's rope over `dims` dimensions: base, scaling, the original context, the
    /// attention factor, and the per-frequency factors the file has as tensors (Llama 3.1's
    /// `rope_freqs`; Phi-3's `rope_factors_short` / `rope_factors_long`).
    pub fn rope(&self, w: &WeightLoader<'_>, dims: usize, default_base: f32) -> Result<RopePlan> {
        let half = dims / 2;
        let (factors, long_factors) = if w.has("rope_freqs.weight") {
            (Some(w.vector("rope_freqs.weight", half)?), None)
        } else {
            (
                w.vector_opt("rope_factors_short.weight", half)?,
                w.vector_opt("rope_factors_long.weight", half)?,
            )
        };
        Ok(RopePlan {
            dims,
            base: self.rope_base(default_base)?,
            factors,
            long_factors,
            scaling: self.rope_scaling()?,
            original_context: self
                .usize_opt("rope.scaling.original_context_length")?
                .filter(|&c| c > 0)
                .unwrap_or(self.context),
            attn_factor: self.f32_opt("rope.scaling.attn_factor")?.unwrap_or(1.0),
        })
    }

    /// The rotated dimensions of each head (`rope.dimension_count`, else the whole head),
    /// checked: an even count no wider than the head.
    pub fn rope_dims(&self) -> Result<usize> {
        let dims = self
            .usize_opt("rope.dimension_count")?
            .unwrap_or(self.head_dim);
        if dims > self.head_dim || dims % 2 != 0 || dims == 0 {
            return Err(Error::InvalidMetadata {
                key: self.key("rope.dimension_count"),
                reason: format!("{dims} rotated dimensions for heads of {}", self.head_dim),
            });
        }
        Ok(dims)
    }

    /// Which layers attend through a sliding window: `attention.sliding_window_pattern` as one
    /// flag per layer, or as a period `n` (layer `i` slides unless `i % n == n - 1`), else
    /// `default_period`, as llama.cpp reads it.
    pub fn sliding_layers(&self, default_period: usize) -> Result<Vec<bool>> {
        let key = self.key("attention.sliding_window_pattern");
        if let Some(gguf::Value::Array(flags)) = self.md.get(&key) {
            if flags.len() != self.n_layer {
                return Err(Error::InvalidMetadata {
                    key,
                    reason: format!("{} flags for {} layers", flags.len(), self.n_layer),
                });
            }
            return flags
                .iter()
                .map(|f| match f {
                    gguf::Value::Bool(b) => Ok(*b),
                    other => Err(Error::InvalidMetadata {
                        key: key.clone(),
                        reason: format!("expected booleans, found {other:?}"),
                    }),
                })
                .collect();
        }
        let n = self
            .usize_opt("attention.sliding_window_pattern")?
            .unwrap_or(default_period);
        Ok((0..self.n_layer).map(|i| n == 0 || i % n < n - 1).collect())
    }

    /// A plan with the llama family's defaults around `layers`: RMSNorm, attention scaled by
    /// 1/sqrt(head_dim), SwiGLU, adjacent-pair RoPE over `ropes`, `output_norm` and the output projection (tied when the file
    /// has no `output.weight`). A loader changes what its family does differently.
    pub fn plan(
        &self,
        w: &WeightLoader<'_>,
        layers: Vec<LayerPlan>,
        ropes: Vec<RopePlan>,
    ) -> Result<Plan> {
        let (embed, output) = w.embeddings_and_output(self.n_embd)?;
        let output_bias = w.vector_opt("output.bias", output.rows)?;
        Ok(Plan {
            n_embd: self.n_embd,
            n_ff: self.n_ff,
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
            attn_scale: 1.0 / (self.head_dim as f32).sqrt(),
            attn_softcap: None,
            alibi_max_bias: None,
            clamp_kqv: None,
            norm_kind: NormKind::Rms,
            eps: self.eps,
            embed,
            embed_scale: 1.0,
            position_embed: None,
            residual_scale: 1.0,
            activation: Activation::Silu,
            rope_style: RopeStyle::Interleaved,
            ropes,
            layers,
            output_norm: w.norm("output_norm", self.n_embd)?,
            output,
            output_bias,
            logit_scale: 1.0,
            final_softcap: None,
            max_context: self.context,
        })
    }

    /// The layers under standard names, as [`WeightLoader::layer`] reads them.
    pub fn layers(&self, w: &WeightLoader<'_>) -> Result<Vec<LayerPlan>> {
        // The embeddings first: a width that disagrees with the tensors is named at the
        // tensor every model has.
        w.embeddings_and_output(self.n_embd)?;
        (0..self.n_layer)
            .map(|i| w.layer(i, self.layer_shape()))
            .collect()
    }

    /// Checks that a layer has the norm its family needs (the generic loader reads norms as
    /// optional).
    pub fn require(norm: &Option<Norm>, name: String) -> Result<()> {
        match norm {
            Some(_) => Ok(()),
            None => Err(Error::MissingTensor(format!("{name}.weight"))),
        }
    }
}
