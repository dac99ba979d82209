//! One network trained on a prepared split, as `riskgrad train` trains it: early
//! stopping decides on rows carved from the training split (so the validation rows are
//! scored once, at the end, with the kept weights), the schedule comes from the table's
//! size where the caller gives none, [`fit`] runs the epochs, and the validation rows
//! are scored with the kept weights.
//!
//! A run may train several **members**, one after another on the same device: member
//! `m` stops early on its own carve of the training rows and starts from its own
//! weights and shuffles ([`member_seed`]), and the model saved is their ensemble, which
//! scores the mean of their probabilities. Averaging networks whose errors differ is the
//! cheapest accuracy there is on a small table (BENCHMARKS.md, "Five-fold
//! cross-validation against baselines"); member 0 is the run a single network would be.
//!
//! In two steps, so that a caller can open its device for the rows the run will train
//! on and say what the run will be before it starts: [`NetworkPlan::new`] carves the
//! rows and chooses the schedule (no device yet), [`NetworkPlan::train`] trains.
//! [`train_network`] takes both steps for an [`Architecture`] on a prepared split: on
//! the devices a front end's [`TrainingDevices`] opens, telling its [`NetworkObserver`]
//! what the run is and how its epochs go.

use super::defaults::{member_seed, schedule, Schedule, Stopping};
use super::fit::{
    fit, CheckpointEvery, CheckpointTarget, FitEvent, FitOptions, FitOutcome, StopRequest,
};
use super::{Split, TrainConfig, Trainer};
use crate::checkpoint::{Checkpoint, FinishedMember};
use crate::data::sequence::SequenceLayout;
use crate::data::Prepared;
use crate::engine::exec::Executor;
use crate::engine::gpu::DeviceChoice;
use crate::engine::graph::Optimizer;
use crate::engine::WhenNoGpu;
use crate::error::{Error, Result, Setting};
use crate::model_io::TrainSettings;
use crate::nn::architecture::Architecture;
use crate::nn::{pack_ensemble, ModelSpec};
use crate::scoring::Scorer;
use std::path::PathBuf;

/// Rows per forward pass when scoring the validation rows after training.
const SCORE_CHUNK: usize = 4096;

/// How to train: everything the caller decides, typed (the CLI from its flags).
#[derive(Clone, Copy, Debug)]
pub struct NetworkRequest {
    /// Early stopping: off, a given patience, or the default.
    pub stopping: Stopping,
    /// The fraction of the training rows carved off to decide early stopping.
    pub stop_split: f64,
    /// Rows per step; `None`: chosen from the table.
    pub batch: Option<usize>,
    /// Epochs (a ceiling with early stopping); `None`: chosen from the table.
    pub epochs: Option<usize>,
    /// The optimizer and its settings.
    pub optimizer: Optimizer,
    /// The weight of a positive's loss term.
    pub pos_weight: f32,
    /// The seed of the carve, the initial weights and the shuffles.
    pub seed: u64,
    /// Networks trained and averaged (1: one network); each member stops on its own
    /// carve of the training rows.
    pub members: usize,
}

/// A run planned on a training split: the rows it fits on and decides on, its schedule
/// and configuration.
pub struct NetworkPlan {
    /// Member 0's rows fitted on and rows early stopping decides on, carved from the
    /// training split; `None` without early stopping. The other members carve theirs
    /// as they start, with their own seeds.
    carved: Option<(Split, Split)>,
    /// The fraction of the training rows each member carves off.
    stop_split: f64,
    /// Networks trained and averaged.
    pub members: usize,
    /// Rows per step, epochs, patience.
    pub schedule: Schedule,
    /// What the trainer runs with.
    pub config: TrainConfig,
    /// What the caller should tell the user about the plan (early stopping given up on a
    /// table too small for it).
    pub notes: Vec<String>,
}

/// What [`NetworkPlan::train`] gives back.
pub struct TrainedWeights {
    /// Each member's kept weights (the best epoch's with early stopping, else the last).
    pub member_params: Vec<Vec<f32>>,
    /// Each member's epochs, and which it kept.
    pub outcomes: Vec<FitOutcome>,
    /// The kept weights' probabilities for the validation rows, in order; `None` with
    /// several members, whose ensemble has another parameter layout than the executor's
    /// plans (see [`score_ensemble`]).
    pub probs: Option<Vec<f32>>,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
}

