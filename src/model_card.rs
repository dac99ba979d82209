//! model_card.md: the documentation a model risk review asks for (the kind SR 11-7
//! describes), written beside every saved model from what the run knows: the data, the
//! preprocessing, the model and its settings, the validation figures with their
//! intervals, the challenger's, the monotone constraints, the stability baseline, and the
//! known limits. What only the model's owner can say (intended use, the population) is
//! left as marked blanks, not invented.

use crate::data::dates::DateRange;
use crate::data::{InputColumn, Prepared, Preprocessor};
use crate::metrics::Evaluation;
use crate::model_io::SavedModel;
use crate::report::FoldTable;
use crate::stability::Baseline;
use std::fmt::Write as _;

/// The model card's file name in a model directory.
pub const MODEL_CARD_FILE: &str = "model_card.md";

/// What the run knows about its data.
#[derive(Clone)]
pub struct CardData {
    /// The file as the user named it (or the bundled file's name).
    pub name: String,
    /// Data rows in the file.
    pub rows: usize,
    /// Rows left out because their target was missing.
    pub rows_without_target: usize,
    /// Share of the rows with a target that are defaults.
    pub positive_share: f64,
    /// `--date COL`: the column and the earliest and latest dates in it.
    pub date_range: Option<DateRange>,
    /// How the rows were split, in words (e.g. "19,200 fitted, 4,800 for early
    /// stopping, 6,000 validation; stratified at random, seed 0").
    pub split: String,
    /// Columns left out, each with why.
    pub dropped: Vec<(String, String)>,
}

impl CardData {
    /// What the card says of `prepared` (named `name`): its rows, the split in words,
    /// and every column left out with why: those the preprocessing dropped, then
    /// `dropped_by_caller` (each with the reason to show), then the row identifier.
    pub fn of(
        prepared: &Prepared,
        name: String,
        split: String,
        date_range: Option<DateRange>,
        dropped_by_caller: &[(String, String)],
    ) -> CardData {
        let labelled = prepared.train.rows() + prepared.val.rows();
        let positives = prepared
            .train
            .y
            .iter()
            .chain(&prepared.val.y)
            .filter(|&&y| y > 0.5)
            .count();
        let mut dropped: Vec<(String, String)> = prepared
            .auto_dropped
            .iter()
            .map(|d| (d.name.clone(), d.reason.clone()))
            .collect();
        dropped.extend(dropped_by_caller.iter().cloned());
        if let Some(id) = &prepared.preprocessor.id_column {
            if !dropped.iter().any(|(n, _)| n == id) {
                dropped.push((id.clone(), "row identifier, kept for predictions".into()));
            }
        }
        CardData {
            name,
            rows: prepared.n_rows,
            rows_without_target: prepared.rows_without_target,
            positive_share: positives as f64 / labelled.max(1) as f64,
            date_range,
            split,
            dropped,
        }
    }
}

/// How the model was validated.
pub enum CardValidation<'a> {
    /// On held-out rows: the model's figures, and the challenger's AUC on the same rows.
    Holdout {
        /// The model's figures on the validation rows.
        model: &'a Evaluation,
        /// The logistic-regression challenger's name and AUC on the same rows (none when
        /// the model is that regression).
        challenger: Option<(String, f64)>,
    },
    /// By k-fold cross-validation: figures per fold (the challenger's among them), and
    /// the pooled out-of-fold figures.
    CrossValidated {
        /// One row per fold.
        folds: &'a FoldTable,
        /// Every row's out-of-fold score, evaluated at once.
        pooled: &'a Evaluation,
    },
}

/// Everything a card shows.
pub struct CardInput<'a> {
    /// The saved model (architecture, preprocessing, settings, constraints).
    pub model: &'a SavedModel,
    /// The data.
    pub data: CardData,
    /// The validation.
    pub validation: CardValidation<'a>,
    /// The epochs trained and the ones kept, in words, when the model was trained by
    /// epochs: "14 trained, weights of epoch 9 kept".
    pub epochs: Option<String>,
    /// The stability baseline saved with the model (stability.json), if any.
    pub stability: Option<&'a Baseline>,
    /// The UTC date the card was written, `YYYY-MM-DD`.
    pub written_on: String,
}

