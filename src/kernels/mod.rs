//! CPU kernels (SKELETON: being written).
use crate::gguf::QType;

/// `out[t * rows + r] = dot(row r of w, x[t * cols .. (t + 1) * cols])` for `t < n`.
/// `w` holds `rows` rows of `cols` values in GGUF's native block layout for `qtype`.
pub fn matmul(_qtype: QType, _w: &[u8], _rows: usize, _cols: usize, _x: &[f32], _n: usize, _out: &mut [f32]) {
    todo!()
}

/// Dequantizes one row (`out.len()` values) of `qtype` blocks.
pub fn dequantize_row(_qtype: QType, _row: &[u8], _out: &mut [f32]) {
    todo!()
}
