//! The fused recurrent kernels against the textbook f64 LSTM and GRU
//! (`crate::reference::rnn`): the graph interpreter's cells exactly, the CPU
//! executor's within f32 rounding. (The GPU's twin is in gpu_rnn.rs.)

use crate::common;
use crate::rnn_common;

use crate::reference::evaluate;
use common::*;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::rng::Rng;
use rnn_common::cases;

#[test]
fn stacks_match_the_textbook_equations() {
    for case in cases(&[&[1], &[7], &[3, 5, 2]], &[1, 6], 3, 4) {
        let what = format!("{case:?}");
        let built = case.build();
        let g = &built.graph;
        let mut rng = Rng::new(seed_of(&what));
        let (inputs, params) = random_feed(g, &mut rng, 1);
        let (want_seq, want_last) = case.textbook(g, &inputs, &params);

        let values = evaluate(g, &inputs, &params, 0);
        for (name, node, want) in [
            ("sequence", built.sequence, &want_seq),
            ("last", built.last, &want_last),
        ] {
            let got = &values[node];
            assert_eq!(got.len(), want.len(), "{what}: {name}");
            for (i, (a, b)) in got.iter().zip(want.iter()).enumerate() {
                assert!(
                    (a - b).abs() < 1e-12,
                    "{what}: interpreter {name}[{i}] {a} vs textbook {b}"
                );
            }
        }

        let mut ex = CpuExecutor::new();
        let h = run_once(&mut ex, g, &[built.sequence, built.last], &inputs, &params);
        assert_close(
            &format!("{what}: CPU sequence"),
            &ex.read_node(h, built.sequence).unwrap(),
            &want_seq,
            1e-4,
            1e-5,
        );
        assert_close(
            &format!("{what}: CPU last"),
            &ex.read_node(h, built.last).unwrap(),
            &want_last,
            1e-4,
            1e-5,
        );
    }
}

/// Large pre-activations saturate the gates: the fast exponential and tanh of the CPU
/// kernels must stay finite and exact at the ends.
#[test]
fn saturated_gates_stay_finite_and_accurate() {
    for case in cases(&[&[33]], &[6], 5, 3) {
        let what = format!("{case:?} ×40");
        let built = case.build();
        let g = &built.graph;
        let mut rng = Rng::new(seed_of(&what));
        let (mut inputs, params) = random_feed(g, &mut rng, 1);
        inputs
            .get_mut("x")
            .unwrap()
            .iter_mut()
            .for_each(|v| *v *= 40.0);
        let (want_seq, _) = case.textbook(g, &inputs, &params);
        let mut ex = CpuExecutor::new();
        let h = run_once(&mut ex, g, &[built.sequence], &inputs, &params);
        assert_close(
            &format!("{what}: CPU sequence"),
            &ex.read_node(h, built.sequence).unwrap(),
            &want_seq,
            1e-4,
            1e-5,
        );
    }
}
