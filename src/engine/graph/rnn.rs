//! Recurrent cells in the graph: the fused per-step op, its backward op, and the packed
//! layout of their outputs.
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

use super::{CellKind, Graph, NodeId, Op, RnnCellGradInputs, RnnCellInputs};
use crate::error::{Error, Result};

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

fn err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

impl Graph {
    /// Words `[offset, offset + numel(shape))` of `x` as a tensor of `shape`, without a
    /// copy. Only the planes of recurrent cells (`cell_h`, `cell_c`) can carry gradients.
    pub fn view(&mut self, x: NodeId, offset: usize, shape: &[usize]) -> Result<NodeId> {
        let n: usize = shape.iter().product();
        if shape.is_empty() || n == 0 || offset + n > self.nodes[x].numel() {
            return err(
                "view",
                format!(
                    "words {offset}..{} of {:?} as {shape:?}",
                    offset + n,
                    self.shape(x)
                ),
            );
        }
        Ok(self.push(Op::View { offset }, vec![x], shape.to_vec()))
    }

    /// The packing of a cell node (`RnnCell`) or of its backward node.
    pub fn packing(&self, cell: NodeId) -> Result<Packing> {
        let node = &self.nodes[cell];
        match &node.op {
            Op::RnnCell {
                kind,
                hidden,
                has_gh,
                has_prev,
                ..
            } => {
                let gx = node.inputs[RnnCellInputs::new(*has_gh, *has_prev).gx];
                Ok(Packing::new(*kind, self.shape(gx)[0], *hidden))
            }
            Op::RnnCellGrad {
                kind,
                hidden,
                dh_cols,
                has_dc,
                has_prev,
            } => {
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
            Op::RnnCell {
                kind,
                hidden,
                gx_col,
                has_gh: gh.is_some(),
                has_prev: prev.is_some(),
            },
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
        let Op::RnnCell {
            kind,
            hidden,
            has_gh,
            has_prev,
            ..
        } = self.nodes[state].op
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
        let op = Op::RnnCellGrad {
            kind,
            hidden,
            dh_cols: dh.iter().map(|d| d.1).collect(),
            has_dc: dc.is_some(),
            has_prev,
        };
        Ok(self.push(op, inputs, vec![p.grad_len()]))
    }
}
