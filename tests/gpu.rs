//! The GPU backend against the CPU path, natively on whatever Vulkan device wgpu finds (Mesa
//! lavapipe on the CPU in CI; `scripts/setup` installs it). Each WGSL kernel is held against the
//! CPU code it replaces on random inputs; the whole models are held against the CPU forward pass
//! (tests/gpu_models.rs).

use half::{bf16, f16};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wick::gguf::QType;
use wick::gpu::{probe, Gpu};
use wick::kernels;
use wick::model::blocks::{self, AttentionShape, RopeStyle, RopeTable};
use wick::model::kv_cache::KvCache;
use wick::model::plan::Activation;

fn gpu() -> Gpu {
    Gpu::new_blocking().expect("a GPU adapter (lavapipe: apt-get install mesa-vulkan-drivers)")
}

fn block(t: QType) -> (usize, usize) {
    (t.block_size(), t.type_size())
}

/// Byte offsets of the f16 scales inside a block (random bytes there could be inf/NaN).
fn scale_offsets(t: QType) -> &'static [usize] {
    use QType::*;
    match t {
        Q4_0 | Q5_0 | Q8_0 => &[0],
        Q4_1 | Q5_1 | Q4K | Q5K => &[0, 2],
        Q2K => &[80, 82],
        Q3K => &[108],
        Q6K => &[208],
        _ => &[],
    }
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
        for &at in scale_offsets(t) {
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

const TYPES: [QType; 13] = [
    QType::F32,
    QType::F16,
    QType::BF16,
    QType::Q4_0,
    QType::Q4_1,
    QType::Q5_0,
    QType::Q5_1,
    QType::Q8_0,
    QType::Q2K,
    QType::Q3K,
    QType::Q4K,
    QType::Q5K,
    QType::Q6K,
];

/// Every weight type's matmul kernel gives the CPU reference's numbers (same quantized
/// activations, integer dots; for float weights the f32 activations as they are; only the float
/// summation order differs), for decode (1 token), a partial token tile and several tiles.
#[test]
fn matmul_matches_cpu_for_every_type() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(7);
    for t in TYPES {
        let (rows, cols) = (37, 512);
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
                    "{t:?} n={n} out[{i}]: gpu {g} vs cpu {c} (scale {scale})"
                );
            }
        }
    }
}

/// Embedding rows decode to exactly the CPU's dequantized values.
#[test]
fn embedding_rows_match_cpu_dequantization() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(8);
    for t in TYPES {
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
        blocks::rms_norm(&mut want, &g, 1e-6);
        let got = pollster::block_on(probe::rms_norm(&gpu, &x, &g, 1e-6, None)).unwrap();
        close(&got, &want, 1e-5, "rms_norm");
        let residual = random(&mut rng, 3 * len);
        let added: Vec<f32> = residual.iter().zip(&want).map(|(r, y)| r + y).collect();
        let got = pollster::block_on(probe::rms_norm(&gpu, &x, &g, 1e-6, Some(&residual))).unwrap();
        close(&got, &added, 1e-5, "rms_norm add");
    }
}

#[test]
fn rope_matches_cpu_in_both_styles() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(10);
    for (style, head_dim, rot) in [
        (RopeStyle::Interleaved, 64, 64),
        (RopeStyle::Halves, 256, 256),
        (RopeStyle::Interleaved, 128, 64),
    ] {
        let (n, heads) = (5, 3);
        let x = random(&mut rng, n * heads * head_dim);
        let table = RopeTable::new(700, n, rot, 10_000.0, 1.0, None);
        let mut want = x.clone();
        table.apply(&mut want, n, head_dim, style);
        let got = pollster::block_on(probe::rope(
            &gpu, &x, n, head_dim, &table.cos, &table.sin, style,
        ))
        .unwrap();
        close(&got, &want, 1e-6, "rope");
    }
}

/// Attention over a cache with grouped KV heads, with and without a sliding window, for a
/// batch of queries after earlier positions (more keys than one 64-key chunk).
#[test]
fn attention_matches_cpu() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(11);
    for (n_head, n_kv_head, hd, window) in [(9, 3, 64, None), (4, 1, 256, Some(50))] {
        let (start, n) = (130, 7);
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
        };
        let mut cache = KvCache::new(kv_dim, &[window], total, 256);
        cache.layers[0].write(0, &k, &v);
        let mut want = vec![0f32; q.len()];
        blocks::attention(&q, &cache.layers[0], start, n, shape, &mut want);
        let got = pollster::block_on(probe::attention(
            &gpu,
            &q,
            &k,
            &v,
            start,
            n,
            n_head,
            n_kv_head,
            hd,
            window,
            shape.scale,
        ))
        .unwrap();
        close(&got, &want, 1e-5, "attention");
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
        (Activation::Silu, blocks::silu as fn(f32) -> f32),
        (Activation::GeluTanh, blocks::gelu_tanh),
    ] {
        let mut want = gate.clone();
        blocks::gated(&mut want, &up, f);
        let got = pollster::block_on(probe::gated(&gpu, &gate, &up, act)).unwrap();
        close(&got, &want, 1e-5, &format!("{act:?}"));
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
