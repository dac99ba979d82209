//! Training tables over the executor's largest input are streamed through it in chunks
//! (`train::Trainer`, issue 11 item 8): the same steps see the same rows, so a streamed
//! run leaves exactly the weights, losses and validation scores of a resident one, on
//! the CPU backend and on the GPU, with a stop and resume inside a chunk as well.

use crate::common::{context, rng_for, take_turn};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{EpochEnd, Split, TrainConfig, Trainer};
use riskgrad::{Error, Setting};

const FEATURES: usize = 6;

fn table(test: &str, rows: usize) -> Split {
    let mut rng = rng_for(test);
    let mut split = Split::default();
    for _ in 0..rows {
        let x: Vec<f32> = (0..FEATURES).map(|_| rng.normal() as f32).collect();
        let logit = x[0] - 0.7 * x[1] + 0.4 * x[2] * x[3];
        let p = 1.0 / (1.0 + (-logit as f64).exp());
        split.y.push((rng.uniform() < p) as u8 as f32);
        split.x.extend(x);
    }
    split
}

fn config() -> TrainConfig {
    TrainConfig {
        epochs: 3,
        batch: 24,
        optimizer: Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 11,
        pos_weight: 1.3,
    }
}

/// What a run leaves: each epoch's loss and validation scores, then the weights.
type Run = (Vec<f64>, Vec<Vec<f32>>, Vec<f32>);

/// Three epochs on `exec`; with `stop_at`, the second epoch is stopped after that
/// many runs of steps and finished by the next call, as a resumed run would.
fn train(exec: &mut dyn Executor, train: &Split, val: &Split, stop_at: Option<usize>) -> Run {
    let model = ModelSpec::mlp(FEATURES, &[9, 4]).unwrap();
    let mut trainer = Trainer::new(exec, &model, train, val, config()).unwrap();
    let (mut losses, mut scores) = (Vec::new(), Vec::new());
    for epoch in 1..=3 {
        let checks = std::cell::Cell::new(0);
        let stop = || {
            checks.set(checks.get() + 1);
            epoch == 2 && Some(checks.get()) == stop_at.map(|n| n + 1)
        };
        let report = match trainer.epoch_until(&mut |_, _, _| {}, &stop).unwrap() {
            EpochEnd::Done(r) => r,
            EpochEnd::Stopped { .. } => trainer.epoch(&mut |_, _, _| {}).unwrap(),
        };
        losses.push(report.train_loss);
        scores.push(trainer.predict_validation().unwrap());
    }
    (losses, scores, trainer.params().unwrap())
}

/// 1,000 training rows (41 steps of 24) and 2,500 validation rows (2 scoring steps of
/// 2,048, the last padded).
fn tables() -> (Split, Split) {
    (table("streamed_train", 1_000), table("streamed_val", 2_500))
}

/// Bytes that hold `rows` rows.
fn bytes(rows: usize) -> u64 {
    (rows * FEATURES * 4) as u64
}

#[test]
fn a_streamed_table_trains_exactly_as_a_resident_one_on_the_cpu() {
    let (tr, val) = tables();
    let resident = train(&mut CpuExecutor::new(), &tr, &val, None);
    // 420 rows: the training table in chunks of 17 steps (3 chunks, the last short),
    // validation scored 420 rows a step, a chunk each (6). 1,500 rows: the training
    // table held whole, validation in 2 chunks of one step.
    for (cap, stop_at) in [
        (bytes(420), None),
        (bytes(420), Some(3)),
        (bytes(1_500), Some(1)),
    ] {
        let mut exec = CpuExecutor::new();
        exec.limit_input_bytes(cap);
        let streamed = train(&mut exec, &tr, &val, stop_at);
        assert_eq!(
            streamed.0, resident.0,
            "losses, cap {cap}, stop {stop_at:?}"
        );
        assert_eq!(
            streamed.1, resident.1,
            "scores, cap {cap}, stop {stop_at:?}"
        );
        assert_eq!(
            streamed.2, resident.2,
            "weights, cap {cap}, stop {stop_at:?}"
        );
    }
}

#[test]
fn a_streamed_table_trains_exactly_as_a_resident_one_on_the_gpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let (tr, val) = tables();
    let resident = train(&mut GpuExecutor::new(ctx.clone()), &tr, &val, None);
    let mut exec = GpuExecutor::new(ctx);
    exec.limit_input_bytes(bytes(420));
    let streamed = train(&mut exec, &tr, &val, Some(2));
    assert_eq!(streamed.0, resident.0, "losses");
    assert_eq!(streamed.1, resident.1, "scores");
    assert_eq!(streamed.2, resident.2, "weights");
    // And the GPU's streamed run agrees with the CPU backend's as resident runs do.
    let cpu = train(&mut CpuExecutor::new(), &tr, &val, None);
    let worst = cpu
        .2
        .iter()
        .zip(&streamed.2)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-3, "GPU weights differ from the CPU's by {worst}");
}

#[test]
fn a_cap_below_one_step_is_refused_naming_the_batch() {
    let (tr, val) = tables();
    let mut exec = CpuExecutor::new();
    exec.limit_input_bytes(bytes(23));
    let model = ModelSpec::mlp(FEATURES, &[9, 4]).unwrap();
    let e = Trainer::new(&mut exec, &model, &tr, &val, config())
        .err()
        .expect("one step's rows do not fit");
    assert!(
        matches!(
            &e,
            Error::Invalid {
                setting: Setting::BatchSize,
                ..
            }
        ),
        "{e:?}"
    );
    let says = format!(
        "one step's 24 rows of 6 features ({} bytes) are more than the device holds in one buffer ({} bytes)",
        bytes(24),
        bytes(23)
    );
    assert!(e.to_string().contains(&says), "{e}");
}
