//! The choices a user can make about reading and preparing a file; one field per CLI flag.

use serde::{Deserialize, Serialize};

use super::TargetSpec;

/// Which numeric columns get the signed log `sign(x) * ln(1 + |x|)` before standardising.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub enum SignedLog {
    /// None (`--signed-log none`).
    Off,
    /// Heavy-tailed amounts, judged on the training rows: at least
    /// [`SignedLog::AUTO_MIN_DISTINCT`] distinct values and a skewness of at least
    /// [`SignedLog::AUTO_MIN_SKEW`] (`--signed-log auto`, the default: on the Taiwan file
    /// it raised the default MLP's validation AUC after 5 epochs for each of 3 seeds, by
    /// 0.001 to 0.006, and by 0.03 to 0.08 after the first epoch).
    #[default]
    Auto,
    /// These columns (`--signed-log A,B`).
    Columns(Vec<String>),
}

impl SignedLog {
    /// Few distinct values means codes or counts, not amounts.
    pub const AUTO_MIN_DISTINCT: usize = 20;
    /// Taiwan's amounts have skewness 2.7 to 30; its ages, limits and codes below 1.1.
    pub const AUTO_MIN_SKEW: f64 = 2.0;
}

/// How each numeric column becomes features (`--numeric-encoding`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NumericEncoding {
    /// One feature: `(x - mean) / std` of the training rows.
    #[default]
    Standard,
    /// Piecewise-linear encoding over quantile bins of the training rows (Gorishniy,
    /// Rubachev and Babenko, NeurIPS 2022): one feature per bin, 0 below it, 1 above it
    /// and linear inside, so a network sees where in the distribution a value lies.
    Ple,
    /// Standardised as `Standard` here; the MLP then learns a periodic embedding of each
    /// numeric feature (`nn::periodic`).
    Periodic,
}

impl NumericEncoding {
    /// Most quantile bins per column (fewer when the column has fewer distinct values).
    pub const PLE_MAX_BINS: usize = 16;
    /// Fewest training rows per bin on average: small tables get fewer, wider bins.
    pub const PLE_MIN_ROWS_PER_BIN: usize = 40;
    /// Most piecewise-linear features in all: a table with many numeric columns gets
    /// fewer bins per column, so that it trains as fast as it would standardized, within
    /// a small factor (the bundled data's 20 numeric columns get 8 bins each: 5-fold
    /// AUC 0.7831 in 4.5 s, against 0.7833 in 11 s with 16; BENCHMARKS.md).
    pub const PLE_MAX_FEATURES: usize = 160;

    /// Bins per numeric column for `rows` training rows and `columns` numeric columns.
    pub fn ple_bins(rows: usize, columns: usize) -> usize {
        (rows / Self::PLE_MIN_ROWS_PER_BIN)
            .min(Self::PLE_MAX_FEATURES / columns.max(1))
            .clamp(2, Self::PLE_MAX_BINS)
    }
}

impl std::str::FromStr for NumericEncoding {
    type Err = crate::error::Error;

    fn from_str(s: &str) -> crate::error::Result<Self> {
        match s.trim() {
            "standard" => Ok(NumericEncoding::Standard),
            "ple" => Ok(NumericEncoding::Ple),
            "periodic" => Ok(NumericEncoding::Periodic),
            other => Err(crate::error::Error::invalid(
                crate::error::Setting::NumericEncoding,
                format!("{other:?} is not standard, ple or periodic"),
            )),
        }
    }
}

/// How rare a category may be before it is folded into `other`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum RareThreshold {
    /// Fewer training rows than this.
    Count(usize),
    /// Fewer than this fraction of the training rows (rounded up, at least 1 row).
    Fraction(f64),
}

impl Default for RareThreshold {
    /// 1 % of the training rows: at most 100 one-hot columns per categorical column.
    fn default() -> Self {
        RareThreshold::Fraction(0.01)
    }
}

impl RareThreshold {
    /// The smallest training count a category needs to keep its own column.
    pub fn min_count(self, n_train: usize) -> usize {
        match self {
            RareThreshold::Count(c) => c.max(1),
            RareThreshold::Fraction(f) if f.is_finite() && f > 0.0 => {
                ((f * n_train as f64).ceil() as usize).max(1)
            }
            RareThreshold::Fraction(_) => 1,
        }
    }
}

