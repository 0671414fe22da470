//! Byte layouts of the GGUF weight blocks, the quantized activation blocks the dot products take,
//! and the helpers every kernel shares (f16 scales, K-quant scale unpacking, activation quantizers).
//!
//! Weight blocks are never cast to structs: the bytes come from a file (an mmap or wasm memory) with
//! no alignment guarantee, so kernels read them at byte offsets. The layouts follow ggml's
//! `block_*` structs (little-endian, no padding); the offsets are written out in [`block_shape`]'s
//! users next to each kernel.
//!
//! Activations are quantized by us, once per matmul, into our own aligned structs. Their numbers
//! follow llama.cpp's reference quantizers exactly (`quantize_row_q8_0_ref`, `..._q8_1_ref`,
//! `..._q8_K_ref`), so that our dot products track llama.cpp's, which is the correctness reference.

use super::iq_grids::{IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID, KSIGNS_IQ2XS};
use crate::gguf::QType;

/// Values per block of the legacy types (Q4_0 ... Q8_0) and of Q8_0/Q8_1 activations.
pub const QK: usize = 32;
/// Values per super-block of the K-quants and of Q8_K activations.
pub const QK_K: usize = 256;

/// `(values per block, bytes per block)` of a weight type.
pub fn block_shape(t: QType) -> (usize, usize) {
    use QType::*;
    match t {
        F32 => (1, 4),
        F16 | BF16 => (1, 2),
        Q4_0 => (QK, 18), // d: f16, qs: [u8; 16] (value j in the low nibble of qs[j], j+16 in the high)
        Q4_1 => (QK, 20), // d: f16, m: f16, qs: [u8; 16]
        Q5_0 => (QK, 22), // d: f16, qh: u32 (5th bit of value j in bit j), qs: [u8; 16]
        Q5_1 => (QK, 24), // d: f16, m: f16, qh: u32, qs: [u8; 16]
        Q8_0 => (QK, 34), // d: f16, qs: [i8; 32]
        Q2K => (QK_K, 84), // scales: [u8; 16] (4-bit scale | 4-bit min << 4), qs: [u8; 64], d, dmin
        Q3K => (QK_K, 110), // hmask: [u8; 32], qs: [u8; 64], scales: [u8; 12] (16 x 6 bits), d
        Q4K => (QK_K, 144), // d, dmin, scales: [u8; 12] (8 scales + 8 mins, 6 bits), qs: [u8; 128]
        Q5K => (QK_K, 176), // d, dmin, scales: [u8; 12], qh: [u8; 32], qs: [u8; 128]
        Q6K => (QK_K, 210), // ql: [u8; 128], qh: [u8; 64], scales: [i8; 16], d
        // The IQ types: d first, then grid indices, signs and 4-bit scales (`reference::decode_iq`).
        IQ2XXS => (QK_K, 66), // d, qs: [u16; 32] (per 32 values: 4 grid bytes, a u32 of signs | scale)
        IQ2XS => (QK_K, 74), // d, qs: [u16; 32] (9-bit grid index | 7-bit sign index), scales: [u8; 8]
        IQ2S => (QK_K, 82),  // d, qs: [u8; 32], signs: [u8; 32], qh: [u8; 8], scales: [u8; 8]
        IQ3XXS => (QK_K, 98), // d, qs: [u8; 64], then per 32 values a u32 of signs | scale
        IQ3S => (QK_K, 110), // d, qs: [u8; 64], qh: [u8; 8], signs: [u8; 32], scales: [u8; 4]
    }
}

/// Bytes of one row of `cols` values. Panics if `cols` is not a whole number of blocks.
pub fn row_bytes(t: QType, cols: usize) -> usize {
    let (values, bytes) = block_shape(t);
    assert!(
        cols % values == 0,
        "kernels: {cols} columns is not a whole number of {t:?} blocks"
    );
    cols / values * bytes
}

