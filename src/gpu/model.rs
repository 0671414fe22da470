//! The forward pass on the GPU, for any model a [`Plan`] describes.
//!
//! Everything is prepared at load: weights, activation buffers for [`MAX_TOKENS`] tokens, the KV
//! cache (`context` positions per layer, in f16 where the device has `shader-f16` and f32
//! otherwise: [`Gpu::kv_size`]), and every dispatch with its bind group and constant parameters.
//! [`GpuModel::new`] builds them as the network reads: the embedding, then per layer an
//! attention block and an MLP block (`Layers`), then the head (final norm, output projection,
//! top-k).
//!
//! A forward pass writes three small things (token ids, the step uniform, RoPE tables), records
//! the prepared dispatches into command buffers of growing size (the first `FIRST_SEGMENT`
//! dispatches, then twice as many each time), each submitted as soon as it is recorded so that
//! the GPU starts on the first layers while the host records the rest; the last one also copies
//! the result out. It reads back either the top [`TOP_K`] candidates of the last token (decode:
//! 512 bytes instead of the vocabulary) or whole logits rows.

pub use super::dispatch::TOP_K;
use super::dispatch::{
    attention_part_len, AttentionBuffers, Builder, Dispatch, HeadNormSpec, MlpAct, Norm, Out,
    RopeBuffers, RopeSpec, TOPK_GROUP,
};
use super::profile::Profiler;
use super::shader::{Accumulate, Step, Tokens};
use super::weights::GpuMatrix;
use super::{f32s, read_back, words_bytes, Gpu};
use crate::error::{Error, Result};
use crate::forward::{Logits, Want};
use crate::model::ops::{AttentionShape, RopeTable};
use crate::model::plan::{self, LayerPlan, Plan, RopePlan};
use std::sync::Arc;
// Read only while profiling, which the browser never does (its clock is not std's).
use std::time::Instant;

/// Most tokens one forward pass takes (longer inputs are split by the caller).
pub const MAX_TOKENS: usize = 64;
/// Most tokens whose whole logits rows one forward pass returns.
pub const MAX_LOGIT_ROWS: usize = 32;
/// Dispatches in the first command buffer of a pass (each later one holds twice as many).
const FIRST_SEGMENT: usize = 32;

/// The widths a plan implies, checked against what the kernels take.
#[derive(Clone, Copy)]
struct Widths {
    /// The residual stream (n_embd).
    d: usize,
    head_dim: usize,
    /// All query heads, all key (or value) heads.
    q_dim: usize,
    kv_dim: usize,
    /// Each token's q, k and v side by side.
    qkv: usize,
    n_ff: usize,
    vocab: usize,
    /// Floats per RoPE table (cos or sin): MAX_TOKENS * half of the widest.
    rope_len: usize,
}

