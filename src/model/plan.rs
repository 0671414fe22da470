//! The network as data. A family's loader (`llama.rs`, `gemma.rs`, `classic.rs`) reads a GGUF's
//! hyperparameters and tensors, checks them, and returns a [`Plan`]; every backend then runs the
//! Plan and nothing else: the CPU through [`decoder`](super::decoder), the GPU through
//! `gpu::GpuModel`. So the backends cannot disagree about hyperparameters or weights, and a new
//! family is a loader, not a forward pass.
//!
//! The Plan describes a decoder: per layer, `x += post_norm(attention(norm(x)))` then
//! `x += post_norm(mlp(norm(x)))` (or, for a parallel layer, both blocks read the same `x`),
//! with the optional parts below. What differs between families is a field here. A family that
//! needs something no field describes yet adds the field here, one branch where `decoder.rs`
//! reads it and one where the GPU builders do (or a typed refusal there: [`Plan::gpu_gaps`]).

use super::ops::RopeStyle;
use super::weights::Matrix;

/// The MLP's activation: `down(act(gate(h)) * up(h))` when the layer has a gate, else
/// `down(act(up(h)))`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SiLU (SwiGLU when gated).
    Silu,
    /// GELU with the tanh approximation (GeGLU when gated; GPT-2, Falcon and MPT ungated).
    GeluTanh,
}

/// How every norm of the model normalizes a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormKind {
    /// `x / sqrt(mean(x^2) + eps) * w` (Llama and most newer families).
    Rms,
    /// `(x - mean) / sqrt(var + eps) * w + b` (GPT-2, Falcon, MPT, StableLM).
    Layer,
}

/// A norm's weights: a scale per element and, for some LayerNorms, a bias.
#[derive(Clone, Debug)]
pub struct Norm {
    pub weight: Vec<f32>,
    pub bias: Option<Vec<f32>>,
}

impl Norm {
    pub fn new(weight: Vec<f32>) -> Self {
        Self { weight, bias: None }
    }
}

/// A norm of the queries (or keys) before RoPE, over groups of `group` values: one head
/// (`group == head_dim`: Gemma 3, Qwen 3, StableLM 2 12B) or the whole vector (OLMo 2). The
/// weights cover one group (shared by every head) or the whole vector (one set per head).
#[derive(Clone, Debug)]
pub struct HeadNorm {
    pub norm: Norm,
    pub group: usize,
}

/// One rotary-embedding configuration (a model may have several, e.g. Gemma's local and global).
/// The angle of frequency `i` at position `p` is `p * base^(-2i / dims) / factor[i]`, then
/// scaled as [`RopeScaling`] says; the rotated values are multiplied by `attn_factor`.
#[derive(Clone, Debug)]
pub struct RopePlan {
    /// Rotated dimensions of each head (the first ones; fewer than the head's is partial rotary).
    pub dims: usize,
    pub base: f32,
    /// Per-frequency divisors, `dims / 2` of them: Llama 3.1's `rope_freqs`, or Phi-3's LongRoPE
    /// short factors (used while a session's context fits `original_context`).
    pub factors: Option<Vec<f32>>,
    /// Phi-3's LongRoPE long factors, used instead of `factors` when a session's context is
    /// longer than `original_context` (as llama.cpp chooses them: by context, not by position).
    pub long_factors: Option<Vec<f32>>,
    pub scaling: RopeScaling,
    /// The context the model was pretrained for, before any scaling (`rope.scaling.
    /// original_context_length`, else the context length).
    pub original_context: usize,
    /// Multiplies the rotated values (`rope.scaling.attn_factor`; LongRoPE's attention factor).
    pub attn_factor: f32,
}

/// How positions are stretched past the pretraining context.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RopeScaling {
    /// Positions as they are.
    None,
    /// Positions divided by `factor`.
    Linear { factor: f32 },
    /// YaRN: each frequency interpolated by `factor` or extrapolated, ramping between the
    /// dimensions that turn `beta_fast` and `beta_slow` times over the original context, and the
    /// rotated values scaled by `1 + 0.1 ln(factor)`.
    Yarn {
        factor: f32,
        beta_fast: f32,
        beta_slow: f32,
    },
}

impl RopePlan {
    /// A plain rope: no scaling, no factors.
    pub fn plain(dims: usize, base: f32, original_context: usize) -> Self {
        Self {
            dims,
            base,
            factors: None,
            long_factors: None,
            scaling: RopeScaling::None,
            original_context,
            attn_factor: 1.0,
        }
    }

    /// The per-frequency divisors a session with `context` positions uses.
    pub fn factors_for(&self, context: usize) -> Option<&[f32]> {
        match &self.long_factors {
            Some(long) if context > self.original_context => Some(long),
            _ => self.factors.as_deref(),
        }
    }
}

