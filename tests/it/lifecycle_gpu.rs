//! The lifecycle on the GPU executor (lavapipe in CI): a saved model scores and explains
//! there as on the CPU, and a trainer's exported state resumes there exactly.

use crate::common;
use crate::lifecycle_common;

use common::{context, take_turn};
use lifecycle_common::{bundled, trained};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::explain::Explainer;
use riskgrad::nn::ModelSpec;
use riskgrad::scoring::Scorer;
use riskgrad::train::{TrainConfig, Trainer};

#[test]
fn scores_and_attributions_agree_with_the_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let (m, _) = trained(&[16, 8], 1);
    let f = m.n_inputs();
    // 333 rows in batches of 100: the last batch is padded.
    let x = bundled().val.x[..333 * f].to_vec();
    let cpu = Scorer::new(&mut CpuExecutor::new(), &m, 100)
        .unwrap()
        .score(&x)
        .unwrap();
    let mut gpu_exec = GpuExecutor::new(ctx.clone());
    let gpu = Scorer::new(&mut gpu_exec, &m, 100)
        .unwrap()
        .score(&x)
        .unwrap();
    assert_eq!(gpu.len(), 333);
    for (i, (g, c)) in gpu.iter().zip(&cpu).enumerate() {
        assert!((g - c).abs() < 1e-5, "row {i}: GPU {g}, CPU {c}");
    }

    let rows = &x[..5 * f];
    let mut cpu_exec = CpuExecutor::new();
    let want = Explainer::new(&mut cpu_exec, &m, 4, 16)
        .unwrap()
        .explain(rows)
        .unwrap();
    let mut gpu_exec = GpuExecutor::new(ctx);
    let got = Explainer::new(&mut gpu_exec, &m, 4, 16)
        .unwrap()
        .explain(rows)
        .unwrap();
    for (i, (g, c)) in got.attributions.iter().zip(&want.attributions).enumerate() {
        assert!(
            (g - c).abs() < 1e-5 + 1e-3 * c.abs(),
            "attribution {i}: GPU {g}, CPU {c}"
        );
    }
}

#[test]
fn exported_state_resumes_exactly_on_the_gpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let data = bundled();
    let model = ModelSpec::mlp(data.n_features(), &[16]).unwrap();
    let config = TrainConfig {
        epochs: 2,
        batch: 512,
        optimizer: Optimizer::Adam {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 3,
        pos_weight: 1.0,
    };
    let mut whole_exec = GpuExecutor::new(ctx.clone());
    let mut whole = Trainer::new(
        &mut whole_exec,
        &model,
        &data.train,
        &data.val,
        config.clone(),
    )
    .unwrap();
    whole.epoch(&mut |_, _, _| {}).unwrap();
    let state = whole.export_state().unwrap();
    let second = whole.epoch(&mut |_, _, _| {}).unwrap();
    let whole_params = whole.params().unwrap();

    let mut resumed_exec = GpuExecutor::new(ctx);
    let mut resumed =
        Trainer::new(&mut resumed_exec, &model, &data.train, &data.val, config).unwrap();
    resumed.import_state(&state).unwrap();
    assert_eq!(resumed.epochs_done(), 1);
    let again = resumed.epoch(&mut |_, _, _| {}).unwrap();
    assert_eq!(again.train_loss, second.train_loss);
    assert_eq!(again.validation.auc, second.validation.auc);
    assert!(
        resumed.params().unwrap() == whole_params,
        "the same weights after the resumed epoch"
    );
}
