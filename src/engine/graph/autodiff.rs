//! Reverse-mode autodiff in three parts: a reverse walk over the graph, a table of
//! vector-Jacobian rules, and a rewrite pass.
//!
//! The walk (`backward`) visits, from the loss back, every node on a path from the
//! parameters (or chosen inputs) to the loss. A node's gradient arrives in pieces, one
//! per consumer, and is summed when the walk reaches it (all its consumers come after
//! it, so every piece is in by then); then its rule runs.
//!
//! The rules (`vjp`): given the node and its gradient `dy`, a rule appends the nodes of
//! its vector-Jacobian product and returns one piece per input. An op family's rule is
//! its op's `vjp` in `engine::ops` (`family_rule` asks it), the core ops' are the arms of
//! one `match` here. Whole pieces are summed with plain `add`s as they come. Two kinds
//! of piece stay lazy, because summing them naively would copy or zero-pad: a column
//! window of a wider gradient (what a concatenation hands each part) and a column block
//! of this gradient (what a column slice, or a recurrent step reading its gates from a
//! whole sequence's product, hands its source). Blocks side by side become one
//! concatenation; windows become slices only if their consumer cannot read them in
//! place (a recurrent backward step can). Recurrent cells have packed outputs read
//! through views (see `ops::rnn`): the pieces reaching the views of `h` and `c` go to
//! the cell's rule (`rnn_cell_rule`), not to the cell.
//!
//! The pass (`fuse::sum_into_products`) then rewrites the appended nodes: an `add`
//! whose second operand is a plain product read by nothing else becomes that product
//! with the sum as its added matrix, so a recurrent weight's per-step gradient products
//! are summed in the matmul epilogues with no add launches. No rule knows about it.

use super::fuse;
use super::{Act, CellKind, Graph, NodeId, Op, RnnCellInputs, RnnOp, SlopeFrom};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// The gradient node of each forward node that has one.
pub struct Gradients {
    grads: Vec<Option<NodeId>>,
}

impl Gradients {
    /// The gradient of the loss w.r.t. `node`, if the loss depends on it.
    pub fn of(&self, node: NodeId) -> Option<NodeId> {
        self.grads.get(node).copied().flatten()
    }
}

/// Appends the backward pass of `loss` (a `[1]` tensor) to `g`. Gradients flow to every
/// parameter and to the inputs listed in `wrt`.
pub fn backward(g: &mut Graph, loss: NodeId, wrt: &[NodeId]) -> Result<Gradients> {
    if g.shape(loss) != [1] {
        return Err(Error::shape(
            "backward",
            format!("the loss must be [1], got {:?}", g.shape(loss)),
        ));
    }
    let forward_len = loss + 1;
    // Which nodes lie downstream of something we differentiate w.r.t.
    let mut needs = vec![false; forward_len];
    for id in 0..forward_len {
        let node = &g.nodes[id];
        needs[id] = match node.op {
            Op::Param { .. } => true,
            Op::Input { .. } => wrt.contains(&id),
            _ => (node.inputs.iter().enumerate())
                .any(|(k, &i)| needs[i] && node.op.passes_gradient(k)),
        };
    }

    // The views through which each recurrent cell's packed output is read.
    let mut views_of: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for id in 0..forward_len {
        if let (Op::View { .. }, Some(&src)) = (&g.nodes[id].op, g.nodes[id].inputs.first()) {
            if matches!(g.nodes[src].op, Op::Rnn(RnnOp::RnnCell { .. })) {
                views_of.entry(src).or_default().push(id);
            }
        }
    }

    let appended_from = g.nodes.len();
    let mut pieces: Vec<Pieces> = vec![Pieces::default(); forward_len];
    let seed = g.fill(&[1], 1.0)?;
    pieces[loss].full = Some(seed);
    let mut grads: Vec<Option<NodeId>> = vec![None; forward_len];
    for id in (0..forward_len).rev() {
        if !needs[id] {
            continue;
        }
        let node = &g.nodes[id];
        if matches!(node.op, Op::View { .. })
            && views_of
                .get(&node.inputs[0])
                .is_some_and(|v| v.contains(&id))
        {
            continue; // a plane of a cell: the cell's rule takes its pieces
        }
        let out = if matches!(node.op, Op::Rnn(RnnOp::RnnCell { .. })) {
            let views = views_of.remove(&id).unwrap_or_default();
            rnn_cell_rule(g, id, &views, &mut pieces, &needs)?
        } else {
            let shape = node.shape.clone();
            let Some(dy) = std::mem::take(&mut pieces[id]).sum(g, &shape)? else {
                continue;
            };
            grads[id] = Some(dy);
            vjp(g, id, dy, &needs)?
        };
        for (input, piece) in out {
            if needs[input] {
                pieces[input].add(g, piece)?;
            }
        }
    }
    // Every gradient handed out must keep its meaning through the rewrite.
    let held: Vec<NodeId> = grads.iter().flatten().copied().collect();
    let new_id = fuse::sum_into_products(g, appended_from, &held);
    for d in grads.iter_mut().flatten() {
        *d = new_id[*d];
    }
    Ok(Gradients { grads })
}