impl NetworkPlan {
    /// Plans a run on `train` as `request` says.
    ///
    /// Errors: a `stop_split` that leaves one class to fit on (`Setting::StopSplit`);
    /// members outside `1..=MAX_MEMBERS` (`Setting::Members`).
    pub fn new(train: &Split, request: &NetworkRequest) -> Result<NetworkPlan> {
        super::defaults::check_members(request.members)?;
        let mut stopping = request.stopping;
        let mut carved =
            (stopping != Stopping::Off).then(|| train.carve(request.stop_split, request.seed));
        let mut notes = Vec::new();
        if let (Stopping::Default, Some((_, stop))) = (stopping, &carved) {
            // The default gives way on a table too small for it; an asked-for patience
            // is refused by `fit` with the reason.
            if let Some(problem) = super::unrankable(&stop.y, "stopping") {
                notes.push(format!(
                    "no early stopping: of the training rows, the stopping rows (the stop split) are too few to rank ({problem}); every epoch trains on all of them"
                ));
                (stopping, carved) = (Stopping::Off, None);
            }
        }
        if let Some((fit_rows, _)) = &carved {
            // Only a split of 0.5 or more can leave a class wholly to the stopping rows
            // (each class keeps round((1 - f) n) of its n rows to fit on).
            let labels = fit_rows.y.iter().copied();
            if let Some(what) = crate::data::one_class_rows(labels, "training") {
                return Err(Error::invalid(
                    Setting::StopSplit,
                    format!(
                        "{} leaves to fit on {what}; the rest decide when to stop. A model needs both classes to learn from: a smaller split",
                        request.stop_split
                    ),
                ));
            }
        }
        let fit_rows = carved.as_ref().map_or(train.rows(), |(fit, _)| fit.rows());
        let schedule = schedule(fit_rows, request.batch, request.epochs, stopping);
        let config = TrainConfig {
            epochs: schedule.epochs,
            batch: schedule.batch,
            optimizer: request.optimizer,
            seed: request.seed,
            pos_weight: request.pos_weight,
        };
        Ok(NetworkPlan {
            carved,
            stop_split: request.stop_split,
            members: request.members,
            schedule,
            config,
            notes,
        })
    }