/// Which activation format a weight type's dot product takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VecDotType {
    /// Plain f32 activations (float weights).
    F32,
    /// [`BlockQ8`]: Q8_0 for Q4_0/Q5_0/Q8_0 weights, Q8_1 (the same plus `s`) for Q4_1/Q5_1.
    Q8,
    /// [`BlockQ8K`], for every K-quant and IQ type.
    Q8K,
}

pub fn vec_dot_type(t: QType) -> VecDotType {
    use QType::*;
    match t {
        F32 | F16 | BF16 => VecDotType::F32,
        Q4_0 | Q4_1 | Q5_0 | Q5_1 | Q8_0 => VecDotType::Q8,
        Q2K | Q3K | Q4K | Q5K | Q6K | IQ2XXS | IQ2XS | IQ2S | IQ3XXS | IQ3S => VecDotType::Q8K,
    }
}

/// A quantized block of 32 activations: Q8_0 (`qs`, `d`) and Q8_1's block sum `s`.
///
/// ggml stores `d` and `s` as f16; we keep the f16-rounded values as f32 (same numbers, no
/// conversion in the hot loop). `qs` comes first so that SIMD loads of it are 32-byte aligned.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct BlockQ8 {
    pub qs: [i8; QK],
    /// Scale: value ≈ `qs[i] * d`, `d = f16(amax / 127)`.
    pub d: f32,
    /// `f16(d32 * sum(qs))` with the unrounded `d32`, as llama.cpp's `block_q8_1.s`.
    pub s: f32,
}

/// A quantized super-block of 256 activations (ggml's `block_q8_K`).
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub struct BlockQ8K {
    pub qs: [i8; QK_K],
    /// Sums of `qs` per group of 16, for the K-quants' min and offset terms.
    pub bsums: [i16; QK_K / 16],
    /// Scale: value ≈ `qs[i] * d`. Negative when the largest-magnitude value is positive.
    pub d: f32,
}

// SAFETY: integers and floats in `repr(C)` structs, aligned to 32.
unsafe impl crate::scratch::Plain for BlockQ8 {}
unsafe impl crate::scratch::Plain for BlockQ8K {}
unsafe impl crate::scratch::Plain for BlockQ8x8 {}
unsafe impl crate::scratch::Plain for BlockQ8Kx8 {}

impl Default for BlockQ8K {
    fn default() -> Self {
        BlockQ8K {
            qs: [0; QK_K],
            bsums: [0; QK_K / 16],
            d: 0.0,
        }
    }
}

/// Eight tokens' [`BlockQ8`]s interleaved for prefill kernels that keep one token per 32-bit lane:
/// `qs[k][4 * t..4 * t + 4]` is token `t`'s values `4k..4k + 4`, so one 32-byte load gives every
/// token's next 4 values and a broadcast 4-byte weight group multiplies all eight at once.
/// Missing tokens (past the end of a batch) are zeros.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[repr(C, align(32))]
pub struct BlockQ8x8 {
    pub qs: [[i8; 32]; 8],
    pub d: [f32; 8],
    pub s: [f32; 8],
    /// `sum(qs)` per token, for the offsets of Q4_0 (-8) and Q5_0 (-16) when their weights are
    /// multiplied unsigned.
    pub sum: [i32; 8],
}

/// Eight tokens' [`BlockQ8K`]s interleaved like [`BlockQ8x8`]: `qs[k][4 * t..][..4]` is token
/// `t`'s values `4k..4k + 4`; `bsums[j][2 * t + h]` is token `t`'s sum of group `2j + h` (16 values),
/// so one `madd` with a broadcast pair of per-group factors gives each token's sum over 32 values.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(32))]
pub struct BlockQ8Kx8 {
    pub qs: [[i8; 32]; QK_K / 4],
    pub d: [f32; 8],
    pub bsums: [[i16; 16]; 8],
}

impl Default for BlockQ8Kx8 {
    fn default() -> Self {
        BlockQ8Kx8 {
            qs: [[0; 32]; QK_K / 4],
            d: [0.0; 8],
            bsums: [[0; 16]; 8],
        }
    }
}

