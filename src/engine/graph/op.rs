//! The operations a graph can hold. Every op has a shape rule (in `graph::builder`), a
//! vector-Jacobian rule (in `graph::autodiff`) and a kernel on each executor.

use serde::{Deserialize, Serialize};

/// An activation, applied on its own or fused into a matmul's epilogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Act {
    Identity,
    Relu,
    Sigmoid,
    Tanh,
}

impl Act {
    /// Every activation; the GPU test checks each one's code against common.wgsl.
    pub const ALL: [Act; 4] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];

    /// The activation's lower-case name; common.wgsl declares its code as
    /// `ACT_<NAME>` (e.g. `ACT_RELU`).
    pub fn name(self) -> &'static str {
        match self {
            Act::Identity => "identity",
            Act::Relu => "relu",
            Act::Sigmoid => "sigmoid",
            Act::Tanh => "tanh",
        }
    }

    /// The code the WGSL kernels switch on (`ACT_<NAME>` in common.wgsl).
    pub fn code(self) -> u32 {
        match self {
            Act::Identity => 0,
            Act::Relu => 1,
            Act::Sigmoid => 2,
            Act::Tanh => 3,
        }
    }
}

/// An elementwise operation of two tensors (with broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
}

impl BinaryOp {
    /// Every binary operation; the GPU test checks each one's code against common.wgsl.
    pub const ALL: [BinaryOp; 4] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];

    /// The operation's lower-case name; common.wgsl declares its code as
    /// `BINARY_<NAME>` (e.g. `BINARY_ADD`).
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
        }
    }

    /// The code the WGSL kernels switch on (`BINARY_<NAME>` in common.wgsl).
    pub fn code(self) -> u32 {
        match self {
            BinaryOp::Add => 0,
            BinaryOp::Sub => 1,
            BinaryOp::Mul => 2,
            BinaryOp::Div => 3,
        }
    }
}

/// Which optimizer the plan's update launch runs over the packed parameters.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Optimizer {
    Sgd {
        lr: f32,
        momentum: f32,
    },
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
    AdamW {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
        weight_decay: f32,
    },
}

impl Optimizer {
    /// Slots of optimizer state per parameter (momentum; or first and second moment).
    pub fn state_per_param(&self) -> usize {
        match self {
            Optimizer::Sgd { .. } => 1,
            Optimizer::Adam { .. } | Optimizer::AdamW { .. } => 2,
        }
    }
}

/// A recurrent cell: the gate order and equations are PyTorch's (see `graph::rnn`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Gates i, f, g, o; state (h, c).
    Lstm,
    /// Gates r, z, n; state h.
    Gru,
}

/// Stride, zero padding and dilation of a 2-D convolution per axis `[h, w]`. A 1-D
/// convolution is the `h = 1` case: `[1, s]`, `[0, p]`, `[1, d]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvGeom {
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

