//! Recurrent cells and layers: finite-difference checks, in f64 on the reference
//! interpreter, of the gradient of every input and weight (one fused cell in every
//! configuration; 3-layer 5-step stacks, backpropagation through time included), with
//! the CPU executor's kernels held against the interpreter at every node; column
//! slices' gradients; and bad shapes refused.

use crate::common;

use common::*;
use riskgrad::engine::graph::{backward, CellKind, Graph, NodeId, Op, RnnOp};
use riskgrad::nn::rnn::{rnn_stack, InitialState};

/// `check_op_gradients` of several outputs (a stack's sequence and its last state).
fn check(name: &str, build: impl Fn(&mut Graph) -> Vec<NodeId>) {
    check_op_gradients(name, 1, build, &[None]);
}

/// Every configuration of one cell: both kinds, the recurrent product absent / a bias
/// row / a matrix, with and without a previous state, the input product read from a
/// window of a wider matrix, hidden sizes 1 and 3.
#[test]
fn one_cell_every_input_and_configuration() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        for hidden in [1, 3] {
            for gh_mode in 0..3 {
                for has_prev in [false, true] {
                    let name =
                        format!("{kind:?} cell hidden {hidden} gh mode {gh_mode} prev {has_prev}");
                    check(&name, |g| {
                        let (rows, gw) = (2, kind.gates() * hidden);
                        // Columns 2.. of a matrix wider than the gates.
                        let gx = g.input("gx", &[rows, gw + 3]).unwrap();
                        let gh = match gh_mode {
                            0 => None,
                            1 => Some(g.input("gh", &[gw]).unwrap()),
                            _ => Some(g.input("gh", &[rows, gw]).unwrap()),
                        };
                        let prev = has_prev.then(|| g.input("prev", &[rows, hidden]).unwrap());
                        let cell = g.rnn_cell(kind, hidden, gx, 2, gh, prev).unwrap();
                        let mut outs = vec![g.cell_h(cell).unwrap()];
                        if kind == CellKind::Lstm {
                            outs.push(g.cell_c(cell).unwrap());
                        }
                        // The unused columns of gx and the state used twice.
                        outs.push(g.tanh(outs[0]).unwrap());
                        outs
                    });
                }
            }
        }
    }
}

/// A cell whose `h` gradient arrives in three pieces (two concatenations and a direct
/// use): more than the kernel reads in place, so they are summed first.
#[test]
fn a_cell_whose_hidden_state_is_used_many_times() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        check(&format!("{kind:?} h used thrice"), |g| {
            let gx = g.input("gx", &[3, kind.gates() * 2]).unwrap();
            let prev = g.input("prev", &[3, 2]).unwrap();
            let cell = g.rnn_cell(kind, 2, gx, 0, None, Some(prev)).unwrap();
            let h = g.cell_h(cell).unwrap();
            let other = g.input("other", &[3, 1]).unwrap();
            let a = g.concat(&[other, h]).unwrap();
            let b = g.concat(&[h, other, h]).unwrap();
            let c = g.sigmoid(h).unwrap();
            vec![a, b, c]
        });
    }
}

/// Initial states, one per layer and direction, as graph inputs with gradients.
fn initial_states(
    g: &mut Graph,
    kind: CellKind,
    batch: usize,
    hidden: &[usize],
    dirs: usize,
) -> Vec<Vec<InitialState>> {
    hidden
        .iter()
        .enumerate()
        .map(|(l, &h)| {
            (0..dirs)
                .map(|d| InitialState {
                    h: g.input(&format!("h0_l{l}_d{d}"), &[batch, h]).unwrap(),
                    c: (kind == CellKind::Lstm)
                        .then(|| g.input(&format!("c0_l{l}_d{d}"), &[batch, h]).unwrap()),
                })
                .collect()
        })
        .collect()
}

/// The backward pass of a stack reads the pieces of each `dh` where they lie: the
/// recurrent matmul's product and the window of the next layer's input gradient go
/// straight into the fused backward step (no slice copies, no adds of `dh`), and each
/// layer's input-product gradient is assembled by one concatenation.
#[test]
fn stacked_backward_reads_dh_in_place() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        let mut g = Graph::new();
        let x = g.input("x", &[4, 5 * 3]).unwrap();
        let out = rnn_stack(&mut g, kind, "rnn", x, 5, &[6, 4], false, None, false).unwrap();
        let loss = g.mean(out.last).unwrap();
        let forward_len = g.nodes.len();
        backward(&mut g, loss, &[]).unwrap();
        let back = &g.nodes[forward_len..];
        let count = |f: &dyn Fn(&Op) -> bool| back.iter().filter(|n| f(&n.op)).count();
        assert_eq!(
            count(&|op| matches!(op, Op::Rnn(RnnOp::RnnCellGrad { .. }))),
            10,
            "{kind:?}: one backward step per step"
        );
        // Layer 0's steps but the last read two pieces: from above and from the next step.
        assert_eq!(
            count(
                &|op| matches!(op, Op::Rnn(RnnOp::RnnCellGrad { dh_cols, .. }) if dh_cols.len() == 2)
            ),
            4,
            "{kind:?}"
        );
        assert_eq!(
            count(&|op| matches!(op, Op::SliceCols { .. })),
            0,
            "{kind:?}: no slice copies"
        );
        assert_eq!(
            count(&|op| matches!(op, Op::Concat)),
            2,
            "{kind:?}: one gate-gradient concatenation per layer"
        );
    }
}