/// A quantized activation format: how f32 rows become blocks, and eight-token blocks.
pub trait Activation: crate::scratch::Plain + Send + Sync {
    /// Values per block.
    const VALUES: usize;
    /// The eight-token interleaved form ([`BlockQ8x8`] or [`BlockQ8Kx8`]).
    type X8: crate::scratch::Plain + Send + Sync;
    /// Quantizes `x` (a whole number of blocks) into `out`.
    fn quantize(x: &[f32], out: &mut [Self]);
    /// Interleaves `ntok <= 8` tokens' rows of `nb` blocks (`q[t * nb + b]`) into `out[..nb]`.
    fn interleave(q: &[Self], ntok: usize, nb: usize, out: &mut [Self::X8]);
}

impl Activation for BlockQ8 {
    const VALUES: usize = QK;
    type X8 = BlockQ8x8;
    fn quantize(x: &[f32], out: &mut [Self]) {
        quantize_q8(x, out)
    }
    fn interleave(q: &[Self], ntok: usize, nb: usize, out: &mut [BlockQ8x8]) {
        interleave_q8(q, ntok, nb, out)
    }
}

impl Activation for BlockQ8K {
    const VALUES: usize = QK_K;
    type X8 = BlockQ8Kx8;
    fn quantize(x: &[f32], out: &mut [Self]) {
        quantize_q8k(x, out)
    }
    fn interleave(q: &[Self], ntok: usize, nb: usize, out: &mut [BlockQ8Kx8]) {
        interleave_q8k(q, ntok, nb, out)
    }
}

/// Interleaves `ntok <= 8` tokens' quantized rows of `nb` blocks each (`q[t * nb + b]`) into `nb`
/// eight-token blocks.
pub fn interleave_q8(q: &[BlockQ8], ntok: usize, nb: usize, out: &mut [BlockQ8x8]) {
    for (b, o) in out.iter_mut().enumerate().take(nb) {
        *o = BlockQ8x8::default();
        for t in 0..ntok {
            let src = &q[t * nb + b];
            for k in 0..8 {
                o.qs[k][4 * t..4 * t + 4].copy_from_slice(&src.qs[4 * k..4 * k + 4]);
            }
            o.d[t] = src.d;
            o.s[t] = src.s;
            o.sum[t] = src.qs.iter().map(|&v| v as i32).sum();
        }
    }
}

/// As [`interleave_q8`], for Q8_K.
pub fn interleave_q8k(q: &[BlockQ8K], ntok: usize, nb: usize, out: &mut [BlockQ8Kx8]) {
    for (b, o) in out.iter_mut().enumerate().take(nb) {
        *o = BlockQ8Kx8::default();
        for t in 0..ntok {
            let src = &q[t * nb + b];
            for k in 0..QK_K / 4 {
                o.qs[k][4 * t..4 * t + 4].copy_from_slice(&src.qs[4 * k..4 * k + 4]);
            }
            o.d[t] = src.d;
            for j in 0..8 {
                o.bsums[j][2 * t] = src.bsums[2 * j];
                o.bsums[j][2 * t + 1] = src.bsums[2 * j + 1];
            }
        }
    }
}

#[inline(always)]
pub fn f16_to_f32(bits: u16) -> f32 {
    half::f16::from_bits(bits).to_f32()
}

/// The f16 at `at` in `b`, as f32.
#[inline(always)]
pub fn f16_at(b: &[u8], at: usize) -> f32 {
    f16_to_f32(u16::from_le_bytes([b[at], b[at + 1]]))
}

#[inline(always)]
pub fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// f32 rounded to f16 and back (how ggml stores block scales).
#[inline(always)]
fn through_f16(x: f32) -> f32 {
    half::f16::from_f32(x).to_f32()
}

/// Adding then subtracting 1.5 * 2^23 rounds an f32 of magnitude below 2^22 to an integer,
/// half to even, and leaves that integer in the low mantissa bits of the sum.
const ROUNDER: f32 = 12582912.0;

