//! Per-thread scratch buffers, so that the hot path (matmul activations, prefill tiles,
//! attention scores) allocates nothing per token once a session has warmed up.
//!
//! Each thread keeps one growable buffer per [`Slot`]; [`with`] lends it out as a slice of any
//! plain type and takes it back. The slice is not cleared (the last user's values, or zeros):
//! every user writes what it later reads. A nested call on the same slot (which the engine does
//! not make) would get a fresh buffer rather than alias the outer one.

use std::cell::Cell;

/// What a buffer is for: buffers in use at the same time need different slots.
#[derive(Clone, Copy)]
pub(crate) enum Slot {
    /// A matmul's quantized activation rows.
    Activations = 0,
    /// The same, interleaved eight tokens to a block (prefill).
    Interleaved = 1,
    /// A prefill task's output tile.
    Tile = 2,
    /// Attention: softmax weights of a unit's heads.
    Scores = 3,
    /// Attention: cache offsets of a unit's visible positions.
    Rows = 4,
}

const SLOTS: usize = 5;

/// Types that any initialized bytes may hold (integers, floats and arrays or `repr(C)` structs
/// of them), so that one byte buffer can be lent out as a slice of them.
///
/// # Safety
/// Every bit pattern must be a valid value, and the alignment at most 64.
pub(crate) unsafe trait Plain: Copy + Default {}

unsafe impl Plain for f32 {}
unsafe impl Plain for usize {}

/// 64-byte units: the buffers' alignment, enough for any SIMD block type.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([u8; 64]);

thread_local! {
    static BUFFERS: [Cell<Vec<Line>>; SLOTS] = Default::default();
}

/// Runs `f` on this thread's `slot` buffer as `len` values of `T` (not cleared).
pub(crate) fn with<T: Plain, R>(slot: Slot, len: usize, f: impl FnOnce(&mut [T]) -> R) -> R {
    const { assert!(std::mem::align_of::<T>() <= 64) };
    let mut buf = BUFFERS.with(|b| b[slot as usize].take());
    let lines = (len * std::mem::size_of::<T>()).div_ceil(64);
    if buf.len() < lines {
        buf.resize(lines, Line([0; 64]));
    }
    // SAFETY: the buffer holds at least `len * size_of::<T>()` initialized bytes, aligned to 64,
    // which `T: Plain` may view as values; the slice borrows `buf`, which outlives it.
    let s = unsafe { std::slice::from_raw_parts_mut(buf.as_mut_ptr() as *mut T, len) };
    let r = f(s);
    BUFFERS.with(|b| b[slot as usize].set(buf));
    r
}
