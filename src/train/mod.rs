//! The training loop: builds the training and validation plans for a model, keeps the
//! data resident on the executor, and runs epochs.
//!
//! Each epoch the host writes one shuffled index list and zeroes the loss sum; the
//! executor runs every step (gather the minibatch, forward, backward, update) without
//! reading anything back; at epoch end the host reads the loss sum and the validation
//! scores. A table over the executor's largest input (a GPU's largest buffer) is
//! streamed instead: the host copies each chunk of steps' rows in, in the shuffled
//! order, before those steps run (`Streamed`); the results are the same bits.

use crate::engine::exec::{indices_as_words, Executor};
use crate::engine::graph::{backward, Graph, NodeId, Op, Optimizer};
use crate::engine::plan::{compile, PlanRequest, COLLECT_STATE, LOSS_STATE, STEP_STATE};
pub mod cross_validation;
pub mod defaults;
pub mod device_race;
mod fit;
pub mod model_dir;
pub mod network;
pub mod resume;

pub use fit::{
    fit, unrankable, CheckpointEvery, CheckpointTarget, FitEvent, FitOptions, FitOutcome,
    StopRequest,
};

use crate::error::{Error, Result, Setting};
use crate::metrics::{self, Summary};
use crate::nn::ModelSpec;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};
use std::time::Instant;

/// An epoch whose mean training loss is over this many times [`reference_loss`] has
/// diverged (a finite blow-up, e.g. a learning rate so large that scores saturate).
pub const DIVERGED_FACTOR: f64 = 10.0;

/// The training loss any sane model stays near or below: the larger of the weighted
/// binary cross-entropy of predicting the rows' positive share for every row and that of
/// predicting 0.5 (which an untrained network is close to). `w` weighs the positives.
pub fn reference_loss(labels: &[f32], pos_weight: f32) -> f64 {
    let n = labels.len().max(1) as f64;
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = n - positives;
    let w = pos_weight as f64;
    // Clamped away from 0 and 1 so a one-class split still has a finite reference.
    let p = (positives / n).clamp(1e-6, 1.0 - 1e-6);
    let base_rate = -(w * positives * p.ln() + negatives * (1.0 - p).ln()) / n;
    let coin = (w * positives + negatives) * std::f64::consts::LN_2 / n;
    base_rate.max(coin)
}

/// Rows scored per validation step (the last chunk is padded with repeats).
const EVAL_CHUNK: usize = 2048;

/// How to train: the settings a `Trainer` is built with.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// Passes over the training rows.
    pub epochs: usize,
    /// Rows per training step.
    pub batch: usize,
    /// The update rule and its hyperparameters.
    pub optimizer: Optimizer,
    /// Seeds the initial weights and the shuffles.
    pub seed: u64,
    /// Weight of the positive (default) class in the loss; 1 weighs both alike.
    pub pos_weight: f32,
}

/// Row-major features and 0/1 labels of one split.
#[derive(Clone, Debug, Default)]
pub struct Split {
    /// Features, `rows × features`, row-major.
    pub x: Vec<f32>,
    /// Labels, one per row.
    pub y: Vec<f32>,
}

impl Split {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.y.len()
    }

    /// Splits off `fraction` of the rows (stratified by the label, reproducible from
    /// `seed`, as `data::stratified_split`) for early stopping: returns `(rows to fit,
    /// rows that decide when to stop)`. The held-out rows a model is reported on stay out
    /// of both, so its figures are on rows early stopping never saw.
    pub fn carve(&self, fraction: f64, seed: u64) -> (Split, Split) {
        let features = self.x.len() / self.rows().max(1);
        let (fit, stop) = crate::data::stratified_split(&self.y, fraction, seed);
        let take = |rows: &[u32]| Split {
            x: rows
                .iter()
                .flat_map(|&r| {
                    let r = r as usize;
                    self.x[r * features..(r + 1) * features].iter().copied()
                })
                .collect(),
            y: rows.iter().map(|&r| self.y[r as usize]).collect(),
        };
        (take(&fit), take(&stop))
    }
}

