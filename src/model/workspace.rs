//! The forward pass's activation buffers. They live with the [`KvCache`](super::KvCache),
//! since both belong to one session: after the first call of a given batch size, running the
//! model allocates nothing (decode is the same size every token).

use super::ops::RopeTable;

/// Buffers grow to the largest batch seen and are reused; their contents do not outlive a call.
#[derive(Default)]
pub struct Workspace {
    x: Vec<f32>,
    h: Vec<f32>,
    q: Vec<f32>,
    k: Vec<f32>,
    v: Vec<f32>,
    att: Vec<f32>,
    proj: Vec<f32>,
    gate: Vec<f32>,
    up: Vec<f32>,
    normed: Vec<f32>,
    par: Vec<f32>,
    ropes: Vec<RopeTable>,
}

/// One batch's buffers: activations `[n tokens][width]`, zero-filled, and the rest.
pub struct Activations<'a> {
    /// The residual stream.
    pub x: &'a mut [f32],
    /// The normed residual, the input of a block's products.
    pub h: &'a mut [f32],
    pub q: &'a mut [f32],
    pub k: &'a mut [f32],
    pub v: &'a mut [f32],
    /// Attention's output, before its projection.
    pub att: &'a mut [f32],
    /// A block's output projection, before the residual add.
    pub proj: &'a mut [f32],
    pub gate: &'a mut [f32],
    pub up: &'a mut [f32],
    /// A parallel layer's MLP output, added after attention's (empty unless the plan has one).
    pub par: &'a mut [f32],
    /// Rotary tables for the batch's positions, one per [`RopePlan`](super::plan::RopePlan)
    /// (Gemma 3 has two: local and global layers).
    pub ropes: &'a mut [RopeTable],
    /// The final norm's output rows, before the output projection.
    pub normed: &'a mut Vec<f32>,
}

/// Widths of one token's activations.
pub struct Widths {
    pub embd: usize,
    pub q: usize,
    pub kv: usize,
    pub ff: usize,
}

fn zeroed(v: &mut Vec<f32>, len: usize) -> &mut [f32] {
    v.clear();
    v.resize(len, 0.0);
    v
}

impl Workspace {
    /// The buffers for a batch of `n` tokens, with `ropes` rotary tables (and room for a
    /// parallel layer's MLP output when `parallel`).
    pub fn batch(&mut self, n: usize, w: Widths, ropes: usize, parallel: bool) -> Activations<'_> {
        self.ropes.resize_with(ropes, RopeTable::default);
        Activations {
            x: zeroed(&mut self.x, n * w.embd),
            h: zeroed(&mut self.h, n * w.embd),
            q: zeroed(&mut self.q, n * w.q),
            k: zeroed(&mut self.k, n * w.kv),
            v: zeroed(&mut self.v, n * w.kv),
            att: zeroed(&mut self.att, n * w.q),
            proj: zeroed(&mut self.proj, n * w.embd),
            gate: zeroed(&mut self.gate, n * w.ff),
            up: zeroed(&mut self.up, n * w.ff),
            par: zeroed(&mut self.par, if parallel { n * w.embd } else { 0 }),
            ropes: &mut self.ropes[..],
            normed: &mut self.normed,
        }
    }
}
