// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), as matmul.wgsl computes it, with a
// larger block per invocation: a workgroup of MW_X x MW_Y invocations computes a
// (16 MW_Y) x (8 MW_X) tile, each invocation 16 rows x 8 columns held in 32 vec4
// registers. The k axis is walked in steps of WB_K = MW_K, the workgroup staging the
// tile rows' slice of op(a) and the tile columns' slice of op(b) in workgroup memory,
// k-major and packed as vec4 (12 KiB for 8 x 8 invocations and 16 steps of k), so each
// step of k is 6 vec4 loads for 128 multiply-adds (matmul.wgsl's 4 x 4 block: 2 for
// 16). Modelled on the kernel Burn's autotuner picks on lavapipe (CubeCL's "simple
// unit" matmul: 8 x 8 invocations of 16 x 8 outputs, 16 steps of k staged as vec4).
// A slice inside the matrices is staged 4 values a load, without bounds checks: from
// operands bound as vec4 (matmul_operands_vec4.wgsl, like CubeCL's lines of 4) where
// the slice's rows start on a vec4, a load of 4 words that save lavapipe's compiled
// kernel 3 of every 4 bounds checks of the robust buffer access (1024^3 1.3x as fast in
// `bench tune`, BENCHMARKS.md); the ragged edge is staged a value at a time.
// Each output still sums over k in index order with one multiply-add per k, so the
// bits are the default variant's. Every accumulator index is a constant (the lines
// below are written out, not looped), so the compiler keeps them in registers.
//
// Compiled after common.wgsl, the variant's constants (MW_X and MW_Y: the workgroup's
// invocations across the columns and down the rows; MW_K: steps of k staged at once;
// WB_K x WB_ROWS and WB_K x WB_COLS must be multiples of MW_X x MW_Y) and
// the operands' file and matmul_common.wgsl (src/engine/gpu/shaders.rs,
// `MATMUL_VARIANTS`: "wide128x64" is 8 x 8 invocations staging 16 steps, "wide64x64"
// 8 x 4 staging 8, each with operands read a value or a vec4 at a time).

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
        // WB_K x WB_ROWS values of op(a) and WB_K x WB_COLS of op(b), neighbouring
        // invocations at neighbouring addresses whatever the transpose: 4 at a time
        // where the slice is inside the matrix and (for vec4 operands) its rows start
        // on a vec4, else one at a time with bounds checks.
        if slice_inside(row0, WB_ROWS, p.m, k0, p.off_a, TRANS_A) {
            stage_a4(row0, k0, li);
        } else {
            stage_a(row0, k0, li);
        }
        if slice_inside(col0, WB_COLS, p.n, k0, p.off_b, !TRANS_B) {
            stage_b4(col0, k0, li);
        } else {
            stage_b(col0, k0, li);
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

// Whether the WB_K x `span` slice of an operand from `first` (rows of op(a) or columns
// of op(b), `extent` in all) and k0 lies inside it, in whole vec4s along its rows:
// `k_major` when the operand is stored [k, extent] (op(a) transposed, op(b) not),
// else [extent, k].
fn slice_inside(first: u32, span: u32, extent: u32, k0: u32, off: u32, k_major: bool) -> bool {
    if first + span > extent || k0 + WB_K > p.k {
        return false;
    }
    if !OPERANDS_VEC4 {
        return true;
    }
    let row_len = select(p.k, extent, k_major);
    return off % 4u == 0u && row_len % 4u == 0u;
}

// op(a)'s slice, a value at a time.
fn stage_a(row0: u32, k0: u32, li: u32) {
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
}

// op(a)'s slice 4 values at a time, inside the matrix (`slice_inside`).
fn stage_a4(row0: u32, k0: u32, li: u32) {
    for (var e = li; e < WB_K * WB_ROWS / 4u; e += WB_INVOCATIONS) {
        if TRANS_A {
            // a is [k, m]: 4 rows of op(a) at one k, one vec4 of wa.
            let ka = e / (WB_ROWS / 4u);
            let r4 = e % (WB_ROWS / 4u);
            wa[ka * (WB_ROWS / 4u) + r4] = a_vec4(p.off_a + (k0 + ka) * p.m + row0 + 4u * r4);
        } else {
            // a is [m, k]: 4 steps of k of one row.
            let row = e / (WB_K / 4u);
            let ka = 4u * (e % (WB_K / 4u));
            let v = a_vec4(p.off_a + (row0 + row) * p.k + k0 + ka);
            let at = ka * (WB_ROWS / 4u) + row / 4u;
            wa[at][row % 4u] = v.x;
            wa[at + WB_ROWS / 4u][row % 4u] = v.y;
            wa[at + 2u * (WB_ROWS / 4u)][row % 4u] = v.z;
            wa[at + 3u * (WB_ROWS / 4u)][row % 4u] = v.w;
        }
    }
}

// op(b)'s slice, a value at a time.
fn stage_b(col0: u32, k0: u32, li: u32) {
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
}

// op(b)'s slice 4 values at a time, inside the matrix (`slice_inside`).
fn stage_b4(col0: u32, k0: u32, li: u32) {
    for (var e = li; e < WB_K * WB_COLS / 4u; e += WB_INVOCATIONS) {
        if TRANS_B {
            // b is [n, k]: 4 steps of k of one column.
            let col = e / (WB_K / 4u);
            let kb = 4u * (e % (WB_K / 4u));
            let v = b_vec4(p.off_b + (col0 + col) * p.k + k0 + kb);
            let at = kb * (WB_COLS / 4u) + col / 4u;
            wb[at][col % 4u] = v.x;
            wb[at + WB_COLS / 4u][col % 4u] = v.y;
            wb[at + 2u * (WB_COLS / 4u)][col % 4u] = v.z;
            wb[at + 3u * (WB_COLS / 4u)][col % 4u] = v.w;
        } else {
            // b is [k, n]: 4 columns at one k, one vec4 of wb.
            let kb = e / (WB_COLS / 4u);
            let c4 = e % (WB_COLS / 4u);
            wb[kb * (WB_COLS / 4u) + c4] = b_vec4(p.off_b + (k0 + kb) * p.n + col0 + 4u * c4);
        }
    }
}
