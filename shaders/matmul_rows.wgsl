// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), as matmul.wgsl computes it, laid out
// for adapters that run a workgroup's invocations as the lanes of CPU SIMD registers
// (lavapipe): a workgroup of MR_WG invocations computes 4 MR_VECS rows of 4 MR_WG
// consecutive columns, each invocation 4 of the columns. The rows are the workgroup's,
// so every invocation reads the same op(a) values at each step of k (one load,
// broadcast to the lanes), and only op(b)'s values differ from lane to lane. Each output
// still sums over k in index order with one multiply-add per k, so the bits are the
// default variant's.
//
// Compiled with `const` lines of its own put before matmul_common.wgsl (the uniform
// record, bindings and loads; src/engine/gpu/shaders.rs, `MATMUL_VARIANTS`): MR_WG
// (invocations) and MR_VECS (1, 2 or 4: 4, 8 or 16 rows).

@compute @workgroup_size(MR_WG)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let tile = wg.y * nwg.x + wg.x;
    if tile >= p.tiles {
        return;
    }
    let r = (tile / p.tiles_n) * (4u * MR_VECS);
    let c = (tile % p.tiles_n) * (4u * MR_WG) + 4u * lid.x;

    // acc[i][j]: out[r + i, c + j]. Every index is a constant, so the compiler keeps
    // the accumulators in registers.
    var acc: array<vec4<f32>, 16>;
    // An invocation's 4 columns of op(b) [k, n] in one load of 4 where they are inside
    // it (and, for vec4 operands, on a vec4), else 4 bounds-checked loads.
    let b_whole = !TRANS_B && c + 4u <= p.n
        && (!OPERANDS_VEC4 || (p.off_b % 4u == 0u && p.n % 4u == 0u));
    for (var kk = 0u; kk < p.k; kk++) {
        var bv: vec4<f32>;
        if b_whole {
            bv = b_vec4(p.off_b + kk * p.n + c);
        } else {
            bv = vec4<f32>(load_b(kk, c), load_b(kk, c + 1u), load_b(kk, c + 2u), load_b(kk, c + 3u));
        }
        acc[0] += load_a(r + 0u, kk) * bv;
        acc[1] += load_a(r + 1u, kk) * bv;
        acc[2] += load_a(r + 2u, kk) * bv;
        acc[3] += load_a(r + 3u, kk) * bv;
        if MR_VECS >= 2u {
            acc[4] += load_a(r + 4u, kk) * bv;
            acc[5] += load_a(r + 5u, kk) * bv;
            acc[6] += load_a(r + 6u, kk) * bv;
            acc[7] += load_a(r + 7u, kk) * bv;
        }
        if MR_VECS >= 4u {
            acc[8] += load_a(r + 8u, kk) * bv;
            acc[9] += load_a(r + 9u, kk) * bv;
            acc[10] += load_a(r + 10u, kk) * bv;
            acc[11] += load_a(r + 11u, kk) * bv;
            acc[12] += load_a(r + 12u, kk) * bv;
            acc[13] += load_a(r + 13u, kk) * bv;
            acc[14] += load_a(r + 14u, kk) * bv;
            acc[15] += load_a(r + 15u, kk) * bv;
        }
    }
    for (var j = 0u; j < 4u; j++) {
        store(r + 0u, c + j, acc[0][j]);
        store(r + 1u, c + j, acc[1][j]);
        store(r + 2u, c + j, acc[2][j]);
        store(r + 3u, c + j, acc[3][j]);
        if MR_VECS >= 2u {
            store(r + 4u, c + j, acc[4][j]);
            store(r + 5u, c + j, acc[5][j]);
            store(r + 6u, c + j, acc[6][j]);
            store(r + 7u, c + j, acc[7][j]);
        }
        if MR_VECS >= 4u {
            store(r + 8u, c + j, acc[8][j]);
            store(r + 9u, c + j, acc[9][j]);
            store(r + 10u, c + j, acc[10][j]);
            store(r + 11u, c + j, acc[11][j]);
            store(r + 12u, c + j, acc[12][j]);
            store(r + 13u, c + j, acc[13][j]);
            store(r + 14u, c + j, acc[14][j]);
            store(r + 15u, c + j, acc[15][j]);
        }
    }
}
