//! The fitted preprocessing: from the raw columns to the model's f32 features. Fitted on the
//! training rows only; applied the same way to validation rows, to a saved model's
//! prediction rows and after a JSON round trip, because every path encodes a cell through
//! [`NumericStep::encode`] and [`CategoricalStep::encode`].
//!
//! - numeric: a missing value becomes the training median (plus a 0/1 `NAME_missing`
//!   column when the training rows had any missing), optionally the signed log
//!   `sign(x) ln(1 + |x|)`, then `(x - mean) / std` with the training mean and population
//!   std of the imputed values (std 1 for a constant column, as [`super::Standardizer`]);
//!   or, with `--numeric-encoding ple`, instead of standardising, the piecewise-linear
//!   encoding over quantile bins of the training rows ([`piecewise_linear`]);
//! - categorical: one-hot `NAME=VALUE` for each value with at least the rare threshold of
//!   training rows, and `NAME=other` for the rest and for values never seen in training;
//!   a missing value gets its own `NAME_missing` column when the training rows had any,
//!   else goes to other.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::cell::number_key;
use super::options::{NumericEncoding, PrepareOptions, SignedLog};
use super::profile::RawCell;
use super::schema::{ColumnKind, Schema};
use super::source::{data_err, find_column};
use super::table::{RawColumn, RawTable, Values, MISSING_CODE};
use super::target::TargetEncoding;
use crate::error::{Error, Result, Setting};

/// Version of the JSON layout; a reader refuses other versions instead of misreading them.
pub const FORMAT_VERSION: u32 = 1;

/// The whole fitted preprocessing of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Layout version ([`FORMAT_VERSION`]) of the saved JSON.
    pub format_version: u32,
    /// The target column's name and its 0/1 coding.
    pub target: String,
    /// How the target's values map to 0/1.
    pub target_encoding: TargetEncoding,
    /// The row-identifier column of the training file, if it had one (prediction writes its
    /// values next to the scores when the file has it).
    pub id_column: Option<String>,
    /// The input columns, in feature order.
    pub inputs: Vec<InputColumn>,
    /// One name per output feature.
    pub feature_names: Vec<String>,
}

/// One input column and how it becomes features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InputColumn {
    /// Standardized, with an optional missing flag.
    Numeric(NumericStep),
    /// One-hot over the frequent values, the rest as `NAME=other`.
    Categorical(CategoricalStep),
}

impl InputColumn {
    /// The raw column's name.
    pub fn name(&self) -> &str {
        match self {
            InputColumn::Numeric(s) => &s.name,
            InputColumn::Categorical(s) => &s.name,
        }
    }

    /// Output features of this column.
    pub fn width(&self) -> usize {
        match self {
            InputColumn::Numeric(s) => s.width(),
            InputColumn::Categorical(s) => s.width(),
        }
    }
}

/// How a numeric column becomes features: impute, optionally log, standardize.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NumericStep {
    /// The raw column's name.
    pub name: String,
    /// Training median, in the column's own units (before any log).
    pub median: f32,
    /// Whether a `NAME_missing` 0/1 feature follows.
    pub missing_indicator: bool,
    /// Whether values go through `signed_log` before standardizing.
    pub signed_log: bool,
    /// Mean and std of the imputed (and logged) training values.
    pub mean: f32,
    /// Standard deviation, as `mean`.
    pub std: f32,
    /// Piecewise-linear encoding instead of standardising: the bin edges (quantiles of
    /// the imputed, logged training values, strictly increasing, at least two), one
    /// feature per bin. Absent: standardised (and in files saved before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ple_edges: Option<Vec<f32>>,
}

impl NumericStep {
    /// Features of the value itself (1, or one per PLE bin).
    pub fn value_width(&self) -> usize {
        self.ple_edges
            .as_ref()
            .map_or(1, |e| e.len().saturating_sub(1))
    }

    /// Output features: the value's, and 1 more with the missing flag.
    pub fn width(&self) -> usize {
        self.value_width() + self.missing_indicator as usize
    }

    /// Writes the features of value `v` (NaN = missing) into `out` (`width()` long).
    pub fn encode(&self, v: f32, out: &mut [f32]) {
        let missing = v.is_nan();
        let x = if missing { self.median } else { v };
        let x = if self.signed_log { signed_log(x) } else { x };
        let values = self.value_width().min(out.len());
        match &self.ple_edges {
            None => {
                if let Some(o) = out.first_mut() {
                    *o = ((x as f64 - self.mean as f64) / self.std as f64) as f32;
                }
            }
            Some(edges) => piecewise_linear(x, edges, &mut out[..values]),
        }
        if self.missing_indicator {
            if let Some(o) = out.get_mut(values) {
                *o = missing as u8 as f32;
            }
        }
    }
}

