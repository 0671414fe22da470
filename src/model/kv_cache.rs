//! The KV cache: per layer, keys and values for the positions attention can still see.
//!
//! Memory follows use: a layer's buffers grow as tokens arrive (never beyond the context in
//! use), and a sliding-window layer keeps a ring of `window + max_batch` positions, enough for
//! every query of a batch to see its whole window while the batch's own keys are written.

/// Keys and values of one layer, `kv_dim` floats per position, stored at `pos % capacity`.
pub struct LayerCache {
    pub k: Vec<f32>,
    pub v: Vec<f32>,
    kv_dim: usize,
    capacity: usize,
    window: Option<usize>,
}

impl LayerCache {
    fn new(kv_dim: usize, capacity: usize, window: Option<usize>) -> Self {
        Self {
            k: Vec::new(),
            v: Vec::new(),
            kv_dim,
            capacity,
            window,
        }
    }

    #[inline]
    pub fn slot(&self, pos: usize) -> usize {
        pos % self.capacity
    }

    /// Stores the keys/values of positions `start..start + n` (`n * kv_dim` floats each).
    pub fn write(&mut self, start: usize, k: &[f32], v: &[f32]) {
        let d = self.kv_dim;
        let n = k.len() / d;
        for t in 0..n {
            let s = self.slot(start + t);
            if (s + 1) * d > self.k.len() {
                // Positions arrive in order, so a new slot is always the next one.
                debug_assert_eq!(s * d, self.k.len());
                self.k.extend_from_slice(&k[t * d..(t + 1) * d]);
                self.v.extend_from_slice(&v[t * d..(t + 1) * d]);
            } else {
                self.k[s * d..(s + 1) * d].copy_from_slice(&k[t * d..(t + 1) * d]);
                self.v[s * d..(s + 1) * d].copy_from_slice(&v[t * d..(t + 1) * d]);
            }
        }
    }

    /// Where position `pos`'s row starts in `k` and `v`.
    #[inline]
    pub fn offset(&self, pos: usize) -> usize {
        self.slot(pos) * self.kv_dim
    }

    fn bytes(&self) -> usize {
        (self.k.capacity() + self.v.capacity()) * 4
    }
}

pub struct KvCache {
    pub layers: Vec<LayerCache>,
    /// Positions `0..len` hold valid entries (tokens already run through the model).
    pub len: usize,
    /// The context size in use: positions must stay below it.
    pub context: usize,
    /// The forward pass's activation buffers, reused call after call.
    pub work: super::workspace::Workspace,
}

impl KvCache {
    /// `windows[l]` is layer `l`'s sliding window, if it has one.
    pub fn new(kv_dim: usize, windows: &[Option<usize>], context: usize, max_batch: usize) -> Self {
        let layers = windows
            .iter()
            .map(|w| {
                let cap = match w {
                    Some(w) => (w + max_batch).min(context),
                    None => context,
                };
                LayerCache::new(kv_dim, cap, *w)
            })
            .collect();
        Self {
            layers,
            len: 0,
            context,
            work: Default::default(),
        }
    }

    /// Whether the cache can go back to holding just positions `0..len`: a ring may already have
    /// overwritten what the window of position `len` needs.
    pub fn can_rewind_to(&self, len: usize) -> bool {
        len <= self.len
            && self.layers.iter().all(|l| match l.window {
                Some(w) => {
                    self.len <= l.capacity || self.len - len <= l.capacity - w.min(l.capacity)
                }
                None => true,
            })
    }

    /// Forgets positions from `len` on (their slots are overwritten by the next tokens).
    /// Callers check [`KvCache::can_rewind_to`] first.
    pub fn rewind(&mut self, len: usize) {
        debug_assert!(self.can_rewind_to(len));
        self.len = self.len.min(len);
    }

    /// Heap bytes held by the cache now.
    pub fn bytes(&self) -> usize {
        self.layers.iter().map(LayerCache::bytes).sum()
    }
}
