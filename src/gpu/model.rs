//! The forward pass on the GPU, for any model a [`Plan`] describes.
//!
//! Everything is prepared at load: weights, activation buffers for [`MAX_TOKENS`] tokens, the KV
//! cache (f32, `context` positions per layer), and every dispatch with its bind group and
//! constant parameters. A forward pass writes three small things (token ids, positions, RoPE
//! tables), records the prepared dispatches into one command buffer and reads back either the
//! top [`TOP_K`] candidates of the last token (decode: 512 bytes instead of the vocabulary) or
//! whole logits rows.

use super::profile::Profiler;
use super::weights::GpuMatrix;
use super::{f32s, read_back, words_bytes, Gpu, Op};
use crate::error::{Error, Result};
use crate::forward::{Logits, Want};
use crate::model::blocks::{RopeStyle, RopeTable};
use crate::model::plan::{Activation, Plan, RopePlan};
// Read only while profiling, which the browser never does (its clock is not std's).
use std::time::Instant;

/// Most tokens one forward pass takes (longer inputs are split by the caller).
pub const MAX_TOKENS: usize = 64;
/// Most tokens whose whole logits rows one forward pass returns.
pub const MAX_LOGIT_ROWS: usize = 32;
/// Candidates the GPU selects for sampling.
pub const TOP_K: usize = crate::forward::TOP_CANDIDATES; // topk.wgsl writes 64 per group
/// Workgroups along x before a dispatch wraps into y (WebGPU allows 65535).
const WG_X: usize = 32768;
/// Candidates one top-k workgroup sorts.
const TOPK_GROUP: usize = 1024;
/// Dispatches in the first command buffer of a pass (each later one holds twice as many).
const FIRST_SEGMENT: usize = 32;
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
        last_only: bool,
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
    label: String,
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
            Size::Matmul { rows, last_only } => {
                let (x, y) = wrap(rows.div_ceil(4));
                (x, y, if last_only { 1 } else { n.div_ceil(8) as u32 })
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

fn f(v: f32) -> u32 {
    v.to_bits()
}

/// Builds dispatches over buffers; `step` is the per-pass uniform (token count, first position).
pub(crate) struct Builder<'a> {
    pub gpu: &'a Gpu,
    pub step: &'a wgpu::Buffer,
    /// Quantized activations (xq words, xm vec4s), shared by every matmul.
    pub xq: &'a wgpu::Buffer,
    pub xm: &'a wgpu::Buffer,
}

