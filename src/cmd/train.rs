//! `riskgrad train`

use super::data_args::DataArgs;
use super::log::{event, LogFormat};
use super::output::{claim_model_dir, ModelDirClaim};
pub(super) use super::train_device::RunDevice;
use riskgrad::checkpoint::{Checkpoint, CHECKPOINT_FILE, NEXT_CHECKPOINT_FILE};
use riskgrad::data::dates::{date_range, DateRange};
use riskgrad::data::sequence::{self, TimeOrder};
use riskgrad::data::{prepare, prepare_bundled};
use riskgrad::data::{NumericEncoding, PrepareOptions, Prepared};
use riskgrad::engine::gpu::shaders::Precision;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::graph::{Act, Optimizer};
use riskgrad::nn::architecture::{Architecture, NetworkKind};
use riskgrad::nn::monotone::MonotoneConstraint;
use riskgrad::nn::CnnLayers;
use riskgrad::stability::Baseline;
use riskgrad::train::defaults::{check_members, default_members, Stopping, PATIENCE_STEPS};
use riskgrad::train::model_dir::{save_network_run, NetworkRunFigures, RunFacts};
use riskgrad::train::network::{
    self, NetworkObserver, NetworkRequest, NetworkRun, PlannedNetwork, TrainedNetwork,
    TrainingDevices,
};
use riskgrad::train::{CheckpointEvery, FitEvent};
use riskgrad::{Error, Result};
use serde::Serialize;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(clap::ValueEnum, Clone, Copy, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// Dense layers (sizes from --hidden) with the --activation (ReLU by default).
    Mlp,
    /// 1-D convolutions over the payment history (--sequence), pooling, then the static
    /// features and a dense head (--conv-channels, --conv-kernel, --pool, --dense).
    Cnn,
    /// Stacked LSTM layers over the payment history (sizes from --hidden), the last
    /// hidden state beside the static features, then the logit (--dense adds layers).
    Lstm,
    /// As lstm, with GRU cells.
    Gru,
    /// L2-regularised logistic regression (l2 1, as scikit-learn's C=1) on the same
    /// prepared features, solved exactly by Newton's method; the training flags do not
    /// apply. Saved as an mlp with no hidden layer.
    Logistic,
}

impl ModelKind {
    /// The network this kind trains; `None` for the logistic regression, which is
    /// solved rather than trained.
    fn network(self) -> Option<NetworkKind> {
        match self {
            ModelKind::Mlp => Some(NetworkKind::Mlp),
            ModelKind::Cnn => Some(NetworkKind::Cnn),
            ModelKind::Lstm => Some(NetworkKind::Lstm),
            ModelKind::Gru => Some(NetworkKind::Gru),
            ModelKind::Logistic => None,
        }
    }

