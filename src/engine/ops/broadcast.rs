//! Sums to a shape and broadcasts from one, each other's gradient: every fact of these
//! ops in one file: graph variant ([`BroadcastOp`]) and builders on [`Graph`] with the
//! shape rules, vector-Jacobian rules, lowering ([`BroadcastKernel`]), the CPU kernels
//! they call (`engine::cpu::kernels`), and their GPU pipelines, records and grids (the
//! sum in shaders/reduce.wgsl, serial or a workgroup tree per output; the broadcast in
//! elementwise.wgsl; the f64 reference in tests/it/reference.rs).

use crate::engine::cpu::kernels as cpu;
use crate::engine::gpu::executor::{record, u32c, vec4, Encoded, Limits};
use crate::engine::gpu::kernel_params::{ElementwiseParams, ReduceParams};
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{broadcast_shape, broadcast_strides, Graph, NodeId, Op};
use crate::engine::plan::{contiguous_strides, padded, TensorRef, MAX_RANK};
use crate::error::{Error, Result};
use crate::pipe;

/// The graph ops of the family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BroadcastOp {
    /// Sum into `shape` (which the input broadcasts from), times `scale`.
    /// Covers sum along an axis, mean, and the gradient of broadcasting.
    ReduceTo {
        /// Multiplies the sum.
        scale: f32,
    },
    /// Broadcast the input to this node's shape, times `scale`.
    ExpandTo {
        /// Multiplies each value.
        scale: f32,
    },
}

impl BroadcastOp {
    /// The op's name, in error messages and profiles.
    pub fn name(&self) -> &'static str {
        match self {
            BroadcastOp::ReduceTo { .. } => "reduce_to",
            BroadcastOp::ExpandTo { .. } => "expand_to",
        }
    }

    /// The vector-Jacobian rule (inputs `x`, gradient `dy`): each is the other's
    /// adjoint.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        _id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        _needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        let shape = g.shape(x[0]).to_vec();
        Ok(vec![(
            x[0],
            match *self {
                BroadcastOp::ReduceTo { scale } => g.expand_to(dy, &shape, scale)?,
                BroadcastOp::ExpandTo { scale } => g.reduce_to(dy, &shape, scale)?,
            },
        )])
    }

    /// The launch that computes a node of this op: inputs at `ins` with shapes
    /// `in_shapes`, output of `shape` at `out`.
    pub(crate) fn lower(
        &self,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        shape: &[usize],
        out: TensorRef,
    ) -> BroadcastKernel {
        match *self {
            BroadcastOp::ReduceTo { scale } => BroadcastKernel::ReduceTo {
                x: ins[0],
                out,
                in_shape: padded(in_shapes[0], 1),
                out_shape: padded(shape, 1),
                scale,
            },
            BroadcastOp::ExpandTo { scale } => BroadcastKernel::ExpandTo {
                x: ins[0],
                out,
                out_shape: padded(shape, 1),
                x_strides: padded(&broadcast_strides(in_shapes[0], shape), 0),
                scale,
            },
        }
    }
}

/// One launch of the family. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BroadcastKernel {
    /// `out = scale * sum of x over the axes where out_shape is 1 and in_shape is not`;
    /// summed in an order fixed by the shapes (index order; on the CPU a sum of leading
    /// rows in two halves, `cpu::kernels::sum_halves`), so results do not depend on the
    /// executor's threading.
    ReduceTo {
        x: TensorRef,
        out: TensorRef,
        in_shape: [usize; MAX_RANK],
        out_shape: [usize; MAX_RANK],
        scale: f32,
    },
    /// `out[i] = scale * x[broadcast index of i]`.
    ExpandTo {
        x: TensorRef,
        out: TensorRef,
        out_shape: [usize; MAX_RANK],
        x_strides: [usize; MAX_RANK],
        scale: f32,
    },
}

