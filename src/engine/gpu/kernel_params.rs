//! The host side of the kernels' interface: one `#[repr(C)]` struct per WGSL uniform
//! struct (same name, same fields in the same order), and the constants common.wgsl
//! declares that the host also needs. `tests/it/kernel_params.rs` parses the shaders
//! with naga and checks both against the WGSL, so a field out of order or a changed
//! constant fails there rather than as a wrong number on the GPU.

use super::shaders::UNIFORM_BYTES;

/// One field of a kernel parameter struct: its name and byte offset, as the test
/// compares them with the WGSL struct's members.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field's name, the same in Rust and WGSL.
    pub name: &'static str,
    /// Its byte offset in the struct.
    pub offset: usize,
}

/// A uniform record a kernel reads at binding 0, written into the uniform buffer as
/// its bytes.
pub trait KernelParams: bytemuck::Pod {
    /// The name of the WGSL struct this mirrors.
    const WGSL_NAME: &'static str;
    /// Every field, in declaration order.
    const FIELDS: &'static [Field];
}

/// What the layout test needs of one params struct, without naming its type.
#[derive(Clone, Copy, Debug)]
pub struct ParamsLayout {
    /// The struct's name, the same in Rust and WGSL.
    pub wgsl_name: &'static str,
    /// Its size in bytes.
    pub size: usize,
    /// Its fields in declaration order.
    pub fields: &'static [Field],
}

/// Declares the params structs (`#[repr(C)]`, `Pod`, all fields public), their
/// `KernelParams` impls and the list `ALL_PARAMS` of their layouts.
macro_rules! kernel_params {
    ($($(#[$doc:meta])* $name:ident { $($field:ident: $ty:ty,)* })*) => {
        $(
            $(#[$doc])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, PartialEq, bytemuck::Pod, bytemuck::Zeroable)]
            // The fields mirror the WGSL struct's, which the shader documents.
            #[allow(missing_docs)]
            pub struct $name {
                $(pub $field: $ty,)*
            }

            impl KernelParams for $name {
                const WGSL_NAME: &'static str = stringify!($name);
                const FIELDS: &'static [Field] = &[$(Field {
                    name: stringify!($field),
                    offset: std::mem::offset_of!($name, $field),
                },)*];
            }

            const _: () = assert!(
                std::mem::size_of::<$name>() <= UNIFORM_BYTES as usize,
                "a launch's uniform record holds UNIFORM_BYTES"
            );
        )*

        /// The layout of every params struct, for the test against the shaders.
        pub const ALL_PARAMS: &[ParamsLayout] = &[$(ParamsLayout {
            wgsl_name: <$name as KernelParams>::WGSL_NAME,
            size: std::mem::size_of::<$name>(),
            fields: <$name as KernelParams>::FIELDS,
        },)*];
    };
}

