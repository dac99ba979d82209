//! The operations a graph can hold, and where each op's inputs sit (`ProductInputs`,
//! `RnnCellInputs`, `RnnCellGradInputs`). Every op has a shape rule (its builder method
//! on `Graph`), a vector-Jacobian rule (`graph::autodiff::vjp`) and a kernel on each
//! executor.

use super::act::Act;
use crate::engine::ops::conv::ConvOp;
use crate::engine::ops::dropout::DropoutOp;
use crate::engine::ops::gather::GatherOp;
use crate::engine::ops::loss::LossOp;
use crate::engine::ops::pool::PoolOp;
use serde::{Deserialize, Serialize};

/// An elementwise operation of two tensors (with broadcasting).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`.
    Add,
    /// `a - b`.
    Sub,
    /// `a * b`.
    Mul,
    /// `a / b`.
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
    /// Stochastic gradient descent with heavy-ball momentum.
    Sgd {
        /// Learning rate.
        lr: f32,
        /// Momentum factor (0 for plain SGD).
        momentum: f32,
    },
    /// Adam (Kingma & Ba), with bias correction.
    Adam {
        /// Learning rate.
        lr: f32,
        /// Decay of the first-moment estimate.
        beta1: f32,
        /// Decay of the second-moment estimate.
        beta2: f32,
        /// Added to the denominator's square root.
        eps: f32,
    },
    /// Adam with decoupled weight decay (Loshchilov & Hutter).
    AdamW {
        /// Learning rate.
        lr: f32,
        /// Decay of the first-moment estimate.
        beta1: f32,
        /// Decay of the second-moment estimate.
        beta2: f32,
        /// Added to the denominator's square root.
        eps: f32,
        /// Weight decay per step, scaled by the learning rate.
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

/// Where each input of a `MatMul` or `Conv2d` node sits among the node's `inputs`: the
/// two operands, then the optional bias (a `[n]` row or, for `MatMul`, a whole added
/// matrix).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProductInputs {
    /// `a` of a matmul, `x` of a convolution.
    pub a: usize,
    /// `b` of a matmul, `w` of a convolution.
    pub b: usize,
    /// The bias, when the node has one.
    pub bias: Option<usize>,
}

impl ProductInputs {
    /// The positions for a product with or without a bias.
    pub fn new(has_bias: bool) -> Self {
        ProductInputs {
            a: 0,
            b: 1,
            bias: has_bias.then_some(2),
        }
    }

    /// The positions in a product node with `n` inputs (2, or 3 with a bias).
    pub fn of(n: usize) -> Self {
        Self::new(n == 3)
    }
}

/// Where each input of an `RnnCell` node sits among the node's `inputs`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RnnCellInputs {
    /// The input product `gx` (always present).
    pub gx: usize,
    /// The recurrent product `gh`, when the op has one.
    pub gh: Option<usize>,
    /// The previous state, when the op has one.
    pub prev: Option<usize>,
    /// How many inputs the node has.
    pub len: usize,
}

impl RnnCellInputs {
    /// The positions for a cell with or without `gh` and `prev`: `[gx, gh?, prev?]`.
    pub fn new(has_gh: bool, has_prev: bool) -> Self {
        let gh = has_gh.then_some(1);
        let prev = has_prev.then_some(1 + has_gh as usize);
        RnnCellInputs {
            gx: 0,
            gh,
            prev,
            len: 1 + has_gh as usize + has_prev as usize,
        }
    }
}

/// Where each input of an `RnnCellGrad` node sits among the node's `inputs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RnnCellGradInputs {
    /// The contributions to the gradient of `h`, one per entry of `dh_cols`.
    pub dh: std::ops::Range<usize>,
    /// The gradient of `c` (LSTM), when the op has one.
    pub dc: Option<usize>,
    /// The forward cell's packed output.
    pub state: usize,
    /// The forward cell's previous state, when it had one.
    pub prev: Option<usize>,
    /// How many inputs the node has.
    pub len: usize,
}

impl RnnCellGradInputs {
    /// The positions for `dh` contributions and optional `dc` and `prev`:
    /// `[dh.., dc?, state, prev?]`.
    pub fn new(dh: usize, has_dc: bool, has_prev: bool) -> Self {
        let dc = has_dc.then_some(dh);
        let state = dh + has_dc as usize;
        let prev = has_prev.then_some(state + 1);
        RnnCellGradInputs {
            dh: 0..dh,
            dc,
            state,
            prev,
            len: state + 1 + has_prev as usize,
        }
    }
}

