//! The data flags shared by every command that reads a data file (CSV or Parquet).

use riskgrad::data::{
    NumericEncoding, OddCells, PrepareOptions, RareThreshold, Schema, SignedLog, TargetSpec,
};
use riskgrad::{Error, Result};
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct DataArgs {
    /// Data file: CSV (.csv or .csv.gz) with a header row, or Parquet (.parquet, or a
    /// directory whose .parquet files, in name order, share one schema). Default: the
    /// bundled UCI Taiwan credit-card default data (30,000 rows).
    #[arg(long, value_name = "FILE")]
    pub data: Option<PathBuf>,
    /// Target column: a header name, or a 0-based column index (a column named by the
    /// digits wins over the index). Default: the last column.
    /// Spelled 0/1, true/false, yes/no, y/n, good/bad, or any two values with --positive.
    #[arg(long, value_name = "COLUMN")]
    pub target: Option<String>,
    /// The target value that means default (needed when it is not one of the usual
    /// spellings).
    #[arg(long, value_name = "VALUE")]
    pub positive: Option<String>,
    /// Columns to leave out, comma-separated.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub drop: Vec<String>,
    /// The ID column (kept for predictions, not a feature). Default: a column unique per
    /// row and named like an ID is found and dropped automatically.
    #[arg(long, value_name = "COLUMN")]
    pub id: Option<String>,
    /// Do not drop ID-like columns automatically.
    #[arg(long)]
    pub keep_ids: bool,
    /// Numeric columns to treat as categories (one-hot), comma-separated.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub categorical: Vec<String>,
    /// Columns that must be numbers: a few cells that are not are read as missing (with a
    /// note), more are an error naming line and column.
    #[arg(long, value_name = "COLS", value_delimiter = ',')]
    pub numeric: Vec<String>,
    /// Refuse the odd cells of a numeric column (text, or numbers beyond f32's range)
    /// with an error naming file, line and column, instead of reading them as missing.
    /// Without it, a column whose non-missing cells are numbers in all but at most 1 % of
    /// them or 5 cells, whichever is more (and at most a tenth), is numeric, and its odd
    /// cells are read as missing with a note.
    #[arg(long)]
    pub strict: bool,
    /// Signed log transform of heavy-tailed amounts: auto (skewed columns with many
    /// values), none, or a comma-separated list of columns.
    #[arg(long, value_name = "auto|none|COLS", default_value = "auto")]
    pub signed_log: String,
    /// Categories seen in fewer training rows than this fold into "other" (a count, or a
    /// fraction of the training rows when below 1).
    #[arg(long, value_name = "N", default_value = "0.01")]
    pub min_category_count: f64,
    /// How numeric columns become features: ple (piecewise-linear encoding over quantile
    /// bins of the training rows, one feature per bin: up to 16 bins, at least 40 rows
    /// each, at most 160 such features in all), standard ((x - mean) / std) or periodic
    /// (standardised, then a learned embedding of sines in the mlp: 8 frequency pairs
    /// and 16 outputs per column). Saved with the model. ple is the default: in 5-fold
    /// cross-validation it matched or beat standard on 3 of 5 credit tables and was
    /// within 0.005 on the others (BENCHMARKS.md). Default: ple, but standard for the
    /// history columns of the sequence models (cnn, lstm, gru), which read one feature
    /// per column and step.
    #[arg(long, value_name = "ple|standard|periodic")]
    pub numeric_encoding: Option<String>,
    /// What to call the data in the run's lines, metrics.json and model card instead of
    /// its path: the Python package's name for a table it hands over as a temporary file.
    #[arg(long, value_name = "NAME", hide = true)]
    pub data_label: Option<String>,
}

impl DataArgs {
    pub fn is_bundled(&self) -> bool {
        self.data.is_none()
    }

    /// What to show as the data's name.
    pub fn name(&self) -> String {
        if let Some(label) = &self.data_label {
            return label.clone();
        }
        self.data
            .as_ref()
            .map_or(format!("bundled {}", riskgrad::data::BUNDLED_NAME), |p| {
                p.display().to_string()
            })
    }

    /// The `--numeric-encoding` asked for (ple when none is).
    pub fn encoding(&self) -> Result<NumericEncoding> {
        match &self.numeric_encoding {
            Some(name) => name.parse::<NumericEncoding>(),
            None => Ok(NumericEncoding::Ple),
        }
    }

    /// The preparation the flags ask for; the bundled data starts from its known
    /// target, ID column and codes.
    pub fn options(&self, val_fraction: f64, seed: u64) -> Result<PrepareOptions> {
        let mut opts = if self.is_bundled() {
            PrepareOptions::bundled()
        } else {
            PrepareOptions::default()
        };
        if let Some(t) = &self.target {
            opts.target = t.parse::<TargetSpec>()?;
        }
        if self.positive.is_some() {
            opts.positive = self.positive.clone();
        }
        opts.drop = self.drop.clone();
        if self.id.is_some() {
            opts.id_column = self.id.clone();
        }
        opts.auto_id = !self.keep_ids;
        if !self.categorical.is_empty() {
            opts.categorical = self.categorical.clone();
        } else {
            // A column the user names in --numeric leaves the bundled data's default
            // categorical list (e.g. PAY_0, to constrain it with --monotone).
            opts.categorical.retain(|c| !self.numeric.contains(c));
        }
        opts.numeric = self.numeric.clone();
        opts.strict = self.strict;
        opts.signed_log = match self.signed_log.as_str() {
            "auto" => SignedLog::Auto,
            "none" | "off" => SignedLog::Off,
            "" => {
                return Err(Error::flag(
                    "--signed-log",
                    "expected auto, none or column names",
                ))
            }
            cols => SignedLog::Columns(cols.split(',').map(|c| c.trim().to_string()).collect()),
        };
        let m = self.min_category_count;
        opts.rare = if !(m >= 0.0 && m.is_finite()) {
            return Err(Error::flag(
                "--min-category-count",
                format!("{m} is not a count or a fraction"),
            ));
        } else if m < 1.0 {
            RareThreshold::Fraction(m)
        } else {
            RareThreshold::Count(m as usize)
        };
        opts.numeric_encoding = self.encoding()?;
        opts.val_fraction = val_fraction;
        opts.seed = seed;
        Ok(opts)
    }
}

/// Prints one note per numeric column whose odd cells were read as missing (see
/// `--strict`), as training and `inspect` read them.
pub fn report_odd_cells(schema: &Schema) {
    for odd in schema.odd_cells() {
        eprintln!("note: {odd}; --strict makes this an error");
    }
}

/// Prints one note per numeric column whose odd cells a prediction read as missing (as
/// training reads such cells), and one per column of no use to the model in any row
/// (`PredictReader::unused_columns`).
pub fn report_scoring_notes<'a>(
    odd: impl Iterator<Item = &'a OddCells>,
    unused_columns: &[String],
) {
    for odd in odd {
        eprintln!("note: {odd}, the way training reads such cells");
    }
    for column in unused_columns {
        eprintln!("note: {column}; check the file's columns against the model's");
    }
}
