// Shared by every module that reads quantized weights. A weight row is a run of blocks, each
// padded at upload to a whole number of 32-bit words (see gpu/weights.rs). Every type is read as
// "units" of 32 weights: unit value i = a[h] * (q[i] - OFF) + m[h], h = i / 16 (the half).
// q packs four signed bytes per word so that dot4I8Packed multiplies them with the activations.
struct WUnit {
    q: array<u32, 8>,
    a: vec2<f32>,
    m: vec2<f32>,
}

fn f16lo(v: u32) -> f32 { return unpack2x16float(v).x; }
fn f16hi(v: u32) -> f32 { return unpack2x16float(v).y; }
fn byte_at(word: u32, i: u32) -> u32 { return (word >> (8u * i)) & 0xffu; }
// Byte i of a word as a signed value.
fn sbyte_at(word: u32, i: u32) -> i32 { return bitcast<i32>(word << (24u - 8u * i)) >> 24u; }
