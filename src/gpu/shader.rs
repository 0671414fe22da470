//! The host's side of each shader's interface: its `Params` uniform word for word, its binding
//! slots by name, and its modes as enums. One module per WGSL file (or family of entry points that
//! share a `Params`); a change to a shader's `struct Params` or `@binding` list is mirrored here
//! and nowhere else.
//!
//! Every `Params` is a list of 32-bit words; `words()` writes the fields in the WGSL struct's
//! order, floats as their bits, enums and switches as the values the shader tests, and the
//! struct's padding (`_a`, `_b`, ...) as zeros, so that the uniform is a multiple of 16 bytes.

use crate::model::ops::RopeStyle;
use crate::model::plan::Activation;

/// Whether a kernel overwrites its output or adds to it (a residual add): bit 0 of the `flags`
/// of matmul_common.wgsl and norm.wgsl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accumulate {
    Overwrite,
    Add,
}

impl Accumulate {
    fn bit(self) -> u32 {
        (self == Accumulate::Add) as u32
    }
}

/// Which tokens of the batch a matmul computes: bit 1 of matmul_common.wgsl's `flags`. `Last`
/// writes only the batch's last token, as token 0 (the output projection before sampling).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tokens {
    All,
    Last,
}

/// The activation format a quantized matmul reads from xq/xm (quantize.wgsl's `mode`): the
/// format of the CPU kernel that the weight type pairs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuantFormat {
    /// Mode 0: per 32 values an f16 scale.
    Q8_0 = 0,
    /// Mode 1: Q8_0 plus the unit's sum (for weights with a min: Q4_1, Q5_1).
    Q8_1 = 1,
    /// Mode 2: per 256 values an f32 scale and sums per 16 (the k-quants).
    Q8K = 2,
}

impl QuantFormat {
    /// Values one quantizing thread handles (`main`'s threads: one per unit, Q8_K one per 256).
    pub(crate) fn values_per_thread(self) -> usize {
        match self {
            QuantFormat::Q8K => 256,
            _ => 32,
        }
    }
}

/// activation.wgsl's `act`: 0 SiLU, 1 GELU (tanh).
fn act_word(act: Activation) -> u32 {
    (act == Activation::GeluTanh) as u32
}

/// Every kernel that runs per token but `topk.wgsl` binds this per-pass uniform
/// (`struct Step { n, start, _a, _b }`): the batch's tokens and the cached positions before it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Step {
    pub n: u32,
    pub start: u32,
}

impl Step {
    pub fn words(&self) -> [u32; 4] {
        [self.n, self.start, 0, 0]
    }
}

/// matmul.wgsl (quantized weights) and matmul_float.wgsl (float weights), whose `Params` is
/// matmul_common.wgsl's.
pub mod matmul {
    use super::{Accumulate, Tokens};

    /// Weights (one chunk of rows).
    pub const W: u32 = 0;
    /// Quantized weights: the activations' packed bytes and scales (quantize.wgsl's output).
    pub const XQ: u32 = 1;
    pub const XM: u32 = 2;
    /// Float weights: the f32 activations themselves.
    pub const X: u32 = 1;
    pub const OUT: u32 = 3;
    pub const PARAMS: u32 = 4;
    pub const STEP: u32 = 5;

    /// `struct Params` of matmul_common.wgsl.
    pub struct Params {
        /// Rows in this weight chunk.
        pub rows: u32,
        /// Units of 32 weights per row.
        pub units: u32,
        pub row_words: u32,
        /// This chunk's first row in the output.
        pub row_offset: u32,
        /// Floats between two tokens' outputs.
        pub out_stride: u32,
        pub out_offset: u32,
        /// Added to out_offset per cached position (0: the forward pass never writes the cache
        /// by matmul).
        pub start_stride: u32,
        /// `flags` bit 0.
        pub accumulate: Accumulate,
        /// `flags` bit 1.
        pub tokens: Tokens,
    }

