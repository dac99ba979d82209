//! What a single `train` run leaves in its model directory: the model (config.json and
//! the weights), metrics.json, model_card.md, stability.json and, for a network,
//! report.html. Every file is staged in full before any replaces an earlier run's, the
//! model's config.json last (`files::FileSet`): a full disk or an error leaves the old
//! model whole.
//!
//! A network's run also fits the logistic-regression challenger on the same split, so
//! its files and its caller can show both AUCs side by side.

use super::network::{
    column_means, kept_epochs_phrase, member_epochs, MemberFigures, TrainedNetwork,
};
use super::EpochReport;
use crate::data::dates::DateRange;
use crate::data::Prepared;
use crate::error::{Error, Result};
use crate::files::FileSet;
use crate::logistic::{challenger, fit_logistic, Challenger, LogisticFit, DEFAULT_L2};
use crate::metrics::{evaluate, Evaluation};
use crate::model_card::{self, CardData, CardInput, CardValidation, MODEL_CARD_FILE};
use crate::model_io::{SavedModel, TrainSettings};
use crate::nn::ModelSpec;
use crate::report::{stage_report, ReportInput};
use crate::stability::Baseline;
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

/// Bootstrap resamples for a saved model's validation AUC interval.
pub const BOOTSTRAP: usize = 1000;

/// What the caller knows of a run that its files record.
pub struct RunFacts {
    /// The data's name (the file as the user named it, or the bundled data's).
    pub data_name: String,
    /// Columns the caller left out, each with the reason the model card gives.
    pub dropped_by_caller: Vec<(String, String)>,
    /// The date column's range, for the model card.
    pub date_range: Option<DateRange>,
    /// The run's seed.
    pub seed: u64,
    /// When the run started (metrics.json's `seconds`).
    pub started: Instant,
}

impl RunFacts {
    pub(crate) fn card_data(&self, prepared: &Prepared, split: String) -> CardData {
        CardData::of(
            prepared,
            self.data_name.clone(),
            split,
            self.date_range.clone(),
            &self.dropped_by_caller,
        )
    }
}

/// A network run's metrics.json.
#[derive(Serialize)]
struct NetworkMetrics<'a> {
    riskgrad_version: &'static str,
    data: &'a str,
    model: &'a ModelSpec,
    device: &'a str,
    /// Each epoch's loss, and its figures on `epoch_figures_on`.
    epochs: &'a [EpochReport],
    /// The rows each epoch's figures are computed on: "stopping rows" (carved from the
    /// training rows for early stopping) or "validation rows" (without early stopping).
    epoch_figures_on: &'static str,
    /// The epoch whose weights were saved (the best with early stopping, else the last;
    /// the first member's, with several).
    saved_epoch: usize,
    /// Each member's epochs, with several (`epochs` and `saved_epoch` are the first's).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    members: Vec<MemberFigures>,
    /// The saved weights on the validation rows.
    validation: &'a Evaluation,
    resumed_from_epoch: Option<usize>,
    /// Rows the model was fitted on (the training rows less the stopping rows).
    fit_rows: usize,
    /// Training rows set aside to decide early stopping.
    stopping_rows: usize,
    /// The training split: fitting and stopping rows together.
    train_rows: usize,
    validation_rows: usize,
    /// Training rows per second over this run's epochs (validation passes excluded).
    train_rows_per_second: f64,
    /// The logistic-regression challenger on the same split.
    challenger: &'a Challenger,
    seconds: f64,
}

/// A saved network run's figures, for the caller to show.
pub struct NetworkRunFigures {
    /// The saved weights on the validation rows.
    pub evaluation: Evaluation,
    /// The logistic challenger on the same split.
    pub challenger: Challenger,
    /// Training rows per second over this run's epochs.
    pub train_rows_per_second: f64,
}

