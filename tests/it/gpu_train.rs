//! End to end on the GPU executor (lavapipe in CI): the default MLP learns on the bundled
//! data, a seed fixes the run exactly, and the result agrees with the CPU executor.

use crate::common;

use common::{context, take_turn, train_default_mlp};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::gpu::GpuExecutor;

#[test]
fn default_mlp_reaches_auc_076_in_5_epochs_on_the_gpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let reports = train_default_mlp(&mut GpuExecutor::new(ctx), 5, 0);
    let last = reports.last().unwrap();
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
fn same_seed_gives_identical_losses_on_the_gpu_and_close_to_the_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let a: Vec<f64> = train_default_mlp(&mut GpuExecutor::new(ctx.clone()), 2, 7)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    let b: Vec<f64> = train_default_mlp(&mut GpuExecutor::new(ctx), 2, 7)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    assert_eq!(a, b, "same seed, same losses on the GPU");
    let cpu: Vec<f64> = train_default_mlp(&mut CpuExecutor::new(), 2, 7)
        .iter()
        .map(|r| r.train_loss)
        .collect();
    for (g, c) in a.iter().zip(&cpu) {
        assert!(
            (g - c).abs() < 1e-3 * c.abs(),
            "GPU loss {g} vs CPU loss {c}"
        );
    }
}
