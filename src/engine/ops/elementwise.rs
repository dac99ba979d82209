//! Elementwise maps: the binary ops (with numpy broadcasting), the activations applied
//! on their own, and the activations' gradients. Every fact of these ops in one file:
//! graph variant ([`ElementwiseOp`]) and builders on [`Graph`] with the shape rules,
//! vector-Jacobian rules, lowering ([`ElementwiseKernel`]), the CPU kernels they call
//! (`engine::cpu::kernels`), and their GPU pipelines, records and grids (entry points in
//! shaders/elementwise.wgsl; the f64 reference in tests/it/reference.rs). An op's code
//! (`BinaryOp::code`, `Act::code`) is what the kernels switch on: a new binary op is a
//! variant here, a `BINARY_<NAME>` code in common.wgsl, and its arm in each kernel; a new
//! activation is `graph::act` and common.wgsl alone.

use crate::engine::cpu::kernels as cpu;
use crate::engine::cpu::lanes::Lanes;
use crate::engine::gpu::executor::{record, u32c, vec4, Encoded, Limits};
use crate::engine::gpu::kernel_params::ElementwiseParams;
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::autodiff::{reduce_if_needed, through_act};
use crate::engine::graph::{broadcast_shape, broadcast_strides, Act, Graph, NodeId, Op};
use crate::engine::plan::{padded, TensorRef, MAX_RANK};
use crate::error::{Error, Result};
use crate::pipe;

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

/// The graph ops of the family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ElementwiseOp {
    /// Elementwise with numpy broadcasting (shapes aligned on the right).
    Binary(BinaryOp),
    /// Elementwise activation.
    Unary(Act),
    /// Inputs `[dy, v]`: returns `dy * act'(x)`, where `v` is the output `y = act(x)` or
    /// the pre-activation `x` itself, as `act.slope_from()` says (`Act::slope`).
    ActGrad(Act),
}

impl ElementwiseOp {
    /// The op's name, in error messages and profiles (an activation's own name).
    pub fn name(&self) -> &'static str {
        match self {
            ElementwiseOp::Binary(op) => op.name(),
            ElementwiseOp::Unary(act) => act.name(),
            ElementwiseOp::ActGrad(_) => "act_grad",
        }
    }

    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): the gradient
    /// of each input that `needs` asks for, as nodes appended to `g`. A broadcast
    /// operand's gradient is summed back to its shape.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        Ok(match *self {
            ElementwiseOp::Binary(op) => {
                let (a, b) = (x[0], x[1]);
                let (da, db) = match op {
                    BinaryOp::Add => (Some((dy, 1.0)), Some((dy, 1.0))),
                    BinaryOp::Sub => (Some((dy, 1.0)), Some((dy, -1.0))),
                    BinaryOp::Mul => (
                        needs[a]
                            .then(|| g.mul(dy, b))
                            .transpose()?
                            .map(|t| (t, 1.0)),
                        needs[b]
                            .then(|| g.mul(dy, a))
                            .transpose()?
                            .map(|t| (t, 1.0)),
                    ),
                    BinaryOp::Div => {
                        // y = a / b:  da = dy / b,  db = -dy · y / b
                        let da = needs[a]
                            .then(|| g.div(dy, b))
                            .transpose()?
                            .map(|t| (t, 1.0));
                        let db = if needs[b] {
                            let t = g.mul(dy, id)?;
                            Some((g.div(t, b)?, -1.0))
                        } else {
                            None
                        };
                        (da, db)
                    }
                };
                let mut out = Vec::new();
                for (input, d) in [(a, da), (b, db)] {
                    if let (true, Some((t, scale))) = (needs[input], d) {
                        out.push((input, reduce_if_needed(g, t, input, scale)?));
                    }
                }
                out
            }
            ElementwiseOp::Unary(act) => {
                let dx = through_act(g, act, dy, id, Some(x[0]))?;
                vec![(x[0], dx)]
            }
            ElementwiseOp::ActGrad(_) => {
                return Err(Error::Unsupported(format!(
                    "cannot differentiate through {} (second derivatives are not supported)",
                    self.name()
                )))
            }
        })
    }

    /// The launch that computes a node of this op: inputs at `ins` with shapes
    /// `in_shapes`, output of `shape` at `out`.
    pub(crate) fn lower(
        &self,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        shape: &[usize],
        out: TensorRef,
    ) -> ElementwiseKernel {
        match *self {
            ElementwiseOp::Binary(op) => ElementwiseKernel::Binary {
                op,
                a: ins[0],
                b: ins[1],
                out,
                shape: padded(shape, 1),
                a_strides: padded(&broadcast_strides(in_shapes[0], shape), 0),
                b_strides: padded(&broadcast_strides(in_shapes[1], shape), 0),
            },
            ElementwiseOp::Unary(act) => ElementwiseKernel::Unary {
                act,
                x: ins[0],
                out,
            },
            ElementwiseOp::ActGrad(act) => ElementwiseKernel::ActGrad {
                act,
                dy: ins[0],
                y: ins[1],
                out,
            },
        }
    }
}

