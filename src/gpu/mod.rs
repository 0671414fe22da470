//! The GPU backend (wgpu: WebGPU in the browser, Vulkan/Metal/DX12 natively): the whole forward
//! pass in WGSL compute shaders, weights uploaded once in their quantized form.
//!
//! Numerics follow the CPU path on purpose: activations are quantized per matmul exactly as
//! `kernels` quantizes them (Q8_0 / Q8_1 / Q8_K) and weights are dotted in integers
//! (`dot4I8Packed`), RoPE angles come from the same f64 tables, so GPU and CPU logits differ only
//! in float summation order. That is what lets the tests demand near-identical top-1 tokens.
//!
//! - `shaders/`: one WGSL file per operation; `types/*.wgsl` decode each quant type into units
//!   of 32 weights and are prepended to the matmul and embedding shaders.
//! - [`weights`]: upload, padding blocks to whole words, splitting within binding limits.
//! - [`shader`]: each shader's interface on the host: its `Params` uniform as a struct, its
//!   binding slots by name, its modes as enums.
//! - [`dispatch`]: `Builder`, which makes one prepared dispatch (pipeline, bind group, workgroup
//!   count rule) per operation from typed arguments.
//! - [`model`]: the forward pass of every family from a [`crate::model::Plan`],
//!   its buffers, KV cache and the top-k selection that keeps readbacks small.
//! - `backend`: [`GpuBackend`], the [`crate::forward::Backend`] over a [`GpuModel`].
//! - [`probe`]: one kernel at a time on host data, for the tests.

mod backend;
pub(crate) mod dispatch;
pub mod model;
pub mod probe;
pub mod profile;
pub mod shader;
pub mod weights;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::error::{Error, Result};
use crate::gguf::QType;

pub use backend::GpuBackend;
pub use model::GpuModel;

/// What the device is, for `info()` and the CLI.
#[derive(Clone, Debug, serde::Serialize)]
pub struct GpuInfo {
    pub name: String,
    pub backend: String,
    pub device_type: String,
    /// Largest storage buffer one binding may cover (weights are split to fit).
    pub max_binding: u64,
    /// The device has `shader-f16` and wick uses it: the KV cache is stored in f16 (attention
    /// still computes in f32). Otherwise the cache is f32.
    pub f16: bool,
}

impl std::fmt::Display for GpuInfo {
    /// "name (backend), f16 KV cache", as the CLI prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kv = if self.f16 { "f16" } else { "f32" };
        write!(f, "{} ({}), {kv} KV cache", self.name, self.backend)
    }
}

/// Choices made when the device is requested.
#[derive(Clone, Copy, Debug)]
pub struct GpuOptions {
    /// Use f16 where the device has `shader-f16` (the default); false keeps everything in f32.
    pub f16: bool,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self { f16: true }
    }
}

/// A device and queue with wick's compute pipelines, built as first needed.
pub struct Gpu {
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub info: GpuInfo,
    pipelines: Mutex<HashMap<String, wgpu::ComputePipeline>>,
    /// The first error the device reported on its own (a lost device, a validation or
    /// out-of-memory error): wgpu's default would panic, which in wasm kills the engine; wick
    /// turns it into `Error::Gpu` at the next readback so the caller can fall back to the CPU.
    failure: Arc<Mutex<Option<String>>>,
}

/// The quant types the GPU kernels decode (Q5_0 is rewritten as Q8_0 at upload, as on the CPU).
pub fn supports(t: QType) -> bool {
    use QType::*;
    matches!(
        t,
        F32 | F16 | BF16 | Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 | Q2K | Q3K | Q4K | Q5K | Q6K
    )
}

/// Float weights: multiplied with the f32 activations as they are (matmul_float.wgsl), where
/// the quantized types dot integers against quantized activations.
pub(crate) fn is_float(t: QType) -> bool {
    matches!(t, QType::F32 | QType::F16 | QType::BF16)
}

fn type_source(t: QType) -> String {
    use QType::*;
    const K_SCALES: &str = include_str!("shaders/types/k_scales.wgsl");
    match t {
        Q4K => format!("{K_SCALES}\n{}", include_str!("shaders/types/q4_k.wgsl")),
        Q5K => format!("{K_SCALES}\n{}", include_str!("shaders/types/q5_k.wgsl")),
        _ => type_source_one(t).into(),
    }
}

