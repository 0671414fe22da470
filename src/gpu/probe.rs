//! Single kernels run on host data, so that tests can hold each one against the CPU code it must
//! agree with (`tests/gpu.rs`). The forward pass uses the same [`Builder`] with its own buffers.

use super::dispatch::{
    attention_part_len, AttentionBuffers, Builder, Dispatch, HeadNormSpec, MlpAct, Norm, Out,
    RopeBuffers, RopeSpec,
};
use super::model::f32_bytes;
use super::shader::{Accumulate, QuantFormat, Step, Tokens};
use super::weights::GpuMatrix;
use super::{f32s, read_back, words_bytes, Gpu};
use crate::error::Result;
use crate::gguf::QType;
use crate::model::ops::{AttentionShape, RopeStyle};
use crate::model::plan::{Activation, NormKind};

struct Scratch {
    step: wgpu::Buffer,
    xq: wgpu::Buffer,
    xm: wgpu::Buffer,
}

fn scratch(gpu: &Gpu, n: usize, cols: usize) -> Scratch {
    Scratch {
        step: step(gpu, n, 0),
        xq: gpu.storage("xq", (n * cols / 32 * 32) as u64),
        xm: gpu.storage("xm", (n * cols / 32 * 16) as u64),
    }
}

/// Scratch for kernels that quantize nothing: only the step uniform for `n` tokens after
/// `start` cached positions.
fn scratch_at(gpu: &Gpu, n: usize, start: usize) -> Scratch {
    Scratch {
        step: step(gpu, n, start),
        xq: gpu.storage("xq", 16),
        xm: gpu.storage("xm", 16),
    }
}

/// The step uniform for `n` tokens after `start` cached positions.
fn step(gpu: &Gpu, n: usize, start: usize) -> wgpu::Buffer {
    let step = Step {
        n: n as u32,
        start: start as u32,
    };
    gpu.uniform("step", &step.words())
}

fn builder<'a>(gpu: &'a Gpu, s: &'a Scratch) -> Builder<'a> {
    Builder {
        gpu,
        step: &s.step,
        xq: &s.xq,
        xm: &s.xm,
    }
}

/// Runs `dispatches` for `n` tokens and reads `out` back (`len` floats).
async fn run(
    gpu: &Gpu,
    dispatches: &[Dispatch],
    n: usize,
    out: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<u8>> {
    run_at(gpu, dispatches, n, 0, out, len).await
}

/// [`run`] for `n` tokens after `start` cached positions.
async fn run_at(
    gpu: &Gpu,
    dispatches: &[Dispatch],
    n: usize,
    start: usize,
    out: &wgpu::Buffer,
    len: usize,
) -> Result<Vec<u8>> {
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("probe staging"),
        size: (len * 4).max(16) as u64,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = gpu
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        for d in dispatches {
            d.record(&mut pass, n, start);
        }
    }
    enc.copy_buffer_to_buffer(out, 0, &staging, 0, (len * 4) as u64);
    gpu.queue.submit([enc.finish()]);
    read_back(gpu, &staging, (len * 4) as u64).await
}

/// `out[t * rows + r] = dot(row r, x[t])`: the activations quantized on the GPU, then the
/// matmul kernel of `qtype` over `rows x cols` weights in GGUF's layout.
pub async fn matmul(
    gpu: &Gpu,
    qtype: QType,
    w: &[u8],
    rows: usize,
    cols: usize,
    x: &[f32],
    n: usize,
) -> Result<Vec<f32>> {
    let m = GpuMatrix::from_bytes(gpu, "probe", qtype, w, rows, cols)?;
    let s = scratch(gpu, n, cols);
    let b = builder(gpu, &s);
    let xb = gpu.storage_init("x", &f32_bytes(x));
    let out = gpu.storage("out", (n * rows * 4) as u64);
    let mut d: Vec<Dispatch> = b.prepare(&m, &xb, cols).into_iter().collect();
    let to = Out::rows(&out, rows, Accumulate::Overwrite);
    d.extend(b.matmul(&m, &xb, to, Tokens::All));
    Ok(f32s(&run(gpu, &d, n, &out, n * rows).await?))
}

