// The tiled implicit-GEMM convolution (what it computes: conv_common.wgsl), the
// default variant: the tiled matmul of matmul.wgsl's default (a 64x64 output tile per
// 16x16 workgroup, 4x4 outputs per invocation in registers, k in steps of BK = 16
// staged as vec4 in workgroup memory).

var<workgroup> a_tile: array<vec4<f32>, 256>;
var<workgroup> b_tile: array<vec4<f32>, 256>;

@compute @workgroup_size(16, 16)
fn conv(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let flat = wg.y * nwg.x + wg.x;
    if flat >= p.tiles * p.splits {
        return; // the whole workgroup: barriers stay uniform
    }
    let s = flat / p.tiles;
    let tile = flat % p.tiles;
    let row0 = (tile / p.tiles_n) * TILE;
    let col0 = (tile % p.tiles_n) * TILE;
    let span = span_of(s);
    let kdim = span.kdim;
    let n0 = span.n0;

    var acc: array<vec4<f32>, 4>; // acc[i][j]: product[row0 + 4 lid.y + i, col0 + 4 lid.x + j]
    for (var k0 = 0u; k0 < kdim; k0 += BK) {
        for (var r = 0u; r < 4u; r++) {
            let e = li + r * 256u;
            // A: consecutive invocations walk k; B: consecutive invocations walk the
            // columns, except in CONV_GRAD_WEIGHT where k = (n, p) is the contiguous axis of x.
            let row = e / BK;
            let ka = e % BK;
            a_tile[ka * VEC_PER_ROW + row / 4u][row % 4u] = load_a(row0 + row, k0 + ka, kdim, n0);
            var kb: u32;
            var col: u32;
            if MODE == CONV_GRAD_WEIGHT {
                col = e / BK;
                kb = e % BK;
            } else {
                kb = e / TILE;
                col = e % TILE;
            }
            b_tile[kb * VEC_PER_ROW + col / 4u][col % 4u] = load_b(k0 + kb, col0 + col, kdim, n0);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let av = a_tile[kk * VEC_PER_ROW + lid.y];
            let bv = b_tile[kk * VEC_PER_ROW + lid.x];
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
        workgroupBarrier();
    }

    let col = col0 + 4u * lid.x;
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        for (var j = 0u; j < 4u; j++) {
            store(row, col + j, s, acc[i][j]);
        }
    }
}
