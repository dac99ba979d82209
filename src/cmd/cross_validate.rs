//! `riskgrad train --cv K`: K networks on stratified folds, each fold held out once and
//! the rest trained on as a single run would be (early stopping carved from the fold's
//! training rows). Reports each fold's figures, their mean and spread, beside the
//! logistic challenger's on the same folds; with `--ensemble`, saves the fold models as
//! one model scoring their mean probability.

use super::log::event;
use super::train::{
    card_data, prepare_options, report_dropped, train_network, ModelKind, Run, RunDevice,
    TrainArgs, TrainedNetwork, BOOTSTRAP,
};
use riskgrad::data::{fold_rows, stratified_folds, LabelledTable};
use riskgrad::files::{AtomicWriter, FileSet};
use riskgrad::logistic::challenger;
use riskgrad::metrics::{evaluate, Evaluation};
use riskgrad::model_card::{self, CardInput, CardValidation, MODEL_CARD_FILE};
use riskgrad::model_io::SavedModel;
use riskgrad::nn::{pack_ensemble, ModelSpec};
use riskgrad::report::{stage_report, FoldTable, ReportInput};
use riskgrad::stability::Baseline;
use riskgrad::{Error, Result};
use serde::Serialize;
use serde_json::json;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

/// Most folds `--cv` takes (each is a full training run).
const MAX_FOLDS: usize = 100;

/// The file of each row's fold and out-of-fold scores.
pub const FOLDS_FILE: &str = "folds.csv";

/// Checks `--cv` and `--ensemble` against the other flags, before any data is read.
pub(super) fn check_flags(args: &TrainArgs) -> Result<()> {
    let Some(k) = args.cv else {
        return Ok(());
    };
    if !(2..=MAX_FOLDS).contains(&k) {
        return Err(Error::flag(
            "--cv",
            format!("{k} folds: give 2 to {MAX_FOLDS} (5 is usual)"),
        ));
    }
    if args.resume.is_some() {
        return Err(Error::flag(
            "--resume",
            "a cross-validation run keeps no checkpoint to resume; run it again",
        ));
    }
    if matches!(args.model, ModelKind::Logistic) {
        return Err(Error::flag(
            "--model",
            "--cv cross-validates a network, and fits the logistic challenger on the same folds beside it: choose mlp, cnn, lstm or gru",
        ));
    }
    Ok(())
}

/// One fold's figures (metrics.json `folds`).
#[derive(Serialize)]
struct FoldFigures {
    fold: usize,
    held_out_rows: usize,
    auc: f64,
    ks: f64,
    log_loss: f64,
    challenger_auc: f64,
    saved_epoch: usize,
    epochs_trained: usize,
    seconds: f64,
}

/// Mean and sample standard deviation of the fold figures.
#[derive(Serialize)]
struct Spread {
    mean: f64,
    std: f64,
}

#[derive(Serialize)]
struct CvMetricsFile<'a> {
    riskgrad_version: &'static str,
    data: String,
    model: &'a ModelSpec,
    device: String,
    folds_asked: usize,
    /// Seed of the fold assignment (and of every fold's training).
    seed: u64,
    /// Whether the preprocessing was fitted per fold (on its training rows) or once on
    /// every row (`--ensemble`).
    preprocessing_fitted: &'static str,
    folds: &'a [FoldFigures],
    auc: Spread,
    ks: Spread,
    log_loss: Spread,
    challenger_auc: Spread,
    /// Every row's out-of-fold score, evaluated together.
    out_of_fold: &'a Evaluation,
    /// The directory's model, when --ensemble saved one.
    ensemble: bool,
    seconds: f64,
}