/// Rows `ids` of a `rows x cols` matrix, dequantized on the GPU and multiplied by `scale`.
pub async fn embed(
    gpu: &Gpu,
    qtype: QType,
    w: &[u8],
    rows: usize,
    cols: usize,
    ids: &[u32],
    scale: f32,
) -> Result<Vec<f32>> {
    let m = GpuMatrix::from_bytes(gpu, "probe", qtype, w, rows, cols)?;
    let s = scratch(gpu, ids.len(), cols);
    let b = builder(gpu, &s);
    let idb = gpu.storage_init("ids", &words_bytes(ids));
    let out = gpu.storage("out", (ids.len() * cols * 4) as u64);
    let d = b.embed(&m, &idb, &out, scale);
    Ok(f32s(
        &run(gpu, &d, ids.len(), &out, ids.len() * cols).await?,
    ))
}

/// A norm's weights as a probe takes them.
#[derive(Clone, Copy)]
pub struct NormWeights<'a> {
    pub kind: NormKind,
    pub g: &'a [f32],
    pub bias: Option<&'a [f32]>,
    pub eps: f32,
}

/// RMSNorm of `x`'s rows of `g.len()`: into a fresh buffer, or added to `residual` when given.
pub async fn rms_norm(
    gpu: &Gpu,
    x: &[f32],
    g: &[f32],
    eps: f32,
    residual: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let w = NormWeights {
        kind: NormKind::Rms,
        g,
        bias: None,
        eps,
    };
    norm(gpu, x, w, residual).await
}

/// The norm `w` of `x`'s rows of `w.g.len()`: into a fresh buffer, or added to `residual`.
pub async fn norm(
    gpu: &Gpu,
    x: &[f32],
    w: NormWeights<'_>,
    residual: Option<&[f32]>,
) -> Result<Vec<f32>> {
    let n = x.len() / w.g.len();
    let s = scratch(gpu, n, 32);
    let b = builder(gpu, &s);
    let (xb, gb) = (
        gpu.storage_init("x", &f32_bytes(x)),
        gpu.storage_init("g", &f32_bytes(w.g)),
    );
    let bias = w.bias.map(|v| gpu.storage_init("bias", &f32_bytes(v)));
    let out = gpu.storage_init("out", &f32_bytes(residual.unwrap_or(&vec![0.0; x.len()])));
    let norm = Norm {
        kind: w.kind,
        weight: &gb,
        bias: bias.as_ref(),
        len: w.g.len(),
        eps: w.eps,
    };
    let accumulate = match residual {
        Some(_) => Accumulate::Add,
        None => Accumulate::Overwrite,
    };
    let d = [b.norm_into(&xb, &out, norm, 1, accumulate)];
    Ok(f32s(&run(gpu, &d, n, &out, x.len()).await?))
}

/// A RoPE probe's input: `n` tokens' q, k and v side by side in `qkv`, at positions
/// `start..start + n`, over caches `k` and `v`; `heads` is (n_head, n_kv_head, head_dim).
pub struct RopeCase<'a> {
    pub qkv: &'a [f32],
    pub k: &'a [f32],
    pub v: &'a [f32],
    pub n: usize,
    pub start: usize,
    pub heads: (usize, usize, usize),
    /// The batch's tables (`n` rows of rotated pairs each).
    pub cos: &'a [f32],
    pub sin: &'a [f32],
    pub style: RopeStyle,
    /// q and k heads' RMSNorm weights, and eps.
    pub norms: Option<(&'a [f32], &'a [f32], f32)>,
    /// q, k and v biases end to end.
    pub bias: Option<&'a [f32]>,
}