/// What one epoch did: its loss, the validation metrics after it, and its speed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    /// The epoch's number, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch's steps.
    #[serde(deserialize_with = "metrics::f64_or_nan")]
    pub train_loss: f64,
    /// Metrics on the validation split after the epoch.
    pub validation: Summary,
    /// Wall seconds of the epoch's steps timed in this process (all of them, unless the
    /// epoch was resumed from a checkpoint taken inside it).
    pub seconds: f64,
    /// Training rows per second of those steps (validation excluded).
    pub rows_per_second: f64,
}

/// Everything that decides how training goes on from the end of an epoch: restoring it
/// into a fresh `Trainer` built from the same data, model and config continues the run
/// exactly as if it had not stopped.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainerState {
    /// Epochs completed.
    pub epoch: usize,
    /// The packed parameters (the executor's layout, padding included).
    pub params: Vec<f32>,
    /// Optimizer state (momentum or Adam moments), packed like the parameters.
    pub opt_state: Vec<f32>,
    /// The `"step"` state: step within the run, and the optimizer's step count (Adam's
    /// bias correction depends on it).
    pub step: [u32; 2],
    /// The shuffling generator's state.
    pub rng: u64,
    /// Set when the run stopped inside an epoch (a stop request, e.g. SIGTERM): where,
    /// so that the next epoch call finishes that epoch as if nothing had happened.
    pub within_epoch: Option<MidEpoch>,
}

/// Where a run stopped inside epoch `TrainerState::epoch + 1`: enough to redo that
/// epoch's shuffle and go on from the next step with the same result.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MidEpoch {
    /// Steps of the epoch already done.
    pub steps_done: usize,
    /// The shuffling generator's state before the epoch's shuffle.
    pub rng_before_shuffle: u64,
    /// The epoch's training-loss sum so far (the executor's loss accumulator).
    pub loss_sum: f32,
}

/// How an epoch call ended.
#[derive(Debug)]
pub enum EpochEnd {
    /// The epoch ran to its end.
    Done(EpochReport),
    /// A stop was requested: the epoch stopped after `steps_done` of `steps` steps, and
    /// [`Trainer::export_state`] now describes that point.
    Stopped {
        /// Steps of the epoch done.
        steps_done: usize,
        /// Steps in the epoch.
        steps: usize,
    },
}

/// Called as an epoch's steps go by: `(steps done, steps in the epoch, running loss if
/// the executor can read it for free)`.
pub type StepProgress<'a> = dyn FnMut(usize, usize, Option<f64>) + 'a;

/// Trains one model on one executor: holds the compiled training and scoring plans, the
/// data on the device and the epoch count.
pub struct Trainer<'e> {
    exec: &'e mut dyn Executor,
    config: TrainConfig,
    train_plan: usize,
    eval_plan: usize,
    steps_per_epoch: usize,
    n_train: usize,
    n_val: usize,
    /// Validation rows scored per step of the scoring plan.
    eval_chunk: usize,
    val_y: Vec<f32>,
    /// [`reference_loss`] of the training rows: an epoch far above it has diverged.
    reference_loss: f64,
    rng: Rng,
    epoch: usize,
    /// Where the epoch in progress stopped (after a stop request, or imported from a
    /// checkpoint taken then): the next epoch call picks it up.
    within_epoch: Option<MidEpoch>,
    /// Steps of the epoch in progress timed in this process before it last stopped, and
    /// their seconds: an epoch stopped and resumed (each `--checkpoint-every`) reports
    /// the speed of all the steps timed, not its last run's alone.
    timed_before_stop: (usize, f64),
    /// Set when the training table is over the executor's largest input.
    train_stream: Option<Streamed<'e>>,
    /// Set when the validation table is.
    val_stream: Option<Streamed<'e>>,
}

