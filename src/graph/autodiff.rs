//! Reverse-mode autodiff: a reverse walk over the graph that appends, for every node on a
//! path from the parameters (or chosen inputs) to the loss, the nodes of its
//! vector-Jacobian product. One `match` holds every rule.

use super::{Act, BinaryOp, Graph, NodeId, Op};
use crate::error::{Error, Result};

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
        return Err(Error::shape("backward", format!("the loss must be [1], got {:?}", g.shape(loss))));
    }
    let forward_len = loss + 1;
    // Which nodes lie downstream of something we differentiate w.r.t.
    let mut needs = vec![false; forward_len];
    for id in 0..forward_len {
        let node = &g.nodes[id];
        needs[id] = match node.op {
            Op::Param { .. } => true,
            Op::Input { .. } => wrt.contains(&id),
            // Index lists and targets carry no gradient.
            Op::GatherRows => needs[node.inputs[0]],
            Op::BceWithLogits { .. } => needs[node.inputs[0]],
            _ => node.inputs.iter().any(|&i| needs[i]),
        };
    }

    let mut grads: Vec<Option<NodeId>> = vec![None; forward_len];
    grads[loss] = Some(g.fill(&[1], 1.0)?);
    for id in (0..forward_len).rev() {
        let Some(dy) = grads[id] else { continue };
        if !needs[id] {
            continue;
        }
        let node = g.nodes[id].clone();
        let x = &node.inputs;
        let contributions: Vec<(NodeId, NodeId)> = match node.op {
            Op::Input { .. } | Op::Param { .. } | Op::Fill { .. } => vec![],
            Op::MatMul { trans_a, trans_b, act } => {
                let dz = if act == Act::Identity { dy } else { g.act_grad(act, dy, id)? };
                let (a, b) = (x[0], x[1]);
                let mut out = Vec::new();
                if needs[a] {
                    // d op(A) = dz · op(B)ᵀ; stored transposed when A is.
                    let da = if trans_a {
                        g.matmul_ex(b, dz, None, trans_b, true, Act::Identity)?
                    } else {
                        g.matmul_ex(dz, b, None, false, !trans_b, Act::Identity)?
                    };
                    out.push((a, da));
                }
                if needs[b] {
                    // d op(B) = op(A)ᵀ · dz; stored transposed when B is.
                    let db = if trans_b {
                        g.matmul_ex(dz, a, None, true, trans_a, Act::Identity)?
                    } else {
                        g.matmul_ex(a, dz, None, !trans_a, false, Act::Identity)?
                    };
                    out.push((b, db));
                }
                if let Some(&bias) = x.get(2).filter(|&&bias| needs[bias]) {
                    let n = g.shape(bias).to_vec();
                    out.push((bias, g.reduce_to(dz, &n, 1.0)?));
                }
                out
            }
            Op::Binary(op) => {
                let (a, b) = (x[0], x[1]);
                let (da, db) = match op {
                    BinaryOp::Add => (Some((dy, 1.0)), Some((dy, 1.0))),
                    BinaryOp::Sub => (Some((dy, 1.0)), Some((dy, -1.0))),
                    BinaryOp::Mul => (
                        needs[a].then(|| g.mul(dy, b)).transpose()?.map(|t| (t, 1.0)),
                        needs[b].then(|| g.mul(dy, a)).transpose()?.map(|t| (t, 1.0)),
                    ),
                    BinaryOp::Div => {
                        // y = a / b:  da = dy / b,  db = -dy · y / b
                        let da = needs[a].then(|| g.div(dy, b)).transpose()?.map(|t| (t, 1.0));
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
            Op::Unary(act) => {
                let dx = if act == Act::Identity { dy } else { g.act_grad(act, dy, id)? };
                vec![(x[0], dx)]
            }
            Op::ReduceTo { scale } => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.expand_to(dy, &shape, scale)?)]
            }
            Op::ExpandTo { scale } => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.reduce_to(dy, &shape, scale)?)]
            }
            Op::Reshape => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.reshape(dy, &shape)?)]
            }
            Op::BceWithLogits { pos_weight } => {
                vec![(x[0], g.bce_with_logits_grad(x[0], x[1], dy, pos_weight)?)]
            }
            Op::GatherRows => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.scatter_add_rows(dy, x[1], &shape)?)]
            }
            Op::Concat => {
                let mut start = 0;
                let mut out = Vec::new();
                for &part in x {
                    let cols = g.shape(part)[1];
                    if needs[part] {
                        out.push((part, g.slice_cols(dy, start, cols)?));
                    }
                    start += cols;
                }
                out
            }
            Op::Conv2d { geom, act } => {
                let dz = if act == Act::Identity { dy } else { g.act_grad(act, dy, id)? };
                let (x_in, w) = (x[0], x[1]);
                let mut out = Vec::new();
                if needs[x_in] {
                    let shape = g.shape(x_in).to_vec();
                    out.push((x_in, g.conv2d_grad_input(dz, w, &shape, geom)?));
                }
                if needs[w] {
                    let shape = g.shape(w).to_vec();
                    out.push((w, g.conv2d_grad_weight(dz, x_in, &shape, geom)?));
                }
                if let Some(&bias) = x.get(2).filter(|&&bias| needs[bias]) {
                    out.push((bias, g.conv_grad_bias(dz)?));
                }
                out
            }
            Op::Transpose => vec![(x[0], g.transpose_last(dy)?)],
            // An index is piecewise constant: no gradient flows through it.
            Op::MaxPoolArgmax { .. } => vec![],
            Op::PoolGather => {
                let Op::MaxPoolArgmax { geom } = g.nodes[x[1]].op else {
                    return Err(Error::Other("pool_gather must read the indices of a max_pool_argmax".into()));
                };
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.max_pool_grad(dy, x[1], &shape, geom)?)]
            }
            Op::AvgPool { geom } => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.avg_pool_grad(dy, &shape, geom)?)]
            }
            Op::Conv2dGradInput { .. }
            | Op::Conv2dGradWeight { .. }
            | Op::ConvGradBias
            | Op::MaxPoolGrad { .. }
            | Op::AvgPoolGrad { .. }
            | Op::ActGrad(_)
            | Op::BceWithLogitsGrad { .. }
            | Op::ScatterAddRows
            | Op::SliceCols { .. } => {
                return Err(Error::Other(format!(
                    "cannot differentiate through {} (second derivatives are not supported)",
                    node.op.name()
                )))
            }
        };
        for (input, d) in contributions {
            if !needs[input] {
                continue;
            }
            grads[input] = Some(match grads[input] {
                None => d,
                Some(prev) => g.add(prev, d)?,
            });
        }
    }
    Ok(Gradients { grads })
}

/// The gradient of a broadcast operand: sum `d` back to the operand's shape (and apply
/// `scale`), or pass it through when nothing was broadcast and there is nothing to scale.
fn reduce_if_needed(g: &mut Graph, d: NodeId, operand: NodeId, scale: f32) -> Result<NodeId> {
    let shape = g.shape(operand).to_vec();
    if g.shape(d) == shape.as_slice() && scale == 1.0 {
        Ok(d)
    } else {
        g.reduce_to(d, &shape, scale)
    }
}