/// RoPE on the queries, returned, and on the keys and the values written at the case's
/// positions of the caches (whose other rows stay), returned too; the biases added first where
/// given, and each q and k head RMS-normed where the norms are.
pub async fn rope(gpu: &Gpu, case: &RopeCase<'_>) -> Result<[Vec<f32>; 3]> {
    let RopeCase { n, start, .. } = *case;
    let (n_head, n_kv_head, head_dim) = case.heads;
    let half = case.cos.len() / n;
    let s = scratch_at(gpu, n, start);
    let b = builder(gpu, &s);
    let src = gpu.storage_init("qkv", &f32_bytes(case.qkv));
    let q_len = n * n_head * head_dim;
    let qb = gpu.storage("q", (q_len * 4) as u64);
    let kb = gpu.storage_init("k", &gpu.kv_bytes(case.k));
    let vb = gpu.storage_init("v", &gpu.kv_bytes(case.v));
    let tables = gpu.storage_init("rope", &f32_bytes(&[case.cos, case.sin].concat()));
    let weights = case.norms.map(|(qn, kn, eps)| {
        (
            gpu.storage_init("qn", &f32_bytes(qn)),
            gpu.storage_init("kn", &f32_bytes(kn)),
            eps,
        )
    });
    let bias = case.bias.map(|b| gpu.storage_init("bias", &f32_bytes(b)));
    let d = [b.rope(
        RopeBuffers {
            qkv: &src,
            q: &qb,
            k_cache: &kb,
            v_cache: &vb,
            tables: &tables,
            head_norms: weights.as_ref().map(|(qn, kn, eps)| (qn, kn, *eps)),
            bias: bias.as_ref(),
        },
        RopeSpec {
            n_head,
            n_kv_head,
            head_dim,
            half,
            style: case.style,
            table: 0,
            table_len: case.cos.len(),
            norm: HeadNormSpec::default(),
            clamp: None,
        },
    )];
    Ok([
        f32s(&run_at(gpu, &d, n, start, &qb, q_len).await?),
        gpu.kv_values(&run_at(gpu, &[], n, start, &kb, cache_words(gpu, case.k)).await?),
        gpu.kv_values(&run_at(gpu, &[], n, start, &vb, cache_words(gpu, case.v)).await?),
    ])
}

/// The 4-byte words `values` take in `gpu`'s KV cache (heads are a multiple of 4 values).
fn cache_words(gpu: &Gpu, values: &[f32]) -> usize {
    values.len() * gpu.kv_size() / 4
}

/// RMSNorm of the rows of `x` (weights `g`) quantized in `mode`, by
/// the fused dispatch (`fused`) or by a norm then a quantize: the normed rows, xq and xm.
pub async fn norm_quantize(
    gpu: &Gpu,
    x: &[f32],
    g: &[f32],
    eps: f32,
    mode: QuantFormat,
    fused: bool,
) -> Result<(Vec<f32>, Vec<u8>, Vec<u8>)> {
    let w = NormWeights {
        kind: NormKind::Rms,
        g,
        bias: None,
        eps,
    };
    norm_quantize_with(gpu, x, w, mode, fused).await
}

/// [`norm_quantize`] with the norm `w` (RMSNorm or LayerNorm, with a bias or not).
pub async fn norm_quantize_with(
    gpu: &Gpu,
    x: &[f32],
    w: NormWeights<'_>,
    mode: QuantFormat,
    fused: bool,
) -> Result<(Vec<f32>, Vec<u8>, Vec<u8>)> {
    let (len, n) = (w.g.len(), x.len() / w.g.len());
    let s = scratch(gpu, n, len);
    let b = builder(gpu, &s);
    let (xb, gb) = (
        gpu.storage_init("x", &f32_bytes(x)),
        gpu.storage_init("g", &f32_bytes(w.g)),
    );
    let bias = w.bias.map(|v| gpu.storage_init("bias", &f32_bytes(v)));
    let h = gpu.storage("h", (x.len() * 4) as u64);
    let norm = Norm {
        kind: w.kind,
        weight: &gb,
        bias: bias.as_ref(),
        len,
        eps: w.eps,
    };
    let d = if fused {
        vec![b.norm_prepare(&xb, &h, norm, Some(mode))]
    } else {
        vec![
            b.norm_into(&xb, &h, norm, 1, Accumulate::Overwrite),
            b.quantize(&h, 0, len, len, mode),
        ]
    };
    let normed = f32s(&run(gpu, &d, n, &h, x.len()).await?);
    let xq = run(gpu, &[], n, &s.xq, n * len / 4).await?;
    let xm = run(gpu, &[], n, &s.xm, n * len / 8).await?;
    Ok((normed, xq, xm))
}

