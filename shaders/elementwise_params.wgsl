// The record of elementwise.wgsl's kernels and of copy_vec4.wgsl's copy (a part of
// both modules; its Rust twin is `kernel_params::ElementwiseParams`).

struct ElementwiseParams {
    shape: vec4<u32>,     // output shape, padded on the left with 1
    x_strides: vec4<u32>, // 0 on broadcast axes
    y_strides: vec4<u32>,
    n: u32,               // elements to write (copy_cols: rows * cols)
    code: u32,            // BinaryOp::code or Act::code
    off_x: u32,
    off_y: u32,
    off_out: u32,
    value: f32,           // fill value, or expand_to's scale
    rows: u32,            // copy_cols only, from here on
    cols: u32,
    src_cols: u32,
    src_start: u32,
    dst_cols: u32,
    dst_start: u32,
}
