//! `riskgrad train --model logistic`: the L2 logistic regression solved on the prepared
//! features (no epochs, no optimizer), saved as a one-layer MLP so every other command
//! reads it as any model.

use super::train::TrainArgs;
use riskgrad::data::dates::DateRange;
use riskgrad::data::Prepared;
use riskgrad::logistic::{fit_logistic, DEFAULT_L2};
use riskgrad::metrics::{evaluate, Evaluation};
use riskgrad::model_card::{self, CardInput, CardValidation, MODEL_CARD_FILE};
use riskgrad::model_io::{SavedModel, TrainSettings};
use riskgrad::nn::ModelSpec;
use riskgrad::stability::Baseline;
use riskgrad::{Error, Result};
use serde::Serialize;
use std::path::Path;
use std::time::Instant;

#[derive(Serialize)]
struct MetricsFile<'a> {
    riskgrad_version: &'static str,
    data: String,
    model: &'a ModelSpec,
    solver: &'a str,
    newton_steps: usize,
    /// The solved weights on the validation rows.
    validation: &'a Evaluation,
    train_rows: usize,
    validation_rows: usize,
    seconds: f64,
}

/// Fits, saves the model and metrics.json in `out`, prints the validation figures.
pub fn run(
    args: &TrainArgs,
    prepared: &Prepared,
    pos_weight: f32,
    dates: Option<DateRange>,
    out: &Path,
    started: Instant,
) -> Result<()> {
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
    let evaluation = evaluate(&probs, &val.y, None, super::train::BOOTSTRAP, args.seed);
    let _lock = super::output::claim_model_dir(out)?;
    let params = fit.params()?;
    // The training rows' score and column distributions, for `riskgrad monitor`.
    let train_probs: Vec<f32> = fit.predict(&train.x).iter().map(|&p| p as f32).collect();
    let stability = Baseline::new(&train_probs, prepared.profile.clone(), &params);
    let saved = SavedModel {
        model: model.clone(),
        preprocessing: prepared.preprocessor.clone(),
        feature_order: None,
        baseline: super::train::column_means(&train.x, model.inputs()),
        training: TrainSettings {
            data: args.data.name(),
            optimizer: riskgrad::engine::graph::Optimizer::Sgd {
                lr: 0.0,
                momentum: 0.0,
            },
            batch: train.rows(),
            epochs: 1,
            seed: args.seed,
            pos_weight,
            val_split: args.val_split,
            early_stop: None,
            stop_split: None,
            cv_folds: None,
            device: "cpu (f64 solver)".into(),
            device_choice: None,
            solver: Some(solver.clone()),
            val_rows: Some(prepared.val_fingerprints.clone()),
        },
        epoch: 1,
        validation: Some(evaluation.clone()),
        params,
    };
    let mut files = riskgrad::files::FileSet::replacing(out)?;
    let metrics = MetricsFile {
        riskgrad_version: env!("CARGO_PKG_VERSION"),
        data: args.data.name(),
        model: &model,
        solver: &solver,
        newton_steps: fit.iterations,
        validation: &evaluation,
        train_rows: train.rows(),
        validation_rows: val.rows(),
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_vec_pretty(&metrics).map_err(Error::internal)?;
    files.add(&out.join("metrics.json"), &json)?;
    let split = format!(
        "{} fitted, {} validation; stratified at random (seed {})",
        train.rows(),
        val.rows(),
        args.seed
    );
    let card = model_card::render(&CardInput {
        model: &saved,
        data: super::train::card_data(args, prepared, split, dates),
        validation: CardValidation::Holdout {
            model: &evaluation,
            challenger: None,
        },
        epochs: None,
        stability: Some(&stability),
        written_on: model_card::today(),
    });
    files.add(&out.join(MODEL_CARD_FILE), card.as_bytes())?;
    stability.stage(out, &mut files)?;
    saved.stage(out, &mut files)?;
    files.commit()?;
    println!(
        "done in {:.1}s: logistic regression ({solver}): val AUC {:.4}, KS {:.4}, Gini {:.4}, log loss {:.4}, Brier {:.4}; wrote the model, metrics.json and model_card.md to {}",
        started.elapsed().as_secs_f64(),
        evaluation.auc,
        evaluation.ks,
        evaluation.gini,
        evaluation.log_loss,
        evaluation.brier,
        out.display()
    );
    Ok(())
}