/// llama.cpp's `nearest_int`: round half to even, for |v| < 2^22.
#[inline(always)]
fn nearest_int(v: f32) -> i32 {
    ((v + ROUNDER).to_bits() as i32 & 0x007f_ffff) - 0x0040_0000
}

/// Largest |x|, in 8 independent lanes so that it vectorizes (max is exact in any order).
#[inline(always)]
fn abs_max(x: &[f32]) -> f32 {
    let mut m = [0f32; 8];
    for c in x.chunks_exact(8) {
        for (m, v) in m.iter_mut().zip(c) {
            *m = m.max(v.abs());
        }
    }
    m.iter().fold(0f32, |a, &b| a.max(b))
}

/// Quantizes `x` (a whole number of 32-blocks) as llama.cpp's SIMD `quantize_row_q8_0` /
/// `quantize_row_q8_1` (x86 AVX2, also ARM NEON and wasm SIMD), which is what llama.cpp runs, not
/// its scalar `_ref` versions: `q = round_half_even(x * (127 / amax))`, `d = f16(amax / 127)`.
/// The `_ref` versions multiply by `1 / d` and round halves away from zero; the two disagree on
/// a few values per thousand (exact ties are common in Gemma's activations), and every such
/// flip moves the logits by far more than float rounding does.
pub fn quantize_q8(x: &[f32], out: &mut [BlockQ8]) {
    assert_eq!(x.len(), out.len() * QK);
    for (xb, y) in x.chunks_exact(QK).zip(out.iter_mut()) {
        let amax = abs_max(xb);
        let d = amax / 127.0;
        let id = if amax != 0.0 { 127.0 / amax } else { 0.0 };
        for (q, &v) in y.qs.iter_mut().zip(xb) {
            *q = nearest_int(v * id) as i8;
        }
        let sum: i32 = y.qs.iter().map(|&q| q as i32).sum();
        y.d = through_f16(d);
        y.s = through_f16(sum as f32 * d);
    }
}

/// Quantizes `x` (a whole number of 256-blocks) as llama.cpp's `quantize_row_q8_K_ref`:
/// `d = -max / 127` where `max` is the signed value of largest magnitude (the first one, if
/// several tie), `q = nearest_int(x / d)`.
pub fn quantize_q8k(x: &[f32], out: &mut [BlockQ8K]) {
    assert_eq!(x.len(), out.len() * QK_K);
    for (xb, y) in x.chunks_exact(QK_K).zip(out.iter_mut()) {
        let amax = abs_max(xb);
        if amax == 0.0 {
            *y = BlockQ8K::default();
            continue;
        }
        let max = *xb.iter().find(|v| v.abs() == amax).unwrap();
        let iscale = -127.0 / max;
        for (q, &v) in y.qs.iter_mut().zip(xb) {
            *q = nearest_int(iscale * v).min(127) as i8;
        }
        for (s, g) in y.bsums.iter_mut().zip(y.qs.chunks_exact(16)) {
            *s = g.iter().map(|&q| q as i16).sum();
        }
        y.d = 1.0 / iscale;
    }
}

/// The 8 scales and 8 mins (6 bits each) of a Q4_K/Q5_K super-block, from its 12 scale bytes.
/// Scale/min `j < 4` are the low 6 bits of bytes `j` / `j + 4`; for `j >= 4` the low 4 bits come
/// from byte `j + 4` (low / high nibble) and the top 2 bits from bytes `j - 4` / `j` (bits 6-7).
#[inline(always)]
pub fn q4k_scales_mins(s: &[u8]) -> ([u8; 8], [u8; 8]) {
    let (mut sc, mut mn) = ([0u8; 8], [0u8; 8]);
    for j in 0..4 {
        sc[j] = s[j] & 63;
        mn[j] = s[j + 4] & 63;
        sc[j + 4] = (s[j + 8] & 0xF) | ((s[j] >> 6) << 4);
        mn[j + 4] = (s[j + 8] >> 4) | ((s[j + 4] >> 6) << 4);
    }
    (sc, mn)
}

