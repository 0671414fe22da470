// Scale and min j (6 bits each) of a Q4_K/Q5_K super-block starting at word b: the 12 scale
// bytes sit in words b+1..b+3 (see kernels::blocks::q4k_scales_mins). Prepended to both types.
fn scale_min_k4(b: u32, j: u32) -> vec2<u32> {
    if (j < 4u) {
        return vec2(byte_at(w[b + 1u], j) & 63u, byte_at(w[b + 2u], j) & 63u);
    }
    let lo = byte_at(w[b + 3u], j - 4u);
    let sc = (lo & 15u) | ((byte_at(w[b + 1u], j - 4u) >> 6u) << 4u);
    let mn = (lo >> 4u) | ((byte_at(w[b + 2u], j - 4u) >> 6u) << 4u);
    return vec2(sc, mn);
}
