//! Recurrent cells: every fact of the fused per-step ops in one file (the graph ops
//! [`RnnOp`], where their inputs sit, the packed layout of their outputs, their builders
//! and shape rules, their lowering [`RnnKernel`], the CPU kernels they call
//! (`engine::cpu::rnn`), and their GPU pipelines, records and grids (shaders/rnn.wgsl;
//! the f64 reference in tests/it/reference/rnn.rs). Their vector-Jacobian rule is the
//! one rule the autodiff walk keeps (`autodiff::rnn_cell_rule`): it gathers the
//! gradients that reach a cell through the views of its packed output.
//!
//! The equations are PyTorch's, gate order included, with both of its biases
//! (`b_ih` and `b_hh`), so weights can be exchanged with it. Weights are stored as this
//! crate's dense layers store them, input-major: `W_ih` is `[input, G]` and `W_hh` is
//! `[hidden, G]` (the transposes of PyTorch's `weight_ih_l0`/`weight_hh_l0`), with
//! `G = 4·hidden` (LSTM) or `3·hidden` (GRU), gate blocks side by side in that order.
//!
//! LSTM, gates (i, f, g, o):
//!     z   = x_t·W_ih + b_ih + h_{t-1}·W_hh + b_hh
//!     i = σ(z_i)   f = σ(z_f)   g = tanh(z_g)   o = σ(z_o)
//!     c_t = f ⊙ c_{t-1} + i ⊙ g
//!     h_t = o ⊙ tanh(c_t)
//!
//! GRU, gates (r, z, n):
//!     a   = x_t·W_ih + b_ih            b = h_{t-1}·W_hh + b_hh
//!     r = σ(a_r + b_r)   z = σ(a_z + b_z)   n = tanh(a_n + r ⊙ b_n)
//!     h_t = (1 − z) ⊙ n + z ⊙ h_{t-1}
//!
//! The two products come from the tiled matmul (bias fused); everything else of one step
//! is one `RnnCell` node, one kernel launch. A layer is unrolled over its steps (shapes
//! are static), so backpropagation through time is the autodiff of the unrolled graph.
//!
//! # Packed outputs
//!
//! Graph nodes have one output, but a cell produces several tensors (the new state and
//! what its backward needs). Each cell node writes them back to back in one buffer, in
//! *planes* (each a contiguous row-major matrix), and consumers read them through `View`
//! nodes, which cost nothing: the plan aliases the cell's storage at an offset, and
//! liveness keeps the whole buffer while any view of it is read. So `h_t` is a plain
//! `[rows, hidden]` matrix that the next step's matmul reads directly. Autodiff knows
//! the planes: the gradients reaching the views of `h` and `c` are handed to the cell's
//! rule, which emits one `RnnCellGrad` node (again packed).
//!
//! Saved for backward: the four activated gates and `tanh(c_t)` (LSTM), or r, z, n and
//! the recurrent part of n's pre-activation `b_n` (GRU), plus the states themselves,
//! which the forward pass needs anyway. Storing `tanh(c_t)` costs one write per unit
//! and spares the backward step its only transcendental function.

use crate::engine::cpu::lanes::Lanes;
use crate::engine::cpu::rnn as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::{RnnParams, GH_ABSENT, GH_BROADCAST, GH_MATRIX};
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{Graph, NodeId, Op};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};
use crate::pipe;
use serde::{Deserialize, Serialize};

/// A recurrent cell: the gate order and equations are PyTorch's (see the module doc).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CellKind {
    /// Gates i, f, g, o; state (h, c).
    Lstm,
    /// Gates r, z, n; state h.
    Gru,
}

impl CellKind {
    /// Gate blocks per step: the width of the products is `gates() · hidden`.
    pub fn gates(self) -> usize {
        match self {
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// The kind's lowercase name (`lstm`, `gru`), as in model files and messages.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Lstm => "lstm",
            CellKind::Gru => "gru",
        }
    }
}

/// Word offsets of the planes of a cell's packed outputs, for `rows × hidden` states.
/// Each plane is a row-major matrix with `rows` rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packing {
    /// The cell.
    pub kind: CellKind,
    /// Rows (batch) of each state.
    pub rows: usize,
    /// Hidden units.
    pub hidden: usize,
}

impl Packing {
    /// The packing of a `kind` cell's outputs for `rows × hidden` states.
    pub fn new(kind: CellKind, rows: usize, hidden: usize) -> Self {
        Packing { kind, rows, hidden }
    }

    fn plane(&self) -> usize {
        self.rows * self.hidden
    }