/// Causal attention of `n` queries at positions `start..start + n` over keys/values of
/// positions `0..start + n` (`kv_dim` floats each).
pub async fn attention(
    gpu: &Gpu,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    start: usize,
    n: usize,
    shape: AttentionShape,
) -> Result<Vec<f32>> {
    let s = scratch_at(gpu, n, start);
    let b = builder(gpu, &s);
    let (qb, kb, vb) = (
        gpu.storage_init("q", &f32_bytes(q)),
        gpu.storage_init("k", &gpu.kv_bytes(k)),
        gpu.storage_init("v", &gpu.kv_bytes(v)),
    );
    let out = gpu.storage("out", (q.len() * 4) as u64);
    let part = gpu.storage(
        "chunks",
        attention_part_len(n, shape.n_head, shape.head_dim) as u64 * 4,
    );
    let io = AttentionBuffers {
        q: &qb,
        k_cache: &kb,
        v_cache: &vb,
        out: &out,
        part: &part,
    };
    let d = b.attention(io, shape, None);
    Ok(f32s(&run_at(gpu, &d, n, start, &out, q.len()).await?))
}

/// Seconds of GPU time per attention (partial and combining pass) of one decoding query after
/// `start` cached positions, averaged over `reps` runs recorded back to back in one command
/// buffer, over `gpu`'s KV cache type; `chunk` forces the key-chunk length (else the forward
/// pass's rule). For `wick bench-attention`, which compares chunkings and cache types.
#[cfg(not(target_arch = "wasm32"))]
pub async fn attention_time(
    gpu: &Gpu,
    (n_head, n_kv_head, head_dim): (usize, usize, usize),
    window: Option<usize>,
    start: usize,
    chunk: Option<usize>,
    reps: usize,
) -> Result<f64> {
    let s = scratch_at(gpu, 1, start);
    let b = builder(gpu, &s);
    let kv = (start + 1) * n_kv_head * head_dim;
    let ramp = |n: usize| {
        (0..n)
            .map(|i| (i % 97) as f32 * 0.01 - 0.5)
            .collect::<Vec<f32>>()
    };
    let (qb, kb, vb) = (
        gpu.storage_init("q", &f32_bytes(&ramp(n_head * head_dim))),
        gpu.storage_init("k", &gpu.kv_bytes(&ramp(kv))),
        gpu.storage_init("v", &gpu.kv_bytes(&ramp(kv))),
    );
    let out = gpu.storage("out", (n_head * head_dim * 4) as u64);
    let part = gpu.storage("chunks", attention_part_len(1, n_head, head_dim) as u64 * 4);
    let io = AttentionBuffers {
        q: &qb,
        k_cache: &kb,
        v_cache: &vb,
        out: &out,
        part: &part,
    };
    let shape = AttentionShape {
        n_head,
        n_kv_head,
        head_dim,
        scale: 0.125,
        window,
        softcap: None,
        alibi_max_bias: None,
    };
    let d = b.attention(io, shape, chunk);
    let many: Vec<&Dispatch> = (0..reps).flat_map(|_| &d).collect();
    timed(gpu, &many[..2], start, &out).await?; // warm-up: pipelines, first touch
    let one = timed(gpu, &many[..2], start, &out).await?;
    let all = timed(gpu, &many, start, &out).await?;
    Ok((all - one) / (reps - 1) as f64)
}