    impl Params {
        pub fn words(&self) -> [u32; 8] {
            [
                self.rows,
                self.units,
                self.row_words,
                self.row_offset,
                self.out_stride,
                self.out_offset,
                self.start_stride,
                self.accumulate.bit() | (((self.tokens == Tokens::Last) as u32) << 1),
            ]
        }
    }
}

/// embed.wgsl.
pub mod embed {
    /// The embedding matrix (one chunk of rows).
    pub const W: u32 = 0;
    pub const IDS: u32 = 1;
    pub const X: u32 = 2;
    pub const PARAMS: u32 = 3;
    pub const STEP: u32 = 4;

    /// `struct Params` of embed.wgsl.
    pub struct Params {
        pub rows: u32,
        pub units: u32,
        pub row_words: u32,
        pub row_offset: u32,
        pub scale: f32,
        /// Row `start + t` (learned positions) added to x, instead of row `ids[t]` written.
        pub positions: bool,
    }

    impl Params {
        pub fn words(&self) -> [u32; 8] {
            let p = self;
            [
                p.rows,
                p.units,
                p.row_words,
                p.row_offset,
                p.scale.to_bits(),
                p.positions as u32,
                0, // _b
                0, // _c
            ]
        }
    }
}

/// quantize.wgsl: entry points `main` (quantize x), `norm_quantize` (RMSNorm res into x, then
/// quantize) and `gated_quantize` (act(gate) * up from res into x, then quantize).
pub mod quantize {
    use super::{act_word, QuantFormat};
    use crate::model::plan::Activation;

    /// The f32 rows quantized (written first by the fused entry points).
    pub const X: u32 = 0;
    pub const XQ: u32 = 1;
    pub const XM: u32 = 2;
    pub const PARAMS: u32 = 3;
    pub const STEP: u32 = 4;
    /// `norm_quantize`: the residual stream it norms; `gated_quantize`: each token's gate and
    /// up side by side.
    pub const RES: u32 = 5;
    /// `norm_quantize`: the norm's weights.
    pub const G: u32 = 6;
    /// `norm_quantize`: the norm's bias; `gated_quantize`: the up projection's (bound, unused,
    /// without `bias`).
    pub const BIAS: u32 = 7;

    /// `struct Params` of quantize.wgsl.
    pub struct Params {
        /// Units of 32 per row.
        pub units: u32,
        pub mode: QuantFormat,
        pub in_offset: u32,
        /// Floats between rows of x.
        pub in_stride: u32,
        /// `norm_quantize` only.
        pub eps: f32,
        /// `gated_quantize` only.
        pub act: Activation,
        /// `gated_quantize`: no gate (res holds rows of up alone).
        pub ungated: bool,
        /// `norm_quantize`: LayerNorm instead of RMSNorm.
        pub layer_norm: bool,
        /// Add the bias binding (the norm's, or up's).
        pub bias: bool,
    }

    impl Params {
        pub fn words(&self) -> [u32; 8] {
            let p = self;
            [
                p.units,
                p.mode as u32,
                p.in_offset,
                p.in_stride,
                p.eps.to_bits(),
                act_word(p.act) | (p.ungated as u32) << 1,
                p.layer_norm as u32 | (p.bias as u32) << 1,
                0, // _c
            ]
        }
    }
}

/// norm.wgsl (entry point `into`).
pub mod norm {
    use super::Accumulate;

    pub const G: u32 = 0;
    pub const PARAMS: u32 = 1;
    pub const STEP: u32 = 2;
    pub const DST: u32 = 3;
    pub const SRC: u32 = 4;
    /// The norm's bias (bound, unused, without `bias`).
    pub const BIAS: u32 = 5;

    /// `struct Params` of norm.wgsl.
    pub struct Params {
        pub len: u32,
        pub rows_per_token: u32,
        pub eps: f32,
        /// `flags` bit 0.
        pub accumulate: Accumulate,
        /// `flags` bit 1: LayerNorm instead of RMSNorm.
        pub layer_norm: bool,
        /// `flags` bit 2: add the bias.
        pub bias: bool,
        pub src_offset: u32,
        pub dst_offset: u32,
        pub start_stride: u32,
        /// Multiplies the result (a residual scale; else 1).
        pub scale: f32,
    }

