// copy_cols (elementwise.wgsl) four values at a time: out[r, dst_start + c] =
// x[r, src_start + c] for r < rows, c < cols, read and written as vec4s. The host takes
// it (`Pipe::of`) only for a copy whose column counts, starts and both offsets are
// multiples of 4, so that every row's run starts on a vec4 of its binding (a window
// starts at a multiple of the device's offset alignment, a power of two, and is bound in
// whole vec4s). The record is copy_cols's, in elements. On lavapipe a 256 x 256 copy
// took half the time of copy_cols.

@group(0) @binding(0) var<uniform> p: ElementwiseParams;
@group(0) @binding(1) var<storage, read> x: array<vec4<Store>>;
@group(0) @binding(2) var<storage, read_write> out: array<vec4<Store>>;

@compute @workgroup_size(WG_FLAT)
fn copy_cols_vec4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid); // a vec4 of the copy
    if i < p.n / 4u {
        let cols = p.cols / 4u;
        let r = i / cols;
        let c = i % cols;
        out[(p.off_out + r * p.dst_cols + p.dst_start) / 4u + c] = x[(p.off_x + r * p.src_cols + p.src_start) / 4u + c];
    }
}
