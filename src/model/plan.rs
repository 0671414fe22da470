//! A model described as data: the weights and switches of a pre-norm decoder, which covers both
//! families here. The CPU forward passes are code (`llama.rs`, `gemma3.rs`); another backend
//! (the GPU) runs the same network from this description instead of re-reading the GGUF, so the
//! two cannot disagree about hyperparameters or weights.

use super::blocks::RopeStyle;
use super::weights::Matrix;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activation {
    /// SwiGLU: silu(gate) * up.
    Silu,
    /// GeGLU with the tanh approximation: gelu(gate) * up.
    GeluTanh,
}

/// One rotary-embedding configuration (a model may have several, e.g. Gemma's local and global).
#[derive(Clone, Debug)]
pub struct RopePlan {
    /// Rotated dimensions of each head (the first ones).
    pub dims: usize,
    pub base: f32,
    pub scale: f32,
    pub factors: Option<Vec<f32>>,
}

pub struct LayerPlan<'a> {
    pub attn_norm: &'a [f32],
    pub wq: &'a Matrix,
    pub wk: &'a Matrix,
    pub wv: &'a Matrix,
    /// Per-head RMSNorm of queries and keys (Gemma), before RoPE.
    pub q_norm: Option<&'a [f32]>,
    pub k_norm: Option<&'a [f32]>,
    /// Biases of the q, k and v projections end to end (Qwen 2).
    pub qkv_bias: Option<&'a [f32]>,
    pub wo: &'a Matrix,
    /// RMSNorm of the attention output before the residual add (Gemma).
    pub post_attn_norm: Option<&'a [f32]>,
    pub ffn_norm: &'a [f32],
    pub gate: &'a Matrix,
    pub up: &'a Matrix,
    pub down: &'a Matrix,
    pub post_ffn_norm: Option<&'a [f32]>,
    /// Index into [`Plan::ropes`].
    pub rope: usize,
    /// Sliding-window size for local layers.
    pub window: Option<usize>,
}

pub struct Plan<'a> {
    pub n_embd: usize,
    pub n_ff: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    pub attn_scale: f32,
    pub eps: f32,
    pub embed: &'a Matrix,
    /// Multiplies the embeddings (Gemma: sqrt(n_embd)).
    pub embed_scale: f32,
    pub activation: Activation,
    pub rope_style: RopeStyle,
    pub ropes: Vec<RopePlan>,
    pub layers: Vec<LayerPlan<'a>>,
    pub output_norm: &'a [f32],
    pub output: &'a Matrix,
    pub max_context: usize,
}
