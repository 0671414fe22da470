//! The GPU backend against the CPU path, natively on whatever Vulkan device wgpu finds (Mesa
//! lavapipe on the CPU in CI; `scripts/setup` installs it). Each WGSL kernel is held against the
//! CPU code it replaces on random inputs; the whole models are held against the CPU forward pass
//! (tests/gpu_models.rs).

use half::{bf16, f16};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wick::gguf::QType;
use wick::gpu::probe::{self, RopeCase};
use wick::gpu::shader::QuantFormat;
use wick::gpu::{Gpu, GpuOptions};
use wick::kernels;
use wick::model::kv_cache::KvCache;
use wick::model::ops::{self, AttentionShape, RopeStyle, RopeTable};
use wick::model::plan::{Activation, NormKind, RopePlan};

fn gpu() -> Gpu {
    Gpu::new_blocking().expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers)")
}

/// The default device and, where it keeps the KV cache in f16 (lavapipe does), one in f32:
/// the kernels that touch the cache are tested both ways.
fn kv_gpus() -> Vec<Gpu> {
    let gpu = gpu();
    let f16 = gpu.info.f16;
    let mut all = vec![gpu];
    if f16 {
        all.push(Gpu::open_blocking(GpuOptions { f16: false }).unwrap());
    }
    all
}

/// `v` rounded as a `gpu`'s KV cache stores it.
fn as_stored(gpu: &Gpu, v: &[f32]) -> Vec<f32> {
    gpu.kv_values(&gpu.kv_bytes(v))
}

/// The test tolerance for values that went through `gpu`'s KV cache: f16 keeps 11 bits.
fn kv_tol(gpu: &Gpu) -> f32 {
    if gpu.info.f16 {
        2e-3
    } else {
        1e-5
    }
}

fn block(t: QType) -> (usize, usize) {
    (t.block_size(), t.type_size())
}

fn random_weights(rng: &mut SmallRng, t: QType, rows: usize, cols: usize) -> Vec<u8> {
    let floats = (0..rows * cols).map(|_| rng.random_range(-1f32..1.0));
    match t {
        QType::F32 => return floats.flat_map(f32::to_le_bytes).collect(),
        QType::F16 => {
            return floats
                .flat_map(|v| f16::from_f32(v).to_le_bytes())
                .collect()
        }
        QType::BF16 => {
            return floats
                .flat_map(|v| bf16::from_f32(v).to_le_bytes())
                .collect()
        }
        _ => {}
    }
    let (values, bytes) = block(t);
    let mut w = vec![0u8; rows * cols / values * bytes];
    rng.fill(&mut w[..]);
    for b in w.chunks_exact_mut(bytes) {
        for &at in kernels::testing::scale_offsets(t) {
            let s = f16::from_f32(rng.random_range(-0.05f32..0.05));
            b[at..at + 2].copy_from_slice(&s.to_le_bytes());
        }
    }
    w
}

fn random(rng: &mut SmallRng, n: usize) -> Vec<f32> {
    (0..n)
        .map(|_| {
            if rng.random_range(0..50) == 0 {
                rng.random_range(-8f32..8.0)
            } else {
                rng.random_range(-1f32..1.0)
            }
        })
        .collect()
}

