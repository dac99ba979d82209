//! Training data: reading the credit CSV files, the stratified train/validation split and
//! feature standardisation.

mod csv_reader;
pub mod sequence;
mod split;
mod standardize;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

pub use csv_reader::{read_csv, read_csv_from};

/// The bundled default dataset (UCI Taiwan credit-card default, CC BY 4.0; see
/// data/README.md), compiled into the binary so `riskgrad train` works from anywhere.
pub const BUNDLED_NAME: &str = "taiwan_default_of_credit_card_clients.csv.gz";
const BUNDLED_BYTES: &[u8] = include_bytes!("../../data/taiwan_default_of_credit_card_clients.csv.gz");

/// Reads the bundled Taiwan data: target `default payment next month`, id column `ID`.
pub fn read_bundled(drop: &[String]) -> crate::error::Result<Dataset> {
    let opts = ReadOptions {
        target: TargetSpec::Name("default payment next month".into()),
        drop: drop.to_vec(),
        id_column: Some("ID".into()),
    };
    read_csv_from(std::io::Cursor::new(BUNDLED_BYTES), std::path::Path::new(BUNDLED_NAME), &opts)
}
pub use split::stratified_split;
pub use standardize::Standardizer;

/// Which column holds the 0/1 target.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TargetSpec {
    /// The last column of the header.
    #[default]
    Last,
    /// The column with this header name.
    Name(String),
    /// The column at this 0-based position in the header.
    Index(usize),
}

impl FromStr for TargetSpec {
    type Err = Error;

    /// All digits → `Index` (0-based), anything else → `Name`. Surrounding whitespace is
    /// ignored, as it is in the header names.
    fn from_str(s: &str) -> Result<Self> {
        let s = s.trim();
        if s.is_empty() {
            return Err(Error::flag("--target", "empty column name"));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s
                .parse()
                .map(TargetSpec::Index)
                .map_err(|_| Error::flag("--target", format!("column index {s} is too large")));
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

/// How to read a CSV file into a [`Dataset`].
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    pub target: TargetSpec,
    /// Header names of columns to leave out entirely.
    pub drop: Vec<String>,
    /// Header name of a row-identifier column: not a feature, its values go to `Dataset::ids`.
    pub id_column: Option<String>,
}

/// A numeric design matrix with a binary target.
#[derive(Clone, Debug)]
pub struct Dataset {
    pub path: PathBuf,
    pub feature_names: Vec<String>,
    /// Row-major, `n_rows * n_features`.
    pub x: Vec<f32>,
    /// 0.0 / 1.0.
    pub y: Vec<f32>,
    /// Values of the id column, when `ReadOptions::id_column` was given.
    pub ids: Option<Vec<String>>,
    pub target_name: String,
}

impl Dataset {
    pub fn n_rows(&self) -> usize {
        self.y.len()
    }

    pub fn n_features(&self) -> usize {
        self.feature_names.len()
    }

    /// Features of row `i`. Panics if `i >= n_rows()`, like slice indexing.
    pub fn row(&self, i: usize) -> &[f32] {
        let n = self.n_features();
        &self.x[i * n..(i + 1) * n]
    }

    /// Fraction of rows with target 1 (NaN for an empty dataset).
    pub fn positive_rate(&self) -> f64 {
        let pos = self.y.iter().filter(|&&v| v > 0.5).count();
        pos as f64 / self.y.len() as f64
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
        assert_eq!("x1".parse::<TargetSpec>().unwrap(), TargetSpec::Name("x1".into()));
        assert!("".parse::<TargetSpec>().is_err());
        assert!("99999999999999999999999".parse::<TargetSpec>().is_err());
        assert_eq!(TargetSpec::default(), TargetSpec::Last);
    }

    #[test]
    fn dataset_accessors() {
        let d = Dataset {
            path: "x.csv".into(),
            feature_names: vec!["a".into(), "b".into()],
            x: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0],
            y: vec![0.0, 1.0, 1.0],
            ids: None,
            target_name: "t".into(),
        };
        assert_eq!(d.n_rows(), 3);
        assert_eq!(d.n_features(), 2);
        assert_eq!(d.row(1), &[3.0, 4.0]);
        assert!((d.positive_rate() - 2.0 / 3.0).abs() < 1e-12);
    }
}
