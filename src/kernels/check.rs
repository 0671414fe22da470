//! A self-check of this build's fastest kernels against the reference, on pseudo-random blocks
//! of every quantized type, in decode, token-tile and eight-token prefill shapes.
//!
//! The browser worker runs it before trusting the relaxed-SIMD flavour: relaxed instructions
//! are implementation-defined outside their documented ranges, and engines have computed them
//! wrongly (Node 20's V8 does, here), so that flavour is used only where its kernels agree with
//! the reference on the machine at hand.
//! It calls the kernels directly, on the calling thread: no thread pool is needed or touched.

use super::blocks::{self, Activation, BlockQ8, BlockQ8K};
use super::{reference, select, Kernel, Tile, Tile8, TOKENS_PER_TILE};
use crate::gguf::QType;

const ROWS: usize = 6;
const COLS: usize = 512;
const TOKENS: usize = 8;

/// xorshift64*: enough to vary every nibble, bit and scale byte.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// `rows` rows of `cols` values of `t`: random bytes, with finite f16 block scales.
fn random_weights(rng: &mut Rng, t: QType, rows: usize, cols: usize) -> Vec<u8> {
    let block = blocks::block_shape(t).1;
    let mut w: Vec<u8> = (0..rows * blocks::row_bytes(t, cols))
        .map(|_| rng.next() as u8)
        .collect();
    for b in w.chunks_exact_mut(block) {
        for &at in blocks::f16_scale_offsets(t) {
            // f16 in about [-0.06, 0.06]: sign, exponent 2^-5 .. 2^-4, random mantissa.
            let h = ((rng.next() as u16) & 0x83FF) | 0x2800;
            b[at..at + 2].copy_from_slice(&h.to_le_bytes());
        }
    }
    w
}

/// Runs the check: `Err` names the first type and shape whose kernel disagrees.
pub fn self_check() -> Result<(), String> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // Every quantized type (the float kernels have no integer arithmetic to get wrong).
    let quantized = QType::ALL
        .into_iter()
        .filter(|t| !matches!(t, QType::F32 | QType::F16 | QType::BF16));
    for t in quantized {
        let rb = blocks::row_bytes(t, COLS);
        let w = random_weights(&mut rng, t, ROWS, COLS);
        let x: Vec<f32> = (0..TOKENS * COLS).map(|_| rng.unit()).collect();
        let (fast, slow) = (select(t), reference::kernel(t));
        let bound = magnitude(t, &w, &x);
        let same = |what: &str, a: &[f32], b: &[f32]| -> Result<(), String> {
            for (i, (a, b)) in a.iter().zip(b).enumerate() {
                let tol = 1e-5 * bound[i % ROWS] + 1e-6;
                let close = (a - b).abs() <= tol; // false for NaN too
                if !close {
                    return Err(format!(
                        "{t:?} {what}: output {i} is {a}, the reference says {b}"
                    ));
                }
            }
            Ok(())
        };
        match (fast, slow) {
            (Kernel::Q8(k, k8), Kernel::Q8(r, _)) => {
                compare::<BlockQ8>(&w, rb, &x, k, k8, r, &same)?
            }
            (Kernel::Q8K(k, k8), Kernel::Q8K(r, _)) => {
                compare::<BlockQ8K>(&w, rb, &x, k, k8, r, &same)?
            }
            _ => return Err(format!("{t:?}: no quantized kernel")),
        }
    }
    Ok(())
}

/// Per row, the largest `sum |w_i x_i|` over the tokens: what the tolerance scales with.
fn magnitude(t: QType, w: &[u8], x: &[f32]) -> Vec<f32> {
    let rb = w.len() / ROWS;
    let mut row = vec![0f32; COLS];
    (0..ROWS)
        .map(|r| {
            reference::dequantize(t, &w[r * rb..(r + 1) * rb], &mut row);
            x.chunks_exact(COLS)
                .map(|xt| row.iter().zip(xt).map(|(a, b)| (a * b).abs()).sum::<f32>())
                .fold(0.0, f32::max)
        })
        .collect()
}

/// Decode (one token), a token tile, and the eight-token kernel against the reference tile.
fn compare<B: Activation>(
    w: &[u8],
    rb: usize,
    x: &[f32],
    k: Tile<B>,
    k8: Option<Tile8<B::X8>>,
    r: Tile<B>,
    same: &impl Fn(&str, &[f32], &[f32]) -> Result<(), String>,
) -> Result<(), String> {
    let nb = COLS / B::VALUES;
    let mut xq = vec![B::default(); TOKENS * nb];
    B::quantize(x, &mut xq);
    // The reference, token tile by token tile: out[t * ROWS + r].
    let mut want = vec![0f32; TOKENS * ROWS];
    for t0 in (0..TOKENS).step_by(TOKENS_PER_TILE) {
        let o = &mut want[t0 * ROWS..(t0 + TOKENS_PER_TILE) * ROWS];
        // SAFETY: the reference needs no CPU feature; lengths are as `Tile` documents.
        unsafe { r(w, rb, &xq[t0 * nb..], nb, TOKENS_PER_TILE, o) };
    }
    // SAFETY (the calls below): `select` only hands out kernels whose features this build has.
    let mut got = vec![0f32; ROWS];
    unsafe { k(w, rb, &xq, nb, 1, &mut got) };
    same("decode", &got, &want[..ROWS])?;
    let mut got = vec![0f32; TOKENS_PER_TILE * ROWS];
    unsafe { k(w, rb, &xq[nb..], nb, TOKENS_PER_TILE, &mut got) };
    same(
        "token tile",
        &got,
        &want[ROWS..(1 + TOKENS_PER_TILE) * ROWS],
    )?;
    if let Some(k8) = k8 {
        let mut x8 = vec![B::X8::default(); nb];
        B::interleave(&xq, TOKENS, nb, &mut x8);
        let mut got = vec![0f32; TOKENS * ROWS];
        unsafe { k8(w, rb, &x8, &mut got) };
        same("eight-token prefill", &got, &want)?;
    }
    Ok(())
}
