//! Gemma 3: like llama, but with GELU (tanh) in the MLP, RMSNorm on every query and key head,
//! norms after attention and after the MLP as well as before, embeddings scaled by sqrt(width),
//! rotary halves, tied output embeddings, and local layers that attend only to a sliding window
//! (with their own rope base) interleaved with global layers.
//!
//! The GGUF converter already folds Gemma's `(1 + w)` norm convention into the stored weights,
//! so the norms here are plain RMSNorm.

use super::blocks::{self, AttentionShape, RopeStyle};
use super::kv_cache::KvCache;
use super::plan::{Activation, LayerPlan, Plan, RopePlan};
use super::weights::{Matrix, WeightLoader};
use super::workspace::Widths;
use super::{Architecture, LogitsOut};
use crate::error::{Error, Result};
use crate::gguf::{self, Gguf};

struct Layer {
    attn_norm: Vec<f32>,
    wq: Matrix,
    wk: Matrix,
    wv: Matrix,
    q_norm: Vec<f32>,
    k_norm: Vec<f32>,
    wo: Matrix,
    post_attn_norm: Vec<f32>,
    ffn_norm: Vec<f32>,
    gate: Matrix,
    up: Matrix,
    down: Matrix,
    post_ffn_norm: Vec<f32>,
    /// Local (sliding-window) layer or global one.
    local: bool,
}

pub struct Gemma3 {
    n_embd: usize,
    n_ff: usize,
    head_dim: usize,
    n_head: usize,
    n_kv_head: usize,
    attn_scale: f32,
    window: usize,
    eps: f32,
    rope_base_global: f32,
    rope_base_local: f32,
    rope_scale_global: f32,
    context: usize,
    embed: Matrix,
    layers: Vec<Layer>,
    output_norm: Vec<f32>,
    output: Matrix,
}

/// Gemma 3's local layers use this rope base whatever the global one is (not stored in GGUF).
const ROPE_BASE_LOCAL: f32 = 10_000.0;
/// Five local layers, then one global layer, repeating (when the file does not say otherwise).
const DEFAULT_SLIDING_WINDOW_PATTERN: usize = 6;

