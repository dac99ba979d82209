//! `riskgrad eval`: a saved model's metrics on a labelled CSV file, optionally the
//! fairness check by a protected column (`--protected`), and an HTML page (`--report`).

use super::output::open_output_for;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::eval::{
    check_rows_asked, fairness_by, open_labelled, pick_rows, same_file, score_labelled, Picked,
    RowsAsked, Selection,
};
use riskgrad::fairness::{Fairness, Grouping, FOUR_FIFTHS};
use riskgrad::metrics::{evaluate, Evaluation};
use riskgrad::report::{eval_report_html, EvalReportInput};
use riskgrad::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The model directory `riskgrad train --out` wrote.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// Data file with the model's columns and the target: CSV (.csv or .csv.gz) or
    /// Parquet (.parquet, or a directory of .parquet files). Default: the bundled Taiwan
    /// file.
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Which rows to score: `validation`, the rows held out when the model was trained
    /// (found in the file by their cells' content, whatever their order), or `all`.
    /// Default: `validation` when the file holds any of them, so that rows the model
    /// learned from do not inflate its metrics; `all` on a file that holds none (with a
    /// note), except the training file's path, where that is an error.
    #[arg(long, value_enum, value_name = "ROWS")]
    pub rows: Option<Rows>,
    /// Scores at or above this count as predicted default. Default: the threshold that
    /// maximizes KS on this data.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Bootstrap resamples for the AUC's 95% interval (at most 100000).
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// A protected attribute (e.g. SEX, AGE): a column of the data file, an input of the
    /// model or not. Adds the fairness check per group of its values: rows, default
    /// rate, mean predicted probability, approval rate at the threshold (approved: score
    /// below it), adverse impact ratio against the most favoured group (flagged below
    /// 0.8, the four-fifths rule), AUC and calibration. Missing cells form their own
    /// group.
    #[arg(long, value_name = "COLUMN")]
    pub protected: Option<String>,
    /// With --protected: a numeric column with more than N distinct values (an age, an
    /// income) is cut at its quantiles into at most N groups of about equal rows; a
    /// text column, or one with N values or fewer, has a group per value.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "protected")]
    pub protected_bins: usize,
    /// Also write a self-contained HTML page of the evaluation here: the metrics, ROC,
    /// KS and calibration plots, and the fairness table with --protected.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Rows scored per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring>.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    #[command(flatten)]
    pub tune: super::TuneArg,
}

#[derive(clap::ValueEnum, Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Rows {
    All,
    Validation,
}

#[derive(Serialize)]
struct EvalOutput<'a> {
    model: String,
    data: String,
    /// `all`, or `validation` (the rows held out in training).
    rows_scored: Rows,
    /// With `validation`: whether the rows were found by content (the fingerprints saved
    /// with the model), rather than by position (a model saved before them).
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_rows_verified: Option<bool>,
    /// Rows held out in training that the file no longer holds (found by content).
    #[serde(skip_serializing_if = "Option::is_none")]
    validation_rows_not_found: Option<usize>,
    /// Rows left out because their target cell is empty.
    rows_without_target: usize,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
    /// The fairness check by the `--protected` column.
    #[serde(skip_serializing_if = "Option::is_none")]
    fairness: Option<&'a Fairness>,
}

pub fn run(args: &EvalArgs) -> Result<()> {
    run_with(args, &mut |doc| println!("{doc}"))
}

/// The most bootstrap resamples `--bootstrap` accepts: each one resamples every row, so
/// 10^8 of them ran for hours with no sign of progress.
pub const MAX_BOOTSTRAP: usize = 100_000;

