//! SIMD128 vector helpers the row and prefill kernels share: the decode prefetch, f16 scales,
//! byte and nibble loads into i16 lanes, fifth bits, and the i16 dot products.

use core::arch::wasm32::*;

/// Touches the cache lines of `ahead[at..at + n]` (one volatile byte load per 64 bytes) unless
/// `ahead` is null. Wasm has no prefetch instruction, and V8's decode loops alone leave memory
/// idle much of the time: a decode pass that touches the rows `tile::PREFETCH_AHEAD` bytes past its
/// own, spread over its blocks, streams a matrix that is not in cache about twice as fast
/// (Q8_0, 178 MB: 2.3-2.6 -> 5.9 GB/s in Node, as fast as the AVX2 kernel on this machine).
#[inline(always)]
pub(super) unsafe fn prefetch(ahead: *const u8, at: usize, n: usize) {
    if !ahead.is_null() {
        let mut i = 0;
        while i < n {
            core::ptr::read_volatile(ahead.add(at + i));
            i += 64;
        }
    }
}

/// `[e(0), e(1), e(2), e(3)]` written out (`core::array::from_fn` and `map` take closures that
/// LLVM may leave as calls, and a call returning vectors goes through the wasm stack in memory).
macro_rules! each4 {
    (|$k:ident| $e:expr) => {
        [
            {
                let $k = 0usize;
                $e
            },
            {
                let $k = 1usize;
                $e
            },
            {
                let $k = 2usize;
                $e
            },
            {
                let $k = 3usize;
                $e
            },
        ]
    };
}
pub(super) use each4;

pub(super) const ZERO: v128 = i32x4(0, 0, 0, 0);

#[inline(always)]
pub(super) fn hsum(v: v128) -> f32 {
    let s = f32x4_add(v, i32x4_shuffle::<2, 3, 0, 1>(v, v));
    let s = f32x4_add(s, i32x4_shuffle::<1, 0, 3, 2>(s, s));
    f32x4_extract_lane::<0>(s)
}

/// f16 bits to f32, exactly (subnormals, infinities, NaN), in integer operations and one
/// int-to-float conversion: no denormal f32 is ever an operand (x86 would take a slow assist).
#[inline(always)]
pub(super) fn f16_to_f32(bits: u16) -> f32 {
    let h = bits as u32;
    let m = h & 0x7fff;
    let v = if m < 0x400 {
        // Zero or subnormal: m * 2^-24.
        (m as f32 * (1.0 / 16_777_216.0)).to_bits()
    } else if m >= 0x7c00 {
        (m << 13) | 0x7f80_0000
    } else {
        (m << 13) + (112 << 23)
    };
    f32::from_bits(v | ((h & 0x8000) << 16))
}

/// The little-endian f16 at `p`, as f32.
#[inline(always)]
pub(super) unsafe fn f16_at(p: *const u8) -> f32 {
    f16_to_f32((p as *const u16).read_unaligned())
}

