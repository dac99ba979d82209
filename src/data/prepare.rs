//! The one call `riskgrad train` needs: read a file, type its columns, split it
//! (stratified), fit the preprocessing on the training rows and produce both splits'
//! feature matrices.

use std::io::BufRead;
use std::path::Path;

use super::options::PrepareOptions;
use super::preprocess::Preprocessor;
use super::profile::{fit_profile, ColumnProfile};
use super::schema::{infer_schema, AutoDropped, Schema};
use super::source::data_err;
use super::split::one_class_rows;
use super::table::{read_table, read_table_from, RawTable, Values, MISSING_CODE};
use super::{stratified_split, TargetEncoding, BUNDLED_BYTES, BUNDLED_NAME};
use crate::error::{Error, Result, Setting};
use crate::train::Split;

/// A file ready to train on.
#[derive(Clone, Debug)]
pub struct Prepared {
    /// The training rows, preprocessed.
    pub train: Split,
    /// The validation rows, preprocessed.
    pub val: Split,
    /// Fitted on the training rows; save it with the model (`Preprocessor::save`).
    pub preprocessor: Preprocessor,
    /// One per feature column of `train.x` / `val.x`.
    pub feature_names: Vec<String>,
    /// The inferred schema of the file.
    pub schema: Schema,
    /// Columns left out without being asked (print each: "dropped NAME (REASON)").
    pub auto_dropped: Vec<AutoDropped>,
    /// Data rows in the file.
    pub n_rows: usize,
    /// Rows left out because their target is missing.
    pub rows_without_target: usize,
    /// File row indices (0-based data rows) of each split, sorted.
    pub train_rows: Vec<u32>,
    /// File row indices of the validation split, sorted.
    pub val_rows: Vec<u32>,
    /// The fingerprints of the validation rows' raw cells (save them with the model in
    /// `TrainSettings::val_rows`, so that `eval` can find these rows by content).
    pub val_fingerprints: crate::data::RowFingerprints,
    /// Validation rows whose raw cells are those of a training row (duplicated rows in
    /// the file): the validation figures are then optimistic.
    pub val_rows_seen_in_training: usize,
    /// Each input column's distribution over the training rows (save it with the model
    /// for `riskgrad monitor`; `stability::Baseline`).
    pub profile: Vec<ColumnProfile>,
}

impl Prepared {
    /// Feature columns per row.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Negatives over positives of the training split (`--pos-weight auto`); 1 when the
    /// split has no positives.
    pub fn auto_pos_weight(&self) -> f32 {
        let pos = self.train.y.iter().filter(|&&v| v > 0.5).count();
        let neg = self.train.y.len() - pos;
        if pos == 0 {
            1.0
        } else {
            (neg as f64 / pos as f64) as f32
        }
    }
}

/// Reads and prepares a CSV file (gzip when named `.gz` or starting with the gzip magic).
pub fn prepare(path: &Path, opts: &PrepareOptions) -> Result<Prepared> {
    check_val_fraction(opts.val_fraction)?;
    prepare_table(read_table(path, opts)?, opts)
}

/// Like [`prepare`], from bytes already open; `path` names them in messages.
pub fn prepare_from(
    reader: impl BufRead + 'static,
    path: &Path,
    opts: &PrepareOptions,
) -> Result<Prepared> {
    check_val_fraction(opts.val_fraction)?;
    prepare_table(read_table_from(reader, path, opts)?, opts)
}

/// The bundled Taiwan file, prepared with `opts` (start from [`PrepareOptions::bundled`]).
pub fn prepare_bundled(opts: &PrepareOptions) -> Result<Prepared> {
    prepare_from(
        std::io::Cursor::new(BUNDLED_BYTES),
        Path::new(BUNDLED_NAME),
        opts,
    )
}

/// Reads a file's raw table and its schema, for `riskgrad inspect`.
pub fn inspect(path: &Path, opts: &PrepareOptions) -> Result<Schema> {
    let table = read_table(path, opts)?;
    Ok(infer_schema(&table, opts))
}