/// Every weight type's matmul kernel gives the CPU reference's numbers (same quantized
/// activations, integer dots; for float weights the f32 activations as they are; only the float
/// summation order differs), for decode (1 token), a partial token tile and several tiles; rows
/// of 896 too where the type's blocks allow (Qwen 2.5 0.5B's width: 3.5 K-quant super-blocks, so
/// its files use 32-value blocks there).
#[test]
fn matmul_matches_cpu_for_every_type() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(7);
    for (t, cols) in QType::ALL
        .into_iter()
        .filter(|&t| wick::gpu::supports(t))
        .flat_map(|t| [(t, 512), (t, 896)])
        .filter(|&(t, cols)| cols % block(t).0 == 0)
    {
        let rows = 37;
        let w = random_weights(&mut rng, t, rows, cols);
        for n in [1, 5, 19] {
            let mut x = random(&mut rng, n * cols);
            // An all-zero activation block must not produce NaN (d = 0).
            x[..32].fill(0.0);
            let mut want = vec![0f32; n * rows];
            kernels::matmul(t, &w, rows, cols, &x, n, &mut want);
            let got = pollster::block_on(probe::matmul(&gpu, t, &w, rows, cols, &x, n)).unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-3);
            for (i, (g, c)) in got.iter().zip(&want).enumerate() {
                assert!(
                    (g - c).abs() <= 2e-5 * scale,
                    "{t:?} {cols} cols n={n} out[{i}]: gpu {g} vs cpu {c} (scale {scale})"
                );
            }
        }
    }
}

/// The types with no WGSL kernel (IQ2 / IQ3, which the CPU runs) are refused at upload as
/// `Error::UnsupportedQuant` naming the type, never a crash or a wrong product (the browser's
/// worker then stays on the CPU in auto mode).
#[test]
fn types_without_a_shader_are_refused_by_name() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(9);
    let missing: Vec<QType> = QType::ALL
        .into_iter()
        .filter(|&t| !wick::gpu::supports(t))
        .collect();
    assert_eq!(
        missing,
        [
            QType::IQ2XXS,
            QType::IQ2XS,
            QType::IQ3XXS,
            QType::IQ3S,
            QType::IQ2S
        ]
    );
    for t in missing {
        let w = random_weights(&mut rng, t, 4, 256);
        let x = random(&mut rng, 256);
        let err = pollster::block_on(probe::matmul(&gpu, t, &w, 4, 256, &x, 1)).unwrap_err();
        assert!(
            matches!(err, wick::Error::UnsupportedQuant { .. }),
            "{t:?}: {err}"
        );
        let name = wick::gguf::qtype_name(t);
        assert!(err.to_string().contains(name), "{t:?}: {err}");
    }
}

/// Embedding rows decode to exactly the CPU's dequantized values.
#[test]
fn embedding_rows_match_cpu_dequantization() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(8);
    for t in QType::ALL.into_iter().filter(|&t| wick::gpu::supports(t)) {
        let (rows, cols) = (9, 512);
        let w = random_weights(&mut rng, t, rows, cols);
        let ids = [3u32, 0, 8, 3];
        let got = pollster::block_on(probe::embed(&gpu, t, &w, rows, cols, &ids, 2.5)).unwrap();
        let row_bytes = cols / t.block_size() * t.type_size();
        for (i, &id) in ids.iter().enumerate() {
            let mut want = vec![0f32; cols];
            let r = id as usize;
            kernels::dequantize_row(t, &w[r * row_bytes..(r + 1) * row_bytes], &mut want);
            for (j, c) in want.iter().enumerate() {
                let g = got[i * cols + j];
                let c = c * 2.5;
                assert!(
                    (g - c).abs() <= 1e-6 * c.abs().max(1e-3),
                    "{t:?} row {id} [{j}]: gpu {g} vs cpu {c}"
                );
            }
        }
    }
}

#[test]
fn rms_norm_matches_cpu_and_adds_into_the_residual() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(9);
    for len in [64, 576, 640] {
        let x = random(&mut rng, 3 * len);
        let g = random(&mut rng, len);
        let mut want = x.clone();
        ops::rms_norm(&mut want, &g, 1e-6);
        let got = pollster::block_on(probe::rms_norm(&gpu, &x, &g, 1e-6, None)).unwrap();
        close(&got, &want, 1e-5, "rms_norm");
        let residual = random(&mut rng, 3 * len);
        let added: Vec<f32> = residual.iter().zip(&want).map(|(r, y)| r + y).collect();
        let got = pollster::block_on(probe::rms_norm(&gpu, &x, &g, 1e-6, Some(&residual))).unwrap();
        close(&got, &added, 1e-5, "rms_norm add");
    }
}

