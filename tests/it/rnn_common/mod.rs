//! Recurrent stacks built in the graph, and the same stacks run by the textbook f64
//! reference (`crate::reference::rnn`), for the CPU and GPU comparison tests.

use crate::reference::rnn::{gru_layer, lstm_layer, LayerWeights};
use riskgrad::engine::graph::{CellKind, Graph, NodeId};
use riskgrad::nn::rnn::{rnn_stack, InitialState};
use std::collections::HashMap;

#[derive(Clone, Debug)]
pub struct StackCase {
    pub kind: CellKind,
    pub batch: usize,
    pub steps: usize,
    pub input: usize,
    pub hidden: Vec<usize>,
    pub bidirectional: bool,
    /// Initial states as graph inputs (`h0_l{layer}_d{direction}`, `c0_…`), else zeros.
    pub with_init: bool,
}

pub struct Built {
    pub graph: Graph,
    pub x: NodeId,
    /// `[batch, steps · width]` and `[batch, width]`.
    pub sequence: NodeId,
    pub last: NodeId,
}

impl StackCase {
    fn dirs(&self) -> usize {
        1 + self.bidirectional as usize
    }

    pub fn build(&self) -> Built {
        let mut g = Graph::new();
        let x = g
            .input("x", &[self.batch, self.steps * self.input])
            .unwrap();
        let init: Option<Vec<Vec<InitialState>>> = self.with_init.then(|| {
            self.hidden
                .iter()
                .enumerate()
                .map(|(l, &h)| {
                    (0..self.dirs())
                        .map(|d| InitialState {
                            h: g.input(&format!("h0_l{l}_d{d}"), &[self.batch, h]).unwrap(),
                            c: (self.kind == CellKind::Lstm).then(|| {
                                g.input(&format!("c0_l{l}_d{d}"), &[self.batch, h]).unwrap()
                            }),
                        })
                        .collect()
                })
                .collect()
        });
        let out = rnn_stack(
            &mut g,
            self.kind,
            "rnn",
            x,
            self.steps,
            &self.hidden,
            self.bidirectional,
            init.as_deref(),
            true,
        )
        .unwrap();
        Built {
            graph: g,
            x,
            sequence: out.sequence.unwrap(),
            last: out.last,
        }
    }

    /// The textbook stack on the same inputs and parameters (parameters by index of
    /// `graph.params`). Returns the sequence and the final hidden state, laid out as the
    /// graph's outputs.
    pub fn textbook(
        &self,
        graph: &Graph,
        inputs: &HashMap<String, Vec<f64>>,
        params: &[Vec<f64>],
    ) -> (Vec<f64>, Vec<f64>) {
        let by_name = |name: &str| {
            graph
                .params
                .iter()
                .position(|p| p.name == name)
                .map(|i| params[i].clone())
        };
        let (b, t) = (self.batch, self.steps);
        let mut x = inputs["x"].clone();
        let mut width = self.input;
        let mut last = Vec::new();
        for (l, &h) in self.hidden.iter().enumerate() {
            let g = self.kind.gates() * h;
            let dirs = self.dirs();
            let mut seq = vec![0.0; b * t * dirs * h];
            let mut finals = Vec::new();
            for d in 0..dirs {
                let suffix = if d == 1 { "_reverse" } else { "" };
                let w = LayerWeights {
                    w_ih: by_name(&format!("rnn{l}.weight_ih{suffix}")).unwrap(),
                    // A single step from zero never reads W_hh (the graph has none).
                    w_hh: by_name(&format!("rnn{l}.weight_hh{suffix}")).unwrap_or(vec![0.0; h * g]),
                    b_ih: by_name(&format!("rnn{l}.bias_ih{suffix}")).unwrap(),
                    b_hh: by_name(&format!("rnn{l}.bias_hh{suffix}")).unwrap(),
                };
                let h0 = inputs.get(&format!("h0_l{l}_d{d}")).map(|v| v.as_slice());
                let c0 = inputs.get(&format!("c0_l{l}_d{d}")).map(|v| v.as_slice());
                let (out, h_n) = match self.kind {
                    CellKind::Lstm => {
                        let (o, h_n, _) = lstm_layer(&x, b, t, width, h, &w, h0, c0, d == 1);
                        (o, h_n)
                    }
                    CellKind::Gru => gru_layer(&x, b, t, width, h, &w, h0, d == 1),
                };
                for r in 0..b {
                    for s in 0..t {
                        let dst = ((r * t + s) * dirs + d) * h;
                        seq[dst..dst + h].copy_from_slice(&out[(r * t + s) * h..][..h]);
                    }
                }
                finals.push(h_n);
            }
            last = (0..b)
                .flat_map(|r| {
                    finals
                        .iter()
                        .flat_map(move |f| f[r * h..(r + 1) * h].to_vec())
                })
                .collect();
            x = seq;
            width = dirs * h;
        }
        (x, last)
    }
}

/// Cases over both kinds, the sizes given, one and two directions, with and without
/// initial states.
pub fn cases(hidden: &[&[usize]], steps: &[usize], batch: usize, input: usize) -> Vec<StackCase> {
    let mut out = Vec::new();
    for kind in [CellKind::Lstm, CellKind::Gru] {
        for &h in hidden {
            for &t in steps {
                for (bidirectional, with_init) in [(false, false), (false, true), (true, true)] {
                    out.push(StackCase {
                        kind,
                        batch,
                        steps: t,
                        input,
                        hidden: h.to_vec(),
                        bidirectional,
                        with_init,
                    });
                }
            }
        }
    }
    out
}

/// The bundled Taiwan data as the peers prepare it (peers/common.py): the 23 feature
/// columns as numbers, standardized on the training split, no signed log; split 80/20
/// stratified with `seed`; then put in the sequence models' layout by the shared
/// `data::sequence` helper, checked here against the data contract written out by hand:
/// the five static features, then per month, April (PAY_6, BILL_AMT6, PAY_AMT6) to
/// September (PAY_0, BILL_AMT1, PAY_AMT1), repayment status, bill and payment.
pub fn peer_splits(seed: u64) -> (riskgrad::train::Split, riskgrad::train::Split) {
    use riskgrad::data::sequence::{prepare_options, SequenceLayout};
    use riskgrad::data::{prepare_bundled, PrepareOptions, SignedLog};
    let mut opts = prepare_options(PrepareOptions::bundled(), &[], true).expect("options");
    opts.signed_log = SignedLog::Off;
    opts.seed = seed;
    let mut data = prepare_bundled(&opts).expect("bundled data");
    assert_eq!(data.n_features(), 23, "{:?}", data.feature_names);
    let layout =
        SequenceLayout::from_flags(&data.feature_names, &[], None).expect("the Taiwan layout");
    layout.apply(&mut data).expect("reorder");
    let mut contract: Vec<String> = ["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (t, pay) in ["PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_0"]
        .iter()
        .enumerate()
    {
        let month = 6 - t;
        contract.extend([
            pay.to_string(),
            format!("BILL_AMT{month}"),
            format!("PAY_AMT{month}"),
        ]);
    }
    assert_eq!(data.feature_names, contract);
    assert_eq!(
        (layout.statics(), layout.channels(), layout.steps()),
        (5, 3, 6)
    );
    (data.train, data.val)
}