/// The card in Markdown.
pub fn render(input: &CardInput) -> String {
    let m = input.model;
    let mut s = String::new();
    let label = m.model.describe();
    let _ = writeln!(s, "# Model card: {label}, probability of default\n");
    let _ = writeln!(
        s,
        "Written by riskgrad {} on {} from the training run itself, for a model risk review. \
         The lines marked _to complete_ are the model owner's to fill in.\n",
        env!("CARGO_PKG_VERSION"),
        input.written_on
    );
    let _ = writeln!(s, "## Intended use\n");
    let _ = writeln!(
        s,
        "- Predicts: the probability that an applicant defaults (target `{}`, {}).",
        m.preprocessing.target,
        describe_target(&m.preprocessing)
    );
    let _ = writeln!(
        s,
        "- Decision it supports, product, population and owner: _to complete_.\n"
    );

    section_data(&mut s, &input.data);
    section_preprocessing(&mut s, &m.preprocessing);
    section_model(&mut s, m, input.epochs.as_deref());
    section_constraints(&mut s, m);
    section_validation(&mut s, &input.validation);
    let _ = writeln!(s, "## Stability baseline\n");
    match input.stability {
        Some(b) => {
            let _ = writeln!(
                s,
                "Saved in stability.json: the score's distribution over {} training rows in {} bins (its training deciles), and each of the {} input columns' (numbers in training-decile bins, categories by value, missing apart). Compare new applicants with `riskgrad monitor --model DIR --data NEW.csv`: a population stability index below 0.1 is stable, 0.1 to 0.25 worth watching, above 0.25 a shift.\n",
                b.rows,
                b.score.fractions.len(),
                b.columns.len()
            );
        }
        None => {
            let _ = writeln!(s, "None saved with this model.\n");
        }
    }
    section_limits(&mut s, input);
    s
}

fn section_data(s: &mut String, d: &CardData) {
    let _ = writeln!(s, "## Data\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| file | `{}` |", md_cell(&d.name));
    let _ = writeln!(
        s,
        "| rows | {} with a target ({:.1}% defaults){} |",
        d.rows - d.rows_without_target.min(d.rows),
        100.0 * d.positive_share,
        match d.rows_without_target {
            0 => String::new(),
            n => format!("; {n} more without one, left out"),
        }
    );
    let dates = match &d.date_range {
        Some(r) => format!(
            "{} to {} (column `{}`{})",
            md_cell(&r.first),
            md_cell(&r.last),
            md_cell(&r.column),
            match r.missing {
                0 => String::new(),
                n => format!("; {n} rows without a date"),
            }
        ),
        None => "not known: no date column named (`train --date COL`)".into(),
    };
    let _ = writeln!(s, "| dates | {dates} |");
    let _ = writeln!(s, "| split | {} |", md_cell(&d.split));
    if !d.dropped.is_empty() {
        let dropped: Vec<String> = d
            .dropped
            .iter()
            .map(|(name, why)| format!("`{}` ({})", md_cell(name), md_cell(why)))
            .collect();
        let _ = writeln!(s, "| left out | {} |", dropped.join(", "));
    }
    let _ = writeln!(s);
}

fn section_preprocessing(s: &mut String, pre: &Preprocessor) {
    let _ = writeln!(s, "## Preprocessing\n");
    let _ = writeln!(
        s,
        "Fitted on the training rows only; prediction applies the same steps (saved in config.json). {} input columns become {} features.\n",
        pre.inputs.len(),
        pre.n_features()
    );
    let _ = writeln!(s, "| column | kind | treatment |\n|---|---|---|");
    for input in &pre.inputs {
        let (kind, treatment) = match input {
            InputColumn::Numeric(n) => {
                let mut t = vec![match &n.ple_edges {
                    Some(edges) => format!(
                        "piecewise-linear over {} quantile bins",
                        edges.len().saturating_sub(1)
                    ),
                    None => "standardised".into(),
                }];
                if n.signed_log {
                    t.insert(0, "signed log".into());
                }
                t.push(format!("missing → median {}", n.median));
                if n.missing_indicator {
                    t.push("missing indicator".into());
                }
                ("numeric", t.join("; "))
            }
            InputColumn::Categorical(c) => (
                "categorical",
                format!(
                    "one-hot over {} values, the rest as other{}",
                    c.categories.len(),
                    if c.missing_indicator {
                        "; missing indicator"
                    } else {
                        ""
                    }
                ),
            ),
        };
        let _ = writeln!(s, "| `{}` | {kind} | {treatment} |", md_cell(input.name()));
    }
    let _ = writeln!(s);
}

