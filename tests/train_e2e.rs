//! End to end on the bundled Taiwan data: the default MLP learns, and a seed fixes the
//! run exactly. (The GPU twins of these tests are in gpu_train.rs.)

use riskgrad::cpu::CpuExecutor;
use riskgrad::data::read_bundled;
use riskgrad::exec::Executor;
use riskgrad::graph::Optimizer;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{prepare_splits, EpochReport, TrainConfig, Trainer};

pub fn train_default_mlp(exec: &mut dyn Executor, epochs: usize, seed: u64) -> Vec<EpochReport> {
    let data = read_bundled(&[]).expect("bundled data");
    let (train, val, _) = prepare_splits(&data, 0.2, seed).expect("split");
    let model = ModelSpec::mlp(data.n_features(), &[64, 32]).unwrap();
    let config = TrainConfig {
        epochs,
        batch: 256,
        optimizer: Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
        seed,
        pos_weight: 1.0,
    };
    let mut trainer = Trainer::new(exec, &model, &train, &val, config).expect("trainer");
    (0..epochs).map(|_| trainer.epoch(&mut |_, _, _| {}).expect("epoch")).collect()
}

#[test]
fn default_mlp_reaches_auc_076_in_5_epochs_on_cpu() {
    let reports = train_default_mlp(&mut CpuExecutor::new(), 5, 0);
    let last = reports.last().unwrap();
    for r in &reports {
        eprintln!("epoch {} loss {:.5} auc {:.4}", r.epoch, r.train_loss, r.validation.auc);
    }
    assert!(reports[0].train_loss > last.train_loss, "the loss went down");
    assert!(last.validation.auc >= 0.76, "validation AUC {} < 0.76", last.validation.auc);
}

#[test]
fn same_seed_gives_identical_losses_on_cpu() {
    let a: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 7).iter().map(|r| r.train_loss).collect();
    let b: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 7).iter().map(|r| r.train_loss).collect();
    let c: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 8).iter().map(|r| r.train_loss).collect();
    assert_eq!(a, b, "same seed, same losses");
    assert_ne!(a, c, "another seed, other losses");
}
