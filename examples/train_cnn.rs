//! Trains the peer CNN on the bundled Taiwan data with the library API (native CPU
//! executor unless a device is named), and prints rows/s per epoch: history [batch, 3 channels, 6 months] →
//! conv1d(3→32, k3, pad 1) ReLU → max pool 2 → conv1d(32→64, k3, pad 1) ReLU → flatten
//! → concat the 5 static features → dense 64 ReLU → dense 1; Adam 1e-3, batch 256.
//!
//!     cargo run --release --example train_cnn -- [epochs] [batch] [cpu|gpu|auto|ADAPTER]

mod common;

use riskgrad::data::sequence::{self, SequenceLayout};
use riskgrad::data::{prepare_bundled, PrepareOptions};
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::{CnnLayers, ModelSpec};
use riskgrad::train::{TrainConfig, Trainer};

fn main() -> riskgrad::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let batch = args.next().and_then(|s| s.parse().ok()).unwrap_or(256);
    let mut exec = common::executor(args.next())?;
    // Every column numeric (the peer layout; one-hot codes would make the statics 12
    // columns for the same AUC), then statics first and the history time-major, oldest
    // month first.
    let opts = sequence::prepare_options(PrepareOptions::bundled(), &[], true)?;
    let mut data = prepare_bundled(&opts)?;
    let layout = SequenceLayout::from_flags(&data.feature_names, &[], None)?;
    layout.apply(&mut data)?;
    let (train, val) = (&data.train, &data.val);
    let model = ModelSpec::cnn(
        layout.statics(),
        layout.channels(),
        layout.steps(),
        CnnLayers::default(),
    )?;
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
            batch,
            optimizer,
            seed: 0,
            pos_weight: 1.0,
        },
    )?;
    println!("{} training rows, batch {batch}", train.rows());
    let mut rates = Vec::new();
    let cpu_start = common::cpu_seconds();
    common::train_epochs(&mut trainer, epochs, &mut || {}, &mut |r| {
        println!(
            "epoch {:>2}  loss {:.4}  val AUC {:.4}  {:>9.0} rows/s",
            r.epoch, r.train_loss, r.validation.auc, r.rows_per_second
        );
        rates.push(r.rows_per_second);
    })?;
    println!("median {:.0} rows/s", common::median(rates));
    if let (Some(a), Some(b)) = (cpu_start, common::cpu_seconds()) {
        // Less sensitive than wall time to other processes on the machine; includes the
        // validation pass after each epoch.
        let rows = (trainer.steps_per_epoch() * batch * epochs) as f64;
        println!(
            "{:.2} CPU seconds for {epochs} epochs: {:.0} rows per CPU second",
            b - a,
            rows / (b - a)
        );
    }
    Ok(())
}