/// One launch of the family. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ElementwiseKernel {
    /// Broadcasting elementwise; shapes padded on the left to `MAX_RANK`, strides 0 on
    /// broadcast axes.
    Binary {
        op: BinaryOp,
        a: TensorRef,
        b: TensorRef,
        out: TensorRef,
        shape: [usize; MAX_RANK],
        a_strides: [usize; MAX_RANK],
        b_strides: [usize; MAX_RANK],
    },
    /// `out = act(x)`.
    Unary {
        act: Act,
        x: TensorRef,
        out: TensorRef,
    },
    /// `out = dy · act'`, the derivative read from `y` (the activation's output, or its
    /// input, as `act.slope_from()` says).
    ActGrad {
        act: Act,
        dy: TensorRef,
        y: TensorRef,
        out: TensorRef,
    },
}

const BINARY: Pipe = pipe!("binary", Elementwise, Read2Write1);
const UNARY: Pipe = pipe!("unary", Elementwise, Read2Write1);
/// The flat-width probe's kernel too (`gpu::flat_width`).
pub(crate) const ACT_GRAD: Pipe = pipe!("act_grad", Elementwise, Read2Write1);

/// The family's pipelines (entry points of shaders/elementwise.wgsl).
pub const PIPES: &[Pipe] = &[BINARY, UNARY, ACT_GRAD];

impl ElementwiseKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            ElementwiseKernel::Binary { out, .. }
            | ElementwiseKernel::Unary { out, .. }
            | ElementwiseKernel::ActGrad { out, .. } => out,
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's.
    pub(crate) fn run_cpu<'a>(
        &self,
        v: impl Fn(TensorRef) -> &'a [f32],
        dst: &mut [f32],
        lanes: &Lanes,
    ) {
        let lanes = Some(lanes);
        match *self {
            ElementwiseKernel::Binary {
                op,
                a,
                b,
                shape,
                a_strides,
                b_strides,
                ..
            } => cpu::binary(op, v(a), v(b), dst, &shape, &a_strides, &b_strides, lanes),
            ElementwiseKernel::Unary { act, x, .. } => cpu::unary(act, v(x), dst, lanes),
            ElementwiseKernel::ActGrad { act, dy, y, .. } => {
                cpu::act_grad(act, v(dy), v(y), dst, lanes)
            }
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        match self {
            ElementwiseKernel::Binary { .. } => BINARY,
            ElementwiseKernel::Unary { .. } => UNARY,
            ElementwiseKernel::ActGrad { .. } => ACT_GRAD,
        }
    }

    /// Its GPU launch: uniform record (`ElementwiseParams`), bindings and grid (one
    /// invocation per output).
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let w = |t: TensorRef| lim.window(t);
        Ok(match *self {
            ElementwiseKernel::Binary {
                op,
                a,
                b,
                out,
                shape,
                a_strides,
                b_strides,
            } => {
                let ((wa, oa), (wb, ob), (wo, oo)) = (w(a)?, w(b)?, w(out)?);
                let r = record(ElementwiseParams {
                    shape: vec4(&shape)?,
                    x_strides: vec4(&a_strides)?,
                    y_strides: vec4(&b_strides)?,
                    n: u32c(out.len)?,
                    code: op.code(),
                    off_x: oa,
                    off_y: ob,
                    off_out: oo,
                    ..Default::default()
                });
                (
                    r,
                    vec![(1, Some(wa)), (2, Some(wb)), (3, Some(wo))],
                    lim.grid_1d(out.len)?,
                )
            }
            ElementwiseKernel::Unary { act, x, out } => {
                let ((wx, ox), (wo, oo)) = (w(x)?, w(out)?);
                let r = record(ElementwiseParams {
                    shape: [1; 4],
                    n: u32c(out.len)?,
                    code: act.code(),
                    off_x: ox,
                    off_out: oo,
                    ..Default::default()
                });
                (
                    r,
                    vec![(1, Some(wx)), (2, None), (3, Some(wo))],
                    lim.grid_1d(out.len)?,
                )
            }
            ElementwiseKernel::ActGrad { act, dy, y, out } => {
                let ((wd, od), (wy, oy), (wo, oo)) = (w(dy)?, w(y)?, w(out)?);
                let r = record(ElementwiseParams {
                    shape: [1; 4],
                    n: u32c(out.len)?,
                    code: act.code(),
                    off_x: od,
                    off_y: oy,
                    off_out: oo,
                    ..Default::default()
                });
                (
                    r,
                    vec![(1, Some(wd)), (2, Some(wy)), (3, Some(wo))],
                    lim.grid_1d(out.len)?,
                )
            }
        })
    }
}