/// Window, stride and padding of a pooling op per axis `[h, w]`. Padding is never part
/// of a max (it is -inf) and counts as zeros in an average (PyTorch's default,
/// `count_include_pad`): the divisor is always the window's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolGeom {
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Data written by the host: a resident table, an index permutation, labels.
    Input { name: String },
    /// A tensor filled with one value (the seed of the backward pass).
    Fill { value: f32 },
    /// A trainable tensor, stored in the packed parameter buffer at its layout offset.
    Param { index: usize },
    /// `act(op(a) · op(b) + bias)` with `op` a transpose when its flag is set.
    /// Inputs `[a, b]` or `[a, b, bias]` (bias of shape `[n]`, added to every row).
    MatMul {
        trans_a: bool,
        trans_b: bool,
        act: Act,
    },
    /// Elementwise with numpy broadcasting (shapes aligned on the right).
    Binary(BinaryOp),
    /// Elementwise activation.
    Unary(Act),
    /// Inputs `[dy, y]` where `y = act(x)`: returns `dy * act'(x)` computed from `y`.
    ActGrad(Act),
    /// Sum into `shape` (which the input broadcasts from), times `scale`.
    /// Covers sum along an axis, mean, and the gradient of broadcasting.
    ReduceTo { scale: f32 },
    /// Broadcast the input to this node's shape, times `scale`.
    ExpandTo { scale: f32 },
    /// The same data under another shape (no kernel; the plan aliases the storage).
    Reshape,
    /// Mean binary cross-entropy of logits `[b,1]` against targets `[b,1]`; output `[1]`.
    /// Positives are weighted by `pos_weight`.
    BceWithLogits { pos_weight: f32 },
    /// Inputs `[logits, targets, dloss]`: the gradient of `BceWithLogits` w.r.t. logits.
    BceWithLogitsGrad { pos_weight: f32 },
    /// Rows of a resident table chosen by a window of an index list:
    /// `out[b] = table[perm[step * batch + b]]`, where `step` is the executor's step
    /// counter. Inputs `[table, perm]`; `perm` holds u32 row indices.
    GatherRows,
    /// Gradient of `GatherRows` w.r.t. the table: inputs `[dy, perm]`, rows summed into
    /// a table-shaped output in a fixed order (deterministic, no atomics).
    ScatterAddRows,
    /// Concatenate along axis 1 of 2-D inputs.
    Concat,
    /// Columns `[start, start + len)` of a 2-D input.
    SliceCols { start: usize },
    /// The input's words `[offset, offset + numel)` under this node's shape, with no copy
    /// (the plan aliases the storage). Used to read the planes of packed outputs.
    View { offset: usize },
    /// One time step of a recurrent layer, all pointwise work fused: gate activations,
    /// state update, hidden output. Inputs `[gx, gh?, prev?]`: `gx` is the input product
    /// `x_t·W_ih + b_ih` read from columns `[gx_col, gx_col + G)` of a wider `[rows, W]`
    /// matrix (every step of a sequence in one matmul output), `gh` the recurrent
    /// product `h_{t-1}·W_hh + b_hh` (`[rows, G]`, or `[G]` broadcast when the previous
    /// state is zero), `prev` the previous cell state (LSTM `c`) or hidden state (GRU
    /// `h`); absent ones are zeros. The output is packed (see `graph::rnn::Packing`) and
    /// read through `View`s.
    RnnCell {
        kind: CellKind,
        hidden: usize,
        gx_col: usize,
        has_gh: bool,
        has_prev: bool,
    },
    /// The backward pointwise work of one step, fused. Inputs `[dh.., dc?, state,
    /// prev?]`: up to two contributions to the gradient of `h` (each columns
    /// `[col, col + hidden)` of a `[rows, W]` matrix, summed in the kernel), the gradient
    /// of `c` (LSTM), the cell's packed output and its `prev` input. Packed output.
    RnnCellGrad {
        kind: CellKind,
        hidden: usize,
        dh_cols: Vec<usize>,
        has_dc: bool,
        has_prev: bool,
    },
    /// `act(conv(x, w) + bias)` over NCHW: inputs `[x, w]` or `[x, w, bias]` with x
    /// `[N,C,H,W]`, w `[O,C,KH,KW]`, bias `[O]`; output `[N,O,OH,OW]`. Cross-correlation,
    /// as in every deep-learning library.
    Conv2d { geom: ConvGeom, act: Act },
    /// Inputs `[dz, w]`: the gradient of `Conv2d` w.r.t. x; the node's shape is x's.
    Conv2dGradInput { geom: ConvGeom },
    /// Inputs `[dz, x]`: the gradient of `Conv2d` w.r.t. w in `splits` parts,
    /// `[splits, O, C*KH*KW]`; part `s` sums over the images `[s*N/S, (s+1)*N/S)`, so the
    /// parts add up to the gradient. Parts let a GPU spread a long sum over many
    /// workgroups (split-K); `ReduceTo` adds them.
    Conv2dGradWeight {
        geom: ConvGeom,
        kernel: [usize; 2],
        splits: usize,
    },
    /// Input `[dz]` (`[N,O,H,W]`): `Σ over n, h, w of dz`, the bias gradient `[O]`.
    ConvGradBias,
    /// Swaps the last two axes (a batched transpose), e.g. `[B,T,C]` to `[B,C,T]`.
    Transpose,
    /// Where each max-pooling window of x (`[N,C,H,W]`) has its maximum: the flat index
    /// `h * W + w` within its `(n, c)` plane, stored as an f32 number (planes are at
    /// most 2^23 positions). The first maximum in row-major window order wins a tie.
    MaxPoolArgmax { geom: PoolGeom },
    /// Inputs `[x, idx]` with idx from `MaxPoolArgmax`: `out[i] = x[plane(i), idx[i]]`,
    /// the max-pooled values.
    PoolGather,
    /// Inputs `[dy, idx]`: routes each pooled gradient to its argmax, summing where
    /// windows overlap; the node's shape is x's.
    MaxPoolGrad { geom: PoolGeom },
    /// The mean of each window of x (`[N,C,H,W]`), zero padding included.
    AvgPool { geom: PoolGeom },
    /// Input `[dy]`: the gradient of `AvgPool`; the node's shape is x's.
    AvgPoolGrad { geom: PoolGeom },
}

impl Op {
    /// A short name for error messages and profiles.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Fill { .. } => "fill",
            Op::Param { .. } => "param",
            Op::MatMul { .. } => "matmul",
            Op::Binary(BinaryOp::Add) => "add",
            Op::Binary(BinaryOp::Sub) => "sub",
            Op::Binary(BinaryOp::Mul) => "mul",
            Op::Binary(BinaryOp::Div) => "div",
            Op::Unary(Act::Relu) => "relu",
            Op::Unary(Act::Sigmoid) => "sigmoid",
            Op::Unary(Act::Tanh) => "tanh",
            Op::Unary(Act::Identity) => "identity",
            Op::ActGrad(_) => "act_grad",
            Op::ReduceTo { .. } => "reduce",
            Op::ExpandTo { .. } => "expand",
            Op::Reshape => "reshape",
            Op::BceWithLogits { .. } => "bce_with_logits",
            Op::BceWithLogitsGrad { .. } => "bce_with_logits_grad",
            Op::GatherRows => "gather_rows",
            Op::ScatterAddRows => "scatter_add_rows",
            Op::Concat => "concat",
            Op::SliceCols { .. } => "slice_cols",
            Op::View { .. } => "view",
            Op::RnnCell {
                kind: CellKind::Lstm,
                ..
            } => "lstm_cell",
            Op::RnnCell {
                kind: CellKind::Gru,
                ..
            } => "gru_cell",
            Op::RnnCellGrad {
                kind: CellKind::Lstm,
                ..
            } => "lstm_cell_grad",
            Op::RnnCellGrad {
                kind: CellKind::Gru,
                ..
            } => "gru_cell_grad",
            Op::Conv2d { .. } => "conv2d",
            Op::Conv2dGradInput { .. } => "conv2d_grad_input",
            Op::Conv2dGradWeight { .. } => "conv2d_grad_weight",
            Op::ConvGradBias => "conv_grad_bias",
            Op::Transpose => "transpose",
            Op::MaxPoolArgmax { .. } => "max_pool_argmax",
            Op::PoolGather => "pool_gather",
            Op::MaxPoolGrad { .. } => "max_pool_grad",
            Op::AvgPool { .. } => "avg_pool",
            Op::AvgPoolGrad { .. } => "avg_pool_grad",
        }
    }
}