impl Widths {
    fn of(plan: &Plan) -> Result<Self> {
        let (d, hd) = (plan.n_embd, plan.head_dim);
        let (q_dim, kv_dim) = (plan.n_head * hd, plan.n_kv_head * hd);
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
        let rope_half = plan.ropes.iter().map(|r| r.dims / 2).max().unwrap_or(0);
        Ok(Self {
            d,
            head_dim: hd,
            q_dim,
            kv_dim,
            qkv: q_dim + 2 * kv_dim,
            n_ff: plan.n_ff,
            vocab: plan.output.rows,
            rope_len: MAX_TOKENS * rope_half.max(1),
        })
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
    /// Each token's gate and up projections side by side (up alone without a gate).
    gu: wgpu::Buffer,
    /// A parallel layer's MLP output, added after attention's.
    par: wgpu::Buffer,
    /// act(gate) * up.
    act: wgpu::Buffer,
    xq: wgpu::Buffer,
    xm: wgpu::Buffer,
    logits: wgpu::Buffer,
    cand: [(wgpu::Buffer, wgpu::Buffer); 2],
    staging: wgpu::Buffer,
}

impl Activations {
    /// Room for [`MAX_TOKENS`] tokens ([`MAX_LOGIT_ROWS`] logits rows) of `plan`'s model.
    fn new(gpu: &Gpu, plan: &Plan, w: Widths) -> Self {
        let t = MAX_TOKENS as u64;
        let (d, vocab) = (w.d as u64, w.vocab);
        let widest = w.d.max(w.q_dim).max(w.n_ff) as u64;
        let cand_len = (vocab.div_ceil(TOPK_GROUP) * TOP_K) as u64;
        let staging_bytes = (MAX_LOGIT_ROWS * vocab * 4) as u64;
        let cand = || {
            (
                gpu.storage("cand", cand_len * 4),
                gpu.storage("cand ids", cand_len * 4),
            )
        };
        Self {
            ids: gpu.storage("ids", t * 4),
            step: gpu.uniform("step", &Step::default().words()),
            rope: gpu.storage("rope", (plan.ropes.len() * 2 * w.rope_len * 4) as u64),
            x: gpu.storage("x", t * d * 4),
            h: gpu.storage("h", t * d * 4),
            proj: gpu.storage("proj", t * d * 4),
            qkv: gpu.storage("qkv", t * w.qkv as u64 * 4),
            q: gpu.storage("q", t * w.q_dim as u64 * 4),
            att: gpu.storage("att", t * w.q_dim as u64 * 4),
            part: gpu.storage(
                "attention chunks",
                attention_part_len(MAX_TOKENS, plan.n_head, w.head_dim) as u64 * 4,
            ),
            gu: gpu.storage("gate, up", t * 2 * w.n_ff as u64 * 4),
            par: gpu.storage("par", t * d * 4),
            act: gpu.storage("act", t * w.n_ff as u64 * 4),
            xq: gpu.storage("xq", t * widest / 32 * 8 * 4),
            xm: gpu.storage("xm", t * widest / 32 * 16),
            logits: gpu.storage("logits", (MAX_LOGIT_ROWS * vocab * 4) as u64),
            cand: [cand(), cand()],
            staging: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("staging"),
                size: staging_bytes.max((TOP_K * 8) as u64),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
        }
    }
}

/// The output projection's dispatches, one list per [`Want`].
struct Head {
    /// Of the last token, then top-k; `top_pair` is the candidate pair holding the result.
    top: Vec<Dispatch>,
    top_pair: usize,
    /// Of the last token only.
    last: Vec<Dispatch>,
    /// Of every token.
    all: Vec<Dispatch>,
}

/// Builds the network's dispatches in order over the activation buffers, uploading each
/// block's weights as it goes and keeping them (and the KV cache) alive.
struct Layers<'a> {
    gpu: &'a Gpu,
    plan: &'a Plan,
    bufs: &'a Activations,
    b: Builder<'a>,
    w: Widths,
    /// Positions of the KV cache.
    context: usize,
    /// Embedding through the last layer, and the final norm into `h`.
    body: Vec<Dispatch>,
    kept: Kept,
}

/// What the dispatches' bind groups use, kept for the model's life.
#[derive(Default)]
struct Kept {
    /// The embedding first: a tied output projection is `weights[0]`.
    weights: Vec<GpuMatrix>,
    cache: Vec<wgpu::Buffer>,
    /// Norms' weights and biases.
    norms: Vec<wgpu::Buffer>,
}

impl<'a> Layers<'a> {
    fn new(gpu: &'a Gpu, plan: &'a Plan, bufs: &'a Activations, w: Widths, context: usize) -> Self {
        Self {
            gpu,
            plan,
            bufs,
            b: Builder {
                gpu,
                step: &bufs.step,
                xq: &bufs.xq,
                xm: &bufs.xm,
            },
            w,
            context,
            body: Vec::new(),
            kept: Kept::default(),
        }
    }

    fn upload(&self, name: &str, m: &crate::model::weights::Matrix) -> Result<GpuMatrix> {
        GpuMatrix::upload(self.gpu, name, m)
    }

    /// A norm's (or bias's) weights on the GPU, kept for the model's life.
    fn floats(&mut self, label: &str, v: &[f32]) -> wgpu::Buffer {
        let buffer = self.gpu.storage_init(label, &f32_bytes(v));
        self.kept.norms.push(buffer.clone());
        buffer
    }

    /// A norm's weights and bias on the GPU.
    fn norm_buffers(&mut self, n: &plan::Norm) -> NormBuffers {
        NormBuffers {
            weight: self.floats("norm", &n.weight),
            bias: n.bias.as_deref().map(|b| self.floats("norm bias", b)),
        }
    }

