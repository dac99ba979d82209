//! Row gathers from a resident table by the step's window of an index list, and their
//! adjoint: every fact of these ops in one file. For each: graph variant ([`GatherOp`])
//! and builder on [`Graph`] with the shape rule, vector-Jacobian rule, lowering
//! ([`GatherKernel`]), the CPU kernel it calls (`engine::cpu::kernels`), and its GPU
//! pipeline, uniform records and grids (entry points in shaders/gather.wgsl; the f64
//! reference in tests/it/reference/gather.rs). A table larger than one storage binding
//! is gathered (or scattered into) by one launch per run of rows that fits one.

use crate::engine::cpu::kernels as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::GatherParams;
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{Graph, NodeId, Op};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};
use crate::pipe;

/// The graph ops of the family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GatherOp {
    /// Rows of a resident table chosen by a window of an index list:
    /// `out[b] = table[perm[step * batch + b]]`, where `step` is the executor's step
    /// counter. Inputs `[table, perm]`; `perm` holds u32 row indices and carries no
    /// gradient.
    GatherRows,
    /// Gradient of `GatherRows` w.r.t. the table: inputs `[dy, perm]`, rows summed into
    /// a table-shaped output in a fixed order (deterministic, no atomics).
    ScatterAddRows,
}

impl GatherOp {
    /// The op's name: in error messages and profiles, and its WGSL entry point.
    pub fn name(&self) -> &'static str {
        match self {
            GatherOp::GatherRows => "gather_rows",
            GatherOp::ScatterAddRows => "scatter_add_rows",
        }
    }

    /// Whether a gradient flows through input `k` (not to the index list).
    pub fn passes_gradient(&self, k: usize) -> bool {
        k == 0
    }

    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): the table's
    /// gradient, as nodes appended to `g`.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        _id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        _needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        match self {
            GatherOp::GatherRows => {
                let shape = g.shape(x[0]).to_vec();
                Ok(vec![(x[0], g.scatter_add_rows(dy, x[1], &shape)?)])
            }
            GatherOp::ScatterAddRows => Err(Error::Unsupported(format!(
                "cannot differentiate through {} (second derivatives are not supported)",
                self.name()
            ))),
        }
    }

    /// The launch that computes a node of this op: inputs at `ins` with shapes
    /// `in_shapes`, output of `shape` at `out`.
    pub(crate) fn lower(
        &self,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        shape: &[usize],
        out: TensorRef,
    ) -> GatherKernel {
        match self {
            GatherOp::GatherRows => GatherKernel::GatherRows {
                table: ins[0],
                perm: ins[1],
                out,
                batch: shape[0],
                cols: shape[1],
            },
            GatherOp::ScatterAddRows => GatherKernel::ScatterAddRows {
                dy: ins[0],
                perm: ins[1],
                out,
                batch: in_shapes[0][0],
                cols: in_shapes[0][1],
            },
        }
    }
}

/// One launch of the family. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum GatherKernel {
    /// `out[b, :] = table[perm[step * batch + b], :]`.
    GatherRows {
        table: TensorRef,
        perm: TensorRef,
        out: TensorRef,
        batch: usize,
        cols: usize,
    },
    /// `out[r, :] = sum over b with perm[step * batch + b] == r of dy[b, :]`.
    ScatterAddRows {
        dy: TensorRef,
        perm: TensorRef,
        out: TensorRef,
        batch: usize,
        cols: usize,
    },
}

const GATHER_ROWS: Pipe = pipe!("gather_rows", Gather, Read3Write1);
const SCATTER_ADD_ROWS: Pipe = pipe!("scatter_add_rows", Gather, Read3Write1);

/// The family's pipelines (entry points of shaders/gather.wgsl).
pub const PIPES: &[Pipe] = &[GATHER_ROWS, SCATTER_ADD_ROWS];