/// LayerNorm (GPT-2, Falcon, StableLM...) with and without a bias, into a buffer and added to
/// the residual, as the CPU computes it (in f64 there, f32 here).
#[test]
fn layer_norm_matches_cpu_with_and_without_bias() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(19);
    for (len, biased) in [(64, true), (96, false), (640, true)] {
        // Rows off centre, so that a skipped mean shows.
        let x: Vec<f32> = random(&mut rng, 3 * len).iter().map(|v| v + 2.0).collect();
        let g = random(&mut rng, len);
        let bias = random(&mut rng, len);
        let bias = biased.then_some(&bias[..]);
        let mut want = x.clone();
        ops::layer_norm(&mut want, &g, bias, 1e-5);
        let w = probe::NormWeights {
            kind: NormKind::Layer,
            g: &g,
            bias,
            eps: 1e-5,
        };
        let got = pollster::block_on(probe::norm(&gpu, &x, w, None)).unwrap();
        close(
            &got,
            &want,
            1e-5,
            &format!("layer_norm {len}, bias {biased}"),
        );
        let residual = random(&mut rng, 3 * len);
        let added: Vec<f32> = residual.iter().zip(&want).map(|(r, y)| r + y).collect();
        let got = pollster::block_on(probe::norm(&gpu, &x, w, Some(&residual))).unwrap();
        close(&got, &added, 1e-5, &format!("layer_norm {len} add"));
    }
}

/// The fused norm-and-quantize dispatch writes exactly what a norm then a quantize write, in
/// each activation format, for a decode row and a batch.
#[test]
fn fused_norm_quantize_matches_norm_then_quantize() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(13);
    for (len, n) in [(576, 1), (640, 3), (1536, 2), (2048, 5)] {
        let x = random(&mut rng, n * len);
        let g = random(&mut rng, len);
        for mode in [QuantFormat::Q8_0, QuantFormat::Q8_1, QuantFormat::Q8K] {
            if mode == QuantFormat::Q8K && len % 256 != 0 {
                continue;
            }
            let run = |fused| {
                pollster::block_on(probe::norm_quantize(&gpu, &x, &g, 1e-6, mode, fused)).unwrap()
            };
            let (want, got) = (run(false), run(true));
            assert_eq!(got.0, want.0, "{len} x {n}, {mode:?}: normed rows");
            assert_eq!(got.1, want.1, "{len} x {n}, {mode:?}: xq");
            assert_eq!(got.2, want.2, "{len} x {n}, {mode:?}: xm");
            assert!(
                got.1.iter().any(|&b| b != 0),
                "{len} x {n}, {mode:?}: xq empty"
            );
        }
    }
    // LayerNorm with a bias (the LayerNorm families' pre-norms) fuses the same way.
    let (len, n) = (640, 3);
    let x = random(&mut rng, n * len);
    let (g, bias) = (random(&mut rng, len), random(&mut rng, len));
    let w = probe::NormWeights {
        kind: NormKind::Layer,
        g: &g,
        bias: Some(&bias),
        eps: 1e-5,
    };
    let mode = QuantFormat::Q8_0;
    let run =
        |fused| pollster::block_on(probe::norm_quantize_with(&gpu, &x, w, mode, fused)).unwrap();
    let (want, got) = (run(false), run(true));
    assert_eq!(got, want, "LayerNorm {len} x {n}");
    let mut normed = x.clone();
    ops::layer_norm(&mut normed, &g, Some(&bias), 1e-5);
    close(&got.0, &normed, 1e-5, "fused LayerNorm");
}

#[test]
fn rope_matches_cpu_in_both_styles() {
    for gpu in kv_gpus() {
        rope_matches_cpu_on(&gpu);
    }
}