/// The 16 signed scales of a Q3_K super-block (6 bits, minus 32), from its 12 scale bytes.
/// Scale `j` has its low 4 bits in byte `j % 8` (low nibble for `j < 8`, high for `j >= 8`) and
/// its top 2 bits in byte `8 + j % 4` at bit `2 * (j / 4)`.
#[inline(always)]
pub fn q3k_scales(s: &[u8]) -> [i8; 16] {
    let mut out = [0i8; 16];
    for (j, o) in out.iter_mut().enumerate() {
        let low = (s[j % 8] >> (4 * (j / 8))) & 0xF;
        let high = (s[8 + j % 4] >> (2 * (j / 4))) & 3;
        *o = ((low | (high << 4)) as i8) - 32;
    }
    out
}

/// See [`super::q5_0_as_q8_0`]. Q5_0 (22 bytes): d: f16, qh: u32 with the 5th bit of value j in
/// bit j, qs: value j in the low nibble of byte j and value j + 16 in its high nibble.
pub(crate) fn q5_0_as_q8_0(q5: &[u8]) -> Vec<u8> {
    assert!(q5.len() % 22 == 0, "kernels: not whole Q5_0 blocks");
    let mut out = Vec::with_capacity(q5.len() / 22 * 34);
    for b in q5.chunks_exact(22) {
        out.extend_from_slice(&b[0..2]);
        let qh = u32::from_le_bytes([b[2], b[3], b[4], b[5]]);
        let value = |j: usize| {
            let nibble = if j < 16 {
                b[6 + j] & 0xF
            } else {
                b[6 + j - 16] >> 4
            };
            (nibble | (((qh >> j) & 1) as u8) << 4) as i8 - 16
        };
        out.extend((0..QK).map(|j| value(j) as u8));
    }
    out
}

/// IQ4_NL's 16 levels (llama.cpp's `kvalues_iq4nl`): a 4-bit index picks one, times the block's
/// scale.
const IQ4_LEVELS: [i8; 16] = [
    -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113,
];

/// The 32 levels of one IQ4 group of 16 bytes, in order: low nibbles, then high nibbles.
fn iq4_group(qs: &[u8], out: &mut Vec<u8>) {
    out.extend(qs.iter().map(|&b| IQ4_LEVELS[(b & 0xF) as usize] as u8));
    out.extend(qs.iter().map(|&b| IQ4_LEVELS[(b >> 4) as usize] as u8));
}

/// IQ4_NL blocks (f16 scale, 32 four-bit indices into [`IQ4_LEVELS`]) rewritten as Q8_0 blocks
/// with the same values: each index becomes its level as a byte under the same scale, so nothing
/// is rounded, and the Q8_0 kernels of every backend run them (for 34 bytes instead of 18).
pub(crate) fn iq4_nl_as_q8_0(iq4: &[u8]) -> Vec<u8> {
    assert!(iq4.len() % 18 == 0, "kernels: not whole IQ4_NL blocks");
    let mut out = Vec::with_capacity(iq4.len() / 18 * 34);
    for b in iq4.chunks_exact(18) {
        out.extend_from_slice(&b[0..2]);
        iq4_group(&b[2..18], &mut out);
    }
    out
}

/// IQ4_XS super-blocks (an f16 scale, eight 6-bit group scales, 256 four-bit indices into
/// [`IQ4_LEVELS`]) rewritten as eight Q8_0 blocks each: a group's scale `d * (ls - 32)` becomes
/// its block's f16 scale (rounded to f16: at most 2^-12 relative, where llama.cpp keeps it in
/// f32), and each index its level as a byte.
pub(crate) fn iq4_xs_as_q8_0(iq4: &[u8]) -> Vec<u8> {
    assert!(iq4.len() % 136 == 0, "kernels: not whole IQ4_XS blocks");
    let mut out = Vec::with_capacity(iq4.len() / 136 * 8 * 34);
    for b in iq4.chunks_exact(136) {
        let d = half::f16::from_le_bytes([b[0], b[1]]).to_f32();
        let scales_h = u16::from_le_bytes([b[2], b[3]]);
        let (scales_l, qs) = (&b[4..8], &b[8..136]);
        for g in 0..8 {
            let low = (scales_l[g / 2] >> (4 * (g % 2))) & 0xF;
            let high = ((scales_h >> (2 * g)) & 3) as u8;
            let ls = (low | high << 4) as i32 - 32;
            out.extend_from_slice(&half::f16::from_f32(d * ls as f32).to_le_bytes());
            iq4_group(&qs[16 * g..16 * (g + 1)], &mut out);
        }
    }
    out
}

