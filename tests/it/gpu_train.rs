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

/// A model whose optimizer state is larger than the adapter can bind is refused before
/// anything is tuned or allocated: a usage error (exit 2) naming the layer-size flags,
/// no "Validation Error" from the driver, no output directory. (On a machine with less
/// memory than the run needs, the up-front memory check refuses it first, with the same
/// exit and flags.)
#[test]
fn a_model_over_the_adapters_largest_binding_is_refused_up_front() {
    let (ctx, _turn) = gpu_or_skip!();
    let binding = ctx.limits.max_storage_buffer_binding_size;
    // Two features and one hidden layer: about 4·hidden parameters, so the Adam state
    // (two words a parameter) takes about twice the binding.
    let hidden = binding / 16;
    let dir = crate::lifecycle_common::temp_dir("gpu-over-binding");
    let data = dir.join("two.csv");
    common::two_feature_table(&data, 200, 9);
    let err =
        common::train_refused_for_size(&dir, "gpu", &data, &hidden.to_string(), &["--batch", "8"]);
    assert!(
        (err.contains("over the largest storage binding of")
            || err.contains("intermediate tensors"))
            && err.contains("--hidden")
            && !err.contains("Validation"),
        "{err}"
    );
}