    /// Forward: `h_t` `[rows, hidden]` at 0.
    pub fn h(&self) -> usize {
        0
    }

    /// Forward (LSTM only): `c_t` `[rows, hidden]`.
    pub fn c(&self) -> usize {
        self.plane()
    }

    /// Forward: the saved gates, `[rows, 4·hidden]`: (i, f, g, o) activated (LSTM), or
    /// (r, z, n, b_n) (GRU).
    pub fn saved(&self) -> usize {
        match self.kind {
            CellKind::Lstm => 2 * self.plane(),
            CellKind::Gru => self.plane(),
        }
    }

    /// Forward (LSTM only): `tanh(c_t)` `[rows, hidden]`, after the saved gates.
    pub fn tanh_c(&self) -> usize {
        self.saved() + 4 * self.plane()
    }

    /// Words of the forward output.
    pub fn state_len(&self) -> usize {
        match self.kind {
            CellKind::Lstm => self.tanh_c() + self.plane(),
            CellKind::Gru => self.saved() + 4 * self.plane(),
        }
    }

    /// Backward: the gradient of the input product `gx`, `[rows, G]`.
    pub fn dgx(&self) -> usize {
        0
    }

    /// Backward: the gradient of the recurrent product `gh`, `[rows, G]`. The same plane
    /// as `dgx` for the LSTM, where both enter the gates as one sum.
    pub fn dgh(&self) -> usize {
        match self.kind {
            CellKind::Lstm => 0,
            CellKind::Gru => 3 * self.plane(),
        }
    }

    /// Backward: the gradient of the `prev` input (LSTM `c_{t-1}`, GRU `h_{t-1}`),
    /// `[rows, hidden]`.
    pub fn dprev(&self) -> usize {
        match self.kind {
            CellKind::Lstm => 4 * self.plane(),
            CellKind::Gru => 6 * self.plane(),
        }
    }