/// The encoding of a schema's target, or the error that says why a model cannot learn
/// from it (named as the schema found it: too many values, one class, ...).
pub fn target_encoding(schema: &Schema) -> Result<TargetEncoding> {
    let target = &schema.target;
    match (&target.encoding, &target.problem) {
        (Some(e), _) => Ok(e.clone()),
        (None, problem) => {
            let err = data_err(
                &schema.path,
                None,
                Some(&target.name),
                problem
                    .clone()
                    .unwrap_or_else(|| "the target cannot be read".into()),
            );
            Err(match target.problem_about {
                Some(setting) => err.about(setting),
                None => err,
            })
        }
    }
}

/// [`inspect`] of the bundled file.
pub fn inspect_bundled(opts: &PrepareOptions) -> Result<Schema> {
    let table = read_table_from(
        std::io::Cursor::new(BUNDLED_BYTES),
        Path::new(BUNDLED_NAME),
        opts,
    )?;
    Ok(infer_schema(&table, opts))
}

/// Prepares a table already read. Takes it by value and drops it before returning, so at
/// most the table and the two splits' features are held at once.
pub fn prepare_table(table: RawTable, opts: &PrepareOptions) -> Result<Prepared> {
    check_val_fraction(opts.val_fraction)?;
    let labelled = LabelledTable::new(table, opts)?;
    let (train_idx, val_idx) = stratified_split(&labelled.y, opts.val_fraction, opts.seed);
    labelled.check_split_classes(&train_idx, opts.val_fraction)?;
    labelled.prepare_split(&train_idx, &val_idx, opts)
}

/// A file read and typed, with its labelled rows found: what each split of it (one
/// train/validation split, or the folds of a cross-validation) is prepared from.
pub struct LabelledTable {
    table: RawTable,
    schema: Schema,
    encoding: TargetEncoding,
    /// `labelled[i]` is the file row (0-based data row) of label `i`.
    labelled: Vec<u32>,
    y: Vec<f32>,
}

impl LabelledTable {
    /// Reads `path` (the bundled Taiwan file when `None`) and finds its labels.
    pub fn read(path: Option<&Path>, opts: &PrepareOptions) -> Result<Self> {
        let table = match path {
            Some(p) => read_table(p, opts)?,
            None => read_table_from(
                std::io::Cursor::new(BUNDLED_BYTES),
                Path::new(BUNDLED_NAME),
                opts,
            )?,
        };
        LabelledTable::new(table, opts)
    }

    /// Types `table`'s columns and reads its target.
    pub fn new(table: RawTable, opts: &PrepareOptions) -> Result<Self> {
        let schema = infer_schema(&table, opts);
        let encoding = target_encoding(&schema)?;
        let Some(Values::Text(target)) = table.columns.get(table.target).map(|c| &c.values) else {
            return Err(Error::Internal(
                "the target column was not read as text".into(),
            ));
        };
        let label_of: Vec<Option<f32>> = target.dict.iter().map(|k| encoding.label(k)).collect();
        let mut labelled = Vec::with_capacity(table.n_rows);
        let mut y = Vec::with_capacity(table.n_rows);
        for (r, &code) in target.codes.iter().enumerate() {
            if code == MISSING_CODE {
                continue;
            }
            if let Some(Some(label)) = label_of.get(code as usize) {
                labelled.push(r as u32);
                y.push(*label);
            }
        }
        Ok(LabelledTable {
            table,
            schema,
            encoding,
            labelled,
            y,
        })
    }

    /// The 0/1 label of each labelled row, in file order (what folds are drawn from).
    pub fn labels(&self) -> &[f32] {
        &self.y
    }

    /// The file row (0-based data row) of each label.
    pub fn file_rows(&self) -> &[u32] {
        &self.labelled
    }

    /// Fits the preprocessing on the labelled rows `train_idx` (indices into
    /// [`labels`](Self::labels)) and prepares them and `val_idx`.
    pub fn prepare_split(
        &self,
        train_idx: &[u32],
        val_idx: &[u32],
        opts: &PrepareOptions,
    ) -> Result<Prepared> {
        let preprocessor = self.fit_preprocessor(train_idx, opts)?;
        self.prepare_split_with(preprocessor, train_idx, val_idx)
    }

