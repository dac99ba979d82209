//! Kernel and training-step benchmarks, run on any executor. They print what they
//! measured; nothing here asserts a speed.

use crate::error::Result;
use crate::exec::Executor;
use crate::graph::{Act, Graph};
use crate::plan::{compile, PlanRequest, STEP_STATE};
use crate::rng::Rng;
use serde::Serialize;
use std::time::Instant;

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub name: String,
    pub device: String,
    /// Median seconds of one repetition over the timed rounds.
    pub median_seconds: f64,
    /// The figure of merit: GFLOP/s, GB/s or rows/s, named by `unit`.
    pub rate: f64,
    pub unit: &'static str,
}

/// Median of a non-empty list.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Times `reps` steps of a loaded plan per round (one submission on a GPU), waiting for
/// completion by reading the step counter back; returns the median seconds per step.
pub fn time_plan(exec: &mut dyn Executor, plan: usize, reps: usize, rounds: usize) -> Result<f64> {
    exec.run(plan, 1)?; // warm-up: first-use costs stay out of the figure
    exec.read(STEP_STATE)?;
    let mut times = Vec::with_capacity(rounds);
    let budget = Instant::now();
    // At least 3 rounds; past 10 s of measuring, stop there (slow adapters, big sizes).
    for round in 0..rounds {
        if round >= 3 && budget.elapsed().as_secs_f64() > 10.0 {
            break;
        }
        let start = Instant::now();
        exec.run(plan, reps)?;
        exec.read(STEP_STATE)?;
        times.push(start.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(median(times))
}

/// `C = A·B + bias` for square `size`, with random operands.
pub fn matmul(exec: &mut dyn Executor, size: usize, budget_flops: f64) -> Result<Measurement> {
    let mut g = Graph::new();
    // Names carry the size: one executor serves every size, and named inputs are shared.
    let (name_a, name_b) = (format!("bench_a_{size}"), format!("bench_b_{size}"));
    let a = g.input(&name_a, &[size, size])?;
    let b = g.input(&name_b, &[size, size])?;
    let c = g.matmul_ex(a, b, None, false, false, Act::Identity)?;
    let plan = compile(&g, &PlanRequest { keep: vec![c], ..Default::default() })?;
    let h = exec.load(plan)?;
    let mut rng = Rng::new(size as u64);
    let data: Vec<f32> = (0..size * size).map(|_| rng.range(-1.0, 1.0) as f32).collect();
    exec.write(&name_a, &data)?;
    exec.write(&name_b, &data)?;
    let flops = 2.0 * (size as f64).powi(3);
    let reps = ((budget_flops / flops) as usize).clamp(1, 200);
    let seconds = time_plan(exec, h, reps, 5)?;
    Ok(Measurement { name: format!("matmul {size}x{size}x{size}"), device: exec.device_name(), median_seconds: seconds, rate: flops / seconds / 1e9, unit: "GFLOP/s" })
}

/// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub device: String,
    /// Median over epochs of training rows per second (validation excluded).
    pub rows_per_second: f64,
    pub epochs: usize,
    /// Seconds from `since` (process start) to: the data prepared, the plans loaded
    /// (buffers, bind groups, data uploaded), and the end of the first training step.
    pub data_ready_seconds: f64,
    pub plans_loaded_seconds: f64,
    pub first_step_seconds: f64,
    pub val_auc: f64,
    pub peak_rss_mib: Option<f64>,
}

/// Trains the default MLP (64-32, batch 256, Adam 1e-3, seed 0) on the bundled Taiwan
/// data and measures throughput; `since` is when the process started.
pub fn train_default_mlp(exec: &mut dyn Executor, epochs: usize, since: Instant) -> Result<TrainBench> {
    use crate::graph::Optimizer;
    use crate::data::{prepare_bundled, PrepareOptions};
    use crate::train::{TrainConfig, Trainer};
    let data = prepare_bundled(&PrepareOptions::bundled())?;
    let (train, val) = (&data.train, &data.val);
    let data_ready_seconds = since.elapsed().as_secs_f64();
    let model = crate::nn::ModelSpec::mlp(data.n_features(), &[64, 32])?;
    let optimizer = Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let device = exec.device_name();
    let mut trainer = Trainer::new(exec, &model, train, val, TrainConfig { epochs, batch: 256, optimizer, seed: 0, pos_weight: 1.0 })?;
    let plans_loaded_seconds = since.elapsed().as_secs_f64();
    trainer.step_once()?;
    let first_step_seconds = since.elapsed().as_secs_f64();
    let mut rates = Vec::new();
    let mut val_auc = f64::NAN;
    for _ in 0..epochs {
        let report = trainer.epoch(&mut |_, _, _| {})?;
        rates.push(report.rows_per_second);
        val_auc = report.validation.auc;
    }
    Ok(TrainBench { device, rows_per_second: median(rates), epochs, data_ready_seconds, plans_loaded_seconds, first_step_seconds, val_auc, peak_rss_mib: peak_rss_mib() })
}
