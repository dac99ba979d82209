// The matmul's operands a and b as arrays of `Store`, read a value at a time (every
// matmul variant but the vec4 ones; see matmul_operands_vec4.wgsl). `a_vec4(i)`:
// the 4 values from i on, for kernels that stage 4 at once.

const OPERANDS_VEC4: bool = false;

@group(0) @binding(1) var<storage, read> a: array<Store>;
@group(0) @binding(2) var<storage, read> b: array<Store>;

fn a_word(i: u32) -> f32 {
    return f32(a[i]);
}

fn b_word(i: u32) -> f32 {
    return f32(b[i]);
}

fn a_vec4(i: u32) -> vec4<f32> {
    return vec4<f32>(f32(a[i]), f32(a[i + 1u]), f32(a[i + 2u]), f32(a[i + 3u]));
}

fn b_vec4(i: u32) -> vec4<f32> {
    return vec4<f32>(f32(b[i]), f32(b[i + 1u]), f32(b[i + 2u]), f32(b[i + 3u]));
}
