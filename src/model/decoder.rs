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
    let parallel = p.layers.iter().any(|l| l.parallel);
    let mut b = cache.work.batch(n, widths, p.ropes.len(), parallel);
    for (t, &id) in tokens.iter().enumerate() {
        let row = &mut b.x[t * d..(t + 1) * d];
        p.embed.row(id as usize, row);
        if p.embed_scale != 1.0 {
            row.iter_mut().for_each(|v| *v *= p.embed_scale);
        }
        if let Some(pe) = &p.position_embed {
            // The model's positions end at its trained context, which caps the session's.
            pe.row(start + t, &mut b.h[..d]);
            ops::add_assign(row, &b.h[..d]);
        }
    }
    for (table, r) in b.ropes.iter_mut().zip(&p.ropes) {
        table.fill(start, n, r, cache.context);
    }
    for (layer, lc) in p.layers.iter().zip(cache.layers.iter_mut()) {
        if layer.parallel {
            // Both blocks read the layer's input: the MLP's output waits in `par` while
            // attention adds its own.
            mlp_block(p, layer, &mut b, n, true);
            attention_block(p, layer, &mut b, start, n, lc);
            ops::add_assign(b.x, b.par);
        } else {
            attention_block(p, layer, &mut b, start, n, lc);
            mlp_block(p, layer, &mut b, n, false);
        }
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
    ops::norm_into(b.x, layer.attn_norm.as_ref(), p.norm_kind, p.eps, b.h);
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
    if let Some(c) = p.clamp_kqv {
        ops::clamp(b.q, c);
        ops::clamp(b.k, c);
        ops::clamp(b.v, c);
    }
    if let Some(qn) = &layer.q_norm {
        ops::head_norm(b.q, qn, p.norm_kind, p.eps);
    }
    if let Some(kn) = &layer.k_norm {
        ops::head_norm(b.k, kn, p.norm_kind, p.eps);
    }
    if let Some(r) = layer.rope {
        let rope = &b.ropes[r];
        rope.apply(b.q, n, p.head_dim, p.rope_style);
        rope.apply(b.k, n, p.head_dim, p.rope_style);
    }
    lc.write(start, b.k, b.v);
    let shape = AttentionShape {
        n_head: p.n_head,
        n_kv_head: p.n_kv_head,
        head_dim: p.head_dim,
        scale: p.attn_scale,
        window: layer.window,
        softcap: p.attn_softcap,
        alibi_max_bias: p.alibi_max_bias,
    };
    ops::attention(b.q, lc, start, n, shape, b.att);
    layer.wo.matmul(b.att, n, b.proj);
    if let Some(bias) = &layer.wo_bias {
        ops::add_rows(b.proj, bias);
    }
    if let Some(pn) = &layer.post_attn_norm {
        ops::norm(b.proj, pn, p.norm_kind, p.eps);
    }
    residual_add(p, b.x, b.proj);
}

/// `x += post_ffn_norm(down(act(gate(h)) * up(h)))` (or `down(act(up(h)))` without a gate) with
/// `h = ffn_norm(x)`. A parallel layer's MLP reads `x` before attention adds to it, normed by
/// its own norm or else the attention's, and leaves its output in `par`.
fn mlp_block(p: &Plan, layer: &LayerPlan, b: &mut Activations<'_>, n: usize, parallel: bool) {
    let norm = match (&layer.ffn_norm, parallel) {
        (None, true) => layer.attn_norm.as_ref(),
        (n, _) => n.as_ref(),
    };
    ops::norm_into(b.x, norm, p.norm_kind, p.eps, b.h);
    layer.up.matmul(b.h, n, b.up);
    if let Some(bias) = &layer.up_bias {
        ops::add_rows(b.up, bias);
    }
    let act = match &layer.gate {
        Some(gate) => {
            gate.matmul(b.h, n, b.gate);
            // One monomorphized loop per activation, so it inlines and vectorizes.
            match p.activation {
                Activation::Silu => ops::gated(b.gate, b.up, ops::silu),
                Activation::GeluTanh => ops::gated(b.gate, b.up, ops::gelu_tanh),
            }
            &*b.gate
        }
        None => {
            match p.activation {
                Activation::Silu => ops::apply(b.up, ops::silu),
                Activation::GeluTanh => ops::apply(b.up, ops::gelu_tanh),
            }
            &*b.up
        }
    };
    layer.down.matmul(act, n, b.proj);
    if let Some(bias) = &layer.down_bias {
        ops::add_rows(b.proj, bias);
    }
    if let Some(pn) = &layer.post_ffn_norm {
        ops::norm(b.proj, pn, p.norm_kind, p.eps);
    }
    if parallel {
        b.par.copy_from_slice(b.proj);
        if p.residual_scale != 1.0 {
            b.par.iter_mut().for_each(|v| *v *= p.residual_scale);
        }
    } else {
        residual_add(p, b.x, b.proj);
    }
}

/// `x += residual_scale * y`.
fn residual_add(p: &Plan, x: &mut [f32], y: &mut [f32]) {
    if p.residual_scale != 1.0 {
        y.iter_mut().for_each(|v| *v *= p.residual_scale);
    }
    ops::add_assign(x, y);
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
    ops::norm(normed, &p.output_norm, p.norm_kind, p.eps);
    let m = normed.len() / d;
    let at = logits.len();
    logits.resize(at + m * p.output.rows, 0.0);
    let new = &mut logits[at..];
    p.output.matmul(normed, m, new);
    if let Some(bias) = &p.output_bias {
        ops::add_rows(new, bias);
    }
    if p.logit_scale != 1.0 {
        new.iter_mut().for_each(|v| *v *= p.logit_scale);
    }
    if let Some(cap) = p.final_softcap {
        ops::softcap(new, cap);
    }
}
