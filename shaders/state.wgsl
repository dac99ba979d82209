// The kernels that write state the host reads: the loss accumulator and the collected
// outputs. They read tensors (`Store`, the precision header's type) and write f32
// whatever the precision, since an epoch's loss sum and a model's scores keep their
// low digits (DESIGN.md, flow item 8).
//   accumulate  out[0] += src[0]
//   collect     out[s * n + i] = src[i], s the step within the run (counters[off_step])
// Their record is `GatherParams` (common.wgsl): n, off_src, off_step, off_out.

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> src: array<Store>;
@group(0) @binding(3) var<storage, read> counters: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(1)
fn accumulate() {
    out[p.off_out] += f32(src[p.off_src]);
}

@compute @workgroup_size(WG_FLAT)
fn collect(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i < p.n {
        out[p.off_out + counters[p.off_step] * p.n + i] = f32(src[p.off_src + i]);
    }
}
