//! The building blocks the architecture files assemble: normalization, rotary embeddings,
//! attention over the KV cache, activations. Activations are row-major `[n tokens][width]`.

use super::kv_cache::LayerCache;
use crate::parallel::{self, SharedMut};

/// RMSNorm of each `w.len()`-wide row of `x`, in place: `x / sqrt(mean(x^2) + eps) * w`.
pub fn rms_norm(x: &mut [f32], w: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(w.len()) {
        let ss: f64 = row.iter().map(|&v| (v as f64) * (v as f64)).sum();
        let scale = (1.0 / (ss / w.len() as f64 + eps as f64).sqrt()) as f32;
        for (v, &g) in row.iter_mut().zip(w) {
            *v = *v * scale * g;
        }
    }
}

/// RMSNorm from `x` into `out` (keeps the residual stream intact).
pub fn rms_norm_into(x: &[f32], w: &[f32], eps: f32, out: &mut [f32]) {
    out.copy_from_slice(x);
    rms_norm(out, w, eps);
}

/// How a model pairs the dimensions it rotates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RopeStyle {
    /// Adjacent pairs `(2i, 2i+1)` (GGUF's llama, whose Q/K rows were permuted at conversion).
    Interleaved,
    /// Halves `(i, i + d/2)` (GPT-NeoX style: Gemma, Qwen, ...).
    Halves,
}

/// Cosines and sines for the rotated dimensions of a run of positions.
pub struct RopeTable {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    half: usize,
}

impl RopeTable {
    /// The first `rot_dims` dimensions of each head are rotated by angles
    /// `pos / scale * base^(-2i / rot_dims) / factors[i]`.
    pub fn new(
        start: usize,
        n: usize,
        rot_dims: usize,
        base: f32,
        scale: f32,
        factors: Option<&[f32]>,
    ) -> Self {
        let half = rot_dims / 2;
        let mut cos = Vec::with_capacity(n * half);
        let mut sin = Vec::with_capacity(n * half);
        for t in 0..n {
            let p = (start + t) as f64 / scale as f64;
            for i in 0..half {
                let factor = factors.map_or(1.0, |f| f[i] as f64);
                let inv_freq = (base as f64).powf(-2.0 * i as f64 / rot_dims as f64) / factor;
                let (s, c) = (p * inv_freq).sin_cos();
                cos.push(c as f32);
                sin.push(s as f32);
            }
        }
        Self { cos, sin, half }
    }

    /// Rotates each head (`head_dim` wide) of each token row of `x` in place.
    pub fn apply(&self, x: &mut [f32], n: usize, head_dim: usize, style: RopeStyle) {
        let width = x.len() / n;
        let h = self.half;
        for t in 0..n {
            let (cos, sin) = (&self.cos[t * h..(t + 1) * h], &self.sin[t * h..(t + 1) * h]);
            for head in x[t * width..(t + 1) * width].chunks_exact_mut(head_dim) {
                for i in 0..h {
                    let (a, b) = match style {
                        RopeStyle::Interleaved => (2 * i, 2 * i + 1),
                        RopeStyle::Halves => (i, i + h),
                    };
                    let (x0, x1) = (head[a], head[b]);
                    head[a] = x0 * cos[i] - x1 * sin[i];
                    head[b] = x0 * sin[i] + x1 * cos[i];
                }
            }
        }
    }
}

/// The attention geometry of one layer.
#[derive(Clone, Copy, Debug)]
pub struct AttentionShape {
    pub n_head: usize,
    pub n_kv_head: usize,
    pub head_dim: usize,
    /// Multiplies q·k (usually 1/sqrt(head_dim)).
    pub scale: f32,
    /// A query at position p sees keys at p - window + 1 ..= p (all keys when None).
    pub window: Option<usize>,
}

/// Causal attention of the queries of positions `start..start+n` over the cache (which already
/// holds their keys and values). `q` and `out` are `[n][n_head * head_dim]`.
pub fn attention(
    q: &[f32],
    cache: &LayerCache,
    start: usize,
    n: usize,
    s: AttentionShape,
    out: &mut [f32],
) {
    debug_assert_eq!(out.len(), n * s.n_head * s.head_dim);
    let hd = s.head_dim;
    let group = s.n_head / s.n_kv_head;
    let kv_dim = s.n_kv_head * hd;
    // Tasks of a few (token, head) pairs each; every pair writes its own `hd` outputs.
    let pairs = n * s.n_head;
    let per_task = pairs.div_ceil(4 * parallel::threads()).max(1);
    let out_ptr = SharedMut::new(out);
    parallel::for_each(pairs.div_ceil(per_task), |task| {
        let mut scores = Vec::new();
        for i in task * per_task..pairs.min((task + 1) * per_task) {
            // SAFETY: pair `i` alone writes `out[i * hd..(i + 1) * hd]`, inside `out`.
            let o = unsafe { out_ptr.slice(i * hd, hd) };
            let (t, h) = (i / s.n_head, i % s.n_head);
            let pos = start + t;
            let first = match s.window {
                Some(w) => (pos + 1).saturating_sub(w),
                None => 0,
            };
            let qh = &q[t * s.n_head * hd + h * hd..][..hd];
            let kv_off = (h / group) * hd;
            debug_assert!(kv_off + hd <= kv_dim);
            scores.clear();
            let mut max = f32::NEG_INFINITY;
            for p in first..=pos {
                let k = &cache.key(p)[kv_off..kv_off + hd];
                let sc = dot(qh, k) * s.scale;
                max = max.max(sc);
                scores.push(sc);
            }
            let mut sum = 0f32;
            for sc in scores.iter_mut() {
                *sc = (*sc - max).exp();
                sum += *sc;
            }
            let inv = 1.0 / sum;
            o.fill(0.0);
            for (p, &w) in (first..=pos).zip(scores.iter()) {
                let v = &cache.value(p)[kv_off..kv_off + hd];
                let w = w * inv;
                for (a, &b) in o.iter_mut().zip(v) {
                    *a += w * b;
                }
            }
        }
    });
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize without reassociation flags.
    let mut acc = [0f32; 8];
    let chunks = a.len() / 8;
    for c in 0..chunks {
        for j in 0..8 {
            acc[j] += a[c * 8 + j] * b[c * 8 + j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for i in chunks * 8..a.len() {
        sum += a[i] * b[i];
    }
    sum
}

#[inline]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + (-x).exp())
}

/// GELU, tanh approximation (Gemma's `gelu_pytorch_tanh`).
#[inline]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    0.5 * x * (1.0 + (SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x)).tanh())
}

/// `gate = act(gate) * up`, elementwise.
pub fn gated(gate: &mut [f32], up: &[f32], act: fn(f32) -> f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = act(*g) * u;
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
