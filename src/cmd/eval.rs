//! `riskgrad eval`: a saved model's metrics on a labelled CSV file.

use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::metrics::{evaluate, Evaluation};
use riskgrad::scoring::{open_data, Scorer};
use riskgrad::{Error, Result};
use serde::Serialize;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The model directory `riskgrad train --out` wrote.
    #[arg(long, value_name = "DIR")]
    pub model: PathBuf,
    /// CSV file (.csv or .csv.gz) with the model's columns and the target. Default: the
    /// bundled Taiwan file.
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
    /// Bootstrap resamples for the AUC's 95% interval.
    #[arg(long, default_value_t = 1000)]
    pub bootstrap: usize,
    /// Seed of the bootstrap.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Print JSON instead of tables.
    #[arg(long)]
    pub json: bool,
    /// Rows scored per batch.
    #[arg(long, default_value_t = 4096)]
    pub batch: usize,
    /// auto | cpu | gpu | <adapter index> | <adapter name substring>.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
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
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if let Some(t) = args.threshold {
        if !(0.0..=1.0).contains(&t) {
            return Err(Error::flag(
                "--threshold",
                format!("{t} is not a probability between 0 and 1"),
            ));
        }
    }
    let model = super::load_model(&args.model)?;
    let data = args
        .data
        .as_ref()
        .map_or(format!("bundled {}", riskgrad::data::BUNDLED_NAME), |p| {
            p.display().to_string()
        });
    let trained_on_this =
        data == model.training.data || same_file(args.data.as_deref(), &model.training.data);
    // Where the rows held out in training would be if this is the training file: found
    // by content when the model saved their fingerprints, else by position.
    let by_position = match args.rows {
        Some(rows) => rows,
        None if trained_on_this => Rows::Validation,
        None => Rows::All,
    };
    if let (Some(k), Rows::Validation) = (model.training.cv_folds, by_position) {
        return Err(Error::flag(
            "--rows",
            format!("the model is a {k}-fold cross-validation ensemble: every row of {data} trained some of its members, so none was held out (its out-of-fold figures are in the metrics.json written beside it); --rows all scores the rows anyway"),
        ));
    }
    let saved = model.training.val_rows.as_ref();
    if saved.is_none() && args.rows == Some(Rows::Validation) && !trained_on_this {
        return Err(Error::flag(
            "--rows",
            format!("validation rows are known only on the file the model was trained on ({}), not on {data}", model.training.data),
        ));
    }
    let scored = score_labelled(args, &model)?;
    let skipped = scored.skipped;
    let (selection, probs, labels) = match (saved, args.rows) {
        (_, Some(Rows::All)) => (Selection::All, scored.probs, scored.labels),
        (Some(saved), _) => {
            let mut matcher = saved.matcher();
            let keep: Vec<bool> = scored
                .fingerprints
                .iter()
                .map(|&f| matcher.take(f))
                .collect();
            let found = saved.len() - matcher.not_found();
            if found == 0 && (args.rows == Some(Rows::Validation) || trained_on_this) {
                return Err(Error::flag(
                    "--rows",
                    format!(
                        "{data} has no validation rows: none of its rows is one of the {} held out when the model was trained on {} (they are found by their cells' content), so it is not that file as it was; --rows all scores every row",
                        saved.len(),
                        model.training.data
                    ),
                ));
            }
            if found == 0 {
                eprintln!(
                    "note: scoring every row of {data}: none of them is one of the {} rows held out when the model was trained on {} (they may be new rows, or rows it trained on)",
                    saved.len(),
                    model.training.data
                );
                (Selection::All, scored.probs, scored.labels)
            } else {
                let not_found = matcher.not_found();
                if not_found > 0 {
                    eprintln!(
                        "note: {not_found} of the {} rows held out in training are not in {data} (changed or removed); scoring the {found} found",
                        saved.len()
                    );
                }
                let pick = |v: Vec<f32>| -> Vec<f32> {
                    v.into_iter()
                        .zip(&keep)
                        .filter_map(|(v, &k)| k.then_some(v))
                        .collect()
                };
                (
                    Selection::ByContent { not_found },
                    pick(scored.probs),
                    pick(scored.labels),
                )
            }
        }
        (None, _) if by_position == Rows::Validation => {
            eprintln!(
                "note: this model was saved without its validation rows' fingerprints (before riskgrad recorded them), so eval cannot verify that {data} is unchanged: it scores the rows at the validation positions of the split"
            );
            let (p, l) = validation_rows(&scored.probs, &scored.labels, &model.training);
            (Selection::ByPosition, p, l)
        }
        (None, _) => (Selection::All, scored.probs, scored.labels),
    };
    let rows = match selection {
        Selection::All => Rows::All,
        _ => Rows::Validation,
    };
    if probs.is_empty() {
        return Err(match rows {
            Rows::Validation => Error::flag("--rows", format!("{data} has no validation rows (the model was trained with --val-split {}); --rows all scores every row", model.training.val_split)),
            Rows::All => Error::flag("--data", format!("{data} has no rows with a target value")),
        });
    }
    let ev = evaluate(&probs, &labels, args.threshold, args.bootstrap, args.seed);
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
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Error::Other(e.to_string()))?
        );
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
        print!("{}", render(&ev, &data, skipped));
    }
    Ok(())
}