    /// Whether the model reads a payment-history tensor.
    fn uses_sequences(self) -> bool {
        self.network().is_some_and(NetworkKind::uses_sequences)
    }
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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
    /// Hidden layer sizes of the mlp, or recurrent layer sizes of lstm/gru, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,32")]
    pub hidden: Vec<usize>,
    /// Activation of the hidden layers: the mlp's, the cnn's conv and dense layers, the
    /// dense head of lstm/gru (not the recurrent cells' gates). Saved with the model.
    #[arg(long, value_name = "ACT", default_value = "relu", value_parser = hidden_activations())]
    pub activation: Act,
    /// Columns forming one channel of the payment history, for the sequence models:
    /// a list or a range (`PAY_AMT1..6`); repeat the flag once per channel. Default for
    /// the bundled data: PAY_x, BILL_AMTx, PAY_AMTx over six months.
    #[arg(long, value_name = "COLS")]
    pub sequence: Vec<String>,
    /// Whether each --sequence lists its columns oldest-first or newest-first.
    #[arg(long, value_name = "oldest-first|newest-first")]
    pub time_order: Option<TimeOrder>,
    /// Output channels of each conv layer of the cnn, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "32,64")]
    pub conv_channels: Vec<usize>,
    /// Kernel width of the cnn's conv layers (zero-padded to keep the length).
    #[arg(long, default_value_t = 3)]
    pub conv_kernel: usize,
    /// Max-pooling window between the cnn's conv layers (1 for none).
    #[arg(long, default_value_t = 2)]
    pub pool: usize,
    /// Dense ReLU layers of the sequence models' head, comma-separated. Default: 64 for
    /// the cnn, none for lstm/gru.
    #[arg(long, value_delimiter = ',')]
    pub dense: Option<Vec<usize>>,
    /// Run the lstm/gru layers in both directions.
    #[arg(long)]
    pub bidirectional: bool,
    /// Epochs in all, or at most with early stopping [default: with early stopping,
    /// enough for about 1,000 optimizer steps, at least 10 and at most 100 (14 for the
    /// bundled data); with --early-stop off, about 300 steps, at least 5 and at most 30].
    #[arg(long)]
    pub epochs: Option<usize>,
    /// Rows per training step [default: a sixteenth of the rows fitted on, at least 32
    /// and at most 256 (256 for the bundled data)].
    #[arg(long, value_name = "ROWS")]
    pub batch: Option<usize>,
    /// Learning rate.
    #[arg(long, default_value_t = 1e-3, allow_negative_numbers = true)]
    pub lr: f32,
    #[arg(long, value_enum, default_value = "adam")]
    pub optimizer: OptimizerKind,
    /// Momentum for --optimizer sgd: at least 0, below 1.
    #[arg(long, default_value_t = 0.9, allow_negative_numbers = true)]
    pub momentum: f32,
    /// Decoupled weight decay for --optimizer adamw: at least 0, below 1 / --lr.
    #[arg(long, default_value_t = 0.01, allow_negative_numbers = true)]
    pub weight_decay: f32,
    /// Dropout probability after each hidden layer of the mlp (and the dense head of
    /// cnn/lstm/gru), in training only: at least 0, below 1. Saved with the model.
    #[arg(long, value_name = "P", default_value_t = 0.0)]
    pub dropout: f32,
    /// Hold the mlp monotone in numeric columns, by construction: COL:+1 (the probability
    /// of default never falls as COL rises) or COL:-1 (never rises), comma-separated,
    /// e.g. --monotone PAY_0:+1,LIMIT_BAL:-1. A missing value is not ordered: its
    /// indicator stays free.
    #[arg(
        long,
        value_name = "COL:±1,...",
        value_delimiter = ',',
        allow_hyphen_values = true
    )]
    pub monotone: Vec<MonotoneConstraint>,
    /// Weight of the positive class in the loss: a number from 1e-6 to 1e6, or
    /// "auto" for negatives/positives of the training split.
    #[arg(long, default_value = "1")]
    pub pos_weight: String,
    /// Seed for the split, the initial weights and the shuffles.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Fraction of rows held out for validation (stratified by the target).
    #[arg(long, default_value_t = 0.2)]
    pub val_split: f64,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring> (see `riskgrad devices`).
    ///
    /// auto: with a hardware GPU, times a few training steps of this model on it and on
    /// the CPU backend and takes the faster (cached per model shape and machine in
    /// $RISKGRAD_CACHE_DIR or the user's cache directory); without one, the CPU backend.
    /// Software adapters (lavapipe, llvmpipe) only when named. Scoring commands (eval,
    /// predict, explain, monitor) take a hardware GPU for auto without timing.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub tune: super::TuneArg,
    /// f32 | f16: how a GPU stores tensors while training. f16 halves the memory of
    /// activations, gradients and the resident table, computes in f32, keeps f32 master
    /// weights for the update (the saved model is f32) and scales the loss gradient by
    /// 256 so that small gradients survive. Needs --device naming a GPU with SHADER_F16
    /// (`riskgrad devices`); the CPU backend is f32 only.
    #[arg(long, default_value = "f32", value_parser = super::parse_precision)]
    pub precision: Precision,
    /// The model directory to write (created if missing): model.safetensors and
    /// config.json (the saved model), metrics.json, the report (report.html and SVG
    /// plots) and checkpoint.safetensors (after every epoch). Default: runs/latest, or
    /// the --resume directory.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Continue the run whose checkpoint is in DIR, up to --epochs in all. Give the same
    /// data and training flags as the first run (--lr may differ); with them the result
    /// is the same as one uninterrupted run.
    #[arg(long, value_name = "DIR")]
    pub resume: Option<PathBuf>,
    /// Stop after N epochs without a better AUC on the stopping rows (--stop-split) and
    /// save the best epoch's weights; `off` trains every epoch on all the training rows
    /// and saves the last [default: 5 epochs, or as many as make 50 optimizer steps when
    /// that is more].
    #[arg(long, value_name = "N|off")]
    pub early_stop: Option<EarlyStop>,
    /// Networks trained one after another and averaged into the saved model: each stops
    /// early on its own share of the training rows (--stop-split) and starts from its
    /// own weights and shuffles; the model scores their mean probability. Three took the
    /// bundled data's five-fold AUC from about 0.784 to 0.785 (BENCHMARKS.md) for about
    /// 1.5× the time [default: 3 for mlp, 1 for cnn, lstm and gru].
    #[arg(long, value_name = "N")]
    pub members: Option<usize>,
    /// Fraction of the training rows set aside (stratified) to decide early stopping:
    /// the model is fitted on the rest and its figures are on the validation rows,
    /// which early stopping never sees. Each member sets aside its own.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    pub stop_split: f64,
    /// `json` also writes one JSON object per event (start, progress, epoch, checkpoint,
    /// warning, early_stop, done, error) to stdout, for log collectors; the lines for a
    /// person stay on stderr. Fields: README, "Logs for machines".
    #[arg(long, value_enum, default_value = "text")]
    pub log: LogFormat,
    /// Also write the checkpoint inside epochs this often, so that a crash or a kill
    /// loses at most that much: a duration (`90s`, `10m`, `1h`) or a number of optimizer
    /// steps (`500`). Default: at each epoch's end only (SIGTERM and Ctrl-C checkpoint
    /// where they stop the run in any case).
    #[arg(long, value_name = "DURATION|STEPS")]
    pub checkpoint_every: Option<CheckpointEveryArg>,
    /// Cross-validate instead of one split: train K models on stratified folds (each
    /// fold held out once, the rest trained on as one run would) and report each fold's
    /// AUC, KS and log loss, their mean and standard deviation, beside the logistic
    /// challenger's on the same folds. Writes folds.csv (each row's fold and
    /// out-of-fold score), metrics.json and report.html; no model unless --ensemble.
    #[arg(long, value_name = "K")]
    pub cv: Option<usize>,
    /// The column holding each row's date (written year first: 2024-03-31, 2024-03,
    /// 20240331): left out of the features, its range recorded in model_card.md.
    #[arg(long, value_name = "COL")]
    pub date: Option<String>,
    /// With --cv: save the K fold models as one model that scores their mean
    /// probability (eval, predict and explain read it as any model). The preprocessing
    /// is then fitted once on all the rows (their features, not their labels), so that
    /// the fold models share it.
    #[arg(long, requires = "cv")]
    pub ensemble: bool,
}

/// `--checkpoint-every`: a duration or a number of steps.
#[derive(Clone, Copy, Debug)]
pub struct CheckpointEveryArg(CheckpointEvery);

impl std::str::FromStr for CheckpointEveryArg {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let bad =
            || format!("{s:?} is neither a number of steps (500) nor a duration (90s, 10m, 1h)");
        let every = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
            None => CheckpointEvery::Steps(s.parse::<usize>().map_err(|_| bad())?),
            Some(at) => {
                let value: f64 = s[..at].parse().map_err(|_| bad())?;
                let unit = match &s[at..] {
                    "s" => 1.0,
                    "m" => 60.0,
                    "h" => 3600.0,
                    _ => return Err(bad()),
                };
                let seconds = value * unit;
                if !seconds.is_finite() || seconds > 1e9 {
                    return Err(bad());
                }
                CheckpointEvery::Time(Duration::from_secs_f64(seconds))
            }
        };
        match every {
            CheckpointEvery::Steps(0) => Err("must be at least 1 step".into()),
            CheckpointEvery::Time(d) if d.is_zero() => Err("must be longer than 0 s".into()),
            every => Ok(CheckpointEveryArg(every)),
        }
    }
}

