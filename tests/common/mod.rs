//! Shared test helpers: paths of the real models, and tiny GGUF files written on the fly.
#![allow(dead_code)]

use std::io::Cursor;
use std::path::PathBuf;
use std::sync::Arc;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

pub const SMOLLM2: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";
pub const GEMMA3: &str = "gemma-3-270m-q4_k_m.gguf";

/// A real model from models/ (fetched by scripts/setup). Tests need them: a missing model is a
/// setup failure, not a reason to skip.
pub fn model_path(file: &str) -> PathBuf {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(file);
    assert!(
        p.exists(),
        "{} is missing: run ./scripts/setup (it fetches the models)",
        p.display()
    );
    p
}

pub fn fixture(model_key: &str, name: &str) -> serde_json::Value {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(model_key)
        .join(name);
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap()
}

/// GPT-2's byte-to-unicode alphabet: one printable char per byte.
fn byte_chars() -> Vec<char> {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32)
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut chars = vec!['\0'; 256];
    for &b in &printable {
        chars[b as usize] = char::from_u32(b).unwrap();
    }
    let mut n = 0;
    for b in 0..256u32 {
        if !printable.contains(&b) {
            chars[b as usize] = char::from_u32(256 + n).unwrap();
            n += 1;
        }
    }
    printable.clear();
    chars
}

/// Hyperparameters of a tiny random llama-architecture model.
pub struct Tiny {
    pub arch: &'static str,
    pub n_embd: usize,
    pub n_layer: usize,
    pub n_head: usize,
    pub n_kv_head: usize,
    pub n_ff: usize,
    pub dtype: GgmlDType,
}

impl Default for Tiny {
    fn default() -> Self {
        Self {
            arch: "llama",
            n_embd: 64,
            n_layer: 2,
            n_head: 4,
            n_kv_head: 2,
            n_ff: 128,
            dtype: GgmlDType::Q8_0,
        }
    }
}

pub type Meta = Vec<(String, Value)>;

impl Tiny {
    /// Metadata and tensors of a tiny model with a byte-level GPT-2 vocabulary (256 bytes +
    /// `<|endoftext|>`, no merges) and random weights.
    pub fn parts(&self) -> (Meta, Vec<(String, QTensor)>) {
        let a = self.arch;
        let mut tokens: Vec<Value> = byte_chars()
            .into_iter()
            .map(|c| Value::String(c.to_string()))
            .collect();
        tokens.push(Value::String("<|endoftext|>".into()));
        let vocab = tokens.len();
        let mut types = vec![Value::I32(1); 256];
        types.push(Value::I32(3));
        let meta: Meta = vec![
            ("general.architecture".into(), Value::String(a.into())),
            (
                "general.name".into(),
                Value::String("tiny test model".into()),
            ),
            (
                format!("{a}.embedding_length"),
                Value::U32(self.n_embd as u32),
            ),
            (format!("{a}.block_count"), Value::U32(self.n_layer as u32)),
            (
                format!("{a}.attention.head_count"),
                Value::U32(self.n_head as u32),
            ),
            (
                format!("{a}.attention.head_count_kv"),
                Value::U32(self.n_kv_head as u32),
            ),
            (
                format!("{a}.feed_forward_length"),
                Value::U32(self.n_ff as u32),
            ),
            (format!("{a}.context_length"), Value::U32(256)),
            (
                format!("{a}.attention.layer_norm_rms_epsilon"),
                Value::F32(1e-5),
            ),
            ("tokenizer.ggml.model".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.pre".into(), Value::String("gpt2".into())),
            ("tokenizer.ggml.tokens".into(), Value::Array(tokens)),
            ("tokenizer.ggml.token_type".into(), Value::Array(types)),
            ("tokenizer.ggml.merges".into(), Value::Array(vec![])),
            ("tokenizer.ggml.eos_token_id".into(), Value::U32(256)),
            ("tokenizer.ggml.bos_token_id".into(), Value::U32(256)),
            ("tokenizer.ggml.add_bos_token".into(), Value::Bool(false)),
        ];
        let head_dim = self.n_embd / self.n_head;
        let (q, kv) = (self.n_head * head_dim, self.n_kv_head * head_dim);
        let mut tensors = vec![
            (
                "token_embd.weight".to_string(),
                self.matrix(vocab, self.n_embd, 1),
            ),
            ("output_norm.weight".to_string(), ones(self.n_embd)),
        ];
        for l in 0..self.n_layer {
            let s = 100 + l as u64 * 10;
            for (name, t) in [
                ("attn_norm.weight", ones(self.n_embd)),
                ("ffn_norm.weight", ones(self.n_embd)),
                ("attn_q.weight", self.matrix(q, self.n_embd, s)),
                ("attn_k.weight", self.matrix(kv, self.n_embd, s + 1)),
                ("attn_v.weight", self.matrix(kv, self.n_embd, s + 2)),
                ("attn_output.weight", self.matrix(self.n_embd, q, s + 3)),
                (
                    "ffn_gate.weight",
                    self.matrix(self.n_ff, self.n_embd, s + 4),
                ),
                ("ffn_up.weight", self.matrix(self.n_ff, self.n_embd, s + 5)),
                (
                    "ffn_down.weight",
                    self.matrix(self.n_embd, self.n_ff, s + 6),
                ),
            ] {
                tensors.push((format!("blk.{l}.{name}"), t));
            }
        }
        (meta, tensors)
    }

    fn matrix(&self, rows: usize, cols: usize, seed: u64) -> QTensor {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let data: Vec<f32> = (0..rows * cols)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.4
            })
            .collect();
        let t = Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap();
        QTensor::quantize(&t, self.dtype).unwrap()
    }

    pub fn bytes(&self) -> Vec<u8> {
        let (meta, tensors) = self.parts();
        write_gguf(&meta, &tensors)
    }
}