/// A sum's two pipelines: for sums over any axes (index 0) and for sums along one axis
/// (index 1: `ONE_AXIS`, see [`one_axis`]).
macro_rules! sum_pipes {
    ($entry:literal) => {
        [
            pipe!($entry, Reduce, Read1Write1),
            pipe!(
                concat!($entry, "_one_axis"),
                Reduce,
                Read1Write1,
                $entry,
                [("ONE_AXIS", 1)]
            ),
        ]
    };
}

const REDUCE_TO_SERIAL: [Pipe; 2] = sum_pipes!("reduce_to_serial");
const REDUCE_TO_TREE: [Pipe; 2] = sum_pipes!("reduce_to_tree");
/// The sums' width probe's kernel too (`gpu::flat_width`, which sums along one axis).
pub(crate) const REDUCE_TO_TREE_ORDER: [Pipe; 2] = sum_pipes!("reduce_to_tree_order");
const EXPAND_TO: Pipe = pipe!("expand_to", Elementwise, Read2Write1);

/// The family's pipelines: reduce.wgsl's three sums, elementwise.wgsl's broadcast.
pub const PIPES: &[Pipe] = &[
    REDUCE_TO_SERIAL[0],
    REDUCE_TO_SERIAL[1],
    REDUCE_TO_TREE[0],
    REDUCE_TO_TREE[1],
    REDUCE_TO_TREE_ORDER[0],
    REDUCE_TO_TREE_ORDER[1],
    EXPAND_TO,
];

/// The extent of each axis a sum from `in_shape` to `out_shape` reduces, 1 on the axes
/// it keeps.
fn reduced_extents(
    in_shape: &[usize; MAX_RANK],
    out_shape: &[usize; MAX_RANK],
) -> [usize; MAX_RANK] {
    std::array::from_fn(|d| if out_shape[d] == 1 { in_shape[d] } else { 1 })
}

/// Whether a sum with these extents of its reduced axes (1 on kept axes) runs along
/// one axis, each output's summands a fixed stride apart: then it takes a sum's
/// `ONE_AXIS` pipeline.
pub fn one_axis(reduced: &[usize]) -> bool {
    reduced.iter().filter(|&&extent| extent > 1).count() <= 1
}

/// Reductions with fewer outputs than this and at least `TREE_MIN_COUNT` summands each
/// sum in the tree's association; others on `reduce_to_serial`.
const TREE_MAX_OUTPUTS: usize = 4096;
const TREE_MIN_COUNT: usize = 256;
/// Tree sums of fewer summands than this run on `reduce_to_tree_order` (one invocation
/// per output, the same bits), longer ones on `reduce_to_tree` (one workgroup per
/// output). On lavapipe the workgroup's barriers made a batch of 256's bias gradients
/// 30 % of an MLP step (BENCHMARKS.md); above a few thousand summands one invocation's
/// loop would be the longer wait on any adapter.
const TREE_WORKGROUP_MIN_COUNT: usize = 2048;

/// The pipeline of a sum of `n_out` outputs of `count` summands each, along one axis
/// or not ([`one_axis`]) (also the convolution bias gradient's).
pub fn reduce_pipe(n_out: usize, count: usize, one_axis: bool) -> Pipe {
    let sum = if n_out >= TREE_MAX_OUTPUTS || count < TREE_MIN_COUNT {
        REDUCE_TO_SERIAL
    } else if count < TREE_WORKGROUP_MIN_COUNT {
        REDUCE_TO_TREE_ORDER
    } else {
        REDUCE_TO_TREE
    };
    sum[one_axis as usize]
}

/// The grid of a sum of `n_out` outputs on `pipe` (one of [`reduce_pipe`]'s): one
/// workgroup per output for the tree, else one invocation per output in workgroups of
/// `WG_SUMS` (the device's, `Limits::grid_sums`).
pub(crate) fn reduce_grid(pipe: Pipe, n_out: usize, lim: &Limits) -> Result<[u32; 3]> {
    if REDUCE_TO_TREE.contains(&pipe) {
        lim.grid(n_out)
    } else {
        lim.grid_sums(n_out)
    }
}

