//! Opening and validating a GGUF file, and typed access to its metadata. (What a person wants to
//! know about it, the model card, is [`crate::card`], above this module and the tokenizer.)
//!
//! The header is read by wick's own reader ([`reader`]: every ggml type known, every length
//! bounded by the file's size). This module adds what an engine that runs untrusted files needs
//! on top: every tensor must lie inside the file with a size that matches its shape and type.
//! Tensors of a type wick does not run are kept aside ([`Gguf::unrunnable`]): the file still
//! opens and has a model card, and loading the model names the tensor and its type. The tensor
//! bytes are never copied: [`TensorData`] is a view into the file's bytes (an mmap natively, wasm
//! memory in the browser).

pub mod reader;

use std::collections::{BTreeMap, HashMap};
use std::ops::Deref;
use std::sync::Arc;

/// A metadata value (candle's type, which wick's reader fills).
pub use candle_core::quantized::gguf_file::Value;

use crate::error::{Error, Result};

/// The bytes of a whole GGUF file, shared by every tensor view.
pub type FileBytes = Arc<dyn AsRef<[u8]> + Send + Sync>;

/// A cheap, clonable view of one tensor's bytes inside the file.
#[derive(Clone)]
pub struct TensorData {
    file: FileBytes,
    start: usize,
    len: usize,
}

impl Deref for TensorData {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &(*self.file).as_ref()[self.start..self.start + self.len]
    }
}

impl TensorData {
    /// The bytes `start..start + len` of this view, sharing the file.
    pub fn slice(&self, start: usize, len: usize) -> Self {
        assert!(start + len <= self.len, "slice past the tensor's bytes");
        Self {
            file: self.file.clone(),
            start: self.start + start,
            len,
        }
    }

    /// Bytes made at load rather than read from the file (weights rewritten for faster kernels).
    pub fn owned(bytes: Vec<u8>) -> Self {
        let len = bytes.len();
        Self {
            file: Arc::new(bytes),
            start: 0,
            len,
        }
    }
}

impl std::fmt::Debug for TensorData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TensorData({} bytes at {})", self.len, self.start)
    }
}

/// One tensor: its type, its shape (row-major, the last dimension is GGUF's `ne[0]`) and its bytes.
#[derive(Clone, Debug)]
pub struct Tensor {
    /// Its name in the file, e.g. "blk.0.attn_q.weight".
    pub name: String,
    /// How its elements are stored (a float type or a quantization).
    pub qtype: QType,
    /// Dimensions in elements, outermost first.
    pub shape: Vec<usize>,
    /// Where its bytes lie in the file, quantized blocks as stored.
    pub data: TensorData,
}

