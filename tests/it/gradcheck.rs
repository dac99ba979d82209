//! Finite-difference checks of every op's vector-Jacobian rule, in f64 on the reference
//! interpreter, and of the CPU executor's kernels (forward and backward) against it.

use crate::common;

use crate::reference::evaluate;
use common::*;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::{backward, Act, Graph, NodeId, Op};
use riskgrad::rng::Rng;

/// `check_op_gradients` of one output; `rows` is the row count of gathered tables.
fn check(name: &str, rows: usize, build: impl Fn(&mut Graph) -> NodeId) {
    check_op_gradients(name, rows, |g| vec![build(g)], &[None]);
}

fn ex_read(ex: &mut CpuExecutor, h: usize, id: NodeId) -> Vec<f32> {
    use riskgrad::engine::exec::Executor;
    ex.read_node(h, id).unwrap()
}

#[test]
fn matmul_every_transpose_activation_and_bias() {
    for (m, n, k) in [(1, 1, 1), (7, 5, 3), (3, 9, 33), (33, 2, 7)] {
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            for act in [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh] {
                // No bias, a bias row, a whole added matrix.
                for bias_shape in [None, Some(vec![n]), Some(vec![m, n])] {
                    let name =
                        format!("matmul {m}x{n}x{k} ta={ta} tb={tb} {act:?} bias {bias_shape:?}");
                    check(&name, 1, |g| {
                        let a = g.input("a", &if ta { [k, m] } else { [m, k] }).unwrap();
                        let b = g.input("b", &if tb { [n, k] } else { [k, n] }).unwrap();
                        let bias = bias_shape.as_ref().map(|s| g.input("bias", s).unwrap());
                        g.matmul_ex(a, b, bias, ta, tb, act).unwrap()
                    });
                }
            }
        }
    }
}

/// Products large enough for the CPU's threaded paths (two lanes from 2^20 multiply-adds,
/// the whole pool from 2^24), with inner dimensions both small (a direct loop instead of
/// gemm, up to 8) and not, a bias row or an added matrix: the CPU executor against the
/// f64 reference, forward and backward (the backward products transpose one operand).
#[test]
fn matmul_threaded_paths_match_the_reference() {
    for (m, n, k) in [
        (1537, 257, 3),
        (4099, 513, 8),
        (1, 4097, 7),
        (513, 260, 9),
        (2053, 1031, 9),
    ] {
        for (ta, tb) in [(false, false), (true, false), (false, true)] {
            let name = format!("threaded matmul {m}x{n}x{k} ta={ta} tb={tb}");
            let mut rng = Rng::new(seed_of(&name));
            let mut g = Graph::new();
            let a = g.input("a", &if ta { [k, m] } else { [m, k] }).unwrap();
            let b = g.input("b", &if tb { [n, k] } else { [k, n] }).unwrap();
            // A bias row, or with a transposed A a whole added matrix.
            let bias = g
                .input("bias", &if ta { vec![m, n] } else { vec![n] })
                .unwrap();
            let z = g.matmul_ex(a, b, Some(bias), ta, tb, Act::Tanh).unwrap();
            let loss = g.mean(z).unwrap();
            backward(&mut g, loss, &[a, b, bias]).unwrap();
            let (inputs, params) = random_feed(&g, &mut rng, 1);
            let values = evaluate(&g, &inputs, &params, 0);
            let keep: Vec<NodeId> = (0..g.nodes.len())
                .filter(|&i| !matches!(g.nodes[i].op, Op::Input { .. }))
                .collect();
            let mut ex = CpuExecutor::new();
            let h = run_once(&mut ex, &g, &keep, &inputs, &params);
            for &id in &keep {
                assert_close(
                    &format!("{name}: node {id} ({})", g.nodes[id].op.name()),
                    &ex_read(&mut ex, h, id),
                    &values[id],
                    1e-4,
                    1e-5,
                );
            }
        }
    }
}

