//! Rewrite passes over a built graph. Autodiff's rules emit plain ops (a gradient's
//! pieces are summed with `add`s); the fusions that save launches are done here,
//! afterwards, so no rule has to know about them.
//!
//! `sum_into_products`: the matmul kernels add a whole matrix as they write their
//! output (the `bias` input of a `MatMul`, `[m, n]` shaped), so `add(sum, d)` where `d`
//! is a plain product (no bias, no activation) read by nothing but that add becomes `d`
//! with `sum` as its added matrix, and the add disappears. A recurrent weight's gradient
//! is one such product per step: the whole sum runs in the products' epilogues.

use super::{Act, BinaryOp, ElementwiseOp, Graph, MatMulOp, NodeId, Op};

/// Folds every `add(sum, d)` among the nodes from `from` on into `d`, where `d` is a
/// plain product (a `MatMul` with two inputs and no activation) made after `sum`, with
/// `sum`'s shape, read only by that add and not in `outside` (node ids held outside
/// the graph, which must keep meaning what they meant). Folded adds are removed and
/// the nodes from `from` on renumbered; returns each old id's new id (a removed add's
/// is its product's). Nodes before `from` keep their ids and are never changed.
pub(crate) fn sum_into_products(g: &mut Graph, from: NodeId, outside: &[NodeId]) -> Vec<NodeId> {
    let n = g.nodes.len();
    let mut readers = vec![0usize; n];
    for node in &g.nodes[from..] {
        for &i in &node.inputs {
            readers[i] += 1;
        }
    }
    let mut held = vec![false; n];
    for &id in outside {
        held[id] = true;
    }
    // What each node now stands for: itself, or the product an add was folded into.
    let mut stands_for: Vec<NodeId> = (0..n).collect();
    let mut removed = vec![false; n];
    for id in from..n {
        for k in 0..g.nodes[id].inputs.len() {
            let i = g.nodes[id].inputs[k];
            g.nodes[id].inputs[k] = stands_for[i];
        }
        let node = &g.nodes[id];
        let &[sum, d] = node.inputs.as_slice() else {
            continue;
        };
        let plain_product = matches!(
            g.nodes[d].op,
            Op::MatMul(MatMulOp {
                act: Act::Identity,
                ..
            })
        ) && g.nodes[d].inputs.len() == 2;
        if node.op == Op::Elementwise(ElementwiseOp::Binary(BinaryOp::Add))
            && d >= from
            && plain_product
            && readers[d] == 1
            && !held[d]
            && sum < d
            && g.shape(sum) == g.shape(d)
        {
            g.nodes[d].inputs.push(sum);
            stands_for[id] = d;
            removed[id] = true;
        }
    }
    compact(g, from, &removed, &stands_for)
}

/// Drops the `removed` nodes (all from `from` on) and renumbers the rest in order;
/// returns each old id's new id, a removed node's being that of what it `stands_for`.
fn compact(g: &mut Graph, from: NodeId, removed: &[bool], stands_for: &[NodeId]) -> Vec<NodeId> {
    let n = g.nodes.len();
    let mut new_id: Vec<NodeId> = (0..n).collect();
    let mut next = from;
    for id in from..n {
        if !removed[id] {
            new_id[id] = next;
            next += 1;
        }
    }
    for id in from..n {
        if removed[id] {
            new_id[id] = new_id[stands_for[id]];
        }
    }
    let nodes = std::mem::take(&mut g.nodes);
    g.nodes = nodes
        .into_iter()
        .enumerate()
        .filter(|&(id, _)| !removed[id])
        .map(|(_, mut node)| {
            for i in &mut node.inputs {
                *i = new_id[*i];
            }
            node
        })
        .collect();
    new_id
}

#[cfg(test)]
mod tests {
    use super::super::{backward, BinaryOp, ElementwiseOp, Graph, Op};
    use super::sum_into_products;

    fn adds(g: &Graph) -> usize {
        let add = Op::Elementwise(ElementwiseOp::Binary(BinaryOp::Add));
        g.nodes.iter().filter(|n| n.op == add).count()
    }

    /// A weight read by three products gets its gradient as a chain of products, each
    /// adding the sum so far in its epilogue: no add is left.
    #[test]
    fn a_shared_weights_gradient_is_summed_in_the_products() {
        let mut g = Graph::new();
        let x = g.input("x", &[3, 4]).unwrap();
        let w = g.param("w", &[4, 4]).unwrap();
        let z1 = g.matmul(x, w).unwrap();
        let z2 = g.matmul(z1, w).unwrap();
        let z3 = g.matmul(z2, w).unwrap();
        let loss = g.mean(z3).unwrap();
        let grads = backward(&mut g, loss, &[]).unwrap();
        let dw = grads.of(w).unwrap();
        assert!(matches!(g.nodes[dw].op, Op::MatMul(_)));
        assert_eq!(
            g.nodes[dw].inputs.len(),
            3,
            "the sum so far is its added matrix"
        );
        assert_eq!(adds(&g), 0);
        for (id, node) in g.nodes.iter().enumerate() {
            assert!(node.inputs.iter().all(|&i| i < id), "node {id} reads ahead");
        }
    }

    /// An add is folded only into a product that nothing else reads and that no one
    /// outside holds; the ids after a folded add move down by one.
    #[test]
    fn an_add_is_folded_only_into_a_product_read_by_it_alone() {
        let mut g = Graph::new();
        let a = g.input("a", &[2, 2]).unwrap();
        let b = g.input("b", &[2, 2]).unwrap();
        let s = g.add(a, b).unwrap();
        let d = g.matmul(a, b).unwrap();
        let e = g.add(s, d).unwrap();
        let f = g.mul(e, a).unwrap();
        let shared = g.matmul(b, a).unwrap();
        let kept = g.add(s, shared).unwrap();
        let _also = g.mul(shared, b).unwrap();
        let held = g.matmul(a, a).unwrap();
        let kept2 = g.add(s, held).unwrap();
        let new_id = sum_into_products(&mut g, s, &[held]);
        assert_eq!(new_id[e], d, "the add is the product now");
        assert_eq!(g.nodes[d].inputs, vec![a, b, s]);
        assert_eq!(new_id[f], f - 1);
        assert_eq!(g.nodes[new_id[f]].inputs, vec![d, a]);
        assert_eq!(g.nodes[new_id[kept]].inputs, vec![s, new_id[shared]]);
        assert_eq!(g.nodes[new_id[kept2]].inputs, vec![s, new_id[held]]);
        assert_eq!(adds(&g), 3);
    }
}
