// The tiled matmul kernel (what it computes: matmul_common.wgsl).
//
// This file is compiled for several matmul variants (src/engine/gpu/shaders.rs,
// `MATMUL_VARIANTS`), each time with a few `const` lines of its own put before it:
//   MM_SIDE    the workgroup is MM_SIDE x MM_SIDE invocations; each computes a 4x4 block
//              of `out` held in registers (acc), so the workgroup's output tile is
//              MM_TILE = 4 MM_SIDE square (the default: 16, a 64x64 tile);
//   MM_STAGED  true: the k axis is walked in steps of BK = 16, the workgroup staging a
//              MM_TILE x 16 slice of op(a) and a 16 x MM_TILE slice of op(b) in
//              workgroup memory, k-major and packed as vec4, so the inner loop is 2 vec4
//              loads for 16 multiply-adds; loads from global memory are laid out so
//              neighbouring invocations read neighbouring addresses whatever the
//              transpose. false: each invocation reads its operands from global memory
//              itself (no workgroup memory, no barriers);
//   MM_BROKEN  adds 1 to every output: a deliberately wrong variant, only for the test
//              that proves the autotuner drops a variant that disagrees (false in all
//              others, where the compiler removes it). (The test's other bad variant,
//              one no device builds, is MM_SIDE 64: 4,096 invocations a workgroup.)
// Every variant sums over k in index order, one multiply-add per k into the same
// accumulator expression, so all give the default's bits. Anything outside the
// matrices reads as 0, so any m, n, k works. Bias and activation are applied as the
// tile is written.
//
// The uniform record, bindings and loads are matmul_common.wgsl's.

const MM_TILE: u32 = 4u * MM_SIDE;
// Values of each staged slice one invocation loads per step of k.
const MM_LOADS: u32 = MM_TILE * BK / (MM_SIDE * MM_SIDE);

// [BK][MM_TILE] slices, 4 consecutive rows (of op(a)) or columns (of op(b)) per vec4.
var<workgroup> a_tile: array<vec4<f32>, BK * MM_SIDE>;
var<workgroup> b_tile: array<vec4<f32>, BK * MM_SIDE>;

@compute @workgroup_size(MM_SIDE, MM_SIDE)
fn matmul(
    @builtin(workgroup_id) wg: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let tile = wg.y * nwg.x + wg.x;
    if tile >= p.tiles {
        return; // the whole workgroup: barriers stay uniform
    }
    let row0 = (tile / p.tiles_n) * MM_TILE;
    let col0 = (tile % p.tiles_n) * MM_TILE;

    var acc: array<vec4<f32>, 4>; // acc[i][j]: out[row0 + 4 lid.y + i, col0 + 4 lid.x + j]
    if MM_STAGED {
        for (var k0 = 0u; k0 < p.k; k0 += BK) {
            for (var r = 0u; r < MM_LOADS; r++) {
                let e = li + r * MM_SIDE * MM_SIDE;
                var row: u32;
                var ka: u32;
                if TRANS_A {
                    ka = e / MM_TILE;
                    row = e % MM_TILE; // a is [k][m]: consecutive e, consecutive m
                } else {
                    row = e / BK;
                    ka = e % BK;    // a is [m][k]: consecutive e, consecutive k
                }
                a_tile[ka * MM_SIDE + row / 4u][row % 4u] = load_a(row0 + row, k0 + ka);
                var col: u32;
                var kb: u32;
                if TRANS_B {
                    col = e / BK;
                    kb = e % BK;
                } else {
                    kb = e / MM_TILE;
                    col = e % MM_TILE;
                }
                b_tile[kb * MM_SIDE + col / 4u][col % 4u] = load_b(k0 + kb, col0 + col);
            }
            workgroupBarrier();
            for (var kk = 0u; kk < BK; kk++) {
                let av = a_tile[kk * MM_SIDE + lid.y];
                let bv = b_tile[kk * MM_SIDE + lid.x];
                acc[0] += av.x * bv;
                acc[1] += av.y * bv;
                acc[2] += av.z * bv;
                acc[3] += av.w * bv;
            }
            workgroupBarrier();
        }
    } else {
        let r = row0 + 4u * lid.y;
        let c = col0 + 4u * lid.x;
        for (var kk = 0u; kk < p.k; kk++) {
            let av = vec4<f32>(load_a(r, kk), load_a(r + 1u, kk), load_a(r + 2u, kk), load_a(r + 3u, kk));
            let bv = vec4<f32>(load_b(kk, c), load_b(kk, c + 1u), load_b(kk, c + 2u), load_b(kk, c + 3u));
            acc[0] += av.x * bv;
            acc[1] += av.y * bv;
            acc[2] += av.z * bv;
            acc[3] += av.w * bv;
        }
    }

    // Epilogue: bias, activation, store (bounds-checked).
    let col_base = col0 + 4u * lid.x;
    var bias4 = vec4<f32>(0.0);
    if p.has_bias == BIAS_ROW {
        for (var j = 0u; j < 4u; j++) {
            if col_base + j < p.n {
                bias4[j] = f32(bias[p.off_bias + col_base + j]);
            }
        }
    }
    for (var i = 0u; i < 4u; i++) {
        let row = row0 + 4u * lid.y + i;
        if row >= p.m {
            break;
        }
        for (var j = 0u; j < 4u; j++) {
            let col = col_base + j;
            if col < p.n {
                var z = acc[i][j] + bias4[j];
                if p.has_bias == BIAS_MATRIX {
                    z += f32(bias[p.off_bias + row * p.n + col]);
                }
                var y = activate(p.act, z);
                if MM_BROKEN {
                    y += 1.0;
                }
                out[p.off_out + row * p.n + col] = Store(y);
            }
        }
    }
}
