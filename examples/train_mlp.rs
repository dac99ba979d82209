//! Trains the default MLP (64-32, batch 256, Adam 1e-3) on the bundled Taiwan data with
//! the library API (`select_executor`, `Trainer`, `fit`), and prints rows/s per epoch.
//!
//!     cargo run --release --example train_mlp -- [epochs] [cpu|gpu|auto|ADAPTER]

mod common;

use riskgrad::data::{prepare_bundled, PrepareOptions};
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{TrainConfig, Trainer};

fn main() -> riskgrad::Result<()> {
    let mut args = std::env::args().skip(1);
    let epochs = args.next().and_then(|s| s.parse().ok()).unwrap_or(10);
    let mut exec = common::executor(args.next())?;
    let data = prepare_bundled(&PrepareOptions::bundled())?;
    let (train, val) = (&data.train, &data.val);
    let model = ModelSpec::mlp(data.n_features(), &[64, 32])?;
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
    common::train_epochs(&mut trainer, epochs, &mut || {}, &mut |r| {
        println!(
            "epoch {:>2}  loss {:.4}  val AUC {:.4}  {:>9.0} rows/s",
            r.epoch, r.train_loss, r.validation.auc, r.rows_per_second
        )
    })
}