/// One decoder layer: its weights and what sets it apart from the others.
#[derive(Debug)]
pub struct LayerPlan {
    /// The norm before attention; None where attention reads the residual itself (OLMo 2).
    pub attn_norm: Option<Norm>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    /// Biases of the q, k and v projections end to end (`q_dim + 2 * kv_dim`; Qwen 2, GPT-2).
    pub qkv_bias: Option<Vec<f32>>,
    /// Norms of the queries and keys before RoPE (Gemma 3, Qwen 3, OLMo 2, StableLM 2 12B).
    pub q_norm: Option<HeadNorm>,
    pub k_norm: Option<HeadNorm>,
    pub wo: Matrix,
    pub wo_bias: Option<Vec<f32>>,
    /// Norm of the attention output before the residual add (Gemma 2/3, OLMo 2).
    pub post_attn_norm: Option<Norm>,
    /// The norm before the MLP. None in a parallel layer means the MLP reads the attention
    /// norm's output (Falcon 7B, StableLM 2 12B); in a sequential one, the residual (OLMo 2).
    pub ffn_norm: Option<Norm>,
    /// The gate projection of a gated MLP; None for a plain one (GPT-2, Falcon, MPT).
    pub gate: Option<Matrix>,
    pub up: Matrix,
    pub up_bias: Option<Vec<f32>>,
    pub down: Matrix,
    pub down_bias: Option<Vec<f32>>,
    /// Norm of the MLP output before the residual add (Gemma 2/3, OLMo 2).
    pub post_ffn_norm: Option<Norm>,
    /// Attention and MLP both read the layer's input: `x += attn(..) + mlp(..)` (Falcon, GPT-J
    /// style; StableLM 2 12B).
    pub parallel: bool,
    /// Index into [`Plan::ropes`]: this layer's position encoding; None for a layer without
    /// RoPE (SmolLM3's every fourth layer; MPT, which uses ALiBi; GPT-2, which learned positions).
    pub rope: Option<usize>,
    /// Sliding-window size for local layers (a query sees this many positions, itself included).
    pub window: Option<usize>,
}

#[derive(Debug)]
pub struct Plan {
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually 1/sqrt(head_dim)).
    pub attn_scale: f32,
    /// Attention scores become `cap * tanh(score / cap)` before the softmax (Gemma 2).
    pub attn_softcap: Option<f32>,
    /// ALiBi's maximum bias (MPT): each head adds `-slope * distance` to its scores.
    pub alibi_max_bias: Option<f32>,
    /// Queries, keys and values are clamped to `[-c, c]` after their projection (MPT).
    pub clamp_kqv: Option<f32>,
    pub norm_kind: NormKind,
    /// Epsilon of every norm.
    pub eps: f32,
    pub embed: Matrix,
    /// Multiplies the embeddings (Gemma: sqrt(n_embd); Granite: its embedding scale; else 1).
    pub embed_scale: f32,
    /// Learned position embeddings added to the token embeddings (GPT-2), one row per position.
    pub position_embed: Option<Matrix>,
    /// Multiplies each block's output before the residual add (Granite; else 1).
    pub residual_scale: f32,
    pub activation: Activation,
    pub rope_style: RopeStyle,
    pub ropes: Vec<RopePlan>,
    pub layers: Vec<LayerPlan>,
    pub output_norm: Norm,
    /// The output projection; the same bytes as `embed` when the file ties them.
    pub output: Matrix,
    pub output_bias: Option<Vec<f32>>,
    /// Multiplies the logits (Granite divides them by its logit scale; else 1).
    pub logit_scale: f32,
    /// Logits become `cap * tanh(logit / cap)` (Gemma 2).
    pub final_softcap: Option<f32>,
    /// The context length the model was trained for (and, with learned positions, the most it
    /// can run).
    pub max_context: usize,
}

impl Plan {
    pub fn vocab_size(&self) -> usize {
        self.output.rows
    }

    pub fn q_dim(&self) -> usize {
        self.n_head * self.head_dim
    }

    pub fn kv_dim(&self) -> usize {
        self.n_kv_head * self.head_dim
    }

    /// Each layer's sliding window (None: a global layer), which sizes its KV cache.
    pub fn windows(&self) -> Vec<Option<usize>> {
        self.layers.iter().map(|l| l.window).collect()
    }

    /// Whether the output projection shares the embeddings' bytes (tied embeddings).
    pub fn output_tied(&self) -> bool {
        self.output.tensor.data.as_ptr() == self.embed.tensor.data.as_ptr()
    }

