// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), as matmul.wgsl computes it, with a
// larger block per invocation: a workgroup of MW_X x MW_Y invocations computes a
// (16 MW_Y) x (8 MW_X) tile, each invocation 16 rows x 8 columns held in 32 vec4
// registers. The k axis is walked in steps of WB_K = MW_K, the workgroup staging the
// tile rows' slice of op(a) and the tile columns' slice of op(b) in workgroup memory,
// k-major and packed as vec4 (12 KiB for 8 x 8 invocations and 16 steps of k), so each
// step of k is 6 vec4 loads for 128 multiply-adds (matmul.wgsl's 4 x 4 block: 2 for
// 16). Modelled on the kernel Burn's autotuner picks on lavapipe (CubeCL's "simple
// unit" matmul: 8 x 8 invocations of 16 x 8 outputs, 16 steps of k staged as vec4).
// Each output still sums over k in index order with one multiply-add per k, so the
// bits are the default variant's. Every accumulator index is a constant (the lines
// below are written out, not looped), so the compiler keeps them in registers.
//
// Compiled after common.wgsl, the variant's constants (MW_X and MW_Y: the workgroup's
// invocations across the columns and down the rows; MW_K: steps of k staged at once;
// WB_K x WB_ROWS and WB_K x WB_COLS must be multiples of MW_X x MW_Y) and
// matmul_common.wgsl (src/engine/gpu/shaders.rs, `MATMUL_VARIANTS`: "wide128x64" is
// 8 x 8 invocations staging 16 steps, "wide64x64" 8 x 4 staging 8).

const WB_K: u32 = MW_K;
const WB_ROWS: u32 = 16u * MW_Y;
const WB_COLS: u32 = 8u * MW_X;
const WB_INVOCATIONS: u32 = MW_X * MW_Y;

// [WB_K][WB_ROWS] and [WB_K][WB_COLS] slices, 4 consecutive rows or columns per vec4.
var<workgroup> wa: array<vec4<f32>, WB_K * WB_ROWS / 4u>;
var<workgroup> wb: array<vec4<f32>, WB_K * WB_COLS / 4u>;

@compute @workgroup_size(MW_X, MW_Y)
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
    let row0 = (tile / p.tiles_n) * WB_ROWS;
    let col0 = (tile % p.tiles_n) * WB_COLS;
    // acc[2 i + h]: out[row0 + 16 lid.y + i, col0 + 8 lid.x + 4 h .. + 4].
    var acc: array<vec4<f32>, 32>;
    for (var k0 = 0u; k0 < p.k; k0 += WB_K) {
        // WB_K x WB_ROWS values of op(a) and WB_K x WB_COLS of op(b): 16 MW_Y / MW_X
        // and 8 / MW_Y an invocation, neighbouring invocations at neighbouring
        // addresses whatever the transpose.
        for (var e = li; e < WB_K * WB_ROWS; e += WB_INVOCATIONS) {
            var row: u32;
            var ka: u32;
            if TRANS_A {
                ka = e / WB_ROWS;
                row = e % WB_ROWS;
            } else {
                row = e / WB_K;
                ka = e % WB_K;
            }
            wa[ka * (WB_ROWS / 4u) + row / 4u][row % 4u] = load_a(row0 + row, k0 + ka);
        }
        for (var e = li; e < WB_K * WB_COLS; e += WB_INVOCATIONS) {
            var col: u32;
            var kb: u32;
            if TRANS_B {
                col = e / WB_K;
                kb = e % WB_K;
            } else {
                kb = e / WB_COLS;
                col = e % WB_COLS;
            }
            wb[kb * (WB_COLS / 4u) + col / 4u][col % 4u] = load_b(k0 + kb, col0 + col);
        }
        workgroupBarrier();
        for (var kk = 0u; kk < WB_K; kk++) {
            let ar = kk * (WB_ROWS / 4u) + 4u * lid.y;
            let bc = kk * (WB_COLS / 4u) + 2u * lid.x;
            let b0 = wb[bc];
            let b1 = wb[bc + 1u];
            let a0 = wa[ar + 0u];
            acc[0] += a0.x * b0;
            acc[1] += a0.x * b1;
            acc[2] += a0.y * b0;
            acc[3] += a0.y * b1;
            acc[4] += a0.z * b0;
            acc[5] += a0.z * b1;
            acc[6] += a0.w * b0;
            acc[7] += a0.w * b1;
            let a1 = wa[ar + 1u];
            acc[8] += a1.x * b0;
            acc[9] += a1.x * b1;
            acc[10] += a1.y * b0;
            acc[11] += a1.y * b1;
            acc[12] += a1.z * b0;
            acc[13] += a1.z * b1;
            acc[14] += a1.w * b0;
            acc[15] += a1.w * b1;
            let a2 = wa[ar + 2u];
            acc[16] += a2.x * b0;
            acc[17] += a2.x * b1;
            acc[18] += a2.y * b0;
            acc[19] += a2.y * b1;
            acc[20] += a2.z * b0;
            acc[21] += a2.z * b1;
            acc[22] += a2.w * b0;
            acc[23] += a2.w * b1;
            let a3 = wa[ar + 3u];
            acc[24] += a3.x * b0;
            acc[25] += a3.x * b1;
            acc[26] += a3.y * b0;
            acc[27] += a3.y * b1;
            acc[28] += a3.z * b0;
            acc[29] += a3.z * b1;
            acc[30] += a3.w * b0;
            acc[31] += a3.w * b1;
        }
        workgroupBarrier();
    }
    // The block's 128 outputs through one call of `store`: the accumulators rotate
    // under a fixed pair (constant indices, so they stay registers) and each row's 8
    // values under one lane. 128 inlined copies of the store, its bias and its
    // activation's switch took lavapipe's compiler about 5 s a pipeline.
    let r = row0 + 16u * lid.y;
    let c = col0 + 8u * lid.x;
    for (var i = 0u; i < 16u; i++) {
        var left = acc[0];
        var right = acc[1];
        for (var j = 0u; j < 8u; j++) {
            store(r + i, c + j, left.x);
            left = vec4<f32>(left.yzw, right.x);
            right = vec4<f32>(right.yzw, 0.0);
        }
        acc[0] = acc[2];
        acc[1] = acc[3];
        acc[2] = acc[4];
        acc[3] = acc[5];
        acc[4] = acc[6];
        acc[5] = acc[7];
        acc[6] = acc[8];
        acc[7] = acc[9];
        acc[8] = acc[10];
        acc[9] = acc[11];
        acc[10] = acc[12];
        acc[11] = acc[13];
        acc[12] = acc[14];
        acc[13] = acc[15];
        acc[14] = acc[16];
        acc[15] = acc[17];
        acc[16] = acc[18];
        acc[17] = acc[19];
        acc[18] = acc[20];
        acc[19] = acc[21];
        acc[20] = acc[22];
        acc[21] = acc[23];
        acc[22] = acc[24];
        acc[23] = acc[25];
        acc[24] = acc[26];
        acc[25] = acc[27];
        acc[26] = acc[28];
        acc[27] = acc[29];
        acc[28] = acc[30];
        acc[29] = acc[31];
    }
}
