//! End to end on the bundled Taiwan data: the LSTM model (payment history as 6 steps ×
//! 3 channels → LSTM 64 → LSTM 32, last hidden state beside the 5 static features →
//! dense 1) learns on the CPU backend. (Its GPU twin is in gpu_rnn.rs.)

use crate::rnn_common;

use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::{ModelSpec, RecurrentSpec};
use riskgrad::train::{TrainConfig, Trainer};

#[test]
fn lstm_reaches_auc_077_within_10_epochs_on_cpu() {
    let (train, val) = rnn_common::peer_splits(0);
    let model = ModelSpec::lstm(
        RecurrentSpec::new(5, 3, 6, &RecurrentSpec::DEFAULT_HIDDEN, false, &[]).unwrap(),
    );
    let config = TrainConfig {
        epochs: 10,
        batch: 256,
        optimizer: Optimizer::Adam {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 0,
        pos_weight: 1.0,
    };
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model, &train, &val, config).expect("trainer");
    let mut history = Vec::new();
    for _ in 0..10 {
        let r = trainer.epoch(&mut |_, _, _| {}).expect("epoch");
        eprintln!(
            "epoch {} loss {:.5} auc {:.4}",
            r.epoch, r.train_loss, r.validation.auc
        );
        history.push((r.train_loss, r.validation.auc));
        if r.validation.auc >= 0.77 {
            break;
        }
    }
    assert!(
        history.last().unwrap().0 < history[0].0,
        "the loss went down: {history:?}"
    );
    assert!(
        history.last().unwrap().1 >= 0.77,
        "validation AUC stayed below 0.77 for 10 epochs: {history:?}"
    );
}