    /// The model's norm of the residual stream with `n`'s weights.
    fn norm<'n>(&self, n: &'n NormBuffers) -> Norm<'n> {
        Norm {
            kind: self.plan.norm_kind,
            weight: &n.weight,
            bias: n.bias.as_ref(),
            len: self.w.d,
            eps: self.plan.eps,
        }
    }

    /// `x = embed[ids] * embed_scale`, plus the learned position embeddings' rows where the
    /// model has them (GPT-2).
    fn embed(&mut self) -> Result<()> {
        let embed = self.upload("token_embd", &self.plan.embed)?;
        let (ids, x) = (&self.bufs.ids, &self.bufs.x);
        self.body
            .extend(self.b.embed(&embed, ids, x, self.plan.embed_scale));
        self.kept.weights.push(embed);
        if let Some(pe) = &self.plan.position_embed {
            let pe = self.upload("position_embd", pe)?;
            self.body.extend(self.b.position_embed(&pe, x));
            self.kept.weights.push(pe);
        }
        Ok(())
    }

    /// `x += W_o attention(rope(W_{qkv} norm(x)))`, the keys and values of the batch going into
    /// layer `i`'s cache: h = norm(x); q, k and v side by side in qkv (one matmul where their
    /// weights stack); RoPE (after the biases and the heads' norms, where the layer has them)
    /// moves q to its buffer and k, v into the cache; attention into att; the output projection
    /// added to x (post-normed first where the layer has that norm).
    fn attention(&mut self, i: usize, l: &LayerPlan) -> Result<()> {
        let (plan, w) = (self.plan, self.w);
        let name = |s: &str| format!("blk.{i}.{s}");
        let attn_in =
            match GpuMatrix::upload_stacked(self.gpu, &name("attn_qkv"), &[&l.wq, &l.wk, &l.wv])? {
                Some(m) => vec![(m, 0)],
                None => vec![
                    (self.upload(&name("attn_q"), &l.wq)?, 0),
                    (self.upload(&name("attn_k"), &l.wk)?, w.q_dim),
                    (self.upload(&name("attn_v"), &l.wv)?, w.q_dim + w.kv_dim),
                ],
            };
        let wo = self.upload(&name("attn_output"), &l.wo)?;
        let cache_bytes = (self.context * w.kv_dim * self.gpu.kv_size()) as u64;
        let k_cache = self.gpu.storage(&name("k cache"), cache_bytes);
        let v_cache = self.gpu.storage(&name("v cache"), cache_bytes);
        // `Plan::gpu_gaps` refused what this does not build: q/k norms (both or neither) over a
        // head or the whole vector. Their biases (zeros for one without, where the other has
        // one) follow the weights in the same buffer: rope.wgsl has no binding to spare.
        let attn_norm = l.attn_norm.as_ref().map(|n| self.norm_buffers(n));
        let (head_norms, head_norm_spec) = match (&l.q_norm, &l.k_norm) {
            (Some(qn), Some(kn)) => {
                let bias = qn.norm.bias.is_some() || kn.norm.bias.is_some();
                let mut packed = |n: &plan::Norm| {
                    let mut v = n.weight.clone();
                    if bias {
                        let zeros = vec![0.0; n.weight.len()];
                        v.extend_from_slice(n.bias.as_deref().unwrap_or(&zeros));
                    }
                    self.floats("norm", &v)
                };
                let buffers = (packed(&qn.norm), packed(&kn.norm));
                let spec = HeadNormSpec {
                    kind: plan.norm_kind,
                    whole: qn.group != w.head_dim,
                    per_head: qn.norm.weight.len() != qn.group || qn.group != w.head_dim,
                    bias,
                };
                (Some(buffers), spec)
            }
            _ => (None, HeadNormSpec::default()),
        };
        let qkv_bias = l.qkv_bias.as_deref().map(|b| self.floats("qkv bias", b));
        let wo_bias = l.wo_bias.as_deref().map(|b| self.floats("bias", b));
        let post_norm = l.post_attn_norm.as_ref().map(|n| self.norm_buffers(n));

        let norm = attn_norm.as_ref().map(|n| self.norm(n));
        let (b, bufs) = (&self.b, self.bufs);
        self.body
            .extend(b.norm_matmuls(&bufs.x, &bufs.h, norm, &attn_in, &bufs.qkv, w.qkv));
        // A layer without RoPE rotates nothing (half 0): the dispatch still adds the biases,
        // clamps, norms and moves q, k and v.
        let (rope_index, half) = match l.rope {
            Some(r) => (r, plan.ropes[r].dims / 2),
            None => (0, 0),
        };
        self.body.push(b.rope(
            RopeBuffers {
                qkv: &bufs.qkv,
                q: &bufs.q,
                k_cache: &k_cache,
                v_cache: &v_cache,
                tables: &bufs.rope,
                head_norms: head_norms.as_ref().map(|(qn, kn)| (qn, kn, plan.eps)),
                bias: qkv_bias.as_ref(),
            },
            RopeSpec {
                n_head: plan.n_head,
                n_kv_head: plan.n_kv_head,
                head_dim: w.head_dim,
                half,
                style: plan.rope_style,
                table: rope_index * 2 * w.rope_len,
                table_len: w.rope_len,
                norm: head_norm_spec,
                clamp: plan.clamp_kqv,
            },
        ));
        self.body.extend(b.attention(
            AttentionBuffers {
                q: &bufs.q,
                k_cache: &k_cache,
                v_cache: &v_cache,
                out: &bufs.att,
                part: &bufs.part,
            },
            AttentionShape {
                n_head: plan.n_head,
                n_kv_head: plan.n_kv_head,
                head_dim: w.head_dim,
                scale: plan.attn_scale,
                window: l.window,
                softcap: plan.attn_softcap,
                alibi_max_bias: plan.alibi_max_bias,
            },
            None,
        ));
        self.body.extend(b.prepare(&wo, &bufs.att, w.q_dim));
        self.residual_add(
            &wo,
            &bufs.att,
            Post {
                bias: wo_bias.as_ref(),
                norm: post_norm.as_ref(),
            },
            (&bufs.x, Accumulate::Add),
        );
        self.kept
            .weights
            .extend(attn_in.into_iter().map(|(m, _)| m));
        self.kept.weights.push(wo);
        self.kept.cache.extend([k_cache, v_cache]);
        Ok(())
    }

    /// `x += W_down (act(W_gate h) * W_up h)` with h = norm(x) (or `act(W_up h)` without a
    /// gate): gate and up side by side in gu (one matmul where their weights stack), the
    /// activation into act (quantized for the down matmul in the same dispatch, with up's bias
    /// added first where it has one), the down projection added to x (its bias added, post-normed
    /// and scaled first where the layer has those). A parallel layer's MLP reads its own norm of
    /// x or else attention's, and writes its output to par, which `parallel_add` adds to x after
    /// attention.
    fn mlp(&mut self, i: usize, l: &LayerPlan) -> Result<()> {
        let (plan, w) = (self.plan, self.w);
        let name = |s: &str| format!("blk.{i}.{s}");
        let (ffn_in, gu_w) = match &l.gate {
            Some(gate) => {
                let mats = match GpuMatrix::upload_stacked(
                    self.gpu,
                    &name("ffn_gate_up"),
                    &[gate, &l.up],
                )? {
                    Some(m) => vec![(m, 0)],
                    None => vec![
                        (self.upload(&name("ffn_gate"), gate)?, 0),
                        (self.upload(&name("ffn_up"), &l.up)?, w.n_ff),
                    ],
                };
                (mats, 2 * w.n_ff)
            }
            None => (vec![(self.upload(&name("ffn_up"), &l.up)?, 0)], w.n_ff),
        };
        let down = self.upload(&name("ffn_down"), &l.down)?;
        let norm = match (&l.ffn_norm, l.parallel) {
            (None, true) => l.attn_norm.as_ref(),
            (n, _) => n.as_ref(),
        };
        let ffn_norm = norm.map(|n| self.norm_buffers(n));
        let up_bias = l.up_bias.as_deref().map(|b| self.floats("bias", b));
        let down_bias = l.down_bias.as_deref().map(|b| self.floats("bias", b));
        let post_norm = l.post_ffn_norm.as_ref().map(|n| self.norm_buffers(n));

        let norm = ffn_norm.as_ref().map(|n| self.norm(n));
        let (b, bufs) = (&self.b, self.bufs);
        self.body
            .extend(b.norm_matmuls(&bufs.x, &bufs.h, norm, &ffn_in, &bufs.gu, gu_w));
        let act = MlpAct {
            act: plan.activation,
            gated: l.gate.is_some(),
            bias: up_bias.as_ref(),
        };
        self.body
            .push(b.gated_prepare(&bufs.gu, &bufs.act, w.n_ff, act, down.quantize_format()));
        let to = if l.parallel {
            (&bufs.par, Accumulate::Overwrite)
        } else {
            (&bufs.x, Accumulate::Add)
        };
        self.residual_add(
            &down,
            &bufs.act,
            Post {
                bias: down_bias.as_ref(),
                norm: post_norm.as_ref(),
            },
            to,
        );
        self.kept.weights.extend(ffn_in.into_iter().map(|(m, _)| m));
        self.kept.weights.push(down);
        Ok(())
    }

    /// `x += par`: a parallel layer's MLP output, after attention's.
    fn parallel_add(&mut self) {
        let bufs = self.bufs;
        self.body.push(self.b.affine(
            &bufs.x,
            Some(&bufs.par),
            None,
            self.w.d,
            Accumulate::Add,
            Tokens::All,
            1.0,
            None,
        ));
    }

    /// `dst (+)= residual_scale * post_norm(m a + bias)` (`a` already prepared): the matmul
    /// straight into dst where there is no bias, post-norm or scale, else through proj.
    fn residual_add(
        &mut self,
        m: &GpuMatrix,
        a: &wgpu::Buffer,
        post: Post<'_>,
        (dst, accumulate): (&wgpu::Buffer, Accumulate),
    ) {
        let (d, bufs, b) = (self.w.d, self.bufs, &self.b);
        let scale = self.plan.residual_scale;
        if post.bias.is_none() && post.norm.is_none() && scale == 1.0 {
            let out = Out::rows(dst, d, accumulate);
            self.body.extend(b.matmul(m, a, out, Tokens::All));
            return;
        }
        let out = Out::rows(&bufs.proj, d, Accumulate::Overwrite);
        self.body.extend(b.matmul(m, a, out, Tokens::All));
        let all = Tokens::All;
        match post.norm {
            None => self.body.push(b.affine(
                dst,
                Some(&bufs.proj),
                post.bias,
                d,
                accumulate,
                all,
                scale,
                None,
            )),
            Some(n) => {
                if post.bias.is_some() {
                    let over = Accumulate::Overwrite;
                    let add_bias = b.affine(&bufs.proj, None, post.bias, d, over, all, 1.0, None);
                    self.body.push(add_bias);
                }
                let norm = self.norm(n);
                let b = &self.b;
                self.body
                    .push(b.norm_scaled_into(&bufs.proj, dst, norm, 1, accumulate, scale));
            }
        }
    }

    /// The final norm into h (the body's last dispatch), then the output projection into the
    /// logits three ways: of the last token then top-k (sampling), of the last token, of every
    /// token. The output matrix is usually the embedding matrix (tied): it is uploaded once.
    fn head(&mut self) -> Result<Head> {
        let plan = self.plan;
        let output_index = if plan.output_tied() {
            0
        } else {
            let output = self.upload("output", &plan.output)?;
            self.kept.weights.push(output);
            self.kept.weights.len() - 1
        };
        let output_norm = self.norm_buffers(&plan.output_norm);
        let output_bias = plan
            .output_bias
            .as_deref()
            .map(|b| self.floats("output bias", b));
        let norm = self.norm(&output_norm);
        let (b, bufs) = (&self.b, self.bufs);
        let output = &self.kept.weights[output_index];
        self.body
            .push(b.norm_prepare(&bufs.x, &bufs.h, norm, output.quantize_format()));
        let (h, logits) = (
            &bufs.h,
            Out::rows(&bufs.logits, self.w.vocab, Accumulate::Overwrite),
        );
        // The output bias, logit scale and soft-cap on the logits in place, where the model has
        // any of them (before top-k, which must rank what sampling would).
        let vocab = self.w.vocab;
        let finish = |tokens| {
            let plain = output_bias.is_none() && plan.logit_scale == 1.0;
            (!plain || plan.final_softcap.is_some()).then(|| {
                b.affine(
                    &bufs.logits,
                    None,
                    output_bias.as_ref(),
                    vocab,
                    Accumulate::Overwrite,
                    tokens,
                    plan.logit_scale,
                    plan.final_softcap,
                )
            })
        };
        let projection = |tokens| {
            let mut list = b.matmul(output, h, logits, tokens);
            list.extend(finish(tokens));
            list
        };
        let last = projection(Tokens::Last);
        let all = projection(Tokens::All);
        let mut top = projection(Tokens::Last);
        let (topk, top_pair) = b.topk(
            &bufs.logits,
            0,
            self.w.vocab,
            [
                (&bufs.cand[0].0, &bufs.cand[0].1),
                (&bufs.cand[1].0, &bufs.cand[1].1),
            ],
        );
        top.extend(topk);
        Ok(Head {
            top,
            top_pair,
            last,
            all,
        })
    }
}

