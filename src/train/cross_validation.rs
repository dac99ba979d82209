//! K-fold cross-validation of a network: K networks on stratified folds, each fold held
//! out once and the rest trained on as a single run would be (the caller trains each
//! fold, with early stopping carved from the fold's training rows). Each fold's figures,
//! their mean and spread, beside the logistic challenger's on the same folds; with
//! `ensemble`, the fold models saved as one model scoring their mean probability.

use super::model_dir::{RunFacts, BOOTSTRAP};
use super::network::{ensemble_of, kept_epochs_phrase, MemberFigures, TrainedNetwork};
use crate::data::{fold_rows, stratified_folds, LabelledTable, PrepareOptions, Prepared};
use crate::engine::exec::Executor;
use crate::error::{Error, Result, Setting};
use crate::files::{AtomicWriter, FileSet};
use crate::logistic::challenger;
use crate::metrics::{evaluate, Evaluation};
use crate::model_card::{self, CardData, CardInput, CardValidation, MODEL_CARD_FILE};
use crate::model_io::SavedModel;
use crate::nn::ModelSpec;
use crate::report::{mean_std, stage_report, FoldTable, ReportInput};
use crate::stability::Baseline;
use serde::Serialize;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Most folds a cross-validation takes (each is a full training run).
pub const MAX_FOLDS: usize = 100;

/// The file of each row's fold and out-of-fold scores.
pub const FOLDS_FILE: &str = "folds.csv";

/// Refuses a fold count outside 2..=[`MAX_FOLDS`] (`Setting::Folds`).
pub fn check_folds(k: usize) -> Result<()> {
    match (2..=MAX_FOLDS).contains(&k) {
        true => Ok(()),
        false => Err(Error::invalid(
            Setting::Folds,
            format!("{k} folds: give 2 to {MAX_FOLDS} (5 is usual)"),
        )),
    }
}

/// One fold's figures (metrics.json `folds`).
#[derive(Clone, Debug, Serialize)]
pub struct FoldFigures {
    /// The fold, from 1.
    pub fold: usize,
    /// Its rows, held out from its model's training.
    pub held_out_rows: usize,
    /// The fold model's AUC on them.
    pub auc: f64,
    /// Its KS.
    pub ks: f64,
    /// Its log loss.
    pub log_loss: f64,
    /// The logistic challenger's AUC on the same rows.
    pub challenger_auc: f64,
    /// The epoch whose weights were kept (the first member's).
    pub saved_epoch: usize,
    /// The epochs trained (by the first member).
    pub epochs_trained: usize,
    /// Each member's, when the fold trained several.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<MemberFigures>,
    /// The kept epochs in words, for the fold's line.
    #[serde(skip)]
    pub kept_epochs: String,
    /// The fold's time, training and scoring.
    pub seconds: f64,
}

/// Mean and sample standard deviation of a figure over the folds.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    /// The mean.
    pub mean: f64,
    /// The sample standard deviation.
    pub std: f64,
}

/// A cross-validation to run.
pub struct CrossValidation<'a> {
    /// The labelled rows, read once.
    pub table: &'a LabelledTable,
    /// How each fold's rows are prepared.
    pub options: &'a PrepareOptions,
    /// The number of folds.
    pub folds: usize,
    /// The seed of the fold assignment (the caller's folds train with it too).
    pub seed: u64,
    /// Fit one preprocessing on every row and keep the fold models as one ensemble.
    pub ensemble: bool,
    /// What the files record of the run.
    pub facts: &'a RunFacts,
}

/// The members of an ensemble and what its saved model needs.
struct EnsembleParts {
    preprocessing: crate::data::Preprocessor,
    members: Vec<Vec<f32>>,
    /// Row-weighted sum of the members' explanation baselines, and the rows.
    baseline_sum: Vec<f64>,
    baseline_rows: usize,
    /// The last fold's rows (every row, under the shared preprocessing), scored by the
    /// ensemble for its stability baseline.
    last_prepared: Option<Prepared>,
    card: Option<CardData>,
}

/// A finished cross-validation, ready to save.
pub struct CrossValidated {
    /// Each fold's figures.
    pub figures: Vec<FoldFigures>,
    /// Every labelled row's out-of-fold score, evaluated together.
    pub pooled: Evaluation,
    /// The last fold's network (its model and settings stand for every fold's).
    pub last: TrainedNetwork,
    assignment: Vec<u32>,
    labels: Vec<f32>,
    oof: Vec<f32>,
    oof_challenger: Vec<f32>,
    ensemble: Option<EnsembleParts>,
}

