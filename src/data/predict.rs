//! Prediction input: a data file (CSV or Parquet, `source::Source`) read in batches of
//! rows through a saved [`Preprocessor`],
//! never whole. Columns are found by header name, so their order may differ from the
//! training file's and extra columns are ignored; the target column need not be there.
//! A numeric column's cell that is not a number, or is beyond f32's range, is read as
//! missing, as in training, and counted ([`PredictReader::odd_cells`]).

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use super::cell::{category_key, is_missing, read_number, NumberCell};
use super::preprocess::{CategoricalStep, InputColumn, Preprocessor};
use super::profile::RawCell;
use super::source::{find_column, find_columns, show, Source};
use super::table::OddCells;
use crate::error::Result;

/// Rows of a prediction file, ready for the model.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Batch {
    /// The id column's values, or the 1-based data row number when the file has no id
    /// column.
    pub ids: Vec<String>,
    /// Row-major, `ids.len() * n_features`.
    pub x: Vec<f32>,
    /// 0/1 targets, when asked for with [`PredictReader::with_labels`] (NaN where the cell
    /// is missing).
    pub labels: Option<Vec<f32>>,
    /// Each row's fingerprint (`data::fingerprint`), when asked for with
    /// [`PredictReader::with_fingerprints`].
    pub fingerprints: Option<Vec<u64>>,
    /// Each row's cells of the model's input columns as read, before encoding
    /// (row-major, `ids.len() * inputs`), when asked for with [`PredictReader::with_raw`].
    pub raw: Option<Vec<RawCell>>,
    /// The cells of the column asked for with [`PredictReader::with_cells_of`], trimmed
    /// (`None` where the cell is missing).
    pub cells: Option<Vec<Option<String>>>,
}

impl Batch {
    /// Rows in the batch.
    pub fn rows(&self) -> usize {
        self.ids.len()
    }
}

/// Streams a data file through a fitted preprocessing.
pub struct PredictReader<'p> {
    pre: &'p Preprocessor,
    src: Source,
    /// Per input: the header index of its column, and a category lookup for a categorical.
    columns: Vec<(usize, Option<HashMap<&'p str, usize>>)>,
    id_col: Option<usize>,
    target_col: Option<usize>,
    labels: bool,
    fingerprints: bool,
    raw: bool,
    /// The header index of the column [`with_cells_of`](Self::with_cells_of) asked for.
    cells_col: Option<usize>,
    rec: csv::ByteRecord,
    rows_read: u64,
    /// Per input: its odd cells so far (only numeric inputs have any).
    odd: Vec<OddCells>,
    /// Per input: how its cells filled it so far.
    fill: Vec<ColumnFill>,
}

/// How a column's cells read so far: empty ones, and (a categorical column's) values
/// training never saw, with the first of them.
#[derive(Clone, Debug, Default)]
struct ColumnFill {
    missing: u64,
    unseen: u64,
    first_unseen: Option<String>,
}

impl<'p> PredictReader<'p> {
    /// Opens `path` (CSV, gzip when named `.gz` or starting with the gzip magic; Parquet,
    /// a `.parquet` file or a directory of them) and finds the model's columns in its
    /// header; a missing one is an error listing them all.
    pub fn open(path: &Path, pre: &'p Preprocessor) -> Result<Self> {
        Self::from_source(Source::open(path)?, pre)
    }

    /// Like [`open`](Self::open), from CSV bytes already open; `path` names them in
    /// messages.
    pub fn from_reader(
        reader: impl BufRead + 'static,
        path: &Path,
        pre: &'p Preprocessor,
    ) -> Result<Self> {
        Self::from_source(Source::from_reader(reader, path)?, pre)
    }

    /// Like [`open`](Self::open), from Arrow record batches in memory (all of `schema`),
    /// read as the same table saved as Parquet would be; `name` names them in messages
    /// (`pandas DataFrame`).
    pub fn from_batches(
        name: &str,
        schema: arrow_schema::SchemaRef,
        batches: Vec<arrow_array::RecordBatch>,
        pre: &'p Preprocessor,
    ) -> Result<Self> {
        let src = super::arrow::ArrowSource::new(name, schema, batches)?;
        Self::from_source(Source::Arrow(src), pre)
    }