#[test]
fn binary_ops_with_broadcasting() {
    let cases: [(&[usize], &[usize]); 5] = [
        (&[7, 5], &[7, 5]),
        (&[7, 5], &[5]),
        (&[7, 1], &[1, 5]),
        (&[3, 4, 5], &[4, 1]),
        (&[1], &[2, 3, 1, 2]),
    ];
    for (sa, sb) in cases {
        check(&format!("add {sa:?} {sb:?}"), 1, |g| {
            let a = g.input("a", sa).unwrap();
            let b = g.input("b", sb).unwrap();
            g.add(a, b).unwrap()
        });
        check(&format!("sub {sa:?} {sb:?}"), 1, |g| {
            let a = g.input("a", sa).unwrap();
            let b = g.input("b", sb).unwrap();
            g.sub(a, b).unwrap()
        });
        check(&format!("mul {sa:?} {sb:?}"), 1, |g| {
            let a = g.input("a", sa).unwrap();
            let b = g.input("b", sb).unwrap();
            g.mul(a, b).unwrap()
        });
        check(&format!("div {sa:?} {sb:?}"), 1, |g| {
            let a = g.input("a", sa).unwrap();
            let b = g.input("denominator", sb).unwrap();
            g.div(a, b).unwrap()
        });
    }
}

#[test]
fn activations() {
    for act in [Act::Relu, Act::Sigmoid, Act::Tanh] {
        for shape in [&[1][..], &[7][..], &[33, 3][..]] {
            check(&format!("{act:?} {shape:?}"), 1, |g| {
                let x = g.input("x", shape).unwrap();
                g.unary(act, x).unwrap()
            });
        }
    }
}

#[test]
fn reductions_expansion_and_reshape() {
    check("sum axis 0", 1, |g| {
        let x = g.input("x", &[7, 5]).unwrap();
        g.sum(x, 0).unwrap()
    });
    check("sum axis 1 of rank 3", 1, |g| {
        let x = g.input("x", &[3, 4, 5]).unwrap();
        g.sum(x, 1).unwrap()
    });
    check("mean", 1, |g| {
        let x = g.input("x", &[33, 2]).unwrap();
        g.mean(x).unwrap()
    });
    check("reduce_to scaled", 1, |g| {
        let x = g.input("x", &[4, 3, 5]).unwrap();
        g.reduce_to(x, &[3, 1], 0.5).unwrap()
    });
    check("expand_to", 1, |g| {
        let x = g.input("x", &[3, 1]).unwrap();
        g.expand_to(x, &[2, 3, 4], -1.5).unwrap()
    });
    check("reshape", 1, |g| {
        let x = g.input("x", &[6, 4]).unwrap();
        let r = g.reshape(x, &[3, 8]).unwrap();
        g.tanh(r).unwrap()
    });
}

#[test]
fn bce_with_logits_plain_and_weighted() {
    for (batch, pos_weight) in [(1, 1.0), (7, 1.0), (33, 3.5)] {
        check(&format!("bce batch {batch} w {pos_weight}"), 1, |g| {
            let z = g.input("z", &[batch, 1]).unwrap();
            let t = g.input("target", &[batch, 1]).unwrap();
            g.bce_with_logits(z, t, pos_weight).unwrap()
        });
    }
}

#[test]
fn gather_rows_with_repeated_indices() {
    // 9 table rows, batches of 12 indices: repeats are certain.
    check("gather", 9, |g| {
        let table = g.input("table", &[9, 4]).unwrap();
        let perm = g.input("perm", &[12]).unwrap();
        g.gather_rows(table, perm, 12).unwrap()
    });
}

#[test]
fn concat_of_three_parts() {
    check("concat", 1, |g| {
        let a = g.input("a", &[5, 2]).unwrap();
        let b = g.input("b", &[5, 1]).unwrap();
        let c = g.input("c", &[5, 3]).unwrap();
        let cat = g.concat(&[a, b, c]).unwrap();
        g.sigmoid(cat).unwrap()
    });
}

#[test]
fn a_small_network_with_parameters_used_twice() {
    check("mlp", 1, |g| {
        let x = g.input("x", &[6, 4]).unwrap();
        let w1 = g.param("w1", &[4, 5]).unwrap();
        let b1 = g.param("b1", &[5]).unwrap();
        let w2 = g.param("w2", &[5, 1]).unwrap();
        let h = g.linear(x, w1, b1, Act::Relu).unwrap();
        assert!(
            g.linear(h, w1, b1, Act::Tanh).is_err(),
            "a [6,5]·[4,5] product must be refused"
        );
        let y = g.matmul(h, w2).unwrap();
        // b1 a second time, broadcast along rows.
        let b1_row = g.reshape(b1, &[1, 5]).unwrap();
        let yy = g
            .matmul_ex(b1_row, w2, None, false, false, Act::Identity)
            .unwrap();
        g.add(y, yy).unwrap()
    });
}