    /// The rows the run fits on and the rows its epochs are judged on: the carved rows,
    /// or without early stopping the whole `train` and `val`.
    pub fn rows<'a>(&'a self, train: &'a Split, val: &'a Split) -> (&'a Split, &'a Split) {
        match &self.carved {
            Some((fit, stop)) => (fit, stop),
            None => (train, val),
        }
    }

    /// Whether early stopping decides on carved rows.
    pub fn carves(&self) -> bool {
        self.carved.is_some()
    }

    /// The training rows set aside for early stopping (0 without it).
    pub fn stopping_rows(&self) -> usize {
        self.carved.as_ref().map_or(0, |(_, stop)| stop.rows())
    }

    /// Trains `model` on `exec` as planned, each member in turn (`train` and `val` as
    /// given to [`new`](Self::new) and the caller's split), from `resume` when given
    /// (its finished members kept, its current member continued). `on_start` runs once
    /// the data is on the device, before the first step (an error from it stops the
    /// run), and hears how many rows at a time a table too large for the device is
    /// copied in; `on_event` hears the members and epochs go by. Then scores the
    /// validation rows with the kept weights.
    #[allow(clippy::too_many_arguments)]
    pub fn train(
        &self,
        exec: &mut dyn Executor,
        model: &ModelSpec,
        (train, val): (&Split, &Split),
        options: &FitOptions,
        resume: Option<&Checkpoint>,
        on_start: &mut dyn FnMut(Option<usize>) -> Result<()>,
        on_event: &mut dyn FnMut(FitEvent),
    ) -> Result<TrainedWeights> {
        let mut finished = resume.map_or_else(Vec::new, |ck| ck.finished_members.clone());
        let first = finished.len();
        if first >= self.members {
            return Err(Error::internal(format!(
                "a checkpoint with {first} finished members resumed for a run of {}",
                self.members
            )));
        }
        // Epochs each member ran in this call (none for those the checkpoint finished).
        let mut epochs_run = vec![0; first];
        let (mut steps_per_epoch, mut started, mut single_probs) = (0, false, None);
        for member in first..self.members {
            let resumed = resume.filter(|_| member == first);
            if let Some(ck) = resumed.filter(|ck| member + 1 < self.members && done(ck, options)) {
                // Killed between this member's last checkpoint and the next member's
                // first: it is finished, as the uninterrupted run left it.
                let kept = ck
                    .best
                    .as_ref()
                    .map_or((&ck.state.params, ck.state.epoch), |b| (&b.params, b.epoch));
                epochs_run.push(0);
                finished.push(FinishedMember {
                    params: kept.0.clone(),
                    history: ck.history.clone(),
                    kept_epoch: kept.1,
                });
                continue;
            }
            if self.members > 1 {
                on_event(FitEvent::MemberStart {
                    member,
                    members: self.members,
                });
            }
            let seed = member_seed(self.config.seed, member);
            let own_carve = match (&self.carved, member) {
                (Some(_), 1..) => Some(train.carve(self.stop_split, seed)),
                _ => None,
            };
            let (fit_rows, epoch_rows) = match &own_carve {
                Some((fit_rows, stop_rows)) => (fit_rows, stop_rows),
                None => self.rows(train, val),
            };
            let config = TrainConfig {
                seed,
                ..self.config.clone()
            };
            let mut trainer = Trainer::new(&mut *exec, model, fit_rows, epoch_rows, config)?;
            if !started {
                on_start(trainer.streamed_rows())?;
                started = true;
            }
            let member_options = FitOptions {
                checkpoint: options.checkpoint.as_ref().map(|target| CheckpointTarget {
                    finished_members: finished.clone(),
                    ..target.clone()
                }),
                ..options.clone()
            };
            let outcome = fit(&mut trainer, &member_options, resumed, on_event)?;
            steps_per_epoch = trainer.steps_per_epoch();
            let params = trainer.params()?;
            if self.members == 1 && self.carved.is_none() {
                // The trainer has the validation rows already: one network's scores
                // come from it, as they always have.
                single_probs = Some(trainer.predict_validation()?);
            }
            epochs_run.push(outcome.epochs_run);
            finished.push(FinishedMember {
                params,
                history: outcome.history,
                kept_epoch: outcome.kept_epoch,
            });
        }
        let (member_params, outcomes): (Vec<Vec<f32>>, Vec<FitOutcome>) = finished
            .into_iter()
            .zip(epochs_run)
            .map(|(m, epochs_run)| {
                let outcome = FitOutcome {
                    history: m.history,
                    epochs_run,
                    kept_epoch: m.kept_epoch,
                };
                (m.params, outcome)
            })
            .unzip();
        let probs = match (single_probs, self.members) {
            (Some(probs), _) => Some(probs),
            // The validation rows, never seen by the trainer, scored once with the kept
            // weights.
            (None, 1) => {
                let chunk = val.rows().clamp(1, SCORE_CHUNK);
                Some(Scorer::for_weights(exec, model, &member_params[0], chunk)?.score(&val.x)?)
            }
            (None, _) => None,
        };
        Ok(TrainedWeights {
            member_params,
            outcomes,
            probs,
            steps_per_epoch,
        })
    }
}

/// The ensemble of `members` (each packed as `model`) and its weights, packed.
pub fn ensemble_of(model: &ModelSpec, members: &[Vec<f32>]) -> Result<(ModelSpec, Vec<f32>)> {
    let ensemble = ModelSpec::ensemble(model.clone(), members.len())?;
    let packed = pack_ensemble(&ensemble, members)?;
    Ok((ensemble, packed))
}