    impl Params {
        pub fn words(&self) -> [u32; 8] {
            let p = self;
            [
                p.len,
                p.rows_per_token,
                p.eps.to_bits(),
                p.accumulate.bit() | (p.layer_norm as u32) << 1 | (p.bias as u32) << 2,
                p.src_offset,
                p.dst_offset,
                p.start_stride,
                p.scale.to_bits(),
            ]
        }
    }
}

/// rope.wgsl.
pub mod rope {
    use super::RopeStyle;
    use crate::model::plan::NormKind;

    /// Each token's q, k and v side by side.
    pub const QKV: u32 = 0;
    /// The cos and sin tables of every RoPE configuration.
    pub const TABLES: u32 = 1;
    pub const PARAMS: u32 = 2;
    pub const STEP: u32 = 3;
    pub const Q: u32 = 4;
    /// The q and k norms' weights, then their biases where they have them (bound, unused,
    /// without `norm`).
    pub const QN: u32 = 5;
    pub const KN: u32 = 6;
    pub const K_CACHE: u32 = 7;
    pub const V_CACHE: u32 = 8;
    /// q, k and v biases end to end (bound, unused, without `bias`).
    pub const BIAS: u32 = 9;

    /// `struct Params` of rope.wgsl.
    pub struct Params {
        pub n_head: u32,
        pub n_kv_head: u32,
        pub head_dim: u32,
        /// Rotated pairs per head (0: a layer without RoPE, which only moves q, k and v).
        pub half: u32,
        /// 0 adjacent pairs, 1 halves.
        pub style: RopeStyle,
        /// First float of this configuration's cos table (its sin follows `table_len` later).
        pub table: u32,
        pub table_len: u32,
        /// Norm q and k first, of this kind.
        pub norm: Option<NormKind>,
        pub eps: f32,
        /// Add the biases first.
        pub bias: bool,
        /// Clamp q, k and v to `[-c, c]` after the biases.
        pub clamp: Option<f32>,
        /// The norm's statistics cover the whole q (or k) vector, not one head.
        pub norm_whole: bool,
        /// The norm's weights are one set per head, not one shared.
        pub norm_per_head: bool,
        /// The norms have biases, right after the weights in their buffers.
        pub norm_bias: bool,
    }

    impl Params {
        pub fn words(&self) -> [u32; 12] {
            let p = self;
            [
                p.n_head,
                p.n_kv_head,
                p.head_dim,
                p.half,
                (p.style == RopeStyle::Halves) as u32,
                p.table,
                p.table_len,
                match p.norm {
                    None => 0,
                    Some(NormKind::Rms) => 1,
                    Some(NormKind::Layer) => 2,
                },
                p.eps.to_bits(),
                p.bias as u32,
                p.clamp.unwrap_or(0.0).to_bits(),
                p.norm_whole as u32 | (p.norm_per_head as u32) << 1 | (p.norm_bias as u32) << 2,
            ]
        }
    }
}

/// attention.wgsl: entry points `partial` and `combine`, which share the bindings and `Params`.
pub mod attention {
    pub const Q: u32 = 0;
    pub const K: u32 = 1;
    pub const V: u32 = 2;
    /// `combine`'s output.
    pub const OUT: u32 = 3;
    pub const PARAMS: u32 = 4;
    pub const STEP: u32 = 5;
    /// The per-chunk records `partial` writes and `combine` reads.
    pub const PART: u32 = 6;

    /// `struct Params` of attention.wgsl.
    pub struct Params {
        pub n_head: u32,
        pub n_kv_head: u32,
        pub head_dim: u32,
        /// 0: no window.
        pub window: u32,
        pub scale: f32,
        /// Chunk records per (token, head) in `part`.
        pub max_chunks: u32,
        /// Keys per chunk if not 0 (timing probes), else `chunk_len`'s.
        pub chunk: u32,
        /// Scores become `cap * tanh(score / cap)` (Gemma 2).
        pub softcap: Option<f32>,
        /// ALiBi's maximum bias (MPT): each head's slope as `ops::alibi_slope` gives it.
        pub alibi_max_bias: Option<f32>,
    }