/// metrics.json of a cross-validation.
#[derive(Serialize)]
struct CvMetrics<'a> {
    riskgrad_version: &'static str,
    data: &'a str,
    model: &'a ModelSpec,
    device: &'a str,
    folds_asked: usize,
    /// Seed of the fold assignment (and of every fold's training).
    seed: u64,
    /// Whether the preprocessing was fitted per fold (on its training rows) or once on
    /// every row (an ensemble).
    preprocessing_fitted: &'static str,
    folds: &'a [FoldFigures],
    auc: Spread,
    ks: Spread,
    log_loss: Spread,
    challenger_auc: Spread,
    /// Every row's out-of-fold score, evaluated together.
    out_of_fold: &'a Evaluation,
    /// The directory's model, when an ensemble was saved.
    ensemble: bool,
    seconds: f64,
}

impl CrossValidation<'_> {
    /// Runs the folds one after another: `train_fold(f, prepared)` trains fold `f`'s
    /// network on `prepared` (its training rows, and its held-out rows as the
    /// validation split) and `on_fold` hears each fold's figures.
    ///
    /// Errors: a fold count out of range, or fewer defaults or non-defaults than folds
    /// (`Setting::Folds`); whatever preparing or training a fold fails with.
    pub fn run(
        &self,
        train_fold: &mut dyn FnMut(usize, &mut Prepared) -> Result<TrainedNetwork>,
        on_fold: &mut dyn FnMut(&FoldFigures),
    ) -> Result<CrossValidated> {
        let k = self.folds;
        check_folds(k)?;
        let labels = self.table.labels().to_vec();
        let positives = labels.iter().filter(|&&v| v > 0.5).count();
        let negatives = labels.len() - positives;
        if positives.min(negatives) < k {
            return Err(Error::invalid(
                Setting::Folds,
                format!(
                    "{k} folds need at least {k} defaults and {k} non-defaults with a target; the data has {positives} and {negatives}"
                ),
            ));
        }
        let assignment = stratified_folds(&labels, k, self.seed);
        // An ensemble's members must read the same features: one preprocessing for all.
        let every_row: Vec<u32> = (0..labels.len() as u32).collect();
        let mut ensemble = match self.ensemble {
            true => Some(EnsembleParts {
                preprocessing: self.table.fit_preprocessor(&every_row, self.options)?,
                members: Vec::new(),
                baseline_sum: Vec::new(),
                baseline_rows: 0,
                last_prepared: None,
                card: None,
            }),
            false => None,
        };
        let mut oof = vec![f32::NAN; labels.len()];
        let mut oof_challenger = vec![f32::NAN; labels.len()];
        let mut figures = Vec::with_capacity(k);
        let mut last = None;
        for f in 0..k {
            let fold_started = Instant::now();
            let (train_idx, held_idx) = fold_rows(&assignment, f as u32);
            let mut prepared = match &ensemble {
                Some(parts) => self.table.prepare_split_with(
                    parts.preprocessing.clone(),
                    &train_idx,
                    &held_idx,
                )?,
                None => self
                    .table
                    .prepare_split(&train_idx, &held_idx, self.options)?,
            };
            if let (0, Some(parts)) = (f, &mut ensemble) {
                let split = format!(
                    "{k} stratified folds (seed {}): each member trained on the rows of the other folds",
                    self.seed
                );
                parts.card = Some(self.facts.card_data(&prepared, split));
            }
            let trained = train_fold(f, &mut prepared)?;
            let ev = evaluate(&trained.probs, &prepared.val.y, None, 0, self.seed);
            let lr = challenger(
                &prepared.train,
                &prepared.val,
                trained.model.inputs(),
                trained.settings.pos_weight,
            )?;
            for (i, &row) in held_idx.iter().enumerate() {
                oof[row as usize] = trained.probs[i];
                oof_challenger[row as usize] = lr.probs[i];
            }
            let figure = FoldFigures {
                fold: f + 1,
                held_out_rows: held_idx.len(),
                auc: ev.auc,
                ks: ev.ks,
                log_loss: ev.log_loss,
                challenger_auc: lr.validation_auc,
                saved_epoch: trained.outcome().kept_epoch,
                epochs_trained: trained.outcome().history.len(),
                members: trained.member_figures(),
                kept_epochs: kept_epochs_phrase(&trained.outcomes),
                seconds: fold_started.elapsed().as_secs_f64(),
            };
            on_fold(&figure);
            figures.push(figure);
            if let Some(parts) = &mut ensemble {
                // Each row is in k-1 training folds, so the row-weighted mean of the
                // folds' baselines is the mean over every row.
                let rows = prepared.train.rows();
                parts.baseline_sum.resize(trained.baseline.len(), 0.0);
                for (s, &b) in parts.baseline_sum.iter_mut().zip(&trained.baseline) {
                    *s += b as f64 * rows as f64;
                }
                parts.baseline_rows += rows;
                parts.members.extend(trained.member_params.iter().cloned());
                parts.last_prepared = Some(prepared);
            }
            last = Some(trained);
        }
        let pooled = evaluate(&oof, &labels, None, BOOTSTRAP, self.seed);
        Ok(CrossValidated {
            figures,
            pooled,
            last: last.expect("at least two folds ran"),
            assignment,
            labels,
            oof,
            oof_challenger,
            ensemble,
        })
    }
}

