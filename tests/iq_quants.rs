//! The IQ2 / IQ3 quantizations against independent truths:
//! - wick's lookup tables (`src/kernels/iq_grids.rs`, copied from llama.cpp's C) against the
//!   copies in the `gguf` PyPI package (gguf-py's `quants.py`, packed hex decoded by its own
//!   `init_grid`), recorded in tests/fixtures/tiny/gguf-py/iq_grids.json by
//!   scripts/tiny_models.py;
//! - wick's reference dequantization of blocks that llama.cpp's own quantizer wrote (the tiny
//!   `qwen2_wide_iq*` models, with an importance matrix) against gguf-py's numpy dequantizers,
//!   bit for bit: every value of every tensor (through a hash of the f32 bit patterns, the
//!   first row value by value so that a failure shows where), recorded in
//!   tests/fixtures/tiny/gguf-py/<fixture>.json.
//!
//! The kernels (every instruction set) are held against this dequantization by tests/kernels.rs,
//! and the whole models against llama.cpp's logits by tests/architectures.rs. These run under
//! wasm32 too (scripts/test).

mod common;

use common::*;
use wick::gguf::{qtype_name, QType};
use wick::kernels::{self, testing};

/// The IQ types and their fixtures (rows of 256: whole super-blocks).
const FIXTURES: [(QType, &str); 5] = [
    (QType::IQ2XXS, "qwen2_wide_iq2_xxs"),
    (QType::IQ2XS, "qwen2_wide_iq2_xs"),
    (QType::IQ2S, "qwen2_wide_iq2_s"),
    (QType::IQ3XXS, "qwen2_wide_iq3_xxs"),
    (QType::IQ3S, "qwen2_wide_iq3_s"),
];

/// FNV-1a over f32 bit patterns, one 32-bit word at a time, as scripts/tiny_models.py's `fnv64`.
fn fnv64(values: &[f32]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for v in values {
        h = (h ^ v.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn hex_entries(fx: &serde_json::Value, key: &str) -> Vec<u64> {
    fx[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| u64::from_str_radix(v.as_str().unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn grids_and_signs_match_gguf_py() {
    let fx = fixture("tiny", "gguf-py/iq_grids.json");
    let signs: Vec<u8> = fx["ksigns_iq2xs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as u8)
        .collect();
    assert_eq!(signs, testing::KSIGNS_IQ2XS);
    // And by its definition: the 7 index bits, then a parity bit making the minus signs even.
    for (i, &s) in testing::KSIGNS_IQ2XS.iter().enumerate() {
        assert_eq!(s & 127, i as u8);
        assert_eq!(s.count_ones() % 2, 0, "ksigns[{i}] = {s:#x}");
    }
    let wide = |g: &[u32]| g.iter().map(|&v| v as u64).collect::<Vec<_>>();
    for (key, ours) in [
        ("iq2xxs_grid", testing::IQ2XXS_GRID.to_vec()),
        ("iq2xs_grid", testing::IQ2XS_GRID.to_vec()),
        ("iq2s_grid", testing::IQ2S_GRID.to_vec()),
        ("iq3xxs_grid", wide(&testing::IQ3XXS_GRID)),
        ("iq3s_grid", wide(&testing::IQ3S_GRID)),
    ] {
        let theirs = hex_entries(&fx, key);
        assert_eq!(ours.len(), theirs.len(), "{key} entries");
        for (i, (a, b)) in ours.iter().zip(&theirs).enumerate() {
            assert_eq!(a, b, "{key}[{i}]: wick {a:#x}, gguf-py {b:#x}");
        }
    }
}

#[test]
fn dequantization_matches_gguf_py_bit_for_bit() {
    for (t, name) in FIXTURES {
        let fx = fixture("tiny", &format!("gguf-py/{name}.json"));
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tiny")
            .join(format!("{name}.gguf"));
        let gguf = open_bytes(std::fs::read(&path).unwrap()).unwrap();
        let tensors = fx["tensors"].as_object().unwrap();
        assert!(tensors.len() >= 7, "{name}: {} tensors", tensors.len());
        for (tname, want) in tensors {
            assert_eq!(want["type"], qtype_name(t), "{name} {tname}");
            let tensor = gguf
                .tensor(tname)
                .unwrap_or_else(|| panic!("{name}: {tname}"));
            assert_eq!(tensor.qtype, t, "{name} {tname}");
            let cols = *tensor.shape.last().unwrap();
            let rb = testing::row_bytes(t, cols);
            let mut got = vec![0f32; tensor.elem_count()];
            for (row, out) in tensor.data.chunks_exact(rb).zip(got.chunks_exact_mut(cols)) {
                kernels::dequantize_row(t, row, out);
            }
            let row0: Vec<f32> = want["row0"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            for (i, (a, b)) in got.iter().zip(&row0).enumerate() {
                assert_eq!(
                    a.to_bits(),
                    b.to_bits(),
                    "{name} {tname} value {i}: wick {a}, gguf-py {b}"
                );
            }
            assert_eq!(
                fnv64(&got),
                want["fnv64"].as_str().unwrap(),
                "{name} {tname}: the values past the first row differ from gguf-py's"
            );
        }
    }
}