/// `--early-stop`: a patience in epochs, or off.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EarlyStop {
    /// Train every epoch and keep the last.
    Off,
    /// Stop after this many epochs without a better AUC on the stopping rows.
    Patience(usize),
}

impl std::str::FromStr for EarlyStop {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "off" | "none" | "no" => Ok(EarlyStop::Off),
            _ => match s.parse::<usize>() {
                Ok(0) => Err("must be at least 1 (or off)".into()),
                Ok(n) => Ok(EarlyStop::Patience(n)),
                Err(_) => Err(format!("{s:?} is neither a number of epochs nor off")),
            },
        }
    }
}

/// The training settings this run took from the data rather than from a flag, as
/// phrases for the run's first lines (config.json saves them all).
fn chosen_defaults(
    args: &TrainArgs,
    settings: &riskgrad::model_io::TrainSettings,
    fit_rows: usize,
) -> Vec<String> {
    let (batch, epochs, patience) = (settings.batch, settings.epochs, settings.early_stop);
    let mut chosen = Vec::new();
    if args.batch.is_none() {
        chosen.push(match batch == fit_rows {
            true => format!("batch {batch} (every training row)"),
            false => format!("batch {batch}"),
        });
    }
    if args.epochs.is_none() {
        let steps = epochs * (fit_rows / batch.max(1)).max(1);
        chosen.push(match patience {
            Some(_) => format!("at most {epochs} epochs ({steps} optimizer steps)"),
            None => format!("{epochs} epochs ({steps} optimizer steps)"),
        });
    }
    if let (None, Some(p)) = (args.early_stop, patience) {
        chosen.push(format!(
            "early stopping after {p} epochs (at least {PATIENCE_STEPS} steps) without a better AUC on {:.0}% of the training rows (--stop-split), keeping the best epoch",
            100.0 * args.stop_split
        ));
    }
    if let (None, 2..) = (args.members, settings.members) {
        chosen.push(format!(
            "{} member networks averaged (--members), each with its own initial weights{}",
            settings.members,
            match settings.stop_split {
                Some(_) => " and stopping rows",
                None => "",
            }
        ));
    }
    chosen
}

pub fn run(args: &TrainArgs) -> Result<()> {
    let started = Instant::now();
    // Flags that need no data are checked before any is read, and nothing is created
    // until training starts.
    super::log::set(args.log);
    check_flags(args)?;
    if args.cv.is_some() {
        return super::cross_validate::run(args, started);
    }
    let out = model_dir(args);
    let (resume, resumed_from) = match &args.resume {
        Some(dir) => {
            // An interrupted retraining's checkpoint first, else the model's own.
            let Some(path) = [NEXT_CHECKPOINT_FILE, CHECKPOINT_FILE]
                .map(|name| dir.join(name))
                .into_iter()
                .find(|p| p.exists())
            else {
                return Err(Error::flag(
                    "--resume",
                    format!("{} holds no {CHECKPOINT_FILE}", dir.display()),
                ));
            };
            (Some(Checkpoint::load(&path)?), Some(path))
        }
        None => (None, None),
    };
    let opts = prepare_options(args)?;
    let dates = date_range_of(args)?;
    let mut prepared = match &args.data.data {
        None => prepare_bundled(&opts)?,
        Some(path) => prepare(path, &opts)?,
    };
    report_dropped(&prepared);
    // A network scores its validation rows after training (and its members are weighed
    // on them), so none is an error before any training, not after the first member.
    if prepared.val.y.is_empty() && !matches!(args.model, ModelKind::Logistic) {
        return Err(Error::flag(
            "--val-split",
            format!(
                "leaves no validation rows of the {} rows prepared: a network needs some to be scored; raise --val-split or give more rows (--model logistic trains without them)",
                prepared.train.y.len()
            ),
        ));
    }
    if let Some(problem) = riskgrad::train::unrankable(&prepared.val.y, "validation") {
        eprintln!(
            "note: {problem}: the model trains, but its AUC and KS there are not defined (NaN); a larger --val-split gives figures"
        );
    }
    if matches!(args.model, ModelKind::Logistic) {
        if args.resume.is_some() {
            return Err(Error::flag(
                "--resume",
                "a logistic model is solved in one go; there is nothing to resume",
            ));
        }
        let pos_weight = parse_pos_weight(&args.pos_weight, prepared.auto_pos_weight())?;
        let facts = run_facts(args, dates, started);
        return super::train_logistic::run(args, &prepared, pos_weight, &facts, &out);
    }
    if let (Some(ck), Some(dir)) = (&resume, &args.resume) {
        // The epochs counted are the current member's: say which, in a run of several.
        let member = match ck.settings.members {
            1 => String::new(),
            n => format!(" of member {}/{n}", ck.finished_members.len() + 1),
        };
        match ck.state.within_epoch {
            Some(m) => eprintln!(
                "resuming {} in epoch {}{member}, after step {}",
                dir.display(),
                ck.state.epoch + 1,
                m.steps_done
            ),
            None => eprintln!(
                "resuming {} after epoch {}{member}",
                dir.display(),
                ck.state.epoch
            ),
        }
    }
    // A resumed run goes on in its checkpoint; a new one beside a saved model writes
    // checkpoint.next until its own model replaces that one (NEXT_CHECKPOINT_FILE).
    let checkpoint = match resumed_from {
        Some(path) if same_dir(path.parent(), &out) => path,
        _ if out.join(riskgrad::model_io::WEIGHTS_FILE).exists() => out.join(NEXT_CHECKPOINT_FILE),
        _ => out.join(CHECKPOINT_FILE),
    };
    let writes_next = checkpoint.ends_with(NEXT_CHECKPOINT_FILE);
    let watch = CheckpointWatch::new(checkpoint.clone());
    let result = train_and_write(
        args,
        &mut prepared,
        resume.as_ref(),
        (&out, &checkpoint),
        dates,
        started,
    )
    .and_then(|()| match writes_next {
        // The run's model is in place: its checkpoint is now the model's own.
        true if checkpoint.exists() => std::fs::rename(&checkpoint, out.join(CHECKPOINT_FILE))
            .map_err(|e| Error::io(&checkpoint, e)),
        _ => Ok(()),
    });
    watch.settle(&result);
    result
}

