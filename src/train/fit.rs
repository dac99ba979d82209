//! `fit`: the training loop as a library function. It runs a [`Trainer`]'s epochs, keeps
//! the best epoch for early stopping, writes a checkpoint after every epoch, stops on a
//! loss that is no longer a number, and tells its caller what happens through
//! [`FitEvent`]s. The CLI draws progress bars from those events; examples and tests
//! just train.

use super::{EpochEnd, EpochReport, Trainer};
use crate::checkpoint::{BestEpoch, Checkpoint, FinishedMember};
use crate::data::Preprocessor;
use crate::error::{Error, Result, Setting};
use crate::model_io::TrainSettings;
use crate::nn::ModelSpec;
use std::cell::Cell;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long to train and what to keep.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Epochs in all, counting those of a resumed checkpoint.
    pub epochs: usize,
    /// Stop after this many epochs without a better validation AUC, and keep the best
    /// epoch's weights; `None` trains every epoch and keeps the last.
    pub early_stop: Option<usize>,
    /// Where to write a checkpoint after every epoch, and what it records.
    pub checkpoint: Option<CheckpointTarget>,
    /// Set from elsewhere (a signal handler) to stop soon: the current run of steps
    /// finishes, a checkpoint of that point is written, and `fit` returns
    /// [`Error::Interrupted`]. Resuming from it gives the same result as a run that never
    /// stopped.
    pub stop: Option<StopRequest>,
    /// Also checkpoint inside an epoch this often (with a `checkpoint` target), so a
    /// crash or a kill loses at most that much. Pausing to checkpoint changes nothing
    /// in the result.
    pub checkpoint_every: Option<CheckpointEvery>,
}

/// How often [`fit`] checkpoints inside an epoch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CheckpointEvery {
    /// After this much wall time.
    Time(Duration),
    /// After this many optimizer steps.
    Steps(usize),
}

/// A flag another thread or a signal handler sets to ask a running `fit` to stop.
pub type StopRequest = Arc<AtomicBool>;

/// A checkpoint file and the run's description saved in it (so a resumed run can check
/// it trains the same model on the same data the same way).
#[derive(Clone, Debug)]
pub struct CheckpointTarget {
    /// The checkpoint file.
    pub path: PathBuf,
    /// The run's settings.
    pub settings: TrainSettings,
    /// The model trained.
    pub model: ModelSpec,
    /// The preprocessing fitted on the training rows.
    pub preprocessing: Preprocessor,
    /// Model input column means of the training rows.
    pub baseline: Vec<f32>,
    /// The members of the run finished before the one `fit` trains.
    pub finished_members: Vec<FinishedMember>,
}

/// What `fit` reports as it goes.
#[derive(Debug)]
pub enum FitEvent<'a> {
    /// A run of several member networks begins training one (not sent for a run of
    /// one). `fit` never sends it; the member loop of `train::network` does.
    MemberStart {
        /// The member about to train, from 0.
        member: usize,
        /// Members in all.
        members: usize,
    },
    /// An epoch begins: its number, the epochs in all, and its steps.
    EpochStart {
        /// The epoch about to run (1-based).
        epoch: usize,
        /// Epochs in all.
        epochs: usize,
        /// Optimizer steps in this epoch.
        steps: usize,
    },
    /// Steps done so far in this epoch, and the running loss where reading it is free.
    Steps {
        /// Steps done.
        done: usize,
        /// Steps in the epoch.
        total: usize,
        /// The mean training loss so far, if the executor reads it for free.
        loss: Option<f64>,
    },
    /// An epoch finished (training and validation pass).
    EpochEnd(&'a EpochReport),
    /// A checkpoint was written inside an epoch (`FitOptions::checkpoint_every`).
    Checkpointed {
        /// The epoch in progress.
        epoch: usize,
        /// Its steps done.
        step: usize,
    },
    /// Something the caller should tell the user, training goes on.
    Warning(String),
    /// Training stops before the last epoch: no better validation AUC for `patience`
    /// epochs since `best_epoch`.
    EarlyStop {
        /// The best epoch so far.
        best_epoch: usize,
        /// Its validation AUC.
        best_auc: f64,
        /// The patience that ran out.
        patience: usize,
    },
}

/// What a finished `fit` leaves: the trainer holds the weights to save.
#[derive(Clone, Debug)]
pub struct FitOutcome {
    /// Every epoch's report, those of a resumed checkpoint first.
    pub history: Vec<EpochReport>,
    /// How many of them this call ran.
    pub epochs_run: usize,
    /// The epoch whose weights the trainer now holds (the best with early stopping,
    /// else the last).
    pub kept_epoch: usize,
}

impl FitOutcome {
    /// The reports of the epochs this call ran.
    pub fn ran(&self) -> &[EpochReport] {
        &self.history[self.history.len() - self.epochs_run..]
    }
}