/// The family's builders, with their shape rules.
impl Graph {
    /// `op(a, b)` elementwise, with numpy broadcasting.
    pub fn binary(&mut self, op: BinaryOp, a: NodeId, b: NodeId) -> Result<NodeId> {
        let name = op.name();
        let shape = broadcast_shape(self.shape(a), self.shape(b)).ok_or_else(|| {
            Error::shape(
                name,
                format!(
                    "cannot broadcast {:?} with {:?}",
                    self.shape(a),
                    self.shape(b)
                ),
            )
        })?;
        Ok(self.push(
            Op::Elementwise(ElementwiseOp::Binary(op)),
            vec![a, b],
            shape,
        ))
    }
    /// `a + b`, broadcasting.
    pub fn add(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Add, a, b)
    }
    /// `a - b`, broadcasting.
    pub fn sub(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Sub, a, b)
    }
    /// `a * b`, broadcasting.
    pub fn mul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Mul, a, b)
    }
    /// `a / b`, broadcasting.
    pub fn div(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.binary(BinaryOp::Div, a, b)
    }

    /// `act(x)` elementwise.
    pub fn unary(&mut self, act: Act, x: NodeId) -> Result<NodeId> {
        let shape = self.shape(x).to_vec();
        Ok(self.push(Op::Elementwise(ElementwiseOp::Unary(act)), vec![x], shape))
    }
    /// `max(x, 0)` elementwise.
    pub fn relu(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Act::Relu, x)
    }
    /// `1 / (1 + e^-x)` elementwise.
    pub fn sigmoid(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Act::Sigmoid, x)
    }
    /// `tanh(x)` elementwise.
    pub fn tanh(&mut self, x: NodeId) -> Result<NodeId> {
        self.unary(Act::Tanh, x)
    }

    /// `dy · act'(x)`, with `v` the output `y = act(x)` or the input `x` as
    /// `act.slope_from()` says.
    pub(crate) fn act_grad(&mut self, act: Act, dy: NodeId, v: NodeId) -> Result<NodeId> {
        let shape = self.shape(v).to_vec();
        if self.shape(dy) != shape.as_slice() {
            return Err(Error::shape(
                "act_grad",
                format!("dy {:?} vs {} {shape:?}", self.shape(dy), act.name()),
            ));
        }
        Ok(self.push(
            Op::Elementwise(ElementwiseOp::ActGrad(act)),
            vec![dy, v],
            shape,
        ))
    }
}