    impl Params {
        pub fn words(&self) -> [u32; 12] {
            let p = self;
            // ops::alibi_slope's terms: n the largest power of two <= n_head, m0 and m1.
            let (m0, m1, n) = match p.alibi_max_bias {
                Some(b) => {
                    let n = 1u32 << (31 - p.n_head.leading_zeros());
                    (
                        2f32.powf(-b / n as f32),
                        2f32.powf(-(b / 2.0) / n as f32),
                        n,
                    )
                }
                None => (0.0, 0.0, 0),
            };
            [
                p.n_head,
                p.n_kv_head,
                p.head_dim,
                p.window,
                p.scale.to_bits(),
                p.max_chunks,
                p.chunk,
                p.softcap.unwrap_or(0.0).to_bits(),
                m0.to_bits(),
                m1.to_bits(),
                n,
                0, // _c
            ]
        }
    }
}

/// gated.wgsl.
pub mod gated {
    use super::act_word;
    use crate::model::plan::Activation;

    /// Each token's gate and up side by side.
    pub const GU: u32 = 0;
    pub const OUT: u32 = 1;
    pub const PARAMS: u32 = 2;
    pub const STEP: u32 = 3;
    /// The up projection's bias (bound, unused, without `bias`).
    pub const BIAS: u32 = 4;

    /// `struct Params` of gated.wgsl.
    pub struct Params {
        pub len: u32,
        pub act: Activation,
        /// No gate: gu holds rows of up alone, and out = act(up).
        pub ungated: bool,
        /// Add the bias to up first.
        pub bias: bool,
    }

    impl Params {
        pub fn words(&self) -> [u32; 4] {
            let p = self;
            [
                p.len,
                act_word(p.act) | (p.ungated as u32) << 1,
                p.bias as u32,
                0, // _b
            ]
        }
    }
}

/// affine.wgsl: `y = cap(scale * (v + bias))` into or added to dst.
pub mod affine {
    use super::{Accumulate, Tokens};

    pub const DST: u32 = 0;
    /// The values (bound, unused, `in_place`).
    pub const SRC: u32 = 1;
    /// Bound, unused, without `bias`.
    pub const BIAS: u32 = 2;
    pub const PARAMS: u32 = 3;
    pub const STEP: u32 = 4;

    /// `struct Params` of affine.wgsl.
    pub struct Params {
        pub len: u32,
        /// `flags` bit 0.
        pub accumulate: Accumulate,
        /// Bit 1: add the bias.
        pub bias: bool,
        /// Bit 2: the values are dst's own.
        pub in_place: bool,
        /// Bit 3: only the batch's last token, as row 0.
        pub tokens: Tokens,
        pub scale: f32,
        /// Soft-cap (Gemma 2's logits).
        pub cap: Option<f32>,
    }

    impl Params {
        pub fn words(&self) -> [u32; 4] {
            let p = self;
            [
                p.len,
                p.accumulate.bit()
                    | (p.bias as u32) << 1
                    | (p.in_place as u32) << 2
                    | ((p.tokens == Tokens::Last) as u32) << 3,
                p.scale.to_bits(),
                p.cap.unwrap_or(0.0).to_bits(),
            ]
        }
    }
}

/// topk.wgsl (no step uniform: its sizes are all in `Params`).
pub mod topk {
    pub const VALS: u32 = 0;
    /// The candidates' ids (bound, unused, in the first round, where an id is the index).
    pub const IDS: u32 = 1;
    pub const OUT_VALS: u32 = 2;
    pub const OUT_IDS: u32 = 3;
    pub const PARAMS: u32 = 4;

    /// `struct Params` of topk.wgsl.
    pub struct Params {
        pub count: u32,
        pub in_offset: u32,
        /// false: the id is the index.
        pub has_ids: bool,
    }

    impl Params {
        pub fn words(&self) -> [u32; 4] {
            [self.count, self.in_offset, self.has_ids as u32, 0] // _a
        }
    }
}