/// Which rows `eval` scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Selection {
    /// Every row with a target.
    All,
    /// The rows held out in training, found by their fingerprints; `not_found` of them
    /// are not in the file.
    ByContent { not_found: usize },
    /// The rows at the validation positions of the split (a model saved without
    /// fingerprints): held out only if the file is unchanged.
    ByPosition,
}

/// The rows of a file that have a target, scored.
struct Scored {
    probs: Vec<f32>,
    labels: Vec<f32>,
    /// Each row's fingerprint (`riskgrad::data::RowFingerprints`).
    fingerprints: Vec<u64>,
    /// Rows left out because their target cell is empty.
    skipped: usize,
}

/// Scores every row that has a target.
fn score_labelled(args: &EvalArgs, model: &riskgrad::model_io::SavedModel) -> Result<Scored> {
    if args.batch == 0 {
        return Err(Error::flag("--batch", "must be at least 1"));
    }
    let mut reader = open_data(args.data.as_deref(), model)?
        .with_labels()?
        .with_fingerprints();
    let mut exec = super::executor(&args.device)?;
    let (mut scorer, mut next) =
        Scorer::for_first_batch(exec.as_mut(), model, &mut reader, args.batch)?;
    let mut out = Scored {
        probs: Vec::new(),
        labels: Vec::new(),
        fingerprints: Vec::new(),
        skipped: 0,
    };
    while let Some(batch) = next {
        let p = scorer.score(&model.arrange(batch.x))?;
        let labels = batch.labels.unwrap_or_default();
        let fingerprints = batch.fingerprints.unwrap_or_default();
        for ((p, y), f) in p.into_iter().zip(labels).zip(fingerprints) {
            if y.is_nan() {
                out.skipped += 1;
            } else {
                out.probs.push(p);
                out.labels.push(y);
                out.fingerprints.push(f);
            }
        }
        next = reader.next_batch(scorer.batch())?;
    }
    super::data_args::report_predict_odd_cells(reader.odd_cells());
    Ok(out)
}

/// Whether `path` names the file recorded as `trained_on`, written another way.
fn same_file(path: Option<&std::path::Path>, trained_on: &str) -> bool {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    path.and_then(canonical)
        .is_some_and(|p| Some(p) == canonical(std::path::Path::new(trained_on)))
}

/// The rows of the training file that training held out, if the file is unchanged: the
/// same stratified split of the labelled rows, in file order, that `data::prepare` made
/// (for models saved without the rows' fingerprints).
fn validation_rows(
    probs: &[f32],
    labels: &[f32],
    training: &riskgrad::model_io::TrainSettings,
) -> (Vec<f32>, Vec<f32>) {
    let (_, val) = riskgrad::data::stratified_split(labels, training.val_split, training.seed);
    val.iter()
        .map(|&i| (probs[i as usize], labels[i as usize]))
        .unzip()
}

fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:.4}")
    } else {
        "n/a".into()
    }
}

/// The human-readable tables.
pub fn render(ev: &Evaluation, data: &str, skipped: usize) -> String {
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
    let how = if ev.threshold_is_max_ks {
        "max KS"
    } else {
        "given"
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