/// The piecewise-linear encoding of `x` over bins `[edges[t], edges[t+1]]`: bin `t` is 1
/// when `x` is past it, 0 when `x` is before it, and the fraction of the bin below `x`
/// inside it. The first bin extends below the lowest edge (negative values) and the last
/// above the highest (values above 1), so values outside the training range still order.
pub fn piecewise_linear(x: f32, edges: &[f32], out: &mut [f32]) {
    let bins = edges.len().saturating_sub(1);
    for (t, o) in out.iter_mut().enumerate().take(bins) {
        let (lo, hi) = (edges[t] as f64, edges[t + 1] as f64);
        let frac = (x as f64 - lo) / (hi - lo);
        *o = if t > 0 && frac < 0.0 {
            0.0
        } else if t + 1 < bins && frac > 1.0 {
            1.0
        } else {
            frac as f32
        };
    }
}

/// Bin edges for the piecewise-linear encoding: `bins + 1` quantiles of `values`
/// (sorted here), duplicates removed; `None` when the values have fewer than two
/// distinct numbers (a constant column is standardised instead).
fn quantile_edges(mut values: Vec<f64>, bins: usize) -> Option<Vec<f32>> {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n == 0 || bins == 0 {
        return None;
    }
    let mut edges: Vec<f32> = Vec::with_capacity(bins + 1);
    for q in 0..=bins {
        // The value at rank q/bins of the sorted list (linear between neighbours).
        let pos = q as f64 * (n - 1) as f64 / bins as f64;
        let (i, frac) = (pos.floor() as usize, pos.fract());
        let v = values[i] + frac * (values[(i + 1).min(n - 1)] - values[i]);
        let v = v as f32;
        if edges.last().is_none_or(|&last| v > last) {
            edges.push(v);
        }
    }
    (edges.len() >= 2).then_some(edges)
}

/// How a text column becomes one-hot features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CategoricalStep {
    /// The raw column's name.
    pub name: String,
    /// Values with their own one-hot feature, in feature order; `NAME=other` follows them.
    pub categories: Vec<String>,
    /// Whether a `NAME_missing` feature follows `NAME=other`.
    pub missing_indicator: bool,
}

impl CategoricalStep {
    /// Output features: one per category, `other`, and the missing flag if any.
    pub fn width(&self) -> usize {
        self.categories.len() + 1 + self.missing_indicator as usize
    }

    /// Feature offsets by category name, for [`slot`](Self::slot).
    pub fn lookup(&self) -> HashMap<&str, usize> {
        self.categories
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect()
    }

    /// The feature a value sets: its own, `other` for a rare or unseen value, `missing`
    /// (or `other` when there is no missing feature) for `None`.
    pub fn slot(&self, lookup: &HashMap<&str, usize>, key: Option<&str>) -> usize {
        let other = self.categories.len();
        match key {
            Some(k) => lookup.get(k).copied().unwrap_or(other),
            None if self.missing_indicator => other + 1,
            None => other,
        }
    }

    /// Writes the one-hot features of slot `slot` into `out` (`width()` long).
    pub fn encode(slot: usize, out: &mut [f32]) {
        out.fill(0.0);
        if let Some(o) = out.get_mut(slot) {
            *o = 1.0;
        }
    }
}

/// `sign(x) * ln(1 + |x|)`: compresses large amounts of either sign, keeps 0 at 0.
pub fn signed_log(x: f32) -> f32 {
    (x.abs() as f64).ln_1p().copysign(x as f64) as f32
}