/// Gradients summed from products, where a product is also handed on whole: `x` feeds
/// both a product and a sum whose gradient is itself a product (`dh = dz·Wᵀ` goes to `x`
/// and to `y` alike), and `w` is used in three products (a recurrent weight's pattern).
/// Folding `x`'s sum into `dh` would corrupt `y`'s gradient; only fresh products fold.
#[test]
fn gradient_sums_of_products_shared_and_not() {
    check_op_gradients(
        "shared products",
        1,
        |g| {
            let x = g.input("x", &[3, 4]).unwrap();
            let y = g.input("y", &[3, 4]).unwrap();
            let v = g.param("v", &[4, 2]).unwrap();
            let w = g.param("w", &[4, 4]).unwrap();
            let h = g.add(x, y).unwrap();
            let z1 = g.matmul(h, w).unwrap();
            let z2 = g.matmul(z1, w).unwrap();
            let z3 = g.matmul_ex(z2, w, None, false, false, Act::Tanh).unwrap();
            // Made last, so its piece of x's gradient is made first, before dh.
            let u = g.matmul(x, v).unwrap();
            vec![u, z3]
        },
        &[None],
    );
}

/// Random graphs in which nodes are reused freely: products (plain, with an added
/// matrix, with an activation), sums, differences, products of elements, activations
/// and column slices of a concatenation, over two inputs and two weights that several
/// products share. Each graph's gradients against finite differences and every node on
/// the CPU, as for single ops: a test of how autodiff sums the pieces of a gradient.
#[test]
fn random_graphs_with_shared_nodes() {
    for seed in 0..40u64 {
        let mut rng = Rng::new(seed);
        let ops: Vec<usize> = (0..7).map(|_| rng.below(7)).collect();
        let picks: Vec<(usize, usize)> = (0..7).map(|_| (rng.below(64), rng.below(64))).collect();
        check_op_gradients(
            &format!("random graph {seed}"),
            1,
            |g| {
                let mut pool = vec![
                    g.input("x0", &[3, 4]).unwrap(),
                    g.input("x1", &[3, 4]).unwrap(),
                ];
                let w = [
                    g.param("w0", &[4, 4]).unwrap(),
                    g.param("w1", &[4, 4]).unwrap(),
                ];
                for (&op, &(i, j)) in ops.iter().zip(&picks) {
                    let (a, b) = (pool[i % pool.len()], pool[j % pool.len()]);
                    let node = match op {
                        0 => g.matmul(a, w[j % 2]).unwrap(),
                        1 => g
                            .matmul_ex(a, w[i % 2], Some(b), false, false, Act::Identity)
                            .unwrap(),
                        2 => g
                            .matmul_ex(a, w[j % 2], None, false, j % 3 == 0, Act::Tanh)
                            .unwrap(),
                        3 => g.add(a, b).unwrap(),
                        4 => g.sub(a, b).unwrap(),
                        5 => g.mul(a, b).unwrap(),
                        _ => {
                            let both = g.concat(&[a, b]).unwrap();
                            g.slice_cols(both, 2, 4).unwrap()
                        }
                    };
                    pool.push(node);
                }
                // Every input and weight reaches the loss, whatever the draw used.
                let (x0w0, x1w1) = (
                    g.matmul(pool[0], w[0]).unwrap(),
                    g.matmul(pool[1], w[1]).unwrap(),
                );
                vec![pool[pool.len() - 1], pool[pool.len() - 3], x0w0, x1w1]
            },
            &[None],
        );
    }
}

#[test]
fn shape_errors_name_the_op_and_both_shapes() {
    let mut g = Graph::new();
    let a = g.input("a", &[3, 4]).unwrap();
    let b = g.input("b", &[5, 2]).unwrap();
    let msg = g.matmul(a, b).unwrap_err().to_string();
    assert!(
        msg.contains("matmul") && msg.contains("[3, 4]") && msg.contains("[5, 2]"),
        "{msg}"
    );
    let msg = g.add(a, b).unwrap_err().to_string();
    assert!(
        msg.contains("add") && msg.contains("[3, 4]") && msg.contains("[5, 2]"),
        "{msg}"
    );
}
