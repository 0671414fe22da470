//! The llama family: Llama 1/2/3, SmolLM, TinyLlama, Mistral and their fine-tunes, Qwen 2 / 2.5
//! and Qwen 3.
//! Pre-norm blocks (RMSNorm), rotary embeddings, grouped-query attention, SwiGLU MLP, and an
//! output projection that may be tied to the token embeddings. A [`Variant`] says how a member
//! differs from Llama: Qwen 2 adds biases to the query, key and value projections, Qwen 3 norms
//! each query and key head instead; both rotate halves (NEOX) instead of adjacent pairs.

use super::blocks::{self, AttentionShape, RopeStyle};
use super::kv_cache::KvCache;
use super::plan::{Activation, LayerPlan, Plan, RopePlan};
use super::weights::{Matrix, WeightLoader};
use super::workspace::Widths;
use super::{Architecture, LogitsOut};
use crate::error::{Error, Result};
use crate::gguf::{self, Gguf};

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

/// The family member whose GGUF architecture name is `arch`.
pub fn variant(arch: &str) -> Option<Variant> {
    [LLAMA, QWEN2, QWEN3].into_iter().find(|v| v.arch == arch)
}

struct Layer {
    attn_norm: Vec<f32>,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    q_norm: Option<Vec<f32>>,
    k_norm: Option<Vec<f32>>,
    /// The q, k and v biases end to end (`q_dim + 2 * kv_dim`).
    qkv_bias: Option<Vec<f32>>,
    wo: Matrix,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
}

pub struct Llama {
    variant: Variant,
    n_embd: usize,
    n_ff: usize,
    attn: AttentionShape,
    eps: f32,
    rope_dims: usize,
    rope_base: f32,
    rope_scale: f32,
    /// Llama 3.1's per-frequency divisors (`rope_freqs.weight`), when present.
    rope_freq_factors: Option<Vec<f32>>,
    context: usize,
    embed: Matrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Matrix,
}

