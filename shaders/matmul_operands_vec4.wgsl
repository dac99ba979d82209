// The matmul's operands a and b as arrays of vec4<Store>: `a_vec4(i)` (i a multiple of
// 4) is one load of 4 values where matmul_operands.wgsl makes 4, and `a_word(i)` picks
// one value of a vec4. The executor binds every window in whole vec4s (its bind groups
// round a binding's end up to 16 bytes; buffers are padded to 16), so no value of a
// tensor is past the binding's last vec4.

const OPERANDS_VEC4: bool = true;

@group(0) @binding(1) var<storage, read> a: array<vec4<Store>>;
@group(0) @binding(2) var<storage, read> b: array<vec4<Store>>;

fn a_word(i: u32) -> f32 {
    return f32(a[i >> 2u][i & 3u]);
}

fn b_word(i: u32) -> f32 {
    return f32(b[i >> 2u][i & 3u]);
}

fn a_vec4(i: u32) -> vec4<f32> {
    return vec4<f32>(a[i >> 2u]);
}

fn b_vec4(i: u32) -> vec4<f32> {
    return vec4<f32>(b[i >> 2u]);
}
