//! The training loss: mean binary cross-entropy on logits, and its gradient. Every fact
//! of these ops in one file: graph variant ([`LossOp`]) and builder on [`Graph`] with
//! the shape rule, vector-Jacobian rule, lowering ([`LossKernel`]), the CPU kernels it
//! calls (`engine::cpu::kernels`), and its GPU pipeline, uniform record and grid (entry
//! points in shaders/loss.wgsl; the f64 reference in tests/it/reference/loss.rs).

use crate::engine::cpu::kernels as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::LossParams;
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{Graph, NodeId, Op};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};
use crate::pipe;

/// The graph ops of the family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossOp {
    /// Mean binary cross-entropy of logits `[b,1]` against targets `[b,1]`; output `[1]`.
    /// Positives are weighted by `pos_weight`. Inputs `[logits, targets]`; no gradient
    /// flows to the targets.
    BceWithLogits {
        /// The weight of a positive's term.
        pos_weight: f32,
    },
    /// Inputs `[logits, targets, dloss]`: the gradient of `BceWithLogits` w.r.t. logits.
    BceWithLogitsGrad {
        /// The forward loss's.
        pos_weight: f32,
    },
}

impl LossOp {
    /// The op's name: in error messages and profiles, and its WGSL entry point.
    pub fn name(&self) -> &'static str {
        match self {
            LossOp::BceWithLogits { .. } => "bce_with_logits",
            LossOp::BceWithLogitsGrad { .. } => "bce_with_logits_grad",
        }
    }

    /// Whether a gradient flows through input `k` (not to the targets).
    pub fn passes_gradient(&self, k: usize) -> bool {
        k == 0
    }

    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): the logits'
    /// gradient, as nodes appended to `g`.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        _id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        _needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        match *self {
            LossOp::BceWithLogits { pos_weight } => Ok(vec![(
                x[0],
                g.bce_with_logits_grad(x[0], x[1], dy, pos_weight)?,
            )]),
            LossOp::BceWithLogitsGrad { .. } => Err(Error::Unsupported(format!(
                "cannot differentiate through {} (second derivatives are not supported)",
                self.name()
            ))),
        }
    }

    /// The launch that computes a node of this op, its inputs at `ins` and output at
    /// `out`.
    pub(crate) fn lower(&self, ins: &[TensorRef], out: TensorRef) -> LossKernel {
        match *self {
            LossOp::BceWithLogits { pos_weight } => LossKernel::BceWithLogits {
                logits: ins[0],
                targets: ins[1],
                out,
                pos_weight,
            },
            LossOp::BceWithLogitsGrad { pos_weight } => LossKernel::BceWithLogitsGrad {
                logits: ins[0],
                targets: ins[1],
                dloss: ins[2],
                out,
                pos_weight,
            },
        }
    }
}

/// One launch of the family. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LossKernel {
    /// `out[0]` = mean binary cross-entropy of `logits` against `targets`, positives
    /// weighted by `pos_weight`.
    BceWithLogits {
        logits: TensorRef,
        targets: TensorRef,
        out: TensorRef,
        pos_weight: f32,
    },
    /// `out` = `dloss[0]` times the gradient of `BceWithLogits` w.r.t. the logits.
    BceWithLogitsGrad {
        logits: TensorRef,
        targets: TensorRef,
        dloss: TensorRef,
        out: TensorRef,
        pos_weight: f32,
    },
}

const BCE_WITH_LOGITS: Pipe = pipe!("bce_with_logits", Loss, Read3Write1);
const BCE_WITH_LOGITS_GRAD: Pipe = pipe!("bce_with_logits_grad", Loss, Read3Write1);

/// The family's pipelines (entry points of shaders/loss.wgsl).
pub const PIPES: &[Pipe] = &[BCE_WITH_LOGITS, BCE_WITH_LOGITS_GRAD];

impl LossKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            LossKernel::BceWithLogits { out, .. } | LossKernel::BceWithLogitsGrad { out, .. } => {
                out
            }
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's.
    pub(crate) fn run_cpu<'a>(&self, v: impl Fn(TensorRef) -> &'a [f32], dst: &mut [f32]) {
        match *self {
            LossKernel::BceWithLogits {
                logits,
                targets,
                pos_weight,
                ..
            } => dst[0] = cpu::bce_with_logits(v(logits), v(targets), pos_weight),
            LossKernel::BceWithLogitsGrad {
                logits,
                targets,
                dloss,
                pos_weight,
                ..
            } => cpu::bce_with_logits_grad(v(logits), v(targets), v(dloss)[0], dst, pos_weight),
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        match self {
            LossKernel::BceWithLogits { .. } => BCE_WITH_LOGITS,
            LossKernel::BceWithLogitsGrad { .. } => BCE_WITH_LOGITS_GRAD,
        }
    }

    /// Its GPU launch: uniform record (`LossParams`), bindings and grid. The loss is one
    /// workgroup that sums in a fixed order; its gradient one invocation per logit.
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let (logits, targets, dloss, out, pos_weight) = match *self {
            LossKernel::BceWithLogits {
                logits,
                targets,
                out,
                pos_weight,
            } => (logits, targets, None, out, pos_weight),
            LossKernel::BceWithLogitsGrad {
                logits,
                targets,
                dloss,
                out,
                pos_weight,
            } => (logits, targets, Some(dloss), out, pos_weight),
        };
        let ((wl, ol), (wt, ot), (wo, oo)) =
            (lim.window(logits)?, lim.window(targets)?, lim.window(out)?);
        let (wd, od) = lim.window_opt(dloss)?;
        let r = record(LossParams {
            n: u32c(logits.len)?,
            off_logits: ol,
            off_targets: ot,
            off_dloss: od,
            off_out: oo,
            pos_weight,
            loss_scale: lim.loss_scale,
            ..Default::default()
        });
        let grid = match dloss {
            None => [1, 1, 1],
            Some(_) => lim.grid_1d(logits.len)?,
        };
        Ok((
            r,
            vec![(1, Some(wl)), (2, Some(wt)), (3, wd), (4, Some(wo))],
            grid,
        ))
    }
}

/// The family's builders, with their shape rules.
impl Graph {
    /// Mean binary cross-entropy of `logits` against 0/1 `targets` (both `[b, 1]`),
    /// positives weighted by `pos_weight`; output `[1]`.
    pub fn bce_with_logits(
        &mut self,
        logits: NodeId,
        targets: NodeId,
        pos_weight: f32,
    ) -> Result<NodeId> {
        let (sl, st) = (self.shape(logits), self.shape(targets));
        if sl.len() != 2 || sl[1] != 1 || sl != st {
            return Err(Error::shape(
                "bce_with_logits",
                format!("logits {sl:?} and targets {st:?} must both be [batch, 1]"),
            ));
        }
        Ok(self.push(
            Op::Loss(LossOp::BceWithLogits { pos_weight }),
            vec![logits, targets],
            vec![1],
        ))
    }

    pub(crate) fn bce_with_logits_grad(
        &mut self,
        logits: NodeId,
        targets: NodeId,
        dloss: NodeId,
        pos_weight: f32,
    ) -> Result<NodeId> {
        let shape = self.shape(logits).to_vec();
        Ok(self.push(
            Op::Loss(LossOp::BceWithLogitsGrad { pos_weight }),
            vec![logits, targets, dloss],
            shape,
        ))
    }
}