/// How to read, type and prepare a CSV file for training. `Default` is what `riskgrad
/// train --data FILE` does with no other flag; [`PrepareOptions::bundled`] is the
/// bundled Taiwan file's.
#[derive(Clone, Debug)]
pub struct PrepareOptions {
    /// The target column (`--target`).
    pub target: TargetSpec,
    /// The target value that is the positive class (`--positive`); needed only when the two
    /// values are not a known pair (0/1, true/false, yes/no, y/n, t/f, good/bad, 1/2).
    pub positive: Option<String>,
    /// Columns to leave out (`--drop`).
    pub drop: Vec<String>,
    /// A row-identifier column (`--id`): not a feature; prediction writes its values.
    pub id_column: Option<String>,
    /// Drop, with a note in [`Prepared::auto_dropped`](super::Prepared), a column that is
    /// unique per row and named like an identifier (`id`, `ID`, `customer_id`, `LoanId`,
    /// `Unnamed: 0`, ...). On unless `--keep-ids`.
    pub auto_id: bool,
    /// Columns to treat as categories even when they hold numbers (`--categorical`).
    pub categorical: Vec<String>,
    /// Columns that must hold numbers (`--numeric`): any other value is an error naming its
    /// line and column, instead of turning the column into categories.
    pub numeric: Vec<String>,
    /// Columns a sequence model reads as one channel's time steps (`--sequence`): read as
    /// numbers, like `numeric`, but a name not in the file is blamed on the sequence.
    pub sequence: Vec<String>,
    /// Refuse, naming file, line and column, the cells a numeric column would otherwise
    /// read as missing (`--strict`): text within the share
    /// [`numeric_despite`](super::numeric_despite) allows, and numbers beyond f32's range.
    pub strict: bool,
    /// Signed log of heavy-tailed amounts (`--signed-log`).
    pub signed_log: SignedLog,
    /// Rare-category folding (`--min-category-count N` or a fraction).
    pub rare: RareThreshold,
    /// How numeric columns become features (`--numeric-encoding`).
    pub numeric_encoding: NumericEncoding,
    /// Fraction of rows held out for validation, stratified (`--val-split`).
    pub val_fraction: f64,
    /// Seed of the split (`--seed`).
    pub seed: u64,
}

impl Default for PrepareOptions {
    fn default() -> Self {
        PrepareOptions {
            target: TargetSpec::Last,
            positive: None,
            drop: Vec::new(),
            id_column: None,
            auto_id: true,
            categorical: Vec::new(),
            numeric: Vec::new(),
            sequence: Vec::new(),
            strict: false,
            signed_log: SignedLog::default(),
            rare: RareThreshold::default(),
            numeric_encoding: NumericEncoding::default(),
            val_fraction: 0.2,
            seed: 0,
        }
    }
}

impl PrepareOptions {
    /// The bundled Taiwan file: target `default payment next month`, id `ID`, the codes
    /// SEX, EDUCATION, MARRIAGE and the repayment statuses PAY_0, PAY_2..PAY_6 as
    /// categories, amounts through the automatic signed log. Measured with the default MLP
    /// (64-32, Adam 1e-3, batch 256), validation AUC after 5 epochs, seeds 0/1/2: all
    /// numeric 0.771/0.771/0.756; signed log 0.772/0.777/0.760; these defaults
    /// 0.781/0.794/0.767.
    pub fn bundled() -> Self {
        let categorical = [
            "SEX",
            "EDUCATION",
            "MARRIAGE",
            "PAY_0",
            "PAY_2",
            "PAY_3",
            "PAY_4",
            "PAY_5",
            "PAY_6",
        ];
        PrepareOptions {
            target: TargetSpec::Name("default payment next month".into()),
            id_column: Some("ID".into()),
            categorical: categorical.iter().map(|c| c.to_string()).collect(),
            signed_log: SignedLog::Auto,
            ..Default::default()
        }
    }
}