pub(super) fn run(args: &TrainArgs, started: Instant) -> Result<()> {
    let k = args.cv.expect("run only with --cv");
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("runs/latest"));
    let opts = prepare_options(args)?;
    let dates = super::train::date_range_of(args)?;
    let table = LabelledTable::read(args.data.data.as_deref(), &opts)?;
    let y = table.labels().to_vec();
    let positives = y.iter().filter(|&&v| v > 0.5).count();
    let negatives = y.len() - positives;
    if positives.min(negatives) < k {
        return Err(Error::flag(
            "--cv",
            format!(
                "{k} folds need at least {k} defaults and {k} non-defaults with a target; the data has {positives} and {negatives}"
            ),
        ));
    }
    let folds = stratified_folds(&y, k, args.seed);
    // An ensemble's members must read the same features: one preprocessing for all.
    let every_row: Vec<u32> = (0..y.len() as u32).collect();
    let shared = match args.ensemble {
        true => Some(table.fit_preprocessor(&every_row, &opts)?),
        false => None,
    };
    // One executor per fold: each fold's preprocessing may give another feature count
    // (categories, bins), and an executor holds plans of one model. A named device is
    // opened here, to name it, and serves the first fold; `auto` is decided on the first
    // fold's model, and every fold takes the winner.
    let mut run_device = RunDevice::new(&args.device, args.tune.mode);
    let named = run_device.name_before_training()?;
    let said_device = named
        .clone()
        .unwrap_or_else(|| "auto (decided on the first fold)".into());
    let mut device = named.unwrap_or_default();
    let data_name = args.data.name();
    event(
        "start",
        json!({"data": data_name, "rows": y.len(), "positive_share": positives as f64 / y.len() as f64,
               "folds": k, "seed": args.seed, "device": said_device}),
    );
    eprintln!(
        "{data_name}: {} rows with a target, {:.1}% positive; {k}-fold cross-validation (stratified, seed {}) | device: {said_device}",
        y.len(),
        100.0 * positives as f64 / y.len() as f64,
        args.seed
    );
    let mut oof = vec![f32::NAN; y.len()];
    let mut oof_challenger = vec![f32::NAN; y.len()];
    let mut figures = Vec::with_capacity(k);
    let mut members = Vec::new();
    let mut last: Option<TrainedNetwork> = None;
    let mut baseline_sum: Vec<f64> = Vec::new();
    let mut baseline_rows = 0usize;
    let mut lock = None;
    let mut card_facts = None;
    // With --ensemble, the last fold's rows (all of them, under the shared
    // preprocessing) are scored by the ensemble for its stability baseline.
    let mut last_prepared = None;
    for f in 0..k {
        let fold_started = Instant::now();
        let (train_idx, held_idx) = fold_rows(&folds, f as u32);
        let mut prepared = match &shared {
            Some(pre) => table.prepare_split_with(pre.clone(), &train_idx, &held_idx)?,
            None => table.prepare_split(&train_idx, &held_idx, &opts)?,
        };
        if f == 0 {
            report_dropped(&prepared);
            if args.ensemble {
                let split = format!(
                    "{k} stratified folds (seed {}): each member trained on the rows of the other folds",
                    args.seed
                );
                card_facts = Some(card_data(args, &prepared, split, dates.clone()));
            }
        }
        let trained = train_network(
            args,
            &mut prepared,
            Run {
                device: &mut run_device,
                resume: None,
                checkpoint: None,
                out: &out,
                verbose: false,
                lock: &mut lock,
            },
        )?;
        if device.is_empty() {
            device = trained.device.clone();
        }
        let ev = evaluate(&trained.probs, &prepared.val.y, None, 0, args.seed);
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
        let fig = FoldFigures {
            fold: f + 1,
            held_out_rows: held_idx.len(),
            auc: ev.auc,
            ks: ev.ks,
            log_loss: ev.log_loss,
            challenger_auc: lr.validation_auc,
            saved_epoch: trained.outcome.kept_epoch,
            epochs_trained: trained.outcome.history.len(),
            seconds: fold_started.elapsed().as_secs_f64(),
        };
        eprintln!(
            "fold {:>2}/{k}: AUC {:.4}  KS {:.4}  log loss {:.4}  | challenger AUC {:.4}  ({} rows held out; epoch {} of {} kept; {:.1}s)",
            fig.fold,
            fig.auc,
            fig.ks,
            fig.log_loss,
            fig.challenger_auc,
            fig.held_out_rows,
            fig.saved_epoch,
            fig.epochs_trained,
            fig.seconds
        );
        event(
            "fold",
            serde_json::to_value(&fig).unwrap_or(serde_json::Value::Null),
        );
        figures.push(fig);
        if args.ensemble {
            // Each row is in k-1 training folds, so the row-weighted mean of the folds'
            // baselines is the mean over every row.
            let rows = prepared.train.rows();
            baseline_sum.resize(trained.baseline.len(), 0.0);
            for (s, &b) in baseline_sum.iter_mut().zip(&trained.baseline) {
                *s += b as f64 * rows as f64;
            }
            baseline_rows += rows;
            members.push(trained.params.clone());
        }
        last = Some(trained);
        if args.ensemble {
            last_prepared = Some(prepared);
        }
    }
    let last = last.expect("at least two folds ran");
    let pooled = evaluate(&oof, &y, None, BOOTSTRAP, args.seed);
    let spread = |get: &dyn Fn(&FoldFigures) -> f64| {
        let (mean, std) = riskgrad::report::mean_std(&figures.iter().map(get).collect::<Vec<_>>());
        Spread { mean, std }
    };
    let (auc, ks, log_loss, challenger_auc) = (
        spread(&|f| f.auc),
        spread(&|f| f.ks),
        spread(&|f| f.log_loss),
        spread(&|f| f.challenger_auc),
    );

    // Every file is written in full before any replaces an earlier run's (see FileSet);
    // an ensemble's config.json goes last.
    let mut files = FileSet::replacing(&out)?;
    files.add_writer(folds_file(&out, &table, &folds, &oof, &oof_challenger)?)?;
    let metrics = CvMetricsFile {
        riskgrad_version: env!("CARGO_PKG_VERSION"),
        data: data_name.clone(),
        model: &last.model,
        device: device.clone(),
        folds_asked: k,
        seed: args.seed,
        preprocessing_fitted: match args.ensemble {
            true => "once, on every row (--ensemble)",
            false => "per fold, on its training rows",
        },
        folds: &figures,
        auc,
        ks,
        log_loss,
        challenger_auc,
        out_of_fold: &pooled,
        ensemble: args.ensemble,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&metrics).map_err(Error::internal)?;
    files.add(&out.join("metrics.json"), &json)?;
    let fold_table = FoldTable {
        columns: ["AUC", "KS", "log loss", "challenger AUC"]
            .map(String::from)
            .to_vec(),
        rows: figures
            .iter()
            .map(|f| vec![f.auc, f.ks, f.log_loss, f.challenger_auc])
            .collect(),
    };
    let label = last.model.label();
    stage_report(
        &out,
        &ReportInput {
            title: format!("riskgrad {label}, {k}-fold cross-validation on {data_name}"),
            details: vec![
                (
                    "data".into(),
                    format!(
                        "{data_name}: {} rows with a target, {k} stratified folds (seed {})",
                        y.len(),
                        args.seed
                    ),
                ),
                ("model".into(), label.clone()),
                (
                    "scores shown".into(),
                    "every row's out-of-fold score (from the model that did not train on it)"
                        .into(),
                ),
                ("device".into(), device),
                ("riskgrad".into(), env!("CARGO_PKG_VERSION").into()),
            ],
            history: &last.outcome.history,
            epoch_rows: "stopping rows of the last fold",
            chosen_epoch: last.outcome.kept_epoch,
            probs: &oof,
            labels: &y,
            evaluation: &pooled,
            challenger: Some(("logistic challenger", &oof_challenger)),
            folds: Some(&fold_table),
        },
        &mut files,
    )?;
    if let Some(preprocessing) = shared {
        let model = ModelSpec::ensemble(last.model.clone(), k)?;
        let params = pack_ensemble(&model, &members)?;
        // Every row's ensemble score and column distribution, for `riskgrad monitor`.
        let rows = last_prepared
            .as_ref()
            .expect("--ensemble keeps the last fold");
        let mut exec = super::executor_tuned(&args.device, args.tune.mode)?;
        let stability = Baseline::scored(
            exec.as_mut(),
            &model,
            &params,
            &[&rows.train.x, &rows.val.x],
            table.profile(&preprocessing, &every_row)?,
        )?;
        stability.stage(&out, &mut files)?;
        let mut training = last.settings.clone();
        training.cv_folds = Some(k);
        // Every row trained some member: none is held out, so no fingerprints.
        training.val_rows = None;
        let saved = SavedModel {
            model,
            preprocessing,
            feature_order: last.layout.as_ref().map(|l| l.source.clone()),
            baseline: baseline_sum
                .iter()
                .map(|s| (s / baseline_rows.max(1) as f64) as f32)
                .collect(),
            training,
            epoch: last.outcome.kept_epoch,
            validation: Some(pooled.clone()),
            params,
        };
        if let Some(data) = card_facts {
            let card = model_card::render(&CardInput {
                model: &saved,
                data,
                validation: CardValidation::CrossValidated {
                    folds: &fold_table,
                    pooled: &pooled,
                },
                epochs: None,
                stability: Some(&stability),
                written_on: model_card::today(),
            });
            files.add(&out.join(MODEL_CARD_FILE), card.as_bytes())?;
        }
        saved.stage(&out, &mut files)?;
    }
    files.commit()?;
    if !args.ensemble {
        remove_stale_model(&out)?;
    }

    let m = &metrics;
    event(
        "done",
        json!({"folds": k, "auc": m.auc, "ks": m.ks, "log_loss": m.log_loss,
               "challenger_auc": m.challenger_auc, "ensemble": args.ensemble,
               "seconds": started.elapsed().as_secs_f64(), "out": out.display().to_string()}),
    );
    let done = format!(
        "done in {:.1}s: {k}-fold cross-validation of {label}: AUC {:.4} ± {:.4}, KS {:.4} ± {:.4}, log loss {:.4} ± {:.4} | challenger (logistic regression) AUC {:.4} ± {:.4}; wrote {}{FOLDS_FILE}, metrics.json and report.html to {}",
        started.elapsed().as_secs_f64(),
        m.auc.mean,
        m.auc.std,
        m.ks.mean,
        m.ks.std,
        m.log_loss.mean,
        m.log_loss.std,
        m.challenger_auc.mean,
        m.challenger_auc.std,
        if args.ensemble {
            "the ensemble model, "
        } else {
            ""
        },
        out.display()
    );
    // stdout holds only JSON objects with --log json; the person's line goes to stderr.
    match super::log::json() {
        true => eprintln!("{done}"),
        false => println!("{done}"),
    }
    if !args.ensemble {
        eprintln!("note: no model saved (add --ensemble to save the {k} fold models as one)");
    }
    Ok(())
}