kernel_params! {
    /// matmul.wgsl: `out = act(op(a) · op(b) + bias)`.
    MatMulParams {
        m: u32,
        n: u32,
        k: u32,
        act: u32,
        off_a: u32,
        off_b: u32,
        off_bias: u32,
        off_out: u32,
        has_bias: u32,
        tiles_n: u32,
        tiles: u32,
        _pad: u32,
    }

    /// elementwise.wgsl: fill, binary, unary, act_grad, expand, copy_cols.
    ElementwiseParams {
        shape: [u32; 4],
        x_strides: [u32; 4],
        y_strides: [u32; 4],
        n: u32,
        code: u32,
        off_x: u32,
        off_y: u32,
        off_out: u32,
        value: f32,
        rows: u32,
        cols: u32,
        src_cols: u32,
        src_start: u32,
        dst_cols: u32,
        dst_start: u32,
    }

    /// reduce.wgsl: sums over the reduced axes, times `scale`.
    ReduceParams {
        out_shape: [u32; 4],
        reduced: [u32; 4],
        in_strides: [u32; 4],
        n_out: u32,
        count: u32,
        off_x: u32,
        off_out: u32,
        scale: f32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// loss.wgsl: binary cross-entropy, its gradient, the loss accumulator.
    LossParams {
        n: u32,
        off_logits: u32,
        off_targets: u32,
        off_dloss: u32,
        off_out: u32,
        pos_weight: f32,
        loss_scale: f32, // the gradient's factor: the f16 loss scale, 1 in f32
        _pad1: u32,
    }

    /// gather.wgsl: the kernels that read the step counters: row gathers by the step's
    /// window of an index list and their adjoint, collect, dropout.
    GatherParams {
        n: u32,
        batch: u32,
        cols: u32,
        off_src: u32,
        off_perm: u32,
        off_step: u32,
        off_out: u32,
        seed: u32,
        threshold: u32,
        scale: f32,
        first_row: u32,
        end_row: u32,
    }

    /// optimizer.wgsl: SGD, Adam(W) and the step counters.
    OptimizerParams {
        len: u32,
        off_step: u32,
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
        master: u32,     // 1: the update runs on the f32 master copy (binding 6), f16
        grad_scale: f32, // the gradients' factor: 1 / the f16 loss scale, 1 in f32
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// rnn.wgsl: the fused recurrent cells and their gradients.
    RnnParams {
        rows: u32,
        hidden: u32,
        gx_stride: u32,
        gx_col: u32,
        off_gx: u32,
        gh_mode: u32,
        off_gh: u32,
        has_prev: u32,
        off_prev: u32,
        off_out: u32,
        has_dh0: u32,
        off_dh0: u32,
        dh0_stride: u32,
        dh0_col: u32,
        has_dh1: u32,
        off_dh1: u32,
        dh1_stride: u32,
        dh1_col: u32,
        has_dc: u32,
        off_dc: u32,
        off_state: u32,
        _pad0: u32,
        _pad1: u32,
        _pad2: u32,
    }

    /// conv_common.wgsl: the implicit-GEMM convolution and its gradients (every variant).
    ConvParams {
        n: u32,
        c: u32,
        h: u32,
        w: u32,
        o: u32,
        kh: u32,
        kw: u32,
        oh: u32,
        ow: u32,
        stride_h: u32,
        stride_w: u32,
        pad_h: u32,
        pad_w: u32,
        dil_h: u32,
        dil_w: u32,
        act: u32,
        off_a: u32,
        off_b: u32,
        off_bias: u32,
        off_out: u32,
        has_bias: u32,
        m: u32,
        cols: u32,
        tiles_n: u32,
        tiles: u32,
        splits: u32,
        _pad0: u32,
        _pad1: u32,
    }

    /// rows.wgsl: the row program (a step's row launches as one dispatch).
    RowProgramParams {
        ops: u32,
        rows: u32,
        off_step: u32,
        loss_scale: f32, // the loss gradient's factor, as LossParams'
    }

    /// rows.wgsl: one operation of the row program (an element of its storage array,
    /// not a uniform record; its layout is checked the same way).
    RowOp {
        kind: u32,
        width: u32,
        off_out: u32,
        k: u32,
        code: u32,
        x_src: u32,
        off_x: u32,
        y_src: u32,
        off_y: u32,
        z_src: u32,
        off_z: u32,
        trans_b: u32,
        bias_kind: u32,
        n: u32,
        value: f32,
        _pad: u32,
    }

    /// pool.wgsl: pooling over planes, and the batched transpose.
    PoolParams {
        n: u32,
        planes: u32,
        h: u32,
        w: u32,
        oh: u32,
        ow: u32,
        kh: u32,
        kw: u32,
        stride_h: u32,
        stride_w: u32,
        pad_h: u32,
        pad_w: u32,
        off_x: u32,
        off_y: u32,
        off_out: u32,
        _pad: u32,
    }
}

// The constants of common.wgsl the host uses too; each is checked equal to its WGSL
// twin (same name) by the test.

/// Invocations per workgroup of the fixed sum tree (the flat kernels' widths are the
/// device's: `gpu::flat_width`).
pub const WG: u32 = 256;
/// Output rows and columns per matmul and convolution workgroup.
pub const TILE: u32 = 64;
/// matmul's `has_bias`: no bias.
pub const BIAS_NONE: u32 = 0;
/// matmul's `has_bias`: a row `[n]` added to every row of the product.
pub const BIAS_ROW: u32 = 1;
/// matmul's `has_bias`: a whole `[m, n]` matrix added to the product.
pub const BIAS_MATRIX: u32 = 2;
/// rnn's `gh_mode`: no recurrent product (the previous state is zero).
pub const GH_ABSENT: u32 = 0;
/// rnn's `gh_mode`: one row `[G]` of recurrent product, the same for every row.
pub const GH_BROADCAST: u32 = 1;
/// rnn's `gh_mode`: a `[rows, G]` recurrent product.
pub const GH_MATRIX: u32 = 2;

/// conv's `MODE` override: the forward product.
pub const CONV_FORWARD: u32 = 0;
/// conv's `MODE` override: the gradient with respect to the input.
pub const CONV_GRAD_INPUT: u32 = 1;
/// conv's `MODE` override: the gradient with respect to the weights, in splits.
pub const CONV_GRAD_WEIGHT: u32 = 2;

/// The row program's operations (`RowOp::kind`).
pub const ROW_GATHER: u32 = 0;
/// See [`ROW_GATHER`].
pub const ROW_MATMUL: u32 = 1;
/// See [`ROW_GATHER`].
pub const ROW_UNARY: u32 = 2;
/// See [`ROW_GATHER`].
pub const ROW_ACT_GRAD: u32 = 3;
/// See [`ROW_GATHER`].
pub const ROW_BINARY: u32 = 4;
/// See [`ROW_GATHER`].
pub const ROW_BCE_GRAD: u32 = 5;
/// See [`ROW_GATHER`].
pub const ROW_DROPOUT: u32 = 6;
/// A row operation's shared operand in the arena (`RowOp::y_src`, `z_src`).
pub const SRC_ARENA: u32 = 0;
/// A row operation's shared operand in the parameters.
pub const SRC_PARAMS: u32 = 1;

/// Batch rows per workgroup of the row program.
pub const RP_ROWS: u32 = 16;

/// Every constant above with its WGSL name, for the test.
pub const SHARED_CONSTANTS: &[(&str, u32)] = &[
    ("WG", WG),
    ("TILE", TILE),
    ("BIAS_NONE", BIAS_NONE),
    ("BIAS_ROW", BIAS_ROW),
    ("BIAS_MATRIX", BIAS_MATRIX),
    ("GH_ABSENT", GH_ABSENT),
    ("GH_BROADCAST", GH_BROADCAST),
    ("GH_MATRIX", GH_MATRIX),
    ("CONV_FORWARD", CONV_FORWARD),
    ("CONV_GRAD_INPUT", CONV_GRAD_INPUT),
    ("CONV_GRAD_WEIGHT", CONV_GRAD_WEIGHT),
    ("ROW_GATHER", ROW_GATHER),
    ("ROW_MATMUL", ROW_MATMUL),
    ("ROW_UNARY", ROW_UNARY),
    ("ROW_ACT_GRAD", ROW_ACT_GRAD),
    ("ROW_BINARY", ROW_BINARY),
    ("ROW_BCE_GRAD", ROW_BCE_GRAD),
    ("ROW_DROPOUT", ROW_DROPOUT),
    ("SRC_ARENA", SRC_ARENA),
    ("SRC_PARAMS", SRC_PARAMS),
    ("RP_ROWS", RP_ROWS),
];