    fn from_source(src: Source, pre: &'p Preprocessor) -> Result<Self> {
        let names: Vec<&str> = pre.inputs.iter().map(|i| i.name()).collect();
        let found = find_columns(src.names(), &names);
        let missing: Vec<&str> = names
            .iter()
            .zip(&found)
            .filter(|(_, j)| j.is_none())
            .map(|(n, _)| *n)
            .collect();
        if !missing.is_empty() {
            return Err(src.header_err(
                None,
                format!(
                    "the model needs columns {missing:?}, not in this {}; its columns are: {}",
                    match src {
                        Source::Arrow(_) => "table",
                        _ => "file",
                    },
                    src.listing()
                ),
            ));
        }
        let columns = pre
            .inputs
            .iter()
            .zip(found)
            .map(|(i, j)| {
                let j = j.expect("every input found (checked above)");
                let lookup = match i {
                    InputColumn::Categorical(s) => Some(s.lookup()),
                    InputColumn::Numeric(_) => None,
                };
                (j, lookup)
            })
            .collect();
        let id_col = pre
            .id_column
            .as_deref()
            .and_then(|n| find_column(src.names(), n));
        let target_col = find_column(src.names(), &pre.target);
        Ok(PredictReader {
            pre,
            src,
            columns,
            id_col,
            target_col,
            labels: false,
            fingerprints: false,
            raw: false,
            cells_col: None,
            rec: csv::ByteRecord::new(),
            rows_read: 0,
            odd: pre.inputs.iter().map(|i| OddCells::new(i.name())).collect(),
            fill: vec![ColumnFill::default(); pre.inputs.len()],
        })
    }

    /// Also read the target column into [`Batch::labels`] (for evaluation); a value that is
    /// neither class is then an error naming its line. Errors if the file has no target.
    pub fn with_labels(mut self) -> Result<Self> {
        if self.target_col.is_none() {
            return Err(self.src.header_err(
                None,
                format!(
                    "target column {:?} not found; columns are: {}",
                    self.pre.target,
                    self.src.listing()
                ),
            ));
        }
        self.labels = true;
        Ok(self)
    }

    /// Also fingerprint each row into [`Batch::fingerprints`] (to find rows saved with a
    /// model by their content).
    pub fn with_fingerprints(mut self) -> Self {
        self.fingerprints = true;
        self
    }

    /// Also keep each input cell as read into [`Batch::raw`] (to bin a new file's columns
    /// as the training rows were, `profile`).
    pub fn with_raw(mut self) -> Self {
        self.raw = true;
        self
    }

    /// Also read the cells of column `name` (found as a model's columns are: by exact
    /// name, else ignoring case) into [`Batch::cells`], e.g. a protected attribute the
    /// model may or may not use. Errors naming the column when the file lacks it.
    pub fn with_cells_of(mut self, name: &str) -> Result<Self> {
        let Some(j) = find_column(self.src.names(), name) else {
            return Err(self.src.header_err(
                None,
                format!(
                    "no column {:?} in this file; its columns are: {}",
                    name.trim(),
                    self.src.listing()
                ),
            ));
        };
        // A group by the outcome itself says nothing about fairness: each group's
        // approval rate is its own default rate (every "1" group was flagged).
        if Some(j) == self.target_col {
            return Err(self.src.header_err(
                None,
                format!(
                    "{:?} is the target column; groups are drawn from another column (a protected attribute)",
                    name.trim()
                ),
            ));
        }
        self.cells_col = Some(j);
        Ok(self)
    }

    /// Features per row the preprocessing writes.
    pub fn n_features(&self) -> usize {
        self.pre.n_features()
    }

    /// Whether the ids come from the file's id column (else they are row numbers).
    pub fn has_id_column(&self) -> bool {
        self.id_col.is_some()
    }

    /// Columns whose every cell read so far was of no use to the model: empty in every
    /// row, or (categorical) a value training never saw in every non-empty one: a
    /// column renamed, emptied or recoded since training, which the scores would
    /// otherwise pass over in silence. One sentence each.
    pub fn unused_columns(&self) -> Vec<String> {
        let rows = self.rows_read;
        if rows == 0 {
            return Vec::new();
        }
        let mut notes = Vec::new();
        for (input, fill) in self.pre.inputs.iter().zip(&self.fill) {
            let name = input.name();
            if fill.missing == rows {
                notes.push(format!(
                    "column {name:?} is empty in all {rows} rows: scored as missing throughout, though training saw values in it"
                ));
            } else if fill.unseen > 0 && fill.unseen == rows - fill.missing {
                notes.push(format!(
                    "every value of column {name:?} ({} rows, e.g. {:?}) is one training never saw: scored as an unseen category",
                    fill.unseen,
                    fill.first_unseen.as_deref().unwrap_or_default()
                ));
            }
        }
        notes
    }

    /// The numeric columns with cells read as missing so far because they are not numbers
    /// or beyond f32's range (as training reads them), for a note per column.
    pub fn odd_cells(&self) -> impl Iterator<Item = &OddCells> {
        self.odd.iter().filter(|o| o.count() > 0)
    }

