//! The network as data. A family's loader (`llama.rs`, `gemma3.rs`, ...) reads a GGUF's
//! hyperparameters and tensors, checks them, and returns a [`Plan`]; every backend then runs the
//! Plan and nothing else: the CPU through [`decoder`](super::decoder), the GPU through
//! `gpu::GpuModel`. So the backends cannot disagree about hyperparameters or weights, and a new
//! family is a loader, not a forward pass.
//!
//! The Plan describes a pre-norm decoder: per layer, `x += post_norm(attention(norm(x)))` then
//! `x += post_norm(mlp(norm(x)))`, with the optional parts below. What differs between families
//! is a field here. A family that needs something no field describes yet (LayerNorm, a plain
//! MLP, ALiBi, soft-capping, a parallel residual...) adds the field here, one branch where
//! `decoder.rs` reads it and one where the GPU builders do (or a typed refusal there).

use super::ops::RopeStyle;
use super::weights::Matrix;

/// The MLP's activation. Both current forms are gated: `down(act(gate(h)) * up(h))`.
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
    /// Rotated dimensions of each head (the first ones; fewer than the head's is partial rotary).
    pub dims: usize,
    pub base: f32,
    /// Linear position scaling: positions are divided by it.
    pub scale: f32,
    /// Per-frequency divisors (Llama 3.1's `rope_freqs.weight`), `dims / 2` of them.
    pub factors: Option<Vec<f32>>,
}

/// One decoder layer: its weights and what sets it apart from the others.
#[derive(Debug)]
pub struct LayerPlan {
    /// RMSNorm weights before attention.
    pub attn_norm: Vec<f32>,
    pub wq: Matrix,
    pub wk: Matrix,
    pub wv: Matrix,
    /// Per-head RMSNorm of queries and keys (Gemma 3, Qwen 3), before RoPE.
    pub q_norm: Option<Vec<f32>>,
    pub k_norm: Option<Vec<f32>>,
    /// Biases of the q, k and v projections end to end (`q_dim + 2 * kv_dim`; Qwen 2).
    pub qkv_bias: Option<Vec<f32>>,
    pub wo: Matrix,
    /// RMSNorm of the attention output before the residual add (Gemma).
    pub post_attn_norm: Option<Vec<f32>>,
    /// RMSNorm weights before the MLP.
    pub ffn_norm: Vec<f32>,
    pub gate: Matrix,
    pub up: Matrix,
    pub down: Matrix,
    /// RMSNorm of the MLP output before the residual add (Gemma).
    pub post_ffn_norm: Option<Vec<f32>>,
    /// Index into [`Plan::ropes`]: this layer's position encoding.
    pub rope: usize,
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
    /// Epsilon of every RMSNorm.
    pub eps: f32,
    pub embed: Matrix,
    /// Multiplies the embeddings (Gemma: sqrt(n_embd); 1 for most).
    pub embed_scale: f32,
    pub activation: Activation,
    pub rope_style: RopeStyle,
    pub ropes: Vec<RopePlan>,
    pub layers: Vec<LayerPlan>,
    pub output_norm: Vec<f32>,
    /// The output projection; the same bytes as `embed` when the file ties them.
    pub output: Matrix,
    /// The context length the model was trained for.
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
}