/// Four f16 (the low halves of four u32 lanes) to f32, exactly. Normal numbers (block scales,
/// nearly always) take a few integer operations; a vector with a zero, subnormal, infinity or
/// NaN goes to [`f16x4_to_f32_special`].
#[inline(always)]
pub(super) fn f16x4_to_f32(h: v128) -> v128 {
    let e = v128_and(h, u32x4_splat(0x7c00));
    let special = v128_or(i32x4_eq(e, ZERO), i32x4_eq(e, u32x4_splat(0x7c00)));
    if v128_any_true(special) {
        return f16x4_to_f32_special(h);
    }
    let m = v128_and(h, u32x4_splat(0x7fff));
    let normal = i32x4_add(i32x4_shl(m, 13), u32x4_splat(112 << 23));
    v128_or(normal, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// [`f16x4_to_f32`] for any f16, in integer operations and one int-to-float conversion: no
/// denormal f32 is ever an operand (x86 would take a slow assist).
#[cold]
#[inline(never)]
pub(super) fn f16x4_to_f32_special(h: v128) -> v128 {
    let m = v128_and(h, u32x4_splat(0x7fff));
    let shifted = i32x4_shl(m, 13);
    let normal = i32x4_add(shifted, u32x4_splat(112 << 23));
    let sub = f32x4_mul(f32x4_convert_i32x4(m), f32x4_splat(1.0 / 16_777_216.0));
    let inf = v128_or(shifted, u32x4_splat(0x7f80_0000));
    let v = v128_bitselect(inf, normal, u32x4_ge(m, u32x4_splat(0x7c00)));
    let v = v128_bitselect(sub, v, u32x4_lt(m, u32x4_splat(0x400)));
    v128_or(v, i32x4_shl(v128_and(h, u32x4_splat(0x8000)), 16))
}

/// Eight bytes at `p`, zero-extended into i16 lanes.
#[inline(always)]
pub(super) unsafe fn u8x8(p: *const u8) -> v128 {
    u16x8_load_extend_u8x8(p)
}

/// Eight signed bytes at `p`, sign-extended into i16 lanes.
#[inline(always)]
pub(super) unsafe fn i8x8(p: *const i8) -> v128 {
    i16x8_load_extend_i8x8(p)
}

/// 16 nibble bytes at `p` as 32 values in i16 lanes, in value order: the low nibbles (values
/// 0..16), then the high nibbles (16..32).
#[inline(always)]
pub(super) unsafe fn nibbles(p: *const u8) -> [v128; 4] {
    let lo = u8x8(p);
    let hi = u8x8(p.add(8));
    let m = i16x8_splat(0xF);
    [
        v128_and(lo, m),
        v128_and(hi, m),
        u16x8_shr(lo, 4),
        u16x8_shr(hi, 4),
    ]
}

/// Per value `j` of 32: all ones in its i16 lane where bit `j` of `qh` is set, else zero
/// (vector `k` holds values `8k..8k + 8`): each lane tests its own bit of a splat of 16 bits.
/// (Not a multiply by per-lane powers of two: LLVM turns that into a per-lane shift, which
/// SIMD128 lacks, and scalarizes it.)
#[inline(always)]
pub(super) fn bit_masks(qh: u32) -> [v128; 4] {
    const LO: v128 = i16x8(1, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5, 1 << 6, 1 << 7);
    const HI: v128 = i16x8(
        1 << 8,
        1 << 9,
        1 << 10,
        1 << 11,
        1 << 12,
        1 << 13,
        1 << 14,
        i16::MIN,
    );
    let a = i16x8_splat(qh as i16);
    let b = i16x8_splat((qh >> 16) as i16);
    [
        i16x8_eq(v128_and(a, LO), LO),
        i16x8_eq(v128_and(a, HI), HI),
        i16x8_eq(v128_and(b, LO), LO),
        i16x8_eq(v128_and(b, HI), HI),
    ]
}

/// Sum of `q[k] * a[k]` over 32 values: four i32 lanes. `WIDE` widens each product pair with
/// `dot` (needed for Q8_0), else the products are summed in i16 first.
#[inline(always)]
pub(super) fn dot32(q: &[v128; 4], a: &[v128; 4], wide: bool) -> v128 {
    if wide {
        i32x4_add(
            i32x4_add(i32x4_dot_i16x8(q[0], a[0]), i32x4_dot_i16x8(q[1], a[1])),
            i32x4_add(i32x4_dot_i16x8(q[2], a[2]), i32x4_dot_i16x8(q[3], a[3])),
        )
    } else {
        i32x4_extadd_pairwise_i16x8(i16x8_add(
            i16x8_add(i16x8_mul(q[0], a[0]), i16x8_mul(q[1], a[1])),
            i16x8_add(i16x8_mul(q[2], a[2]), i16x8_mul(q[3], a[3])),
        ))
    }
}

/// `sum q[k] * a[k]` over two vectors (16 values), in i16: the caller bounds it.
#[inline(always)]
pub(super) fn mul2(q0: v128, a0: v128, q1: v128, a1: v128) -> v128 {
    i16x8_add(i16x8_mul(q0, a0), i16x8_mul(q1, a1))
}

/// Four activation vectors (32 values from `p`) sign-extended to i16.
#[inline(always)]
pub(super) unsafe fn act32(p: *const i8) -> [v128; 4] {
    [i8x8(p), i8x8(p.add(8)), i8x8(p.add(16)), i8x8(p.add(24))]
}

/// Lane `i` of `v` in every lane.
#[inline(always)]
pub(super) fn lane_splat(v: v128, i: usize) -> v128 {
    match i {
        0 => i32x4_shuffle::<0, 0, 0, 0>(v, v),
        1 => i32x4_shuffle::<1, 1, 1, 1>(v, v),
        2 => i32x4_shuffle::<2, 2, 2, 2>(v, v),
        _ => i32x4_shuffle::<3, 3, 3, 3>(v, v),
    }
}

#[inline(always)]
pub(super) fn f32x4_extract_lane_dyn(v: v128, i: usize) -> f32 {
    match i {
        0 => f32x4_extract_lane::<0>(v),
        1 => f32x4_extract_lane::<1>(v),
        2 => f32x4_extract_lane::<2>(v),
        _ => f32x4_extract_lane::<3>(v),
    }
}

/// A loop count LLVM cannot see through. Loops over a block's groups or steps must stay rolled:
/// unrolled, LLVM schedules every load of the block first (wasm has unlimited locals) and V8,
/// with 16 vector registers, spills them all.
#[inline(always)]
pub(super) fn opaque(n: usize) -> usize {
    core::hint::black_box(n)
}