    /// Words of the backward output.
    pub fn grad_len(&self) -> usize {
        self.dprev() + self.plane()
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

/// The graph ops of the family.
#[derive(Clone, Debug, PartialEq)]
pub enum RnnOp {
    /// One time step of a recurrent layer, all pointwise work fused: gate activations,
    /// state update, hidden output. Inputs `[gx, gh?, prev?]`: `gx` is the input product
    /// `x_t·W_ih + b_ih` read from columns `[gx_col, gx_col + G)` of a wider `[rows, W]`
    /// matrix (every step of a sequence in one matmul output), `gh` the recurrent
    /// product `h_{t-1}·W_hh + b_hh` (`[rows, G]`, or `[G]` broadcast when the previous
    /// state is zero), `prev` the previous cell state (LSTM `c`) or hidden state (GRU
    /// `h`); absent ones are zeros. The output is packed (see [`Packing`]) and
    /// read through `View`s. `RnnCellInputs` says where each input is.
    RnnCell {
        /// LSTM or GRU.
        kind: CellKind,
        /// Hidden units.
        hidden: usize,
        /// The first of the `G` columns of `gx` this step reads.
        gx_col: usize,
        /// Whether the node has a `gh` input.
        has_gh: bool,
        /// Whether the node has a `prev` input.
        has_prev: bool,
    },
    /// The backward pointwise work of one step, fused. Inputs `[dh.., dc?, state,
    /// prev?]`: up to two contributions to the gradient of `h` (each columns
    /// `[col, col + hidden)` of a `[rows, W]` matrix, summed in the kernel), the gradient
    /// of `c` (LSTM), the cell's packed output and its `prev` input. Packed output.
    /// `RnnCellGradInputs` says where each input is.
    RnnCellGrad {
        /// LSTM or GRU.
        kind: CellKind,
        /// Hidden units.
        hidden: usize,
        /// The first column of each `dh` contribution's window.
        dh_cols: Vec<usize>,
        /// Whether the node has a `dc` input.
        has_dc: bool,
        /// Whether the node has a `prev` input.
        has_prev: bool,
    },
}

impl RnnOp {
    /// The op's name: in error messages and profiles, and its WGSL entry point.
    pub fn name(&self) -> &'static str {
        match self {
            RnnOp::RnnCell {
                kind: CellKind::Lstm,
                ..
            } => "lstm_cell",
            RnnOp::RnnCell {
                kind: CellKind::Gru,
                ..
            } => "gru_cell",
            RnnOp::RnnCellGrad {
                kind: CellKind::Lstm,
                ..
            } => "lstm_cell_grad",
            RnnOp::RnnCellGrad {
                kind: CellKind::Gru,
                ..
            } => "gru_cell_grad",
        }
    }

    /// Where an `RnnCell`'s inputs sit (`None` for the backward op).
    pub fn cell_inputs(&self) -> Option<RnnCellInputs> {
        match *self {
            RnnOp::RnnCell {
                has_gh, has_prev, ..
            } => Some(RnnCellInputs::new(has_gh, has_prev)),
            RnnOp::RnnCellGrad { .. } => None,
        }
    }

    /// The launch that computes node `id` of `graph`: inputs at `ins` with shapes
    /// `in_shapes`, output at `out`.
    pub(crate) fn lower(
        &self,
        graph: &Graph,
        id: NodeId,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        out: TensorRef,
    ) -> Result<RnnKernel> {
        Ok(match *self {
            RnnOp::RnnCell {
                kind,
                hidden,
                gx_col,
                has_gh,
                has_prev,
            } => {
                let at = RnnCellInputs::new(has_gh, has_prev);
                let (rows, stride) = (in_shapes[at.gx][0], in_shapes[at.gx][1]);
                let gx = ColWindow {
                    data: ins[at.gx],
                    stride,
                    col: gx_col,
                };
                let gh = at.gh.map(|k| ins[k]);
                let gh_rows = at.gh.is_some_and(|k| in_shapes[k].len() == 2);
                let prev = at.prev.map(|k| ins[k]);
                RnnKernel::RnnCell {
                    kind,
                    rows,
                    hidden,
                    gx,
                    gh,
                    gh_rows,
                    prev,
                    out,
                }
            }
            RnnOp::RnnCellGrad {
                kind,
                hidden,
                ref dh_cols,
                has_dc,
                has_prev,
            } => {
                let at = RnnCellGradInputs::new(dh_cols.len(), has_dc, has_prev);
                let mut dh = [None; 2];
                for (slot, (k, &col)) in dh.iter_mut().zip(at.dh.clone().zip(dh_cols)) {
                    *slot = Some(ColWindow {
                        data: ins[k],
                        stride: in_shapes[k][1],
                        col,
                    });
                }
                let dc = at.dc.map(|k| ins[k]);
                let state = ins[at.state];
                let prev = at.prev.map(|k| ins[k]);
                let rows = graph.packing(id)?.rows;
                RnnKernel::RnnCellGrad {
                    kind,
                    rows,
                    hidden,
                    dh,
                    dc,
                    state,
                    prev,
                    out,
                }
            }
        })
    }
}

/// Columns `[col, col + width)` of a row-major matrix stored in `data` with `stride`
/// words per row (the width is known to the kernel that reads it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColWindow {
    /// The whole matrix.
    pub data: TensorRef,
    /// Words per row.
    pub stride: usize,
    /// First column of the window.
    pub col: usize,
}

/// One launch of the family. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RnnKernel {
    /// One recurrent step, `RnnOp::RnnCell`: gate pre-activations `gx` (a window of
    /// `G = gates·hidden` columns) plus `gh` (`[rows, G]`, or `[G]` for every row when
    /// `gh_rows` is false), then the cell; absent inputs are zeros. `out` is packed as
    /// [`Packing`] says.
    RnnCell {
        kind: CellKind,
        rows: usize,
        hidden: usize,
        gx: ColWindow,
        gh: Option<TensorRef>,
        gh_rows: bool,
        prev: Option<TensorRef>,
        out: TensorRef,
    },
    /// The backward of one recurrent step, `RnnOp::RnnCellGrad`: `dh` is the sum of the
    /// windows given (zero if none), `dc` the gradient of `c` (LSTM), `state` the cell's
    /// packed output, `prev` its previous state. `out` is packed.
    RnnCellGrad {
        kind: CellKind,
        rows: usize,
        hidden: usize,
        dh: [Option<ColWindow>; 2],
        dc: Option<TensorRef>,
        state: TensorRef,
        prev: Option<TensorRef>,
        out: TensorRef,
    },
}

/// An entry point's pipelines: the generic one (the width read from the record), then
/// one built for each common hidden width (shaders/rnn.wgsl's `HIDDEN` override), where
/// the width as a constant folds the index arithmetic (on lavapipe the LSTM cells ran
/// twice as fast). The arithmetic on the values is the same, so the bits are too.
macro_rules! cell_pipes {
    ($entry:literal) => {
        [
            pipe!($entry, Rnn, Read5Write1),
            cell_pipes!(@ $entry, 8),
            cell_pipes!(@ $entry, 16),
            cell_pipes!(@ $entry, 32),
            cell_pipes!(@ $entry, 64),
            cell_pipes!(@ $entry, 128),
            cell_pipes!(@ $entry, 256),
        ]
    };
    (@ $entry:literal, $hidden:literal) => {
        pipe!(concat!($entry, "_h", $hidden), Rnn, Read5Write1, $entry, [("HIDDEN", $hidden)])
    };
}

