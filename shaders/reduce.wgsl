// out[o] = scale * Σ x over the reduced axes (those where out_shape is 1 and in_shape is
// not), each output summed in a fixed order, so results repeat exactly run to run.
//   reduce_to_serial  one invocation per output, summing in input index order (the CPU
//                     kernel's order); for many outputs or short sums. This and
//                     reduce_to_tree_order run in workgroups of WG_SUMS.
//   reduce_to_tree    one workgroup per output: invocation t sums elements t, t+256, ...
//                     in order, then a fixed pairwise tree; for few outputs with long
//                     sums.
//   reduce_to_tree_order
//                     one invocation per output, summing in reduce_to_tree's association
//                     (so the same bits): for few outputs with sums of a few hundred,
//                     where a workgroup's barriers cost more than the tree saves (on
//                     lavapipe the bias gradients of a batch of 256 took 30 % of an MLP
//                     step).

struct ReduceParams {
    out_shape: vec4<u32>,
    reduced: vec4<u32>,    // extent of each reduced axis, 1 on kept axes
    in_strides: vec4<u32>, // row-major strides of the input
    n_out: u32,
    count: u32,            // elements summed per output
    off_x: u32,
    off_out: u32,
    scale: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> p: ReduceParams;
@group(0) @binding(1) var<storage, read> x: array<Store>;
@group(0) @binding(2) var<storage, read_write> out: array<Store>;

fn unravel(i: u32, shape: vec4<u32>) -> vec4<u32> {
    var rest = i;
    let i3 = rest % shape.w;
    rest /= shape.w;
    let i2 = rest % shape.z;
    rest /= shape.z;
    let i1 = rest % shape.y;
    rest /= shape.y;
    return vec4<u32>(rest % shape.x, i1, i2, i3);
}

// The input word of the r-th summand of the output whose index vector is `base`.
fn input_offset(base: vec4<u32>, r: u32) -> u32 {
    return p.off_x + dot(base + unravel(r, p.reduced), p.in_strides);
}

// Where the summands of the output at `base` are: its first word, and the stride between
// consecutive ones when the sum runs along one axis (a bias gradient, down the rows);
// else each summand's word is unravelled (four divisions).
struct Summands {
    first: u32,
    stride: u32,
}

fn summands(base: vec4<u32>) -> Summands {
    var stride = 0u;
    for (var a = 0u; a < 4u; a++) {
        if p.reduced[a] == p.count {
            stride = p.in_strides[a];
        }
    }
    return Summands(p.off_x + dot(base, p.in_strides), stride);
}

// Whether the pipeline sums along one axis (ONE_AXIS, a pipeline override: a bias
// gradient, down the rows), so that every summand is at a stride from the first; the
// host picks such a pipeline only for such a sum. Deciding it per pipeline rather than
// per summand keeps the branch out of the sums' inner loops: on lavapipe the branch
// made a [1536, 256] bias gradient 3.7x slower.
override ONE_AXIS: bool = false;

// The r-th summand.
fn summand(at: Summands, base: vec4<u32>, r: u32) -> f32 {
    if ONE_AXIS {
        return f32(x[at.first + r * at.stride]);
    }
    return f32(x[input_offset(base, r)]);
}

@compute @workgroup_size(WG_SUMS)
fn reduce_to_serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = flat_index_of(wg, nwg, lid, WG_SUMS);
    if o >= p.n_out {
        return;
    }
    let base = unravel(o, p.out_shape);
    let at = summands(base);
    var acc = 0.0;
    for (var r = 0u; r < p.count; r++) {
        acc += summand(at, base, r);
    }
    out[p.off_out + o] = Store(acc * p.scale);
}

@compute @workgroup_size(WG)
fn reduce_to_tree(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = wg.y * nwg.x + wg.x;
    if o >= p.n_out {
        return; // the whole workgroup
    }
    let base = unravel(o, p.out_shape);
    let at = summands(base);
    var acc = 0.0;
    for (var r = lid; r < p.count; r += WG) {
        acc += summand(at, base, r);
    }
    let sum = workgroup_tree_sum(lid, acc);
    if lid == 0u {
        out[p.off_out + o] = Store(sum * p.scale);
    }
}

// reduce_to_tree's sum of one output by one invocation: the tree's leaves (invocation t's
// partial sum of elements t, t+WG, ...) are taken in its left-to-right order, which is t
// bit-reversed, and combined on a stack as a binary counter carries: leaf k closes as
// many subtrees as k has trailing ones. So every addition pairs the same two values as
// the tree's, and the bits agree. (Writing out the first three levels, eight leaves a
// step, measured no faster on lavapipe.)
@compute @workgroup_size(WG_SUMS)
fn reduce_to_tree_order(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = flat_index_of(wg, nwg, lid, WG_SUMS);
    if o >= p.n_out {
        return;
    }
    let base = unravel(o, p.out_shape);
    let at = summands(base);
    let levels = firstTrailingBit(WG); // log2 of WG, a power of two
    var stack: array<f32, 16>;
    var depth = 0u;
    for (var k = 0u; k < WG; k++) {
        let t = reverseBits(k) >> (32u - levels);
        var v = 0.0;
        for (var r = t; r < p.count; r += WG) {
            v += summand(at, base, r);
        }
        for (var carry = k; (carry & 1u) == 1u; carry >>= 1u) {
            depth -= 1u;
            v = stack[depth] + v;
        }
        stack[depth] = v;
        depth += 1u;
    }
    out[p.off_out + o] = Store(stack[0] * p.scale);
}