/// The probabilities the saved `ensemble` gives `x`'s rows, on an executor with no
/// other model's plans loaded (its plans share one parameter layout).
pub fn score_ensemble(
    exec: &mut dyn Executor,
    ensemble: &ModelSpec,
    params: &[f32],
    x: &[f32],
) -> Result<Vec<f32>> {
    let rows = x.len() / ensemble.inputs().max(1);
    Scorer::for_weights(exec, ensemble, params, rows.clamp(1, SCORE_CHUNK))?.score(x)
}

/// Whether the run a checkpoint holds has finished: its last epoch is over and either
/// no epoch is left or early stopping has run out of patience.
fn done(ck: &Checkpoint, options: &FitOptions) -> bool {
    let patience_spent = match (options.early_stop, &ck.best) {
        (Some(patience), Some(best)) => ck.state.epoch - best.epoch >= patience,
        _ => false,
    };
    ck.state.within_epoch.is_none() && (ck.state.epoch >= options.epochs || patience_spent)
}

/// A network trained on one prepared split, with what its files and messages say of the
/// run.
pub struct TrainedNetwork {
    /// The model saved: the architecture trained, or with several members their
    /// ensemble.
    pub model: ModelSpec,
    /// A sequence model's column layout (`None` for an MLP).
    pub layout: Option<SequenceLayout>,
    /// The settings saved with the model.
    pub settings: TrainSettings,
    /// The kept weights, packed as `model` (the best epoch's with early stopping, else
    /// the last; each member's, with several).
    pub params: Vec<f32>,
    /// Each member's kept weights, packed as the architecture trained.
    pub member_params: Vec<Vec<f32>>,
    /// Each member's epochs, and which it kept (one for a run of one network).
    pub outcomes: Vec<FitOutcome>,
    /// The kept weights' probabilities for the validation rows, in order.
    pub probs: Vec<f32>,
    /// Rows the model was fitted on.
    pub fit_rows: usize,
    /// Training rows set aside to decide early stopping (0 without it).
    pub stopping_rows: usize,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
    /// Model input column means of the training rows (the explanation baseline).
    pub baseline: Vec<f32>,
    /// The device's name.
    pub device: String,
}

impl TrainedNetwork {
    /// The first member's epochs and the one it kept (a single network's).
    pub fn outcome(&self) -> &FitOutcome {
        &self.outcomes[0]
    }

    /// The architecture each member has.
    pub fn member_model(&self) -> &ModelSpec {
        match &self.model {
            ModelSpec::Ensemble { model, .. } => model,
            single => single,
        }
    }

    /// Each member's kept and trained epochs, for metrics.json; empty for a run of one
    /// network (whose figures say it already).
    pub fn member_figures(&self) -> Vec<MemberFigures> {
        if self.outcomes.len() < 2 {
            return Vec::new();
        }
        (self.outcomes.iter().enumerate())
            .map(|(m, o)| MemberFigures {
                member: m + 1,
                saved_epoch: o.kept_epoch,
                epochs_trained: o.history.len(),
            })
            .collect()
    }
}

/// One member's epochs in a run of several.
#[derive(Clone, Debug, serde::Serialize)]
pub struct MemberFigures {
    /// The member, from 1.
    pub member: usize,
    /// The epoch whose weights it kept.
    pub saved_epoch: usize,
    /// The epochs it trained.
    pub epochs_trained: usize,
}

/// What a run's messages say of its kept epochs: `epoch 6 of 11 kept`, or for members
/// `epochs 6/11, 9/14, 8/13 kept by the 3 members` (kept/trained).
pub fn kept_epochs_phrase(outcomes: &[FitOutcome]) -> String {
    match outcomes {
        [one] => format!("epoch {} of {} kept", one.kept_epoch, one.history.len()),
        many => format!(
            "epochs {} kept by the {} members",
            member_epochs(many),
            many.len()
        ),
    }
}

