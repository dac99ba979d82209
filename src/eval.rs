//! A saved model on a labelled file: every row with a target scored, the rows held out
//! when the model was trained picked out of them (by their cells' content, or for a
//! model saved before fingerprints, by their position in the split), and the fairness
//! check by a protected column. `riskgrad eval` is this, then `metrics::evaluate` and
//! the printing.

use crate::data::{OddCells, PredictReader};
use crate::engine::exec::Executor;
use crate::error::{Error, Result, Setting};
use crate::fairness::{fairness, group_cells, Fairness};
use crate::model_io::{SavedModel, TrainSettings};
use crate::scoring::{open_data, Scorer};
use std::path::Path;

/// The most groups a fairness check compares (a text column with more is refused).
pub const MAX_PROTECTED_GROUPS: usize = 100;

/// The rows of a file that have a target, scored, in file order.
pub struct LabelledScores {
    /// Each row's probability of default.
    pub probs: Vec<f32>,
    /// Each row's target (1 for a default).
    pub labels: Vec<f32>,
    /// Each row's fingerprint (`data::RowFingerprints`).
    pub fingerprints: Vec<u64>,
    /// Each row's cell of the protected column (empty without one).
    pub cells: Vec<Option<String>>,
    /// Rows left out because their target cell is empty.
    pub skipped: usize,
    /// Cells read as missing because they are not numbers in a numeric column, per
    /// column, as in training.
    pub odd_cells: Vec<OddCells>,
    /// [`PredictReader::unused_columns`] after the last row.
    pub unused_columns: Vec<String>,
}

/// Opens `data` (the bundled data when `None`) to score with `model`: its rows with
/// their targets, fingerprints and cells of the `protected` column.
///
/// Errors: a file without the model's columns or its target; a `protected` column it
/// does not hold (`Setting::Protected`).
pub fn open_labelled<'m>(
    data: Option<&Path>,
    model: &'m SavedModel,
    protected: Option<&str>,
) -> Result<PredictReader<'m>> {
    let reader = open_data(data, model)?.with_labels()?.with_fingerprints();
    match protected {
        None => Ok(reader),
        Some(column) => reader
            .with_cells_of(column)
            .map_err(|e| e.about(Setting::Protected)),
    }
}

/// Scores every row of `reader` (from [`open_labelled`]) that has a target with `model`
/// on `exec`, `batch` rows at a time.
///
/// Errors: a batch of 0 (`Setting::BatchSize`); a row that cannot be read.
pub fn score_labelled(
    exec: &mut dyn Executor,
    model: &SavedModel,
    mut reader: PredictReader,
    batch: usize,
) -> Result<LabelledScores> {
    if batch == 0 {
        return Err(Error::invalid(Setting::BatchSize, "must be at least 1"));
    }
    let (mut scorer, mut next) = Scorer::for_first_batch(exec, model, &mut reader, batch)?;
    let mut out = LabelledScores {
        probs: Vec::new(),
        labels: Vec::new(),
        fingerprints: Vec::new(),
        cells: Vec::new(),
        skipped: 0,
        odd_cells: Vec::new(),
        unused_columns: Vec::new(),
    };
    while let Some(batch) = next {
        let p = scorer.score(&model.arrange(batch.x))?;
        let labels = batch.labels.unwrap_or_default();
        let fingerprints = batch.fingerprints.unwrap_or_default();
        let mut cells = batch.cells.map(Vec::into_iter);
        let keeps_cells = cells.is_some();
        for ((p, y), f) in p.into_iter().zip(labels).zip(fingerprints) {
            let cell = cells.as_mut().and_then(Iterator::next);
            if y.is_nan() {
                out.skipped += 1;
            } else {
                out.probs.push(p);
                out.labels.push(y);
                out.fingerprints.push(f);
                if keeps_cells {
                    out.cells.push(cell.flatten());
                }
            }
        }
        next = reader.next_batch(scorer.batch())?;
    }
    out.odd_cells = reader.odd_cells().cloned().collect();
    out.unused_columns = reader.unused_columns();
    Ok(out)
}

