//! `riskgrad train`

use super::data_args::DataArgs;
use riskgrad::data::{prepare, prepare_bundled};
use riskgrad::gpu::DeviceChoice;
use riskgrad::graph::Optimizer;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{EpochReport, TrainConfig, Trainer};
use riskgrad::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Dense layers (sizes from --hidden) with ReLU.
    Mlp,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// SGD with momentum (--momentum).
    Sgd,
    /// Adam (betas 0.9, 0.999; eps 1e-8).
    Adam,
    /// Adam with decoupled weight decay (--weight-decay).
    Adamw,
}

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataArgs,
    #[arg(long, value_enum, default_value = "mlp")]
    pub model: ModelKind,
    /// Hidden layer sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,32")]
    pub hidden: Vec<usize>,
    #[arg(long, default_value_t = 5)]
    pub epochs: usize,
    /// Rows per training step.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f32,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerKind,
    /// Momentum for --optimizer sgd.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Decoupled weight decay for --optimizer adamw.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f32,
    /// Weight of the positive class in the loss: a number, or "auto" for
    /// negatives/positives of the training split.
    #[arg(long, default_value = "1")]
    pub pos_weight: String,
    /// Seed for the split, the initial weights and the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of rows held out for validation (stratified by the target).
    #[arg(long, default_value_t = 0.2)]
    pub val_split: f64,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring> (see `riskgrad devices`).
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Directory for metrics.json (created if missing).
    #[arg(long, value_name = "DIR", default_value = "runs/latest")]
    pub out: PathBuf,
}

#[derive(Serialize)]
struct MetricsFile<'a> {
    riskgrad_version: &'static str,
    data: String,
    model: &'a ModelSpec,
    device: String,
    epochs: &'a [EpochReport],
    train_rows: usize,
    validation_rows: usize,
    /// Training rows per second over all epochs (validation passes excluded).
    train_rows_per_second: f64,
    seconds: f64,
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let started = Instant::now();
    let opts = args.data.options(args.val_split, args.seed)?;
    let prepared = match &args.data.data {
        None => prepare_bundled(&opts)?,
        Some(path) => prepare(path, &opts)?,
    };
    for dropped in &prepared.auto_dropped {
        eprintln!("dropped column {:?} ({})", dropped.name, dropped.reason);
    }
    if prepared.rows_without_target > 0 {
        eprintln!("left out {} rows without a target value", prepared.rows_without_target);
    }
    let data_name = args.data.name();
    let (train, val) = (&prepared.train, &prepared.val);
    let model = match args.model {
        ModelKind::Mlp => ModelSpec::mlp(prepared.n_features(), &args.hidden)?,
    };
    let pos_weight = parse_pos_weight(&args.pos_weight, prepared.auto_pos_weight())?;
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    let optimizer = match args.optimizer {
        OptimizerKind::Sgd => Optimizer::Sgd { lr: args.lr, momentum: args.momentum },
        OptimizerKind::Adam => Optimizer::Adam { lr: args.lr, beta1, beta2, eps },
        OptimizerKind::Adamw => Optimizer::AdamW { lr: args.lr, beta1, beta2, eps, weight_decay: args.weight_decay },
    };
    if !(args.lr > 0.0 && args.lr.is_finite()) {
        return Err(Error::flag("--lr", "must be a positive number"));
    }
    if args.epochs == 0 {
        return Err(Error::flag("--epochs", "must be at least 1"));
    }
    std::fs::create_dir_all(&args.out).map_err(|e| Error::io(&args.out, e))?;

    let mut exec = super::executor(&args.device)?;
    let device = exec.device_name();
    eprintln!(
        "{data_name}: {} rows, {} features after preprocessing, {:.1}% positive; training on {} rows, validating on {} | device: {device}",
        prepared.n_rows,
        prepared.n_features(),
        100.0 * (train.y.iter().chain(&val.y).sum::<f32>() as f64) / (train.rows() + val.rows()) as f64,
        train.rows(),
        val.rows()
    );
    let config = TrainConfig { epochs: args.epochs, batch: args.batch, optimizer, seed: args.seed, pos_weight };
    let mut trainer = Trainer::new(exec.as_mut(), &model, train, val, config)?;
    let mut reports = Vec::new();
    for epoch in 1..=args.epochs {
        let bar = epoch_bar(epoch, args.epochs, trainer.steps_per_epoch());
        let step_started = Instant::now();
        let rows_per_step = args.batch as f64;
        let report = trainer.epoch(&mut |done, _total, loss| {
            bar.set_position(done as u64);
            let rate = done as f64 * rows_per_step / step_started.elapsed().as_secs_f64();
            let loss = loss.map_or(String::new(), |l| format!("loss {l:.4}  "));
            bar.set_message(format!("{loss}{:.0} rows/s", rate));
        })?;
        bar.finish_and_clear();
        eprintln!(
            "epoch {:>3}/{}  train loss {:.4}  val AUC {:.4}  KS {:.4}  log loss {:.4}  {:.0} rows/s",
            report.epoch, args.epochs, report.train_loss, report.validation.auc, report.validation.ks, report.validation.log_loss, report.rows_per_second
        );
        reports.push(report);
    }
    let train_seconds: f64 = reports.iter().map(|r| r.seconds).sum();
    let train_rows_per_second = (trainer.steps_per_epoch() * args.batch * args.epochs) as f64 / train_seconds;
    let metrics = MetricsFile {
        riskgrad_version: env!("CARGO_PKG_VERSION"),
        data: data_name,
        model: &model,
        device,
        epochs: &reports,
        train_rows: train.rows(),
        validation_rows: val.rows(),
        train_rows_per_second,
        seconds: started.elapsed().as_secs_f64(),
    };
    let path = args.out.join("metrics.json");
    let json = serde_json::to_vec_pretty(&metrics).map_err(|e| Error::Other(e.to_string()))?;
    super::write_atomically(&path, &json)?;
    let last = reports.last().expect("at least one epoch");
    let best = reports.iter().max_by(|a, b| a.validation.auc.total_cmp(&b.validation.auc)).expect("at least one epoch");
    println!(
        "done in {:.1}s: final val AUC {:.4}, KS {:.4}, Gini {:.4}, log loss {:.4} (best AUC {:.4} at epoch {}); {:.0} training rows/s; wrote {}",
        started.elapsed().as_secs_f64(),
        last.validation.auc,
        last.validation.ks,
        last.validation.gini,
        last.validation.log_loss,
        best.validation.auc,
        best.epoch,
        train_rows_per_second,
        path.display()
    );
    Ok(())
}

fn parse_pos_weight(value: &str, auto: f32) -> Result<f32> {
    if value == "auto" {
        return Ok(auto);
    }
    match value.parse::<f32>() {
        Ok(w) if w > 0.0 && w.is_finite() => Ok(w),
        _ => Err(Error::flag("--pos-weight", format!("{value:?} is not a positive number or \"auto\""))),
    }
}

fn epoch_bar(epoch: usize, epochs: usize, steps: usize) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(steps as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template("epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_prefix(format!("{epoch}/{epochs}"));
    bar
}