    /// The preprocessing fitted on the labelled rows `idx` (it reads their features,
    /// never their labels).
    pub fn fit_preprocessor(&self, idx: &[u32], opts: &PrepareOptions) -> Result<Preprocessor> {
        let rows = self.file_rows_of(idx);
        if rows.is_empty() {
            return Err(data_err(
                &self.table.path,
                None,
                None,
                "no training rows left after the validation split",
            ));
        }
        Preprocessor::fit(&self.table, &self.schema, &self.encoding, &rows, opts)
    }

    /// The distribution of each of `pre`'s input columns over the labelled rows `idx`
    /// (what a model fitted on them saves for stability monitoring).
    pub fn profile(&self, pre: &Preprocessor, idx: &[u32]) -> Result<Vec<ColumnProfile>> {
        fit_profile(&self.table, pre, &self.file_rows_of(idx))
    }

    /// Refuses a split that leaves the training rows without both classes: a model cannot
    /// learn from one (`--val-split 0.999`). Validation rows of one class are the
    /// caller's to note: the model trains, and AUC and KS are not defined on them.
    fn check_split_classes(&self, train_idx: &[u32], fraction: f64) -> Result<()> {
        let labels = train_idx.iter().map(|&i| self.y[i as usize]);
        let Some(what) = one_class_rows(labels, "training") else {
            return Ok(());
        };
        let message = format!(
            "{fraction} leaves {what}; a model needs both classes to learn from: a smaller \
             split, or more labelled rows"
        );
        Err(data_err(&self.table.path, None, None, message).about(Setting::ValidationSplit))
    }

    fn file_rows_of(&self, idx: &[u32]) -> Vec<u32> {
        idx.iter()
            .filter_map(|&i| self.labelled.get(i as usize).copied())
            .collect()
    }

    /// Prepares the labelled rows `train_idx` and `val_idx` with a fitted `preprocessor`.
    pub fn prepare_split_with(
        &self,
        preprocessor: Preprocessor,
        train_idx: &[u32],
        val_idx: &[u32],
    ) -> Result<Prepared> {
        let table = &self.table;
        let to_rows = |idx: &[u32]| self.file_rows_of(idx);
        let labels = |idx: &[u32]| -> Vec<f32> {
            idx.iter()
                .filter_map(|&i| self.y.get(i as usize).copied())
                .collect()
        };
        let (train_rows, val_rows) = (to_rows(train_idx), to_rows(val_idx));
        let train = Split {
            x: preprocessor.transform_table(table, &train_rows)?,
            y: labels(train_idx),
        };
        let val = Split {
            x: preprocessor.transform_table(table, &val_rows)?,
            y: labels(val_idx),
        };
        let profile = fit_profile(table, &preprocessor, &train_rows)?;
        let fingerprint = |r: &u32| table.row_fingerprints.get(*r as usize).copied();
        let trained: std::collections::HashSet<u64> =
            train_rows.iter().filter_map(fingerprint).collect();
        let val_rows_seen_in_training = val_rows
            .iter()
            .filter_map(fingerprint)
            .filter(|f| trained.contains(f))
            .count();
        Ok(Prepared {
            val_rows_seen_in_training,
            profile,
            train,
            val,
            feature_names: preprocessor.feature_names.clone(),
            preprocessor,
            auto_dropped: self.schema.auto_dropped(),
            schema: self.schema.clone(),
            n_rows: table.n_rows,
            rows_without_target: table.n_rows - self.labelled.len(),
            train_rows,
            val_fingerprints: crate::data::RowFingerprints::new(
                val_rows
                    .iter()
                    .filter_map(|&r| table.row_fingerprints.get(r as usize).copied())
                    .collect(),
            ),
            val_rows,
        })
    }
}

fn check_val_fraction(f: f64) -> Result<()> {
    if f > 0.0 && f < 1.0 {
        Ok(())
    } else {
        Err(Error::invalid(
            Setting::ValidationSplit,
            format!("{f} must be above 0 and below 1"),
        ))
    }
}