/// Which rows to evaluate, as the caller asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RowsAsked {
    /// Every row with a target.
    All,
    /// The rows held out when the model was trained.
    Validation,
}

/// Which rows were picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Selection {
    /// Every row with a target.
    All,
    /// The rows held out in training, found by their fingerprints; `not_found` of them
    /// are not in the file.
    ByContent {
        /// Held-out rows the file no longer holds.
        not_found: usize,
    },
    /// The rows at the validation positions of the split (a model saved without
    /// fingerprints): held out only if the file is unchanged.
    ByPosition,
}

/// The rows picked for evaluation, with what the caller should tell the user.
pub struct Picked {
    /// How they were picked.
    pub selection: Selection,
    /// Their probabilities.
    pub probs: Vec<f32>,
    /// Their targets.
    pub labels: Vec<f32>,
    /// Their protected cells (empty without a protected column).
    pub cells: Vec<Option<String>>,
    /// Notes on the choice (rows not found, a model without fingerprints).
    pub notes: Vec<String>,
}

/// Picks the rows of `scores` (from the file named `data`) to evaluate `model` on:
/// `asked`, or by default the held-out rows when the file holds any of them (so rows the
/// model learned from do not inflate its figures) and every row otherwise.
/// `trained_on_this`: `data` is the file the model was trained on.
///
/// Errors (`Setting::Rows`, to which a caller may add that every row can be scored):
/// validation rows asked of a cross-validation ensemble (none was held out), or of a
/// file that holds none of them, or none left to evaluate; no rows with a target at
/// all is a data error.
pub fn pick_rows(
    scores: LabelledScores,
    model: &SavedModel,
    data: &str,
    asked: Option<RowsAsked>,
    trained_on_this: bool,
) -> Result<Picked> {
    check_rows_asked(model, data, asked, trained_on_this)?;
    let training = &model.training;
    let by_position = by_position(asked, trained_on_this);
    let saved = training.val_rows.as_ref();
    let mut notes = Vec::new();
    let (selection, pick): (Selection, Option<Vec<usize>>) = match (saved, asked) {
        (_, Some(RowsAsked::All)) => (Selection::All, None),
        (Some(saved), _) => {
            let mut matcher = saved.matcher();
            let keep: Vec<usize> = scores
                .fingerprints
                .iter()
                .enumerate()
                .filter_map(|(i, &f)| matcher.take(f).then_some(i))
                .collect();
            let found = saved.len() - matcher.not_found();
            if found == 0 && (asked == Some(RowsAsked::Validation) || trained_on_this) {
                return Err(Error::invalid(
                    Setting::Rows,
                    format!(
                        "{data} has no validation rows: none of its rows is one of the {} held out when the model was trained on {} (they are found by their cells' content), so it is not that file as it was",
                        saved.len(),
                        training.data
                    ),
                ));
            }
            if found == 0 {
                notes.push(format!(
                    "scoring every row of {data}: none of them is one of the {} rows held out when the model was trained on {} (they may be new rows, or rows it trained on)",
                    saved.len(),
                    training.data
                ));
                (Selection::All, None)
            } else {
                let not_found = matcher.not_found();
                if not_found > 0 {
                    notes.push(format!(
                        "{not_found} of the {} rows held out in training are not in {data} (changed or removed); scoring the {found} found",
                        saved.len()
                    ));
                }
                (Selection::ByContent { not_found }, Some(keep))
            }
        }
        (None, _) if by_position == RowsAsked::Validation => {
            notes.push(format!(
                "this model was saved without its validation rows' fingerprints (before riskgrad recorded them), so eval cannot verify that {data} is unchanged: it scores the rows at the validation positions of the split"
            ));
            (
                Selection::ByPosition,
                Some(validation_rows(&scores.labels, training)),
            )
        }
        (None, _) => (Selection::All, None),
    };
    let picked = Picked {
        selection,
        probs: picked(scores.probs, pick.as_deref()),
        labels: picked(scores.labels, pick.as_deref()),
        cells: picked(scores.cells, pick.as_deref()),
        notes,
    };
    if picked.probs.is_empty() && selection == Selection::All {
        // A file without labels is a data error, as an empty one is to explain and
        // monitor.
        return Err(Error::data_file(
            data,
            "no rows with a target value: nothing to evaluate",
        ));
    }
    if picked.probs.is_empty() {
        return Err(Error::invalid(
            Setting::Rows,
            format!(
                "{data} has no validation rows (the model was trained with a validation split of {})",
                training.val_split
            ),
        ));
    }
    Ok(picked)
}