/// A cross-validation without --ensemble saves no model: one an earlier run left in the
/// directory goes, so that the directory's files all describe this run.
fn remove_stale_model(out: &std::path::Path) -> Result<()> {
    for name in [
        riskgrad::model_io::WEIGHTS_FILE,
        riskgrad::model_io::CONFIG_FILE,
        riskgrad::checkpoint::CHECKPOINT_FILE,
        MODEL_CARD_FILE,
        riskgrad::stability::STABILITY_FILE,
    ] {
        let path = out.join(name);
        match std::fs::remove_file(&path) {
            Ok(()) => eprintln!("note: removed {} (an earlier run's)", path.display()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&path, e)),
        }
    }
    Ok(())
}

/// Writes folds.csv: each labelled row's file row (0-based data row), its fold (0-based)
/// and its out-of-fold scores, the network's and the challenger's.
fn folds_file(
    out: &std::path::Path,
    table: &LabelledTable,
    folds: &[u32],
    oof: &[f32],
    oof_challenger: &[f32],
) -> Result<AtomicWriter> {
    let mut w = AtomicWriter::create(&out.join(FOLDS_FILE))?;
    let mut buf = String::from("row,fold,score,challenger_score\n");
    for (i, &row) in table.file_rows().iter().enumerate() {
        let _ = writeln!(buf, "{row},{},{},{}", folds[i], oof[i], oof_challenger[i]);
        if buf.len() > 1 << 16 {
            w.write_all(buf.as_bytes())?;
            buf.clear();
        }
    }
    w.write_all(buf.as_bytes())?;
    Ok(w)
}
