//! Dispatches prepared once and recorded every pass: a pipeline, its bind group (its buffers and
//! its constant `Params` uniform) and a rule for its workgroup count in terms of the pass's
//! tokens. [`Builder`] makes one per operation from typed arguments (the shaders' interfaces are
//! in [`super::shader`]); the forward pass ([`super::model`]) and the kernel probes
//! ([`super::probe`]) both build with it.

use super::shader::{
    affine, attention, embed, gated, matmul, norm, quantize, rope, topk, Accumulate, QuantFormat,
    Tokens,
};
use super::weights::GpuMatrix;
use super::{Gpu, Op};
use crate::model::ops::{AttentionShape, RopeStyle};
use crate::model::plan::{Activation, NormKind};

/// Candidates the GPU selects for sampling.
pub const TOP_K: usize = crate::forward::TOP_CANDIDATES; // topk.wgsl writes 64 per group
/// Workgroups along x before a dispatch wraps into y (WebGPU allows 65535).
const WG_X: usize = 32768;
/// Candidates one top-k workgroup sorts.
pub(crate) const TOPK_GROUP: usize = 1024;
/// Most chunks attention splits one query's keys into (each a workgroup, then combined).
const MAX_CHUNKS: usize = 64;

/// Keys per attention chunk in a layer whose last query sees `keys` keys: 16, or the power of
/// two that makes at most [`MAX_CHUNKS`] chunks (attention.wgsl's `chunk_len` says the same).
/// Few heads and a short cache would otherwise leave most of a GPU idle.
pub(crate) fn attention_chunk(keys: usize) -> usize {
    keys.div_ceil(MAX_CHUNKS).next_power_of_two().max(16)
}

/// Floats of attention's chunk records for `tokens` queries of `n_head` heads.
pub(crate) fn attention_part_len(tokens: usize, n_head: usize, head_dim: usize) -> usize {
    tokens * n_head * MAX_CHUNKS * (head_dim + 2)
}

#[derive(Clone, Copy)]
enum Size {
    /// One thread per (token, item): `per_token` items.
    Threads {
        per_token: usize,
    },
    /// One workgroup per (token, row).
    Rows {
        per_token: usize,
    },
    /// Matmul: groups of 4 rows by tiles of 8 tokens (or just the last token).
    Matmul {
        rows: usize,
        tokens: Tokens,
    },
    /// Attention's partial pass: (head, token, chunk of `chunk` keys) up to the keys the last
    /// token sees.
    Attention {
        heads: usize,
        window: Option<usize>,
        /// Keys per chunk, if not [`attention_chunk`]'s (timing probes only).
        chunk: Option<usize>,
    },
    /// One workgroup per (head, token).
    Heads {
        heads: usize,
    },
    Fixed(u32),
}

pub(crate) struct Dispatch {
    /// What it computes, for profiles: the op, and a matmul's shape.
    pub(crate) label: String,
    pipeline: wgpu::ComputePipeline,
    bind: wgpu::BindGroup,
    size: Size,
}

impl Dispatch {
    fn groups(&self, n: usize, start: usize) -> (u32, u32, u32) {
        let wrap = |g: usize| {
            if g <= WG_X {
                (g as u32, 1)
            } else {
                (WG_X as u32, g.div_ceil(WG_X) as u32)
            }
        };
        match self.size {
            Size::Threads { per_token } => {
                let (x, y) = wrap((n * per_token).div_ceil(64));
                (x, y, 1)
            }
            Size::Rows { per_token } => {
                let (x, y) = wrap(n * per_token);
                (x, y, 1)
            }
            Size::Matmul { rows, tokens } => {
                let (x, y) = wrap(rows.div_ceil(4));
                let z = match tokens {
                    Tokens::Last => 1,
                    Tokens::All => n.div_ceil(8) as u32,
                };
                (x, y, z)
            }
            Size::Attention {
                heads,
                window,
                chunk,
            } => {
                let keys = (start + n).min(window.unwrap_or(usize::MAX));
                let chunk = chunk.unwrap_or_else(|| attention_chunk(keys));
                (heads as u32, n as u32, keys.div_ceil(chunk) as u32)
            }
            Size::Heads { heads } => (heads as u32, n as u32, 1),
            Size::Fixed(x) => (x, 1, 1),
        }
    }