impl Builder<'_> {
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
        let label = match op {
            Op::Matmul(_) => format!("{op:?} {}x{}", params[0], params[1] * 32),
            _ => format!("{op:?}"),
        };
        Dispatch {
            label,
            pipeline,
            bind,
            size,
        }
    }

    /// `x` (rows of `cols` floats from `in_offset`, `in_stride` apart) into the shared xq/xm in
    /// the format `mode` (see quantize.wgsl).
    pub fn quantize(
        &self,
        x: &wgpu::Buffer,
        in_offset: usize,
        in_stride: usize,
        cols: usize,
        mode: u32,
    ) -> Dispatch {
        let units = cols / 32;
        let per_token = if mode == 2 { units / 8 } else { units };
        self.dispatch(
            Op::Quantize,
            &[
                units as u32,
                mode,
                in_offset as u32,
                in_stride as u32,
                0,
                0,
                0,
                0,
            ],
            &[(0, x), (1, self.xq), (2, self.xm)],
            Size::Threads { per_token },
        )
    }

    /// RMSNorm of rows of `len` from `src` into `dst` (weights `g`), and for a matmul that
    /// wants its input quantized (`mode`, as [`GpuMatrix::quantize_mode`] gives it), `dst`
    /// quantized into xq/xm in the same dispatch.
    pub fn norm_prepare(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        g: &wgpu::Buffer,
        len: usize,
        eps: f32,
        mode: Option<u32>,
    ) -> Dispatch {
        match mode {
            None => self.norm_into(src, dst, g, len, 1, eps, false),
            Some(mode) => self.dispatch(
                Op::NormQuantize,
                &[(len / 32) as u32, mode, 0, len as u32, f(eps), 0, 0, 0],
                &[(0, dst), (1, self.xq), (2, self.xm), (5, src), (6, g)],
                Size::Rows { per_token: 1 },
            ),
        }
    }

    /// `h = RMSNorm(x) * g` (rows of `len`), then each matrix of `mats` applied to `h` into
    /// `out` at its offset (rows `out_w` floats apart): the quantizing for the first done by the
    /// norm's dispatch, and again only where a later matrix wants another format.
    #[allow(clippy::too_many_arguments)]
    pub fn norm_matmuls(
        &self,
        x: &wgpu::Buffer,
        h: &wgpu::Buffer,
        g: &wgpu::Buffer,
        len: usize,
        eps: f32,
        mats: &[(GpuMatrix, usize)],
        out: &wgpu::Buffer,
        out_w: usize,
    ) -> Vec<Dispatch> {
        let mut quantized = mats[0].0.quantize_mode();
        let mut list = vec![self.norm_prepare(x, h, g, len, eps, quantized)];
        for (m, offset) in mats {
            if m.quantize_mode().is_some() && quantized != m.quantize_mode() {
                list.extend(self.prepare(m, h, len));
                quantized = m.quantize_mode();
            }
            list.extend(self.matmul(m, h, out, *offset, out_w, 0, false, false));
        }
        list
    }

    /// What `m`'s matmul needs done to its input `x` (rows of `cols` floats) first: quantizing
    /// into xq/xm in `m`'s format, or nothing for float weights.
    pub fn prepare(&self, m: &GpuMatrix, x: &wgpu::Buffer, cols: usize) -> Option<Dispatch> {
        m.quantize_mode()
            .map(|mode| self.quantize(x, 0, cols, cols, mode))
    }

    /// `out[out_offset + start * start_stride + t * out_stride + row] (+)= W x_t`: quantized
    /// weights take the activations [`Builder::prepare`] put in xq/xm, float weights read `x`
    /// (rows of `m.cols` floats); one dispatch per weight chunk.
    #[allow(clippy::too_many_arguments)]
    pub fn matmul(
        &self,
        m: &GpuMatrix,
        x: &wgpu::Buffer,
        out: &wgpu::Buffer,
        out_offset: usize,
        out_stride: usize,
        start_stride: usize,
        accumulate: bool,
        last_only: bool,
    ) -> Vec<Dispatch> {
        let flags = accumulate as u32 | ((last_only as u32) << 1);
        m.chunks
            .iter()
            .map(|c| {
                self.dispatch(
                    Op::Matmul(m.qtype),
                    &[
                        c.rows as u32,
                        m.units() as u32,
                        m.row_words as u32,
                        c.first_row as u32,
                        out_stride as u32,
                        out_offset as u32,
                        start_stride as u32,
                        flags,
                    ],
                    &if super::is_float(m.qtype) {
                        vec![(0, &c.buffer), (1, x), (3, out)]
                    } else {
                        vec![(0, &c.buffer), (1, self.xq), (2, self.xm), (3, out)]
                    },
                    Size::Matmul {
                        rows: c.rows,
                        last_only,
                    },
                )
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
        m.chunks
            .iter()
            .map(|c| {
                self.dispatch(
                    Op::Embed(m.qtype),
                    &[
                        c.rows as u32,
                        m.units() as u32,
                        m.row_words as u32,
                        c.first_row as u32,
                        f(scale),
                        0,
                        0,
                        0,
                    ],
                    &[(0, &c.buffer), (1, ids), (2, x)],
                    Size::Threads {
                        per_token: m.units(),
                    },
                )
            })
            .collect()
    }

    /// RMSNorm of `rows_per_token` rows of `len` per token from `src` into `dst` (or added to it).
    #[allow(clippy::too_many_arguments)]
    pub fn norm_into(
        &self,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        g: &wgpu::Buffer,
        len: usize,
        rows_per_token: usize,
        eps: f32,
        add: bool,
    ) -> Dispatch {
        self.dispatch(
            Op::NormInto,
            &[
                len as u32,
                rows_per_token as u32,
                f(eps),
                add as u32,
                0,
                0,
                0,
                0,
            ],
            &[(0, g), (3, dst), (4, src)],
            Size::Rows {
                per_token: rows_per_token,
            },
        )
    }

    /// From `qkv` (each token's q, k and v side by side, as the matmuls wrote them): RoPE on
    /// the queries into `dst[0]` (rows of `n_head` heads), RoPE on the keys into the cache
    /// `dst[1]` and the values into the cache `dst[2]` (rows of `n_kv_head` heads at the
    /// batch's positions), using table `table` of `tables` (cos then sin, `table_len` floats
    /// each); with `norms` (q and k weights, eps), each q and k head is RMS-normed first.
    #[allow(clippy::too_many_arguments)]
    pub fn rope(
        &self,
        qkv: &wgpu::Buffer,
        dst: [&wgpu::Buffer; 3],
        tables: &wgpu::Buffer,
        norms: Option<(&wgpu::Buffer, &wgpu::Buffer, f32)>,
        bias: Option<&wgpu::Buffer>,
        n_head: usize,
        n_kv_head: usize,
        head_dim: usize,
        half: usize,
        style: RopeStyle,
        table: usize,
        table_len: usize,
    ) -> Dispatch {
        // Without norms or bias their bindings are unused by the work but still bound: the tables.
        let (qn, kn, eps) = norms.unwrap_or((tables, tables, 0.0));
        self.dispatch(
            Op::Rope,
            &[
                n_head as u32,
                n_kv_head as u32,
                head_dim as u32,
                half as u32,
                (style == RopeStyle::Halves) as u32,
                table as u32,
                table_len as u32,
                norms.is_some() as u32,
                f(eps),
                bias.is_some() as u32,
                0,
                0,
            ],
            &[
                (0, qkv),
                (1, tables),
                (4, dst[0]),
                (5, qn),
                (6, kn),
                (7, dst[1]),
                (8, dst[2]),
                (9, bias.unwrap_or(tables)),
            ],
            Size::Heads {
                heads: n_head + 2 * n_kv_head,
            },
        )
    }

    /// Attention of the queries in `q` over the cache into `out`, as a partial pass over chunks
    /// of keys into `part` ([`attention_part_len`] floats) and a combining pass; `chunk` forces
    /// the chunk length (timing probes), else it follows the keys (`attention_chunk`).
    #[allow(clippy::too_many_arguments)]
    pub fn attention(
        &self,
        q: &wgpu::Buffer,
        k: &wgpu::Buffer,
        v: &wgpu::Buffer,
        out: &wgpu::Buffer,
        part: &wgpu::Buffer,
        n_head: usize,
        n_kv_head: usize,
        head_dim: usize,
        window: Option<usize>,
        scale: f32,
        chunk: Option<usize>,
    ) -> [Dispatch; 2] {
        let params = [
            n_head as u32,
            n_kv_head as u32,
            head_dim as u32,
            window.unwrap_or(0) as u32,
            f(scale),
            MAX_CHUNKS as u32,
            chunk.unwrap_or(0) as u32,
            0,
        ];
        [
            self.dispatch(
                Op::Attention,
                &params,
                &[(0, q), (1, k), (2, v), (6, part)],
                Size::Attention {
                    heads: n_head,
                    window,
                    chunk,
                },
            ),
            self.dispatch(
                Op::AttentionCombine,
                &params,
                &[(3, out), (6, part)],
                Size::Heads { heads: n_head },
            ),
        ]
    }

    /// [`Builder::gated`], and for a matmul that wants its input quantized (`mode`), `out`
    /// quantized into xq/xm in the same dispatch.
    pub fn gated_prepare(
        &self,
        gu: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        act: Activation,
        mode: Option<u32>,
    ) -> Dispatch {
        match mode {
            None => self.gated(gu, out, len, act),
            Some(mode) => self.dispatch(
                Op::GatedQuantize,
                &[
                    (len / 32) as u32,
                    mode,
                    0,
                    len as u32,
                    0,
                    (act == Activation::GeluTanh) as u32,
                    0,
                    0,
                ],
                &[(0, out), (1, self.xq), (2, self.xm), (5, gu)],
                Size::Rows { per_token: 1 },
            ),
        }
    }

    /// `out = act(gate) * up` for rows of `len`, from each token's gate and up side by side in
    /// `gu`.
    pub fn gated(
        &self,
        gu: &wgpu::Buffer,
        out: &wgpu::Buffer,
        len: usize,
        act: Activation,
    ) -> Dispatch {
        self.dispatch(
            Op::Gated,
            &[len as u32, (act == Activation::GeluTanh) as u32, 0, 0],
            &[(0, gu), (1, out)],
            Size::Threads { per_token: len },
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
                None => (vals, pairs[1].1, in_offset, 0),
                Some(s) => (pairs[s].0, pairs[s].1, 0, 1),
            };
            out.push(self.dispatch(
                Op::TopK,
                &[count as u32, offset as u32, has_ids, 0],
                &[
                    (0, in_vals),
                    (1, in_ids),
                    (2, pairs[dst].0),
                    (3, pairs[dst].1),
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

/// Buffers that hold the activations of one forward pass.
struct Activations {
    ids: wgpu::Buffer,
    step: wgpu::Buffer,
    rope: wgpu::Buffer,
    x: wgpu::Buffer,
    h: wgpu::Buffer,
    proj: wgpu::Buffer,
    /// Each token's q, k and v side by side, as the attention input matmuls write them.
    qkv: wgpu::Buffer,
    q: wgpu::Buffer,
    att: wgpu::Buffer,
    /// Attention's per-chunk records.
    part: wgpu::Buffer,
    /// Each token's gate and up projections side by side.
    gu: wgpu::Buffer,
    /// act(gate) * up.
    act: wgpu::Buffer,
    xq: wgpu::Buffer,
    xm: wgpu::Buffer,
    logits: wgpu::Buffer,
    cand: [(wgpu::Buffer, wgpu::Buffer); 2],
    staging: wgpu::Buffer,
}

pub struct GpuModel {
    gpu: std::sync::Arc<Gpu>,
    bufs: Activations,
    /// Embedding through the last layer, and the final norm into `h`.
    body: Vec<Dispatch>,
    /// Output projection of the last token, then top-k.
    head_top: Vec<Dispatch>,
    top_pair: usize,
    /// Output projection of the last token only.
    head_last: Vec<Dispatch>,
    /// Output projection of every token.
    head_all: Vec<Dispatch>,
    ropes: Vec<RopePlan>,
    /// Floats per RoPE table (cos or sin): MAX_TOKENS * half of the widest.
    rope_len: usize,
    vocab: usize,
    context: usize,
    /// Positions whose keys and values the GPU cache holds.
    len: usize,
    /// Times each dispatch when on (`wick bench --profile`).
    profiler: Option<Profiler>,
    /// Kept alive for the bind groups that use them.
    _weights: Vec<GpuMatrix>,
    _cache: Vec<wgpu::Buffer>,
    _norms: Vec<wgpu::Buffer>,
}

impl GpuModel {
    /// Uploads the model `plan` describes, with a KV cache of `context` positions.
    pub fn new(gpu: std::sync::Arc<Gpu>, plan: &Plan<'_>, context: usize) -> Result<Self> {
        let context = context.clamp(1, plan.max_context);
        let (d, hd) = (plan.n_embd, plan.head_dim);
        let (q_dim, kv_dim) = (plan.n_head * hd, plan.n_kv_head * hd);
        let qkv_w = q_dim + 2 * kv_dim;
        if hd > 256 || hd % 4 != 0 || plan.n_head % plan.n_kv_head != 0 {
            return Err(Error::Gpu(format!(
                "attention heads of {hd} (a multiple of 4, at most 256 on the GPU)"
            )));
        }
        for dims in [d, q_dim, plan.n_ff] {
            if dims % 32 != 0 {
                return Err(Error::Gpu(format!(
                    "a width of {dims} is not a multiple of 32"
                )));
            }
        }
        let vocab = plan.output.rows;
        let t = MAX_TOKENS as u64;
        let widest = d.max(q_dim).max(plan.n_ff) as u64;
        let rope_half = plan.ropes.iter().map(|r| r.dims / 2).max().unwrap_or(0);
        let rope_len = MAX_TOKENS * rope_half.max(1);
        let cand_len = (vocab.div_ceil(TOPK_GROUP) * TOP_K) as u64;
        let staging_bytes = (MAX_LOGIT_ROWS * vocab * 4) as u64;
        let bufs = Activations {
            ids: gpu.storage("ids", t * 4),
            step: gpu.uniform("step", &[0, 0, 0, 0]),
            rope: gpu.storage("rope", (plan.ropes.len() * 2 * rope_len * 4) as u64),
            x: gpu.storage("x", t * d as u64 * 4),
            h: gpu.storage("h", t * d as u64 * 4),
            proj: gpu.storage("proj", t * d as u64 * 4),
            qkv: gpu.storage("qkv", t * qkv_w as u64 * 4),
            q: gpu.storage("q", t * q_dim as u64 * 4),
            att: gpu.storage("att", t * q_dim as u64 * 4),
            part: gpu.storage(
                "attention chunks",
                attention_part_len(MAX_TOKENS, plan.n_head, hd) as u64 * 4,
            ),
            gu: gpu.storage("gate, up", t * 2 * plan.n_ff as u64 * 4),
            act: gpu.storage("act", t * plan.n_ff as u64 * 4),
            xq: gpu.storage("xq", t * widest / 32 * 8 * 4),
            xm: gpu.storage("xm", t * widest / 32 * 16),
            logits: gpu.storage("logits", (MAX_LOGIT_ROWS * vocab * 4) as u64),
            cand: [
                (
                    gpu.storage("cand", cand_len * 4),
                    gpu.storage("cand ids", cand_len * 4),
                ),
                (
                    gpu.storage("cand", cand_len * 4),
                    gpu.storage("cand ids", cand_len * 4),
                ),
            ],
            staging: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: staging_bytes.max((TOP_K * 8) as u64),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        };
        let b = Builder {
            gpu: &gpu,
            step: &bufs.step,
            xq: &bufs.xq,
            xm: &bufs.xm,
        };
        let mut weights = Vec::new();
        let mut norms = Vec::new();
        let mut cache = Vec::new();
        let mut body = Vec::new();
        let upload =
            |name: &str, m: &crate::model::weights::Matrix| GpuMatrix::upload(&gpu, name, m);
        let norm = |v: &[f32]| gpu.storage_init("norm", &f32_bytes(v));
        let embed = upload("token_embd", plan.embed)?;
        body.extend(b.embed(&embed, &bufs.ids, &bufs.x, plan.embed_scale));
        weights.push(embed);
        let style = plan.rope_style;
        for (i, l) in plan.layers.iter().enumerate() {
            let name = |s: &str| format!("blk.{i}.{s}");
            // Q, K and V in one matmul where their weights stack (same type and width).
            let qkv = GpuMatrix::upload_stacked(&gpu, &name("attn_qkv"), &[l.wq, l.wk, l.wv])?;
            let (attn_in, wo) = (
                match qkv {
                    Some(m) => vec![(m, 0)],
                    None => vec![
                        (upload(&name("attn_q"), l.wq)?, 0),
                        (upload(&name("attn_k"), l.wk)?, q_dim),
                        (upload(&name("attn_v"), l.wv)?, q_dim + kv_dim),
                    ],
                },
                upload(&name("attn_output"), l.wo)?,
            );
            // Gate and up in one matmul where their weights stack.
            let ffn_in =
                match GpuMatrix::upload_stacked(&gpu, &name("ffn_gate_up"), &[l.gate, l.up])? {
                    Some(m) => vec![(m, 0)],
                    None => vec![
                        (upload(&name("ffn_gate"), l.gate)?, 0),
                        (upload(&name("ffn_up"), l.up)?, plan.n_ff),
                    ],
                };
            let down = upload(&name("ffn_down"), l.down)?;
            let cache_bytes = (context * kv_dim * gpu.kv_size()) as u64;
            let k_cache = gpu.storage(&name("k cache"), cache_bytes);
            let v_cache = gpu.storage(&name("v cache"), cache_bytes);
            let attn_norm = norm(l.attn_norm);
            let ffn_norm = norm(l.ffn_norm);

            // Attention: h = norm(x); q, k, v side by side in qkv; then rope (with the biases
            // and the heads' norms) moves q to its buffer and k, v into the cache.
            body.extend(b.norm_matmuls(
                &bufs.x, &bufs.h, &attn_norm, d, plan.eps, &attn_in, &bufs.qkv, qkv_w,
            ));
            let head_norms = match (l.q_norm, l.k_norm) {
                (Some(qn), Some(kn)) => Some((norm(qn), norm(kn))),
                _ => None,
            };
            let qkv_bias = l
                .qkv_bias
                .map(|b| gpu.storage_init("qkv bias", &f32_bytes(b)));
            let rope = &plan.ropes[l.rope];
            body.push(b.rope(
                &bufs.qkv,
                [&bufs.q, &k_cache, &v_cache],
                &bufs.rope,
                head_norms.as_ref().map(|(qn, kn)| (qn, kn, plan.eps)),
                qkv_bias.as_ref(),
                plan.n_head,
                plan.n_kv_head,
                hd,
                rope.dims / 2,
                style,
                l.rope * 2 * rope_len,
                rope_len,
            ));
            norms.extend(head_norms.into_iter().flat_map(|(qn, kn)| [qn, kn]));
            norms.extend(qkv_bias);
            body.extend(b.attention(
                &bufs.q,
                &k_cache,
                &v_cache,
                &bufs.att,
                &bufs.part,
                plan.n_head,
                plan.n_kv_head,
                hd,
                l.window,
                plan.attn_scale,
                None,
            ));
            body.extend(b.prepare(&wo, &bufs.att, q_dim));
            match l.post_attn_norm {
                None => body.extend(b.matmul(&wo, &bufs.att, &bufs.x, 0, d, 0, true, false)),
                Some(pn) => {
                    let pn = norm(pn);
                    body.extend(b.matmul(&wo, &bufs.att, &bufs.proj, 0, d, 0, false, false));
                    body.push(b.norm_into(&bufs.proj, &bufs.x, &pn, d, 1, plan.eps, true));
                    norms.push(pn);
                }
            }

            // MLP: h = norm(x); gate and up side by side in gu; x += down(act(gate) * up).
            let gu_w = 2 * plan.n_ff;
            body.extend(b.norm_matmuls(
                &bufs.x, &bufs.h, &ffn_norm, d, plan.eps, &ffn_in, &bufs.gu, gu_w,
            ));
            body.push(b.gated_prepare(
                &bufs.gu,
                &bufs.act,
                plan.n_ff,
                plan.activation,
                down.quantize_mode(),
            ));
            match l.post_ffn_norm {
                None => body.extend(b.matmul(&down, &bufs.act, &bufs.x, 0, d, 0, true, false)),
                Some(pn) => {
                    let pn = norm(pn);
                    body.extend(b.matmul(&down, &bufs.act, &bufs.proj, 0, d, 0, false, false));
                    body.push(b.norm_into(&bufs.proj, &bufs.x, &pn, d, 1, plan.eps, true));
                    norms.push(pn);
                }
            }
            weights.extend(attn_in.into_iter().chain(ffn_in).map(|(m, _)| m));
            weights.extend([wo, down]);
            norms.extend([attn_norm, ffn_norm]);
            cache.extend([k_cache, v_cache]);
        }
        // The output matrix is usually the embedding matrix (tied): upload it once.
        let output_index = if std::ptr::eq(plan.output, plan.embed)
            || plan.output.tensor.data.as_ptr() == plan.embed.tensor.data.as_ptr()
        {
            0
        } else {
            weights.push(upload("output", plan.output)?);
            weights.len() - 1
        };
        let output = &weights[output_index];
        let output_norm = norm(plan.output_norm);
        body.push(b.norm_prepare(
            &bufs.x,
            &bufs.h,
            &output_norm,
            d,
            plan.eps,
            output.quantize_mode(),
        ));
        norms.push(output_norm);
        let h = &bufs.h;
        let head_last = b.matmul(output, h, &bufs.logits, 0, vocab, 0, false, true);
        let head_all = b.matmul(output, h, &bufs.logits, 0, vocab, 0, false, false);
        let mut head_top = b.matmul(output, h, &bufs.logits, 0, vocab, 0, false, true);
        let (topk, top_pair) = b.topk(
            &bufs.logits,
            0,
            vocab,
            [
                (&bufs.cand[0].0, &bufs.cand[0].1),
                (&bufs.cand[1].0, &bufs.cand[1].1),
            ],
        );
        head_top.extend(topk);
        Ok(Self {
            gpu,
            bufs,
            body,
            head_top,
            top_pair,
            head_last,
            head_all,
            ropes: plan.ropes.clone(),
            rope_len,
            vocab,
            context,
            len: 0,
            profiler: None,
            _weights: weights,
            _cache: cache,
            _norms: norms,
        })
    }

    pub fn vocab_size(&self) -> usize {
        self.vocab
    }

    pub fn context(&self) -> usize {
        self.context
    }

    /// Positions the cache holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the cache holds no position.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets positions from `len` on (the cache keeps every position, so any rewind works).
    pub fn rewind(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Starts timing every dispatch of later passes (an error where the device cannot), or
    /// stops and forgets the totals.
    pub fn set_profiling(&mut self, on: bool) -> Result<()> {
        self.profiler = if on {
            Some(Profiler::new(&self.gpu)?)
        } else {
            None
        };
        Ok(())
    }

    /// Per-pass GPU time by kind of dispatch since profiling started.
    pub fn profile_report(&self) -> Option<String> {
        self.profiler.as_ref().map(Profiler::report)
    }

    /// Runs `tokens` (1..=[`MAX_TOKENS`], at most [`MAX_LOGIT_ROWS`] for [`Want::All`]) after the
    /// cached positions and returns what `want` asks for: for [`Want::Sample`] the top
    /// [`TOP_K`] candidates, selected on the GPU.
    pub async fn forward(&mut self, tokens: &[u32], want: Want) -> Result<Logits> {
        let n = tokens.len();
        let limit = if want == Want::All {
            MAX_LOGIT_ROWS
        } else {
            MAX_TOKENS
        };
        if n == 0 || n > limit {
            return Err(Error::InvalidParameter(format!(
                "a GPU forward pass takes 1 to {limit} tokens, got {n}"
            )));
        }
        if self.len + n > self.context {
            return Err(Error::ContextOverflow {
                prompt: self.len + n,
                context: self.context,
            });
        }
        let start = self.len;
        let began = self.profiler.is_some().then(Instant::now);
        let gpu = self.gpu.clone();
        let q = &gpu.queue;
        q.write_buffer(&self.bufs.ids, 0, &words_bytes(tokens));
        q.write_buffer(
            &self.bufs.step,
            0,
            &words_bytes(&[n as u32, start as u32, 0, 0]),
        );
        let mut tables = vec![0f32; self.ropes.len() * 2 * self.rope_len];
        for (i, r) in self.ropes.iter().enumerate() {
            let t = RopeTable::new(start, n, r.dims, r.base, r.scale, r.factors.as_deref());
            let at = i * 2 * self.rope_len;
            tables[at..at + t.cos.len()].copy_from_slice(&t.cos);
            tables[at + self.rope_len..at + self.rope_len + t.sin.len()].copy_from_slice(&t.sin);
        }
        q.write_buffer(&self.bufs.rope, 0, &f32_bytes(&tables));

        // The pass goes to the GPU in growing segments, each submitted as soon as it is
        // recorded, so that the GPU runs the first layers while the host records the rest
        // (recording costs a few microseconds per dispatch; a pass has hundreds).
        let head = match want {
            Want::Sample => &self.head_top,
            Want::Last => &self.head_last,
            Want::All => &self.head_all,
        };
        let dispatches: Vec<&Dispatch> = self.body.iter().chain(head).collect();
        let mut rest = &dispatches[..];
        let mut segment = FIRST_SEGMENT;
        let mut enc = loop {
            let (now, later) = rest.split_at(segment.min(rest.len()));
            rest = later;
            let mut enc = gpu
                .device
                .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
            {
                let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
                if let Some(p) = self.profiler.as_mut() {
                    p.begin(&mut pass);
                }
                for d in now {
                    d.record(&mut pass, n, start);
                    if let Some(p) = self.profiler.as_mut() {
                        p.after(&mut pass, &d.label);
                    }
                }
            }
            if rest.is_empty() {
                break enc;
            }
            q.submit([enc.finish()]);
            segment *= 2;
        };
        if let Some(p) = &self.profiler {
            p.resolve(&mut enc);
        }
        let bytes = match want {
            Want::Sample => {
                let (vals, ids) = &self.bufs.cand[self.top_pair];
                let half = (TOP_K * 4) as u64;
                enc.copy_buffer_to_buffer(vals, 0, &self.bufs.staging, 0, half);
                enc.copy_buffer_to_buffer(ids, 0, &self.bufs.staging, half, half);
                2 * half
            }
            Want::Last => (self.vocab * 4) as u64,
            Want::All => (n * self.vocab * 4) as u64,
        };
        if want != Want::Sample {
            enc.copy_buffer_to_buffer(&self.bufs.logits, 0, &self.bufs.staging, 0, bytes);
        }
        q.submit([enc.finish()]);
        let submitted = began.map(|_| Instant::now());
        // The cache holds these positions whether or not the caller reads the result.
        self.len = start + n;
        let data = read_back(&gpu, &self.bufs.staging, bytes).await?;
        if let (Some(p), Some(began), Some(submitted)) = (self.profiler.as_mut(), began, submitted)
        {
            p.collect(&gpu, submitted - began, submitted.elapsed())
                .await?;
        }
        Ok(match want {
            Want::Sample => {
                let vals = f32s(&data[..TOP_K * 4]);
                let ids = data[TOP_K * 4..]
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
                Logits::Top(ids.zip(vals).filter(|(id, _)| *id != u32::MAX).collect())
            }
            _ => Logits::Full(f32s(&data)),
        })
    }
}

pub(crate) fn f32_bytes(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
