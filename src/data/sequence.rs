//! Payment-history tensors: which feature columns form time series, and the column
//! order the sequence models read.
//!
//! Each `--sequence` flag names the columns of one channel, one per time step, e.g.
//! `PAY_0,PAY_2..6` or `BILL_AMT1..6`; `--time-order` says whether they are listed
//! oldest or newest first. Columns in no sequence are static features. The model's
//! feature matrix then holds the static features first (in their original order), then
//! the history, time-major and chronological: column `statics + t·channels + c` is
//! channel `c` at step `t`, step 0 the oldest.
//!
//! For the bundled Taiwan data (and any file with its column names) the default is
//! three channels over six months, newest first as the data lists them (see
//! data/README.md: month 1 is September, and there is no `PAY_1`): `PAY_0,PAY_2..6`,
//! `BILL_AMT1..6`, `PAY_AMT1..6`.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{PrepareOptions, Prepared};
use crate::error::{Error, Result, Setting};

/// A range longer than this is a typo, not a history.
const MAX_RANGE: usize = 100_000;

/// Which way the columns of a `--sequence` run in time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TimeOrder {
    /// The first column listed is the oldest step.
    #[default]
    OldestFirst,
    /// The first column listed is the newest step (the Taiwan data's numbering).
    NewestFirst,
}

impl FromStr for TimeOrder {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "oldest-first" => Ok(TimeOrder::OldestFirst),
            "newest-first" => Ok(TimeOrder::NewestFirst),
            other => Err(Error::invalid(
                Setting::TimeOrder,
                format!("{other:?} is not oldest-first or newest-first"),
            )),
        }
    }
}

impl fmt::Display for TimeOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeOrder::OldestFirst => "oldest-first",
            TimeOrder::NewestFirst => "newest-first",
        })
    }
}

/// The column names of one `--sequence` value, in the order given: comma-separated
/// items, each a column name or a range of numbered columns, `BILL_AMT1..6` or
/// `BILL_AMT1..BILL_AMT6` (descending ranges count down; a zero-padded start, `M01..12`,
/// keeps its width).
pub fn parse_sequence(spec: &str) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for item in spec.split(',') {
        let item = item.trim();
        if item.is_empty() {
            return Err(Error::invalid(
                Setting::Sequence,
                format!("{spec:?} has an empty column name"),
            ));
        }
        match item.split_once("..") {
            None => names.push(item.to_string()),
            Some((from, to)) => names.extend(expand_range(spec, from.trim(), to.trim())?),
        }
    }
    Ok(names)
}

/// `PREFIXa..b` or `PREFIXa..PREFIXb`.
fn expand_range(spec: &str, from: &str, to: &str) -> Result<Vec<String>> {
    let bad = |why: &str| {
        Error::invalid(
            Setting::Sequence,
            format!("range {from}..{to} in {spec:?}: {why}"),
        )
    };
    let (prefix, start_digits) = split_number(from);
    if start_digits.is_empty() {
        return Err(bad("the start must end in a number, as in BILL_AMT1..6"));
    }
    let end_digits = if to.bytes().all(|b| b.is_ascii_digit()) {
        to
    } else {
        let (end_prefix, digits) = split_number(to);
        if end_prefix != prefix || digits.is_empty() {
            return Err(bad("both ends must be the same name with another number"));
        }
        digits
    };
    if end_digits.is_empty() {
        return Err(bad("the end is missing"));
    }
    let parse = |d: &str| {
        d.parse::<usize>()
            .map_err(|_| bad("the numbers are too large"))
    };
    let (a, b) = (parse(start_digits)?, parse(end_digits)?);
    if a.abs_diff(b) >= MAX_RANGE {
        return Err(bad(&format!("more than {MAX_RANGE} columns")));
    }
    let width = if start_digits.len() > 1 && start_digits.starts_with('0') {
        start_digits.len()
    } else {
        0
    };
    let numbers: Vec<usize> = if a <= b {
        (a..=b).collect()
    } else {
        (b..=a).rev().collect()
    };
    Ok(numbers
        .into_iter()
        .map(|i| format!("{prefix}{i:0width$}"))
        .collect())
}

/// A name's trailing decimal digits and what comes before them.
fn split_number(name: &str) -> (&str, &str) {
    let cut = name.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    name.split_at(cut)
}

/// The `--sequence` values of the Taiwan data's history, newest month first (`first_pay`
/// is `PAY_0`, or `PAY_1` in copies that renamed it).
pub fn taiwan_specs(first_pay: &str) -> Vec<String> {
    vec![
        format!("{first_pay},PAY_2..6"),
        "BILL_AMT1..6".to_string(),
        "PAY_AMT1..6".to_string(),
    ]
}

/// Every column the `--sequence` values name.
pub fn named_columns(specs: &[String]) -> Result<Vec<String>> {
    Ok(specs
        .iter()
        .map(|s| parse_sequence(s))
        .collect::<Result<Vec<_>>>()?
        .concat())
}