impl Tensor {
    /// Number of elements (weights), not bytes.
    pub fn elem_count(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A tensor type the engine runs (a matmul kernel or a plain lookup). wick's own enum: candle's
/// `GgmlDType`, used until the IQ2 / IQ3 kernels, has no IQ variants. Every other ggml type a file
/// may hold is known to [`reader::GGML_TYPES`] and kept aside as a [`ForeignTensor`].
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QType {
    /// 32-bit float.
    F32,
    /// IEEE half float.
    F16,
    /// bfloat16.
    BF16,
    /// 32-value blocks of 4-bit values and an f16 scale.
    Q4_0,
    /// Q4_0 plus an f16 offset per block.
    Q4_1,
    /// 32-value blocks of 5-bit values and an f16 scale.
    Q5_0,
    /// Q5_0 plus an f16 offset per block.
    Q5_1,
    /// 32-value blocks of bytes and an f16 scale.
    Q8_0,
    /// Q2_K: 2-bit K-quant (256-value super-blocks).
    Q2K,
    /// Q3_K: 3-bit K-quant.
    Q3K,
    /// Q4_K: 4-bit K-quant.
    Q4K,
    /// Q5_K: 5-bit K-quant.
    Q5K,
    /// Q6_K: 6-bit K-quant.
    Q6K,
    /// IQ2_XXS: 2.0625 bits per weight, 8-value groups from a 256-entry grid.
    IQ2XXS,
    /// IQ2_XS: 2.3125 bits per weight, 8-value groups from a 512-entry grid.
    IQ2XS,
    /// IQ3_XXS: 3.0625 bits per weight, 4-value groups from a 256-entry grid.
    IQ3XXS,
    /// IQ3_S: 3.4375 bits per weight, 4-value groups from a 512-entry grid.
    IQ3S,
    /// IQ2_S: 2.5625 bits per weight, 8-value groups from a 1024-entry grid.
    IQ2S,
}

impl QType {
    /// Every type the engine runs: the floats first, then the quantized types in GGUF's order.
    pub const ALL: [QType; 18] = [
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
        QType::IQ2XXS,
        QType::IQ2XS,
        QType::IQ3XXS,
        QType::IQ3S,
        QType::IQ2S,
    ];

    /// Its GGUF type id.
    pub fn id(self) -> u32 {
        use QType::*;
        match self {
            F32 => 0,
            F16 => 1,
            Q4_0 => 2,
            Q4_1 => 3,
            Q5_0 => 6,
            Q5_1 => 7,
            Q8_0 => 8,
            Q2K => 10,
            Q3K => 11,
            Q4K => 12,
            Q5K => 13,
            Q6K => 14,
            IQ2XXS => 16,
            IQ2XS => 17,
            IQ3XXS => 18,
            IQ3S => 21,
            IQ2S => 22,
            BF16 => 30,
        }
    }

    fn ggml(self) -> reader::GgmlType {
        reader::ggml_type(self.id()).expect("every QType is a ggml type")
    }

    /// Elements per block (1 for the floats).
    pub fn block_size(self) -> usize {
        self.ggml().block
    }

    /// Bytes per block.
    pub fn type_size(self) -> usize {
        self.ggml().bytes
    }
}

/// Tensor types the engine can run (matmul or plain lookup): those of [`QType::ALL`].
pub fn is_supported_qtype(t: QType) -> bool {
    QType::ALL.contains(&t)
}

/// The type's name as llama.cpp spells it, e.g. "Q4_K" (the variant is `Q4K`).
pub fn qtype_name(t: QType) -> &'static str {
    t.ggml().name
}

/// Metadata values, keyed as in the file (`general.architecture`, `llama.block_count`, ...).
pub type Metadata = HashMap<String, Value>;

/// A tensor of a type wick does not run: what the model card needs to know of it.
#[derive(Clone, Debug)]
pub struct ForeignTensor {
    /// Its name in the file.
    pub name: String,
    /// llama.cpp's name for its type ("IQ4_XS"), or "type N" for an id ggml does not define.
    pub type_name: String,
    /// Its elements (0 when the type is unknown).
    pub elements: u64,
    /// Its bytes (0 when the type is unknown).
    pub bytes: u64,
    /// Its GGUF type id.
    pub type_id: u32,
    /// Dimensions outermost first.
    pub shape: Vec<usize>,
    /// Its bytes in the file, when the type is one ggml defines (checked to lie inside it).
    pub data: Option<TensorData>,
}

/// Types wick runs by rewriting them at load into one it has kernels for, losslessly or nearly
/// (`model::weights` does it): IQ4_NL (20) and IQ4_XS (23) become Q8_0.
pub const CONVERTED_AT_LOAD: [u32; 2] = [20, 23];

/// The engine's type for a GGUF type id, when the engine runs that type (the types of
/// [`QType::ALL`]).
fn runnable_qtype(id: u32) -> Option<QType> {
    QType::ALL.into_iter().find(|t| t.id() == id)
}

/// An opened, validated GGUF file.
pub struct Gguf {
    /// Every key/value pair of the header.
    pub metadata: Metadata,
    tensors: BTreeMap<String, Tensor>,
    unrunnable: Vec<ForeignTensor>,
    /// Size of the whole file in bytes.
    pub file_size: u64,
}

impl Gguf {
    /// Opens a file natively by memory-mapping it (the weights stay in the page cache, not in
    /// our heap). The first shard of a split model (`name-00001-of-00003.gguf`) opens every
    /// shard beside it, as llama.cpp does.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn open(path: &std::path::Path) -> Result<Self> {
        let map = |p: &std::path::Path| -> Result<FileBytes> {
            let file = std::fs::File::open(p)?;
            // SAFETY: the map is read-only; wick never writes model files while they are open.
            Ok(Arc::new(unsafe { memmap2::Mmap::map(&file)? }))
        };
        match split_siblings(path) {
            Some(paths) => {
                let mut shards = Vec::with_capacity(paths.len());
                for p in &paths {
                    shards.push(map(p).map_err(|e| match e {
                        Error::Io(io) if io.kind() == std::io::ErrorKind::NotFound => {
                            Error::Io(std::io::Error::new(
                                io.kind(),
                                format!("shard {} of the split model is missing", p.display()),
                            ))
                        }
                        e => e,
                    })?);
                }
                Self::from_shards(shards)
            }
            None => Self::from_bytes(map(path)?),
        }
    }