/// [`run`], handing the `--json` document to `emit_json` instead of printing it (the
/// Python package returns it as a dict).
pub fn run_with(args: &EvalArgs, emit_json: &mut dyn FnMut(&str)) -> Result<()> {
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::flag(
                "--threshold",
                format!("{t} is not a probability between 0 and 1"),
            ));
        }
    }
    if args.bootstrap > MAX_BOOTSTRAP {
        return Err(Error::flag(
            "--bootstrap",
            format!(
                "{} resamples is more than the {MAX_BOOTSTRAP} riskgrad allows (each scores every row again); 10000 is plenty for a 95% interval",
                args.bootstrap
            ),
        ));
    }
    if args.batch == 0 {
        return Err(Error::flag("--batch", "must be at least 1"));
    }
    if args.protected.is_some() && args.protected_bins < 2 {
        return Err(Error::flag(
            "--protected-bins",
            format!(
                "{} is too few: groups need at least 2 bins",
                args.protected_bins
            ),
        ));
    }
    let model = super::load_model(&args.model)?;
    let mut inputs = vec![args.model.as_path()];
    inputs.extend(args.data.as_deref());
    let report = match &args.report {
        Some(path) => Some(open_output_for("--report", path, &inputs)?),
        None => None,
    };
    let data = args
        .data
        .as_ref()
        .map_or(format!("bundled {}", riskgrad::data::BUNDLED_NAME), |p| {
            p.display().to_string()
        });
    let trained_on_this =
        data == model.training.data || same_file(args.data.as_deref(), &model.training.data);
    let asked = args.rows.map(|rows| match rows {
        Rows::All => RowsAsked::All,
        Rows::Validation => RowsAsked::Validation,
    });
    check_rows_asked(&model, &data, asked, trained_on_this)?;
    let reader = open_labelled(args.data.as_deref(), &model, args.protected.as_deref())?;
    let mut exec = super::executor_tuned(&args.device, args.tune.mode)?;
    let scores = score_labelled(exec.as_mut(), &model, reader, args.batch)?;
    super::data_args::report_scoring_notes(scores.odd_cells.iter(), &scores.unused_columns);
    let skipped = scores.skipped;
    let Picked {
        selection,
        probs,
        labels,
        cells,
        notes,
    } = pick_rows(scores, &model, &data, asked, trained_on_this)?;
    for note in notes {
        eprintln!("note: {note}");
    }
    let rows = match selection {
        Selection::All => Rows::All,
        _ => Rows::Validation,
    };
    let ev = evaluate(&probs, &labels, args.threshold, args.bootstrap, args.seed);
    let fair = match args.protected.as_deref() {
        None => None,
        Some(column) => Some(fairness_by(
            column,
            &cells,
            args.protected_bins,
            (&probs, &labels),
            ev.threshold,
        )?),
    };
    let mut data_shown = data.clone();
    if args.json {
        let out = EvalOutput {
            model: args.model.display().to_string(),
            data,
            rows_scored: rows,
            validation_rows_verified: (rows == Rows::Validation)
                .then_some(matches!(selection, Selection::ByContent { .. })),
            validation_rows_not_found: match selection {
                Selection::ByContent { not_found } => Some(not_found),
                _ => None,
            },
            rows_without_target: skipped,
            evaluation: &ev,
            fairness: fair.as_ref(),
        };
        emit_json(&serde_json::to_string_pretty(&out).map_err(Error::internal)?);
    } else {
        let data = match selection {
            Selection::ByContent { not_found: 0 } => format!(
                "{data}, validation rows (held out in training, found by content: {:.0}%, seed {})",
                100.0 * model.training.val_split,
                model.training.seed
            ),
            Selection::ByContent { not_found } => format!(
                "{data}, validation rows (held out in training, found by content; {not_found} not in this file)"
            ),
            Selection::ByPosition => format!(
                "{data}, rows at the validation positions (held out in training if the file is unchanged: {:.0}%, seed {})",
                100.0 * model.training.val_split,
                model.training.seed
            ),
            Selection::All => data,
        };
        print!("{}", render(&ev, &data, skipped, args.threshold.is_some()));
        if let Some(f) = &fair {
            print!("{}", render_fairness(f));
        }
        data_shown = data;
    }
    if let (Some(w), Some(path)) = (report, &args.report) {
        let page = eval_report_html(&EvalReportInput {
            title: format!("riskgrad eval: {}", args.model.display()),
            details: vec![
                ("model".into(), args.model.display().to_string()),
                ("data".into(), data_shown),
            ],
            probs: &probs,
            labels: &labels,
            evaluation: &ev,
            fairness: fair.as_ref(),
        })?;
        let mut w = w;
        w.write_all(page.as_bytes())?;
        w.commit()?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".into()
    }
}

