// The kernels driven by the step counters: row gathers by an index list and their
// adjoint, dropout (collect, which also reads them, is state.wgsl's). `counters[off_step]` is the step within the current run (the
// executor's counter) and `counters[off_step + 1]` the optimizer's step count, so one
// recorded command buffer serves every step of an epoch. Indices are u32 words.
//   gather_rows       out[b, c] = src[perm[s * batch + b], c]
//   scatter_add_rows  out[r, c] = Σ src[b, c] over b with perm[s * batch + b] == r, b in
//                     order: one invocation per output element, no float atomics, so
//                     the sum is deterministic (and equals the CPU's).
// A table larger than one storage binding is split by rows into pieces, one launch per
// piece (the executor's `row_pieces`): gather_rows then writes only the batch rows whose
// index falls in [first_row, end_row), and scatter_add_rows computes only those table
// rows; the pieces together write every element once, with the same values.
//   dropout           out[i] = src[i] * scale if dropout_hash(seed, t, i) >= threshold,
//                     else 0, with t the optimizer's step count (no perm bound)

// GatherParams, the record, is in common.wgsl: state.wgsl's kernels take it too.

@group(0) @binding(0) var<uniform> p: GatherParams;
@group(0) @binding(1) var<storage, read> src: array<Store>;
@group(0) @binding(2) var<storage, read> perm: array<u32>;
@group(0) @binding(3) var<storage, read> counters: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<Store>;

@compute @workgroup_size(WG_FLAT)
fn gather_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let b = i / p.cols;
    let c = i % p.cols;
    let row = perm[p.off_perm + counters[p.off_step] * p.batch + b];
    if row < p.first_row || row >= p.end_row {
        return;
    }
    out[p.off_out + i] = src[p.off_src + (row - p.first_row) * p.cols + c];
}

@compute @workgroup_size(WG_FLAT)
fn scatter_add_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let r = p.first_row + i / p.cols;
    let c = i % p.cols;
    let window = p.off_perm + counters[p.off_step] * p.batch;
    var acc = 0.0;
    for (var b = 0u; b < p.batch; b++) {
        if perm[window + b] == r {
            acc += f32(src[p.off_src + b * p.cols + c]);
        }
    }
    out[p.off_out + i] = Store(acc);
}

@compute @workgroup_size(WG_FLAT)
fn dropout(@builtin(workgroup_id) wg: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let i = flat_index(wg, nwg, lid);
    if i >= p.n {
        return;
    }
    let keep = dropout_hash(p.seed, counters[p.off_step + 1u], i) >= p.threshold;
    out[p.off_out + i] = Store(select(0.0, f32(src[p.off_src + i]) * p.scale, keep));
}