/// Preparation for a sequence model: each column of `specs` (the Taiwan history when
/// `specs` is empty) is read as a number, since a one-hot encoded column cannot be a
/// channel. On the bundled file every column is numeric, as the peer programs have it:
/// the statics are the five columns LIMIT_BAL, SEX, EDUCATION, MARRIAGE, AGE.
pub fn prepare_options(
    mut opts: PrepareOptions,
    specs: &[String],
    bundled: bool,
) -> Result<PrepareOptions> {
    let columns = if specs.is_empty() {
        let mut all = named_columns(&taiwan_specs("PAY_0"))?;
        all.push("PAY_1".into());
        all
    } else {
        named_columns(specs)?
    };
    if bundled {
        opts.categorical.clear();
    }
    opts.categorical.retain(|c| !columns.contains(c));
    if !specs.is_empty() {
        for c in columns {
            if !opts.sequence.contains(&c) {
                opts.sequence.push(c);
            }
        }
    }
    Ok(opts)
}

/// Where every feature goes in the sequence models' layout (see the module docs). Saved
/// with a model: prediction reorders its prepared features the same way.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SequenceLayout {
    /// The static features, in their original order.
    pub static_names: Vec<String>,
    /// `channels[c][t]`: the feature of channel `c` at step `t`, step 0 the oldest.
    pub channels: Vec<Vec<String>>,
    /// For each column of the reordered matrix, its column in the original one.
    pub source: Vec<usize>,
}

impl SequenceLayout {
    /// The layout of `sequences` (one list of names per channel, as listed, in `order`)
    /// among `feature_names`. Every channel needs the same number of steps, every name
    /// must be a feature, and no feature may appear twice.
    pub fn new(
        feature_names: &[String],
        sequences: &[Vec<String>],
        order: TimeOrder,
    ) -> Result<Self> {
        let flag = |msg: String| Error::invalid(Setting::Sequence, msg);
        if sequences.is_empty() {
            return Err(flag("no sequence given".into()));
        }
        let steps = sequences[0].len();
        for (c, seq) in sequences.iter().enumerate() {
            if seq.is_empty() {
                return Err(flag(format!("sequence {} names no columns", c + 1)));
            }
            if seq.len() != steps {
                return Err(flag(format!(
                    "sequence {} ({}) has {} columns and sequence 1 ({}) has {steps}: every sequence needs one column per time step",
                    c + 1,
                    short_list(seq),
                    seq.len(),
                    short_list(&sequences[0])
                )));
            }
        }
        let position: HashMap<&str, usize> = feature_names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.as_str(), i))
            .collect();
        // The sequence each feature is in so far.
        let mut owner: Vec<Option<usize>> = vec![None; feature_names.len()];
        let mut chronological = Vec::with_capacity(sequences.len());
        for (c, seq) in sequences.iter().enumerate() {
            let mut cols = Vec::with_capacity(steps);
            for name in seq {
                let Some(&i) = position.get(name.as_str()) else {
                    return Err(flag(unknown_column(name, feature_names)));
                };
                if let Some(c0) = owner[i] {
                    let place = if c0 == c {
                        format!("twice in sequence {}", c + 1)
                    } else {
                        format!("in sequences {} and {}", c0 + 1, c + 1)
                    };
                    return Err(flag(format!("column {name:?} appears {place}")));
                }
                owner[i] = Some(c);
                cols.push(i);
            }
            if order == TimeOrder::NewestFirst {
                cols.reverse();
            }
            chronological.push(cols);
        }
        let statics: Vec<usize> = (0..feature_names.len())
            .filter(|&i| owner[i].is_none())
            .collect();
        let mut source = statics.clone();
        for t in 0..steps {
            source.extend(chronological.iter().map(|cols| cols[t]));
        }
        Ok(SequenceLayout {
            static_names: statics.iter().map(|&i| feature_names[i].clone()).collect(),
            channels: chronological
                .iter()
                .map(|cols| cols.iter().map(|&i| feature_names[i].clone()).collect())
                .collect(),
            source,
        })
    }

    /// The layout the CLI flags ask for: `specs` (one per `--sequence`), listed in
    /// `order`; without any, the Taiwan data's default when its columns are there.
    pub fn from_flags(
        feature_names: &[String],
        specs: &[String],
        order: Option<TimeOrder>,
    ) -> Result<Self> {
        if specs.is_empty() {
            if order.is_some() {
                return Err(Error::invalid(
                    Setting::TimeOrder,
                    "applies to sequence columns, and none were given",
                ));
            }
            return Self::taiwan_default(feature_names).ok_or_else(|| {
                Error::invalid(Setting::Sequence,
                    "this model reads time series: name the columns of each channel, e.g. 'BILL_AMT1..6' \
                     for one channel and 'PAY_AMT1..6' for another, and their time order",
                )
            });
        }
        let sequences = specs
            .iter()
            .map(|s| parse_sequence(s))
            .collect::<Result<Vec<_>>>()?;
        Self::new(feature_names, &sequences, order.unwrap_or_default())
    }

    /// The bundled Taiwan data's history (PAY, BILL_AMT, PAY_AMT over six months), when
    /// `feature_names` has those columns. Some copies of the data call `PAY_0` `PAY_1`.
    pub fn taiwan_default(feature_names: &[String]) -> Option<Self> {
        let has = |n: &str| feature_names.iter().any(|f| f == n);
        let first_pay = if has("PAY_0") { "PAY_0" } else { "PAY_1" };
        let sequences = taiwan_specs(first_pay)
            .iter()
            .map(|s| parse_sequence(s))
            .collect::<Result<Vec<_>>>()
            .ok()?;
        Self::new(feature_names, &sequences, TimeOrder::NewestFirst).ok()
    }

    /// Puts a prepared dataset's features (both splits and the names) in this layout.
    pub fn apply(&self, prepared: &mut Prepared) -> Result<()> {
        if prepared.feature_names.len() != self.source.len() {
            return Err(Error::size_mismatch(
                "the sequence layout's features",
                prepared.feature_names.len(),
                self.source.len(),
            ));
        }
        prepared.train.x = self.reorder(&prepared.train.x)?;
        prepared.val.x = self.reorder(&prepared.val.x)?;
        prepared.feature_names = self.feature_names();
        Ok(())
    }

    /// Static features, which come first in the reordered rows.
    pub fn statics(&self) -> usize {
        self.static_names.len()
    }

    /// Features per step.
    pub fn channels(&self) -> usize {
        self.channels.len()
    }

    /// Steps in the sequence.
    pub fn steps(&self) -> usize {
        self.channels.first().map_or(0, Vec::len)
    }

    /// Feature names in the reordered order.
    pub fn feature_names(&self) -> Vec<String> {
        let mut names = self.static_names.clone();
        for t in 0..self.steps() {
            names.extend(self.channels.iter().map(|ch| ch[t].clone()));
        }
        names
    }

    /// A row-major matrix with the original columns, reordered into this layout.
    pub fn reorder(&self, x: &[f32]) -> Result<Vec<f32>> {
        let f = self.source.len();
        if f == 0 || !x.len().is_multiple_of(f) {
            return Err(Error::NotWholeRows {
                what: "features",
                values: x.len(),
                width: f,
            });
        }
        let mut out = Vec::with_capacity(x.len());
        for row in x.chunks_exact(f) {
            out.extend(self.source.iter().map(|&i| row[i]));
        }
        Ok(out)
    }
}