impl Preprocessor {
    /// Fits on `train_rows` of `table`, using the columns that `schema` types as numeric or
    /// categorical.
    pub fn fit(
        table: &RawTable,
        schema: &Schema,
        target_encoding: &TargetEncoding,
        train_rows: &[u32],
        opts: &PrepareOptions,
    ) -> Result<Self> {
        check_rows(table, train_rows)?;
        let min_count = opts.rare.min_count(train_rows.len());
        let numeric_columns = table
            .columns
            .iter()
            .zip(&schema.columns)
            .filter(|(c, sch)| {
                sch.kind == ColumnKind::Numeric && matches!(c.values, Values::Numeric(_))
            })
            .count();
        let ple_bins = NumericEncoding::ple_bins(train_rows.len(), numeric_columns);
        let names = table.names();
        let log_columns: Vec<usize> = match &opts.signed_log {
            SignedLog::Columns(list) => {
                list.iter().filter_map(|n| find_column(&names, n)).collect()
            }
            _ => Vec::new(),
        };
        let mut inputs = Vec::new();
        for (j, (col, sch)) in table.columns.iter().zip(&schema.columns).enumerate() {
            let log_named = log_columns.contains(&j);
            match (sch.kind, &col.values) {
                (ColumnKind::Numeric, Values::Numeric(v)) => {
                    let log = log_named
                        || (opts.signed_log == SignedLog::Auto && heavy_tailed(v, train_rows));
                    let mut step = fit_numeric(&col.name, v, train_rows, log);
                    if opts.numeric_encoding == NumericEncoding::Ple {
                        step.ple_edges = quantile_edges(imputed(&step, v, train_rows), ple_bins);
                    }
                    inputs.push(InputColumn::Numeric(step));
                }
                (ColumnKind::Categorical, Values::Text(t)) => {
                    if log_named {
                        return Err(Error::invalid(
                            Setting::SignedLog,
                            format!("{:?} holds categories, not numbers", col.name),
                        ));
                    }
                    inputs.push(InputColumn::Categorical(fit_categorical(
                        &col.name, t, train_rows, min_count,
                    )));
                }
                _ => {}
            }
        }
        if inputs.is_empty() {
            return Err(data_err(&table.path, None, None, "no feature columns left"));
        }
        let id_column = schema
            .columns
            .iter()
            .find(|c| c.kind == ColumnKind::Id)
            .map(|c| c.name.clone());
        Ok(Self::new(
            schema.target.name.clone(),
            target_encoding.clone(),
            id_column,
            inputs,
        ))
    }

    /// Assembles a preprocessor from fitted steps (the feature names follow from them).
    pub fn new(
        target: String,
        target_encoding: TargetEncoding,
        id_column: Option<String>,
        inputs: Vec<InputColumn>,
    ) -> Self {
        let mut feature_names = Vec::new();
        for input in &inputs {
            match input {
                InputColumn::Numeric(s) => {
                    match s.value_width() {
                        1 if s.ple_edges.is_none() => feature_names.push(s.name.clone()),
                        bins => feature_names
                            .extend((1..=bins).map(|t| format!("{}_bin{t}of{bins}", s.name))),
                    }
                    if s.missing_indicator {
                        feature_names.push(format!("{}_missing", s.name));
                    }
                }
                InputColumn::Categorical(s) => {
                    feature_names.extend(s.categories.iter().map(|c| format!("{}={c}", s.name)));
                    feature_names.push(format!("{}=other", s.name));
                    if s.missing_indicator {
                        feature_names.push(format!("{}_missing", s.name));
                    }
                }
            }
        }
        Preprocessor {
            format_version: FORMAT_VERSION,
            target,
            target_encoding,
            id_column,
            inputs,
            feature_names,
        }
    }

