//! Where a forward pass spends its time on the GPU: a timestamp before the first dispatch and
//! after each one (where the device can write timestamps inside a pass, natively), summed per
//! kind of dispatch, next to the host's time to record and submit the pass and to wait for it.
//! `wick bench --profile` prints it; nothing runs it otherwise.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::Duration;

use super::{read_back, Gpu};
use crate::error::{Error, Result};

/// Timestamps one pass may write (wgpu's most per query set).
const SLOTS: u32 = wgpu::QUERY_SET_MAX_QUERIES;

#[derive(Default, Clone, Copy)]
struct Total {
    calls: u64,
    ns: f64,
}

pub struct Profiler {
    set: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    read: wgpu::Buffer,
    period_ns: f64,
    /// What each timestamp of the current pass marks, in order: a segment's start (None) or
    /// the end of a dispatch of that kind.
    pending: Vec<Option<String>>,
    /// Whether the next `begin` starts a new pass.
    fresh: bool,
    kinds: BTreeMap<String, Total>,
    passes: u64,
    gpu_ns: f64,
    gap_ns: f64,
    record: Duration,
    wait: Duration,
}

impl Profiler {
    /// A profiler for `gpu`, or an error if its device cannot write timestamps inside passes.
    pub fn new(gpu: &Gpu) -> Result<Self> {
        let needed =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        if !gpu.device.features().contains(needed) {
            return Err(Error::Gpu(format!(
                "the GPU `{}` cannot time dispatches (no timestamp queries inside passes)",
                gpu.info.name
            )));
        }
        let bytes = SLOTS as u64 * 8;
        Ok(Self {
            set: gpu.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("profile"),
                ty: wgpu::QueryType::Timestamp,
                count: SLOTS,
            }),
            resolve: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile resolve"),
                size: bytes,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            read: gpu.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("profile read"),
                size: bytes,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            period_ns: gpu.queue.get_timestamp_period() as f64,
            pending: Vec::new(),
            fresh: true,
            kinds: BTreeMap::new(),
            passes: 0,
            gpu_ns: 0.0,
            gap_ns: 0.0,
            record: Duration::ZERO,
            wait: Duration::ZERO,
        })
    }

    /// Marks the start of one of the pass's command buffers (timestamps past the query set's
    /// size are not written).
    pub fn begin(&mut self, pass: &mut wgpu::ComputePass<'_>) {
        if self.fresh {
            self.pending.clear();
            self.fresh = false;
        }
        self.mark(pass, None);
    }

    /// Marks the end of a dispatch of kind `label`.
    pub fn after(&mut self, pass: &mut wgpu::ComputePass<'_>, label: &str) {
        self.mark(pass, Some(label.to_string()));
    }

    fn mark(&mut self, pass: &mut wgpu::ComputePass<'_>, what: Option<String>) {
        let slot = self.pending.len() as u32;
        if slot < SLOTS {
            pass.write_timestamp(&self.set, slot);
            self.pending.push(what);
        }
    }

    /// Copies the pass's timestamps out (in its last command buffer, after its last dispatch).
    pub fn resolve(&self, enc: &mut wgpu::CommandEncoder) {
        let n = self.pending.len() as u32;
        enc.resolve_query_set(&self.set, 0..n, &self.resolve, 0);
        enc.copy_buffer_to_buffer(&self.resolve, 0, &self.read, 0, n as u64 * 8);
    }

    /// Reads the submitted pass's timestamps and adds them to the totals, with the host's time
    /// to record and submit it and to wait for its result.
    pub async fn collect(&mut self, gpu: &Gpu, record: Duration, wait: Duration) -> Result<()> {
        self.fresh = true;
        let n = self.pending.len();
        let data = read_back(gpu, &self.read, n as u64 * 8).await?;
        let ticks: Vec<u64> = data
            .chunks_exact(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        // A dispatch's time runs from the previous mark; the gaps between command buffers
        // (the GPU waiting for the host's next submission) are counted apart.
        for i in 1..n {
            let ns = ticks[i].saturating_sub(ticks[i - 1]) as f64 * self.period_ns;
            match &self.pending[i] {
                Some(label) => {
                    let t = self.kinds.entry(label.clone()).or_default();
                    t.calls += 1;
                    t.ns += ns;
                    self.gpu_ns += ns;
                }
                None => self.gap_ns += ns,
            }
        }
        self.passes += 1;
        self.record += record;
        self.wait += wait;
        Ok(())
    }

    /// The totals per pass, slowest kind first.
    pub fn report(&self) -> String {
        let passes = self.passes.max(1) as f64;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} passes; per pass: GPU {:.1} us busy + {:.1} us between command buffers, host recording + submit {:.1} us, host waiting {:.1} us",
            self.passes,
            self.gpu_ns / passes / 1e3,
            self.gap_ns / passes / 1e3,
            self.record.as_secs_f64() * 1e6 / passes,
            self.wait.as_secs_f64() * 1e6 / passes,
        );
        let mut kinds: Vec<_> = self.kinds.iter().collect();
        kinds.sort_by(|a, b| b.1.ns.total_cmp(&a.1.ns));
        for (label, t) in kinds {
            let _ = writeln!(
                out,
                "  {label:<28} {:>6.1} dispatches {:>9.1} us {:>5.1}%",
                t.calls as f64 / passes,
                t.ns / passes / 1e3,
                100.0 * t.ns / self.gpu_ns.max(1.0)
            );
        }
        out
    }
}