/// The vector-Jacobian rule of node `id` (any op but `RnnCell`, see `rnn_cell_rule`),
/// whose gradient is `dy`: appends the nodes of the product and returns each input's
/// piece of its gradient. `needs` says which inputs want one.
fn vjp(g: &mut Graph, id: NodeId, dy: NodeId, needs: &[bool]) -> Result<Vec<(NodeId, Piece)>> {
    let node = g.nodes[id].clone();
    let x = &node.inputs;
    let full = |d: NodeId| Piece::Full(d);
    if let Some(rule) = family_rule(g, &node.op, id, x, dy, needs) {
        return Ok(rule?
            .into_iter()
            .map(|(input, d)| (input, full(d)))
            .collect());
    }
    Ok(match node.op {
        Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } => vec![],
        Op::Reshape => {
            let shape = g.shape(x[0]).to_vec();
            vec![(x[0], full(g.reshape(dy, &shape)?))]
        }
        Op::Concat => {
            let mut out = Vec::new();
            let mut start = 0;
            for &part in x {
                out.push((part, Piece::Cols { src: dy, start }));
                start += g.shape(part)[1];
            }
            out
        }
        Op::SliceCols { start } => vec![(x[0], Piece::Block { node: dy, start })],
        Op::View { .. } => {
            return Err(Error::Unsupported(format!(
                "cannot differentiate through view node {id}: only the h and c planes of a recurrent cell carry gradients"
            )))
        }
        Op::Rnn(RnnOp::RnnCell { .. }) => unreachable!("the walk calls rnn_cell_rule"),
        Op::MatMul(_)
        | Op::Elementwise(_)
        | Op::Broadcast(_)
        | Op::Dropout(_)
        | Op::Gather(_)
        | Op::Loss(_)
        | Op::Conv(_)
        | Op::Pool(_) => unreachable!("family_rule answers for the op families"),
        Op::Rnn(RnnOp::RnnCellGrad { .. }) => {
            return Err(Error::Unsupported(format!(
                "cannot differentiate through {} (second derivatives are not supported)",
                node.op.name()
            )))
        }
    })
}

/// The rule of an op family's node (`engine::ops`), whose gradients are whole tensors;
/// `None` for the core ops and the recurrent cells.
fn family_rule(
    g: &mut Graph,
    op: &Op,
    id: NodeId,
    x: &[NodeId],
    dy: NodeId,
    needs: &[bool],
) -> Option<Result<Vec<(NodeId, NodeId)>>> {
    Some(match op {
        Op::MatMul(op) => op.vjp(g, id, x, dy, needs),
        Op::Elementwise(op) => op.vjp(g, id, x, dy, needs),
        Op::Broadcast(op) => op.vjp(g, id, x, dy, needs),
        Op::Dropout(op) => op.vjp(g, id, x, dy, needs),
        Op::Gather(op) => op.vjp(g, id, x, dy, needs),
        Op::Loss(op) => op.vjp(g, id, x, dy, needs),
        Op::Conv(op) => op.vjp(g, id, x, dy, needs),
        Op::Pool(op) => op.vjp(g, id, x, dy, needs),
        _ => return None,
    })
}