    /// Records the dispatch for `n` tokens after `start` cached positions.
    pub(crate) fn record(&self, pass: &mut wgpu::ComputePass<'_>, n: usize, start: usize) {
        let (x, y, z) = self.groups(n, start);
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(x, y, z);
    }
}

/// A norm (RMSNorm or LayerNorm) over rows of `len` floats: its weights and bias.
#[derive(Clone, Copy)]
pub(crate) struct Norm<'a> {
    pub kind: NormKind,
    pub weight: &'a wgpu::Buffer,
    pub bias: Option<&'a wgpu::Buffer>,
    pub len: usize,
    pub eps: f32,
}

/// Where a matmul writes: token t's row r at `buffer[offset + t * stride + r]`, overwritten or
/// added to.
#[derive(Clone, Copy)]
pub(crate) struct Out<'a> {
    pub buffer: &'a wgpu::Buffer,
    pub offset: usize,
    pub stride: usize,
    pub accumulate: Accumulate,
}

impl<'a> Out<'a> {
    /// Rows `stride` floats apart from the start of `buffer`.
    pub fn rows(buffer: &'a wgpu::Buffer, stride: usize, accumulate: Accumulate) -> Self {
        Self {
            buffer,
            offset: 0,
            stride,
            accumulate,
        }
    }

    /// The same rows from float `offset` on.
    pub fn at(self, offset: usize) -> Self {
        Self { offset, ..self }
    }
}

/// RoPE's buffers: the q/k/v matmuls' output in, the queries, keys and values out.
pub(crate) struct RopeBuffers<'a> {
    /// Each token's q, k and v side by side.
    pub qkv: &'a wgpu::Buffer,
    /// The rotated queries, rows of `n_head` heads.
    pub q: &'a wgpu::Buffer,
    /// The caches the rotated keys and the values go to, at the batch's positions.
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    /// Cos then sin tables of every configuration.
    pub tables: &'a wgpu::Buffer,
    /// The norm of q and k first ([`RopeSpec::norm`]): their weights and eps.
    pub head_norms: Option<(&'a wgpu::Buffer, &'a wgpu::Buffer, f32)>,
    /// q, k and v biases end to end, added first.
    pub bias: Option<&'a wgpu::Buffer>,
}

/// What a RoPE dispatch rotates and with which table.
#[derive(Clone, Copy)]
pub(crate) struct RopeSpec {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Rotated pairs per head.
    pub half: usize,
    pub style: RopeStyle,
    /// First float of the table's cos in the tables buffer (its sin follows `table_len` later).
    pub table: usize,
    pub table_len: usize,
    /// The q/k norms' kind, whether each covers the whole q (or k) vector rather than one head,
    /// and whether its weights are one set per head rather than shared (where there are norms).
    pub norm: HeadNormSpec,
    /// q, k and v clamped to `[-c, c]` after the biases (MPT).
    pub clamp: Option<f32>,
}

/// How [`RopeSpec`]'s q/k norms apply.
#[derive(Clone, Copy)]
pub(crate) struct HeadNormSpec {
    pub kind: NormKind,
    pub whole: bool,
    pub per_head: bool,
    /// The weights' buffers hold a bias after the weights.
    pub bias: bool,
}

impl Default for HeadNormSpec {
    /// One RMSNorm per head with shared weights (Gemma 3, Qwen 3).
    fn default() -> Self {
        Self {
            kind: NormKind::Rms,
            whole: false,
            per_head: false,
            bias: false,
        }
    }
}

/// The MLP's activation step: which function, whether the MLP has a gate (else `act(up)`),
/// and up's bias.
#[derive(Clone, Copy)]
pub(crate) struct MlpAct<'a> {
    pub act: Activation,
    pub gated: bool,
    pub bias: Option<&'a wgpu::Buffer>,
}

impl MlpAct<'_> {
    /// A gated MLP without biases.
    pub fn gated(act: Activation) -> Self {
        Self {
            act,
            gated: true,
            bias: None,
        }
    }
}

/// Attention's buffers.
pub(crate) struct AttentionBuffers<'a> {
    pub q: &'a wgpu::Buffer,
    pub k_cache: &'a wgpu::Buffer,
    pub v_cache: &'a wgpu::Buffer,
    pub out: &'a wgpu::Buffer,
    /// [`attention_part_len`] floats of per-chunk records.
    pub part: &'a wgpu::Buffer,
}