/// A norm's weights and bias on the GPU.
struct NormBuffers {
    weight: wgpu::Buffer,
    bias: Option<wgpu::Buffer>,
}

/// What follows a block's output projection before the residual add: its bias, its post-norm.
struct Post<'a> {
    bias: Option<&'a wgpu::Buffer>,
    norm: Option<&'a NormBuffers>,
}

pub struct GpuModel {
    gpu: Arc<Gpu>,
    bufs: Activations,
    /// Embedding through the last layer, and the final norm into `h`.
    body: Vec<Dispatch>,
    head: Head,
    ropes: Vec<RopePlan>,
    /// Floats per RoPE table (cos or sin): MAX_TOKENS * half of the widest.
    rope_len: usize,
    vocab: usize,
    context: usize,
    /// Positions whose keys and values the GPU cache holds.
    len: usize,
    /// Times each dispatch when on (`wick bench --profile`).
    profiler: Option<Profiler>,
    _kept: Kept,
}

impl GpuModel {
    /// Uploads the model `plan` describes, with a KV cache of `context` positions: embed, then
    /// per layer attention and MLP blocks (the MLP first into par in a parallel layer), then the
    /// head. A plan with [`Plan::gpu_gaps`] is refused by name.
    pub fn new(gpu: Arc<Gpu>, plan: &Plan, context: usize) -> Result<Self> {
        let context = context.clamp(1, plan.max_context);
        let gaps = plan.gpu_gaps();
        if !gaps.is_empty() {
            return Err(Error::Gpu(format!(
                "the WebGPU backend does not run {} yet (the CPU backend runs this model)",
                gaps.join(", ")
            )));
        }
        let w = Widths::of(plan)?;
        let bufs = Activations::new(&gpu, plan, w);
        let mut net = Layers::new(&gpu, plan, &bufs, w, context);
        net.embed()?;
        for (i, layer) in plan.layers.iter().enumerate() {
            if layer.parallel {
                // Both blocks read the layer's input: the MLP's output waits in par.
                net.mlp(i, layer)?;
                net.attention(i, layer)?;
                net.parallel_add();
            } else {
                net.attention(i, layer)?;
                net.mlp(i, layer)?;
            }
        }
        let head = net.head()?;
        let Layers { body, kept, .. } = net;
        Ok(Self {
            gpu,
            bufs,
            body,
            head,
            ropes: plan.ropes.clone(),
            rope_len: w.rope_len,
            vocab: w.vocab,
            context,
            len: 0,
            profiler: None,
            _kept: kept,
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
        let step = Step {
            n: n as u32,
            start: start as u32,
        };
        q.write_buffer(&self.bufs.step, 0, &words_bytes(&step.words()));
        let mut tables = vec![0f32; self.ropes.len() * 2 * self.rope_len];
        for (i, r) in self.ropes.iter().enumerate() {
            let t = RopeTable::new(start, n, r, self.context);
            let at = i * 2 * self.rope_len;
            tables[at..at + t.cos.len()].copy_from_slice(&t.cos);
            tables[at + self.rope_len..at + self.rope_len + t.sin.len()].copy_from_slice(&t.sin);
        }
        q.write_buffer(&self.bufs.rope, 0, &f32_bytes(&tables));

        // The pass goes to the GPU in growing segments, each submitted as soon as it is
        // recorded, so that the GPU runs the first layers while the host records the rest
        // (recording costs a few microseconds per dispatch; a pass has hundreds).
        let head = match want {
            Want::Sample => &self.head.top,
            Want::Last => &self.head.last,
            Want::All => &self.head.all,
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
                let (vals, ids) = &self.bufs.cand[self.head.top_pair];
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
