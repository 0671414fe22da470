//! Weight matrices on the GPU: GGUF's blocks, each padded to a whole number of 32-bit words
//! (WGSL reads words), split by rows into buffers no larger than one binding may be. Float
//! matrices (F32, F16, BF16) go as they are (rows are whole units of 32 values, so whole words).

use super::shader::QuantFormat;
use super::Gpu;
use crate::error::{Error, Result};
use crate::gguf::{qtype_name, QType};
use crate::kernels;
use crate::model::weights::Matrix;

/// How a block is laid out on the GPU: `pad` zero bytes inserted at byte `at` of each
/// `bytes`-long GGUF block. Q4_0 and Q8_0 put theirs after the f16 scale so the quants start on
/// a word; Q3_K and Q6_K end in an f16 and get theirs at the end.
fn padding(t: QType) -> (usize, usize, usize) {
    use QType::*;
    let bytes = t.type_size();
    match t {
        Q4_0 | Q8_0 => (bytes, 2, 2),
        Q3K | Q6K => (bytes, bytes, 2),
        _ => (bytes, bytes, 0),
    }
}

/// The GPU layout of `rows` rows of `t` blocks.
pub fn pad_blocks(t: QType, data: &[u8]) -> Vec<u8> {
    let (bytes, at, pad) = padding(t);
    if pad == 0 {
        return data.to_vec();
    }
    let mut out = Vec::with_capacity(data.len() / bytes * (bytes + pad));
    for b in data.chunks_exact(bytes) {
        out.extend_from_slice(&b[..at]);
        out.extend(std::iter::repeat_n(0u8, pad));
        out.extend_from_slice(&b[at..]);
    }
    out
}

pub struct Chunk {
    pub buffer: wgpu::Buffer,
    pub first_row: usize,
    pub rows: usize,
}

/// A `rows x cols` weight matrix in GPU memory.
pub struct GpuMatrix {
    pub qtype: QType,
    pub rows: usize,
    pub cols: usize,
    /// 32-bit words per row.
    pub row_words: usize,
    pub chunks: Vec<Chunk>,
}

impl GpuMatrix {
    /// Uploads `m` (Q5_0 becomes Q8_0 first, losslessly, as on the CPU).
    pub fn upload(gpu: &Gpu, name: &str, m: &Matrix) -> Result<Self> {
        Self::from_bytes(gpu, name, m.tensor.qtype, &m.tensor.data, m.rows, m.cols)
    }

    /// Uploads `ms` stacked as one matrix (their rows one after another), so that one matmul
    /// dispatch does the work of several; `None` unless they share a type and width.
    pub fn upload_stacked(gpu: &Gpu, name: &str, ms: &[&Matrix]) -> Result<Option<Self>> {
        let first = ms[0];
        if ms
            .iter()
            .any(|m| m.tensor.qtype != first.tensor.qtype || m.cols != first.cols)
        {
            return Ok(None);
        }
        let data: Vec<u8> = ms
            .iter()
            .flat_map(|m| m.tensor.data.iter().copied())
            .collect();
        let rows = ms.iter().map(|m| m.rows).sum();
        Self::from_bytes(gpu, name, first.tensor.qtype, &data, rows, first.cols).map(Some)
    }

    pub fn from_bytes(
        gpu: &Gpu,
        name: &str,
        qtype: QType,
        data: &[u8],
        rows: usize,
        cols: usize,
    ) -> Result<Self> {
        if !super::supports(qtype) {
            return Err(Error::UnsupportedQuant {
                tensor: name.into(),
                qtype: format!("{} (on the GPU)", qtype_name(qtype)),
            });
        }
        let rewritten;
        let (qtype, data) = if qtype == QType::Q5_0 {
            rewritten = kernels::q5_0_as_q8_0(data);
            (QType::Q8_0, &rewritten[..])
        } else {
            (qtype, data)
        };
        let row_bytes = cols / qtype.block_size() * qtype.type_size();
        assert_eq!(data.len(), rows * row_bytes, "gpu: matrix `{name}` size");
        let (bytes, _, pad) = padding(qtype);
        let gpu_row_bytes = cols / qtype.block_size() * (bytes + pad);
        let per_chunk = (gpu.info.max_binding as usize / gpu_row_bytes).min(rows);
        if per_chunk == 0 {
            return Err(Error::Gpu(format!(
                "a row of `{name}` ({gpu_row_bytes} bytes) exceeds the GPU's binding limit"
            )));
        }
        let mut chunks = Vec::new();
        let mut first = 0;
        while first < rows {
            let n = per_chunk.min(rows - first);
            let src = &data[first * row_bytes..(first + n) * row_bytes];
            let buffer = gpu.storage_init(name, &pad_blocks(qtype, src));
            chunks.push(Chunk {
                buffer,
                first_row: first,
                rows: n,
            });
            first += n;
        }
        Ok(Self {
            qtype,
            rows,
            cols,
            row_words: gpu_row_bytes / 4,
            chunks,
        })
    }

    /// Units of 32 weights per row.
    pub fn units(&self) -> usize {
        self.cols / 32
    }

    /// The activation format its matmul wants (that of the CPU kernel for its type); `None`
    /// for float weights, whose matmul reads the f32 activations.
    pub fn quantize_format(&self) -> Option<QuantFormat> {
        use QType::*;
        match self.qtype {
            F32 | F16 | BF16 => None,
            Q4_1 | Q5_1 => Some(QuantFormat::Q8_1),
            Q2K | Q3K | Q4K | Q5K | Q6K => Some(QuantFormat::Q8K),
            _ => Some(QuantFormat::Q8_0),
        }
    }
}