impl Gemma3 {
    pub fn load(g: &Gguf) -> Result<Self> {
        let md = &g.metadata;
        let key = |k: &str| format!("gemma3.{k}");
        let n_embd = gguf::get_usize(md, &key("embedding_length"))?;
        let n_layer = gguf::get_usize(md, &key("block_count"))?;
        let n_head = gguf::get_usize(md, &key("attention.head_count"))?;
        let n_kv_head = gguf::get_usize_opt(md, &key("attention.head_count_kv"))?.unwrap_or(n_head);
        let n_ff = gguf::get_usize(md, &key("feed_forward_length"))?;
        let head_dim = gguf::get_usize_opt(md, &key("attention.key_length"))?
            .unwrap_or(n_embd.checked_div(n_head).unwrap_or(0));
        let value_dim =
            gguf::get_usize_opt(md, &key("attention.value_length"))?.unwrap_or(head_dim);
        if n_head == 0
            || n_kv_head == 0
            || n_head % n_kv_head != 0
            || head_dim == 0
            || head_dim % 2 != 0
        {
            return Err(Error::InvalidMetadata {
                key: key("attention.head_count"),
                reason: format!("{n_head} heads / {n_kv_head} KV heads of dimension {head_dim}"),
            });
        }
        if value_dim != head_dim {
            return Err(Error::InvalidMetadata {
                key: key("attention.value_length"),
                reason: format!("value heads of {value_dim} differ from key heads of {head_dim}"),
            });
        }
        let window = gguf::get_usize(md, &key("attention.sliding_window"))?.max(1);
        let pattern = gguf::get_usize_opt(md, &key("attention.sliding_window_pattern"))?
            .unwrap_or(DEFAULT_SLIDING_WINDOW_PATTERN)
            .max(1);
        let rope_scale_global = match gguf::get_str_opt(md, &key("rope.scaling.type"))? {
            Some("linear") | None => {
                gguf::get_f32_opt(md, &key("rope.scaling.factor"))?.unwrap_or(1.0)
            }
            Some(_) => 1.0,
        };
        // Gemma 3 scales queries by query_pre_attn_scalar^-1/2, which is head_dim except for the
        // 27B model (62 layers), where it is n_embd / n_head. GGUF does not store it.
        let attn_scale = if n_layer == 62 {
            1.0 / ((n_embd / n_head) as f32).sqrt()
        } else {
            1.0 / (head_dim as f32).sqrt()
        };
        let w = WeightLoader { gguf: g };
        let (embed, output) = w.embeddings_and_output(n_embd)?;
        let (q_dim, kv_dim) = (n_head * head_dim, n_kv_head * head_dim);
        let layers = (0..n_layer)
            .map(|i| {
                let p = |s: &str| format!("blk.{i}.{s}");
                Ok(Layer {
                    attn_norm: w.vector(&p("attn_norm.weight"), n_embd)?,
                    wq: w.matrix(&p("attn_q.weight"), q_dim, n_embd)?,
                    wk: w.matrix(&p("attn_k.weight"), kv_dim, n_embd)?,
                    wv: w.matrix(&p("attn_v.weight"), kv_dim, n_embd)?,
                    q_norm: w.vector(&p("attn_q_norm.weight"), head_dim)?,
                    k_norm: w.vector(&p("attn_k_norm.weight"), head_dim)?,
                    wo: w.matrix(&p("attn_output.weight"), n_embd, q_dim)?,
                    post_attn_norm: w.vector(&p("post_attention_norm.weight"), n_embd)?,
                    ffn_norm: w.vector(&p("ffn_norm.weight"), n_embd)?,
                    gate: w.matrix(&p("ffn_gate.weight"), n_ff, n_embd)?,
                    up: w.matrix(&p("ffn_up.weight"), n_ff, n_embd)?,
                    down: w.matrix(&p("ffn_down.weight"), n_embd, n_ff)?,
                    post_ffn_norm: w.vector(&p("post_ffw_norm.weight"), n_embd)?,
                    local: i % pattern < pattern - 1,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            n_embd,
            n_ff,
            head_dim,
            n_head,
            n_kv_head,
            attn_scale,
            window,
            eps: gguf::get_f32(md, &key("attention.layer_norm_rms_epsilon"))?,
            rope_base_global: gguf::get_f32_opt(md, &key("rope.freq_base"))?.unwrap_or(1_000_000.0),
            rope_base_local: ROPE_BASE_LOCAL,
            rope_scale_global,
            context: gguf::get_usize(md, &key("context_length"))?,
            embed,
            layers,
            output_norm: w.vector("output_norm.weight", n_embd)?,
            output,
        })
    }

    fn shape(&self, local: bool) -> AttentionShape {
        AttentionShape {
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
            scale: self.attn_scale,
            window: local.then_some(self.window),
        }
    }
}

impl Architecture for Gemma3 {
    fn plan(&self) -> Plan<'_> {
        let rope = |base, scale| RopePlan {
            dims: self.head_dim,
            base,
            scale,
            factors: None,
        };
        Plan {
            n_embd: self.n_embd,
            n_ff: self.n_ff,
            n_head: self.n_head,
            n_kv_head: self.n_kv_head,
            head_dim: self.head_dim,
            attn_scale: self.attn_scale,
            eps: self.eps,
            embed: &self.embed,
            embed_scale: (self.n_embd as f32).sqrt(),
            activation: Activation::GeluTanh,
            rope_style: RopeStyle::Halves,
            // 0: global layers, 1: local ones.
            ropes: vec![
                rope(self.rope_base_global, self.rope_scale_global),
                rope(self.rope_base_local, 1.0),
            ],
            layers: self
                .layers
                .iter()
                .map(|l| LayerPlan {
                    attn_norm: &l.attn_norm,
                    wq: &l.wq,
                    wk: &l.wk,
                    wv: &l.wv,
                    q_norm: Some(&l.q_norm),
                    k_norm: Some(&l.k_norm),
                    qkv_bias: None,
                    wo: &l.wo,
                    post_attn_norm: Some(&l.post_attn_norm),
                    ffn_norm: &l.ffn_norm,
                    gate: &l.gate,
                    up: &l.up,
                    down: &l.down,
                    post_ffn_norm: Some(&l.post_ffn_norm),
                    rope: l.local as usize,
                    window: l.local.then_some(self.window),
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
        let windows: Vec<_> = self
            .layers
            .iter()
            .map(|l| l.local.then_some(self.window))
            .collect();
        KvCache::new(
            self.n_kv_head * self.head_dim,
            &windows,
            context,
            super::MAX_BATCH,
        )
    }

    fn forward_batch(&self, tokens: &[u32], cache: &mut KvCache, out: LogitsOut<'_>) {
        let (n, d, hd) = (tokens.len(), self.n_embd, self.head_dim);
        let start = cache.len;
        let b = cache.work.batch(
            n,
            Widths {
                embd: d,
                q: self.n_head * hd,
                kv: self.n_kv_head * hd,
                ff: self.n_ff,
            },
        );
        let x = b.x;
        let embed_scale = (d as f32).sqrt();
        for (t, &id) in tokens.iter().enumerate() {
            let row = &mut x[t * d..(t + 1) * d];
            self.embed.row(id as usize, row);
            row.iter_mut().for_each(|v| *v *= embed_scale);
        }
        let [rope_global, rope_local] = b.ropes;
        rope_global.fill(
            start,
            n,
            hd,
            self.rope_base_global,
            self.rope_scale_global,
            None,
        );
        rope_local.fill(start, n, hd, self.rope_base_local, 1.0, None);
        for (layer, lc) in self.layers.iter().zip(cache.layers.iter_mut()) {
            blocks::rms_norm_into(x, &layer.attn_norm, self.eps, b.h);
            layer.wq.matmul(b.h, n, b.q);
            layer.wk.matmul(b.h, n, b.k);
            layer.wv.matmul(b.h, n, b.v);
            blocks::rms_norm(b.q, &layer.q_norm, self.eps);
            blocks::rms_norm(b.k, &layer.k_norm, self.eps);
            let rope = if layer.local {
                &*rope_local
            } else {
                &*rope_global
            };
            rope.apply(b.q, n, hd, RopeStyle::Halves);
            rope.apply(b.k, n, hd, RopeStyle::Halves);
            lc.write(start, b.k, b.v);
            blocks::attention(b.q, lc, start, n, self.shape(layer.local), b.att);
            layer.wo.matmul(b.att, n, b.proj);
            blocks::rms_norm(b.proj, &layer.post_attn_norm, self.eps);
            blocks::add_assign(x, b.proj);

            blocks::rms_norm_into(x, &layer.ffn_norm, self.eps, b.h);
            layer.gate.matmul(b.h, n, b.gate);
            layer.up.matmul(b.h, n, b.up);
            blocks::gated(b.gate, b.up, blocks::gelu_tanh);
            layer.down.matmul(b.gate, n, b.proj);
            blocks::rms_norm(b.proj, &layer.post_ffn_norm, self.eps);
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
