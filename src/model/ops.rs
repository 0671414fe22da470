//! The building blocks the decoder assembles: normalization, rotary embeddings, attention over
//! the KV cache, activations. Activations are row-major `[n tokens][width]`.

use super::kv_cache::LayerCache;
use super::plan::{HeadNorm, Norm, NormKind, RopePlan, RopeScaling};
use crate::parallel::{self, SharedMut};
use crate::scratch::{self, Slot};

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

/// LayerNorm of each `w.len()`-wide row of `x`, in place: `(x - mean) / sqrt(var + eps) * w + b`,
/// with ggml's precision (sums in f64, the centred values and the scale in f32), so that a
/// norm over few values (a 16-wide head) rounds as llama.cpp's does.
pub fn layer_norm(x: &mut [f32], w: &[f32], b: Option<&[f32]>, eps: f32) {
    let n = w.len();
    for row in x.chunks_exact_mut(n) {
        let mean = (row.iter().map(|&v| v as f64).sum::<f64>() / n as f64) as f32;
        let mut sum2 = 0f64;
        for v in row.iter_mut() {
            *v -= mean;
            sum2 += (*v * *v) as f64;
        }
        let var = (sum2 / n as f64) as f32;
        let scale = 1.0 / (var + eps).sqrt();
        for (i, v) in row.iter_mut().enumerate() {
            let y = *v * scale * w[i];
            *v = match b {
                Some(b) => y + b[i],
                None => y,
            };
        }
    }
}

/// A model's norm of each `n.weight.len()`-wide row of `x`, in place.
pub fn norm(x: &mut [f32], n: &Norm, kind: NormKind, eps: f32) {
    norm_with(x, &n.weight, n.bias.as_deref(), kind, eps);
}

/// [`norm`] with the weights and bias as slices (a part of a per-head norm's weights).
fn norm_with(x: &mut [f32], w: &[f32], b: Option<&[f32]>, kind: NormKind, eps: f32) {
    match kind {
        NormKind::Rms => {
            rms_norm(x, w, eps);
            if let Some(b) = b {
                add_rows(x, b);
            }
        }
        NormKind::Layer => layer_norm(x, w, b, eps),
    }
}

/// [`norm`] from `x` into `out`, or a copy where there is no norm.
pub fn norm_into(x: &[f32], n: Option<&Norm>, kind: NormKind, eps: f32, out: &mut [f32]) {
    out.copy_from_slice(x);
    if let Some(n) = n {
        norm(out, n, kind, eps);
    }
}

/// The norm of queries or keys: each `group`-wide part of every row, with the weights of that
/// part (shared when they cover one group, else one set per group).
pub fn head_norm(x: &mut [f32], hn: &HeadNorm, kind: NormKind, eps: f32) {
    let (g, w) = (hn.group, &hn.norm.weight);
    if w.len() == g {
        return norm(x, &hn.norm, kind, eps);
    }
    for (i, part) in x.chunks_exact_mut(g).enumerate() {
        let at = (i * g) % w.len();
        let bias = hn.norm.bias.as_deref().map(|b| &b[at..at + g]);
        norm_with(part, &w[at..at + g], bias, kind, eps);
    }
}

/// Clamps every value to `[-c, c]`.
pub fn clamp(x: &mut [f32], c: f32) {
    x.iter_mut().for_each(|v| *v = v.clamp(-c, c));
}

/// `x = cap * tanh(x / cap)`.
pub fn softcap(x: &mut [f32], cap: f32) {
    x.iter_mut().for_each(|v| *v = cap * (*v / cap).tanh());
}

/// Adds `bias` to each row of `x` (rows of `bias.len()`).
pub fn add_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
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
#[derive(Default)]
pub struct RopeTable {
    pub cos: Vec<f32>,
    pub sin: Vec<f32>,
    half: usize,
}