    /// A split model (gguf-split, or convert_hf_to_gguf.py `--split-max-tensors`) from all its
    /// shards in order: the first holds the metadata, each holds some tensors, and every shard
    /// says its number (`split.no`, from 0), the count (`split.count`) and the total number of
    /// tensors (`split.tensors.count`). One shard alone is a model as [`Gguf::from_bytes`] reads.
    pub fn from_shards(files: Vec<FileBytes>) -> Result<Self> {
        let count = files.len();
        let mut shards = files.into_iter().map(Self::parse);
        let Some(first) = shards.next() else {
            return Err(Error::InvalidParameter("no shards to open".into()));
        };
        let mut model = first?;
        let info = split_info(&model.metadata)?;
        let (no, declared, total) = info.unwrap_or((0, 1, model.tensors.len()));
        if no != 0 || declared != count {
            return Err(Error::InvalidMetadata {
                key: "split.count".into(),
                reason: format!(
                    "the first file given is shard {} of {declared}, but {count} files were given",
                    no + 1
                ),
            });
        }
        for (i, shard) in shards.enumerate() {
            let shard = shard?;
            let i = i + 1;
            match split_info(&shard.metadata)? {
                Some((no, declared, _)) if no == i && declared == count => {}
                other => {
                    return Err(Error::InvalidMetadata {
                        key: "split.no".into(),
                        reason: format!(
                            "file {} of {count} says it is {}",
                            i + 1,
                            other.map_or("no shard".into(), |(no, c, _)| format!(
                                "shard {} of {c}",
                                no + 1
                            ))
                        ),
                    })
                }
            }
            for (name, t) in shard.tensors {
                if model.tensors.insert(name.clone(), t).is_some() {
                    return Err(Error::Corrupt(format!("tensor `{name}` is in two shards")));
                }
            }
            model.unrunnable.extend(shard.unrunnable);
            model.file_size += shard.file_size;
        }
        let found = model.tensors.len() + model.unrunnable.len();
        if found != total {
            return Err(Error::InvalidMetadata {
                key: "split.tensors.count".into(),
                reason: format!("{total} tensors declared, {found} found in the shards"),
            });
        }
        Ok(model)
    }

    /// Parses and validates a GGUF held in memory. One shard of a split model is refused by
    /// name (it is not a model alone): see [`Gguf::from_shards`].
    pub fn from_bytes(file: FileBytes) -> Result<Self> {
        let g = Self::parse(file)?;
        match split_info(&g.metadata)? {
            Some((shard, count, _)) if count > 1 => Err(Error::SplitShard {
                shard: shard + 1,
                count,
            }),
            _ => Ok(g),
        }
    }

