//! wick's own GGUF header reader. It knows every ggml tensor type (its name, block and byte
//! sizes: [`GGML_TYPES`]), so a file of any types opens and has a model card, and a type the
//! engine cannot run is an error only when it is run, naming the tensor and the type.
//!
//! The file is untrusted: every read is bounds-checked (running past the end is
//! [`Error::Truncated`]), every count is bounded by the bytes left before anything is allocated
//! (a header cannot ask for more memory than its own size), and anything else malformed is
//! [`Error::Corrupt`] with what and where. The layout (versions 1 to 3): magic, version, tensor
//! count, key/value count, the key/value pairs, the tensor infos, then the tensor data at the
//! next multiple of `general.alignment` (32 by default).

use std::collections::HashMap;

use super::Value;
use crate::error::{Error, Result};

/// A ggml tensor type: its id in GGUF, llama.cpp's name, elements per block and bytes per block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GgmlType {
    /// The id GGUF files store.
    pub id: u32,
    /// llama.cpp's name, e.g. "IQ4_XS".
    pub name: &'static str,
    /// Elements per block.
    pub block: usize,
    /// Bytes per block.
    pub bytes: usize,
}

const fn t(id: u32, name: &'static str, block: usize, bytes: usize) -> GgmlType {
    GgmlType {
        id,
        name,
        block,
        bytes,
    }
}

/// Every tensor type a GGUF file may hold (ggml's `type_traits`; ids 4, 5 and 31 to 33 and 36 to
/// 38 were removed from ggml and never appear in files).
pub const GGML_TYPES: &[GgmlType] = &[
    t(0, "F32", 1, 4),
    t(1, "F16", 1, 2),
    t(2, "Q4_0", 32, 18),
    t(3, "Q4_1", 32, 20),
    t(6, "Q5_0", 32, 22),
    t(7, "Q5_1", 32, 24),
    t(8, "Q8_0", 32, 34),
    t(9, "Q8_1", 32, 36),
    t(10, "Q2_K", 256, 84),
    t(11, "Q3_K", 256, 110),
    t(12, "Q4_K", 256, 144),
    t(13, "Q5_K", 256, 176),
    t(14, "Q6_K", 256, 210),
    t(15, "Q8_K", 256, 292),
    t(16, "IQ2_XXS", 256, 66),
    t(17, "IQ2_XS", 256, 74),
    t(18, "IQ3_XXS", 256, 98),
    t(19, "IQ1_S", 256, 50),
    t(20, "IQ4_NL", 32, 18),
    t(21, "IQ3_S", 256, 110),
    t(22, "IQ2_S", 256, 82),
    t(23, "IQ4_XS", 256, 136),
    t(24, "I8", 1, 1),
    t(25, "I16", 1, 2),
    t(26, "I32", 1, 4),
    t(27, "I64", 1, 8),
    t(28, "F64", 1, 8),
    t(29, "IQ1_M", 256, 56),
    t(30, "BF16", 1, 2),
    t(34, "TQ1_0", 256, 54),
    t(35, "TQ2_0", 256, 66),
    t(39, "MXFP4", 32, 17),
    t(40, "NVFP4", 64, 36),
    t(41, "Q1_0", 128, 18),
];

/// The type with GGUF id `id`, if ggml has one.
pub fn ggml_type(id: u32) -> Option<GgmlType> {
    GGML_TYPES.iter().copied().find(|t| t.id == id)
}

/// A tensor as the header describes it.
#[derive(Debug)]
pub struct TensorInfo {
    /// Its name, e.g. "blk.0.attn_q.weight".
    pub name: String,
    /// Dimensions outermost first (GGUF stores `ne[0]`, the row length, first).
    pub shape: Vec<usize>,
    /// The type's GGUF id (see [`ggml_type`]).
    pub type_id: u32,
    /// Bytes from the start of the data section.
    pub offset: u64,
}

/// A parsed header.
pub struct Header {
    /// Every key/value pair.
    pub metadata: HashMap<String, Value>,
    /// The tensor infos, in file order.
    pub tensors: Vec<TensorInfo>,
    /// Where the tensor data starts in the file.
    pub data_offset: u64,
}

/// Most dimensions a ggml tensor has.
const MAX_DIMS: usize = 4;

struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Version 1 wrote counts and lengths as u32; later versions as u64.
    wide: bool,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.bytes.len() - self.pos < n {
            return Err(Error::Truncated(format!(
                "the header ends inside {what} (at byte {} of {})",
                self.pos,
                self.bytes.len()
            )));
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn left(&self) -> usize {
        self.bytes.len() - self.pos
    }

    fn u8(&mut self, what: &str) -> Result<u8> {
        Ok(self.take(1, what)?[0])
    }
    fn u16(&mut self, what: &str) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2, what)?.try_into().unwrap()))
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().unwrap()))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().unwrap()))
    }

    /// A count or length, bounded: `count * min_size` bytes must still be in the file, so no
    /// header can make the reader allocate more than the file's size.
    fn count(&mut self, min_size: usize, what: &str) -> Result<usize> {
        let n = if self.wide {
            self.u64(what)?
        } else {
            self.u32(what)? as u64
        };
        match usize::try_from(n) {
            Ok(n) if n.saturating_mul(min_size.max(1)) <= self.left() => Ok(n),
            _ => Err(Error::Truncated(format!(
                "{what} says {n}, more than the {} bytes left at byte {}",
                self.left(),
                self.pos
            ))),
        }
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(1, what)?;
        let at = self.pos;
        let b = self.take(n, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| Error::Corrupt(format!("{what} at byte {at} is not UTF-8")))
    }

    fn value(&mut self, ty: u32, what: &str, depth: usize) -> Result<Value> {
        Ok(match ty {
            0 => Value::U8(self.u8(what)?),
            1 => Value::I8(self.u8(what)? as i8),
            2 => Value::U16(self.u16(what)?),
            3 => Value::I16(self.u16(what)? as i16),
            4 => Value::U32(self.u32(what)?),
            5 => Value::I32(self.u32(what)? as i32),
            6 => Value::F32(f32::from_bits(self.u32(what)?)),
            7 => match self.u8(what)? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                b => return Err(Error::Corrupt(format!("{what}: {b} is not a boolean"))),
            },
            8 => Value::String(self.string(what)?),
            9 => {
                if depth > 2 {
                    return Err(Error::Corrupt(format!("{what}: arrays nested too deep")));
                }
                let elem = self.u32(what)?;
                let n = self.count(min_value_size(elem, self.wide), what)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(elem, what, depth + 1)?);
                }
                Value::Array(items)
            }
            10 => Value::U64(self.u64(what)?),
            11 => Value::I64(self.u64(what)? as i64),
            12 => Value::F64(f64::from_bits(self.u64(what)?)),
            other => {
                return Err(Error::Corrupt(format!(
                    "{what} has value type {other}, which GGUF does not define"
                )))
            }
        })
    }
}

/// The fewest bytes a value of type `ty` takes (bounds array lengths).
fn min_value_size(ty: u32, wide: bool) -> usize {
    let len = if wide { 8 } else { 4 };
    match ty {
        0 | 1 | 7 => 1,
        2 | 3 => 2,
        4..=6 => 4,
        8 => len,
        9 => 4 + len,
        _ => 8,
    }
}

/// Parses the header of the GGUF file `bytes` (which starts with the magic; the caller checked).
pub fn read_header(bytes: &[u8]) -> Result<Header> {
    let mut r = Reader {
        bytes,
        pos: 4,
        wide: true,
    };
    let version = r.u32("the version")?;
    match version {
        1 => r.wide = false,
        2 | 3 => {}
        v => {
            return Err(Error::Corrupt(format!(
                "GGUF version {v} (wick reads versions 1 to 3)"
            )))
        }
    }
    // Each tensor info takes at least a name length, a dimension count, a type and an offset.
    let n_tensors = r.count(if r.wide { 24 } else { 20 }, "the tensor count")?;
    let n_kv = r.count(if r.wide { 12 } else { 8 }, "the key/value count")?;
    let mut metadata = HashMap::with_capacity(n_kv);
    for _ in 0..n_kv {
        let key = r.string("a metadata key")?;
        let ty = r.u32("a value type")?;
        let value = r.value(ty, &format!("metadata `{key}`"), 0)?;
        if metadata.insert(key.clone(), value).is_some() {
            return Err(Error::Corrupt(format!("metadata `{key}` appears twice")));
        }
    }
    let mut tensors = Vec::with_capacity(n_tensors);
    let mut names = std::collections::HashSet::with_capacity(n_tensors);
    for _ in 0..n_tensors {
        let name = r.string("a tensor name")?;
        let n_dims = r.u32(&format!("tensor `{name}`"))? as usize;
        if n_dims == 0 || n_dims > MAX_DIMS {
            return Err(Error::Corrupt(format!(
                "tensor `{name}` has {n_dims} dimensions (ggml has 1 to {MAX_DIMS})"
            )));
        }
        let mut shape = Vec::with_capacity(n_dims);
        for _ in 0..n_dims {
            let d = if r.wide {
                r.u64(&format!("tensor `{name}`"))?
            } else {
                r.u32(&format!("tensor `{name}`"))? as u64
            };
            shape.push(
                usize::try_from(d).map_err(|_| {
                    Error::Corrupt(format!("tensor `{name}` has a dimension of {d}"))
                })?,
            );
        }
        shape.reverse();
        let type_id = r.u32(&format!("tensor `{name}`"))?;
        let offset = r.u64(&format!("tensor `{name}`"))?;
        if !names.insert(name.clone()) {
            return Err(Error::Corrupt(format!("tensor `{name}` appears twice")));
        }
        tensors.push(TensorInfo {
            name,
            shape,
            type_id,
            offset,
        });
    }
    let alignment = match metadata.get("general.alignment") {
        None => 32,
        Some(Value::U32(a)) if *a > 0 && a.is_power_of_two() => *a as u64,
        Some(v) => {
            return Err(Error::Corrupt(format!(
                "general.alignment is {v:?}, not a power of two"
            )))
        }
    };
    let data_offset = (r.pos as u64).div_ceil(alignment) * alignment;
    Ok(Header {
        metadata,
        tensors,
        data_offset,
    })
}
