//! The hyperparameters every decoder family stores under `<arch>.*` in GGUF, read and checked in
//! one place, so a family's loader reads only what sets it apart.

use super::weights::LayerShape;
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
    /// Epsilon of the RMSNorms.
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
            eps: gguf::get_f32(md, &key("attention.layer_norm_rms_epsilon"))?,
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

    /// Linear position scaling (`rope.scaling.factor` when the scaling type is linear or
    /// unnamed, as llama.cpp reads it; a factor of 0 means none); 1 otherwise.
    pub fn rope_linear_scale(&self) -> Result<f32> {
        Ok(
            match gguf::get_str_opt(self.md, &self.key("rope.scaling.type"))? {
                Some("linear") | None => self
                    .f32_opt("rope.scaling.factor")?
                    .filter(|&f| f != 0.0)
                    .unwrap_or(1.0),
                Some(_) => 1.0,
            },
        )
    }
}
