// out[o] = scale * Σ x over the reduced axes (those where out_shape is 1 and in_shape is
// not), each output summed in a fixed order, so results repeat exactly run to run.
//   reduce_to_serial  one invocation per output, summing in input index order (the CPU
//                     kernel's order); for many outputs or short sums.
//   reduce_to_tree    one workgroup per output: invocation t sums elements t, t+256, ...
//                     in order, then a fixed pairwise tree; for few outputs with long
//                     sums.

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
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

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

@compute @workgroup_size(WG)
fn reduce_to_serial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = flat_index(wg, nwg, lid);
    if o >= p.n_out {
        return;
    }
    let base = unravel(o, p.out_shape);
    var acc = 0.0;
    for (var r = 0u; r < p.count; r++) {
        acc += x[input_offset(base, r)];
    }
    out[p.off_out + o] = acc * p.scale;
}

@compute @workgroup_size(WG)
fn reduce_to_tree(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let o = wg.y * nwg.x + wg.x;
    if o >= p.n_out {
        return; // the whole workgroup
    }
    let base = unravel(o, p.out_shape);
    var acc = 0.0;
    for (var r = lid; r < p.count; r += WG) {
        acc += x[input_offset(base, r)];
    }
    let sum = workgroup_tree_sum(lid, acc);
    if lid == 0u {
        out[p.off_out + o] = sum * p.scale;
    }
}