fn rope_matches_cpu_on(gpu: &Gpu) {
    let mut rng = SmallRng::seed_from_u64(10);
    for (style, head_dim, rot, normed, biased) in [
        (RopeStyle::Interleaved, 64, 64, false, false),
        (RopeStyle::Halves, 256, 256, true, false),
        (RopeStyle::Interleaved, 128, 64, false, false),
        (RopeStyle::Halves, 128, 64, true, false),
        (RopeStyle::Halves, 64, 64, false, true),
    ] {
        let (n, start, n_head, n_kv_head) = (5, 3, 3, 1);
        let (q_dim, kv_dim) = (n_head * head_dim, n_kv_head * head_dim);
        let mut qkv = random(&mut rng, n * (q_dim + 2 * kv_dim));
        // A value past f16's range: an f16 cache saturates it (WGSL leaves it undefined).
        qkv[q_dim + kv_dim] = 1.0e6;
        let k = random(&mut rng, (start + n + 2) * kv_dim);
        let v = random(&mut rng, (start + n + 2) * kv_dim);
        let (qn, kn) = (random(&mut rng, head_dim), random(&mut rng, head_dim));
        let bias = random(&mut rng, q_dim + 2 * kv_dim);
        let table = RopeTable::new(700, n, &RopePlan::plain(rot, 10_000.0, 4096), 4096);
        let (mut want_q, mut want_k, mut want_v) = (Vec::new(), k.clone(), v.clone());
        for (t, row) in qkv.chunks_exact(q_dim + 2 * kv_dim).enumerate() {
            let mut row = row.to_vec();
            if biased {
                ops::add_rows(&mut row, &bias);
            }
            want_q.extend_from_slice(&row[..q_dim]);
            let at = (start + t) * kv_dim;
            want_k[at..at + kv_dim].copy_from_slice(&row[q_dim..q_dim + kv_dim]);
            want_v[at..at + kv_dim].copy_from_slice(&row[q_dim + kv_dim..]);
        }
        let new_keys = start * kv_dim..(start + n) * kv_dim;
        if normed {
            ops::rms_norm(&mut want_q, &qn, 1e-6);
            ops::rms_norm(&mut want_k[new_keys.clone()], &kn, 1e-6);
        }
        table.apply(&mut want_q, n, head_dim, style);
        table.apply(&mut want_k[new_keys], n, head_dim, style);
        let norms = normed.then_some((&qn[..], &kn[..], 1e-6));
        let case = RopeCase {
            qkv: &qkv,
            k: &k,
            v: &v,
            n,
            start,
            heads: (n_head, n_kv_head, head_dim),
            cos: &table.cos,
            sin: &table.sin,
            style,
            norms,
            bias: biased.then_some(&bias[..]),
        };
        let [got_q, got_k, got_v] = pollster::block_on(probe::rope(gpu, &case)).unwrap();
        let what = format!(
            "rope {style:?} {head_dim} rotating {rot}, normed {normed}, biased {biased}, f16 {}",
            gpu.info.f16
        );
        close(&got_q, &want_q, 1e-5, &format!("{what}: q"));
        // The cache holds the keys and values as it stores them (f16 or f32).
        close(
            &got_k,
            &as_stored(gpu, &want_k),
            kv_tol(gpu),
            &format!("{what}: k"),
        );
        close(
            &got_v,
            &as_stored(gpu, &want_v),
            kv_tol(gpu),
            &format!("{what}: v"),
        );
    }
}

/// Attention over a cache with grouped KV heads, with and without a sliding window, for a
/// batch of queries and for decoding queries at positions whose key chunks are 16, 32, 64 and
/// 128 keys long (four, two and one threads per key; a chunk of two 64-key steps).
/// With an f16 cache the CPU attends over the keys and values rounded as the GPU stores them;
/// the arithmetic is f32 on both.
#[test]
fn attention_matches_cpu() {
    for gpu in kv_gpus() {
        attention_matches_cpu_on(&gpu);
    }
}

