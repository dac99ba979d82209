// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), as matmul.wgsl computes it, with the
// sum over k split among a workgroup's invocations: for the skinny products of weight
// gradients (k the batch's rows, m x n a layer's weights: [256,64]^T [256,32]), whose
// few output tiles leave most of a hardware GPU idle in the other variants. A workgroup
// of SK_SIDE^2 x SK_SPLITS invocations computes an SK_SIDE x SK_SIDE tile: invocation li
// sums output li % SK_SIDE^2 over the (li / SK_SIDE^2)-th of SK_SPLITS consecutive
// chunks of k, in index order, and the chunks' partial sums are added in chunk order
// through workgroup memory. Deterministic, but not the default's order of the sum: its
// bits differ from the default's by rounding, so the tuner takes it only where it is
// clearly faster (`SPLIT_K_MARGIN`, src/engine/gpu/tune.rs).
//
// Compiled after common.wgsl, the variant's constants (SK_SIDE, SK_SPLITS), the
// operands' file and matmul_common.wgsl (src/engine/gpu/shaders.rs, `MATMUL_VARIANTS`).

const SK_OUTPUTS: u32 = SK_SIDE * SK_SIDE;

var<workgroup> partial: array<f32, SK_OUTPUTS * SK_SPLITS>;

@compute @workgroup_size(SK_OUTPUTS * SK_SPLITS)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wg.y * nwg.x + wg.x;
    if tile >= p.tiles {
        return; // the whole workgroup: the barrier stays uniform
    }
    let o = li % SK_OUTPUTS;
    let split = li / SK_OUTPUTS;
    let row = (tile / p.tiles_n) * SK_SIDE + o / SK_SIDE;
    let col = (tile % p.tiles_n) * SK_SIDE + o % SK_SIDE;
    let chunk = (p.k + SK_SPLITS - 1u) / SK_SPLITS;
    let k_end = min(p.k, (split + 1u) * chunk);
    var z = 0.0;
    for (var kk = split * chunk; kk < k_end; kk++) {
        z += load_a(row, kk) * load_b(kk, col);
    }
    partial[li] = z;
    workgroupBarrier();
    if split == 0u {
        var sum = partial[o];
        for (var s = 1u; s < SK_SPLITS; s++) {
            sum += partial[s * SK_OUTPUTS + o];
        }
        store(row, col, sum);
    }
}