/// Whether `dir` is `out` (by path, else the same directory reached another way).
fn same_dir(dir: Option<&Path>, out: &Path) -> bool {
    dir.is_some_and(|d| {
        d == out
            || std::fs::canonicalize(d)
                .ok()
                .is_some_and(|d| std::fs::canonicalize(out).is_ok_and(|o| o == d))
    })
}

/// The network's training, then its files: `run` once the data is prepared.
fn train_and_write(
    args: &TrainArgs,
    prepared: &mut Prepared,
    resume: Option<&Checkpoint>,
    (out, checkpoint): (&Path, &Path),
    dates: Option<DateRange>,
    started: Instant,
) -> Result<()> {
    let mut device = RunDevice::new(&args.device, args.tune.mode, args.precision)?;
    let mut lock = None;
    let trained = train_network(
        args,
        prepared,
        Run {
            device: &mut device,
            resume,
            checkpoint: Some(checkpoint.to_path_buf()),
            out,
            verbose: true,
            lock: &mut lock,
        },
    )?;
    // The training rows' score and column distributions, for `riskgrad monitor`.
    let stability = Baseline::scored(
        device.current()?,
        &trained.model,
        &trained.params,
        &[&prepared.train.x],
        prepared.profile.clone(),
    )?;
    write_single_run(
        &run_facts(args, dates, started),
        prepared,
        &trained,
        &stability,
        resume,
        out,
    )
}

/// After the error line of a training that failed (an error, or a print that failed)
/// once it had written a checkpoint, a note that the checkpoint stays in the model
/// directory and how to continue from it. A stop by a signal says so in its own message.
struct CheckpointWatch {
    path: PathBuf,
    before: Option<std::time::SystemTime>,
    settled: bool,
}

impl CheckpointWatch {
    fn new(path: PathBuf) -> Self {
        let before = Self::written(&path);
        CheckpointWatch {
            path,
            before,
            settled: false,
        }
    }

    fn written(path: &Path) -> Option<std::time::SystemTime> {
        std::fs::metadata(path).and_then(|m| m.modified()).ok()
    }

    /// The run ended with `result`: a success or a stop by signal needs no note.
    fn settle(mut self, result: &Result<()>) {
        self.settled = matches!(result, Ok(()) | Err(Error::Interrupted { .. }));
    }
}

impl Drop for CheckpointWatch {
    fn drop(&mut self) {
        let now = Self::written(&self.path);
        if self.settled || now.is_none() || now == self.before {
            return;
        }
        let dir = self
            .path
            .parent()
            .map_or(".".into(), |d| d.display().to_string());
        super::note_after_error(format!(
            "{dir} keeps the checkpoint this run wrote: `riskgrad train --resume {dir}` and the same flags continue it"
        ));
    }
}

/// The `--date` column's range (read before training, so a bad date stops the run
/// before it starts).
pub(super) fn date_range_of(args: &TrainArgs) -> Result<Option<DateRange>> {
    let Some(column) = &args.date else {
        return Ok(None);
    };
    if args.data.target.as_deref() == Some(column.as_str()) {
        return Err(Error::flag(
            "--date",
            format!(
                "{column} is the target (--target); name the column that holds each row's date"
            ),
        ));
    }
    match &args.data.data {
        None => Err(Error::flag(
            "--date",
            "the bundled Taiwan data has no date column",
        )),
        Some(path) => date_range(path, column).map(Some),
    }
}

/// What the run's files record that the flags say: the data's name, the columns the
/// flags left out (for the model card), the dates, the seed.
pub(super) fn run_facts(
    args: &TrainArgs,
    date_range: Option<DateRange>,
    started: Instant,
) -> RunFacts {
    let mut dropped_by_caller: Vec<(String, String)> = args
        .data
        .drop
        .iter()
        .map(|name| (name.clone(), "--drop".into()))
        .collect();
    if let Some(date) = &args.date {
        dropped_by_caller.push((date.clone(), "the date, --date".into()));
    }
    RunFacts {
        data_name: args.data.name(),
        dropped_by_caller,
        date_range,
        seed: args.seed,
        started,
    }
}

/// The flags that set up or train a network and that `args` gives other values than
/// their defaults (which clap supplies: `train` parsed with no flags), by name.
fn network_flags_given(args: &TrainArgs) -> Vec<&'static str> {
    #[derive(clap::Parser)]
    struct Defaults {
        #[command(flatten)]
        args: TrainArgs,
    }
    let Ok(defaults) = <Defaults as clap::Parser>::try_parse_from(["train"]) else {
        return Vec::new();
    };
    let settings = |a: &TrainArgs| -> Vec<(&'static str, String)> {
        vec![
            ("--hidden", format!("{:?}", a.hidden)),
            ("--activation", format!("{:?}", a.activation)),
            ("--dropout", format!("{:?}", a.dropout)),
            ("--epochs", format!("{:?}", a.epochs)),
            ("--batch", format!("{:?}", a.batch)),
            ("--lr", format!("{:?}", a.lr)),
            ("--optimizer", format!("{:?}", a.optimizer)),
            ("--momentum", format!("{:?}", a.momentum)),
            ("--weight-decay", format!("{:?}", a.weight_decay)),
            ("--early-stop", format!("{:?}", a.early_stop)),
            ("--stop-split", format!("{:?}", a.stop_split)),
            ("--members", format!("{:?}", a.members)),
            ("--checkpoint-every", format!("{:?}", a.checkpoint_every)),
            ("--conv-channels", format!("{:?}", a.conv_channels)),
            ("--conv-kernel", format!("{:?}", a.conv_kernel)),
            ("--pool", format!("{:?}", a.pool)),
            ("--dense", format!("{:?}", a.dense)),
            ("--bidirectional", format!("{:?}", a.bidirectional)),
            ("--device", format!("{:?}", a.device)),
        ]
    };
    settings(args)
        .into_iter()
        .zip(settings(&defaults.args))
        .filter(|(given, default)| given.1 != default.1)
        .map(|(given, _)| given.0)
        .collect()
}