fn attention_matches_cpu_on(gpu: &Gpu) {
    let mut rng = SmallRng::seed_from_u64(11);
    // Gemma 2's soft-capped scores (with a window, as on its local layers) and MPT's ALiBi over
    // a head count that is not a power of two (both of ops::alibi_slope's slope series).
    for (n_head, n_kv_head, hd, window, softcap, alibi) in [
        (9, 3, 64, None, None, None),
        (4, 1, 256, Some(50), None, None),
        (4, 2, 64, Some(50), Some(2.0), None),
        (6, 6, 16, None, None, Some(8.0)),
    ] {
        for (start, n) in [(130, 7), (700, 1), (1400, 1), (3000, 1), (5000, 1)] {
            let kv_dim = n_kv_head * hd;
            let total = start + n;
            let k = random(&mut rng, total * kv_dim);
            let v = random(&mut rng, total * kv_dim);
            let q = random(&mut rng, n * n_head * hd);
            let shape = AttentionShape {
                n_head,
                n_kv_head,
                head_dim: hd,
                scale: 1.0 / (hd as f32).sqrt(),
                window,
                softcap,
                alibi_max_bias: alibi,
            };
            let mut cache = KvCache::new(kv_dim, &[window], total, 256);
            cache.layers[0].write(0, &as_stored(gpu, &k), &as_stored(gpu, &v));
            let mut want = vec![0f32; q.len()];
            ops::attention(&q, &cache.layers[0], start, n, shape, &mut want);
            let got =
                pollster::block_on(probe::attention(gpu, &q, &k, &v, start, n, shape)).unwrap();
            close(
                &got,
                &want,
                1e-5,
                &format!(
                    "attention {n_head}x{hd} window {window:?} softcap {softcap:?} alibi {alibi:?}, {n} at {start}, f16 {}",
                    gpu.info.f16
                ),
            );
        }
    }
}

#[test]
fn gated_activations_match_cpu() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(12);
    let mut gate = random(&mut rng, 4096);
    gate[..4].copy_from_slice(&[60.0, -60.0, 0.0, -1e-3]);
    let up = random(&mut rng, 4096);
    for (act, f) in [
        (Activation::Silu, ops::silu as fn(f32) -> f32),
        (Activation::GeluTanh, ops::gelu_tanh),
    ] {
        let mut want = gate.clone();
        ops::gated(&mut want, &up, f);
        let got = pollster::block_on(probe::gated(&gpu, &gate, &up, act)).unwrap();
        close(&got, &want, 1e-5, &format!("{act:?}"));
    }
}

/// The fused activation-and-quantize dispatch writes exactly what the activation then a
/// quantize write, for both activations and each activation format.
#[test]
fn fused_gated_quantize_matches_gated_then_quantize() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(14);
    for len in [1536, 2048] {
        let gate = random(&mut rng, len);
        let up = random(&mut rng, len);
        for act in [Activation::Silu, Activation::GeluTanh] {
            for mode in [QuantFormat::Q8_0, QuantFormat::Q8_1, QuantFormat::Q8K] {
                let run = |fused| {
                    pollster::block_on(probe::gated_quantize(&gpu, &gate, &up, act, mode, fused))
                        .unwrap()
                };
                let (want, got) = (run(false), run(true));
                let what = format!("{len}, {act:?}, {mode:?}");
                assert_eq!(got.0, want.0, "{what}: products");
                assert_eq!(got.1, want.1, "{what}: xq");
                assert_eq!(got.2, want.2, "{what}: xm");
                assert!(got.1.iter().any(|&b| b != 0), "{what}: xq empty");
            }
        }
    }
}