    /// [`Gguf::from_bytes`] without the split check.
    fn parse(file: FileBytes) -> Result<Self> {
        let bytes: &[u8] = (*file).as_ref();
        let file_size = bytes.len() as u64;
        if bytes.len() < 8 {
            return Err(
                if bytes.starts_with(b"GGUF") || b"GGUF".starts_with(bytes) {
                    Error::Truncated(format!("only {} bytes", bytes.len()))
                } else {
                    Error::NotGguf("the file is shorter than a GGUF header".into())
                },
            );
        }
        if &bytes[..4] != b"GGUF" {
            let hint = if bytes.starts_with(b"<") || bytes.starts_with(b"{") {
                " (it looks like HTML or JSON: was an error page downloaded?)"
            } else {
                ""
            };
            return Err(Error::NotGguf(format!(
                "the file does not start with the GGUF magic{hint}"
            )));
        }
        let header = reader::read_header(bytes)?;
        let data_offset = header.data_offset;
        let mut tensors = BTreeMap::new();
        let mut unrunnable = Vec::new();
        for info in header.tensors {
            let name = info.name;
            let shape = info.shape;
            let Some(ty) = reader::ggml_type(info.type_id) else {
                unrunnable.push(ForeignTensor {
                    name,
                    type_name: format!("type {}", info.type_id),
                    elements: 0,
                    bytes: 0,
                    type_id: info.type_id,
                    shape,
                    data: None,
                });
                continue;
            };
            let elems = shape
                .iter()
                .try_fold(1usize, |acc, &d| acc.checked_mul(d))
                .ok_or_else(|| {
                    Error::Corrupt(format!("tensor `{name}` shape {shape:?} overflows"))
                })?;
            let row = *shape.last().unwrap_or(&1);
            if elems == 0 || row % ty.block != 0 {
                return Err(Error::Corrupt(format!(
                    "tensor `{name}` has shape {shape:?}, not a whole number of {} blocks of {} per row",
                    ty.name, ty.block
                )));
            }
            let len = elems / ty.block * ty.bytes;
            let start = data_offset
                .checked_add(info.offset)
                .filter(|&s| s <= file_size)
                .ok_or_else(|| {
                    Error::Truncated(format!(
                        "tensor `{name}` starts at {} + {}, past the end of the {file_size}-byte file",
                        data_offset, info.offset
                    ))
                })?;
            if (len as u64) > file_size - start {
                return Err(Error::Truncated(format!(
                    "tensor `{name}` needs {len} bytes at offset {start}, but the file has only {file_size} bytes"
                )));
            }
            let data = TensorData {
                file: file.clone(),
                start: start as usize,
                len,
            };
            let Some(qtype) = runnable_qtype(info.type_id) else {
                unrunnable.push(ForeignTensor {
                    name,
                    type_name: ty.name.into(),
                    elements: elems as u64,
                    bytes: len as u64,
                    type_id: info.type_id,
                    shape,
                    data: Some(data),
                });
                continue;
            };
            tensors.insert(
                name.clone(),
                Tensor {
                    name,
                    qtype,
                    shape,
                    data,
                },
            );
        }
        Ok(Self {
            metadata: header.metadata,
            tensors,
            unrunnable,
            file_size,
        })
    }

    /// The tensors of types the kernels do not run (IQ1, IQ4, TQ, MXFP4...), in file order. Those of
    /// [`CONVERTED_AT_LOAD`] types still run (rewritten at load); a model with any other fails to
    /// load with [`Error::UnsupportedQuant`] naming the first.
    pub fn unrunnable(&self) -> &[ForeignTensor] {
        &self.unrunnable
    }

    /// The tensor `name` among [`Gguf::unrunnable`].
    pub fn foreign(&self, name: &str) -> Option<&ForeignTensor> {
        self.unrunnable.iter().find(|t| t.name == name)
    }

    /// [`Error::UnsupportedQuant`] for the first tensor of a type wick does not run, even by
    /// rewriting it at load.
    pub fn check_runnable(&self) -> Result<()> {
        let stuck = self
            .unrunnable
            .iter()
            .find(|t| !CONVERTED_AT_LOAD.contains(&t.type_id));
        match stuck {
            Some(t) => Err(Error::UnsupportedQuant {
                tensor: t.name.clone(),
                qtype: t.type_name.clone(),
            }),
            None => Ok(()),
        }
    }

    /// The tensor called `name`; `None` when the file has none.
    pub fn tensor(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Every tensor, in name order.
    pub fn tensors(&self) -> impl Iterator<Item = &Tensor> {
        self.tensors.values()
    }

    /// `general.architecture`, e.g. "llama"; [`Error::MissingMetadata`] when absent.
    pub fn architecture(&self) -> Result<&str> {
        get_str(&self.metadata, "general.architecture")
    }
}

/// A split model's `(split.no, split.count, split.tensors.count)`, when the file has them.
fn split_info(md: &Metadata) -> Result<Option<(usize, usize, usize)>> {
    let Some(count) = get_usize_opt(md, "split.count")? else {
        return Ok(None);
    };
    let no = get_usize_opt(md, "split.no")?.unwrap_or(0);
    let total = get_usize(md, "split.tensors.count")?;
    if count == 0 || no >= count {
        return Err(invalid("split.no", format!("shard {no} of {count}")));
    }
    Ok(Some((no, count, total)))
}

/// The paths of every shard when `path` names the first shard of a split model
/// (`<name>-00001-of-<NNNNN>.gguf`, llama.cpp's naming).
#[cfg(not(target_arch = "wasm32"))]
fn split_siblings(path: &std::path::Path) -> Option<Vec<std::path::PathBuf>> {
    let file = path.file_name()?.to_str()?;
    let stem = file.strip_suffix(".gguf")?;
    let (head, count) = stem.rsplit_once("-of-")?;
    let (prefix, no) = head.rsplit_once('-')?;
    let digits = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(no) || !digits(count) || no != "00001" {
        return None;
    }
    let count: usize = count.parse().ok().filter(|&c| c > 1)?;
    Some(
        (1..=count)
            .map(|i| path.with_file_name(format!("{prefix}-{i:05}-of-{count:05}.gguf")))
            .collect(),
    )
}

// ---- typed metadata access -------------------------------------------------------------------

/// The value at `key`, of any type; [`Error::MissingMetadata`] when absent.
pub fn get<'a>(md: &'a Metadata, key: &str) -> Result<&'a Value> {
    md.get(key)
        .ok_or_else(|| Error::MissingMetadata(key.into()))
}