    /// What sets this model apart, in words for a model card ("LayerNorm", "partial RoPE
    /// (24 of 32 dimensions)", "sliding window 4096 on 13 of 26 layers"...).
    pub fn features(&self) -> Vec<String> {
        let mut f = Vec::new();
        let layers = self.layers.len();
        let count =
            |pred: &dyn Fn(&LayerPlan) -> bool| self.layers.iter().filter(|l| pred(l)).count();
        f.push(match self.norm_kind {
            NormKind::Rms => "RMSNorm".to_string(),
            NormKind::Layer => "LayerNorm".to_string(),
        });
        if self.n_kv_head < self.n_head {
            f.push(format!(
                "grouped-query attention ({} query heads per key/value head)",
                self.n_head / self.n_kv_head
            ));
        }
        let roped = count(&|l| l.rope.is_some());
        if let Some(r) = self.ropes.first().filter(|_| roped > 0) {
            let style = match self.rope_style {
                RopeStyle::Interleaved => "pairs",
                RopeStyle::Halves => "halves",
            };
            if r.dims < self.head_dim {
                f.push(format!(
                    "partial RoPE ({} of {} dimensions, {style})",
                    r.dims, self.head_dim
                ));
            } else {
                f.push(format!("RoPE ({style})"));
            }
            match r.scaling {
                RopeScaling::None => {}
                RopeScaling::Linear { factor } => f.push(format!("linear RoPE scaling x{factor}")),
                RopeScaling::Yarn { factor, .. } => f.push(format!("YaRN RoPE scaling x{factor}")),
            }
            if r.long_factors.is_some() {
                f.push(format!(
                    "LongRoPE (long factors past {} tokens)",
                    r.original_context
                ));
            } else if r.factors.is_some() {
                f.push("per-frequency RoPE factors".into());
            }
            if roped < layers {
                f.push(format!("no RoPE on {} of {layers} layers", layers - roped));
            }
        }
        if self.position_embed.is_some() {
            f.push("learned position embeddings".into());
        }
        if let Some(b) = self.alibi_max_bias {
            f.push(format!("ALiBi (max bias {b})"));
        }
        let sliding = count(&|l| l.window.is_some());
        if let Some(w) = self.layers.iter().find_map(|l| l.window) {
            f.push(format!(
                "sliding window {w} on {sliding} of {layers} layers"
            ));
        }
        if count(&|l| l.q_norm.is_some()) > 0 {
            f.push("query/key norms".into());
        }
        if count(&|l| l.qkv_bias.is_some()) > 0 {
            f.push("q/k/v biases".into());
        }
        if count(&|l| l.post_attn_norm.is_some()) > 0 {
            f.push(if count(&|l| l.attn_norm.is_none()) > 0 {
                "post-norms only".into()
            } else {
                "pre- and post-norms".into()
            });
        }
        if count(&|l| l.parallel) > 0 {
            f.push("parallel attention and MLP".into());
        }
        let act = match self.activation {
            Activation::Silu => "SiLU",
            Activation::GeluTanh => "GELU",
        };
        f.push(if count(&|l| l.gate.is_some()) == layers {
            format!("gated {act} MLP")
        } else {
            format!("{act} MLP")
        });
        if let Some(c) = self.attn_softcap {
            f.push(format!("attention soft-cap {c}"));
        }
        if let Some(c) = self.final_softcap {
            f.push(format!("logit soft-cap {c}"));
        }
        if let Some(c) = self.clamp_kqv {
            f.push(format!("q/k/v clamped to {c}"));
        }
        if self.residual_scale != 1.0 || self.logit_scale != 1.0 {
            f.push("embedding, residual and logit scales".into());
        }
        if self.output_tied() {
            f.push("tied embeddings".into());
        }
        f
    }

    /// The parts of this plan the GPU backend does not build yet, named for the person who
    /// asked for WebGPU (empty when it runs the whole plan). The CPU runs every plan.
    pub fn gpu_gaps(&self) -> Vec<&'static str> {
        let mut gaps = Vec::new();
        let mut need = |cond: bool, what: &'static str| {
            if cond && !gaps.contains(&what) {
                gaps.push(what);
            }
        };
        let (hd, q_dim, kv_dim) = (self.head_dim, self.q_dim(), self.kv_dim());
        for l in &self.layers {
            match (&l.q_norm, &l.k_norm) {
                (None, None) => {}
                (Some(qn), Some(kn)) => {
                    // rope.wgsl norms each head (weights shared, or one set per head) or the
                    // whole q and k vectors (one weight per value), biases or not.
                    let heads = qn.group == hd && kn.group == hd;
                    let whole = qn.group == q_dim && kn.group == kv_dim;
                    let (qw, kw) = (qn.norm.weight.len(), kn.norm.weight.len());
                    let shared = qw == qn.group && kw == kn.group;
                    let each = qw == q_dim && kw == kv_dim;
                    need(
                        !(heads && (shared || each)) && !(whole && each),
                        "q/k norms over other groups",
                    );
                }
                _ => need(true, "a query norm without a key norm"),
            }
        }
        gaps
    }
}
