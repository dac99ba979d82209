//! Training data: credit CSV and Parquet files as they come (text categories, missing
//! cells, ID columns, targets spelled many ways) turned into the model's f32 features.
//!
//! The flow, one module per step:
//!
//! ```text
//! source (CSV or Parquet as records of text cells; errors) ─► table (raw columns:
//!   f32 or text codes)
//!   ─► schema (each column's type and summary; render for `inspect`)
//!   ─► target (which value is the positive class)
//!   ─► split (stratified rows) ─► preprocess (fitted on train rows; JSON with the model)
//!   ─► prepare (the above in one call for `train`)
//!   ─► profile (each input column's training distribution, for stability monitoring)
//! predict: saved Preprocessor + data file ─► batches of (ids, features), streaming
//! ```
//!
//! `cell` says what one cell means (missing, number, category name) for every path, so
//! training and prediction read a value the same way.

mod arrow;
mod cell;
pub mod dates;
mod fingerprint;
mod options;
mod parquet;
mod predict;
mod prepare;
mod preprocess;
mod profile;
mod schema;
pub mod sequence;
mod source;
mod split;
mod table;
mod target;

pub use cell::{category_key, is_missing, parse_number, read_number, strip_thousands, NumberCell};
pub use fingerprint::{RowFingerprints, RowMatcher};
pub use options::{NumericEncoding, PrepareOptions, RareThreshold, SignedLog};
pub use predict::{Batch, PredictReader};
pub use prepare::{
    inspect, inspect_bundled, prepare, prepare_bundled, prepare_from, prepare_table,
    target_encoding, LabelledTable, Prepared,
};
pub use preprocess::{
    piecewise_linear, signed_log, CategoricalStep, InputColumn, NumericStep, Preprocessor,
    FORMAT_VERSION,
};
pub(crate) use profile::shares_of_a_whole;
pub use profile::{
    decile_cuts, fit_profile, fractions, value_bin, value_labels, ColumnBins, ColumnProfile,
    RawCell, DECILES,
};
pub use schema::{
    infer_schema, render_schema, AutoDropped, ColumnKind, ColumnSchema, Schema, TargetSummary,
};
pub use table::{
    looks_like_id, numeric_despite, read_table, read_table_from, OddCells, RawColumn, RawTable,
    Role, TextValues, Values, MAX_DISTINCT, MISSING_CODE, ODD_CELLS_LISTED,
};
pub use target::TargetEncoding;

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result, Setting};

/// The bundled default dataset (UCI Taiwan credit-card default, CC BY 4.0; see
/// data/README.md), compiled into the binary so `riskgrad train` works from anywhere.
pub const BUNDLED_NAME: &str = "taiwan_default_of_credit_card_clients.csv.gz";
pub(crate) const BUNDLED_BYTES: &[u8] =
    include_bytes!("../../data/taiwan_default_of_credit_card_clients.csv.gz");

pub use split::{fold_rows, one_class_rows, stratified_folds, stratified_split};

/// Which column holds the 0/1 target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetSpec {
    /// The last column of the header.
    #[default]
    Last,
    /// The column with this header name.
    Name(String),
    /// The column at this 0-based position in the header, unless a column is named by
    /// these digits: then that one.
    Index(usize),
}

impl FromStr for TargetSpec {
    type Err = Error;

    /// All digits → `Index` (0-based), anything else → `Name`. Surrounding whitespace is
    /// ignored, as it is in the header names.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::invalid(Setting::Target, "empty column name"));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(TargetSpec::Index).map_err(|_| {
                Error::invalid(Setting::Target, format!("column index {s} is too large"))
            });
        }
        Ok(TargetSpec::Name(s.to_string()))
    }
}

impl fmt::Display for TargetSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetSpec::Last => write!(f, "last column"),
            TargetSpec::Name(n) => write!(f, "column {n:?}"),
            TargetSpec::Index(i) => write!(f, "column index {i}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_spec_parse() {
        assert_eq!("3".parse::<TargetSpec>().unwrap(), TargetSpec::Index(3));
        assert_eq!(" 0 ".parse::<TargetSpec>().unwrap(), TargetSpec::Index(0));
        assert_eq!(
            "default payment next month".parse::<TargetSpec>().unwrap(),
            TargetSpec::Name("default payment next month".into())
        );
        assert_eq!(
            "x1".parse::<TargetSpec>().unwrap(),
            TargetSpec::Name("x1".into())
        );
        assert!("".parse::<TargetSpec>().is_err());
        assert!("99999999999999999999999".parse::<TargetSpec>().is_err());
        assert_eq!(TargetSpec::default(), TargetSpec::Last);
    }
}