impl RopeTable {
    /// The table for positions `start..start + n` under `r`, in a session of `context`
    /// positions (which picks LongRoPE's factors).
    pub fn new(start: usize, n: usize, r: &RopePlan, context: usize) -> Self {
        let mut table = Self::default();
        table.fill(start, n, r, context);
        table
    }

    /// [`RopeTable::new`] into this table's buffers (no allocation once they are large enough).
    ///
    /// As llama.cpp's `rope_yarn`: frequency `i`'s angle extrapolated is
    /// `pos * base^(-2i / dims) / factor[i]`; interpolated, that times `1 / scale factor`. Linear
    /// scaling takes the interpolated angle; YaRN mixes the two by a ramp over the frequencies
    /// and scales the rotated values by `1 + 0.1 ln(factor)`; every kind then by `attn_factor`.
    pub fn fill(&mut self, start: usize, n: usize, r: &RopePlan, context: usize) {
        let (dims, base) = (r.dims, r.base as f64);
        let half = dims / 2;
        self.half = half;
        self.cos.clear();
        self.sin.clear();
        let factors = r.factors_for(context);
        let (freq_scale, yarn) = match r.scaling {
            RopeScaling::None => (1.0, None),
            RopeScaling::Linear { factor } => (1.0 / factor as f64, None),
            RopeScaling::Yarn {
                factor,
                beta_fast,
                beta_slow,
            } => {
                // The frequencies that turn beta times over the original context bound the ramp.
                let corr = |beta: f32| {
                    dims as f64
                        * (r.original_context as f64 / (beta as f64 * 2.0 * std::f64::consts::PI))
                            .ln()
                        / (2.0 * base.ln())
                };
                let low = corr(beta_fast).floor().max(0.0);
                let high = corr(beta_slow).ceil().min(dims as f64 - 1.0);
                (1.0 / factor as f64, Some((low, high)))
            }
        };
        let mut mscale = r.attn_factor as f64;
        if yarn.is_some() && freq_scale < 1.0 {
            // YaRN's magnitude correction (llama.cpp cancels it for factors below 1).
            mscale *= 1.0 + 0.1 * (1.0 / freq_scale).ln();
        }
        for t in 0..n {
            let p = (start + t) as f64;
            for i in 0..half {
                let factor = factors.map_or(1.0, |f| f[i] as f64);
                let extrap = p * base.powf(-2.0 * i as f64 / dims as f64) / factor;
                let interp = extrap * freq_scale;
                let theta = match yarn {
                    None => interp,
                    Some((low, high)) => {
                        let y = (i as f64 - low) / (high - low).max(0.001);
                        let mix = 1.0 - y.clamp(0.0, 1.0);
                        interp * (1.0 - mix) + extrap * mix
                    }
                };
                let (s, c) = theta.sin_cos();
                self.cos.push((c * mscale) as f32);
                self.sin.push((s * mscale) as f32);
            }
        }
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
    /// Scores become `cap * tanh(score / cap)` (Gemma 2).
    pub softcap: Option<f32>,
    /// ALiBi's maximum bias: head h adds `-slope(h) * (p - key position)` to its scores (MPT).
    pub alibi_max_bias: Option<f32>,
}

/// ALiBi's slope for head `h` of `n_head`, as llama.cpp's softmax computes it: geometric in
/// `2^(-max_bias / n)` over the largest power of two `n <= n_head`, the remaining heads taking
/// the odd powers of `2^(-max_bias / 2n)`.
pub fn alibi_slope(h: usize, n_head: usize, max_bias: f32) -> f32 {
    let n = 1usize << (usize::BITS - 1 - n_head.leading_zeros());
    let m0 = 2f32.powf(-max_bias / n as f32);
    let m1 = 2f32.powf(-(max_bias / 2.0) / n as f32);
    if h < n {
        m0.powi(h as i32 + 1)
    } else {
        m1.powi(2 * (h - n) as i32 + 1)
    }
}

/// Causal attention of the queries of positions `start..start+n` over the cache (which already
/// holds their keys and values). `q` and `out` are `[n][n_head * head_dim]`.
///
/// The work unit is one token and one KV head: the `group` query heads that share that KV head
/// are scored against each key row as it is loaded, and their outputs accumulate each value row
/// in registers, 16 dimensions at a time. Per element the arithmetic and its order are those of
/// the plain per-head loop (`dot`, softmax, then `o += w * v` in position order), so results are
/// bit for bit the same; only the loads are shared and the ring slot arithmetic hoisted.
pub fn attention(
    q: &[f32],
    cache: &LayerCache,
    start: usize,
    n: usize,
    s: AttentionShape,
    out: &mut [f32],
) {
    debug_assert_eq!(out.len(), n * s.n_head * s.head_dim);
    let group = s.n_head / s.n_kv_head;
    let units = n * s.n_kv_head;
    let per_task = units.div_ceil(4 * parallel::threads()).max(1);
    let out_ptr = SharedMut::new(out);
    // The most positions a query sees: sizes the per-thread scratch for a task's units.
    let max_span = s.window.map_or(start + n, |w| w.min(start + n));
    parallel::for_each(units.div_ceil(per_task), |task| {
        scratch::with(Slot::Rows, max_span, |rows_buf: &mut [usize]| {
            scratch::with(
                Slot::Scores,
                group * max_span,
                |scores_buf: &mut [f32]| {
                    for unit in task * per_task..units.min((task + 1) * per_task) {
                        attend(q, cache, start, s, unit, rows_buf, scores_buf, &out_ptr);
                    }
                },
            )
        })
    });
}

/// One unit of [`attention`]: token `unit / n_kv_head` against KV head `unit % n_kv_head`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn attend(
    q: &[f32],
    cache: &LayerCache,
    start: usize,
    s: AttentionShape,
    unit: usize,
    rows_buf: &mut [usize],
    scores_buf: &mut [f32],
    out_ptr: &SharedMut<'_, f32>,
) {
    let hd = s.head_dim;
    let group = s.n_head / s.n_kv_head;
    let (t, g) = (unit / s.n_kv_head, unit % s.n_kv_head);
    let pos = start + t;
    let first = match s.window {
        Some(w) => (pos + 1).saturating_sub(w),
        None => 0,
    };
    let span = pos + 1 - first;
    // Where each visible position's row starts in the cache, once for all heads.
    let rows = &mut rows_buf[..span];
    for (r, p) in rows.iter_mut().zip(first..=pos) {
        *r = cache.offset(p) + g * hd;
    }
    // Heads g * group .. (g + 1) * group sit next to each other in `q` and `out`.
    let at = t * s.n_head * hd + g * group * hd;
    let qg = &q[at..at + group * hd];
    // SAFETY: unit (t, g) alone writes these `group` heads of token t.
    let og = unsafe { out_ptr.slice(at, group * hd) };

    let scores = &mut scores_buf[..group * span];
    for (j, &r) in rows.iter().enumerate() {
        let k = &cache.k[r..r + hd];
        for h in 0..group {
            scores[h * span + j] = dot(&qg[h * hd..(h + 1) * hd], k) * s.scale;
        }
    }
    if s.softcap.is_some() || s.alibi_max_bias.is_some() {
        for h in 0..group {
            let sc = &mut scores[h * span..(h + 1) * span];
            if let Some(cap) = s.softcap {
                softcap(sc, cap);
            }
            if let Some(max_bias) = s.alibi_max_bias {
                let slope = alibi_slope(g * group + h, s.n_head, max_bias);
                for (j, x) in sc.iter_mut().enumerate() {
                    *x -= slope * (pos - (first + j)) as f32;
                }
            }
        }
    }
    for h in 0..group {
        let sc = &mut scores[h * span..(h + 1) * span];
        let max = sc.iter().fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sum = 0f32;
        for x in sc.iter_mut() {
            *x = (*x - max).exp();
            sum += *x;
        }
        let inv = 1.0 / sum;
        for x in sc.iter_mut() {
            *x *= inv;
        }
    }
    for h in 0..group {
        let w = &scores[h * span..(h + 1) * span];
        let o = &mut og[h * hd..(h + 1) * hd];
        let mut c = 0;
        while c + 16 <= hd {
            let mut acc = [0f32; 16];
            for (&r, &w) in rows.iter().zip(w) {
                let v: &[f32; 16] = cache.v[r + c..r + c + 16].try_into().unwrap();
                for l in 0..16 {
                    acc[l] += w * v[l];
                }
            }
            o[c..c + 16].copy_from_slice(&acc);
            c += 16;
        }
        for (d, o) in o.iter_mut().enumerate().skip(c) {
            *o = rows
                .iter()
                .zip(w)
                .fold(0.0, |a, (&r, &w)| a + w * cache.v[r + d]);
        }
    }
}