    /// Output features per row.
    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Row-major features of `rows` of `table` (columns found by name, so the table may come
    /// from another file of the same shape).
    pub fn transform_table(&self, table: &RawTable, rows: &[u32]) -> Result<Vec<f32>> {
        check_rows(table, rows)?;
        let width = self.n_features();
        let mut encoders = Vec::with_capacity(self.inputs.len());
        let mut offset = 0;
        let columns = table.columns_by_name();
        for input in &self.inputs {
            encoders.push((offset, TableEncoder::new(input, table, &columns)?));
            offset += input.width();
        }
        let mut out = vec![0f32; rows.len() * width];
        for (dst, &r) in out.chunks_exact_mut(width.max(1)).zip(rows) {
            for (input, (off, enc)) in self.inputs.iter().zip(&encoders) {
                let w = input.width();
                enc.encode(input, r as usize, &mut dst[*off..*off + w]);
            }
        }
        Ok(out)
    }

    /// The preprocessing as pretty JSON (the file written next to a model's weights).
    pub fn to_json(&self) -> String {
        // Every field is a string, a finite f32, a bool or a list of them: cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Reads [`to_json`](Self::to_json)'s output back; `path` names it in errors.
    pub fn from_json(json: &str, path: &Path) -> Result<Self> {
        let p: Preprocessor = serde_json::from_str(json).map_err(|e| {
            data_err(
                path,
                Some(e.line() as u64),
                None,
                format!("not a riskgrad preprocessing file: {e}"),
            )
        })?;
        if p.format_version != FORMAT_VERSION {
            return Err(data_err(
                path,
                None,
                None,
                format!(
                    "preprocessing format {} is not {FORMAT_VERSION}, the one this riskgrad reads",
                    p.format_version
                ),
            ));
        }
        let rebuilt = Preprocessor::new(
            p.target.clone(),
            p.target_encoding.clone(),
            p.id_column.clone(),
            p.inputs.clone(),
        );
        if rebuilt.feature_names != p.feature_names {
            return Err(data_err(
                path,
                None,
                None,
                "feature names do not match the input columns",
            ));
        }
        let bad_number = p.inputs.iter().any(|i| match i {
            InputColumn::Numeric(s) => {
                !(s.median.is_finite() && s.mean.is_finite() && s.std.is_normal())
                    || s.ple_edges.as_ref().is_some_and(|e| {
                        e.len() < 2
                            || e.iter().any(|v| !v.is_finite())
                            || e.windows(2).any(|w| w[0] >= w[1])
                    })
            }
            InputColumn::Categorical(_) => false,
        });
        if bad_number {
            return Err(data_err(
                path,
                None,
                None,
                "a median, mean, std or bin edge is not a usable number",
            ));
        }
        Ok(p)
    }

    /// Writes [`to_json`](Self::to_json) to `path` through a temporary file and a rename,
    /// so a failed write never leaves a half file where a good one was.
    pub fn save(&self, path: &Path) -> Result<()> {
        crate::files::write_atomically(path, self.to_json().as_bytes())
    }

    /// Reads a preprocessor `save` wrote (another layout version is an error).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_json(&text, path)
    }
}

fn check_rows(table: &RawTable, rows: &[u32]) -> Result<()> {
    match rows.iter().find(|&&r| r as usize >= table.n_rows) {
        Some(r) => Err(Error::Internal(format!(
            "row {r} is past the table's {} rows",
            table.n_rows
        ))),
        None => Ok(()),
    }
}

/// Training values of a column, missing left out.
fn train_values(v: &[f32], rows: &[u32]) -> Vec<f32> {
    rows.iter()
        .filter_map(|&r| v.get(r as usize).copied())
        .filter(|x| !x.is_nan())
        .collect()
}

/// Median (mean of the two middle values for an even count); 0 with no values.
pub(crate) fn median(mut values: Vec<f32>) -> f32 {
    let n = values.len();
    if n == 0 {
        return 0.0;
    }
    let (lower, upper, _) = values.select_nth_unstable_by(n / 2, f32::total_cmp);
    let upper = *upper;
    if n % 2 == 1 {
        upper
    } else {
        let below = lower.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        ((below as f64 + upper as f64) / 2.0) as f32
    }
}

/// The training values as `encode` sees them: missing ones imputed, then logged.
fn imputed(step: &NumericStep, v: &[f32], rows: &[u32]) -> Vec<f64> {
    rows.iter()
        .map(|&r| {
            let x = v.get(r as usize).copied().unwrap_or(f32::NAN);
            let x = if x.is_nan() { step.median } else { x };
            (if step.signed_log { signed_log(x) } else { x }) as f64
        })
        .collect()
}

fn fit_numeric(name: &str, v: &[f32], rows: &[u32], log: bool) -> NumericStep {
    let values = train_values(v, rows);
    let missing_indicator = values.len() < rows.len();
    let mut step = NumericStep {
        name: name.to_string(),
        median: median(values),
        missing_indicator,
        signed_log: log,
        mean: 0.0,
        std: 1.0,
        ple_edges: None,
    };
    if rows.is_empty() {
        return step;
    }
    // Mean and std of what `encode` standardises: imputed, then logged.
    let med = step.median;
    let imputed = || {
        rows.iter().map(move |&r| {
            let x = v.get(r as usize).copied().unwrap_or(f32::NAN);
            let x = if x.is_nan() { med } else { x };
            (if log { signed_log(x) } else { x }) as f64
        })
    };
    let n = rows.len() as f64;
    let mean = imputed().sum::<f64>() / n;
    let first = imputed().next().unwrap_or(0.0);
    let (ss, constant) = imputed().fold((0.0, true), |(ss, c), x| {
        (ss + (x - mean) * (x - mean), c && x == first)
    });
    let sd = (ss / n).sqrt() as f32;
    step.mean = mean as f32;
    // A constant column would divide by zero (or by rounding noise).
    step.std = if constant || !sd.is_normal() { 1.0 } else { sd };
    step
}

/// Whether the training values look like heavy-tailed amounts (see [`SignedLog::Auto`]).
fn heavy_tailed(v: &[f32], rows: &[u32]) -> bool {
    let values = train_values(v, rows);
    let mut distinct = std::collections::HashSet::new();
    for x in &values {
        distinct.insert((x + 0.0).to_bits());
        if distinct.len() >= SignedLog::AUTO_MIN_DISTINCT {
            break;
        }
    }
    if distinct.len() < SignedLog::AUTO_MIN_DISTINCT {
        return false;
    }
    skewness(&values) >= SignedLog::AUTO_MIN_SKEW
}

/// Population skewness `m3 / m2^1.5` (0 for fewer than 3 values or no spread).
pub(crate) fn skewness(values: &[f32]) -> f64 {
    let n = values.len() as f64;
    if values.len() < 3 {
        return 0.0;
    }
    let mean = values.iter().map(|&x| x as f64).sum::<f64>() / n;
    let (m2, m3) = values.iter().fold((0.0, 0.0), |(m2, m3), &x| {
        let d = x as f64 - mean;
        (m2 + d * d, m3 + d * d * d)
    });
    let (m2, m3) = (m2 / n, m3 / n);
    if m2 <= 0.0 {
        0.0
    } else {
        m3 / m2.powf(1.5)
    }
}

fn fit_categorical(
    name: &str,
    t: &super::table::TextValues,
    rows: &[u32],
    min_count: usize,
) -> CategoricalStep {
    let mut counts = vec![0usize; t.dict.len()];
    let mut missing = 0usize;
    for &r in rows {
        match t.codes.get(r as usize) {
            Some(&MISSING_CODE) => missing += 1,
            Some(&c) => {
                if let Some(n) = counts.get_mut(c as usize) {
                    *n += 1;
                }
            }
            None => {}
        }
    }
    let mut categories: Vec<&String> = t
        .dict
        .iter()
        .zip(&counts)
        .filter(|(_, &n)| n >= min_count)
        .map(|(v, _)| v)
        .collect();
    categories.sort_by(|a, b| category_order(a, b));
    CategoricalStep {
        name: name.to_string(),
        categories: categories.into_iter().cloned().collect(),
        missing_indicator: missing > 0,
    }
}

/// Numbers first in numeric order (codes 1, 2, 10), then text in byte order.
fn category_order(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => x.total_cmp(&y).then_with(|| a.cmp(b)),
        (Ok(_), Err(_)) => std::cmp::Ordering::Less,
        (Err(_), Ok(_)) => std::cmp::Ordering::Greater,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// One input column of a table, ready to encode rows.
pub(super) enum TableEncoder<'t> {
    Numbers(&'t [f32]),
    /// Slot per text code, and the slot of a missing cell.
    Codes(&'t [u32], Vec<usize>, usize),
    /// A categorical input read from a numeric table column: numbers named as categories.
    NumberCategories(&'t [f32], HashMap<String, usize>, usize),
}

impl<'t> TableEncoder<'t> {
    /// The encoder of `input`'s column of `table` (`columns`: its columns by name).
    pub(super) fn new(
        input: &InputColumn,
        table: &'t RawTable,
        columns: &HashMap<&str, &'t RawColumn>,
    ) -> Result<Self> {
        let col = *columns.get(input.name()).ok_or_else(|| {
            data_err(
                &table.path,
                None,
                None,
                format!(
                    "column {:?} of the model is not in the file; columns are: {}",
                    input.name(),
                    super::source::listing(&table.names())
                ),
            )
        })?;
        let mismatch = |what: &str| {
            data_err(
                &table.path,
                None,
                Some(&col.name),
                format!(
                    "the model reads this column as {what}, but the file holds {}",
                    describe(&col.values)
                ),
            )
        };
        match (input, &col.values) {
            (InputColumn::Numeric(_), Values::Numeric(v)) => Ok(TableEncoder::Numbers(v)),
            (InputColumn::Numeric(_), _) => Err(mismatch("numbers")),
            (InputColumn::Categorical(s), Values::Text(t)) => {
                let lookup = s.lookup();
                let slots = t.dict.iter().map(|k| s.slot(&lookup, Some(k))).collect();
                Ok(TableEncoder::Codes(&t.codes, slots, s.slot(&lookup, None)))
            }
            (InputColumn::Categorical(s), Values::Numeric(v)) => {
                let lookup: HashMap<String, usize> = s
                    .lookup()
                    .into_iter()
                    .map(|(k, i)| (k.to_string(), i))
                    .collect();
                let missing = s.slot(&s.lookup(), None);
                Ok(TableEncoder::NumberCategories(v, lookup, missing))
            }
            (InputColumn::Categorical(_), _) => Err(mismatch("categories")),
        }
    }

    /// Row `row`'s cell as the model reads it, before encoding (for the column's
    /// training distribution, `profile`).
    pub(super) fn cell(&self, input: &InputColumn, row: usize) -> RawCell {
        match (self, input) {
            (TableEncoder::Numbers(v), _) => match v.get(row) {
                Some(x) if !x.is_nan() => RawCell::Number(*x),
                _ => RawCell::Missing,
            },
            (TableEncoder::Codes(codes, slots, _), InputColumn::Categorical(s)) => {
                match codes.get(row) {
                    Some(&MISSING_CODE) | None => RawCell::Missing,
                    Some(&c) => RawCell::Category(
                        slots
                            .get(c as usize)
                            .copied()
                            .unwrap_or(s.categories.len())
                            .min(s.categories.len()),
                    ),
                }
            }
            (TableEncoder::NumberCategories(v, lookup, _), InputColumn::Categorical(s)) => {
                match v.get(row) {
                    Some(x) if !x.is_nan() => RawCell::Category(
                        lookup
                            .get(&number_key(*x))
                            .copied()
                            .unwrap_or(s.categories.len()),
                    ),
                    _ => RawCell::Missing,
                }
            }
            _ => RawCell::Missing,
        }
    }

    fn encode(&self, input: &InputColumn, row: usize, out: &mut [f32]) {
        match (self, input) {
            (TableEncoder::Numbers(v), InputColumn::Numeric(s)) => {
                s.encode(v.get(row).copied().unwrap_or(f32::NAN), out)
            }
            (TableEncoder::Codes(codes, slots, missing), _) => {
                let slot = match codes.get(row) {
                    Some(&MISSING_CODE) | None => *missing,
                    Some(&c) => slots.get(c as usize).copied().unwrap_or(*missing),
                };
                CategoricalStep::encode(slot, out);
            }
            (TableEncoder::NumberCategories(v, lookup, missing), InputColumn::Categorical(s)) => {
                let slot = match v.get(row) {
                    Some(x) if !x.is_nan() => lookup
                        .get(&number_key(*x))
                        .copied()
                        .unwrap_or(s.categories.len()),
                    _ => *missing,
                };
                CategoricalStep::encode(slot, out);
            }
            _ => {}
        }
    }
}

fn describe(values: &Values) -> &'static str {
    match values {
        Values::Numeric(_) => "numbers",
        Values::Text(_) => "text",
        Values::TooManyDistinct => "text with too many distinct values",
        Values::NotRead => "a column that was not read",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::options::RareThreshold;
    use crate::data::schema::infer_schema;
    use crate::data::table::read_table_from;

    fn table(text: &str, opts: &PrepareOptions) -> (RawTable, Schema) {
        let t = read_table_from(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Path::new("p.csv"),
            opts,
        )
        .unwrap();
        let s = infer_schema(&t, opts);
        (t, s)
    }

    fn fit(text: &str, opts: &PrepareOptions, rows: &[u32]) -> (RawTable, Preprocessor) {
        let (t, s) = table(text, opts);
        let enc = s.target.encoding.clone().unwrap();
        let p = Preprocessor::fit(&t, &s, &enc, rows, opts).unwrap();
        (t, p)
    }

    fn close(got: &[f32], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
        for (g, w) in got.iter().zip(want) {
            assert!((*g as f64 - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
    }

    #[test]
    fn median_by_hand() {
        assert_eq!(median(vec![]), 0.0);
        assert_eq!(median(vec![3.0]), 3.0);
        assert_eq!(median(vec![5.0, 1.0, 3.0]), 3.0);
        assert_eq!(median(vec![4.0, 1.0, 3.0, 10.0]), 3.5);
        assert_eq!(median(vec![-2.0, -2.0]), -2.0);
    }

    #[test]
    fn numeric_impute_indicator_standardise() {
        // Train rows 0..4: x = 1, NA, 3, 8 -> median of {1, 3, 8} = 3; imputed 1, 3, 3, 8:
        // mean 3.75, var ((2.75)^2 + 0.75^2 + 0.75^2 + 4.25^2) / 4 = 26.75 / 4 = 6.6875.
        // Row 4 (not fitted): 100.
        let text = "x,y\n1,0\nNA,1\n3,0\n8,1\n100,0\n";
        let (t, p) = fit(text, &PrepareOptions::default(), &[0, 1, 2, 3]);
        let InputColumn::Numeric(s) = &p.inputs[0] else {
            panic!()
        };
        assert_eq!(s.median, 3.0);
        assert!(s.missing_indicator);
        assert_eq!(s.mean, 3.75);
        assert!((s.std as f64 - 6.6875f64.sqrt()).abs() < 1e-6);
        assert_eq!(p.feature_names, ["x", "x_missing"]);
        let sd = 6.6875f64.sqrt();
        let x = p.transform_table(&t, &[0, 1, 4]).unwrap();
        close(&x, &[-2.75 / sd, 0.0, -0.75 / sd, 1.0, 96.25 / sd, 0.0]);
    }

    #[test]
    fn numeric_without_missing_has_no_indicator_but_imputes() {
        // Train rows have no missing; the held-out row's NA gets the median, no indicator.
        let text = "x,y\n2,0\n4,1\n9,0\nNA,1\n";
        let (t, p) = fit(text, &PrepareOptions::default(), &[0, 1, 2]);
        let InputColumn::Numeric(s) = &p.inputs[0] else {
            panic!()
        };
        assert!(!s.missing_indicator);
        assert_eq!((s.median, s.mean), (4.0, 5.0));
        // var = (9 + 1 + 16) / 3
        let sd = (26.0f64 / 3.0).sqrt();
        close(&p.transform_table(&t, &[3]).unwrap(), &[-1.0 / sd]);
    }

    #[test]
    fn signed_log_by_hand() {
        assert_eq!(signed_log(0.0), 0.0);
        assert!((signed_log(-1.0) as f64 + 2f64.ln()).abs() < 1e-7);
        assert!((signed_log(99.0) as f64 - 100f64.ln()).abs() < 1e-6);
        // Column a logged by name: values 0, e-1, -(e-1) -> 0, 1, -1: mean 0, std sqrt(2/3).
        let e1 = std::f64::consts::E - 1.0;
        let text = format!("a,b,y\n0,1,0\n{e1},2,1\n{},3,0\n", -e1);
        let opts = PrepareOptions {
            signed_log: SignedLog::Columns(vec!["a".into()]),
            ..Default::default()
        };
        let (t, p) = fit(&text, &opts, &[0, 1, 2]);
        let sd = (2.0f64 / 3.0).sqrt();
        close(
            &p.transform_table(&t, &[0, 1, 2]).unwrap(),
            &[0.0, -1.0 / sd, 1.0 / sd, 0.0, -1.0 / sd, 1.0 / sd],
        );
        let InputColumn::Numeric(b) = &p.inputs[1] else {
            panic!()
        };
        assert!(!b.signed_log);
    }

    #[test]
    fn auto_signed_log_picks_heavy_tails() {
        let mut text = String::from("amount,age,y\n");
        for i in 0..200 {
            let amount = if i % 50 == 0 {
                1_000_000.0
            } else {
                (i % 37) as f64 * 10.0
            };
            text.push_str(&format!("{amount},{},{}\n", 20 + i % 40, i % 2));
        }
        let rows: Vec<u32> = (0..200).collect();
        let (_, p) = fit(
            &text,
            &PrepareOptions {
                signed_log: SignedLog::Auto,
                ..Default::default()
            },
            &rows,
        );
        let logs: Vec<bool> = p
            .inputs
            .iter()
            .map(|i| matches!(i, InputColumn::Numeric(s) if s.signed_log))
            .collect();
        assert_eq!(logs, [true, false]);
        assert!((skewness(&[1.0, 2.0, 3.0]) - 0.0).abs() < 1e-12);
        // {0, 0, 3}: mean 1, m2 = 2, m3 = (-1 -1 + 8)/3 = 2 -> 2 / 2^1.5
        assert!((skewness(&[0.0, 0.0, 3.0]) - 2.0 / 2f64.powf(1.5)).abs() < 1e-12);
    }

    #[test]
    fn one_hot_rare_other_missing_unseen() {
        // Train rows 0..8: car 4, home 2, boat 1, missing 1. Threshold 2 rows: car, home kept,
        // boat folds into other. Row 8 (held out): "plane", never seen -> other.
        let text = "purpose,y\ncar,0\ncar,1\nhome,0\ncar,0\nboat,1\nNA,0\nhome,1\ncar,0\nplane,1\n";
        let opts = PrepareOptions {
            rare: RareThreshold::Count(2),
            ..Default::default()
        };
        let (t, p) = fit(text, &opts, &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            p.feature_names,
            [
                "purpose=car",
                "purpose=home",
                "purpose=other",
                "purpose_missing"
            ]
        );
        let x = p.transform_table(&t, &[0, 2, 4, 5, 8]).unwrap();
        #[rustfmt::skip]
        assert_eq!(x, [
            1.0, 0.0, 0.0, 0.0,
            0.0, 1.0, 0.0, 0.0,
            0.0, 0.0, 1.0, 0.0,
            0.0, 0.0, 0.0, 1.0,
            0.0, 0.0, 1.0, 0.0,
        ]);
        // A fraction threshold: 30 % of 8 rows = 2.4 -> 3 rows: only car.
        let opts = PrepareOptions {
            rare: RareThreshold::Fraction(0.3),
            ..Default::default()
        };
        let (_, p) = fit(text, &opts, &[0, 1, 2, 3, 4, 5, 6, 7]);
        assert_eq!(
            p.feature_names,
            ["purpose=car", "purpose=other", "purpose_missing"]
        );
    }

    #[test]
    fn numeric_codes_forced_categorical_sort_as_numbers() {
        let text = "edu,y\n10,0\n2,1\n1,0\n2.0,1\n10,0\n1,1\n";
        let opts = PrepareOptions {
            categorical: vec!["edu".into()],
            rare: RareThreshold::Count(1),
            ..Default::default()
        };
        let (t, p) = fit(text, &opts, &[0, 1, 2, 3, 4, 5]);
        assert_eq!(p.feature_names, ["edu=1", "edu=2", "edu=10", "edu=other"]);
        assert_eq!(p.transform_table(&t, &[3]).unwrap(), [0.0, 1.0, 0.0, 0.0]);
    }

    #[test]
    fn json_round_trip_transforms_identically() {
        let text = "id,amount,kind,y\n1,10,a,no\n2,NA,b,yes\n3,2000,a,no\n4,35,,yes\n5,1,c,no\n";
        let opts = PrepareOptions {
            signed_log: SignedLog::Columns(vec!["amount".into()]),
            rare: RareThreshold::Count(1),
            ..Default::default()
        };
        let (t, p) = fit(text, &opts, &[0, 1, 2, 3]);
        assert_eq!(p.id_column.as_deref(), Some("id"));
        let json = p.to_json();
        let back = Preprocessor::from_json(&json, Path::new("m.json")).unwrap();
        assert_eq!(back, p);
        let rows = [0, 1, 2, 3, 4];
        let a = p.transform_table(&t, &rows).unwrap();
        let b = back.transform_table(&t, &rows).unwrap();
        assert_eq!(
            a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            b.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );

        assert!(Preprocessor::from_json("{", Path::new("m.json")).is_err());
        let wrong = json.replace("\"format_version\": 1", "\"format_version\": 99");
        assert!(Preprocessor::from_json(&wrong, Path::new("m.json"))
            .unwrap_err()
            .to_string()
            .contains("99"));
    }

    #[test]
    fn rows_out_of_range_are_an_error() {
        let (t, p) = fit("x,y\n1,0\n2,1\n", &PrepareOptions::default(), &[0, 1]);
        assert!(p.transform_table(&t, &[2]).is_err());
        let (t2, s2) = table("x,y\n1,0\n2,1\n", &PrepareOptions::default());
        assert!(Preprocessor::fit(
            &t2,
            &s2,
            s2.target.encoding.as_ref().unwrap(),
            &[5],
            &PrepareOptions::default()
        )
        .is_err());
        let _ = t;
    }
}