/// Builds dispatches over buffers; `step` is the per-pass uniform ([`shader::Step`]).
pub(crate) struct Builder<'a> {
    pub gpu: &'a Gpu,
    pub step: &'a wgpu::Buffer,
    /// Quantized activations (xq words, xm vec4s), shared by every matmul.
    pub xq: &'a wgpu::Buffer,
    pub xm: &'a wgpu::Buffer,
}

impl Builder<'_> {
    /// A dispatch of `op` with `params` (its `Params` words) in its params slot, the step
    /// uniform in its step slot, and `buffers` in theirs.
    fn dispatch(
        &self,
        op: Op,
        params: &[u32],
        buffers: &[(u32, &wgpu::Buffer)],
        size: Size,
    ) -> Dispatch {
        let pipeline = self.gpu.pipeline(op);
        let uniform = self.gpu.uniform(&format!("{op:?}"), params);
        let mut entries: Vec<(u32, wgpu::BindingResource<'_>)> = buffers
            .iter()
            .map(|(b, buf)| (*b, buf.as_entire_binding()))
            .collect();
        let (params_slot, step_slot) = op.uniform_slots();
        entries.push((params_slot, uniform.as_entire_binding()));
        if let Some(slot) = step_slot {
            entries.push((slot, self.step.as_entire_binding()));
        }
        let bind = self.gpu.bind(&pipeline, &entries);
        Dispatch {
            label: format!("{op:?}"),
            pipeline,
            bind,
            size,
        }
    }

    /// `x` (rows of `cols` floats from `in_offset`, `in_stride` apart) into the shared xq/xm in
    /// `format`.
    pub fn quantize(
        &self,
        x: &wgpu::Buffer,
        in_offset: usize,
        in_stride: usize,
        cols: usize,
        format: QuantFormat,
    ) -> Dispatch {
        let params = quantize::Params {
            units: (cols / 32) as u32,
            mode: format,
            in_offset: in_offset as u32,
            in_stride: in_stride as u32,
            eps: 0.0,
            act: Activation::Silu,
            ungated: false,
            layer_norm: false,
            bias: false,
        };
        self.dispatch(
            Op::Quantize,
            &params.words(),
            &[
                (quantize::X, x),
                (quantize::XQ, self.xq),
                (quantize::XM, self.xm),
            ],
            Size::Threads {
                per_token: cols / format.values_per_thread(),
            },
        )
    }

    /// The norm of rows from `src` into `dst`, and for a matmul that wants its input quantized
    /// (`format`, as [`GpuMatrix::quantize_format`] gives it), `dst` quantized into xq/xm in the
    /// same dispatch.
    pub fn norm_prepare(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        norm: Norm<'_>,
        format: Option<QuantFormat>,
    ) -> Dispatch {
        let Some(format) = format else {
            return self.norm_into(src, dst, norm, 1, Accumulate::Overwrite);
        };
        let params = quantize::Params {
            units: (norm.len / 32) as u32,
            mode: format,
            in_offset: 0,
            in_stride: norm.len as u32,
            eps: norm.eps,
            act: Activation::Silu,
            ungated: false,
            layer_norm: norm.kind == NormKind::Layer,
            bias: norm.bias.is_some(),
        };
        self.dispatch(
            Op::NormQuantize,
            &params.words(),
            &[
                (quantize::X, dst),
                (quantize::XQ, self.xq),
                (quantize::XM, self.xm),
                (quantize::RES, src),
                (quantize::G, norm.weight),
                (quantize::BIAS, norm.bias.unwrap_or(norm.weight)),
            ],
            Size::Rows { per_token: 1 },
        )
    }

    /// `h = norm(x)`, then each matrix of `mats` applied to `h` into `out` at its offset
    /// (rows `out_w` floats apart): the quantizing for the first done by the norm's dispatch,
    /// and again only where a later matrix wants another format. Without a norm (OLMo 2) the
    /// matrices read `x` itself.
    pub fn norm_matmuls(
        &self,
        x: &wgpu::Buffer,
        h: &wgpu::Buffer,
        norm: Option<Norm<'_>>,
        mats: &[(GpuMatrix, usize)],
        out: &wgpu::Buffer,
        out_w: usize,
    ) -> Vec<Dispatch> {
        let cols = mats[0].0.cols;
        let mut quantized = mats[0].0.quantize_format();
        let (mut list, h) = match norm {
            Some(norm) => (vec![self.norm_prepare(x, h, norm, quantized)], h),
            None => (self.prepare(&mats[0].0, x, cols).into_iter().collect(), x),
        };
        for (m, offset) in mats {
            if m.quantize_format().is_some() && quantized != m.quantize_format() {
                list.extend(self.prepare(m, h, cols));
                quantized = m.quantize_format();
            }
            let to = Out::rows(out, out_w, Accumulate::Overwrite).at(*offset);
            list.extend(self.matmul(m, h, to, Tokens::All));
        }
        list
    }

    /// What `m`'s matmul needs done to its input `x` (rows of `cols` floats) first: quantizing
    /// into xq/xm in `m`'s format, or nothing for float weights.
    pub fn prepare(&self, m: &GpuMatrix, x: &wgpu::Buffer, cols: usize) -> Option<Dispatch> {
        m.quantize_format()
            .map(|format| self.quantize(x, 0, cols, cols, format))
    }

    /// `out` (+)= `W x_t` for the batch's `tokens`: quantized weights take the activations
    /// [`Builder::prepare`] put in xq/xm, float weights read `x` (rows of `m.cols` floats); one
    /// dispatch per weight chunk.
    pub fn matmul(
        &self,
        m: &GpuMatrix,
        x: &wgpu::Buffer,
        out: Out<'_>,
        tokens: Tokens,
    ) -> Vec<Dispatch> {
        let float = super::is_float(m.qtype);
        m.chunks
            .iter()
            .map(|c| {
                let params = matmul::Params {
                    rows: c.rows as u32,
                    units: m.units() as u32,
                    row_words: m.row_words as u32,
                    row_offset: c.first_row as u32,
                    out_stride: out.stride as u32,
                    out_offset: out.offset as u32,
                    start_stride: 0,
                    accumulate: out.accumulate,
                    tokens,
                };
                let buffers = if float {
                    vec![
                        (matmul::W, &c.buffer),
                        (matmul::X, x),
                        (matmul::OUT, out.buffer),
                    ]
                } else {
                    vec![
                        (matmul::W, &c.buffer),
                        (matmul::XQ, self.xq),
                        (matmul::XM, self.xm),
                        (matmul::OUT, out.buffer),
                    ]
                };
                let size = Size::Matmul {
                    rows: c.rows,
                    tokens,
                };
                let mut d = self.dispatch(Op::Matmul(m.qtype), &params.words(), &buffers, size);
                d.label = format!("{} {}x{}", d.label, params.rows, params.units * 32);
                d
            })
            .collect()
    }

    /// `x[t] = scale * row ids[t]` of `m`.
    pub fn embed(
        &self,
        m: &GpuMatrix,
        ids: &wgpu::Buffer,
        x: &wgpu::Buffer,
        scale: f32,
    ) -> Vec<Dispatch> {
        self.embed_rows(m, Some(ids), x, scale)
    }

    /// `x[t] += row start + t` of `m` (learned position embeddings).
    pub fn position_embed(&self, m: &GpuMatrix, x: &wgpu::Buffer) -> Vec<Dispatch> {
        self.embed_rows(m, None, x, 1.0)
    }

    /// [`Builder::embed`] with `ids`, else [`Builder::position_embed`].
    fn embed_rows(
        &self,
        m: &GpuMatrix,
        ids: Option<&wgpu::Buffer>,
        x: &wgpu::Buffer,
        scale: f32,
    ) -> Vec<Dispatch> {
        m.chunks
            .iter()
            .map(|c| {
                let params = embed::Params {
                    rows: c.rows as u32,
                    units: m.units() as u32,
                    row_words: m.row_words as u32,
                    row_offset: c.first_row as u32,
                    scale,
                    positions: ids.is_none(),
                };
                // Positions read no ids; the binding holds the weights (read-only too).
                let ids = ids.unwrap_or(&c.buffer);
                self.dispatch(
                    Op::Embed(m.qtype),
                    &params.words(),
                    &[(embed::W, &c.buffer), (embed::IDS, ids), (embed::X, x)],
                    Size::Threads {
                        per_token: m.units(),
                    },
                )
            })
            .collect()
    }

    /// The norm of `rows_per_token` rows per token from `src` into `dst` (or added to it).
    pub fn norm_into(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        norm: Norm<'_>,
        rows_per_token: usize,
        accumulate: Accumulate,
    ) -> Dispatch {
        self.norm_scaled_into(src, dst, norm, rows_per_token, accumulate, 1.0)
    }

    /// [`Builder::norm_into`] with the result multiplied by `scale` (a residual scale).
    pub fn norm_scaled_into(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        norm: Norm<'_>,
        rows_per_token: usize,
        accumulate: Accumulate,
        scale: f32,
    ) -> Dispatch {
        let params = norm::Params {
            len: norm.len as u32,
            rows_per_token: rows_per_token as u32,
            eps: norm.eps,
            accumulate,
            layer_norm: norm.kind == NormKind::Layer,
            bias: norm.bias.is_some(),
            src_offset: 0,
            dst_offset: 0,
            start_stride: 0,
            scale,
        };
        self.dispatch(
            Op::NormInto,
            &params.words(),
            &[
                (norm::G, norm.weight),
                (norm::DST, dst),
                (norm::SRC, src),
                (norm::BIAS, norm.bias.unwrap_or(norm.weight)),
            ],
            Size::Rows {
                per_token: rows_per_token,
            },
        )
    }

    /// RoPE on the queries into `io.q` and on the keys into the cache, the values copied into
    /// theirs; biases added, values clamped and q and k normed first where `io` and `spec` say.
    pub fn rope(&self, io: RopeBuffers<'_>, spec: RopeSpec) -> Dispatch {
        // Without norms or bias their bindings are unused by the work but still bound: the tables.
        let (qn, kn, eps) = io.head_norms.unwrap_or((io.tables, io.tables, 0.0));
        let params = rope::Params {
            n_head: spec.n_head as u32,
            n_kv_head: spec.n_kv_head as u32,
            head_dim: spec.head_dim as u32,
            half: spec.half as u32,
            style: spec.style,
            table: spec.table as u32,
            table_len: spec.table_len as u32,
            norm: io.head_norms.map(|_| spec.norm.kind),
            eps,
            bias: io.bias.is_some(),
            clamp: spec.clamp,
            norm_whole: spec.norm.whole,
            norm_per_head: spec.norm.per_head,
            norm_bias: spec.norm.bias,
        };
        self.dispatch(
            Op::Rope,
            &params.words(),
            &[
                (rope::QKV, io.qkv),
                (rope::TABLES, io.tables),
                (rope::Q, io.q),
                (rope::QN, qn),
                (rope::KN, kn),
                (rope::K_CACHE, io.k_cache),
                (rope::V_CACHE, io.v_cache),
                (rope::BIAS, io.bias.unwrap_or(io.tables)),
            ],
            Size::Heads {
                heads: spec.n_head + 2 * spec.n_kv_head,
            },
        )
    }

    /// Attention of the queries over the cache, as a partial pass over chunks of keys into
    /// `io.part` and a combining pass into `io.out`; `chunk` forces the chunk length (timing
    /// probes), else it follows the keys ([`attention_chunk`]).
    pub fn attention(
        &self,
        io: AttentionBuffers<'_>,
        shape: AttentionShape,
        chunk: Option<usize>,
    ) -> [Dispatch; 2] {
        let params = attention::Params {
            n_head: shape.n_head as u32,
            n_kv_head: shape.n_kv_head as u32,
            head_dim: shape.head_dim as u32,
            window: shape.window.unwrap_or(0) as u32,
            scale: shape.scale,
            max_chunks: MAX_CHUNKS as u32,
            chunk: chunk.unwrap_or(0) as u32,
            softcap: shape.softcap,
            alibi_max_bias: shape.alibi_max_bias,
        }
        .words();
        [
            self.dispatch(
                Op::Attention,
                &params,
                &[
                    (attention::Q, io.q),
                    (attention::K, io.k_cache),
                    (attention::V, io.v_cache),
                    (attention::PART, io.part),
                ],
                Size::Attention {
                    heads: shape.n_head,
                    window: shape.window,
                    chunk,
                },
            ),
            self.dispatch(
                Op::AttentionCombine,
                &params,
                &[(attention::OUT, io.out), (attention::PART, io.part)],
                Size::Heads {
                    heads: shape.n_head,
                },
            ),
        ]
    }

    /// [`Builder::gated`], and for a matmul that wants its input quantized (`format`), `out`
    /// quantized into xq/xm in the same dispatch.
    pub fn gated_prepare(
        &self,
        gu: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        act: MlpAct<'_>,
        format: Option<QuantFormat>,
    ) -> Dispatch {
        let Some(format) = format else {
            return self.gated(gu, out, len, act);
        };
        let params = quantize::Params {
            units: (len / 32) as u32,
            mode: format,
            in_offset: 0,
            in_stride: len as u32,
            eps: 0.0,
            act: act.act,
            ungated: !act.gated,
            layer_norm: false,
            bias: act.bias.is_some(),
        };
        self.dispatch(
            Op::GatedQuantize,
            &params.words(),
            &[
                (quantize::X, out),
                (quantize::XQ, self.xq),
                (quantize::XM, self.xm),
                (quantize::RES, gu),
                (quantize::BIAS, act.bias.unwrap_or(gu)),
            ],
            Size::Rows { per_token: 1 },
        )
    }

    /// `out = act(gate) * (up + bias)` for rows of `len`, from each token's gate and up side by
    /// side in `gu`; or without a gate `out = act(up + bias)` from rows of up alone.
    pub fn gated(
        &self,
        gu: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        act: MlpAct<'_>,
    ) -> Dispatch {
        let params = gated::Params {
            len: len as u32,
            act: act.act,
            ungated: !act.gated,
            bias: act.bias.is_some(),
        };
        self.dispatch(
            Op::Gated,
            &params.words(),
            &[
                (gated::GU, gu),
                (gated::OUT, out),
                (gated::BIAS, act.bias.unwrap_or(gu)),
            ],
            Size::Threads { per_token: len },
        )
    }

    /// `dst (+)= cap(scale * (v + bias))` over rows of `len` of the batch's `tokens` (`Last`:
    /// one row), v from `src` or, without one, dst's own values; `cap` soft-caps.
    #[allow(clippy::too_many_arguments)]
    pub fn affine(
        &self,
        dst: &wgpu::Buffer,
        src: Option<&wgpu::Buffer>,
        bias: Option<&wgpu::Buffer>,
        len: usize,
        accumulate: Accumulate,
        tokens: Tokens,
        scale: f32,
        cap: Option<f32>,
    ) -> Dispatch {
        let params = affine::Params {
            len: len as u32,
            accumulate,
            bias: bias.is_some(),
            in_place: src.is_none(),
            tokens,
            scale,
            cap,
        };
        // Unused bindings hold a read-only buffer that is not dst.
        let spare = src.or(bias).unwrap_or(self.xm);
        let size = match tokens {
            Tokens::All => Size::Threads { per_token: len },
            Tokens::Last => Size::Fixed(len.div_ceil(64) as u32),
        };
        self.dispatch(
            Op::Affine,
            &params.words(),
            &[
                (affine::DST, dst),
                (affine::SRC, src.unwrap_or(spare)),
                (affine::BIAS, bias.unwrap_or(spare)),
            ],
            size,
        )
    }

    /// Rounds of top-k over `count` values of `vals` from `in_offset`, ping-ponging between
    /// two candidate buffer pairs; returns the dispatches and which pair holds the final 64.
    pub fn topk(
        &self,
        vals: &wgpu::Buffer,
        in_offset: usize,
        count: usize,
        pairs: [(&wgpu::Buffer, &wgpu::Buffer); 2],
    ) -> (Vec<Dispatch>, usize) {
        let mut out = Vec::new();
        let mut count = count;
        let mut src: Option<usize> = None;
        loop {
            let groups = count.div_ceil(TOPK_GROUP);
            let dst = src.map_or(0, |s| 1 - s);
            let (in_vals, in_ids, offset, has_ids) = match src {
                None => (vals, pairs[1].1, in_offset, false),
                Some(s) => (pairs[s].0, pairs[s].1, 0, true),
            };
            let params = topk::Params {
                count: count as u32,
                in_offset: offset as u32,
                has_ids,
            };
            out.push(self.dispatch(
                Op::TopK,
                &params.words(),
                &[
                    (topk::VALS, in_vals),
                    (topk::IDS, in_ids),
                    (topk::OUT_VALS, pairs[dst].0),
                    (topk::OUT_IDS, pairs[dst].1),
                ],
                Size::Fixed(groups as u32),
            ));
            count = groups * TOP_K;
            src = Some(dst);
            if groups == 1 {
                return (out, dst);
            }
        }
    }
}