fn section_model(s: &mut String, m: &SavedModel, epochs: Option<&str>) {
    let t = &m.training;
    let _ = writeln!(s, "## Model and settings\n");
    let _ = writeln!(s, "| | |\n|---|---|");
    let _ = writeln!(s, "| model | {} |", m.model.describe());
    let _ = writeln!(s, "| parameters | {} |", m.params.len());
    match &t.solver {
        Some(solver) => {
            let _ = writeln!(s, "| fitted by | {} |", md_cell(solver));
        }
        None => {
            let _ = writeln!(
                s,
                "| training | {:?}, batch {}, positive-class weight {} |",
                t.optimizer, t.batch, t.pos_weight
            );
            if let Some(epochs) = epochs {
                let _ = writeln!(s, "| epochs | {epochs} |");
            }
            let stop = match (t.early_stop, t.stop_split) {
                (Some(p), Some(share)) => format!(
                    "after {p} epochs without a better AUC on {:.0}% of the training rows set aside",
                    100.0 * share
                ),
                (Some(p), None) => format!("after {p} epochs without a better validation AUC"),
                (None, _) => "off".into(),
            };
            let _ = writeln!(s, "| early stopping | {stop} |");
        }
    }
    match (t.cv_folds, t.members) {
        (Some(k), 1) => {
            let _ = writeln!(s, "| ensemble | the mean probability of {k} members, each trained on the other folds' rows |");
        }
        (Some(k), m) => {
            let _ = writeln!(s, "| ensemble | the mean probability of {} members: {m} per fold, each fold's trained on the other folds' rows |", k * m);
        }
        (None, 1) => {}
        (None, m) => {
            let _ = writeln!(s, "| ensemble | the mean probability of {m} networks, each with its own initial weights and shuffles{} |", match t.stop_split {
                Some(_) => " and stopping on its own rows set aside",
                None => "",
            });
        }
    }
    let _ = writeln!(s, "| seed | {} |", t.seed);
    let _ = writeln!(s, "| device | {} |", md_cell(&t.device));
    let _ = writeln!(s);
}

fn section_constraints(s: &mut String, m: &SavedModel) {
    let _ = writeln!(s, "## Monotone constraints\n");
    let constraints = m.monotone_constraints();
    if constraints.is_empty() {
        let _ = writeln!(s, "None: the score may rise or fall with any column.\n");
        return;
    }
    let _ = writeln!(
        s,
        "Guaranteed by construction (signed weights, non-decreasing activations), not by a penalty; a missing value is not ordered and its indicator is free.\n"
    );
    for c in constraints {
        let _ = writeln!(
            s,
            "- `{}`: the probability of default is {} in it",
            md_cell(&c.column),
            match c.direction {
                crate::nn::monotone::Direction::Increasing => "non-decreasing",
                crate::nn::monotone::Direction::Decreasing => "non-increasing",
            }
        );
    }
    let _ = writeln!(s);
}

fn section_validation(s: &mut String, v: &CardValidation) {
    let _ = writeln!(s, "## Validation\n");
    match v {
        CardValidation::Holdout { model, challenger } => {
            let _ = writeln!(
                s,
                "On {} held-out rows ({} defaults) that no training decision saw.\n",
                model.rows, model.positives
            );
            let _ = writeln!(
                s,
                "| figure | model |{}\n|---|---|{}",
                if challenger.is_some() {
                    " challenger |"
                } else {
                    ""
                },
                if challenger.is_some() { "---|" } else { "" }
            );
            let auc_ci = model.auc_ci95.map_or(String::new(), |(lo, hi)| {
                format!(
                    " (95% CI {lo:.4}–{hi:.4}, {} bootstrap resamples)",
                    model.bootstrap_resamples
                )
            });
            let ch = |v: String| {
                challenger
                    .as_ref()
                    .map_or(String::new(), |_| format!(" {v} |"))
            };
            let ch_auc = challenger
                .as_ref()
                .map_or(String::new(), |(_, a)| format!("{a:.4}"));
            let _ = writeln!(s, "| AUC | {:.4}{auc_ci} |{}", model.auc, ch(ch_auc));
            for (name, value) in [
                ("KS", model.ks),
                ("Gini", model.gini),
                ("log loss", model.log_loss),
                ("Brier", model.brier),
            ] {
                let _ = writeln!(s, "| {name} | {value:.4} |{}", ch("".into()));
            }
            let _ = writeln!(
                s,
                "| at threshold {:.4}{} | precision {:.4}, recall {:.4} |{}",
                model.threshold,
                if model.threshold_is_max_ks {
                    " (max KS)"
                } else {
                    ""
                },
                model.precision,
                model.recall,
                ch("".into())
            );
            if let Some((name, auc)) = challenger {
                let _ = writeln!(
                    s,
                    "\nChallenger: {name}, fitted on the same training rows and scored on the same validation rows: AUC {auc:.4}, the model's {:+.4} beside it.",
                    model.auc - auc
                );
            }
        }
        CardValidation::CrossValidated { folds, pooled } => {
            let _ = writeln!(
                s,
                "By {}-fold stratified cross-validation: each fold scored by the model trained without it; the challenger on the same folds.\n",
                folds.rows.len()
            );
            let _ = writeln!(s, "| fold | {} |", folds.columns.join(" | "));
            let _ = writeln!(s, "|---|{}", "---|".repeat(folds.columns.len()));
            for (k, row) in folds.rows.iter().enumerate() {
                let cells: Vec<String> = row.iter().map(|v| format!("{v:.4}")).collect();
                let _ = writeln!(s, "| {} | {} |", k + 1, cells.join(" | "));
            }
            let spread: Vec<String> = folds
                .mean_std()
                .iter()
                .map(|(mean, std)| format!("{mean:.4} ± {std:.4}"))
                .collect();
            let _ = writeln!(s, "| mean ± std | {} |", spread.join(" | "));
            let ci = pooled.auc_ci95.map_or(String::new(), |(lo, hi)| {
                format!(" (95% CI {lo:.4}–{hi:.4})")
            });
            let _ = writeln!(
                s,
                "\nEvery row's out-of-fold score at once: AUC {:.4}{ci}, KS {:.4}, log loss {:.4}, Brier {:.4}.",
                pooled.auc, pooled.ks, pooled.log_loss, pooled.brier
            );
        }
    }
    let _ = writeln!(s);
}