/// One piece of a node's gradient.
#[derive(Clone, Copy, Debug)]
enum Piece {
    /// The whole gradient.
    Full(NodeId),
    /// Columns `[start, start + width)` of the 2-D `src`, `width` being this node's.
    Cols { src: NodeId, start: usize },
    /// `node` is columns `[start, start + its width)` of the gradient, zero elsewhere.
    Block { node: NodeId, start: usize },
}

/// The pieces of one node's gradient received so far.
#[derive(Clone, Debug, Default)]
struct Pieces {
    /// The sum of the whole pieces (added as they come, so they die early).
    full: Option<NodeId>,
    cols: Vec<(NodeId, usize)>,
    blocks: Vec<(NodeId, usize)>,
}

impl Pieces {
    fn is_empty(&self) -> bool {
        self.full.is_none() && self.cols.is_empty() && self.blocks.is_empty()
    }

    fn add(&mut self, g: &mut Graph, piece: Piece) -> Result<()> {
        match piece {
            Piece::Full(d) => self.add_full(g, d)?,
            Piece::Cols { src, start } => self.cols.push((src, start)),
            Piece::Block { node, start } => self.blocks.push((node, start)),
        }
        Ok(())
    }

    fn add_full(&mut self, g: &mut Graph, d: NodeId) -> Result<()> {
        self.full = Some(match self.full {
            None => d,
            Some(prev) => g.add(prev, d)?,
        });
        Ok(())
    }

    fn merge(&mut self, g: &mut Graph, other: Pieces) -> Result<()> {
        if let Some(d) = other.full {
            self.add_full(g, d)?;
        }
        self.cols.extend(other.cols);
        self.blocks.extend(other.blocks);
        Ok(())
    }

    /// The whole gradient of a node of `shape`, as one node (`None` without pieces).
    fn sum(mut self, g: &mut Graph, shape: &[usize]) -> Result<Option<NodeId>> {
        for (src, start) in std::mem::take(&mut self.cols) {
            let d = g.slice_cols(src, start, shape[1])?;
            self.add_full(g, d)?;
        }
        for d in assemble_blocks(g, shape, std::mem::take(&mut self.blocks))? {
            self.add_full(g, d)?;
        }
        Ok(self.full)
    }
}

/// Column blocks of a `shape` gradient as few whole tensors as possible: blocks that do
/// not overlap go into one concatenation (gaps filled with zeros); overlapping ones
/// start another.
fn assemble_blocks(
    g: &mut Graph,
    shape: &[usize],
    mut blocks: Vec<(NodeId, usize)>,
) -> Result<Vec<NodeId>> {
    if blocks.is_empty() {
        return Ok(vec![]);
    }
    blocks.sort_by_key(|&(_, start)| start);
    let (rows, width) = (shape[0], shape[1]);
    // Each group: its blocks in column order, and where its last block ends.
    let mut groups: Vec<(Vec<(NodeId, usize)>, usize)> = Vec::new();
    for (node, start) in blocks {
        let end = start + g.shape(node)[1];
        match groups.iter_mut().find(|(_, last_end)| *last_end <= start) {
            Some((members, last_end)) => {
                members.push((node, start));
                *last_end = end;
            }
            None => groups.push((vec![(node, start)], end)),
        }
    }
    let mut out = Vec::new();
    for (members, _) in groups {
        let mut parts = Vec::new();
        let mut at = 0;
        for (node, start) in members {
            if start > at {
                parts.push(g.fill(&[rows, start - at], 0.0)?);
            }
            parts.push(node);
            at = start + g.shape(node)[1];
        }
        if at < width {
            parts.push(g.fill(&[rows, width - at], 0.0)?);
        }
        out.push(if parts.len() == 1 {
            parts[0]
        } else {
            g.concat(&parts)?
        });
    }
    Ok(out)
}

