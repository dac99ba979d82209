// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), as matmul.wgsl computes it, with the
// sum over k split among the lanes of a subgroup and added with subgroupAdd: split-K
// without workgroup memory or barriers, for the skinny products of weight gradients
// (matmul_splitk.wgsl's; k the batch's rows, m x n a layer's weights). Built only on an
// adapter with subgroup operations (`Features::SUBGROUP`); elsewhere the tuner never
// offers it, and the other variants remain.
//
// A workgroup of SG_WG invocations computes an SG_SIDE x SG_SIDE tile as 2 x 2 blocks.
// Whatever the adapter's subgroup size (4 to 128; lavapipe's 8, a warp's 32, a
// wavefront's 64, and it may differ pipeline to pipeline), subgroup s of the workgroup's
// S takes blocks s, s + S, ...; within it the active lanes are ranked densely
// (subgroupExclusiveAdd), lane r of L sums the block's four outputs over k = r, r + L,
// ... in index order, and subgroupAdd adds the L partial sums; the first lanes store
// the four outputs. SG_WG = 128, the largest subgroup wgpu admits, so a subgroup never spans
// workgroups, whatever the size.
//
// Deterministic for one adapter and driver (the same lanes take the same k, and the
// hardware's reduction has a fixed order), but not the default's order of the sum, and
// the order depends on the subgroup size: its bits differ from the default's by
// rounding, so the tuner takes it only where it is clearly faster (`SPLIT_K_MARGIN`,
// src/engine/gpu/tune.rs), as it does matmul_splitk.wgsl.
//
// No `enable subgroups;` (naga 30 refuses it; the device's capability admits the
// built-ins). Compiled after common.wgsl, the variant's constants (SG_SIDE),
// the operands' file and matmul_common.wgsl (src/engine/gpu/shaders.rs,
// `MATMUL_VARIANTS`).

const SG_WG: u32 = 128u;
const SG_BLOCKS: u32 = (SG_SIDE / 2u) * (SG_SIDE / 2u);

@compute @workgroup_size(SG_WG)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(subgroup_id) subgroup: u32,
    @builtin(num_subgroups) subgroups: u32,
) {
    let tile = wg.y * nwg.x + wg.x;
    if tile >= p.tiles {
        return; // the whole workgroup
    }
    let row0 = (tile / p.tiles_n) * SG_SIDE;
    let col0 = (tile % p.tiles_n) * SG_SIDE;
    // The active lanes' dense ranks and count, not subgroup_invocation_id and
    // subgroup_size: a subgroup need not be full.
    let lane = subgroupExclusiveAdd(1u);
    let lanes = subgroupAdd(1u);
    for (var block = subgroup; block < SG_BLOCKS; block += subgroups) {
        let r = row0 + 2u * (block / (SG_SIDE / 2u));
        let c = col0 + 2u * (block % (SG_SIDE / 2u));
        var z00 = 0.0;
        var z01 = 0.0;
        var z10 = 0.0;
        var z11 = 0.0;
        for (var kk = lane; kk < p.k; kk += lanes) {
            let a0 = load_a(r, kk);
            let a1 = load_a(r + 1u, kk);
            let b0 = load_b(kk, c);
            let b1 = load_b(kk, c + 1u);
            z00 += a0 * b0;
            z01 += a0 * b1;
            z10 += a1 * b0;
            z11 += a1 * b1;
        }
        // Every lane of the subgroup reaches these: the loop over blocks is uniform in it.
        let z = array<f32, 4>(subgroupAdd(z00), subgroupAdd(z01), subgroupAdd(z10), subgroupAdd(z11));
        for (var o = lane; o < 4u; o += lanes) {
            store(r + o / 2u, c + o % 2u, z[o]);
        }
    }
}