    /// The next at most `max_rows` rows (at least 1); `Ok(None)` after the last row.
    pub fn next_batch(&mut self, max_rows: usize) -> Result<Option<Batch>> {
        let max_rows = max_rows.max(1);
        let width = self.pre.n_features();
        let mut batch = Batch {
            ids: Vec::with_capacity(max_rows.min(1 << 16)),
            x: Vec::with_capacity(max_rows.min(1 << 16) * width),
            labels: self.labels.then(Vec::new),
            fingerprints: self.fingerprints.then(Vec::new),
            raw: self.raw.then(Vec::new),
            cells: self.cells_col.map(|_| Vec::new()),
        };
        while batch.ids.len() < max_rows {
            let Some(line) = self.src.next(&mut self.rec)? else {
                break;
            };
            self.rows_read += 1;
            let start = batch.x.len();
            batch.x.resize(start + width, 0.0);
            let mut off = start;
            for ((((j, lookup), input), odd), fill) in self
                .columns
                .iter()
                .zip(&self.pre.inputs)
                .zip(self.odd.iter_mut())
                .zip(self.fill.iter_mut())
            {
                let w = input.width();
                let cell = self.rec.get(*j).unwrap_or(b"");
                let out = &mut batch.x[off..off + w];
                match (input, lookup) {
                    (InputColumn::Numeric(s), _) => {
                        let v = if is_missing(cell) {
                            fill.missing += 1;
                            f32::NAN
                        } else {
                            match read_number(cell) {
                                NumberCell::Number(v) => v,
                                kind => {
                                    odd.add(|| self.src.place(line), cell, kind);
                                    f32::NAN
                                }
                            }
                        };
                        s.encode(v, out);
                        if let Some(raw) = batch.raw.as_mut() {
                            raw.push(match v.is_nan() {
                                true => RawCell::Missing,
                                false => RawCell::Number(v),
                            });
                        }
                    }
                    (InputColumn::Categorical(s), Some(lookup)) => {
                        let key = category_key(cell).map_err(|_| {
                            self.src
                                .err(line, *j, format!("invalid UTF-8: {}", show(cell)))
                        })?;
                        // One lookup: a present value's slot is its category, or
                        // `categories.len()` for one training never saw.
                        let slot = s.slot(lookup, key.as_deref());
                        match key.as_deref() {
                            None => fill.missing += 1,
                            Some(k) if slot == s.categories.len() => {
                                fill.unseen += 1;
                                fill.first_unseen.get_or_insert_with(|| k.to_string());
                            }
                            Some(_) => {}
                        }
                        CategoricalStep::encode(slot, out);
                        if let Some(raw) = batch.raw.as_mut() {
                            raw.push(match key {
                                None => RawCell::Missing,
                                Some(_) => RawCell::Category(slot),
                            });
                        }
                    }
                    (InputColumn::Categorical(_), None) => {
                        if let Some(raw) = batch.raw.as_mut() {
                            raw.push(RawCell::Missing);
                        }
                    }
                }
                off += w;
            }
            let id = match self.id_col {
                Some(j) => {
                    let cell = self.rec.get(j).unwrap_or(b"");
                    std::str::from_utf8(cell)
                        .map_err(|_| {
                            self.src
                                .err(line, j, format!("invalid UTF-8: {}", show(cell)))
                        })?
                        .to_string()
                }
                None => self.rows_read.to_string(),
            };
            batch.ids.push(id);
            if let Some(f) = batch.fingerprints.as_mut() {
                f.push(self.src.fingerprint(&self.rec));
            }
            if let (Some(cells), Some(j)) = (batch.cells.as_mut(), self.cells_col) {
                let cell = self.rec.get(j).unwrap_or(b"");
                let text = std::str::from_utf8(cell).map_err(|_| {
                    self.src
                        .err(line, j, format!("invalid UTF-8: {}", show(cell)))
                })?;
                cells.push((!is_missing(cell)).then(|| text.to_string()));
            }
            if let (Some(labels), Some(j)) = (batch.labels.as_mut(), self.target_col) {
                let cell = self.rec.get(j).unwrap_or(b"");
                let y = self.pre.target_encoding.label_cell(cell).ok_or_else(|| {
                    self.src.err(
                        line,
                        j,
                        format!(
                            "target {} is neither {:?} nor {:?}",
                            show(cell),
                            self.pre.target_encoding.positive,
                            self.pre.target_encoding.negative
                        ),
                    )
                })?;
                labels.push(y);
            }
        }
        Ok((!batch.ids.is_empty()).then_some(batch))
    }
}