/// Each member's kept and trained epochs: `6/11, 9/14, 8/13`.
pub fn member_epochs(outcomes: &[FitOutcome]) -> String {
    (outcomes.iter())
        .map(|o| format!("{}/{}", o.kept_epoch, o.history.len()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Mean of each column of the row-major matrix `x` of `cols` columns (a model's
/// explanation baseline).
pub fn column_means(x: &[f32], cols: usize) -> Vec<f32> {
    let mut sum = vec![0.0f64; cols];
    for row in x.chunks_exact(cols.max(1)) {
        for (s, &v) in sum.iter_mut().zip(row) {
            *s += v as f64;
        }
    }
    let n = (x.len() / cols.max(1)).max(1) as f64;
    sum.into_iter().map(|s| (s / n) as f32).collect()
}

/// The devices a front end trains on: a named device, or `auto` decided on the first
/// model (the CLI's policy, with its notes; `device_race` does the timing).
pub trait TrainingDevices {
    /// Opens a fresh executor to train `model` on (the previous one dropped first):
    /// `fit_rows` and `epoch_rows` as the run's, `config` its batch, optimizer and seed.
    fn open(
        &mut self,
        model: &ModelSpec,
        fit_rows: &Split,
        epoch_rows: &Split,
        config: &TrainConfig,
    ) -> Result<()>;
    /// The executor the last [`open`](Self::open) opened.
    ///
    /// Errors: `Error::Internal` before any was opened.
    fn current(&mut self) -> Result<&mut dyn Executor>;
    /// Why `auto` took the device it did, when it raced for it.
    fn reason(&self) -> Option<String>;
}

/// The simplest [`TrainingDevices`]: the device a [`DeviceChoice`] names, opened afresh
/// for each model by [`select_executor`](crate::engine::select_executor) (the CPU
/// backend when no GPU qualifies); `auto` takes a hardware GPU without timing it.
pub struct NamedDevice {
    choice: DeviceChoice,
    current: Option<Box<dyn Executor>>,
}

impl NamedDevice {
    /// The device `choice` names.
    pub fn new(choice: DeviceChoice) -> Self {
        NamedDevice {
            choice,
            current: None,
        }
    }
}

impl TrainingDevices for NamedDevice {
    fn open(&mut self, _: &ModelSpec, _: &Split, _: &Split, _: &TrainConfig) -> Result<()> {
        self.current = None;
        let selected = crate::engine::select_executor(&self.choice, WhenNoGpu::UseCpu)?;
        self.current = Some(selected.executor);
        Ok(())
    }

    fn current(&mut self) -> Result<&mut dyn Executor> {
        match &mut self.current {
            Some(exec) => Ok(exec.as_mut()),
            None => Err(Error::internal("NamedDevice::current before any open")),
        }
    }

    fn reason(&self) -> Option<String> {
        None
    }
}

/// Where a network trains, what it continues from and where it checkpoints.
pub struct NetworkRun<'a> {
    /// The devices to open an executor on.
    pub devices: &'a mut dyn TrainingDevices,
    /// The checkpoint a resumed run continues from.
    pub resume: Option<&'a Checkpoint>,
    /// Where to write a checkpoint after every epoch.
    pub checkpoint: Option<PathBuf>,
    /// Also checkpoint inside epochs this often.
    pub checkpoint_every: Option<CheckpointEvery>,
    /// Set from elsewhere (a signal handler) to stop the run at a checkpoint.
    pub stop: Option<StopRequest>,
    /// The data's name, saved with the model.
    pub data_name: String,
    /// The validation split the data was prepared with, saved with the model.
    pub val_split: f64,
}

/// A network run as planned, its device open, before its first step.
pub struct PlannedNetwork<'a> {
    /// The network.
    pub model: &'a ModelSpec,
    /// The settings it saves (batch, epochs, patience and device among them).
    pub settings: &'a TrainSettings,
    /// Rows fitted on.
    pub fit_rows: usize,
    /// Rows each epoch is judged on: the stopping rows with early stopping, else the
    /// validation rows.
    pub epoch_rows: usize,
    /// Whether early stopping decides on rows carved from the training split.
    pub carves: bool,
    /// What the caller should tell the user about the plan.
    pub notes: &'a [String],
}

/// What a front end hears of a network's training.
pub trait NetworkObserver {
    /// The run is planned and its device open; an error stops it before it starts.
    fn planned(&mut self, plan: &PlannedNetwork, prepared: &Prepared) -> Result<()>;
    /// The data is on the device and the first step is next (an error stops the run):
    /// `streamed` is how many rows at a time a table too large for the device is copied
    /// in.
    fn started(&mut self, streamed: Option<usize>) -> Result<()>;
    /// The epochs go by.
    fn event(&mut self, event: FitEvent);
}

/// Builds `arch` for `prepared` (a sequence model's layout applied to its rows) and
/// trains it as `request` says: early stopping on rows carved from the training split
/// unless it is off, then the validation rows scored once with the kept weights. A
/// resumed run must have the checkpoint's settings (`resume::check_resumable`).
pub fn train_network(
    arch: &Architecture,
    request: &NetworkRequest,
    prepared: &mut Prepared,
    run: NetworkRun,
    observer: &mut dyn NetworkObserver,
) -> Result<TrainedNetwork> {
    let layout = arch.layout(prepared)?;
    let model = arch.model_spec(prepared, layout.as_ref())?;
    let (train, val) = (&prepared.train, &prepared.val);
    let plan = NetworkPlan::new(train, request)?;
    let (fit_rows, epoch_rows) = plan.rows(train, val);
    let Schedule {
        batch,
        epochs,
        patience,
    } = plan.schedule;
    run.devices
        .open(&model, fit_rows, epoch_rows, &plan.config)?;
    let device = run.devices.current()?.device_name();
    let settings = TrainSettings {
        data: run.data_name.clone(),
        optimizer: request.optimizer,
        batch,
        epochs,
        seed: request.seed,
        pos_weight: request.pos_weight,
        val_split: run.val_split,
        early_stop: patience,
        stop_split: plan.carves().then_some(request.stop_split),
        members: plan.members,
        cv_folds: None,
        device: device.clone(),
        device_choice: run.devices.reason(),
        solver: None,
        val_rows: Some(prepared.val_fingerprints.clone()),
    };
    if let Some(ck) = run.resume {
        super::resume::check_resumable(ck, &settings, &model, &prepared.preprocessor)?;
    }
    let planned = PlannedNetwork {
        model: &model,
        settings: &settings,
        fit_rows: fit_rows.rows(),
        epoch_rows: epoch_rows.rows(),
        carves: plan.carves(),
        notes: &plan.notes,
    };
    observer.planned(&planned, prepared)?;
    let (train, val) = (&prepared.train, &prepared.val);
    let baseline = column_means(&train.x, model.inputs());
    let options = FitOptions {
        epochs,
        early_stop: patience,
        checkpoint: run.checkpoint.map(|path| CheckpointTarget {
            path,
            settings: settings.clone(),
            model: model.clone(),
            preprocessing: prepared.preprocessor.clone(),
            baseline: baseline.clone(),
            finished_members: Vec::new(),
        }),
        stop: run.stop,
        checkpoint_every: run.checkpoint_every,
    };
    let exec = run.devices.current()?;
    // Both callbacks tell the one observer, never at once.
    let observer = std::cell::RefCell::new(observer);
    let TrainedWeights {
        member_params,
        outcomes,
        probs,
        steps_per_epoch,
    } = plan.train(
        exec,
        &model,
        (train, val),
        &options,
        run.resume,
        &mut |streamed| observer.borrow_mut().started(streamed),
        &mut |event| observer.borrow_mut().event(event),
    )?;
    let (model, params, probs) = match probs {
        Some(probs) => (model, member_params[0].clone(), probs),
        None => {
            // The members' ensemble, as it is saved, on a fresh executor.
            let (ensemble, packed) = ensemble_of(&model, &member_params)?;
            run.devices
                .open(&ensemble, fit_rows, epoch_rows, &plan.config)?;
            let exec = run.devices.current()?;
            let probs = score_ensemble(exec, &ensemble, &packed, &val.x)?;
            (ensemble, packed, probs)
        }
    };
    Ok(TrainedNetwork {
        model,
        layout,
        settings,
        params,
        member_params,
        outcomes,
        probs,
        fit_rows: fit_rows.rows(),
        stopping_rows: plan.stopping_rows(),
        steps_per_epoch,
        baseline,
        device,
    })
}