#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    // Eight independent accumulators let the compiler vectorize without reassociation flags.
    // (Fixed-size chunks: with no bounds checks inside, LLVM does vectorize them, SIMD128 too.)
    let mut acc = [0f32; 8];
    let (xs, ys) = (a.chunks_exact(8), b[..a.len()].chunks_exact(8));
    let tail = xs.remainder().iter().zip(ys.remainder());
    for (x, y) in xs.zip(ys) {
        for j in 0..8 {
            acc[j] += x[j] * y[j];
        }
    }
    let mut sum: f32 = acc.iter().sum();
    for (x, y) in tail {
        sum += x * y;
    }
    sum
}

/// e^x as straight-line arithmetic that LLVM vectorizes. libm's `expf` is one call per element
/// (about 19 ns in wasm), which made the MLP's activation a tenth of a prefill.
/// Cody-Waite reduction `x = n ln2 + r` with `|r| <= ln2 / 2`, a degree-7 Taylor polynomial
/// (truncation below 1e-8 relative), and `2^n` added to the exponent bits: within a few ulp of
/// the true value. `x` is clamped to [-86, 88], where the result stays a normal float; the
/// activations below only need the ends to saturate.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LN2_HI: f32 = 0.693_359_4; // 355/512: n * LN2_HI is exact for |n| < 2^15
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - LN2_HI
    const ROUND: f32 = 12_582_912.0; // 1.5 * 2^23: adding it rounds to an integer
    let x = x.clamp(-86.0, 88.0);
    let n = (x * std::f32::consts::LOG2_E + ROUND) - ROUND;
    let r = (x - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0
                        + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    f32::from_bits((p.to_bits() as i32).wrapping_add((n as i32) << 23) as u32)
}