/// The directory the run writes: `--out`, else the resumed run's, else runs/latest.
pub(super) fn model_dir(args: &TrainArgs) -> PathBuf {
    args.out
        .clone()
        .or_else(|| args.resume.clone())
        .unwrap_or_else(|| PathBuf::from("runs/latest"))
}

/// Checks the flags that need no data.
fn check_flags(args: &TrainArgs) -> Result<()> {
    if args.lr.is_infinite() {
        return Err(Error::flag(
            "--lr",
            "is beyond the range of a 32-bit float (about 3.4e38); try 1e-3",
        ));
    }
    if args.lr.is_nan() || args.lr <= 0.0 {
        return Err(Error::flag("--lr", "must be a positive number"));
    }
    if !(0.0..1.0).contains(&args.momentum) {
        return Err(Error::flag(
            "--momentum",
            format!("{} must be at least 0 and below 1", args.momentum),
        ));
    }
    // Each AdamW step scales the weights by 1 - lr·decay: at 1 or more they flip sign.
    let decay_flips = args.optimizer == OptimizerKind::Adamw && args.lr * args.weight_decay >= 1.0;
    if args.weight_decay.is_nan() || args.weight_decay < 0.0 || decay_flips {
        return Err(Error::flag(
            "--weight-decay",
            format!(
                "{} must be at least 0 and below 1 / --lr ({}): each step scales the weights by 1 - lr·decay",
                args.weight_decay,
                1.0 / args.lr
            ),
        ));
    }
    if args.epochs == Some(0) {
        return Err(Error::flag("--epochs", "must be at least 1"));
    }
    if !(args.stop_split > 0.0 && args.stop_split < 1.0) {
        return Err(Error::flag(
            "--stop-split",
            format!("{} must be above 0 and below 1", args.stop_split),
        ));
    }
    if args.batch == Some(0) {
        return Err(Error::flag("--batch", "must be at least 1"));
    }
    if let Some(members) = args.members {
        check_members(members)?;
    }
    if let Some(out) = &args.out {
        if out.exists() && !out.is_dir() {
            return Err(Error::flag(
                "--out",
                format!(
                    "{} is a file; a model is written as a directory (model.safetensors, config.json, metrics.json, the report): name a new or existing directory",
                    out.display()
                ),
            ));
        }
        super::output::check_model_dir_target(out)?;
    }
    let out = model_dir(args);
    if args.cv.is_some() {
        super::output::check_cv_keeps_model(&out, args.ensemble)?;
    }
    if let Some(data) = &args.data.data {
        super::output::check_data_outside_model_dir(&out, data)?;
    }
    riskgrad::nn::check_dropout(args.dropout)?;
    if matches!(args.model, ModelKind::Logistic) {
        let unused = network_flags_given(args);
        if !unused.is_empty() {
            eprintln!(
                "note: --model logistic is solved in one go on the prepared features; it does not use {}, which set up and train the networks",
                unused.join(", ")
            );
        }
    } else {
        // A setting of another optimizer's is said, not silently dropped.
        let given = network_flags_given(args);
        for (flag, optimizer, name) in [
            ("--momentum", OptimizerKind::Sgd, "sgd"),
            ("--weight-decay", OptimizerKind::Adamw, "adamw"),
        ] {
            if given.contains(&flag) && args.optimizer != optimizer {
                eprintln!(
                    "note: {flag} is a setting of --optimizer {name}; this run's optimizer does not use it"
                );
            }
        }
    }
    if !args.monotone.is_empty() && matches!(args.model, ModelKind::Logistic) {
        return Err(Error::flag(
            "--monotone",
            "monotone constraints apply to the networks (mlp, and cnn, lstm and gru in their static features), not to --model logistic",
        ));
    }
    if !args.model.uses_sequences() && (!args.sequence.is_empty() || args.time_order.is_some()) {
        return Err(Error::flag(
            "--sequence",
            "only the sequence models (--model cnn|lstm|gru) read a payment history",
        ));
    }
    super::cross_validate::check_flags(args)
}

/// The data options the flags give (with the payment-history columns for the sequence
/// models).
pub(super) fn prepare_options(args: &TrainArgs) -> Result<PrepareOptions> {
    let mut opts = args.data.options(args.val_split, args.seed)?;
    if let Some(date) = &args.date {
        if !opts.drop.contains(date) {
            opts.drop.push(date.clone());
        }
    }
    if !args.model.uses_sequences() {
        return Ok(opts);
    }
    // A history is one feature per column and step; piecewise-linear bins would make
    // several, which no sequence layout can read.
    match args.data.numeric_encoding.as_deref().map(str::trim) {
        None => opts.numeric_encoding = NumericEncoding::Standard,
        Some("ple") => {
            return Err(Error::flag(
                "--numeric-encoding",
                "ple gives several features per column, and a sequence model (cnn, lstm, gru) reads one per column and step: use standard (the default for these models)",
            ))
        }
        Some("periodic") => {
            return Err(Error::flag(
                "--numeric-encoding",
                "periodic embeds the features of an mlp; a sequence model (cnn, lstm, gru) reads standardised numbers: use standard (the default for these models)",
            ))
        }
        Some(_) => {}
    }
    sequence::prepare_options(opts, &args.sequence, args.data.is_bundled())
}

/// Prints the cells read as missing because they are not numbers in a numeric column,
/// the columns left out without being asked, and the rows without a target.
pub(super) fn report_dropped(prepared: &Prepared) {
    super::data_args::report_odd_cells(&prepared.schema);
    for dropped in &prepared.auto_dropped {
        eprintln!("dropped column {:?} ({})", dropped.name, dropped.reason);
    }
    if prepared.rows_without_target > 0 {
        eprintln!(
            "left out {} rows without a target value",
            prepared.rows_without_target
        );
    }
}

/// Where and how [`train_network`] runs.
pub(super) struct Run<'a> {
    /// The device to open an executor on (`auto` races on this model the first time).
    pub device: &'a mut RunDevice,
    /// The checkpoint a resumed run continues from.
    pub resume: Option<&'a Checkpoint>,
    /// Where to write a checkpoint after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// The output directory, created and locked once every check has passed.
    pub out: &'a Path,
    /// The output directory's lock: taken by the first training that gets this far, and
    /// held by the caller until its files are written.
    pub lock: &'a mut Option<ModelDirClaim>,
    /// Print the run's first lines and every epoch (a cross-validation fold prints less).
    pub verbose: bool,
}