const LSTM_CELL: [Pipe; 7] = cell_pipes!("lstm_cell");
const GRU_CELL: [Pipe; 7] = cell_pipes!("gru_cell");
const LSTM_CELL_GRAD: [Pipe; 7] = cell_pipes!("lstm_cell_grad");
const GRU_CELL_GRAD: [Pipe; 7] = cell_pipes!("gru_cell_grad");

/// The family's pipelines (entry points of shaders/rnn.wgsl), by entry point.
pub const PIPES: [&[Pipe]; 4] = [&LSTM_CELL, &GRU_CELL, &LSTM_CELL_GRAD, &GRU_CELL_GRAD];

/// The pipeline of `entry` (one of the arrays above) for cells `hidden` wide: the one
/// built for that width if there is one, else the generic one.
fn for_width(entry: &[Pipe; 7], hidden: usize) -> Pipe {
    entry
        .iter()
        .copied()
        .find(|p| p.spec().constants == [("HIDDEN", hidden as f64)])
        .unwrap_or(entry[0])
}

impl RnnKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            RnnKernel::RnnCell { out, .. } | RnnKernel::RnnCellGrad { out, .. } => out,
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's; rows are
    /// split over `lanes` where it pays.
    pub(crate) fn run_cpu<'a>(
        &self,
        v: impl Fn(TensorRef) -> &'a [f32],
        dst: &mut [f32],
        lanes: &Lanes,
    ) {
        match *self {
            RnnKernel::RnnCell {
                kind,
                rows,
                hidden,
                gx,
                gh,
                gh_rows,
                prev,
                ..
            } => {
                let gx = cpu::Cols {
                    data: v(gx.data),
                    stride: gx.stride,
                    col: gx.col,
                };
                let gh = match gh {
                    None => cpu::Gh::None,
                    Some(t) if gh_rows => cpu::Gh::Rows(v(t)),
                    Some(t) => cpu::Gh::Bias(v(t)),
                };
                cpu::rnn_cell(kind, rows, hidden, gx, gh, prev.map(&v), dst, lanes)
            }
            RnnKernel::RnnCellGrad {
                kind,
                rows,
                hidden,
                dh,
                dc,
                state,
                prev,
                ..
            } => {
                let dh = dh.map(|w| {
                    w.map(|w| cpu::Cols {
                        data: v(w.data),
                        stride: w.stride,
                        col: w.col,
                    })
                });
                cpu::rnn_cell_grad(
                    kind,
                    rows,
                    hidden,
                    dh,
                    dc.map(&v),
                    v(state),
                    prev.map(&v),
                    dst,
                    lanes,
                )
            }
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        let (entry, hidden) = match *self {
            RnnKernel::RnnCell { kind, hidden, .. } => match kind {
                CellKind::Lstm => (&LSTM_CELL, hidden),
                CellKind::Gru => (&GRU_CELL, hidden),
            },
            RnnKernel::RnnCellGrad { kind, hidden, .. } => match kind {
                CellKind::Lstm => (&LSTM_CELL_GRAD, hidden),
                CellKind::Gru => (&GRU_CELL_GRAD, hidden),
            },
        };
        for_width(entry, hidden)
    }

    /// Its GPU launch: uniform record (`RnnParams`), bindings and grid (one invocation
    /// per hidden unit of each row).
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let w = |t: TensorRef| lim.window(t);
        let optional = |t: Option<TensorRef>| lim.window_opt(t);
        Ok(match *self {
            RnnKernel::RnnCell {
                kind: _,
                rows,
                hidden,
                gx,
                gh,
                gh_rows,
                prev,
                out,
            } => {
                let ((wx, ox), (wo, oo)) = (w(gx.data)?, w(out)?);
                let (wh, oh) = optional(gh)?;
                let (wp, op) = optional(prev)?;
                let gh_mode = match gh {
                    None => GH_ABSENT,
                    Some(_) if gh_rows => GH_MATRIX,
                    Some(_) => GH_BROADCAST,
                };
                let r = record(RnnParams {
                    rows: u32c(rows)?,
                    hidden: u32c(hidden)?,
                    gx_stride: u32c(gx.stride)?,
                    gx_col: u32c(gx.col)?,
                    off_gx: ox,
                    gh_mode,
                    off_gh: oh,
                    has_prev: prev.is_some() as u32,
                    off_prev: op,
                    off_out: oo,
                    ..Default::default()
                });
                (
                    r,
                    vec![
                        (1, Some(wx)),
                        (2, wh),
                        (3, wp),
                        (4, None),
                        (5, None),
                        (6, Some(wo)),
                    ],
                    lim.grid_1d(rows * hidden)?,
                )
            }
            RnnKernel::RnnCellGrad {
                kind: _,
                rows,
                hidden,
                dh,
                dc,
                state,
                prev,
                out,
            } => {
                let ((ws, os), (wo, oo)) = (w(state)?, w(out)?);
                let (wd0, od0) = optional(dh[0].map(|c| c.data))?;
                let (wd1, od1) = optional(dh[1].map(|c| c.data))?;
                let (wc, oc) = optional(dc)?;
                let (wp, op) = optional(prev)?;
                // Each dh window: present, offset, row stride, first column.
                let dh_window = |i: usize, off: u32| -> Result<[u32; 4]> {
                    Ok(match dh[i] {
                        Some(c) => [1, off, u32c(c.stride)?, u32c(c.col)?],
                        None => [0; 4],
                    })
                };
                let [has_dh0, off_dh0, dh0_stride, dh0_col] = dh_window(0, od0)?;
                let [has_dh1, off_dh1, dh1_stride, dh1_col] = dh_window(1, od1)?;
                let r = record(RnnParams {
                    rows: u32c(rows)?,
                    hidden: u32c(hidden)?,
                    has_prev: prev.is_some() as u32,
                    off_prev: op,
                    off_out: oo,
                    has_dh0,
                    off_dh0,
                    dh0_stride,
                    dh0_col,
                    has_dh1,
                    off_dh1,
                    dh1_stride,
                    dh1_col,
                    has_dc: dc.is_some() as u32,
                    off_dc: oc,
                    off_state: os,
                    ..Default::default()
                });
                (
                    r,
                    vec![
                        (1, wd0),
                        (2, wd1),
                        (3, wc),
                        (4, Some(ws)),
                        (5, wp),
                        (6, Some(wo)),
                    ],
                    lim.grid_1d(rows * hidden)?,
                )
            }
        })
    }
}