/// Byte offsets of the f16 scales (d, dmin) inside one weight block of type `t`: random test
/// weights get finite values there (random bytes could be inf or NaN), random bytes elsewhere.
pub fn f16_scale_offsets(t: QType) -> &'static [usize] {
    match t {
        QType::Q4_0 | QType::Q5_0 | QType::Q8_0 => &[0],
        QType::Q4_1 | QType::Q5_1 | QType::Q4K | QType::Q5K => &[0, 2],
        QType::Q2K => &[80, 82],
        QType::Q3K => &[108],
        QType::Q6K => &[208],
        QType::IQ2XXS | QType::IQ2XS | QType::IQ2S | QType::IQ3XXS | QType::IQ3S => &[0],
        QType::F32 | QType::F16 | QType::BF16 => &[],
    }
}

/// One 32-value group of an IQ2 / IQ3 super-block as the SIMD kernels take it: four grid entries
/// of 8 magnitudes (IQ3: two 4-magnitude entries packed low, high), and a sign byte per 8 values
/// (bit `j` set: value `j` negated). The portable reference decodes blocks its own way
/// (`reference::decode_iq`), so the kernel tests compare two readings of the layouts.
pub struct IqGroup {
    pub grid: [u64; 4],
    pub signs: [u8; 4],
}

/// An IQ2 / IQ3 block layout: its bytes, the factor its dot ends with (`ls` times this is the
/// multiple of `d`: 1/8 for IQ2, 1/4 for IQ3_XXS, 1 for IQ3_S), and how group `ib` (values
/// `32 * ib..`) of the block at `b` reads: its values, and the 4-bit scales of its two 16-value
/// halves (`ls = 2 * scale + 1`). Safety (both): `b` points at a whole block, `ib < 8`.
pub trait IqLayout {
    const BYTES: usize;
    const FACTOR: f32;
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup;
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2];
}

#[inline(always)]
unsafe fn u32_ptr(p: *const u8) -> u32 {
    (p as *const u32).read_unaligned()
}

/// The two nibbles of a scale byte, low first.
#[inline(always)]
fn nibbles2(sc: u8) -> [u8; 2] {
    [sc & 0xF, sc >> 4]
}

/// IQ2_XXS (66 bytes): per group, four grid bytes then a u32 of four 7-bit sign indices and the
/// scale (bits 28..32).
pub struct Iq2Xxs;
impl IqLayout for Iq2Xxs {
    const BYTES: usize = 66;
    const FACTOR: f32 = 0.125;
    #[inline(always)]
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup {
        let p = b.add(2 + 8 * ib);
        let aux = u32_ptr(p.add(4));
        IqGroup {
            grid: [0, 1, 2, 3].map(|l| IQ2XXS_GRID[*p.add(l) as usize]),
            signs: [0, 1, 2, 3].map(|l| KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127]),
        }
    }
    #[inline(always)]
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2] {
        [(u32_ptr(b.add(6 + 8 * ib)) >> 28) as u8; 2]
    }
}

/// IQ2_XS (74 bytes): per 8 values a u16 (9-bit grid index, 7-bit sign index) at 2; a scale
/// byte per group at 66.
pub struct Iq2Xs;
impl IqLayout for Iq2Xs {
    const BYTES: usize = 74;
    const FACTOR: f32 = 0.125;
    #[inline(always)]
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup {
        let v = [0, 1, 2, 3].map(|l| (b.add(2 + 2 * (4 * ib + l)) as *const u16).read_unaligned());
        IqGroup {
            grid: v.map(|v| IQ2XS_GRID[(v & 511) as usize]),
            signs: v.map(|v| KSIGNS_IQ2XS[(v >> 9) as usize]),
        }
    }
    #[inline(always)]
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2] {
        nibbles2(*b.add(66 + ib))
    }
}