fn ones(n: usize) -> QTensor {
    let t = Tensor::ones(n, candle_core::DType::F32, &Device::Cpu).unwrap();
    QTensor::quantize(&t, GgmlDType::F32).unwrap()
}

pub fn write_gguf(meta: &Meta, tensors: &[(String, QTensor)]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    let m: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    gguf_file::write(&mut out, &m, &t).unwrap();
    out.into_inner()
}

pub fn open_bytes(bytes: Vec<u8>) -> wick::Result<wick::Gguf> {
    wick::Gguf::from_bytes(Arc::new(bytes))
}

/// Replaces a metadata value (or adds it).
pub fn set(meta: &mut Meta, key: &str, v: Value) {
    match meta.iter_mut().find(|(k, _)| k == key) {
        Some(e) => e.1 = v,
        None => meta.push((key.into(), v)),
    }
}

/// A tiny random-weight model of an architecture no small real model is available for, written
/// by scripts/tiny_models.py with llama.cpp's logits for it (`tests/fixtures/tiny/<arch>.*`).
pub struct TinyModel {
    pub path: PathBuf,
    pub ids: Vec<u32>,
    /// llama.cpp's logits after each prefix of `ids`, from one batch, with an f32 KV cache.
    pub logits: Vec<Vec<f32>>,
    /// The context llama.cpp ran with (it picks LongRoPE's factors); the ids' count when the
    /// fixture does not say.
    pub n_ctx: usize,
}

/// The fixture `tests/fixtures/tiny/<name>.json` and the GGUF it was recorded from.
pub fn tiny_model(name: &str) -> TinyModel {
    let fx = fixture("tiny", &format!("{name}.json"));
    let numbers = |v: &serde_json::Value| -> Vec<f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    TinyModel {
        path: PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/tiny")
            .join(fx["model"].as_str().unwrap()),
        n_ctx: fx["n_ctx"]
            .as_u64()
            .map_or(fx["ids"].as_array().unwrap().len(), |n| n as usize),
        ids: numbers(&fx["ids"]).into_iter().map(|x| x as u32).collect(),
        logits: fx["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| numbers(row).into_iter().map(|x| x as f32).collect())
            .collect(),
    }
}

/// The bytes of the GGUF file at `path` with metadata `key` set to `value` (added if absent):
/// a real model with one thing changed, such as a broken chat template.
pub fn with_metadata(path: &std::path::Path, key: &str, value: Value) -> Vec<u8> {
    let mut file = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    let content = gguf_file::Content::read(&mut file).unwrap();
    let mut meta: Meta = content
        .metadata
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    meta.sort_by(|a, b| a.0.cmp(&b.0));
    set(&mut meta, key, value);
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort_by_key(|n| content.tensor_infos[*n].offset);
    let tensors: Vec<(String, QTensor)> = names
        .into_iter()
        .map(|n| {
            let t = content.tensor(&mut file, n, &Device::Cpu).unwrap();
            (n.clone(), t)
        })
        .collect();
    write_gguf(&meta, &tensors)
}