/// Trains the network the flags describe on `prepared` with the library's
/// `train::network::train_network`, saying what the run is as it starts and showing
/// its epochs.
pub(super) fn train_network(
    args: &TrainArgs,
    prepared: &mut Prepared,
    run: Run,
) -> Result<TrainedNetwork> {
    let request = NetworkRequest {
        stopping: match args.early_stop {
            Some(EarlyStop::Off) => Stopping::Off,
            Some(EarlyStop::Patience(n)) => Stopping::Patience(n),
            None => Stopping::Default,
        },
        stop_split: args.stop_split,
        batch: args.batch,
        epochs: args.epochs,
        optimizer: optimizer(args),
        pos_weight: parse_pos_weight(&args.pos_weight, prepared.auto_pos_weight())?,
        seed: args.seed,
        members: match (args.members, args.model.network()) {
            (Some(n), _) => n,
            (None, Some(kind)) => default_members(kind),
            (None, None) => 1,
        },
    };
    let mut printer = RunPrinter {
        args,
        resumed_from_epoch: run.resume.map(|c| c.state.epoch),
        resumed_on: run.resume.map(|c| c.settings.device.clone()),
        verbose: run.verbose,
        out: run.out,
        lock: run.lock,
        device: String::new(),
        progress: None,
    };
    network::train_network(
        &architecture(args)?,
        &request,
        prepared,
        NetworkRun {
            devices: run.device,
            resume: run.resume,
            checkpoint: run.checkpoint,
            checkpoint_every: args.checkpoint_every.map(|c| c.0),
            stop: super::signals::stop_request(),
            data_name: args.data.name(),
            val_split: args.val_split,
        },
        &mut printer,
    )
}

/// The network the flags describe.
fn architecture(args: &TrainArgs) -> Result<Architecture> {
    Ok(Architecture {
        kind: args.model.network().ok_or_else(|| {
            Error::internal("--model logistic is solved by train_logistic, not trained")
        })?,
        hidden: args.hidden.clone(),
        activation: args.activation,
        dropout: args.dropout,
        cnn: CnnLayers {
            conv: args.conv_channels.clone(),
            kernel: args.conv_kernel,
            pool: args.pool,
            dense: Vec::new(),
        },
        dense: args.dense.clone(),
        bidirectional: args.bidirectional,
        monotone: args.monotone.clone(),
        numeric_encoding: args.data.encoding()?,
        sequence: args.sequence.clone(),
        time_order: args.time_order,
    })
}

/// Prints a network run as the library's training reports it: its first lines, the
/// epochs, and claims the model directory when the first step is next.
struct RunPrinter<'a> {
    args: &'a TrainArgs,
    resumed_from_epoch: Option<usize>,
    /// The device the resumed checkpoint trained on, by name (precision included).
    resumed_on: Option<String>,
    verbose: bool,
    out: &'a Path,
    lock: &'a mut Option<ModelDirClaim>,
    /// The device's name, once planned.
    device: String,
    progress: Option<EpochProgress>,
}

impl NetworkObserver for RunPrinter<'_> {
    fn planned(&mut self, plan: &PlannedNetwork, prepared: &Prepared) -> Result<()> {
        for note in plan.notes {
            eprintln!("note: {note}");
        }
        let settings = plan.settings;
        self.device = settings.device.clone();
        // A resume may change the device (and so the precision); its rounding differs.
        if let Some(was) = self
            .resumed_on
            .as_ref()
            .filter(|was| **was != settings.device)
        {
            eprintln!(
                "note: the checkpoint trained on {was} and this run continues on {}: the weights differ from one run on either by their rounding",
                settings.device
            );
        }
        let epoch_rows_name = match plan.carves {
            true => "stop",
            false => "val",
        };
        self.progress = Some(EpochProgress::new(
            settings.batch,
            epoch_rows_name,
            self.verbose,
        ));
        if !self.verbose {
            return Ok(());
        }
        let (args, device) = (self.args, &settings.device);
        let data_name = &settings.data;
        let (train, val) = (&prepared.train, &prepared.val);
        let positives = train.y.iter().chain(&val.y).sum::<f32>() as f64;
        if prepared.val_rows_seen_in_training > 0 {
            eprintln!(
                "note: {} of the {} validation rows are copies of training rows (the file repeats rows): the validation figures are optimistic; remove the duplicates",
                prepared.val_rows_seen_in_training,
                val.rows()
            );
        }
        // A pair read by convention rather than by an obvious spelling (2 = default,
        // 1 = good: the German credit coding) is said, since a file coded the other way
        // would train an inverted model without a word.
        if let Some(enc) = &prepared.schema.target.encoding {
            let obvious = ["1", "true", "yes", "y", "t"]
                .iter()
                .any(|p| enc.positive.eq_ignore_ascii_case(p));
            if !obvious && args.data.positive.is_none() {
                eprintln!(
                    "note: target {:?}: {:?} is read as the default and {:?} as repaid; --positive {:?} says otherwise",
                    prepared.schema.target.name, enc.positive, enc.negative, enc.negative
                );
            }
        }
        eprintln!(
            "{data_name}: {} rows, {} features after preprocessing, {:.1}% positive; {} | device: {device}",
            prepared.n_rows,
            prepared.n_features(),
            100.0 * positives / (train.rows() + val.rows()) as f64,
            match plan.carves {
                true => format!(
                    "fitting on {} rows, early stopping on {}, validating on {}",
                    plan.fit_rows,
                    plan.epoch_rows,
                    val.rows()
                ),
                false => format!(
                    "training on {} rows, validating on {}",
                    train.rows(),
                    val.rows()
                ),
            }
        );
        event(
            "start",
            json!({
                "data": data_name,
                "rows": prepared.n_rows,
                "features": prepared.n_features(),
                "positive_share": positives / (train.rows() + val.rows()) as f64,
                "fit_rows": plan.fit_rows,
                "stopping_rows": if plan.carves { plan.epoch_rows } else { 0 },
                "validation_rows": val.rows(),
                "device": device,
                "device_choice": settings.device_choice,
                "model": plan.model.label(),
                "members": settings.members,
                "batch": settings.batch,
                "epochs": settings.epochs,
                "early_stop": settings.early_stop,
                "resumed_from_epoch": self.resumed_from_epoch,
            }),
        );
        let defaults = chosen_defaults(args, settings, plan.fit_rows);
        if !defaults.is_empty() {
            eprintln!(
                "defaults chosen for this data (flags choose otherwise): {}",
                defaults.join("; ")
            );
        }
        if !args.monotone.is_empty() {
            let said: Vec<String> = args
                .monotone
                .iter()
                .map(|c| format!("{} {}", c.column, c.direction.describe()))
                .collect();
            eprintln!(
                "monotone by construction in: {} (probability of default)",
                said.join(", ")
            );
        }
        Ok(())
    }

    fn started(&mut self, streamed: Option<usize>) -> Result<()> {
        if let (Some(rows), true) = (streamed, self.verbose) {
            eprintln!(
                "note: the training table is larger than {} holds in one buffer: its rows are copied in {rows} at a time, in the order the steps take them (the same result, somewhat slower)",
                self.device
            );
        }
        // Every flag and the data have passed their checks: the run begins here.
        if self.lock.is_none() {
            *self.lock = Some(claim_model_dir(self.out)?);
        }
        Ok(())
    }

    fn event(&mut self, event: FitEvent) {
        if let Some(progress) = &mut self.progress {
            progress.show(event);
        }
    }
}