pub(crate) fn invalid(key: &str, reason: impl Into<String>) -> Error {
    Error::InvalidMetadata {
        key: key.into(),
        reason: reason.into(),
    }
}

fn value_as_u64(v: &Value) -> Option<u64> {
    match *v {
        Value::U8(x) => Some(x as u64),
        Value::U16(x) => Some(x as u64),
        Value::U32(x) => Some(x as u64),
        Value::U64(x) => Some(x),
        Value::I8(x) if x >= 0 => Some(x as u64),
        Value::I16(x) if x >= 0 => Some(x as u64),
        Value::I32(x) if x >= 0 => Some(x as u64),
        Value::I64(x) if x >= 0 => Some(x as u64),
        _ => None,
    }
}

/// A non-negative integer of any width, as `usize`.
pub fn get_usize(md: &Metadata, key: &str) -> Result<usize> {
    let v = get(md, key)?;
    value_as_u64(v)
        .and_then(|x| usize::try_from(x).ok())
        .ok_or_else(|| invalid(key, format!("expected a non-negative integer, found {v:?}")))
}

/// As [`get_usize`], but `Ok(None)` when the key is absent (a value of the wrong type is
/// still an error).
pub fn get_usize_opt(md: &Metadata, key: &str) -> Result<Option<usize>> {
    if md.contains_key(key) {
        get_usize(md, key).map(Some)
    } else {
        Ok(None)
    }
}

/// A float (f32 or f64) or a non-negative integer, as `f32`.
pub fn get_f32(md: &Metadata, key: &str) -> Result<f32> {
    match get(md, key)? {
        Value::F32(x) => Ok(*x),
        Value::F64(x) => Ok(*x as f32),
        v => value_as_u64(v)
            .map(|x| x as f32)
            .ok_or_else(|| invalid(key, format!("expected a number, found {v:?}"))),
    }
}

/// As [`get_f32`], but `Ok(None)` when the key is absent.
pub fn get_f32_opt(md: &Metadata, key: &str) -> Result<Option<f32>> {
    if md.contains_key(key) {
        get_f32(md, key).map(Some)
    } else {
        Ok(None)
    }
}

/// A bool; `Ok(None)` when the key is absent.
pub fn get_bool_opt(md: &Metadata, key: &str) -> Result<Option<bool>> {
    match md.get(key) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(v) => Err(invalid(key, format!("expected a bool, found {v:?}"))),
    }
}

/// A string; [`Error::InvalidMetadata`] when the value is of another type.
pub fn get_str<'a>(md: &'a Metadata, key: &str) -> Result<&'a str> {
    match get(md, key)? {
        Value::String(s) => Ok(s),
        v => Err(invalid(
            key,
            format!("expected a string, found {}", value_kind(v)),
        )),
    }
}

/// As [`get_str`], but `Ok(None)` when the key is absent.
pub fn get_str_opt<'a>(md: &'a Metadata, key: &str) -> Result<Option<&'a str>> {
    if md.contains_key(key) {
        get_str(md, key).map(Some)
    } else {
        Ok(None)
    }
}

/// An array (of any element type); [`Error::InvalidMetadata`] when the value is of another
/// type.
pub fn get_array<'a>(md: &'a Metadata, key: &str) -> Result<&'a [Value]> {
    match get(md, key)? {
        Value::Array(a) => Ok(a),
        v => Err(invalid(
            key,
            format!("expected an array, found {}", value_kind(v)),
        )),
    }
}

/// How a metadata value reads in an error message ("a string", "an integer"...).
pub(crate) fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Bool(_) => "a bool",
        Value::F32(_) | Value::F64(_) => "a float",
        _ => "an integer",
    }
}