/// Saves a trained network's run to `out`: the model, metrics.json, report.html, the
/// model card and `stability` (the training rows' distributions), after fitting the
/// logistic challenger on the same split. `resumed_from_epoch`: the checkpoint's epoch
/// when the run resumed one.
pub fn save_network_run(
    out: &Path,
    facts: &RunFacts,
    prepared: &Prepared,
    trained: &TrainedNetwork,
    stability: &Baseline,
    resumed_from_epoch: Option<usize>,
) -> Result<NetworkRunFigures> {
    let (train, val) = (&prepared.train, &prepared.val);
    let TrainedNetwork {
        model, settings, ..
    } = trained;
    let data_name = &facts.data_name;
    let (history, saved_epoch) = (&trained.outcome().history, trained.outcome().kept_epoch);
    let (probs, labels) = (&trained.probs, &val.y);
    let evaluation = evaluate(probs, labels, None, BOOTSTRAP, facts.seed);
    let challenger = challenger(train, val, model.inputs(), settings.pos_weight)?;
    let saved = SavedModel {
        model: model.clone(),
        preprocessing: prepared.preprocessor.clone(),
        feature_order: trained.layout.as_ref().map(|l| l.source.clone()),
        baseline: trained.baseline.clone(),
        training: settings.clone(),
        epoch: saved_epoch,
        validation: Some(evaluation.clone()),
        params: trained.params.clone(),
    };
    let mut files = FileSet::replacing(out)?;

    // Over every epoch this process ran, in all the members.
    let ran: Vec<&EpochReport> = trained.outcomes.iter().flat_map(|o| o.ran()).collect();
    let train_seconds: f64 = ran.iter().map(|r| r.seconds).sum();
    let train_rows_per_second =
        (trained.steps_per_epoch * settings.batch * ran.len()) as f64 / train_seconds;
    let carved = trained.stopping_rows > 0;
    let metrics = NetworkMetrics {
        riskgrad_version: env!("CARGO_PKG_VERSION"),
        data: data_name,
        model,
        device: &trained.device,
        epochs: history,
        epoch_figures_on: match carved {
            true => "stopping rows",
            false => "validation rows",
        },
        saved_epoch,
        members: trained.member_figures(),
        validation: &evaluation,
        resumed_from_epoch,
        fit_rows: trained.fit_rows,
        stopping_rows: trained.stopping_rows,
        train_rows: train.rows(),
        validation_rows: val.rows(),
        train_rows_per_second,
        challenger: &challenger,
        seconds: facts.started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&metrics).map_err(Error::internal)?;
    files.add(&out.join("metrics.json"), &json)?;
    let report = ReportInput {
        title: format!("riskgrad {} model on {data_name}", model.label()),
        details: vec![
            (
                "data".into(),
                format!(
                    "{data_name}: {} training rows ({} fitted, {} for early stopping), {} validation rows, {} features",
                    train.rows(),
                    trained.fit_rows,
                    trained.stopping_rows,
                    val.rows(),
                    prepared.n_features()
                ),
            ),
            ("model".into(), model.label()),
            (
                "training".into(),
                format!(
                    "{:?}, batch {}, seed {}, pos_weight {}",
                    settings.optimizer, settings.batch, facts.seed, settings.pos_weight
                ),
            ),
            (
                "epochs".into(),
                match trained.outcomes.len() {
                    1 => format!(
                        "{} trained; weights saved from epoch {saved_epoch}",
                        history.len()
                    ),
                    _ => format!(
                        "{} (trained/kept); the curves are the first member's",
                        kept_epochs_phrase(&trained.outcomes)
                    ),
                },
            ),
            ("device".into(), trained.device.clone()),
            ("riskgrad".into(), env!("CARGO_PKG_VERSION").into()),
        ],
        history,
        epoch_rows: match carved {
            true => "stopping rows (carved from the training rows)",
            false => "validation rows",
        },
        chosen_epoch: saved_epoch,
        probs,
        labels,
        evaluation: &evaluation,
        challenger: Some(("logistic challenger", &challenger.probs)),
        folds: None,
    };
    stage_report(out, &report, &mut files)?;
    let split = format!(
        "{} fitted, {} for early stopping, {} validation; stratified at random (seed {})",
        trained.fit_rows,
        trained.stopping_rows,
        val.rows(),
        facts.seed
    );
    let challenged = Some((challenger.model.clone(), challenger.validation_auc));
    let epochs = Some(match trained.outcomes.len() {
        1 => format!(
            "{} trained, weights of epoch {saved_epoch} kept",
            history.len()
        ),
        n => format!(
            "kept/trained by each of the {n} members: {}",
            member_epochs(&trained.outcomes)
        ),
    });
    let card = facts.card_data(prepared, split);
    commit_holdout_model(out, files, &saved, card, challenged, epochs, stability)?;

    Ok(NetworkRunFigures {
        evaluation,
        challenger,
        train_rows_per_second,
    })
}

/// A logistic regression solved on a prepared split: `--model logistic`.
pub struct LogisticRun {
    fit: LogisticFit,
    /// Its weights as a one-layer MLP, the form every command reads.
    model: ModelSpec,
    params: Vec<f32>,
    /// The solver, its L2 strength and steps, in words.
    pub solver: String,
    /// Its figures on the validation rows.
    pub evaluation: Evaluation,
    pos_weight: f32,
    val_split: f64,
}