fn type_source_one(t: QType) -> &'static str {
    use QType::*;
    match t {
        Q4_0 => include_str!("shaders/types/q4_0.wgsl"),
        Q4_1 => include_str!("shaders/types/q4_1.wgsl"),
        Q5_1 => include_str!("shaders/types/q5_1.wgsl"),
        Q8_0 => include_str!("shaders/types/q8_0.wgsl"),
        Q2K => include_str!("shaders/types/q2_k.wgsl"),
        Q3K => include_str!("shaders/types/q3_k.wgsl"),
        Q6K => include_str!("shaders/types/q6_k.wgsl"),
        F32 => include_str!("shaders/types/f32.wgsl"),
        F16 => include_str!("shaders/types/f16.wgsl"),
        BF16 => include_str!("shaders/types/bf16.wgsl"),
        other => panic!("gpu: no shader for {other:?} (check gpu::supports first)"),
    }
}

/// The operations, each a WGSL module and entry point.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Op {
    Matmul(QType),
    Embed(QType),
    Quantize,
    NormQuantize,
    GatedQuantize,
    NormInto,
    Rope,
    Attention,
    AttentionCombine,
    Gated,
    Affine,
    TopK,
}

impl Op {
    /// Binding numbers of the op's parameter uniform and of the per-pass step uniform
    /// ([`shader::Step`]), as its WGSL declares them.
    pub(crate) fn uniform_slots(self) -> (u32, Option<u32>) {
        use shader::*;
        match self {
            Op::Matmul(_) => (matmul::PARAMS, Some(matmul::STEP)),
            Op::Attention | Op::AttentionCombine => (attention::PARAMS, Some(attention::STEP)),
            Op::Embed(_) => (embed::PARAMS, Some(embed::STEP)),
            Op::Quantize | Op::NormQuantize | Op::GatedQuantize => {
                (quantize::PARAMS, Some(quantize::STEP))
            }
            Op::NormInto => (norm::PARAMS, Some(norm::STEP)),
            Op::Rope => (rope::PARAMS, Some(rope::STEP)),
            Op::Gated => (gated::PARAMS, Some(gated::STEP)),
            Op::Affine => (affine::PARAMS, Some(affine::STEP)),
            Op::TopK => (topk::PARAMS, None),
        }
    }

    fn source(self) -> (String, &'static str) {
        const COMMON: &str = include_str!("shaders/common.wgsl");
        const MATMUL: &str = include_str!("shaders/matmul_common.wgsl");
        const EMBED: &str = include_str!("shaders/embed.wgsl");
        const REDUCE: &str = include_str!("shaders/reduce.wgsl");
        const QUANTIZE: &str = include_str!("shaders/quantize.wgsl");
        const ACTIVATION: &str = include_str!("shaders/activation.wgsl");
        const ATTENTION: &str = include_str!("shaders/attention.wgsl");
        match self {
            Op::Matmul(t) if is_float(t) => (
                format!(
                    "{}\n{MATMUL}\n{}",
                    type_source(t),
                    include_str!("shaders/matmul_float.wgsl")
                ),
                "main",
            ),
            Op::Embed(t) if is_float(t) => (format!("{}\n{EMBED}", type_source(t)), "main"),
            Op::Matmul(t) => (
                format!(
                    "{COMMON}\n{}\n{MATMUL}\n{}",
                    type_source(t),
                    include_str!("shaders/matmul.wgsl")
                ),
                "main",
            ),
            Op::Embed(t) => (
                format!(
                    "{COMMON}\n{}\n{}\n{EMBED}",
                    type_source(t),
                    include_str!("shaders/types/unit_values.wgsl")
                ),
                "main",
            ),
            Op::Quantize => (format!("{REDUCE}\n{ACTIVATION}\n{QUANTIZE}"), "main"),
            Op::NormQuantize => (
                format!("{REDUCE}\n{ACTIVATION}\n{QUANTIZE}"),
                "norm_quantize",
            ),
            Op::GatedQuantize => (
                format!("{REDUCE}\n{ACTIVATION}\n{QUANTIZE}"),
                "gated_quantize",
            ),
            Op::NormInto => (
                format!("{REDUCE}\n{}", include_str!("shaders/norm.wgsl")),
                "into",
            ),
            Op::Rope => (
                format!("{REDUCE}\n{}", include_str!("shaders/rope.wgsl")),
                "main",
            ),
            Op::Attention => (format!("{REDUCE}\n{ATTENTION}"), "partial"),
            Op::AttentionCombine => (format!("{REDUCE}\n{ATTENTION}"), "combine"),
            Op::Gated => (
                format!("{ACTIVATION}\n{}", include_str!("shaders/gated.wgsl")),
                "main",
            ),
            Op::Affine => (include_str!("shaders/affine.wgsl").into(), "main"),
            Op::TopK => (include_str!("shaders/topk.wgsl").into(), "main"),
        }
    }
}