impl Llama {
    pub fn load(g: &Gguf, variant: Variant) -> Result<Self> {
        let md = &g.metadata;
        let key = |k: &str| format!("{}.{k}", variant.arch);
        let n_embd = gguf::get_usize(md, &key("embedding_length"))?;
        let n_layer = gguf::get_usize(md, &key("block_count"))?;
        let n_head = gguf::get_usize(md, &key("attention.head_count"))?;
        let n_kv_head = gguf::get_usize_opt(md, &key("attention.head_count_kv"))?.unwrap_or(n_head);
        let n_ff = gguf::get_usize(md, &key("feed_forward_length"))?;
        let key_length = gguf::get_usize_opt(md, &key("attention.key_length"))?;
        // Heads may be wider than n_embd / n_head when the file says so (Qwen 3).
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
        let rope_dims = gguf::get_usize_opt(md, &key("rope.dimension_count"))?.unwrap_or(head_dim);
        if rope_dims > head_dim || rope_dims % 2 != 0 {
            return Err(Error::InvalidMetadata {
                key: key("rope.dimension_count"),
                reason: format!("{rope_dims} rotated dimensions for heads of {head_dim}"),
            });
        }
        let rope_scale = match gguf::get_str_opt(md, &key("rope.scaling.type"))? {
            Some("linear") => gguf::get_f32_opt(md, &key("rope.scaling.factor"))?.unwrap_or(1.0),
            _ => 1.0,
        };
        let w = WeightLoader { gguf: g };
        let (embed, output) = w.embeddings_and_output(n_embd)?;
        let (q_dim, kv_dim) = (n_head * head_dim, n_kv_head * head_dim);
        let layers = (0..n_layer)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                let head_norm = |s: &str| {
                    variant
                        .head_norms
                        .then(|| w.vector(&p(s), head_dim))
                        .transpose()
                };
                let qkv_bias = variant
                    .qkv_bias
                    .then(|| -> Result<Vec<f32>> {
                        let mut b = w.vector(&p("attn_q.bias"), q_dim)?;
                        b.extend(w.vector(&p("attn_k.bias"), kv_dim)?);
                        b.extend(w.vector(&p("attn_v.bias"), kv_dim)?);
                        Ok(b)
                    })
                    .transpose()?;
                Ok(Layer {
                    attn_norm: w.vector(&p("attn_norm.weight"), n_embd)?,
                    wq: w.matrix(&p("attn_q.weight"), q_dim, n_embd)?,
                    wk: w.matrix(&p("attn_k.weight"), kv_dim, n_embd)?,
                    wv: w.matrix(&p("attn_v.weight"), kv_dim, n_embd)?,
                    q_norm: head_norm("attn_q_norm.weight")?,
                    k_norm: head_norm("attn_k_norm.weight")?,
                    qkv_bias,
                    wo: w.matrix(&p("attn_output.weight"), n_embd, q_dim)?,
                    ffn_norm: w.vector(&p("ffn_norm.weight"), n_embd)?,
                    gate: w.matrix(&p("ffn_gate.weight"), n_ff, n_embd)?,
                    up: w.matrix(&p("ffn_up.weight"), n_ff, n_embd)?,
                    down: w.matrix(&p("ffn_down.weight"), n_embd, n_ff)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let rope_freq_factors = if w.has("rope_freqs.weight") {
            Some(w.vector("rope_freqs.weight", rope_dims / 2)?)
        } else {
            None
        };
        Ok(Self {
            variant,
            n_embd,
            n_ff,
            attn: AttentionShape {
                n_head,
                n_kv_head,
                head_dim,
                scale: 1.0 / (head_dim as f32).sqrt(),
                window: None,
            },
            eps: gguf::get_f32(md, &key("attention.layer_norm_rms_epsilon"))?,
            rope_dims,
            rope_base: gguf::get_f32_opt(md, &key("rope.freq_base"))?.unwrap_or(10_000.0),
            rope_scale,
            rope_freq_factors,
            context: gguf::get_usize(md, &key("context_length"))?,
            embed,
            layers,
            output_norm: w.vector("output_norm.weight", n_embd)?,
            output,
        })
    }
}

impl Architecture for Llama {
    fn plan(&self) -> Plan<'_> {
        Plan {
            n_embd: self.n_embd,
            n_ff: self.n_ff,
            n_head: self.attn.n_head,
            n_kv_head: self.attn.n_kv_head,
            head_dim: self.attn.head_dim,
            attn_scale: self.attn.scale,
            eps: self.eps,
            embed: &self.embed,
            embed_scale: 1.0,
            activation: Activation::Silu,
            rope_style: self.variant.rope_style,
            ropes: vec![RopePlan {
                dims: self.rope_dims,
                base: self.rope_base,
                scale: self.rope_scale,
                factors: self.rope_freq_factors.clone(),
            }],
            layers: self
                .layers
                .iter()
                .map(|l| LayerPlan {
                    attn_norm: &l.attn_norm,
                    wq: &l.wq,
                    wk: &l.wk,
                    wv: &l.wv,
                    q_norm: l.q_norm.as_deref(),
                    k_norm: l.k_norm.as_deref(),
                    qkv_bias: l.qkv_bias.as_deref(),
                    wo: &l.wo,
                    post_attn_norm: None,
                    ffn_norm: &l.ffn_norm,
                    gate: &l.gate,
                    up: &l.up,
                    down: &l.down,
                    post_ffn_norm: None,
                    rope: 0,
                    window: None,
                })
                .collect(),
            output_norm: &self.output_norm,
            output: &self.output,
            max_context: self.context,
        }
    }

    fn vocab_size(&self) -> usize {
        self.output.rows
    }

    fn max_context(&self) -> usize {
        self.context
    }

    fn new_cache(&self, context: usize) -> KvCache {
        let windows = vec![None; self.layers.len()];
        KvCache::new(
            self.attn.n_kv_head * self.attn.head_dim,
            &windows,
            context,
            super::MAX_BATCH,
        )
    }

    fn forward_batch(&self, tokens: &[u32], cache: &mut KvCache, out: LogitsOut<'_>) {
        let (n, d, a) = (tokens.len(), self.n_embd, self.attn);
        let start = cache.len;
        let b = cache.work.batch(
            n,
            Widths {
                embd: d,
                q: a.n_head * a.head_dim,
                kv: a.n_kv_head * a.head_dim,
                ff: self.n_ff,
            },
        );
        let x = b.x;
        for (t, &id) in tokens.iter().enumerate() {
            self.embed.row(id as usize, &mut x[t * d..(t + 1) * d]);
        }
        let rope = &mut b.ropes[0];
        rope.fill(
            start,
            n,
            self.rope_dims,
            self.rope_base,
            self.rope_scale,
            self.rope_freq_factors.as_deref(),
        );
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            blocks::rms_norm_into(x, &layer.attn_norm, self.eps, b.h);
            layer.wq.matmul(b.h, n, b.q);
            layer.wk.matmul(b.h, n, b.k);
            layer.wv.matmul(b.h, n, b.v);
            if let Some(bias) = &layer.qkv_bias {
                let (bq, bkv) = bias.split_at(a.n_head * a.head_dim);
                let (bk, bv) = bkv.split_at(a.n_kv_head * a.head_dim);
                blocks::add_rows(b.q, bq);
                blocks::add_rows(b.k, bk);
                blocks::add_rows(b.v, bv);
            }
            if let (Some(qn), Some(kn)) = (&layer.q_norm, &layer.k_norm) {
                blocks::rms_norm(b.q, qn, self.eps);
                blocks::rms_norm(b.k, kn, self.eps);
            }
            rope.apply(b.q, n, a.head_dim, self.variant.rope_style);
            rope.apply(b.k, n, a.head_dim, self.variant.rope_style);
            lc.write(start, b.k, b.v);
            blocks::attention(b.q, lc, start, n, a, b.att);
            layer.wo.matmul(b.att, n, b.proj);
            blocks::add_assign(x, b.proj);

            blocks::rms_norm_into(x, &layer.ffn_norm, self.eps, b.h);
            layer.gate.matmul(b.h, n, b.gate);
            layer.up.matmul(b.h, n, b.up);
            blocks::gated(b.gate, b.up, blocks::silu);
            layer.down.matmul(b.gate, n, b.proj);
            blocks::add_assign(x, b.proj);
        }
        super::output_logits(
            x,
            n,
            d,
            &self.output_norm,
            self.eps,
            &self.output,
            b.normed,
            out,
        );
        cache.len = start + n;
    }
}