fn err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

/// The family's builders, with their shape rules.
impl Graph {
    /// The packing of a cell node (`RnnCell`) or of its backward node.
    pub fn packing(&self, cell: NodeId) -> Result<Packing> {
        let node = &self.nodes[cell];
        match &node.op {
            Op::Rnn(RnnOp::RnnCell {
                kind,
                hidden,
                has_gh,
                has_prev,
                ..
            }) => {
                let gx = node.inputs[RnnCellInputs::new(*has_gh, *has_prev).gx];
                Ok(Packing::new(*kind, self.shape(gx)[0], *hidden))
            }
            Op::Rnn(RnnOp::RnnCellGrad {
                kind,
                hidden,
                dh_cols,
                has_dc,
                has_prev,
            }) => {
                let at = RnnCellGradInputs::new(dh_cols.len(), *has_dc, *has_prev);
                let state = node.inputs[at.state];
                Ok(Packing::new(*kind, self.packing(state)?.rows, *hidden))
            }
            other => err(
                "packing",
                format!("node {cell} is a {}, not a recurrent cell", other.name()),
            ),
        }
    }

    /// One fused step of a recurrent layer (see the module docs for the equations).
    /// `gx` is `[rows, W]` and the step reads its columns `[gx_col, gx_col + G)`; `gh` is
    /// `[rows, G]` or `[G]`; `prev` is `[rows, hidden]` (`c_{t-1}` for the LSTM,
    /// `h_{t-1}` for the GRU). Returns the packed node: read it with `cell_h`/`cell_c`.
    pub fn rnn_cell(
        &mut self,
        kind: CellKind,
        hidden: usize,
        gx: NodeId,
        gx_col: usize,
        gh: Option<NodeId>,
        prev: Option<NodeId>,
    ) -> Result<NodeId> {
        let name = kind.name();
        let g = kind.gates() * hidden;
        let sx = self.shape(gx).to_vec();
        if hidden == 0 || sx.len() != 2 || gx_col + g > sx[1] {
            return err(
                name,
                format!(
                    "hidden {hidden}: gx {sx:?} must be 2-D with columns {gx_col}..{} inside it",
                    gx_col + g
                ),
            );
        }
        let rows = sx[0];
        let at = RnnCellInputs::new(gh.is_some(), prev.is_some());
        let mut inputs = vec![gx; at.len];
        inputs[at.gx] = gx;
        if let (Some(gh), Some(k)) = (gh, at.gh) {
            let sh = self.shape(gh);
            if sh != [g] && sh != [rows, g] {
                return err(name, format!("gh {sh:?} must be [{rows}, {g}] or [{g}]"));
            }
            inputs[k] = gh;
        }
        if let (Some(prev), Some(k)) = (prev, at.prev) {
            if self.shape(prev) != [rows, hidden] {
                return err(
                    name,
                    format!(
                        "previous state {:?} must be [{rows}, {hidden}]",
                        self.shape(prev)
                    ),
                );
            }
            inputs[k] = prev;
        }
        let len = Packing::new(kind, rows, hidden).state_len();
        Ok(self.push(
            Op::Rnn(RnnOp::RnnCell {
                kind,
                hidden,
                gx_col,
                has_gh: gh.is_some(),
                has_prev: prev.is_some(),
            }),
            inputs,
            vec![len],
        ))
    }