/// The 64 best of a vocabulary-sized row, best first, ties to the lower id, NaN never chosen;
/// for sizes that need one, two and three rounds.
#[test]
fn top_k_selects_the_best_64_in_order() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(13);
    for len in [100, 49_152, 262_144] {
        let mut vals: Vec<f32> = (0..len).map(|_| rng.random_range(-20f32..20.0)).collect();
        // Ties at the top and a NaN.
        vals[len / 2] = 50.0;
        vals[len / 3] = 50.0;
        vals[1] = f32::NAN;
        let got = pollster::block_on(probe::top_k(&gpu, &vals)).unwrap();
        let mut want: Vec<(u32, f32)> = vals
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            .map(|(i, &v)| (i as u32, v))
            .collect();
        want.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        want.truncate(64);
        assert_eq!(got, want, "top-k of {len}");
    }
}

fn close(got: &[f32], want: &[f32], tol: f32, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}[{i}]: gpu {g} vs cpu {w}"
        );
    }
}

/// quantize.wgsl's `div_rn` and `through_f16` round bit for bit as the CPU does (on an H100,
/// `/` was 1 ulp off for about a quarter of such quotients and the f16 round trip was folded
/// away). Lavapipe's `/` is exact, so the candidate search is also run from quotients moved 1 to
/// 3 ulp off, as a GPU's 2.5-ulp division may leave them.
#[test]
fn quantize_divides_and_rounds_to_f16_like_the_cpu() {
    const PROBE: &str = "
@group(0) @binding(5) var<storage, read> cases: array<vec4<u32>>;
@group(0) @binding(6) var<storage, read_write> results: array<vec2<u32>>;
@compute @workgroup_size(64)
fn probe(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if (i < arrayLength(&results)) {
        let c = cases[i];
        let a = bitcast<f32>(c.x);
        let b = bitcast<f32>(c.y);
        let q = select(div_rn(a, b), div_rn_near(a, b, bitcast<f32>(c.z)), c.w == 1u);
        results[i] = vec2(bitcast<u32>(q), bitcast<u32>(through_f16(a)));
    }
}";
    let mut rng = SmallRng::seed_from_u64(14);
    let float = |rng: &mut SmallRng, exps: std::ops::RangeInclusive<u32>| {
        let sign = rng.random_range(0..2u32) << 31;
        f32::from_bits(sign | rng.random_range(exps) << 23 | rng.random_range(0..1u32 << 23))
    };
    let mut pairs: Vec<(f32, f32)> = Vec::new();
    for _ in 0..20_000 {
        let b = float(&mut rng, 1..=252);
        pairs.push((1.0, b));
        pairs.push((127.0, b));
        pairs.push((-127.0, b));
        pairs.push((b, 127.0));
        pairs.push((float(&mut rng, 1..=254), b));
        pairs.push((float(&mut rng, 100..=154), float(&mut rng, 100..=154)));
    }
    // Mantissas at the ends of their binade, for quotients by powers of two and next to them.
    let edges = [
        0, 1, 2, 3, 0x3f_ffff, 0x40_0000, 0x40_0001, 0x7f_fffd, 0x7f_fffe, 0x7f_ffff,
    ];
    for ma in edges {
        for mb in edges {
            for (ea, eb) in [(127, 127), (120, 130), (140, 127)] {
                pairs.push((f32::from_bits(ea << 23 | ma), f32::from_bits(eb << 23 | mb)));
            }
        }
    }
    for i in 1..2000 {
        pairs.push((127.0, i as f32 / 64.0));
        pairs.push((i as f32 / 64.0, 127.0));
    }
    // Halfway between neighbouring f16s (subnormal ones too), and next to the largest.
    for h in (0..0x7bffu16).step_by(3) {
        let (lo, hi) = (f16::from_bits(h).to_f32(), f16::from_bits(h + 1).to_f32());
        pairs.push(((lo + hi) / 2.0, 1.0));
    }
    for v in [65504.0, 65519.0, 65520.0, 65536.0, 3e-8, 6e-8] {
        pairs.push((v, 1.0));
        pairs.push((-v, 1.0));
    }
    pairs.push((0.0, 3.0));
    pairs.push((-0.0, 3.0));
    // (a, b, q0, whether q0 is given) and the quotient and f16(a) wanted.
    let mut cases: Vec<[u32; 4]> = Vec::new();
    let mut want: Vec<[u32; 2]> = Vec::new();
    let f16_bits = |a: f32| f16::from_f32(a).to_f32().to_bits();
    for &(a, b) in &pairs {
        let q = a / b;
        if q != 0.0 && !q.is_normal() {
            continue; // lavapipe may flush a subnormal quotient
        }
        cases.push([a.to_bits(), b.to_bits(), 0, 0]);
        want.push([q.to_bits(), f16_bits(a)]);
        let (a, b, q) = (a.abs(), b.abs(), q.abs());
        if (0x0080_0006..=0x7f7f_fff9).contains(&q.to_bits()) {
            for k in -3i32..=3 {
                let q0 = q.to_bits().wrapping_add_signed(k);
                cases.push([a.to_bits(), b.to_bits(), q0, 1]);
                want.push([q.to_bits(), f16_bits(a)]);
            }
        }
    }

    use wgpu::util::DeviceExt;
    let gpu = gpu();
    let dev = &gpu.device;
    let source = format!(
        "{}\n{}\n{}\n{PROBE}",
        include_str!("../src/gpu/shaders/reduce.wgsl"),
        include_str!("../src/gpu/shaders/activation.wgsl"),
        include_str!("../src/gpu/shaders/quantize.wgsl")
    );
    let module = dev.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("quantize probe"),
        source: wgpu::ShaderSource::Wgsl(source.into()),
    });
    let pipeline = dev.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("quantize probe"),
        layout: None,
        module: &module,
        entry_point: Some("probe"),
        compilation_options: Default::default(),
        cache: None,
    });
    let bytes = (want.len() * 8) as u64;
    let input = dev.create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("cases"),
        contents: &cases
            .iter()
            .flatten()
            .flat_map(|w| w.to_le_bytes())
            .collect::<Vec<u8>>(),
        usage: wgpu::BufferUsages::STORAGE,
    });
    let output = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("results"),
        size: bytes,
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    let staging = dev.create_buffer(&wgpu::BufferDescriptor {
        label: Some("staging"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let bind = dev.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[
            wgpu::BindGroupEntry {
                binding: 5,
                resource: input.as_entire_binding(),
            },
            wgpu::BindGroupEntry {
                binding: 6,
                resource: output.as_entire_binding(),
            },
        ],
    });
    let mut enc = dev.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: None });
    {
        let mut pass = enc.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &bind, &[]);
        pass.dispatch_workgroups(want.len().div_ceil(64) as u32, 1, 1);
    }
    enc.copy_buffer_to_buffer(&output, 0, &staging, 0, bytes);
    gpu.queue.submit([enc.finish()]);
    staging
        .slice(..)
        .map_async(wgpu::MapMode::Read, |r| r.unwrap());
    dev.poll(wgpu::PollType::wait_indefinitely()).unwrap();
    let got: Vec<[u32; 2]> = staging
        .slice(..)
        .get_mapped_range()
        .unwrap()
        .chunks_exact(8)
        .map(|b| [0, 4].map(|o| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])))
        .collect();
    let wrong: Vec<usize> = (0..want.len()).filter(|&i| got[i] != want[i]).collect();
    let shown: Vec<String> = wrong
        .iter()
        .take(10)
        .map(|&i| {
            let [a, b, q0, given] = cases[i];
            let [a, b, q0] = [a, b, q0].map(f32::from_bits);
            let [g, w] = [got[i], want[i]].map(|r| r.map(f32::from_bits));
            let from = if given == 1 {
                format!(" from {q0:e}")
            } else {
                String::new()
            };
            format!(
                "{a:e} / {b:e}{from}: gpu {:e} vs cpu {:e}; f16({a:e}): gpu {:e} vs cpu {:e}",
                g[0], w[0], g[1], w[1]
            )
        })
        .collect();
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        want.len(),
        shown.join("\n")
    );
}
