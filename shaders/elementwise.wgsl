// Elementwise kernels, one invocation per output element over a 1-D index that may
// wrap into a 2-D grid of workgroups (see flat_index in common.wgsl).
//   fill      out[i] = value
//   binary    out[i] = x[bcast_x(i)] (op) y[bcast_y(i)], rank-4 broadcasting by strides
//   unary     out[i] = act(x[i])
//   act_grad  out[i] = x[i] * act'(.) from y[i]: act's output, or its input (gelu, silu)
//   expand_to out[i] = value * x[bcast_x(i)]
//   copy_cols out[r, dst_start + c] = x[r, src_start + c] for r < rows, c < cols
// Offsets are in elements (of `Store`, the precision header's type) from the start of
// each bound window.

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> x: array<Store>;
@group(0) @binding(2) var<storage, read> y: array<Store>;
@group(0) @binding(3) var<storage, read_write> out: array<Store>;

// The word offset of flat output index i in an operand with the given strides.
fn broadcast_offset(i: u32, strides: vec4<u32>) -> u32 {
    var rest = i;
    let i3 = rest % p.shape.w;
    rest /= p.shape.w;
    let i2 = rest % p.shape.z;
    rest /= p.shape.z;
    let i1 = rest % p.shape.y;
    rest /= p.shape.y;
    let i0 = rest % p.shape.x;
    return dot(vec4<u32>(i0, i1, i2, i3), strides);
}

@compute @workgroup_size(WG_FLAT)
fn fill(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        out[p.off_out + i] = Store(p.value);
    }
}

@compute @workgroup_size(WG_FLAT)
fn binary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let u = f32(x[p.off_x + broadcast_offset(i, p.x_strides)]);
    let v = f32(y[p.off_y + broadcast_offset(i, p.y_strides)]);
    var r: f32;
    switch p.code {
        case BINARY_ADD: { r = u + v; }
        case BINARY_SUB: { r = u - v; }
        case BINARY_MUL: { r = u * v; }
        default: { r = u / v; }
    }
    out[p.off_out + i] = Store(r);
}

@compute @workgroup_size(WG_FLAT)
fn unary(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        out[p.off_out + i] = Store(activate(p.code, f32(x[p.off_x + i])));
    }
}

@compute @workgroup_size(WG_FLAT)
fn act_grad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        out[p.off_out + i] = Store(f32(x[p.off_x + i]) * activation_slope(p.code, f32(y[p.off_y + i])));
    }
}

@compute @workgroup_size(WG_FLAT)
fn expand_to(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        out[p.off_out + i] = Store(p.value * f32(x[p.off_x + broadcast_offset(i, p.x_strides)]));
    }
}

@compute @workgroup_size(WG_FLAT)
fn copy_cols(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        let r = i / p.cols;
        let c = i % p.cols;
        out[p.off_out + r * p.dst_cols + p.dst_start + c] = x[p.off_x + r * p.src_cols + p.src_start + c];
    }
}