    /// `h_t` of a cell node, `[rows, hidden]`.
    pub fn cell_h(&mut self, cell: NodeId) -> Result<NodeId> {
        let p = self.packing(cell)?;
        self.view(cell, p.h(), &[p.rows, p.hidden])
    }

    /// `c_t` of an LSTM cell node, `[rows, hidden]`.
    pub fn cell_c(&mut self, cell: NodeId) -> Result<NodeId> {
        let p = self.packing(cell)?;
        if p.kind != CellKind::Lstm {
            return err(
                "cell_c",
                format!(
                    "node {cell} is a {} cell, which has no c state",
                    p.kind.name()
                ),
            );
        }
        self.view(cell, p.c(), &[p.rows, p.hidden])
    }

    /// The backward step of cell node `state`: `dh` lists up to two `(matrix, column)`
    /// contributions to the gradient of `h_t` (each read at columns `[column, column +
    /// hidden)`), `dc` the gradient of `c_t` (LSTM). The `prev` input is the cell's own.
    pub(crate) fn rnn_cell_grad(
        &mut self,
        state: NodeId,
        dh: &[(NodeId, usize)],
        dc: Option<NodeId>,
    ) -> Result<NodeId> {
        let Op::Rnn(RnnOp::RnnCell {
            kind,
            hidden,
            has_gh,
            has_prev,
            ..
        }) = self.nodes[state].op
        else {
            return err(
                "rnn_cell_grad",
                format!("node {state} is not a recurrent cell"),
            );
        };
        let p = self.packing(state)?;
        let name = "rnn_cell_grad";
        if dh.len() > 2 || (dc.is_some() && kind != CellKind::Lstm) {
            return err(
                name,
                format!(
                    "{} dh contributions (at most 2), dc given: {}",
                    dh.len(),
                    dc.is_some()
                ),
            );
        }
        let at = RnnCellGradInputs::new(dh.len(), dc.is_some(), has_prev);
        let mut inputs = vec![state; at.len];
        for (k, &(d, col)) in at.dh.clone().zip(dh) {
            let s = self.shape(d);
            if s.len() != 2 || s[0] != p.rows || col + hidden > s[1] {
                return err(
                    name,
                    format!(
                        "dh {s:?} must be [{}, W] with columns {col}..{} inside it",
                        p.rows,
                        col + hidden
                    ),
                );
            }
            inputs[k] = d;
        }
        if let (Some(dc), Some(k)) = (dc, at.dc) {
            if self.shape(dc) != [p.rows, hidden] {
                return err(
                    name,
                    format!("dc {:?} must be [{}, {hidden}]", self.shape(dc), p.rows),
                );
            }
            inputs[k] = dc;
        }
        inputs[at.state] = state;
        if let (Some(k), Some(prev)) = (at.prev, RnnCellInputs::new(has_gh, has_prev).prev) {
            inputs[k] = self.nodes[state].inputs[prev];
        }
        let op = Op::Rnn(RnnOp::RnnCellGrad {
            kind,
            hidden,
            dh_cols: dh.iter().map(|d| d.1).collect(),
            has_dc: dc.is_some(),
            has_prev,
        });
        Ok(self.push(op, inputs, vec![p.grad_len()]))
    }
}
