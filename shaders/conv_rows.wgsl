// The implicit-GEMM convolution (what it computes: conv_common.wgsl) laid out as
// matmul_rows.wgsl lays out the matmul, for adapters that run a workgroup's invocations
// as the lanes of CPU SIMD registers (lavapipe): a workgroup of CR_WG invocations
// computes 16 rows of the product and 4 CR_WG consecutive columns, each invocation 4 of
// the columns. The rows are the workgroup's, so every invocation reads the same A value
// at each step of k, and only B's differ from lane to lane; a column's gather indices
// do not change along k, so the compiler computes them once. No workgroup memory, no
// barriers, and a product of 16 or 32 rows (the channels of a credit model's
// convolutions) wastes no part of a 64-row tile. Each output still sums over k in index
// order with one multiply-add per k: the default variant's bits.
//
// Compiled with `const` lines of its own before conv_common.wgsl
// (src/engine/gpu/shaders.rs, `CONV_VARIANTS`): CR_WG (invocations).

@compute @workgroup_size(CR_WG)
fn conv(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
) {
    let flat = wg.y * nwg.x + wg.x;
    if flat >= p.tiles * p.splits {
        return;
    }
    let s = flat / p.tiles;
    let tile = flat % p.tiles;
    let r = (tile / p.tiles_n) * 16u;
    let c = (tile % p.tiles_n) * (4u * CR_WG) + 4u * lid.x;
    let span = span_of(s);
    let kdim = span.kdim;
    let n0 = span.n0;

    // acc[i][j]: product[r + i, c + j], constant-indexed so that it stays in registers.
    var acc: array<vec4<f32>, 16>;
    for (var kk = 0u; kk < kdim; kk++) {
        let bv = vec4<f32>(
            load_b(kk, c, kdim, n0),
            load_b(kk, c + 1u, kdim, n0),
            load_b(kk, c + 2u, kdim, n0),
            load_b(kk, c + 3u, kdim, n0),
        );
        acc[0] += load_a(r + 0u, kk, kdim, n0) * bv;
        acc[1] += load_a(r + 1u, kk, kdim, n0) * bv;
        acc[2] += load_a(r + 2u, kk, kdim, n0) * bv;
        acc[3] += load_a(r + 3u, kk, kdim, n0) * bv;
        acc[4] += load_a(r + 4u, kk, kdim, n0) * bv;
        acc[5] += load_a(r + 5u, kk, kdim, n0) * bv;
        acc[6] += load_a(r + 6u, kk, kdim, n0) * bv;
        acc[7] += load_a(r + 7u, kk, kdim, n0) * bv;
        acc[8] += load_a(r + 8u, kk, kdim, n0) * bv;
        acc[9] += load_a(r + 9u, kk, kdim, n0) * bv;
        acc[10] += load_a(r + 10u, kk, kdim, n0) * bv;
        acc[11] += load_a(r + 11u, kk, kdim, n0) * bv;
        acc[12] += load_a(r + 12u, kk, kdim, n0) * bv;
        acc[13] += load_a(r + 13u, kk, kdim, n0) * bv;
        acc[14] += load_a(r + 14u, kk, kdim, n0) * bv;
        acc[15] += load_a(r + 15u, kk, kdim, n0) * bv;
    }
    for (var j = 0u; j < 4u; j++) {
        for (var i = 0u; i < 16u; i++) {
            store(r + i, c + j, s, acc[i][j]);
        }
    }
}
