//! Weight tensors as the forward pass uses them: quantized matrices stay views into the GGUF bytes
//! (no f32 expansion), except Q5_0 matrices, rewritten once at load as Q8_0 (lossless, faster);
//! only the small norm vectors are read out as f32.

use super::plan::{HeadNorm, LayerPlan, Norm};
use crate::error::{Error, Result};
use crate::gguf::{Gguf, QType, Tensor, TensorData};
use crate::kernels;

/// A `rows x cols` weight matrix (`rows` outputs, each a dot product over `cols` inputs).
#[derive(Clone, Debug)]
pub struct Matrix {
    pub tensor: Tensor,
    pub rows: usize,
    pub cols: usize,
}

impl Matrix {
    /// `out[t * rows + r] = dot(row r, x[t])` for the `n` rows of `x`.
    pub fn matmul(&self, x: &[f32], n: usize, out: &mut [f32]) {
        debug_assert_eq!(x.len(), n * self.cols);
        debug_assert_eq!(out.len(), n * self.rows);
        kernels::matmul(
            self.tensor.qtype,
            &self.tensor.data,
            self.rows,
            self.cols,
            x,
            n,
            out,
        );
    }

    /// Rows `first..first + rows` as a matrix of their own: a view of the same bytes (rows are
    /// contiguous whole blocks). Splits fused projections (`attn_qkv`, Phi-3's gate and up).
    pub fn rows(&self, first: usize, rows: usize) -> Matrix {
        let row_bytes = self.cols / self.tensor.qtype.block_size() * self.tensor.qtype.type_size();
        let mut tensor = self.tensor.clone();
        tensor.data = tensor.data.slice(first * row_bytes, rows * row_bytes);
        tensor.shape = vec![rows, self.cols];
        Matrix {
            tensor,
            rows,
            cols: self.cols,
        }
    }

    /// Row `r` as f32 (an embedding lookup).
    pub fn row(&self, r: usize, out: &mut [f32]) {
        let bytes_per_row =
            self.cols / self.tensor.qtype.block_size() * self.tensor.qtype.type_size();
        let row = &self.tensor.data[r * bytes_per_row..(r + 1) * bytes_per_row];
        kernels::dequantize_row(self.tensor.qtype, row, out);
    }
}

/// Looks tensors up by name and checks their shapes, so a model file that lies about its
/// hyperparameters fails at load with the tensor's name, not with an out-of-bounds panic later.
pub struct WeightLoader<'a> {
    pub gguf: &'a Gguf,
}