/// The human-readable tables.
pub fn render(ev: &Evaluation, data: &str, skipped: usize, threshold_given: bool) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{data}: {} rows, {} defaults ({:.1}%)",
        ev.rows,
        ev.positives,
        100.0 * ev.positives as f64 / ev.rows.max(1) as f64
    );
    if skipped > 0 {
        let _ = writeln!(s, "left out {skipped} rows without a target value");
    }
    let ci = ev
        .auc_ci95
        .map_or("n/a".into(), |(lo, hi)| format!("[{lo:.4}, {hi:.4}]"));
    let how = match (ev.threshold_is_max_ks, threshold_given) {
        (true, _) => "max KS",
        (false, true) => "given",
        // No KS to maximize where the rows hold one class.
        (false, false) => "0.5: KS needs both classes",
    };
    let _ = writeln!(
        s,
        "\n  AUC        {}   95% CI {ci} ({} bootstrap resamples)",
        f(ev.auc),
        ev.bootstrap_resamples
    );
    for (k, v) in [
        ("KS", ev.ks),
        ("Gini", ev.gini),
        ("log loss", ev.log_loss),
        ("Brier", ev.brier),
    ] {
        let _ = writeln!(s, "  {k:<10} {}", f(v));
    }
    if ev.auc < 0.5 {
        // KS is the largest gap between the two classes' score distributions, either
        // way round, so it stays high when the scores rank backwards.
        let _ = writeln!(
            s,
            "  note: AUC below 0.5: the scores rank the defaults lower than the others (a target coded the other way round, or the wrong model for this file); KS measures the gap either way round"
        );
    }
    let _ = writeln!(
        s,
        "\n  at threshold {:.4} ({how}): score >= threshold means predicted default",
        ev.threshold
    );
    for (k, v) in [
        ("accuracy", ev.accuracy),
        ("precision", ev.precision),
        ("recall", ev.recall),
        ("F1", ev.f1),
    ] {
        let _ = writeln!(s, "  {k:<10} {}", f(v));
    }
    let c = &ev.confusion;
    let _ = writeln!(
        s,
        "\n  confusion matrix      predicted default   predicted no default"
    );
    let _ = writeln!(
        s,
        "  defaulted             {:>17}   {:>20}",
        c.true_positives, c.false_negatives
    );
    let _ = writeln!(
        s,
        "  did not default       {:>17}   {:>20}",
        c.false_positives, c.true_negatives
    );
    let _ = writeln!(s, "\n  calibration by score decile (1 = lowest scores)");
    let _ = writeln!(
        s,
        "  decile    rows   score range          mean predicted   observed rate"
    );
    for b in &ev.calibration {
        let _ = writeln!(
            s,
            "  {:>6}  {:>6}   {:.4} - {:.4}      {:>14}   {:>13}",
            b.bin,
            b.rows,
            b.min_score,
            b.max_score,
            f(b.mean_score),
            f(b.default_rate)
        );
    }
    s
}

/// The fairness table of `eval`'s text output.
pub fn render_fairness(fair: &Fairness) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let how = match fair.grouping {
        Grouping::Values => "a group per value",
        Grouping::QuantileBins => "quantile bins",
    };
    let _ = writeln!(
        s,
        "\n  fairness by {} ({how}): approved = score below {:.4}; AIR = approval rate / the most favoured group's",
        fair.column, fair.threshold
    );
    let width = fair
        .groups
        .iter()
        .map(|g| g.group.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let _ = writeln!(
        s,
        "  {:<width$}  {:>7}  {:>12}  {:>14}  {:>13}  {:>7}  {:>7}",
        "group", "rows", "default rate", "mean predicted", "approval rate", "AIR", "AUC"
    );
    for g in &fair.groups {
        let mark = if g.most_favoured {
            "  most favoured"
        } else if g.flagged {
            "  FLAGGED"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  {:<width$}  {:>7}  {:>12}  {:>14}  {:>13}  {:>7}  {:>7}{mark}",
            g.group,
            g.rows,
            f(g.default_rate),
            f(g.mean_predicted),
            f(g.approval_rate),
            f(g.adverse_impact_ratio),
            f(g.auc)
        );
    }
    match (fair.most_favoured.as_deref(), fair.flagged.len()) {
        (None, _) => {
            let _ = writeln!(s, "  no group has any approval at this threshold: adverse impact ratios are undefined");
        }
        (Some(_), 0) => {
            let _ = writeln!(
                s,
                "  no group's adverse impact ratio is below {FOUR_FIFTHS} (four-fifths rule)"
            );
        }
        (Some(_), n) => {
            let _ = writeln!(
                s,
                "  FLAGGED: {n} group(s) with an adverse impact ratio below {FOUR_FIFTHS} (four-fifths rule): {}",
                fair.flagged.join(", ")
            );
        }
    }
    s
}
