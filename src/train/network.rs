//! One network trained on a prepared split, as `riskgrad train` trains it: early
//! stopping decides on rows carved from the training split (so the validation rows are
//! scored once, at the end, with the kept weights), the schedule comes from the table's
//! size where the caller gives none, [`fit`] runs the epochs, and the validation rows
//! are scored with the kept weights.
//!
//! In two steps, so that a caller can open its device for the rows the run will train
//! on and say what the run will be before it starts: [`NetworkPlan::new`] carves the
//! rows and chooses the schedule (no device yet), [`NetworkPlan::train`] trains.
//! [`train_network`] takes both steps for an [`Architecture`] on a prepared split: on
//! the devices a front end's [`TrainingDevices`] opens, telling its [`NetworkObserver`]
//! what the run is and how its epochs go.

use super::defaults::{schedule, Schedule, Stopping};
use super::fit::{
    fit, CheckpointEvery, CheckpointTarget, FitEvent, FitOptions, FitOutcome, StopRequest,
};
use super::{Split, TrainConfig, Trainer};
use crate::checkpoint::Checkpoint;
use crate::data::sequence::SequenceLayout;
use crate::data::Prepared;
use crate::engine::exec::Executor;
use crate::engine::gpu::DeviceChoice;
use crate::engine::graph::Optimizer;
use crate::engine::WhenNoGpu;
use crate::error::{Error, Result, Setting};
use crate::model_io::TrainSettings;
use crate::nn::architecture::Architecture;
use crate::nn::ModelSpec;
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
}

/// A run planned on a training split: the rows it fits on and decides on, its schedule
/// and configuration.
pub struct NetworkPlan {
    /// The rows fitted on and the rows early stopping decides on, carved from the
    /// training split; `None` without early stopping.
    carved: Option<(Split, Split)>,
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
    /// The kept weights (the best epoch's with early stopping, else the last).
    pub params: Vec<f32>,
    /// The epochs run, and which was kept.
    pub outcome: FitOutcome,
    /// The kept weights' probabilities for the validation rows, in order.
    pub probs: Vec<f32>,
    /// Optimizer steps per epoch.
    pub steps_per_epoch: usize,
}

impl NetworkPlan {
    /// Plans a run on `train` as `request` says.
    ///
    /// Errors: a `stop_split` that leaves one class to fit on (`Setting::StopSplit`).
    pub fn new(train: &Split, request: &NetworkRequest) -> Result<NetworkPlan> {
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

    /// Trains `model` on `exec` as planned (`train` and `val` as given to [`new`](Self::new)
    /// and the caller's split), from `resume` when given. `on_start` runs once the data is
    /// on the device, before the first step (an error from it stops the run), and hears
    /// how many rows at a time a table too large for the device is copied in; `on_event`
    /// hears the epochs go by. Then scores the validation rows with the kept
    /// weights.
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
        let (fit_rows, epoch_rows) = self.rows(train, val);
        let mut trainer =
            Trainer::new(&mut *exec, model, fit_rows, epoch_rows, self.config.clone())?;
        on_start(trainer.streamed_rows())?;
        let outcome = fit(&mut trainer, options, resume, on_event)?;
        let steps_per_epoch = trainer.steps_per_epoch();
        let params = trainer.params()?;
        let probs = match &self.carved {
            // The validation rows, never seen by the trainer, scored once with the kept
            // weights.
            Some(_) => {
                drop(trainer);
                let chunk = val.rows().clamp(1, SCORE_CHUNK);
                Scorer::for_weights(exec, model, &params, chunk)?.score(&val.x)?
            }
            None => trainer.predict_validation()?,
        };
        Ok(TrainedWeights {
            params,
            outcome,
            probs,
            steps_per_epoch,
        })
    }
}

/// A network trained on one prepared split, with what its files and messages say of the
/// run.
pub struct TrainedNetwork {
    /// The architecture trained.
    pub model: ModelSpec,
    /// A sequence model's column layout (`None` for an MLP).
    pub layout: Option<SequenceLayout>,
    /// The settings saved with the model.
    pub settings: TrainSettings,
    /// The kept weights (the best epoch's with early stopping, else the last).
    pub params: Vec<f32>,
    /// The epochs run, and which was kept.
    pub outcome: FitOutcome,
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
        }),
        stop: run.stop,
        checkpoint_every: run.checkpoint_every,
    };
    let exec = run.devices.current()?;
    // Both callbacks tell the one observer, never at once.
    let observer = std::cell::RefCell::new(observer);
    let TrainedWeights {
        params,
        outcome,
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
    Ok(TrainedNetwork {
        model,
        layout,
        settings,
        params,
        outcome,
        probs,
        fit_rows: fit_rows.rows(),
        stopping_rows: plan.stopping_rows(),
        steps_per_epoch,
        baseline,
        device,
    })
}