impl<'a> WeightLoader<'a> {
    pub fn tensor(&self, name: &str) -> Result<&'a Tensor> {
        self.gguf
            .tensor(name)
            .ok_or_else(|| match self.gguf.foreign(name) {
                Some(f) => Error::UnsupportedQuant {
                    tensor: name.into(),
                    qtype: f.type_name.clone(),
                },
                None => Error::MissingTensor(name.into()),
            })
    }

    pub fn has(&self, name: &str) -> bool {
        self.gguf.tensor(name).is_some() || self.gguf.foreign(name).is_some()
    }

    /// A matrix with `rows` outputs and `cols` inputs (GGUF stores it as ne = [cols, rows]).
    pub fn matrix(&self, name: &str, rows: usize, cols: usize) -> Result<Matrix> {
        if self.gguf.tensor(name).is_none() {
            if let Some(f) = self.gguf.foreign(name) {
                return converted(f, rows, cols);
            }
        }
        let t = self.tensor(name)?;
        if t.shape != [rows, cols] {
            return Err(Error::TensorShape {
                name: name.into(),
                got: t.shape.clone(),
                expected: vec![rows, cols],
            });
        }
        let mut tensor = t.clone();
        if tensor.qtype == QType::Q5_0 {
            // Lossless, and the Q8_0 kernels are much faster (see `kernels::q5_0_as_q8_0`).
            tensor.data = TensorData::owned(kernels::q5_0_as_q8_0(&tensor.data));
            tensor.qtype = QType::Q8_0;
        }
        Ok(Matrix { tensor, rows, cols })
    }

    /// The token embeddings and the output projection; they are one matrix when the file has no
    /// `output.weight` (tied embeddings).
    pub fn embeddings_and_output(&self, n_embd: usize) -> Result<(Matrix, Matrix)> {
        let vocab = crate::gguf::get_array(&self.gguf.metadata, "tokenizer.ggml.tokens")?.len();
        let embed = self.matrix("token_embd.weight", vocab, n_embd)?;
        let output = if self.has("output.weight") {
            self.matrix("output.weight", vocab, n_embd)?
        } else {
            embed.clone()
        };
        Ok((embed, output))
    }

    /// A vector when the file has it (an optional bias or norm).
    pub fn vector_opt(&self, name: &str, len: usize) -> Result<Option<Vec<f32>>> {
        if self.has(name) {
            self.vector(name, len).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The norm `<name>.weight`, with `<name>.bias` where the file has one.
    pub fn norm(&self, name: &str, len: usize) -> Result<Norm> {
        Ok(Norm {
            weight: self.vector(&format!("{name}.weight"), len)?,
            bias: self.vector_opt(&format!("{name}.bias"), len)?,
        })
    }

    /// A norm of each query or key head, its `head_dim` weights shared by every head (Gemma 3,
    /// Qwen 3).
    pub fn shared_head_norm(&self, name: &str, head_dim: usize) -> Result<HeadNorm> {
        Ok(HeadNorm {
            norm: Norm::new(self.vector(name, head_dim)?),
            group: head_dim,
        })
    }

    /// [`WeightLoader::norm`] when the file has `<name>.weight`.
    pub fn norm_opt(&self, name: &str, len: usize) -> Result<Option<Norm>> {
        if self.has(&format!("{name}.weight")) {
            self.norm(name, len).map(Some)
        } else {
            Ok(None)
        }
    }

    /// A small f32 vector of length `len` (norm weights), converted from whatever float type it has.
    pub fn vector(&self, name: &str, len: usize) -> Result<Vec<f32>> {
        let t = self.tensor(name)?;
        if t.shape != [len] {
            return Err(Error::TensorShape {
                name: name.into(),
                got: t.shape.clone(),
                expected: vec![len],
            });
        }
        if !matches!(t.qtype, QType::F32 | QType::F16 | QType::BF16) {
            return Err(Error::UnsupportedQuant {
                tensor: name.into(),
                qtype: format!(
                    "{} (norm weights must be float)",
                    crate::gguf::qtype_name(t.qtype)
                ),
            });
        }
        let mut out = vec![0f32; len];
        kernels::dequantize_row(t.qtype, &t.data, &mut out);
        Ok(out)
    }
}

/// A matrix of a type the kernels do not run, rewritten as Q8_0 (IQ4_NL exactly; IQ4_XS with its
/// group scales rounded to f16), or [`Error::UnsupportedQuant`].
fn converted(f: &crate::gguf::ForeignTensor, rows: usize, cols: usize) -> Result<Matrix> {
    if f.shape != [rows, cols] {
        return Err(Error::TensorShape {
            name: f.name.clone(),
            got: f.shape.clone(),
            expected: vec![rows, cols],
        });
    }
    let bytes = match (f.type_id, &f.data) {
        (20, Some(d)) => kernels::iq4_nl_as_q8_0(d),
        (23, Some(d)) => kernels::iq4_xs_as_q8_0(d),
        _ => {
            return Err(Error::UnsupportedQuant {
                tensor: f.name.clone(),
                qtype: f.type_name.clone(),
            })
        }
    };
    Ok(Matrix {
        tensor: Tensor {
            name: f.name.clone(),
            qtype: QType::Q8_0,
            shape: f.shape.clone(),
            data: TensorData::owned(bytes),
        },
        rows,
        cols,
    })
}

/// The widths a layer's tensors are checked against.
#[derive(Clone, Copy, Debug)]
pub struct LayerShape {
    pub n_embd: usize,
    pub n_ff: usize,
    /// `n_head * head_dim`.
    pub q_dim: usize,
    /// `n_kv_head * head_dim`.
    pub kv_dim: usize,
}

impl WeightLoader<'_> {
    /// Layer `i` of a pre-norm decoder under GGUF's standard tensor names: `attn_norm`, the
    /// query, key and value projections (`attn_q`, `attn_k`, `attn_v`, or one fused `attn_qkv`
    /// split here), `attn_output`, `ffn_norm`, `ffn_gate`, `ffn_up`, `ffn_down`; the biases and
    /// norm biases the file has; sequential, on the first rope and attending globally. A
    /// family's loader then sets what its layers add or lack (head norms, post-norms, windows...).
    pub fn layer(&self, i: usize, s: LayerShape) -> Result<LayerPlan> {
        let p = |t: &str| format!("blk.{i}.{t}.weight");
        let b = |t: &str| format!("blk.{i}.{t}.bias");
        let qkv = s.q_dim + 2 * s.kv_dim;
        let (wq, wk, wv, qkv_bias) = if self.has(&p("attn_qkv")) {
            let m = self.matrix(&p("attn_qkv"), qkv, s.n_embd)?;
            let bias = self.vector_opt(&b("attn_qkv"), qkv)?;
            (
                m.rows(0, s.q_dim),
                m.rows(s.q_dim, s.kv_dim),
                m.rows(s.q_dim + s.kv_dim, s.kv_dim),
                bias,
            )
        } else {
            let bias = if self.has(&b("attn_q")) {
                let mut v = self.vector(&b("attn_q"), s.q_dim)?;
                v.extend(self.vector(&b("attn_k"), s.kv_dim)?);
                v.extend(self.vector(&b("attn_v"), s.kv_dim)?);
                Some(v)
            } else {
                None
            };
            (
                self.matrix(&p("attn_q"), s.q_dim, s.n_embd)?,
                self.matrix(&p("attn_k"), s.kv_dim, s.n_embd)?,
                self.matrix(&p("attn_v"), s.kv_dim, s.n_embd)?,
                bias,
            )
        };
        let name = |t: &str| format!("blk.{i}.{t}");
        // A gated MLP has `ffn_gate`, or (Phi-3) gate and up fused in one `ffn_up` of twice the
        // rows, gate first; a plain MLP (GPT-2, Falcon, MPT) has neither.
        let fused_up =
            !self.has(&p("ffn_gate")) && self.tensor(&p("ffn_up"))?.shape == [2 * s.n_ff, s.n_embd];
        let (gate, up) = if fused_up {
            let m = self.matrix(&p("ffn_up"), 2 * s.n_ff, s.n_embd)?;
            (Some(m.rows(0, s.n_ff)), m.rows(s.n_ff, s.n_ff))
        } else if self.has(&p("ffn_gate")) {
            (
                Some(self.matrix(&p("ffn_gate"), s.n_ff, s.n_embd)?),
                self.matrix(&p("ffn_up"), s.n_ff, s.n_embd)?,
            )
        } else {
            (None, self.matrix(&p("ffn_up"), s.n_ff, s.n_embd)?)
        };
        Ok(LayerPlan {
            attn_norm: self.norm_opt(&name("attn_norm"), s.n_embd)?,
            wq,
            wk,
            wv,
            qkv_bias,
            q_norm: None,
            k_norm: None,
            wo: self.matrix(&p("attn_output"), s.n_embd, s.q_dim)?,
            wo_bias: self.vector_opt(&b("attn_output"), s.n_embd)?,
            post_attn_norm: None,
            ffn_norm: self.norm_opt(&name("ffn_norm"), s.n_embd)?,
            gate,
            up,
            up_bias: self.vector_opt(&b("ffn_up"), s.n_ff)?,
            down: self.matrix(&p("ffn_down"), s.n_embd, s.n_ff)?,
            down_bias: self.vector_opt(&b("ffn_down"), s.n_embd)?,
            post_ffn_norm: None,
            parallel: false,
            rope: Some(0),
            window: None,
        })
    }
}