/// The update rule the flags describe.
fn optimizer(args: &TrainArgs) -> Optimizer {
    let (beta1, beta2, eps) = (0.9, 0.999, 1e-8);
    match args.optimizer {
        OptimizerKind::Sgd => Optimizer::Sgd {
            lr: args.lr,
            momentum: args.momentum,
        },
        OptimizerKind::Adam => Optimizer::Adam {
            lr: args.lr,
            beta1,
            beta2,
            eps,
        },
        OptimizerKind::Adamw => Optimizer::AdamW {
            lr: args.lr,
            beta1,
            beta2,
            eps,
            weight_decay: args.weight_decay,
        },
    }
}

/// Saves a single run's model, metrics.json, model card and report (the library's
/// `train::model_dir`), and prints its figures beside the logistic challenger's.
fn write_single_run(
    facts: &RunFacts,
    prepared: &Prepared,
    trained: &TrainedNetwork,
    stability: &Baseline,
    resume: Option<&Checkpoint>,
    out: &Path,
) -> Result<()> {
    let resumed_from_epoch = resume.map(|c| c.state.epoch);
    let NetworkRunFigures {
        evaluation,
        challenger,
        train_rows_per_second,
    } = save_network_run(out, facts, prepared, trained, stability, resumed_from_epoch)?;
    let saved_epoch = trained.outcome().kept_epoch;
    let saved = match trained.outcomes.len() {
        1 => format!("saved epoch {saved_epoch}"),
        n => format!(
            "saved epochs {} of its {n} members",
            trained
                .outcomes
                .iter()
                .map(|o| o.kept_epoch.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    eprintln!(
        "val AUC side by side: {} {:.4} | challenger ({}) {:.4}",
        trained.model.label(),
        evaluation.auc,
        challenger.model,
        challenger.validation_auc
    );
    let best_auc = evaluation.auc.max(challenger.validation_auc);
    if best_auc >= LEAK_AUC {
        eprintln!(
            "note: a validation AUC of {best_auc:.4} is rarely real in credit data: look for a column that copies the target or is known only after the outcome (a leak), and --drop it"
        );
    }
    let ci = evaluation.auc_ci95.map_or(String::new(), |(lo, hi)| {
        format!(" (95% CI {lo:.4}-{hi:.4})")
    });
    let seconds = facts.started.elapsed().as_secs_f64();
    let done = format!(
        "done in {seconds:.1}s: {saved}: val AUC {:.4}{ci}, KS {:.4}, Gini {:.4}, log loss {:.4}, Brier {:.4}; {:.0} training rows/s; wrote the model, metrics.json, model_card.md and report.html to {}",
        evaluation.auc,
        evaluation.ks,
        evaluation.gini,
        evaluation.log_loss,
        evaluation.brier,
        train_rows_per_second,
        out.display()
    );
    super::log::say_done(
        out,
        json!({"saved_epoch": saved_epoch, "saved_epochs": trained.outcomes.iter().map(|o| o.kept_epoch).collect::<Vec<_>>(), "auc": evaluation.auc, "auc_ci95": evaluation.auc_ci95,
               "ks": evaluation.ks, "gini": evaluation.gini, "log_loss": evaluation.log_loss,
               "brier": evaluation.brier, "challenger_auc": challenger.validation_auc,
               "seconds": seconds, "out": out.display().to_string()}),
        &done,
    )
}

/// A validation AUC from which a leak is suspected.
const LEAK_AUC: f64 = 0.999;

fn parse_pos_weight(value: &str, auto: f32) -> Result<f32> {
    if value == "auto" {
        return Ok(auto);
    }
    match value.parse::<f32>() {
        Ok(w) if w > MAX_POS_WEIGHT && w.is_finite() => Err(Error::flag(
            "--pos-weight",
            format!(
                "{value} is over {MAX_POS_WEIGHT:e}: the non-defaults would all but vanish from the loss (below f32's precision); this data's own ratio (auto) is {auto:.2}"
            ),
        )),
        Ok(w) if w < 1.0 / MAX_POS_WEIGHT && w > 0.0 => Err(Error::flag(
            "--pos-weight",
            format!(
                "{value} is under {:e}: the defaults would all but vanish from the loss; this data's own ratio (auto) is {auto:.2}",
                1.0 / MAX_POS_WEIGHT
            ),
        )),
        Ok(w) if w > 0.0 && w.is_finite() => Ok(w),
        _ => Err(Error::flag(
            "--pos-weight",
            format!("{value:?} is not a positive number or \"auto\""),
        )),
    }
}

/// The largest `--pos-weight`: past it the challenger's Newton solve broke down (1e30)
/// and the network learned nothing from the non-defaults (1e8: val AUC 0.51).
const MAX_POS_WEIGHT: f32 = 1e6;

/// Most time between two progress lines of a headless run (stderr not a terminal), unless
/// `RISKGRAD_PROGRESS_SECONDS` says otherwise.
const HEADLESS_PROGRESS: Duration = Duration::from_secs(10);

/// Draws an epoch's progress bar from `fit`'s events and prints each epoch's line; with
/// no terminal, a plain line at least every `HEADLESS_PROGRESS` instead of the bar.
struct EpochProgress {
    bar: Option<indicatif::ProgressBar>,
    /// stderr is not a terminal (a headless run's log, where no bar is drawn): print a
    /// plain progress line every `headless_every` instead.
    headless: bool,
    headless_every: Duration,
    last_line: Instant,
    epoch: usize,
    /// What the epoch figures are computed on: "val", or "stop" for the stopping rows.
    rows_name: &'static str,
    /// Draw bars and print every epoch; otherwise only warnings.
    verbose: bool,
    started: Instant,
    rows_per_step: f64,
    epochs: usize,
}

impl EpochProgress {
    fn new(batch: usize, rows_name: &'static str, verbose: bool) -> Self {
        let headless_every = std::env::var("RISKGRAD_PROGRESS_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map_or(HEADLESS_PROGRESS, Duration::from_secs_f64);
        EpochProgress {
            bar: None,
            headless: !std::io::stderr().is_terminal(),
            headless_every,
            last_line: Instant::now(),
            epoch: 0,
            rows_name,
            verbose,
            started: Instant::now(),
            rows_per_step: batch as f64,
            epochs: 0,
        }
    }

    fn show(&mut self, fit_event: FitEvent) {
        if !self.verbose && !matches!(fit_event, FitEvent::Warning(_)) {
            return;
        }
        match fit_event {
            FitEvent::MemberStart { member, members } => {
                event("member", json!({"member": member + 1, "members": members}));
                eprintln!("member {}/{members}:", member + 1);
            }
            FitEvent::EpochStart {
                epoch,
                epochs,
                steps,
            } => {
                let bar = indicatif::ProgressBar::new(steps as u64);
                bar.set_style(
                    indicatif::ProgressStyle::with_template(
                        "epoch {prefix} [{bar:30}] {pos}/{len} steps  {msg}",
                    )
                    .expect("valid template")
                    .progress_chars("=> "),
                );
                bar.set_prefix(format!("{epoch}/{epochs}"));
                self.bar = Some(bar);
                self.started = Instant::now();
                self.epochs = epochs;
                self.epoch = epoch;
            }
            FitEvent::Steps { done, total, loss } => {
                let rate = done as f64 * self.rows_per_step / self.started.elapsed().as_secs_f64();
                if (self.headless || super::log::json())
                    && self.last_line.elapsed() >= self.headless_every
                {
                    self.last_line = Instant::now();
                    event(
                        "progress",
                        json!({"epoch": self.epoch, "epochs": self.epochs, "step": done,
                               "steps": total, "loss": loss, "rows_per_second": rate}),
                    );
                    if self.headless {
                        let loss = loss.map_or(String::new(), |l| format!(", loss {l:.4}"));
                        eprintln!(
                            "epoch {}/{}: step {done}/{total}{loss}, {rate:.0} rows/s",
                            self.epoch, self.epochs
                        );
                    }
                }
                if let Some(bar) = &self.bar {
                    bar.set_position(done as u64);
                    let loss = loss.map_or(String::new(), |l| format!("loss {l:.4}  "));
                    bar.set_message(format!("{loss}{rate:.0} rows/s"));
                }
            }
            FitEvent::EpochEnd(report) => {
                if let Some(bar) = self.bar.take() {
                    bar.finish_and_clear();
                }
                self.last_line = Instant::now();
                event(
                    "epoch",
                    json!({"epoch": report.epoch, "epochs": self.epochs,
                           "train_loss": report.train_loss,
                           "figures_on": if self.rows_name == "stop" { "stopping rows" } else { "validation rows" },
                           "auc": report.validation.auc, "ks": report.validation.ks,
                           "log_loss": report.validation.log_loss,
                           "seconds": report.seconds, "rows_per_second": report.rows_per_second}),
                );
                eprintln!(
                    "epoch {:>3}/{}  train loss {:.4}  {} AUC {:.4}  KS {:.4}  log loss {:.4}  {:.0} rows/s",
                    report.epoch,
                    self.epochs,
                    report.train_loss,
                    self.rows_name,
                    report.validation.auc,
                    report.validation.ks,
                    report.validation.log_loss,
                    report.rows_per_second
                );
            }
            FitEvent::Warning(message) => {
                event("warning", json!({ "message": message }));
                eprintln!("warning: {message}")
            }
            FitEvent::Checkpointed { epoch, step } => {
                event("checkpoint", json!({ "epoch": epoch, "step": step }));
                if self.headless {
                    eprintln!(
                        "epoch {epoch}/{}: checkpoint written at step {step}",
                        self.epochs
                    );
                }
            }
            FitEvent::EarlyStop {
                best_epoch,
                best_auc,
                patience,
            } => {
                event(
                    "early_stop",
                    json!({"best_epoch": best_epoch, "best_auc": best_auc, "patience": patience}),
                );
                eprintln!(
                    "stopping early: no better stopping-rows AUC than {best_auc:.4} (epoch {best_epoch}) for {patience} epochs"
                )
            }
        }
    }
}

/// The choices of `--activation`, by `Act::name`: every activation but identity (a stack
/// of linear layers is one linear layer) and sin (the periodic embedding's, not a hidden
/// layer's).
fn hidden_activations() -> impl clap::builder::TypedValueParser<Value = Act> {
    use clap::builder::TypedValueParser;
    let names = Act::ALL
        .into_iter()
        .filter(|&a| !matches!(a, Act::Identity | Act::Sin))
        .map(Act::name);
    clap::builder::PossibleValuesParser::new(names)
        .map(|name| name.parse::<Act>().expect("every offered name parses"))
}