/// What a graph node computes; its inputs are the node's `inputs`. Each variant's doc
/// says what it reads and writes; the fields are the settings it names.
#[allow(missing_docs)]
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Data written by the host: a resident table, an index permutation, labels.
    Input { name: String },
    /// A tensor filled with one value (the seed of the backward pass).
    Fill { value: f32 },
    /// A trainable tensor, stored in the packed parameter buffer at its layout offset.
    Param { index: usize },
    /// `act(op(a) · op(b) + bias)` with `op` a transpose when its flag is set.
    /// Inputs `[a, b]` or `[a, b, bias]` (bias of shape `[n]`, added to every row, or a
    /// whole `[m, n]` matrix added); `ProductInputs` says where each is.
    /// The product is not stored, so autodiff can only fuse an `act` whose slope comes
    /// from its output (`SlopeFrom::Output`); `Graph::matmul_ex` emits the product and
    /// a separate `Unary` for the others (GELU, SiLU).
    MatMul {
        trans_a: bool,
        trans_b: bool,
        act: Act,
    },
    /// Elementwise with numpy broadcasting (shapes aligned on the right).
    Binary(BinaryOp),
    /// Elementwise activation.
    Unary(Act),
    /// Inputs `[dy, v]`: returns `dy * act'(x)`, where `v` is the output `y = act(x)` or
    /// the pre-activation `x` itself, as `act.slope_from()` says (`Act::slope`).
    ActGrad(Act),
    /// Sum into `shape` (which the input broadcasts from), times `scale`.
    /// Covers sum along an axis, mean, and the gradient of broadcasting.
    ReduceTo { scale: f32 },
    /// Broadcast the input to this node's shape, times `scale`.
    ExpandTo { scale: f32 },
    /// The same data under another shape (no kernel; the plan aliases the storage).
    Reshape,
    /// The training loss and its gradient (`engine::ops::loss`).
    Loss(LossOp),
    /// Row gathers by the step's window of an index list, and their adjoint
    /// (`engine::ops::gather`).
    Gather(GatherOp),
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
    /// read through `View`s. `RnnCellInputs` says where each input is.
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
    /// `RnnCellGradInputs` says where each input is.
    RnnCellGrad {
        kind: CellKind,
        hidden: usize,
        dh_cols: Vec<usize>,
        has_dc: bool,
        has_prev: bool,
    },
    /// Convolution and its gradients (`engine::ops::conv`).
    Conv(ConvOp),
    /// Pooling and the batched transpose (`engine::ops::pool`).
    Pool(PoolOp),
    /// Inverted dropout (`engine::ops::dropout`).
    Dropout(DropoutOp),
}

impl Op {
    /// Whether a gradient flows through the node's input `k` (index lists and targets
    /// carry none).
    pub fn passes_gradient(&self, k: usize) -> bool {
        match self {
            Op::Loss(op) => op.passes_gradient(k),
            Op::Gather(op) => op.passes_gradient(k),
            _ => true,
        }
    }

    /// Where an `RnnCell`'s inputs sit (`None` for other ops).
    pub fn rnn_cell_inputs(&self) -> Option<RnnCellInputs> {
        match *self {
            Op::RnnCell {
                has_gh, has_prev, ..
            } => Some(RnnCellInputs::new(has_gh, has_prev)),
            _ => None,
        }
    }

    /// Where an `RnnCellGrad`'s inputs sit (`None` for other ops).
    pub fn rnn_cell_grad_inputs(&self) -> Option<RnnCellGradInputs> {
        match self {
            Op::RnnCellGrad {
                dh_cols,
                has_dc,
                has_prev,
                ..
            } => Some(RnnCellGradInputs::new(dh_cols.len(), *has_dc, *has_prev)),
            _ => None,
        }
    }

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
            Op::Unary(act) => act.name(),
            Op::ActGrad(_) => "act_grad",
            Op::ReduceTo { .. } => "reduce_to",
            Op::ExpandTo { .. } => "expand_to",
            Op::Reshape => "reshape",
            Op::Loss(op) => op.name(),
            Op::Gather(op) => op.name(),
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
            Op::Conv(op) => op.name(),
            Op::Pool(op) => op.name(),
            Op::Dropout(_) => "dropout",
        }
    }
}
