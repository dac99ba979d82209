// The matmul kernels' shared part: their uniform record, bindings but the operands',
// transpose flags and bounds-checked loads. Every matmul variant's module is
// common.wgsl, the variant's `const` lines, its operands' bindings and word reads
// (matmul_operands.wgsl, or matmul_operands_vec4.wgsl), this file, then its kernel
// (matmul.wgsl, matmul_rows.wgsl or matmul_wide.wgsl): see `MATMUL_VARIANTS` in
// src/engine/gpu/shaders.rs.
//
// out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias), all row-major, stored as `Store` (the
// precision header's type) and computed in f32; bias is a row [n] added to every row
// (has_bias BIAS_ROW) or a matrix [m,n] (BIAS_MATRIX), or absent (BIAS_NONE). Anything
// outside the matrices reads as 0, so any m, n, k works.
// Tiles are numbered row-major and the grid may wrap into y (more than 65535 tiles).
// TRANS_A / TRANS_B are pipeline-overridable: four pipelines a variant, no branches per
// element.

struct MatMulParams {
    m: u32,
    n: u32,
    k: u32,
    act: u32,
    off_a: u32,
    off_b: u32,
    off_bias: u32,
    off_out: u32,
    has_bias: u32,
    tiles_n: u32,   // tiles along n
    tiles: u32,     // tiles in all
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: MatMulParams;
@group(0) @binding(3) var<storage, read> bias: array<Store>;
@group(0) @binding(4) var<storage, read_write> out: array<Store>;

override TRANS_A: bool = false;
override TRANS_B: bool = false;

fn load_a(row: u32, kk: u32) -> f32 {
    if row >= p.m || kk >= p.k {
        return 0.0;
    }
    if TRANS_A {
        return a_word(p.off_a + kk * p.m + row);
    }
    return a_word(p.off_a + row * p.k + kk);
}

fn load_b(kk: u32, col: u32) -> f32 {
    if kk >= p.k || col >= p.n {
        return 0.0;
    }
    if TRANS_B {
        return b_word(p.off_b + col * p.k + kk);
    }
    return b_word(p.off_b + kk * p.n + col);
}

// out[row, col] = act(z0 + bias), nothing outside the matrix (matmul_rows.wgsl and
// matmul_wide.wgsl; matmul.wgsl writes its tile itself).
fn store(row: u32, col: u32, z0: f32) {
    if row >= p.m || col >= p.n {
        return;
    }
    var z = z0;
    if p.has_bias == BIAS_ROW {
        z += f32(bias[p.off_bias + col]);
    } else if p.has_bias == BIAS_MATRIX {
        z += f32(bias[p.off_bias + row * p.n + col]);
    }
    out[p.off_out + row * p.n + col] = Store(activate(p.act, z));
}