/// Trains `trainer` to `options.epochs` epochs in all, continuing from `resume` when
/// given (a checkpoint of the same model, data and settings: see [`Checkpoint`]).
///
/// Errors: [`Error::Diverged`] when the training loss or a validation score stops being
/// finite (naming the last checkpoint this run kept); an error when there is no epoch
/// left to run.
pub fn fit(
    trainer: &mut Trainer,
    options: &FitOptions,
    resume: Option<&Checkpoint>,
    on_event: &mut dyn FnMut(FitEvent),
) -> Result<FitOutcome> {
    if let Some(problem) = unrankable(trainer.validation_labels(), "validation") {
        if options.early_stop.is_some() {
            return Err(Error::invalid(
                Setting::EarlyStop,
                format!("early stopping compares validation AUCs, and {problem}"),
            ));
        }
        on_event(FitEvent::Warning(format!(
            "{problem}: the validation AUC and KS will be NaN"
        )));
    }
    let mut history = Vec::new();
    let mut best: Option<BestEpoch> = None;
    if let Some(ck) = resume {
        trainer.import_state(&ck.state)?;
        history = ck.history.clone();
        best = ck.best.clone();
    }
    let first = trainer.epochs_done() + 1;
    if first > options.epochs {
        return Err(Error::invalid(
            Setting::Epochs,
            format!(
                "the checkpoint already holds {} epochs; ask for more to resume",
                trainer.epochs_done()
            ),
        ));
    }
    let mut epochs_run = 0;
    let signalled = || {
        options
            .stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::SeqCst))
    };
    // Steps and time since the last checkpoint, for `checkpoint_every`.
    let since_checkpoint = Cell::new((Instant::now(), 0usize));
    let mut epoch = first;
    // Set when the epoch in progress paused for a checkpoint and goes on.
    let mut paused = false;
    while epoch <= options.epochs {
        if !paused {
            on_event(FitEvent::EpochStart {
                epoch,
                epochs: options.epochs,
                steps: trainer.steps_per_epoch(),
            });
        }
        paused = false;
        let checkpoint_due = || {
            let (at, steps) = since_checkpoint.get();
            options.checkpoint.is_some()
                && match options.checkpoint_every {
                    Some(CheckpointEvery::Time(d)) => at.elapsed() >= d,
                    Some(CheckpointEvery::Steps(n)) => steps >= n,
                    None => false,
                }
        };
        let last_done = Cell::new(trainer.mid_epoch_steps());
        let end = trainer.epoch_until(
            &mut |done, total, loss| {
                let (at, steps) = since_checkpoint.get();
                since_checkpoint.set((at, steps + done - last_done.replace(done)));
                on_event(FitEvent::Steps { done, total, loss })
            },
            &|| signalled() || checkpoint_due(),
        );
        let report = match end {
            Ok(EpochEnd::Done(r)) => r,
            Ok(EpochEnd::Stopped { steps_done, steps }) => {
                if let Some(target) = &options.checkpoint {
                    save_checkpoint(trainer, target, &history, &best)?;
                }
                since_checkpoint.set((Instant::now(), 0));
                if !signalled() {
                    on_event(FitEvent::Checkpointed {
                        epoch,
                        step: steps_done,
                    });
                    paused = true;
                    continue;
                }
                return Err(Error::Interrupted {
                    epoch,
                    step: steps_done,
                    steps,
                    checkpoint: options.checkpoint.as_ref().map(|t| t.path.clone()),
                });
            }
            Err(Error::Diverged { epoch, what, .. }) => {
                // Only a checkpoint this run wrote, or the one it resumed in place, is
                // named: a file some other run left at the path is not this run's.
                let done = trainer.epochs_done() - 1;
                let kept = options.checkpoint.as_ref().and_then(|target| {
                    let ours = epochs_run > 0 || (resume.is_some() && target.path.exists());
                    (ours && done > 0).then(|| (done, target.path.clone()))
                });
                return Err(Error::Diverged { epoch, what, kept });
            }
            Err(e) => return Err(e),
        };
        on_event(FitEvent::EpochEnd(&report));
        let auc = report.validation.auc;
        history.push(report);
        epochs_run += 1;
        if options.early_stop.is_some() && best.as_ref().is_none_or(|b| auc > b.auc) {
            best = Some(BestEpoch {
                epoch,
                auc,
                params: trainer.params()?,
            });
        }
        if let Some(target) = &options.checkpoint {
            save_checkpoint(trainer, target, &history, &best)?;
            since_checkpoint.set((Instant::now(), 0));
        }
        if let (Some(patience), Some(b)) = (options.early_stop, &best) {
            if epoch - b.epoch >= patience {
                on_event(FitEvent::EarlyStop {
                    best_epoch: b.epoch,
                    best_auc: b.auc,
                    patience,
                });
                break;
            }
        }
        epoch += 1;
    }
    let kept_epoch = match &best {
        Some(b) => {
            trainer.set_params(&b.params)?;
            b.epoch
        }
        None => trainer.epochs_done(),
    };
    Ok(FitOutcome {
        history,
        epochs_run,
        kept_epoch,
    })
}

/// Writes the trainer's state now (an epoch's end, or where a stop request found it).
fn save_checkpoint(
    trainer: &mut Trainer,
    target: &CheckpointTarget,
    history: &[EpochReport],
    best: &Option<BestEpoch>,
) -> Result<()> {
    Checkpoint {
        state: trainer.export_state()?,
        history: history.to_vec(),
        best: best.clone(),
        settings: target.settings.clone(),
        model: target.model.clone(),
        preprocessing: target.preprocessing.clone(),
        baseline: target.baseline.clone(),
        finished_members: target.finished_members.clone(),
    }
    .save(&target.path)
}

/// Why the labels of `rows` (the rows' name: "validation", "stopping") cannot rank a
/// model (AUC needs both classes), if they cannot.
pub fn unrankable(labels: &[f32], rows: &str) -> Option<String> {
    let positives = labels.iter().filter(|&&y| y > 0.5).count();
    match (labels.len(), positives) {
        (1, _) => Some(format!("there is 1 {rows} row")),
        (n, _) if n < 2 => Some(format!("there are {n} {rows} rows")),
        (n, 0) => Some(format!("the {n} {rows} rows are all non-defaults")),
        (n, p) if p == n => Some(format!("the {n} {rows} rows are all defaults")),
        _ => None,
    }
}