/// Seconds from recording `list` for one token after `start` positions to reading `out` back.
#[cfg(not(target_arch = "wasm32"))]
async fn timed(gpu: &Gpu, list: &[&Dispatch], start: usize, out: &wgpu::Buffer) -> Result<f64> {
    let t0 = std::time::Instant::now();
    let mut enc = gpu.device.create_command_encoder(&Default::default());
    {
        let mut pass = enc.begin_compute_pass(&Default::default());
        for x in list {
            x.record(&mut pass, 1, start);
        }
    }
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 16,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    enc.copy_buffer_to_buffer(out, 0, &staging, 0, 16);
    gpu.queue.submit([enc.finish()]);
    read_back(gpu, &staging, 16).await?;
    Ok(t0.elapsed().as_secs_f64())
}

/// `act(gate) * up`, elementwise.
pub async fn gated(gpu: &Gpu, gate: &[f32], up: &[f32], act: Activation) -> Result<Vec<f32>> {
    let s = scratch(gpu, 1, 32);
    let b = builder(gpu, &s);
    let gu = gpu.storage_init("gate, up", &f32_bytes(&[gate, up].concat()));
    let out = gpu.storage("out", (gate.len() * 4) as u64);
    let d = [b.gated(&gu, &out, gate.len(), MlpAct::gated(act))];
    Ok(f32s(&run(gpu, &d, 1, &out, gate.len()).await?))
}

/// `act(gate) * up` quantized in `mode`, by the fused dispatch (`fused`) or by
/// [`gated`]'s then a quantize: the products, xq and xm.
pub async fn gated_quantize(
    gpu: &Gpu,
    gate: &[f32],
    up: &[f32],
    act: Activation,
    mode: QuantFormat,
    fused: bool,
) -> Result<(Vec<f32>, Vec<u8>, Vec<u8>)> {
    let len = gate.len();
    let s = scratch(gpu, 1, len);
    let b = builder(gpu, &s);
    let gu = gpu.storage_init("gate, up", &f32_bytes(&[gate, up].concat()));
    let out = gpu.storage("out", (len * 4) as u64);
    let d = if fused {
        vec![b.gated_prepare(&gu, &out, len, MlpAct::gated(act), Some(mode))]
    } else {
        vec![
            b.gated(&gu, &out, len, MlpAct::gated(act)),
            b.quantize(&out, 0, len, len, mode),
        ]
    };
    let prods = f32s(&run(gpu, &d, 1, &out, len).await?);
    let xq = run(gpu, &[], 1, &s.xq, len / 4).await?;
    let xm = run(gpu, &[], 1, &s.xm, len / 8).await?;
    Ok((prods, xq, xm))
}

/// The 64 largest `(index, value)` pairs of `vals`, best first (ties: lower index first).
pub async fn top_k(gpu: &Gpu, vals: &[f32]) -> Result<Vec<(u32, f32)>> {
    let s = scratch(gpu, 1, 32);
    let b = builder(gpu, &s);
    let vb = gpu.storage_init("vals", &f32_bytes(vals));
    let cand = (vals.len().div_ceil(1024) * 64) as u64 * 4;
    let pairs = [
        (gpu.storage("c", cand), gpu.storage("ci", cand)),
        (gpu.storage("c", cand), gpu.storage("ci", cand)),
    ];
    let (d, at) = b.topk(
        &vb,
        0,
        vals.len(),
        [(&pairs[0].0, &pairs[0].1), (&pairs[1].0, &pairs[1].1)],
    );
    let v = f32s(&run(gpu, &d, 1, &pairs[at].0, 64).await?);
    let ids = run(gpu, &[], 1, &pairs[at].1, 64).await?;
    Ok(ids
        .chunks_exact(4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .zip(v)
        .filter(|(i, _)| *i != u32::MAX)
        .collect())
}
