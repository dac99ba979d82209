//! The operations a graph can hold: the core ops (inputs, parameters, fills, and the
//! layout ops the planner and the autodiff walk treat specially) declared here, and one
//! variant per op family of `engine::ops`, whose module declares the rest (shape rules,
//! vector-Jacobian rules, kernels). `ProductInputs` says where a product's inputs sit
//! (matmul and convolution share it).

use crate::engine::ops::broadcast::BroadcastOp;
use crate::engine::ops::conv::ConvOp;
use crate::engine::ops::dropout::DropoutOp;
use crate::engine::ops::elementwise::ElementwiseOp;
use crate::engine::ops::gather::GatherOp;
use crate::engine::ops::loss::LossOp;
use crate::engine::ops::matmul::MatMulOp;
use crate::engine::ops::pool::PoolOp;
use crate::engine::ops::rnn::RnnOp;
use serde::{Deserialize, Serialize};

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
    /// A matrix product with its epilogue (`engine::ops::matmul`).
    MatMul(MatMulOp),
    /// Elementwise maps: binary ops, activations and their gradients
    /// (`engine::ops::elementwise`).
    Elementwise(ElementwiseOp),
    /// Sums to a shape and broadcasts from one (`engine::ops::broadcast`).
    Broadcast(BroadcastOp),
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
    /// Recurrent cells, one time step each, forward and backward (`engine::ops::rnn`).
    Rnn(RnnOp),
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

    /// A short name for error messages and profiles.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Input { .. } => "input",
            Op::Fill { .. } => "fill",
            Op::Param { .. } => "param",
            Op::MatMul(_) => "matmul",
            Op::Elementwise(op) => op.name(),
            Op::Broadcast(op) => op.name(),
            Op::Reshape => "reshape",
            Op::Loss(op) => op.name(),
            Op::Gather(op) => op.name(),
            Op::Concat => "concat",
            Op::SliceCols { .. } => "slice_cols",
            Op::View { .. } => "view",
            Op::Rnn(op) => op.name(),
            Op::Conv(op) => op.name(),
            Op::Pool(op) => op.name(),
            Op::Dropout(_) => "dropout",
        }
    }
}