impl GatherKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            GatherKernel::GatherRows { out, .. } | GatherKernel::ScatterAddRows { out, .. } => out,
        }
    }

    /// The index list a run must check, the rows each step takes from it, and the rows
    /// of the table its indices must stay below.
    pub fn indices(&self) -> (TensorRef, usize, usize) {
        match *self {
            GatherKernel::GatherRows {
                table,
                perm,
                batch,
                cols,
                ..
            } => (perm, batch, table.len / cols),
            GatherKernel::ScatterAddRows {
                perm,
                batch,
                out,
                cols,
                ..
            } => (perm, batch, out.len / cols),
        }
    }

    /// Runs it on the CPU at step `step` of a run: `v` reads an input window, `dst` is
    /// the output's.
    pub(crate) fn run_cpu<'a>(
        &self,
        v: impl Fn(TensorRef) -> &'a [f32],
        dst: &mut [f32],
        step: usize,
    ) {
        let u32s = |t: TensorRef| -> &[u32] { bytemuck::cast_slice(v(t)) };
        match *self {
            GatherKernel::GatherRows {
                table,
                perm,
                batch,
                cols,
                ..
            } => cpu::gather_rows(v(table), u32s(perm), dst, step, batch, cols),
            GatherKernel::ScatterAddRows {
                dy,
                perm,
                batch,
                cols,
                ..
            } => cpu::scatter_add_rows(v(dy), u32s(perm), dst, step, batch, cols),
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        match self {
            GatherKernel::GatherRows { .. } => GATHER_ROWS,
            GatherKernel::ScatterAddRows { .. } => SCATTER_ADD_ROWS,
        }
    }

    /// Its GPU launches, reading the step at `step` (the step counters): one per run of
    /// the table's rows that fits one storage binding (`Limits::row_pieces`; one in all
    /// where the whole table fits). A gather's pieces each fill the rows of the batch
    /// whose index falls in their run; a scatter's each sum into their run of the table.
    pub(crate) fn encode(&self, lim: &Limits, step: TensorRef) -> Result<Vec<Encoded>> {
        let (ws, os) = lim.window(step)?;
        // A gather reads each run of the table into the whole batch; a scatter sums the
        // whole batch into each run of the table. `batch_side` is bound whole.
        let (table, batch_side, perm, batch, cols, gathering) = match *self {
            GatherKernel::GatherRows {
                table,
                perm,
                out,
                batch,
                cols,
            } => (table, out, perm, batch, cols, true),
            GatherKernel::ScatterAddRows {
                dy,
                perm,
                out,
                batch,
                cols,
            } => (out, dy, perm, batch, cols, false),
        };
        let whole = lim.window(batch_side)?;
        let (wp, op) = lim.window(perm)?;
        lim.row_pieces(table, cols)?
            .into_iter()
            .map(|piece| {
                let run = (piece.window, piece.offset);
                let ((w_src, o_src), (w_out, o_out), n) = if gathering {
                    (run, whole, batch_side.len)
                } else {
                    (whole, run, piece.rows.len() * cols)
                };
                let r = record(GatherParams {
                    n: u32c(n)?,
                    batch: u32c(batch)?,
                    cols: u32c(cols)?,
                    off_src: o_src,
                    off_perm: op,
                    off_step: os,
                    off_out: o_out,
                    first_row: u32c(piece.rows.start)?,
                    end_row: u32c(piece.rows.end)?,
                    ..Default::default()
                });
                Ok((
                    r,
                    vec![
                        (1, Some(w_src)),
                        (2, Some(wp)),
                        (3, Some(ws)),
                        (4, Some(w_out)),
                    ],
                    lim.grid_1d(n)?,
                ))
            })
            .collect()
    }
}

/// The family's builders, with their shape rules.
impl Graph {
    /// `batch` rows of `table` (`[rows, features]`) picked by the current step's window of
    /// `perm` (a u32 input of row indices).
    pub fn gather_rows(&mut self, table: NodeId, perm: NodeId, batch: usize) -> Result<NodeId> {
        let st = self.shape(table).to_vec();
        if st.len() != 2 || self.shape(perm).len() != 1 || batch == 0 {
            return Err(Error::shape(
                "gather_rows",
                format!(
                    "table {st:?} must be 2-D, perm {:?} 1-D, batch > 0",
                    self.shape(perm)
                ),
            ));
        }
        if !matches!(self.nodes[perm].op, Op::Input { .. }) {
            return Err(Error::shape(
                "gather_rows",
                "the index list must be a graph input",
            ));
        }
        Ok(self.push(
            Op::Gather(GatherOp::GatherRows),
            vec![table, perm],
            vec![batch, st[1]],
        ))
    }

    pub(crate) fn scatter_add_rows(
        &mut self,
        dy: NodeId,
        perm: NodeId,
        table_shape: &[usize],
    ) -> Result<NodeId> {
        Ok(self.push(
            Op::Gather(GatherOp::ScatterAddRows),
            vec![dy, perm],
            table_shape.to_vec(),
        ))
    }
}