impl CrossValidated {
    /// A figure's mean and spread over the folds.
    pub fn spread(&self, figure: impl Fn(&FoldFigures) -> f64) -> Spread {
        let (mean, std) = mean_std(&self.figures.iter().map(figure).collect::<Vec<_>>());
        Spread { mean, std }
    }

    /// Saves the cross-validation to `out`: folds.csv, metrics.json, report.html, and
    /// with an ensemble its model, model card and stability baseline (scored on an
    /// executor from `open_executor`). Without one, a model an earlier run left in `out`
    /// is removed so that every file there describes this run; the paths removed are
    /// returned.
    pub fn save(
        &self,
        out: &Path,
        cv: &CrossValidation,
        device: &str,
        open_executor: &mut dyn FnMut() -> Result<Box<dyn Executor>>,
    ) -> Result<Vec<PathBuf>> {
        let (k, facts, last) = (cv.folds, cv.facts, &self.last);
        let data_name = &facts.data_name;
        // Every file is written in full before any replaces an earlier run's (see
        // FileSet); an ensemble's config.json goes last.
        let mut files = FileSet::replacing(out)?;
        files.add_writer(self.folds_file(out, cv.table)?)?;
        let metrics = CvMetrics {
            riskgrad_version: env!("CARGO_PKG_VERSION"),
            data: data_name,
            model: &last.model,
            device,
            folds_asked: k,
            seed: cv.seed,
            preprocessing_fitted: match self.ensemble.is_some() {
                true => "once, on every row (an ensemble)",
                false => "per fold, on its training rows",
            },
            folds: &self.figures,
            auc: self.spread(|f| f.auc),
            ks: self.spread(|f| f.ks),
            log_loss: self.spread(|f| f.log_loss),
            challenger_auc: self.spread(|f| f.challenger_auc),
            out_of_fold: &self.pooled,
            ensemble: self.ensemble.is_some(),
            seconds: facts.started.elapsed().as_secs_f64(),
        };
        let json = serde_json::to_vec_pretty(&metrics).map_err(Error::internal)?;
        files.add(&out.join("metrics.json"), &json)?;
        let fold_table = FoldTable {
            columns: ["AUC", "KS", "log loss", "challenger AUC"]
                .map(String::from)
                .to_vec(),
            rows: self
                .figures
                .iter()
                .map(|f| vec![f.auc, f.ks, f.log_loss, f.challenger_auc])
                .collect(),
        };
        let label = last.model.label();
        stage_report(
            out,
            &ReportInput {
                title: format!("riskgrad {label}, {k}-fold cross-validation on {data_name}"),
                details: vec![
                    (
                        "data".into(),
                        format!(
                            "{data_name}: {} rows with a target, {k} stratified folds (seed {})",
                            self.labels.len(),
                            cv.seed
                        ),
                    ),
                    ("model".into(), label.clone()),
                    (
                        "scores shown".into(),
                        "every row's out-of-fold score (from the model that did not train on it)"
                            .into(),
                    ),
                    ("device".into(), device.into()),
                    ("riskgrad".into(), env!("CARGO_PKG_VERSION").into()),
                ],
                history: &last.outcome().history,
                epoch_rows: "stopping rows of the last fold",
                chosen_epoch: last.outcome().kept_epoch,
                probs: &self.oof,
                labels: &self.labels,
                evaluation: &self.pooled,
                challenger: Some(("logistic challenger", &self.oof_challenger)),
                folds: Some(&fold_table),
            },
            &mut files,
        )?;
        if let Some(parts) = &self.ensemble {
            self.stage_ensemble(out, cv, parts, &fold_table, open_executor, &mut files)?;
        }
        files.commit()?;
        match self.ensemble {
            Some(_) => Ok(Vec::new()),
            None => remove_stale_model(out),
        }
    }

