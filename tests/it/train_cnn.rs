//! End to end on the bundled Taiwan data with the default CNN: it learns on the CPU
//! backend (validation AUC ≥ 0.765 within 10 epochs), a seed fixes the run exactly, and
//! it trains on a GPU adapter (lavapipe in CI) the way it does on the CPU.

use crate::common;

use common::{context, take_turn};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::nn::{CnnLayers, ModelSpec};
use riskgrad::train::{EpochReport, Trainer};

/// Trains until `stop` says so or `epochs` have run.
fn train(
    exec: &mut dyn Executor,
    seed: u64,
    epochs: usize,
    stop: impl Fn(&EpochReport) -> bool,
) -> Vec<EpochReport> {
    let (train, val, model) = common::bundled_cnn(seed);
    let mut trainer = Trainer::new(
        exec,
        &model,
        &train,
        &val,
        common::adam_config(seed, epochs),
    )
    .expect("trainer");
    let mut reports = Vec::new();
    for _ in 0..epochs {
        let r = trainer.epoch(&mut |_, _, _| {}).expect("epoch");
        eprintln!(
            "epoch {} loss {:.5} auc {:.4}",
            r.epoch, r.train_loss, r.validation.auc
        );
        let done = stop(&r);
        reports.push(r);
        if done {
            break;
        }
    }
    reports
}

#[test]
fn default_cnn_reaches_auc_0765_within_10_epochs_on_cpu() {
    let reports = train(&mut CpuExecutor::new(), 0, 10, |r| {
        r.validation.auc >= 0.765
    });
    let last = reports.last().unwrap();
    assert!(
        last.validation.auc >= 0.765,
        "validation AUC {} < 0.765 after {} epochs",
        last.validation.auc,
        reports.len()
    );
    assert!(
        reports
            .iter()
            .all(|r| r.train_loss.is_finite() && r.train_loss < 0.6),
        "losses {:?}",
        reports.iter().map(|r| r.train_loss).collect::<Vec<_>>()
    );
}

#[test]
fn same_seed_gives_identical_cnn_losses_on_cpu() {
    let losses = |seed| {
        train(&mut CpuExecutor::new(), seed, 1, |_| false)
            .iter()
            .map(|r| r.train_loss)
            .collect::<Vec<_>>()
    };
    assert_eq!(losses(3), losses(3), "same seed, same losses");
    assert_ne!(losses(3), losses(4), "another seed, other losses");
}

#[test]
fn cnn_model_flags_are_checked() {
    let bad = |layers: CnnLayers| ModelSpec::cnn(5, 3, 6, layers).unwrap_err().to_string();
    assert!(bad(CnnLayers {
        conv: vec![],
        ..CnnLayers::default()
    })
    .contains("invalid conv channels"));
    assert!(bad(CnnLayers {
        conv: vec![32, 0],
        ..CnnLayers::default()
    })
    .contains("invalid conv channels"));
    assert!(bad(CnnLayers {
        dense: vec![0],
        ..CnnLayers::default()
    })
    .contains("invalid dense layer sizes"));
    assert!(bad(CnnLayers {
        kernel: 0,
        ..CnnLayers::default()
    })
    .contains("invalid conv kernel width"));
    assert!(bad(CnnLayers {
        pool: 0,
        ..CnnLayers::default()
    })
    .contains("invalid pooling window"));
    // Six steps pooled by 2 after each of 4 layers run out.
    let e = bad(CnnLayers {
        conv: vec![8, 8, 8, 8],
        ..CnnLayers::default()
    });
    assert!(
        e.contains("invalid pooling window") && e.contains("no steps"),
        "{e}"
    );
    assert!(ModelSpec::cnn(5, 0, 6, CnnLayers::default())
        .unwrap_err()
        .to_string()
        .contains("invalid sequence columns"));
    // Deeper stacks that still fit, no pooling, even kernels, no statics: all build.
    for (statics, layers) in [
        (
            5,
            CnnLayers {
                conv: vec![8, 8, 8],
                ..CnnLayers::default()
            },
        ),
        (
            0,
            CnnLayers {
                conv: vec![4, 4, 4, 4],
                pool: 1,
                kernel: 2,
                dense: vec![],
            },
        ),
    ] {
        let spec = ModelSpec::cnn(statics, 3, 6, layers).unwrap();
        let mut g = riskgrad::engine::graph::Graph::new();
        let x = g.input("x", &[7, spec.inputs()]).unwrap();
        let y = spec.build(&mut g, x).unwrap();
        assert_eq!(g.shape(y), [7, 1]);
    }
}

#[test]
fn cnn_parameters_as_a_saved_model_names_them() {
    // Conv weights [out, in, kernel] as PyTorch's Conv1d keeps them; dense [in, out].
    let spec = ModelSpec::cnn(5, 3, 6, CnnLayers::default()).unwrap();
    let (params, _) = riskgrad::model_io::param_layout(&spec).unwrap();
    let got: Vec<(&str, &[usize])> = params
        .iter()
        .map(|p| (p.name.as_str(), p.shape.as_slice()))
        .collect();
    let want: Vec<(&str, &[usize])> = vec![
        ("conv0.weight", &[32, 3, 3]),
        ("conv0.bias", &[32]),
        ("conv1.weight", &[64, 32, 3]),
        ("conv1.bias", &[64]),
        ("dense0.weight", &[64 * 3 + 5, 64]),
        ("dense0.bias", &[64]),
        ("dense1.weight", &[64, 1]),
        ("dense1.bias", &[1]),
    ];
    assert_eq!(got, want);
    let json = serde_json::to_value(&spec).unwrap();
    assert_eq!(json["kind"], "cnn");
    assert_eq!(serde_json::from_value::<ModelSpec>(json).unwrap(), spec);
}

/// The default CNN trains on a GPU adapter: one epoch on the full data, each kernel of
/// the step on the GPU, close to the same epoch on the CPU. Fails without an adapter
/// unless RISKGRAD_SKIP_GPU_TESTS=1.
#[test]
fn default_cnn_trains_on_the_gpu_like_on_the_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut gpu = GpuExecutor::new(ctx);
    let on_gpu = train(&mut gpu, 0, 1, |_| false);
    let on_cpu = train(&mut CpuExecutor::new(), 0, 1, |_| false);
    let (g, c) = (&on_gpu[0], &on_cpu[0]);
    eprintln!(
        "GPU ({}): loss {:.6} auc {:.5}; CPU: loss {:.6} auc {:.5}",
        gpu.device_name(),
        g.train_loss,
        g.validation.auc,
        c.train_loss,
        c.validation.auc
    );
    // 93 Adam steps from the same start on the same batches: sums taken in another
    // order drift only slightly.
    assert!(
        (g.train_loss - c.train_loss).abs() < 1e-3 * c.train_loss,
        "GPU loss {} vs CPU {}",
        g.train_loss,
        c.train_loss
    );
    assert!(
        (g.validation.auc - c.validation.auc).abs() < 2e-3,
        "GPU AUC {} vs CPU {}",
        g.validation.auc,
        c.validation.auc
    );
    assert!(
        g.validation.auc > 0.72,
        "the GPU-trained CNN learned: AUC {}",
        g.validation.auc
    );
}
