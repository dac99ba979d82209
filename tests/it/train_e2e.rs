//! End to end on the bundled Taiwan data: the default MLP learns, and a seed fixes the
//! run exactly. (The GPU twins of these tests are in gpu_train.rs.)

use crate::common;

use common::train_default_mlp;
use riskgrad::engine::cpu::CpuExecutor;

#[test]
fn default_mlp_reaches_auc_076_in_5_epochs_on_cpu() {
    let reports = train_default_mlp(&mut CpuExecutor::new(), 5, 0);
    let last = reports.last().unwrap();
    for r in &reports {
        eprintln!(
            "epoch {} loss {:.5} auc {:.4}",
            r.epoch, r.train_loss, r.validation.auc
        );
    }
    assert!(
        reports[0].train_loss > last.train_loss,
        "the loss went down"
    );
    assert!(
        last.validation.auc >= 0.76,
        "validation AUC {} < 0.76",
        last.validation.auc
    );
}

#[test]
fn same_seed_gives_identical_losses_on_cpu() {
    let a: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 7)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    let b: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 7)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    let c: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 8)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    assert_eq!(a, b, "same seed, same losses");
    assert_ne!(a, c, "another seed, other losses");
}
