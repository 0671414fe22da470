//! The CPU forward pass: one decoder that runs any [`Plan`]. Families do not have their own;
//! what sets them apart is data in the Plan, read here.
//!
//! Activations are row-major `[n tokens][width]` buffers from the cache's
//! [`Workspace`](super::workspace::Workspace), so a decode step allocates nothing.

use super::kv_cache::KvCache;
use super::ops::{self, AttentionShape};
use super::plan::{Activation, LayerPlan, Plan};
use super::workspace::{Activations, Widths};
use super::LogitsOut;

/// Runs `tokens` (at most [`MAX_BATCH`](super::MAX_BATCH)) at positions `cache.len..`, appends
/// their keys and values to the cache, and appends the logits that `out` asks for to its vector.
pub fn forward_batch(p: &Plan, tokens: &[u32], cache: &mut KvCache, out: LogitsOut<'_>) {
    let (n, d) = (tokens.len(), p.n_embd);
    let start = cache.len;
    let widths = Widths {
        embd: d,
        q: p.q_dim(),
        kv: p.kv_dim(),
        ff: p.n_ff,
    };
    let mut b = cache.work.batch(n, widths, p.ropes.len());
    for (t, &id) in tokens.iter().enumerate() {
        let row = &mut b.x[t * d..(t + 1) * d];
        p.embed.row(id as usize, row);
        if p.embed_scale != 1.0 {
            row.iter_mut().for_each(|v| *v *= p.embed_scale);
        }
    }
    for (table, r) in b.ropes.iter_mut().zip(&p.ropes) {
        table.fill(start, n, r.dims, r.base, r.scale, r.factors.as_deref());
    }
    for (layer, lc) in p.layers.iter().zip(cache.layers.iter_mut()) {
        attention_block(p, layer, &mut b, start, n, lc);
        mlp_block(p, layer, &mut b, n);
    }
    output_logits(p, b.x, n, b.normed, out);
    cache.len = start + n;
}

/// `x += post_attn_norm(wo(attention(rope(q), rope(k), v)))` with q, k, v from `attn_norm(x)`;
/// the batch's keys and values go into the layer's cache first.
fn attention_block(
    p: &Plan,
    layer: &LayerPlan,
    b: &mut Activations<'_>,
    start: usize,
    n: usize,
    lc: &mut super::kv_cache::LayerCache,
) {
    ops::rms_norm_into(b.x, &layer.attn_norm, p.eps, b.h);
    layer.wq.matmul(b.h, n, b.q);
    layer.wk.matmul(b.h, n, b.k);
    layer.wv.matmul(b.h, n, b.v);
    if let Some(bias) = &layer.qkv_bias {
        let (bq, bkv) = bias.split_at(p.q_dim());
        let (bk, bv) = bkv.split_at(p.kv_dim());
        ops::add_rows(b.q, bq);
        ops::add_rows(b.k, bk);
        ops::add_rows(b.v, bv);
    }
    if let Some(qn) = &layer.q_norm {
        ops::rms_norm(b.q, qn, p.eps);
    }
    if let Some(kn) = &layer.k_norm {
        ops::rms_norm(b.k, kn, p.eps);
    }
    let rope = &b.ropes[layer.rope];
    rope.apply(b.q, n, p.head_dim, p.rope_style);
    rope.apply(b.k, n, p.head_dim, p.rope_style);
    lc.write(start, b.k, b.v);
    let shape = AttentionShape {
        n_head: p.n_head,
        n_kv_head: p.n_kv_head,
        head_dim: p.head_dim,
        scale: p.attn_scale,
        window: layer.window,
    };
    ops::attention(b.q, lc, start, n, shape, b.att);
    layer.wo.matmul(b.att, n, b.proj);
    if let Some(pn) = &layer.post_attn_norm {
        ops::rms_norm(b.proj, pn, p.eps);
    }
    ops::add_assign(b.x, b.proj);
}

/// `x += post_ffn_norm(down(act(gate(h)) * up(h)))` with `h = ffn_norm(x)`.
fn mlp_block(p: &Plan, layer: &LayerPlan, b: &mut Activations<'_>, n: usize) {
    ops::rms_norm_into(b.x, &layer.ffn_norm, p.eps, b.h);
    layer.gate.matmul(b.h, n, b.gate);
    layer.up.matmul(b.h, n, b.up);
    // One monomorphized loop per activation, so it inlines and vectorizes.
    match p.activation {
        Activation::Silu => ops::gated(b.gate, b.up, ops::silu),
        Activation::GeluTanh => ops::gated(b.gate, b.up, ops::gelu_tanh),
    }
    layer.down.matmul(b.gate, n, b.proj);
    if let Some(pn) = &layer.post_ffn_norm {
        ops::rms_norm(b.proj, pn, p.eps);
    }
    ops::add_assign(b.x, b.proj);
}

/// Final norm and output projection of the rows `out` asks for (prefill needs just the last;
/// skipping the others saves a vocabulary-sized matmul per prompt token), appended to its vector.
/// `normed` is scratch.
fn output_logits(p: &Plan, x: &[f32], n: usize, normed: &mut Vec<f32>, out: LogitsOut<'_>) {
    let d = p.n_embd;
    let (rows, logits) = match out {
        LogitsOut::Skip => return,
        LogitsOut::Last(l) => (&x[(n - 1) * d..], l),
        LogitsOut::All(l) => (x, l),
    };
    normed.clear();
    normed.extend_from_slice(rows);
    ops::rms_norm(normed, &p.output_norm, p.eps);
    let m = normed.len() / d;
    let at = logits.len();
    logits.resize(at + m * p.output.rows, 0.0);
    p.output.matmul(normed, m, &mut logits[at..]);
}
