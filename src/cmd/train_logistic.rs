//! `riskgrad train --model logistic`: the L2 logistic regression solved on the prepared
//! features (no epochs, no optimizer) by the library (`train::model_dir`), saved as a
//! one-layer MLP so every other command reads it as any model.

use super::train::TrainArgs;
use riskgrad::data::Prepared;
use riskgrad::train::model_dir::{fit_logistic_run, save_logistic_run, RunFacts};
use riskgrad::Result;
use std::path::Path;

/// Fits, saves the model and metrics.json in `out`, prints the validation figures.
pub fn run(
    args: &TrainArgs,
    prepared: &Prepared,
    pos_weight: f32,
    facts: &RunFacts,
    out: &Path,
) -> Result<()> {
    let run = fit_logistic_run(prepared, pos_weight, args.val_split, args.seed)?;
    let _lock = super::output::claim_model_dir(out)?;
    save_logistic_run(out, facts, prepared, &run)?;
    let evaluation = &run.evaluation;
    println!(
        "done in {:.1}s: logistic regression ({}): val AUC {:.4}, KS {:.4}, Gini {:.4}, log loss {:.4}, Brier {:.4}; wrote the model, metrics.json and model_card.md to {}",
        facts.started.elapsed().as_secs_f64(),
        run.solver,
        evaluation.auc,
        evaluation.ks,
        evaluation.gini,
        evaluation.log_loss,
        evaluation.brier,
        out.display()
    );
    Ok(())
}