/// A table the executor cannot hold whole, streamed through an input of `rows` rows (a
/// whole number of steps): the host copies the rows of the next steps in before they
/// run, in the order the steps take them, and the steps' index list is the same each
/// time (the position within the chunk). The kernels see what they would see of the
/// whole table, so a streamed run computes exactly what a resident one does.
struct Streamed<'a> {
    x: &'a [f32],
    y: Option<&'a [f32]>,
    features: usize,
    /// Rows the executor holds at a time.
    rows: usize,
    /// The rows in the order the steps take them (the epoch's shuffle; validation: as
    /// they come).
    order: Vec<u32>,
    /// The chunk the executor holds now (`None`: none yet, or a new order).
    loaded: Option<usize>,
}

impl Streamed<'_> {
    /// Makes sure chunk `c` (rows `c·rows ..` of the order) is on the executor in the
    /// inputs `x_name` and `y_name`.
    fn load(
        &mut self,
        exec: &mut dyn Executor,
        c: usize,
        x_name: &str,
        y_name: &str,
    ) -> Result<()> {
        if self.loaded == Some(c) {
            return Ok(());
        }
        let f = self.features;
        let start = (c * self.rows).min(self.order.len());
        let rows = &self.order[start..(start + self.rows).min(self.order.len())];
        // A last, shorter chunk is padded with zeros, which no step reads.
        let mut x = vec![0.0; self.rows * f];
        for (dst, &r) in x.chunks_exact_mut(f).zip(rows) {
            let r = r as usize;
            dst.copy_from_slice(&self.x[r * f..(r + 1) * f]);
        }
        exec.write(x_name, &x)?;
        if let Some(labels) = self.y {
            let mut y = vec![0.0; self.rows];
            for (dst, &r) in y.iter_mut().zip(rows) {
                *dst = labels[r as usize];
            }
            exec.write(y_name, &y)?;
        }
        self.loaded = Some(c);
        Ok(())
    }
}

/// Bytes of one row of `features` f32 values.
fn row_bytes(features: usize) -> u64 {
    (features.max(1) * 4) as u64
}

/// How many rows of `features` f32 values fit `exec`'s largest input (`None`: no limit).
fn rows_that_fit(exec: &dyn Executor, features: usize) -> Option<usize> {
    exec.largest_input_bytes()
        .map(|limit| usize::try_from(limit / row_bytes(features)).unwrap_or(usize::MAX))
}

/// Rows of a table to hold on `exec` at a time: `None` when the whole table fits its
/// largest input, else the most whole steps of `step_rows` that do. Errors when one
/// step's rows do not fit.
fn rows_held(
    exec: &dyn Executor,
    rows: usize,
    features: usize,
    step_rows: usize,
) -> Result<Option<usize>> {
    let Some(fit) = rows_that_fit(exec, features).filter(|&fit| fit < rows) else {
        return Ok(None);
    };
    let steps = fit / step_rows;
    if steps == 0 {
        let limit = exec.largest_input_bytes().unwrap_or(u64::MAX);
        return Err(Error::invalid(
            Setting::BatchSize,
            format!(
                "one step's {step_rows} rows of {features} features ({} bytes) are more \
                 than the device holds in one buffer ({limit} bytes); use fewer rows per step",
                step_rows as u64 * row_bytes(features)
            ),
        ));
    }
    Ok(Some(steps * step_rows))
}

