//! Trains the peers' LSTM on the bundled Taiwan data with the library API (native CPU
//! executor unless a device is named), and prints rows/s per epoch: the payment history as 6 steps × 3
//! features → LSTM(64) → LSTM(32), the last hidden state beside the 5 static features →
//! dense 1; Adam 1e-3, batch 256 (peers/torch_default.py's model and settings).
//!
//!     cargo run --release --example train_lstm -- [epochs] [lstm|gru] [cpu|gpu|auto|ADAPTER]
//!
//! (`gpu` trains on the best wgpu adapter, software ones included.)

mod common;

use riskgrad::data::sequence::{prepare_options, SequenceLayout};
use riskgrad::data::{prepare_bundled, PrepareOptions, SignedLog};
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::{ModelSpec, RecurrentSpec};
use riskgrad::train::{TrainConfig, Trainer};

fn main() -> riskgrad::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let gru = args.next().is_some_and(|s| s == "gru");
    let mut exec = common::executor(args.next())?;
    // The peers' preparation: the 23 columns as numbers, standardized on the training
    // split, nothing else (no signed log, no one-hot codes); then the sequence models'
    // layout: the 5 static features, the history time-major, oldest month first.
    let mut opts = prepare_options(PrepareOptions::bundled(), &[], true)?;
    opts.signed_log = SignedLog::Off;
    let mut data = prepare_bundled(&opts)?;
    let layout = SequenceLayout::from_flags(&data.feature_names, &[], None)?;
    layout.apply(&mut data)?;
    let (train, val) = (&data.train, &data.val);
    let spec = RecurrentSpec::new(
        layout.statics(),
        layout.channels(),
        layout.steps(),
        &RecurrentSpec::DEFAULT_HIDDEN,
        false,
        &[],
    )?;
    let model = if gru {
        ModelSpec::gru(spec)
    } else {
        ModelSpec::lstm(spec)
    };
    let optimizer = Optimizer::Adam {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let mut trainer = Trainer::new(
        exec.as_mut(),
        &model,
        train,
        val,
        TrainConfig {
            epochs,
            batch: 256,
            optimizer,
            seed: 0,
            pos_weight: 1.0,
        },
    )?;
    let mut rates = Vec::new();
    let mut per_cpu = Vec::new();
    let train_rows = train.rows() as f64;
    let cpu_at_start = std::cell::Cell::new(None);
    common::train_epochs(
        &mut trainer,
        epochs,
        &mut || cpu_at_start.set(common::cpu_seconds()),
        &mut |r| {
            // CPU time of the training steps and the validation pass together; only
            // where the platform reports it.
            let rows_per_cpu_second = match (cpu_at_start.get(), common::cpu_seconds()) {
                (Some(a), Some(b)) => train_rows / (b - a),
                _ => f64::NAN,
            };
            println!(
                "epoch {:>2}  loss {:.4}  val AUC {:.4}  {:>9.0} rows/s  ({:.0} rows per CPU-second)",
                r.epoch, r.train_loss, r.validation.auc, r.rows_per_second, rows_per_cpu_second
            );
            rates.push(r.rows_per_second);
            per_cpu.push(rows_per_cpu_second);
        },
    )?;
    println!(
        "median {:.0} rows/s, {:.0} rows per CPU-second, over {epochs} epochs ({} CPU threads)",
        common::median(rates),
        common::median(per_cpu),
        rayon::current_num_threads()
    );
    Ok(())
}
