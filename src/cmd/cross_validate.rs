//! `riskgrad train --cv K`: the library's cross-validation (`train::cross_validation`)
//! with each fold trained as a single run would be (`train_network`), its lines printed
//! as the folds go by.

use super::log::event;
use super::train::{
    prepare_options, report_dropped, run_facts, train_network, ModelKind, Run, RunDevice, TrainArgs,
};
use riskgrad::data::LabelledTable;
use riskgrad::train::cross_validation::{check_folds, CrossValidation, FOLDS_FILE};
use riskgrad::{Error, Result};
use serde_json::json;
use std::time::Instant;

/// Checks `--cv` and `--ensemble` against the other flags, before any data is read.
pub(super) fn check_flags(args: &TrainArgs) -> Result<()> {
    let Some(k) = args.cv else {
        return Ok(());
    };
    check_folds(k)?;
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

pub(super) fn run(args: &TrainArgs, started: Instant) -> Result<()> {
    let k = args.cv.expect("run only with --cv");
    // `--resume` is refused with `--cv`: this is `--out`, else runs/latest.
    let out = super::train::model_dir(args);
    let opts = prepare_options(args)?;
    let facts = run_facts(args, super::train::date_range_of(args)?, started);
    let table = LabelledTable::read(args.data.data.as_deref(), &opts)?;
    let cv = CrossValidation {
        table: &table,
        options: &opts,
        folds: k,
        seed: args.seed,
        ensemble: args.ensemble,
        facts: &facts,
    };
    // One executor per fold: each fold's preprocessing may give another feature count
    // (categories, bins), and an executor holds plans of one model. A named device is
    // opened here, to name it, and serves the first fold; `auto` is decided on the first
    // fold's model, and every fold takes the winner.
    let mut run_device = RunDevice::new(&args.device, args.tune.mode, args.precision)?;
    let named = run_device.name_before_training()?;
    let said_device = named
        .clone()
        .unwrap_or_else(|| "auto (decided on the first fold)".into());
    let mut device = named.unwrap_or_default();
    let data_name = &facts.data_name;
    let labels = table.labels();
    let positive_share = labels.iter().filter(|&&v| v > 0.5).count() as f64 / labels.len() as f64;
    event(
        "start",
        json!({"data": data_name, "rows": labels.len(), "positive_share": positive_share,
               "folds": k, "seed": args.seed, "device": said_device}),
    );
    eprintln!(
        "{data_name}: {} rows with a target, {:.1}% positive; {k}-fold cross-validation (stratified, seed {}) | device: {said_device}",
        labels.len(),
        100.0 * positive_share,
        args.seed
    );
    let mut lock = None;
    let done = cv.run(
        &mut |f, prepared| {
            if f == 0 {
                report_dropped(prepared);
            }
            let trained = train_network(
                args,
                prepared,
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
            Ok(trained)
        },
        &mut |fig| {
            eprintln!(
                "fold {:>2}/{k}: AUC {:.4}  KS {:.4}  log loss {:.4}  | challenger AUC {:.4}  ({} rows held out; {}; {:.1}s)",
                fig.fold,
                fig.auc,
                fig.ks,
                fig.log_loss,
                fig.challenger_auc,
                fig.held_out_rows,
                fig.kept_epochs,
                fig.seconds
            );
            event(
                "fold",
                serde_json::to_value(fig).unwrap_or(serde_json::Value::Null),
            );
        },
    )?;
    let removed = done.save(&out, &cv, &device, &mut || {
        super::executor_tuned(&args.device, args.tune.mode)
    })?;
    for path in removed {
        eprintln!("note: removed {} (an earlier run's)", path.display());
    }
    let (auc, ks, log_loss, challenger_auc) = (
        done.spread(|f| f.auc),
        done.spread(|f| f.ks),
        done.spread(|f| f.log_loss),
        done.spread(|f| f.challenger_auc),
    );
    let seconds = started.elapsed().as_secs_f64();
    let said = format!(
        "done in {seconds:.1}s: {k}-fold cross-validation of {}: AUC {:.4} ± {:.4}, KS {:.4} ± {:.4}, log loss {:.4} ± {:.4} | challenger (logistic regression) AUC {:.4} ± {:.4}; wrote {}{FOLDS_FILE}, metrics.json and report.html to {}",
        done.last.model.label(),
        auc.mean,
        auc.std,
        ks.mean,
        ks.std,
        log_loss.mean,
        log_loss.std,
        challenger_auc.mean,
        challenger_auc.std,
        if args.ensemble {
            "the ensemble model, "
        } else {
            ""
        },
        out.display()
    );
    super::log::say_done(
        &out,
        json!({"folds": k, "auc": auc, "ks": ks, "log_loss": log_loss,
               "challenger_auc": challenger_auc, "ensemble": args.ensemble,
               "seconds": seconds, "out": out.display().to_string()}),
        &said,
    )?;
    if !args.ensemble {
        eprintln!("note: no model saved (add --ensemble to save the {k} fold models as one)");
    }
    Ok(())
}