impl<'e> Trainer<'e> {
    /// Compiles the plans, uploads both splits once and initializes the parameters.
    pub fn new(
        exec: &'e mut dyn Executor,
        model: &ModelSpec,
        train: &'e Split,
        val: &'e Split,
        config: TrainConfig,
    ) -> Result<Self> {
        let f = model.inputs();
        if config.batch == 0 {
            return Err(Error::invalid(Setting::BatchSize, "must be at least 1"));
        }
        if train.rows() < config.batch {
            return Err(Error::invalid(
                Setting::BatchSize,
                format!(
                    "{} is larger than the {} training rows",
                    config.batch,
                    train.rows()
                ),
            ));
        }
        if val.rows() == 0 {
            return Err(Error::invalid(
                Setting::ValidationSplit,
                "leaves no validation rows",
            ));
        }
        let steps_per_epoch = train.rows() / config.batch;
        // Tables over the executor's largest input are streamed (see `Streamed`).
        let train_held = rows_held(exec, train.rows(), f, config.batch)?;
        let train_rows = train_held.unwrap_or(train.rows());

        // Training step: gather, forward, loss, backward, update.
        let mut g = Graph::new();
        let table = g.input("train_x", &[train_rows, f])?;
        let labels = g.input("train_y", &[train_rows, 1])?;
        let perm = g.input("train_perm", &[steps_per_epoch * config.batch])?;
        let x = g.gather_rows(table, perm, config.batch)?;
        let y = g.gather_rows(labels, perm, config.batch)?;
        let logits = model.build_training(&mut g, x, config.seed)?;
        let loss = g.bce_with_logits(logits, y, config.pos_weight)?;
        let grads = backward(&mut g, loss, &[])?;
        let grad_nodes = (0..g.params.len())
            .map(|p| {
                (
                    p,
                    grads
                        .of(g.param_node(p))
                        .expect("every parameter reaches the loss"),
                )
            })
            .collect();
        let train_plan = compile(
            &g,
            &PlanRequest {
                loss: Some(loss),
                grads: grad_nodes,
                optimizer: Some(config.optimizer),
                ..Default::default()
            },
        )?;

        // Validation: forward only, probabilities collected chunk by chunk.
        // Rows scored per step: fewer where the executor cannot hold that many.
        let chunk = rows_that_fit(exec, f)
            .map_or(EVAL_CHUNK, |fit| EVAL_CHUNK.min(fit))
            .clamp(1, val.rows());
        let eval_steps = val.rows().div_ceil(chunk);
        let val_held = rows_held(exec, val.rows(), f, chunk)?;
        let val_rows = val_held.unwrap_or(val.rows());
        let mut ge = Graph::new();
        let vtable = ge.input("val_x", &[val_rows, f])?;
        let vperm = ge.input("val_perm", &[eval_steps * chunk])?;
        let vx = ge.gather_rows(vtable, vperm, chunk)?;
        let vlogits = model.build(&mut ge, vx)?;
        let probs = ge.sigmoid(vlogits)?;
        let eval_plan = compile(
            &ge,
            &PlanRequest {
                collect: Some((probs, eval_steps)),
                ..Default::default()
            },
        )?;

        // Everything the run will hold, checked before any of it is drawn or zeroed: a
        // model too wide for this machine is refused at once, not after seconds of
        // filling its memory (`ensure_memory_for`).
        crate::engine::exec::ensure_memory_for(
            exec.host_bytes_to_load(&[&train_plan, &eval_plan])
                .saturating_add(4 * train_plan.layout.total as u64),
            crate::engine::exec::PLAN_BUFFERS,
        )?;
        let mut init = model.initial_params(&g, &train_plan.layout, config.seed)?;
        start_at_the_prior(
            &g,
            logits,
            &train_plan.layout,
            &train.y,
            config.pos_weight,
            &mut init,
        );

        let train_plan = exec.load(train_plan)?;
        let eval_plan = exec.load(eval_plan)?;
        let streamed = |split: &'e Split, rows: usize, labels: bool| Streamed {
            x: &split.x,
            y: labels.then_some(&split.y[..]),
            features: f,
            rows,
            order: (0..split.rows() as u32).collect(),
            loaded: None,
        };
        let train_stream = match train_held {
            None => {
                exec.write("train_x", &train.x)?;
                exec.write("train_y", &train.y)?;
                None
            }
            Some(rows) => {
                // Each step's rows sit at their position within the chunk.
                let within: Vec<u32> = (0..steps_per_epoch * config.batch)
                    .map(|i| (i % rows) as u32)
                    .collect();
                exec.write("train_perm", &indices_as_words(&within))?;
                Some(streamed(train, rows, true))
            }
        };
        // The last chunk is padded with the last row, scored again and dropped.
        let held = val_held.unwrap_or(usize::MAX);
        let val_order: Vec<u32> = (0..eval_steps * chunk)
            .map(|i| (i.min(val.rows() - 1) % held) as u32)
            .collect();
        exec.write("val_perm", &indices_as_words(&val_order))?;
        let val_stream = match val_held {
            None => {
                exec.write("val_x", &val.x)?;
                None
            }
            Some(rows) => Some(streamed(val, rows, false)),
        };
        exec.write_params(&init)?;
        // A new run starts from a zero optimizer state and step count, also on an
        // executor that trained before (a run's members train one after another on one):
        // loading a plan keeps what the executor holds.
        let opt_words = exec.read_opt_state()?.len();
        exec.write_opt_state(&vec![0.0; opt_words])?;
        exec.write(STEP_STATE, &[0.0, 0.0])?;