#[test]
fn three_layers_five_steps_through_time() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        for with_init in [true, false] {
            check(
                &format!("{kind:?} 3 layers 5 steps init {with_init}"),
                |g| {
                    let (batch, steps, features, hidden) = (2, 5, 2, [3, 2, 3]);
                    let x = g.input("x", &[batch, steps * features]).unwrap();
                    let init = with_init.then(|| initial_states(g, kind, batch, &hidden, 1));
                    let out = rnn_stack(
                        g,
                        kind,
                        "rnn",
                        x,
                        steps,
                        &hidden,
                        false,
                        init.as_deref(),
                        true,
                    )
                    .unwrap();
                    vec![out.sequence.unwrap(), out.last]
                },
            );
        }
    }
}

#[test]
fn bidirectional_two_layers() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        check(&format!("{kind:?} bidirectional"), |g| {
            let (batch, steps, features, hidden) = (2, 3, 2, [2, 3]);
            let x = g.input("x", &[batch, steps * features]).unwrap();
            let init = initial_states(g, kind, batch, &hidden, 2);
            let out = rnn_stack(g, kind, "bi", x, steps, &hidden, true, Some(&init), true).unwrap();
            assert_eq!(out.width, 6);
            vec![out.sequence.unwrap(), out.last]
        });
    }
}

#[test]
fn one_step_sequences() {
    for kind in [CellKind::Lstm, CellKind::Gru] {
        check(&format!("{kind:?} one step"), |g| {
            let x = g.input("x", &[3, 4]).unwrap();
            let out = rnn_stack(g, kind, "one", x, 1, &[2, 1], false, None, true).unwrap();
            vec![out.sequence.unwrap()]
        });
    }
}

#[test]
fn column_slices_side_by_side_overlapping_and_with_gaps() {
    check("slices", |g| {
        let x = g.input("x", &[3, 9]).unwrap();
        let a = g.slice_cols(x, 0, 2).unwrap();
        let b = g.slice_cols(x, 2, 3).unwrap();
        let c = g.slice_cols(x, 1, 4).unwrap(); // overlaps both
        let d = g.slice_cols(x, 7, 1).unwrap(); // leaves gaps
        let e = g.tanh(x).unwrap();
        vec![a, b, c, d, e]
    });
}

#[test]
fn recurrent_models_train_their_parameters_and_refuse_bad_shapes() {
    use riskgrad::nn::{ModelSpec, RecurrentSpec};
    for spec in [
        ModelSpec::lstm(RecurrentSpec::new(2, 3, 2, &[3], false, &[]).unwrap()),
        ModelSpec::gru(RecurrentSpec::new(0, 2, 3, &[2, 2], true, &[4]).unwrap()),
    ] {
        let name = format!("{spec:?}");
        check(&name, |g| {
            let x = g.input("x", &[2, spec.inputs()]).unwrap();
            vec![spec.build(g, x).unwrap()]
        });
        // The spec survives a JSON round trip, as saved models keep it.
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(
            serde_json::from_str::<ModelSpec>(&json).unwrap(),
            spec,
            "{json}"
        );
    }
    assert!(RecurrentSpec::new(5, 3, 6, &[], false, &[]).is_err());
    assert!(RecurrentSpec::new(5, 3, 6, &[64, 0], false, &[]).is_err());
    assert!(RecurrentSpec::new(5, 0, 6, &[64], false, &[]).is_err());
    assert!(RecurrentSpec::new(5, 3, 6, &[64], false, &[0]).is_err());

    let mut g = Graph::new();
    let x = g.input("x", &[4, 10]).unwrap();
    let spec = ModelSpec::lstm(RecurrentSpec::new(5, 3, 6, &[8], false, &[]).unwrap());
    let msg = spec.build(&mut g, x).unwrap_err().to_string();
    assert!(msg.contains("23 columns"), "{msg}");
    let gx = g.input("gx", &[4, 7]).unwrap();
    let msg = g
        .rnn_cell(CellKind::Lstm, 2, gx, 0, None, None)
        .unwrap_err()
        .to_string();
    assert!(msg.contains("lstm") && msg.contains("[4, 7]"), "{msg}");
    let gx = g.input("gx8", &[4, 8]).unwrap();
    let bad_gh = g.input("gh", &[3, 8]).unwrap();
    assert!(g
        .rnn_cell(CellKind::Lstm, 2, gx, 0, Some(bad_gh), None)
        .is_err());
    let bad_prev = g.input("prev", &[4, 3]).unwrap();
    assert!(g
        .rnn_cell(CellKind::Lstm, 2, gx, 0, None, Some(bad_prev))
        .is_err());
    let gru = g.rnn_cell(CellKind::Gru, 2, gx, 2, None, None).unwrap();
    assert!(g.cell_c(gru).is_err(), "a GRU has no c");
    assert!(g.view(gru, 0, &[100, 100]).is_err());
    assert!(
        rnn_stack(&mut g, CellKind::Gru, "r", x, 3, &[2], false, None, false).is_err(),
        "10 columns are not 3 steps"
    );
}

/// Only the h and c planes of a cell carry gradients; reading a saved gate and
/// differentiating through it is refused with a message, not a wrong answer.
#[test]
fn gradients_through_saved_gates_are_refused() {
    let mut g = Graph::new();
    let gx = g.input("gx", &[2, 8]).unwrap();
    let cell = g.rnn_cell(CellKind::Lstm, 2, gx, 0, None, None).unwrap();
    let p = g.packing(cell).unwrap();
    let gate = g.view(cell, p.saved(), &[2, 2]).unwrap();
    let loss = g.mean(gate).unwrap();
    let msg = match backward(&mut g, loss, &[gx]) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("differentiated through a saved gate"),
    };
    assert!(msg.contains("h and c"), "{msg}");
}