/// SiLU, `x * sigmoid(x)`.
#[inline(always)]
pub fn silu(x: f32) -> f32 {
    x / (1.0 + exp(-x))
}

/// GELU, tanh approximation (Gemma's `gelu_pytorch_tanh`): `0.5 x (1 + tanh(z))`, computed as
/// the equal `x * sigmoid(2z)`, which needs one `exp` and saturates cleanly at both ends.
#[inline(always)]
pub fn gelu_tanh(x: f32) -> f32 {
    const SQRT_2_OVER_PI: f32 = 0.797_884_6;
    let z = SQRT_2_OVER_PI * x * (1.0 + 0.044_715 * x * x);
    x / (1.0 + exp(-2.0 * z))
}

/// `gate = act(gate) * up`, elementwise (generic, so `act` inlines and the loop vectorizes).
pub fn gated(gate: &mut [f32], up: &[f32], act: impl Fn(f32) -> f32) {
    for (g, &u) in gate.iter_mut().zip(up) {
        *g = act(*g) * u;
    }
}

/// `x = act(x)`, elementwise.
pub fn apply(x: &mut [f32], act: impl Fn(f32) -> f32) {
    for v in x.iter_mut() {
        *v = act(*v);
    }
}

pub fn add_assign(x: &mut [f32], y: &[f32]) {
    for (a, &b) in x.iter_mut().zip(y) {
        *a += b;
    }
}