/// Where the held-out rows are looked for when the caller does not say: in the
/// training file, by default.
fn by_position(asked: Option<RowsAsked>, trained_on_this: bool) -> RowsAsked {
    match asked {
        Some(rows) => rows,
        None if trained_on_this => RowsAsked::Validation,
        None => RowsAsked::All,
    }
}

/// The refusals of [`pick_rows`] that need no scores: validation rows asked of a
/// cross-validation ensemble, or of another file than the one a model without
/// fingerprints was trained on. A caller checks them before scoring anything.
pub fn check_rows_asked(
    model: &SavedModel,
    data: &str,
    asked: Option<RowsAsked>,
    trained_on_this: bool,
) -> Result<()> {
    let training = &model.training;
    if let (Some(k), RowsAsked::Validation) =
        (training.cv_folds, by_position(asked, trained_on_this))
    {
        return Err(Error::invalid(
            Setting::Rows,
            format!("the model is a {k}-fold cross-validation ensemble: every row of {data} trained some of its members, so none was held out (its out-of-fold figures are in the metrics.json written beside it)"),
        ));
    }
    let saved = training.val_rows.as_ref();
    if saved.is_none() && asked == Some(RowsAsked::Validation) && !trained_on_this {
        return Err(Error::invalid(
            Setting::Rows,
            format!(
                "validation rows are known only on the file the model was trained on ({}), not on {data}",
                training.data
            ),
        ));
    }
    Ok(())
}

/// The fairness check by the protected column `column` whose cells are `cells` (cut
/// into at most `bins` groups when numeric), at `threshold`.
///
/// Errors: a column of more than [`MAX_PROTECTED_GROUPS`] distinct values, an
/// identifier or a name rather than a protected characteristic (`Setting::Protected`).
pub fn fairness_by(
    column: &str,
    cells: &[Option<String>],
    bins: usize,
    (probs, labels): (&[f32], &[f32]),
    threshold: f32,
) -> Result<Fairness> {
    let groups = group_cells(cells, bins);
    // Thousands of one-row groups say nothing.
    if groups.labels.len() > MAX_PROTECTED_GROUPS {
        return Err(Error::invalid(
            Setting::Protected,
            format!(
                "{column} has {} distinct values; a fairness check compares a few groups (at most {MAX_PROTECTED_GROUPS}): name a column of groups, or a numeric one to cut into fewer bins",
                groups.labels.len()
            ),
        ));
    }
    Ok(fairness(column.trim(), &groups, probs, labels, threshold))
}

/// Whether `path` names the file recorded as `trained_on`, written another way.
pub fn same_file(path: Option<&Path>, trained_on: &str) -> bool {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    path.and_then(canonical)
        .is_some_and(|p| Some(p) == canonical(Path::new(trained_on)))
}

/// `v` at the indices `pick` (in their order), or all of it.
fn picked<T: Clone>(v: Vec<T>, pick: Option<&[usize]>) -> Vec<T> {
    match pick {
        None => v,
        Some(ix) => ix.iter().filter_map(|&i| v.get(i).cloned()).collect(),
    }
}

/// The rows of the training file that training held out, if the file is unchanged: the
/// same stratified split of the labelled rows, in file order, that `data::prepare` made
/// (for models saved without the rows' fingerprints). Indices into `labels`.
fn validation_rows(labels: &[f32], training: &TrainSettings) -> Vec<usize> {
    let (_, val) = crate::data::stratified_split(labels, training.val_split, training.seed);
    val.iter().map(|&i| i as usize).collect()
}