/// IQ2_S (82 bytes): grid index low bytes at 2, sign bytes at 34, the indices' top 2 bits at 66
/// (a byte per group), scale bytes at 74.
pub struct Iq2S;
impl IqLayout for Iq2S {
    const BYTES: usize = 82;
    const FACTOR: f32 = 0.125;
    #[inline(always)]
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup {
        let qh = *b.add(66 + ib) as usize;
        IqGroup {
            grid: [0, 1, 2, 3]
                .map(|l| IQ2S_GRID[*b.add(2 + 4 * ib + l) as usize | ((qh >> (2 * l)) & 3) << 8]),
            signs: [0, 1, 2, 3].map(|l| *b.add(34 + 4 * ib + l)),
        }
    }
    #[inline(always)]
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2] {
        nibbles2(*b.add(74 + ib))
    }
}

/// IQ3_XXS (98 bytes): eight grid bytes per group at 2, then per group a u32 at 66 of four 7-bit
/// sign indices and the scale.
pub struct Iq3Xxs;
impl IqLayout for Iq3Xxs {
    const BYTES: usize = 98;
    const FACTOR: f32 = 0.25;
    #[inline(always)]
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup {
        let q = b.add(2 + 8 * ib);
        let aux = u32_ptr(b.add(66 + 4 * ib));
        IqGroup {
            grid: [0, 1, 2, 3].map(|l| {
                IQ3XXS_GRID[*q.add(2 * l) as usize] as u64
                    | (IQ3XXS_GRID[*q.add(2 * l + 1) as usize] as u64) << 32
            }),
            signs: [0, 1, 2, 3].map(|l| KSIGNS_IQ2XS[(aux >> (7 * l)) as usize & 127]),
        }
    }
    #[inline(always)]
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2] {
        [(u32_ptr(b.add(66 + 4 * ib)) >> 28) as u8; 2]
    }
}

/// IQ3_S (110 bytes): eight grid index low bytes per group at 2, their 9th bits at 66 (a byte per
/// group), sign bytes at 74, a scale nibble per group at 106.
pub struct Iq3S;
impl IqLayout for Iq3S {
    const BYTES: usize = 110;
    const FACTOR: f32 = 1.0;
    #[inline(always)]
    unsafe fn group(b: *const u8, ib: usize) -> IqGroup {
        let q = b.add(2 + 8 * ib);
        let qh = *b.add(66 + ib) as usize;
        let index = |k: usize| *q.add(k) as usize | ((qh >> k) & 1) << 8;
        IqGroup {
            grid: [0, 1, 2, 3].map(|l| {
                IQ3S_GRID[index(2 * l)] as u64 | (IQ3S_GRID[index(2 * l + 1)] as u64) << 32
            }),
            signs: [0, 1, 2, 3].map(|l| *b.add(74 + 4 * ib + l)),
        }
    }
    #[inline(always)]
    unsafe fn scales(b: *const u8, ib: usize) -> [u8; 2] {
        [nibbles2(*b.add(106 + ib / 2))[ib % 2]; 2]
    }
}

/// Byte `j` of entry `s` is -1 where bit `j` of `s` is set, else +1: a sign byte as eight
/// multipliers (AVX2's `sign_epi8` operand; SIMD128 widens and multiplies).
pub const SIGN_BYTES: [u64; 256] = {
    let mut t = [0u64; 256];
    let mut s = 0;
    while s < 256 {
        let mut j = 0;
        while j < 8 {
            let byte: u64 = if (s >> j) & 1 == 1 { 0xFF } else { 0x01 };
            t[s] |= byte << (8 * j);
            j += 1;
        }
        s += 1;
    }
    t
};