/// Solves the L2 logistic regression on `prepared`'s training rows (`pos_weight` weighs
/// the defaults) and scores its validation rows.
pub fn fit_logistic_run(
    prepared: &Prepared,
    pos_weight: f32,
    val_split: f64,
    seed: u64,
) -> Result<LogisticRun> {
    let (train, val) = (&prepared.train, &prepared.val);
    let fit = fit_logistic(
        &train.x,
        &train.y,
        prepared.n_features(),
        DEFAULT_L2,
        pos_weight as f64,
    )?;
    let model = fit.model_spec()?;
    let solver = format!("{}, l2 {DEFAULT_L2}, {} steps", fit.solver, fit.iterations);
    let probs: Vec<f32> = fit.predict(&val.x).iter().map(|&p| p as f32).collect();
    let evaluation = evaluate(&probs, &val.y, None, BOOTSTRAP, seed);
    let params = fit.params()?;
    Ok(LogisticRun {
        fit,
        model,
        params,
        solver,
        evaluation,
        pos_weight,
        val_split,
    })
}

/// A logistic run's metrics.json.
#[derive(Serialize)]
struct LogisticMetrics<'a> {
    riskgrad_version: &'static str,
    data: &'a str,
    model: &'a ModelSpec,
    solver: &'a str,
    newton_steps: usize,
    /// The solved weights on the validation rows.
    validation: &'a Evaluation,
    train_rows: usize,
    validation_rows: usize,
    seconds: f64,
}

/// Saves a solved logistic regression to `out`: the model (a one-layer MLP),
/// metrics.json, the model card and the training rows' distributions.
pub fn save_logistic_run(
    out: &Path,
    facts: &RunFacts,
    prepared: &Prepared,
    run: &LogisticRun,
) -> Result<()> {
    let (train, val) = (&prepared.train, &prepared.val);
    let model = &run.model;
    // The training rows' score and column distributions, for `riskgrad monitor`.
    let train_probs: Vec<f32> = run
        .fit
        .predict(&train.x)
        .iter()
        .map(|&p| p as f32)
        .collect();
    let stability = Baseline::new(&train_probs, prepared.profile.clone(), &run.params);
    let saved = SavedModel {
        model: model.clone(),
        preprocessing: prepared.preprocessor.clone(),
        feature_order: None,
        baseline: column_means(&train.x, model.inputs()),
        training: TrainSettings {
            data: facts.data_name.clone(),
            optimizer: crate::engine::graph::Optimizer::Sgd {
                lr: 0.0,
                momentum: 0.0,
            },
            batch: train.rows(),
            epochs: 1,
            seed: facts.seed,
            pos_weight: run.pos_weight,
            val_split: run.val_split,
            early_stop: None,
            stop_split: None,
            members: 1,
            cv_folds: None,
            device: "cpu (f64 solver)".into(),
            device_choice: None,
            solver: Some(run.solver.clone()),
            val_rows: Some(prepared.val_fingerprints.clone()),
        },
        epoch: 1,
        validation: Some(run.evaluation.clone()),
        params: run.params.clone(),
    };
    let mut files = FileSet::replacing(out)?;
    let metrics = LogisticMetrics {
        riskgrad_version: env!("CARGO_PKG_VERSION"),
        data: &facts.data_name,
        model,
        solver: &run.solver,
        newton_steps: run.fit.iterations,
        validation: &run.evaluation,
        train_rows: train.rows(),
        validation_rows: val.rows(),
        seconds: facts.started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&metrics).map_err(Error::internal)?;
    files.add(&out.join("metrics.json"), &json)?;
    let split = format!(
        "{} fitted, {} validation; stratified at random (seed {})",
        train.rows(),
        val.rows(),
        facts.seed
    );
    let card = facts.card_data(prepared, split);
    commit_holdout_model(out, files, &saved, card, None, None, &stability)
}

/// Stages the model card of `saved` (validated on held-out rows, with `data` and, for a
/// network, the challenger's name and AUC and the epochs trained and kept), the
/// stability baseline and the model beside the files already in `files`, then swaps
/// them all in (config.json last).
fn commit_holdout_model(
    out: &Path,
    mut files: FileSet,
    saved: &SavedModel,
    data: CardData,
    challenger: Option<(String, f64)>,
    epochs: Option<String>,
    stability: &Baseline,
) -> Result<()> {
    let Some(evaluation) = &saved.validation else {
        return Err(Error::internal(
            "a hold-out run's model is saved with its figures",
        ));
    };
    let card = model_card::render(&CardInput {
        model: saved,
        data,
        validation: CardValidation::Holdout {
            model: evaluation,
            challenger,
        },
        epochs,
        stability: Some(stability),
        written_on: model_card::today(),
    });
    files.add(&out.join(MODEL_CARD_FILE), card.as_bytes())?;
    stability.stage(out, &mut files)?;
    saved.stage(out, &mut files)?;
    files.commit()
}