/// The rule of a recurrent cell: the pieces reaching the views of its `h` (and `c`)
/// planes become one fused backward step, whose planes are the gradients of the cell's
/// inputs. Up to two pieces of `dh` are read by the kernel where they lie (the
/// recurrent matmul's product and a window of the next layer's input gradient), so
/// they cost no add and no copy.
fn rnn_cell_rule(
    g: &mut Graph,
    id: NodeId,
    views: &[NodeId],
    pieces: &mut [Pieces],
    needs: &[bool],
) -> Result<Vec<(NodeId, Piece)>> {
    let Op::Rnn(RnnOp::RnnCell {
        kind,
        hidden,
        gx_col,
        has_gh,
        has_prev,
    }) = g.nodes[id].op.clone()
    else {
        unreachable!("called for cells only")
    };
    let p = g.packing(id)?;
    let plane = [p.rows, hidden];
    let (mut dh, mut dc) = (Pieces::default(), Pieces::default());
    for &v in views {
        let got = std::mem::take(&mut pieces[v]);
        if got.is_empty() {
            continue;
        }
        let Op::View { offset } = g.nodes[v].op else {
            unreachable!("views_of holds views")
        };
        let is_plane = g.shape(v) == plane;
        if is_plane && offset == p.h() {
            dh.merge(g, got)?;
        } else if is_plane && kind == CellKind::Lstm && offset == p.c() {
            dc.merge(g, got)?;
        } else {
            return Err(Error::Unsupported(format!(
                "cannot differentiate through view node {v} of cell {id}: only its h and c planes carry gradients"
            )));
        }
    }
    if dh.is_empty() && dc.is_empty() {
        return Ok(vec![]);
    }
    let mut dh_in: Vec<(NodeId, usize)> = dh
        .full
        .map(|d| (d, 0))
        .into_iter()
        .chain(dh.cols.iter().copied())
        .collect();
    if dh_in.len() > 2 || !dh.blocks.is_empty() {
        dh_in = dh.sum(g, &plane)?.map(|d| (d, 0)).into_iter().collect();
    }
    let dc = dc.sum(g, &plane)?;
    let grad = g.rnn_cell_grad(id, &dh_in, dc)?;

    let x = g.nodes[id].inputs.clone();
    let at = RnnCellInputs::new(has_gh, has_prev);
    let width = kind.gates() * hidden;
    let mut out = Vec::new();
    let gx = x[at.gx];
    if needs[gx] {
        let dgx = g.view(grad, p.dgx(), &[p.rows, width])?;
        out.push((
            gx,
            Piece::Block {
                node: dgx,
                start: gx_col,
            },
        ));
    }
    if let Some(gh) = at.gh.map(|k| x[k]).filter(|&gh| needs[gh]) {
        let dgh = g.view(grad, p.dgh(), &[p.rows, width])?;
        // A `[G]` bias stands in for the product of a zero state: sum over the rows.
        let d = if g.shape(gh).len() == 1 {
            g.reduce_to(dgh, &[width], 1.0)?
        } else {
            dgh
        };
        out.push((gh, Piece::Full(d)));
    }
    if let Some(prev) = at.prev.map(|k| x[k]).filter(|&prev| needs[prev]) {
        out.push((prev, Piece::Full(g.view(grad, p.dprev(), &plane)?)));
    }
    Ok(out)
}

/// The gradient of a broadcast operand: sum `d` back to the operand's shape (and apply
/// `scale`), or pass it through when nothing was broadcast and there is nothing to scale.
pub(crate) fn reduce_if_needed(
    g: &mut Graph,
    d: NodeId,
    operand: NodeId,
    scale: f32,
) -> Result<NodeId> {
    let shape = g.shape(operand).to_vec();
    if g.shape(d) == shape.as_slice() && scale == 1.0 {
        Ok(d)
    } else {
        g.reduce_to(d, &shape, scale)
    }
}

/// The gradient through `y = act(x)` (node `y`): `dy · act'(x)`, read from `y` or from
/// the pre-activation `x` as `act.slope_from()` says. `x` is `None` for an activation
/// fused into a product's epilogue, where the graph builders only fuse activations that
/// need no `x`.
pub(crate) fn through_act(
    g: &mut Graph,
    act: Act,
    dy: NodeId,
    y: NodeId,
    x: Option<NodeId>,
) -> Result<NodeId> {
    if act == Act::Identity {
        return Ok(dy);
    }
    let v = match (act.slope_from(), x) {
        (SlopeFrom::Output, _) => y,
        (SlopeFrom::Input, Some(x)) => x,
        (SlopeFrom::Input, None) => {
            return Err(Error::Unsupported(format!(
                "cannot differentiate node {y}: {} fused into a product keeps no pre-activation (build it with Graph::matmul_ex or Graph::conv2d, which split it off)",
                act.name()
            )))
        }
    };
    g.act_grad(act, dy, v)
}