fn section_limits(s: &mut String, input: &CardInput) {
    let m = input.model;
    let mut limits = Vec::new();
    limits.push(match &input.data.date_range {
        Some(r) => format!(
            "Validated on rows drawn at random from the same period ({} to {}), not on a later one: performance on later applicants is not measured here (validate out of time before use, and watch it with `riskgrad monitor`).",
            md_cell(&r.first),
            md_cell(&r.last)
        ),
        None => "Validated on rows drawn at random from the same file, not on a later period: performance on later applicants is not measured here (validate out of time before use, and watch it with `riskgrad monitor`).".into(),
    });
    let (auc, challenger_auc, positives) = match &input.validation {
        CardValidation::Holdout { model, challenger } => {
            (model.auc, challenger.as_ref().map(|c| c.1), model.positives)
        }
        CardValidation::CrossValidated { folds, pooled } => {
            let challenger = folds
                .columns
                .iter()
                .position(|c| c == "challenger AUC")
                .map(|i| folds.mean_std()[i].0);
            let auc = folds
                .columns
                .iter()
                .position(|c| c == "AUC")
                .map_or(pooled.auc, |i| folds.mean_std()[i].0);
            (auc, challenger, pooled.positives)
        }
    };
    if let Some(c) = challenger_auc {
        if c >= auc {
            limits.push(format!(
                "The logistic-regression challenger scored at least as well (AUC {c:.4} against {auc:.4}): a simpler, more transparent model would serve as well on this data."
            ));
        }
    }
    if positives < 200 {
        limits.push(format!(
            "Validated on {positives} defaults only: the figures are uncertain (see the AUC interval)."
        ));
    }
    if m.monotone_constraints().is_empty() {
        limits.push("No monotone constraints: the score may move against business sense in some column (check the reasons with `riskgrad explain`, or constrain it with `--monotone`).".into());
    }
    limits.push("Fairness was not assessed at training: run `riskgrad eval --protected COL` for each protected characteristic before use.".into());
    limits.push("Reasons for a decline (`riskgrad explain`) are integrated-gradient attributions from the mean applicant: they add up to the score's distance from that baseline, and a column's reason reflects the model, not a cause.".into());
    limits.push("Values outside the training range are scored by extrapolation, and categories not seen in training as `other`.".into());
    let _ = writeln!(s, "## Known limits\n");
    for l in limits {
        let _ = writeln!(s, "- {l}");
    }
    let _ = writeln!(s, "- Further limits known to the owner: _to complete_.");
}

fn describe_target(pre: &Preprocessor) -> String {
    let t = &pre.target_encoding;
    format!(
        "`{}` a default, `{}` not",
        md_cell(&t.positive),
        md_cell(&t.negative)
    )
}

/// Text safe in a Markdown table cell: pipes escaped, line breaks as spaces.
fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// `YYYY-MM-DD` (UTC) of `secs` seconds after the Unix epoch.
pub fn utc_date(secs: u64) -> String {
    crate::data::dates::date_of_days((secs / 86_400) as i64)
}

/// Today's UTC date, `YYYY-MM-DD`.
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    utc_date(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_of_known_instants() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(1_796_083_200), "2026-12-01");
        assert_eq!(utc_date(1_796_083_199), "2026-11-30");
    }

    #[test]
    fn table_cells_cannot_break_the_table() {
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