/// `A, B, …, Z (n)` for error messages.
fn short_list(names: &[String]) -> String {
    match names {
        [] => String::new(),
        [a] => a.clone(),
        [a, b] => format!("{a}, {b}"),
        [a, .., z] => format!("{a} … {z}"),
    }
}

fn unknown_column(name: &str, features: &[String]) -> String {
    let one_hot = format!("{name}=");
    if features.iter().any(|f| f.starts_with(&one_hot)) {
        return format!("column {name:?} was read as categories (one-hot {name}=…); a sequence needs numbers: prepare with sequence::prepare_options, or declare it numeric");
    }
    let lower = name.to_lowercase();
    if let Some(f) = features.iter().find(|f| f.to_lowercase() == lower) {
        return format!(
            "no feature column {name:?} (did you mean {f:?}? names are case-sensitive)"
        );
    }
    let shown: Vec<&str> = features.iter().take(40).map(String::as_str).collect();
    let more = if features.len() > 40 {
        format!(", … ({} in all)", features.len())
    } else {
        String::new()
    };
    format!(
        "no feature column {name:?}; the features are {}{more}",
        shown.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn ranges_and_lists() {
        assert_eq!(
            parse_sequence("BILL_AMT1..6").unwrap(),
            names(&[
                "BILL_AMT1",
                "BILL_AMT2",
                "BILL_AMT3",
                "BILL_AMT4",
                "BILL_AMT5",
                "BILL_AMT6"
            ])
        );
        assert_eq!(
            parse_sequence("PAY_0, PAY_2..4").unwrap(),
            names(&["PAY_0", "PAY_2", "PAY_3", "PAY_4"])
        );
        assert_eq!(
            parse_sequence("X3..X1").unwrap(),
            names(&["X3", "X2", "X1"])
        );
        assert_eq!(
            parse_sequence("m08..10").unwrap(),
            names(&["m08", "m09", "m10"])
        );
        assert_eq!(parse_sequence("a").unwrap(), names(&["a"]));
        for bad in [
            "",
            "a,,b",
            "BILL..6",
            "A1..B3",
            "A1..",
            "A1..99999999999999999999999",
            "A1..200000",
        ] {
            let e = parse_sequence(bad).unwrap_err();
            assert!(
                matches!(
                    e,
                    Error::Invalid {
                        setting: Setting::Sequence,
                        ..
                    }
                ),
                "{bad:?}: {e:?}"
            );
        }
    }

    #[test]
    fn time_order_parses() {
        assert_eq!(
            "newest-first".parse::<TimeOrder>().unwrap(),
            TimeOrder::NewestFirst
        );
        assert_eq!(
            " Oldest-First ".parse::<TimeOrder>().unwrap(),
            TimeOrder::OldestFirst
        );
        assert!(matches!(
            "backwards".parse::<TimeOrder>().unwrap_err(),
            Error::Invalid {
                setting: Setting::TimeOrder,
                ..
            }
        ));
    }
}