        Ok(Trainer {
            exec,
            reference_loss: reference_loss(&train.y, config.pos_weight),
            rng: Rng::new(config.seed),
            config,
            train_plan,
            eval_plan,
            steps_per_epoch,
            n_train: train.rows(),
            n_val: val.rows(),
            eval_chunk: chunk,
            val_y: val.y.clone(),
            epoch: 0,
            within_epoch: None,
            timed_before_stop: (0, 0.0),
            train_stream,
            val_stream,
        })
    }

    /// Training rows the executor holds at a time when the training table is streamed
    /// (over its largest input), else `None`.
    pub fn streamed_rows(&self) -> Option<usize> {
        self.train_stream.as_ref().map(|s| s.rows)
    }

    /// Training steps in one epoch (full batches only).
    pub fn steps_per_epoch(&self) -> usize {
        self.steps_per_epoch
    }

    /// One pass over the training rows in a fresh shuffled order (the rows past the last
    /// full batch sit this epoch out), then a validation pass.
    pub fn epoch(&mut self, progress: &mut StepProgress) -> Result<EpochReport> {
        match self.epoch_until(progress, &|| false)? {
            EpochEnd::Done(report) => Ok(report),
            EpochEnd::Stopped { .. } => unreachable!("no stop was requested"),
        }
    }

    /// As [`epoch`](Self::epoch), checking `stop` after every run of steps: when it says
    /// so, the epoch stops there (see [`EpochEnd::Stopped`]). An epoch that stopped is
    /// finished by the next call, with the same result as if it had not stopped.
    pub fn epoch_until(
        &mut self,
        progress: &mut StepProgress,
        stop: &dyn Fn() -> bool,
    ) -> Result<EpochEnd> {
        let resumed = self.within_epoch.take();
        if let Some(m) = resumed {
            self.rng = Rng::from_state(m.rng_before_shuffle);
        }
        let rng_before_shuffle = self.rng.state();
        self.epoch += 1;
        self.shuffle()?;
        self.exec
            .write(LOSS_STATE, &[resumed.map_or(0.0, |m| m.loss_sum)])?;

        let start = Instant::now();
        // Steps go to the executor in runs of at most 100 (and at least 20 runs), so the
        // progress bar moves, a headless log gets a line every few seconds even in a
        // long epoch, and a stop request is seen soon; nothing is read back between runs
        // unless the executor reads for free.
        let steps = self.steps_per_epoch;
        let runs = (steps / 100).max(20).min(steps);
        let mut done = resumed.map_or(0, |m| m.steps_done);
        let first = done;
        for r in 0..runs {
            let until = steps * (r + 1) / runs;
            if until <= done {
                continue;
            }
            if stop() {
                self.timed_before_stop.0 += done - first;
                self.timed_before_stop.1 += start.elapsed().as_secs_f64();
                self.epoch -= 1;
                self.within_epoch = Some(MidEpoch {
                    steps_done: done,
                    rng_before_shuffle,
                    loss_sum: self.exec.read(LOSS_STATE)?[0],
                });
                return Ok(EpochEnd::Stopped {
                    steps_done: done,
                    steps,
                });
            }
            self.run_train_steps(done, until - done)?;
            done = until;
            let running = if self.exec.reads_are_free() {
                Some(self.exec.read(LOSS_STATE)?[0] as f64 / done as f64)
            } else {
                None
            };
            progress(done, steps, running);
        }
        let train_loss = self.exec.read(LOSS_STATE)?[0] as f64 / self.steps_per_epoch as f64;
        let (before, seconds_before) = std::mem::take(&mut self.timed_before_stop);
        let steps_timed = before + steps - first;
        let seconds = seconds_before + start.elapsed().as_secs_f64();
        if !train_loss.is_finite() {
            return Err(Error::Diverged {
                epoch: self.epoch,
                what: format!("the training loss is {train_loss}"),
                kept: None,
            });
        }
        if train_loss > DIVERGED_FACTOR * self.reference_loss {
            return Err(Error::Diverged {
                epoch: self.epoch,
                what: format!(
                    "the training loss {train_loss:.4e} is over {DIVERGED_FACTOR} times {:.4}, \
                     the loss of a constant prediction",
                    self.reference_loss
                ),
                kept: None,
            });
        }
        let probs = self.predict_validation()?;
        if let Some(bad) = probs.iter().find(|p| !p.is_finite()) {
            return Err(Error::Diverged {
                epoch: self.epoch,
                what: format!("a validation score is {bad}"),
                kept: None,
            });
        }
        Ok(EpochEnd::Done(EpochReport {
            epoch: self.epoch,
            train_loss,
            validation: metrics::summary(&probs, &self.val_y),
            seconds,
            rows_per_second: (steps_timed * self.config.batch) as f64 / seconds,
        }))
    }

    /// Runs one training step on the first batch of a fresh shuffle and waits for it
    /// (benchmarks use it to time a cold start to the end of the first step).
    pub fn step_once(&mut self) -> Result<f64> {
        self.shuffle()?;
        self.exec.write(LOSS_STATE, &[0.0])?;
        self.run_train_steps(0, 1)?;
        Ok(self.exec.read(LOSS_STATE)?[0] as f64)
    }

    /// Runs the first `count` steps of the last shuffle (call [`step_once`](Self::step_once)
    /// first) as training submits them, and waits for them: their wall seconds. For
    /// timing (the device race); the weights move as in any step.
    pub fn time_steps(&mut self, count: usize) -> Result<f64> {
        let start = Instant::now();
        self.run_train_steps(0, count.min(self.steps_per_epoch))?;
        self.exec.read(LOSS_STATE)?;
        Ok(start.elapsed().as_secs_f64())
    }

    /// Runs the training step on the first batch of the last shuffle (call
    /// [`step_once`](Self::step_once) or an epoch first) with each launch timed on its
    /// own (`Executor::time_launches`); each launch's kernel name and seconds, in order,
    /// or `None` where the executor cannot time launches. The step updates the weights as
    /// any step does: for benchmarks, not inside a training run.
    pub fn time_step_launches(&mut self) -> Result<Option<Vec<(String, f64)>>> {
        self.exec.time_launches(self.train_plan, 0)
    }

    /// A fresh shuffle of the training rows for the next epoch's steps: the executor's
    /// index list, or the order a streamed table's chunks are copied in.
    fn shuffle(&mut self) -> Result<()> {
        let mut order: Vec<u32> = (0..self.n_train as u32).collect();
        self.rng.shuffle(&mut order);
        order.truncate(self.steps_per_epoch * self.config.batch);
        match &mut self.train_stream {
            None => self.exec.write("train_perm", &indices_as_words(&order)),
            Some(stream) => {
                stream.order = order;
                stream.loaded = None;
                Ok(())
            }
        }
    }

    /// Runs `count` training steps starting at step `first` of the epoch's index list;
    /// a streamed table's chunks are copied in as the steps reach them.
    fn run_train_steps(&mut self, first: usize, count: usize) -> Result<()> {
        let batch = self.config.batch;
        run_streamed(
            &mut *self.exec,
            self.train_plan,
            first..first + count,
            self.train_stream.as_mut().map(|s| (s, batch)),
            ("train_x", "train_y"),
        )
    }

    /// Probabilities for every validation row, in order.
    pub fn predict_validation(&mut self) -> Result<Vec<f32>> {
        let (steps, chunk) = (self.n_val.div_ceil(self.eval_chunk), self.eval_chunk);
        run_streamed(
            &mut *self.exec,
            self.eval_plan,
            0..steps,
            self.val_stream.as_mut().map(|s| (s, chunk)),
            ("val_x", ""),
        )?;
        let mut probs = self.exec.read(COLLECT_STATE)?;
        probs.truncate(self.n_val);
        Ok(probs)
    }

    /// The current parameters, packed (the executor's layout).
    pub fn params(&mut self) -> Result<Vec<f32>> {
        self.exec.read_params()
    }

    /// Replaces the parameters (e.g. with the best epoch's, for early stopping).
    pub fn set_params(&mut self, params: &[f32]) -> Result<()> {
        self.exec.write_params(params)
    }

    /// Steps done of the epoch in progress, when it stopped inside one (else 0).
    pub fn mid_epoch_steps(&self) -> usize {
        self.within_epoch.map_or(0, |m| m.steps_done)
    }

    /// Epochs completed so far.
    pub fn epochs_done(&self) -> usize {
        self.epoch
    }

    /// The labels of the validation rows, in the order of [`predict_validation`](Self::predict_validation).
    pub fn validation_labels(&self) -> &[f32] {
        &self.val_y
    }

    /// The state to checkpoint at the end of an epoch (reads the parameters and the
    /// optimizer state back from the executor).
    pub fn export_state(&mut self) -> Result<TrainerState> {
        let step = self.exec.read(STEP_STATE)?;
        let word = |i: usize| {
            step.get(i)
                .map(|v| v.to_bits())
                .ok_or_else(|| Error::Internal("the step state is too short".into()))
        };
        Ok(TrainerState {
            epoch: self.epoch,
            params: self.exec.read_params()?,
            opt_state: self.exec.read_opt_state()?,
            step: [word(0)?, word(1)?],
            rng: self.rng.state(),
            within_epoch: self.within_epoch,
        })
    }

    /// Continues from `state` (taken from a trainer built from the same model, data and
    /// config); the sizes must match this trainer's.
    pub fn import_state(&mut self, state: &TrainerState) -> Result<()> {
        self.exec.write_params(&state.params)?;
        self.exec.write_opt_state(&state.opt_state)?;
        self.exec
            .write(STEP_STATE, &state.step.map(f32::from_bits))?;
        self.rng = Rng::from_state(state.rng);
        self.epoch = state.epoch;
        self.within_epoch = state.within_epoch;
        Ok(())
    }
}

