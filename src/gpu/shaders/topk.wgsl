// The K = 64 largest (value, id) pairs, by rounds: each workgroup sorts 1024 candidates in
// workgroup memory (bitonic, descending value, ascending id on ties; NaN counts as -inf) and
// writes its best 64. A round over the vocabulary's logits (ids are the indices) leaves
// ceil(vocab / 1024) * 64 candidates; further rounds over those end with one workgroup's 64.
struct Params {
    count: u32,      // candidates in
    in_offset: u32,  // first value (logits of the last token)
    has_ids: u32,    // 0: the id is the index
    _a: u32,
}

@group(0) @binding(0) var<storage, read> vals: array<f32>;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read_write> out_vals: array<f32>;
@group(0) @binding(3) var<storage, read_write> out_ids: array<u32>;
@group(0) @binding(4) var<uniform> p: Params;

const N = 1024u;
var<workgroup> sv: array<f32, 1024>;
var<workgroup> si: array<u32, 1024>;

// Whether (va, ia) should come before (vb, ib).
fn before(va: f32, ia: u32, vb: f32, ib: u32) -> bool {
    return va > vb || (va == vb && ia < ib);
}

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) li: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    for (var j = 0u; j < 4u; j++) {
        let e = li + 256u * j;
        let g = wid.x * N + e;
        var val = -3.4e38;
        var id = 0xffffffffu;
        if (g < p.count) {
            val = vals[p.in_offset + g];
            // NaN, tested on the bits (compilers may fold `val != val` away).
            if ((bitcast<u32>(val) & 0x7fffffffu) > 0x7f800000u) {
                val = -3.4e38;
            }
            id = select(g, ids[g], p.has_ids != 0u);
        }
        sv[e] = val;
        si[e] = id;
    }
    workgroupBarrier();
    for (var size = 2u; size <= N; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            for (var j = 0u; j < 2u; j++) {
                // Each thread handles two of the 512 compare-exchange pairs.
                let c = li + 256u * j;
                let a = (c / stride) * stride * 2u + (c % stride);
                let b = a + stride;
                let descending = (a & size) == 0u;
                let swap = select(before(sv[a], si[a], sv[b], si[b]), before(sv[b], si[b], sv[a], si[a]), descending);
                if (swap) {
                    let tv = sv[a];
                    sv[a] = sv[b];
                    sv[b] = tv;
                    let ti = si[a];
                    si[a] = si[b];
                    si[b] = ti;
                }
            }
            workgroupBarrier();
        }
    }
    if (li < 64u) {
        out_vals[wid.x * 64u + li] = sv[li];
        out_ids[wid.x * 64u + li] = si[li];
    }
}