    /// Stages the ensemble's model, stability baseline and model card.
    fn stage_ensemble(
        &self,
        out: &Path,
        cv: &CrossValidation,
        parts: &EnsembleParts,
        fold_table: &FoldTable,
        open_executor: &mut dyn FnMut() -> Result<Box<dyn Executor>>,
        files: &mut FileSet,
    ) -> Result<()> {
        let last = &self.last;
        // Every fold's members, flat: the saved ensemble scores their mean.
        let (model, params) = ensemble_of(last.member_model(), &parts.members)?;
        // Every row's ensemble score and column distribution, for `riskgrad monitor`.
        let rows = parts
            .last_prepared
            .as_ref()
            .expect("an ensemble keeps the last fold");
        let every_row: Vec<u32> = (0..self.labels.len() as u32).collect();
        let stability = Baseline::scored(
            open_executor()?.as_mut(),
            &model,
            &params,
            &[&rows.train.x, &rows.val.x],
            cv.table.profile(&parts.preprocessing, &every_row)?,
        )?;
        stability.stage(out, files)?;
        let mut training = last.settings.clone();
        training.cv_folds = Some(cv.folds);
        // Every row trained some member: none is held out, so no fingerprints.
        training.val_rows = None;
        let saved = SavedModel {
            model,
            preprocessing: parts.preprocessing.clone(),
            feature_order: last.layout.as_ref().map(|l| l.source.clone()),
            baseline: parts
                .baseline_sum
                .iter()
                .map(|s| (s / parts.baseline_rows.max(1) as f64) as f32)
                .collect(),
            training,
            epoch: last.outcome().kept_epoch,
            validation: Some(self.pooled.clone()),
            params,
        };
        if let Some(data) = &parts.card {
            let card = model_card::render(&CardInput {
                model: &saved,
                data: data.clone(),
                validation: CardValidation::CrossValidated {
                    folds: fold_table,
                    pooled: &self.pooled,
                },
                epochs: None,
                stability: Some(&stability),
                written_on: model_card::today(),
            });
            files.add(&out.join(MODEL_CARD_FILE), card.as_bytes())?;
        }
        saved.stage(out, files)
    }

    /// folds.csv: each labelled row's file row (0-based data row), its fold (0-based)
    /// and its out-of-fold scores, the network's and the challenger's.
    fn folds_file(&self, out: &Path, table: &LabelledTable) -> Result<AtomicWriter> {
        let mut w = AtomicWriter::create(&out.join(FOLDS_FILE))?;
        let mut buf = String::from("row,fold,score,challenger_score\n");
        for (i, &row) in table.file_rows().iter().enumerate() {
            let _ = writeln!(
                buf,
                "{row},{},{},{}",
                self.assignment[i], self.oof[i], self.oof_challenger[i]
            );
            if buf.len() > 1 << 16 {
                w.write_all(buf.as_bytes())?;
                buf.clear();
            }
        }
        w.write_all(buf.as_bytes())?;
        Ok(w)
    }
}

/// Removes the model files an earlier run left in `out`; the paths removed.
fn remove_stale_model(out: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    for name in [
        crate::model_io::WEIGHTS_FILE,
        crate::model_io::CONFIG_FILE,
        crate::checkpoint::CHECKPOINT_FILE,
        crate::checkpoint::NEXT_CHECKPOINT_FILE,
        MODEL_CARD_FILE,
        crate::stability::STABILITY_FILE,
    ] {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(removed)
}