/// Runs `steps` of `plan` (each taking `step_rows` rows); with a streamed table, in runs
/// that stay within one chunk, each copied in first.
fn run_streamed(
    exec: &mut dyn Executor,
    plan: usize,
    steps: std::ops::Range<usize>,
    stream: Option<(&mut Streamed, usize)>,
    (x_name, y_name): (&str, &str),
) -> Result<()> {
    let Some((stream, step_rows)) = stream else {
        return exec.run_from(plan, steps.start, steps.len());
    };
    let per_chunk = stream.rows / step_rows;
    let mut step = steps.start;
    while step < steps.end {
        let chunk = step / per_chunk;
        stream.load(exec, chunk, x_name, y_name)?;
        let until = steps.end.min((chunk + 1) * per_chunk);
        exec.run_from(plan, step, until - step)?;
        step = until;
    }
    Ok(())
}

/// Sets the bias of the layer that makes `logits` (when it has one) to the log-odds of a
/// default among `labels`, weighted by `pos_weight` as the loss weighs them: the model
/// starts from the base rate instead of spending its first steps learning it.
fn start_at_the_prior(
    g: &Graph,
    logits: NodeId,
    layout: &crate::engine::plan::ParamLayout,
    labels: &[f32],
    pos_weight: f32,
    init: &mut [f32],
) {
    let node = &g.nodes[logits];
    let Some(&bias) = node.inputs.get(2) else {
        return;
    };
    let Op::Param { index } = g.nodes[bias].op else {
        return;
    };
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 || layout.lens[index] != 1 {
        return;
    }
    init[layout.offsets[index]] = (pos_weight as f64 * positives / negatives).ln() as f32;
}
