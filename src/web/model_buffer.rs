//! The bytes of a model, allocated in wasm memory before they are read, so that the worker reads
//! the stored file straight into the engine's memory (one copy, from OPFS), and check it there.

use js_sys::Uint8Array;
use wasm_bindgen::prelude::*;

use super::{hash, js_error};

#[wasm_bindgen]
pub struct ModelBuffer {
    pub(crate) bytes: Vec<u8>,
}

#[wasm_bindgen]
impl ModelBuffer {
    /// Room for a model of `size` bytes, or an error naming the size when the memory is not there
    /// (wasm32 caps one allocation at 2 GiB and all memory at 4 GiB).
    #[wasm_bindgen(constructor)]
    pub fn new(size: f64) -> Result<ModelBuffer, JsValue> {
        let too_big = || {
            js_error(
                "unsupported_model",
                &format!(
                    "the model is {:.2} GB; wick in the browser loads models up to 2 GB",
                    size / 1e9
                ),
            )
        };
        if !(0.0..=(isize::MAX as f64)).contains(&size) {
            return Err(too_big());
        }
        let size = size as usize;
        if size == 0 {
            return Ok(Self { bytes: Vec::new() });
        }
        let layout = std::alloc::Layout::array::<u8>(size).map_err(|_| too_big())?;
        // Zeroed allocation rather than a resize: memory fresh from `memory.grow` is already
        // zero, so the allocator skips writing a model-sized run of zeros.
        // SAFETY: `layout` has a non-zero size; a non-null result is `size` initialized (zero)
        // bytes owned by the Vec, which frees it with the same layout (u8, capacity `size`).
        let bytes = unsafe {
            let ptr = std::alloc::alloc_zeroed(layout);
            if ptr.is_null() {
                return Err(too_big());
            }
            Vec::from_raw_parts(ptr, size, size)
        };
        Ok(Self { bytes })
    }

    /// A view of `len` bytes at `offset` to read into. It is valid until wasm memory grows: take
    /// a new view for every read.
    pub fn view(&mut self, offset: usize, len: usize) -> Result<Uint8Array, JsValue> {
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.bytes.len())
            .ok_or_else(|| js_error("invalid_parameter", "view outside the model buffer"))?;
        let slice = &mut self.bytes[offset..end];
        // SAFETY: the view covers memory owned by `self.bytes`, which is not reallocated while
        // the buffer lives; JS uses the view at once, before anything else runs in wasm.
        Ok(unsafe { Uint8Array::view_mut_raw(slice.as_mut_ptr(), slice.len()) })
    }

    /// The XXH3-64 of the bytes (16 hex digits), which storage.js compares with the checksum
    /// recorded when the model was stored: summed where the bytes are, at memory speed, before
    /// `WebEngine.load` takes them.
    pub fn xxh3(&self) -> String {
        hash::xxh3_hex(xxhash_rust::xxh3::xxh3_64(&self.bytes))
    }
}