/// Limits wick asks for beyond WebGPU's defaults: the largest bindings and buffers the adapter
/// allows (big embedding tables), everything else default.
fn wanted_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        max_storage_buffers_per_shader_stage: adapter.max_storage_buffers_per_shader_stage.min(8),
        ..wgpu::Limits::downlevel_defaults()
    }
}

impl Gpu {
    /// An `Error::Gpu` for a failed operation, naming the device's own failure (a lost device)
    /// first when it reported one: that is the cause, the failed operation only its symptom.
    fn error(&self, symptom: String) -> Error {
        match self.failure.lock().unwrap().clone() {
            Some(cause) => Error::Gpu(format!("{cause} ({symptom})")),
            None => Error::Gpu(symptom),
        }
    }

    /// The default adapter (high performance preferred) with the default options, or
    /// `GpuUnavailable` saying why not.
    pub async fn new() -> Result<Self> {
        Self::open(GpuOptions::default()).await
    }

    /// [`Gpu::new`] with `options`.
    pub async fn open(options: GpuOptions) -> Result<Self> {
        #[cfg(not(target_arch = "wasm32"))]
        let desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        #[cfg(target_arch = "wasm32")]
        let desc = wgpu::InstanceDescriptor {
            backends: wgpu::Backends::BROWSER_WEBGPU,
            ..wgpu::InstanceDescriptor::new_without_display_handle()
        };
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions {
                power_preference: wgpu::PowerPreference::HighPerformance,
                force_fallback_adapter: false,
                compatible_surface: None,
                ..Default::default()
            })
            .await
            .map_err(|e| Error::GpuUnavailable(format!("no GPU adapter: {e}")))?;
        let ainfo = adapter.get_info();
        let alimits = adapter.limits();
        // Kernels use 256-thread workgroups and 12 KiB of workgroup memory.
        if alimits.max_compute_invocations_per_workgroup < 256
            || alimits.max_compute_workgroup_storage_size < 16384
        {
            return Err(Error::GpuUnavailable(format!(
                "the GPU adapter `{}` allows too little per workgroup",
                ainfo.name
            )));
        }
        let limits = wanted_limits(&alimits);
        // Timestamps inside passes (native only) let `wick bench --profile` time each dispatch.
        let timing =
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_PASSES;
        let mut wanted = if cfg!(target_arch = "wasm32") {
            wgpu::Features::empty()
        } else {
            timing
        };
        if options.f16 {
            wanted |= wgpu::Features::SHADER_F16;
        }
        let features = adapter.features() & wanted;
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wick"),
                required_features: features,
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::GpuUnavailable(format!("GPU device request failed: {e}")))?;
        let failure = Arc::new(Mutex::new(None::<String>));
        let f = failure.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            f.lock().unwrap().get_or_insert_with(|| e.to_string());
        }));
        let f = failure.clone();
        device.set_device_lost_callback(move |reason, message| {
            f.lock()
                .unwrap()
                .get_or_insert_with(|| format!("the GPU device was lost ({reason:?}): {message}"));
        });
        Ok(Self {
            device,
            queue,
            failure,
            info: GpuInfo {
                name: ainfo.name,
                backend: format!("{:?}", ainfo.backend).to_lowercase(),
                device_type: format!("{:?}", ainfo.device_type),
                max_binding: limits.max_storage_buffer_binding_size as u64,
                f16: features.contains(wgpu::Features::SHADER_F16),
            },
            pipelines: Mutex::new(HashMap::new()),
        })
    }

    /// [`Gpu::new`], blocking (native only; the browser must await).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new_blocking() -> Result<Self> {
        pollster::block_on(Self::new())
    }

    /// [`Gpu::open`], blocking (native only).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open_blocking(options: GpuOptions) -> Result<Self> {
        pollster::block_on(Self::open(options))
    }

    /// Bytes per value of the KV cache: 2 in f16, 4 in f32.
    pub fn kv_size(&self) -> usize {
        if self.info.f16 {
            2
        } else {
            4
        }
    }

    /// `values` as the KV cache stores them (f16 rounds to nearest even and saturates).
    pub fn kv_bytes(&self, values: &[f32]) -> Vec<u8> {
        if self.info.f16 {
            values
                .iter()
                .flat_map(|&v| half::f16::from_f32(v.clamp(-65504.0, 65504.0)).to_le_bytes())
                .collect()
        } else {
            model::f32_bytes(values)
        }
    }

    /// The values of KV-cache bytes.
    pub fn kv_values(&self, bytes: &[u8]) -> Vec<f32> {
        if self.info.f16 {
            bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect()
        } else {
            f32s(bytes)
        }
    }

    /// WGSL declarations of the KV cache's value types (`kv`, `kv4`) and of `to_kv`, which
    /// stores a value (f16 saturates at its largest finite value: WGSL leaves an out-of-range
    /// conversion undefined, and lavapipe makes it infinite), prefixed to the shaders that
    /// touch the cache (rope, attention). f16 needs the `enable` directive first in the module.
    fn kv_prelude(&self) -> &'static str {
        if self.info.f16 {
            "enable f16;\nalias kv = f16;\nalias kv4 = vec4<f16>;\n\
             fn to_kv(x: f32) -> f16 { return f16(clamp(x, -65504.0, 65504.0)); }\n"
        } else {
            "alias kv = f32;\nalias kv4 = vec4<f32>;\nfn to_kv(x: f32) -> f32 { return x; }\n"
        }
    }

    /// The compute pipeline of `op`, compiled on first use.
    pub(crate) fn pipeline(&self, op: Op) -> wgpu::ComputePipeline {
        let key = format!("{op:?}");
        let mut cache = self.pipelines.lock().unwrap();
        if let Some(p) = cache.get(&key) {
            return p.clone();
        }
        let (mut source, entry) = op.source();
        if matches!(op, Op::Rope | Op::Attention | Op::AttentionCombine) {
            source = format!("{}{source}", self.kv_prelude());
        }
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(&key),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
        let p = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(&key),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            });
        cache.insert(key, p.clone());
        p
    }

    pub(crate) fn storage(&self, label: &str, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes.max(16).next_multiple_of(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        })
    }

    pub(crate) fn storage_init(&self, label: &str, data: &[u8]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        let mut padded;
        let contents = if data.len() % 4 != 0 || data.is_empty() {
            padded = data.to_vec();
            padded.resize(data.len().max(16).next_multiple_of(4), 0);
            &padded[..]
        } else {
            data
        };
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_DST
                    | wgpu::BufferUsages::COPY_SRC,
            })
    }

    pub(crate) fn uniform(&self, label: &str, words: &[u32]) -> wgpu::Buffer {
        use wgpu::util::DeviceExt;
        self.device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents: &words_bytes(words),
                usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            })
    }

    pub(crate) fn bind(
        &self,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[(u32, wgpu::BindingResource<'_>)],
    ) -> wgpu::BindGroup {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = buffers
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry {
                binding: *binding,
                resource: resource.clone(),
            })
            .collect();
        self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        })
    }
}