impl BroadcastKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            BroadcastKernel::ReduceTo { out, .. } | BroadcastKernel::ExpandTo { out, .. } => out,
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's.
    pub(crate) fn run_cpu<'a>(&self, v: impl Fn(TensorRef) -> &'a [f32], dst: &mut [f32]) {
        match *self {
            BroadcastKernel::ReduceTo {
                x,
                in_shape,
                out_shape,
                scale,
                ..
            } => cpu::reduce_to(v(x), dst, &in_shape, &out_shape, scale),
            BroadcastKernel::ExpandTo {
                x,
                out_shape,
                x_strides,
                scale,
                ..
            } => cpu::expand_to(v(x), dst, &out_shape, &x_strides, scale),
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        match *self {
            BroadcastKernel::ReduceTo {
                in_shape,
                out_shape,
                ..
            } => {
                let n_out = out_shape.iter().product();
                let reduced = reduced_extents(&in_shape, &out_shape);
                reduce_pipe(n_out, reduced.iter().product(), one_axis(&reduced))
            }
            BroadcastKernel::ExpandTo { .. } => EXPAND_TO,
        }
    }

    /// Its GPU launch: uniform record, bindings and grid.
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let w = |t: TensorRef| lim.window(t);
        Ok(match *self {
            BroadcastKernel::ReduceTo {
                x,
                out,
                in_shape,
                out_shape,
                scale,
            } => {
                let ((wx, ox), (wo, oo)) = (w(x)?, w(out)?);
                let reduced = reduced_extents(&in_shape, &out_shape);
                let n_out: usize = out_shape.iter().product();
                let count: usize = reduced.iter().product();
                let r = record(ReduceParams {
                    out_shape: vec4(&out_shape)?,
                    reduced: vec4(&reduced)?,
                    in_strides: vec4(&contiguous_strides(&in_shape))?,
                    n_out: u32c(n_out)?,
                    count: u32c(count)?,
                    off_x: ox,
                    off_out: oo,
                    scale,
                    ..Default::default()
                });
                let groups = reduce_grid(self.pipe(), n_out, lim)?;
                (r, vec![(1, Some(wx)), (2, Some(wo))], groups)
            }
            BroadcastKernel::ExpandTo {
                x,
                out,
                out_shape,
                x_strides,
                scale,
            } => {
                let ((wx, ox), (wo, oo)) = (w(x)?, w(out)?);
                let r = record(ElementwiseParams {
                    shape: vec4(&out_shape)?,
                    x_strides: vec4(&x_strides)?,
                    n: u32c(out.len)?,
                    off_x: ox,
                    off_out: oo,
                    value: scale,
                    ..Default::default()
                });
                (
                    r,
                    vec![(1, Some(wx)), (2, None), (3, Some(wo))],
                    lim.grid_1d(out.len)?,
                )
            }
        })
    }
}

/// The family's builders, with their shape rules.
impl Graph {
    /// Sum into `shape`, times `scale`; `shape` must broadcast to the input's shape.
    pub fn reduce_to(&mut self, x: NodeId, shape: &[usize], scale: f32) -> Result<NodeId> {
        if broadcast_shape(shape, self.shape(x)).as_deref() != Some(self.shape(x))
            || shape.len() > self.shape(x).len()
        {
            return Err(Error::shape(
                "reduce_to",
                format!("{:?} does not reduce to {shape:?}", self.shape(x)),
            ));
        }
        Ok(self.push(
            Op::Broadcast(BroadcastOp::ReduceTo { scale }),
            vec![x],
            shape.to_vec(),
        ))
    }

    /// Broadcast to `shape`, times `scale`.
    pub fn expand_to(&mut self, x: NodeId, shape: &[usize], scale: f32) -> Result<NodeId> {
        if broadcast_shape(self.shape(x), shape).as_deref() != Some(shape) {
            return Err(Error::shape(
                "expand_to",
                format!("{:?} does not broadcast to {shape:?}", self.shape(x)),
            ));
        }
        Ok(self.push(
            Op::Broadcast(BroadcastOp::ExpandTo { scale }),
            vec![x],
            shape.to_vec(),
        ))
    }
}