pub(crate) fn words_bytes(words: &[u32]) -> Vec<u8> {
    words.iter().flat_map(|w| w.to_le_bytes()).collect()
}

/// Reads `bytes` bytes of `staging` (a MAP_READ buffer a submitted copy filled). Natively this
/// blocks on the device; in the browser it awaits the map.
pub(crate) async fn read_back(gpu: &Gpu, staging: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>> {
    let slice = staging.slice(0..bytes);
    #[cfg(not(target_arch = "wasm32"))]
    {
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        gpu.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| gpu.error(format!("waiting for the GPU failed: {e}")))?;
        rx.recv()
            .map_err(|_| gpu.error("the GPU never answered a readback".into()))?
            .map_err(|e| gpu.error(format!("reading GPU results failed: {e}")))?;
    }
    #[cfg(target_arch = "wasm32")]
    {
        let (tx, rx) = futures_channel::oneshot::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        rx.await
            .map_err(|_| gpu.error("the GPU never answered a readback".into()))?
            .map_err(|e| gpu.error(format!("reading GPU results failed: {e}")))?;
    }
    if let Some(e) = gpu.failure.lock().unwrap().clone() {
        staging.unmap();
        return Err(Error::Gpu(e));
    }
    let out = slice
        .get_mapped_range()
        .map_err(|e| Error::Gpu(format!("reading GPU results failed: {e}")))?
        .to_vec();
    staging.unmap();
    Ok(out)
}

pub(crate) fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}
