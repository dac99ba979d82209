//! The training distribution of each raw input column, saved with a model so that
//! `riskgrad monitor` can tell how far a new file's columns have moved (their
//! characteristic stability): a numeric column in bins cut at its training deciles, a
//! categorical one by the model's categories, each with a bin for missing cells (and a
//! categorical one with a bin for rare and unseen values). Training rows and a new file's
//! rows are binned by the same rules ([`ColumnBins::bin`]), from the same reading of a
//! cell ([`RawCell`]) the features are encoded from.

use serde::{Deserialize, Serialize};

use super::preprocess::{Preprocessor, TableEncoder};
use super::table::RawTable;
use crate::error::Result;

/// Bins of a numeric column (before the missing bin): at most this many, cut at the
/// training deciles.
pub const DECILES: usize = 10;

/// One cell of an input column as the model reads it, before encoding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RawCell {
    /// Empty, a missing spelling, or (in a numeric column) a cell that is not a number.
    Missing,
    /// A numeric column's value.
    Number(f32),
    /// A categorical column's value: the index of its category in the model's
    /// categories, or their count for a rare or unseen value ("other").
    Category(usize),
}

/// How one column's cells are binned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ColumnBins {
    /// Bin `i` holds the values in `(cuts[i-1], cuts[i]]`: the first everything up to
    /// `cuts[0]`, the last everything above the last cut; then the missing bin.
    Numeric {
        /// Strictly increasing, finite: the training deciles with duplicates collapsed
        /// (and none at the training maximum, whose bin would be empty).
        cuts: Vec<f32>,
    },
    /// One bin per category, then other (rare or unseen values), then missing.
    Categorical {
        /// The model's categories (those with their own one-hot feature), in its order.
        categories: Vec<String>,
    },
}

impl ColumnBins {
    /// The bins, the missing bin included.
    pub fn len(&self) -> usize {
        match self {
            ColumnBins::Numeric { cuts } => cuts.len() + 2,
            ColumnBins::Categorical { categories } => categories.len() + 2,
        }
    }

    /// Always false: every column has at least a value bin and the missing bin.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The bin a cell falls in.
    pub fn bin(&self, cell: &RawCell) -> usize {
        let missing = self.len() - 1;
        match (self, cell) {
            (_, RawCell::Missing) => missing,
            (ColumnBins::Numeric { cuts }, RawCell::Number(v)) if !v.is_nan() => {
                value_bin(cuts, *v)
            }
            (ColumnBins::Categorical { categories }, RawCell::Category(i)) => {
                (*i).min(categories.len())
            }
            // A cell of the other kind cannot come from the same preprocessing; count it
            // where it does least harm.
            _ => missing,
        }
    }

    /// A label per bin, as the monitoring report shows it: `<= 5`, `(5, 10]`, `> 10`,
    /// a category's name, `other/unseen`, `missing`.
    pub fn labels(&self) -> Vec<String> {
        let mut labels = match self {
            ColumnBins::Numeric { cuts } => value_labels(cuts),
            ColumnBins::Categorical { categories } => {
                let mut l = categories.clone();
                l.push("other/unseen".into());
                l
            }
        };
        labels.push("missing".into());
        labels
    }

    /// "numeric" or "categorical".
    pub fn kind(&self) -> &'static str {
        match self {
            ColumnBins::Numeric { .. } => "numeric",
            ColumnBins::Categorical { .. } => "categorical",
        }
    }
}

/// The bin of value `v` among bins cut at `cuts`: how many cuts lie below it (a value
/// equal to a cut belongs to the bin the cut closes).
pub fn value_bin(cuts: &[f32], v: f32) -> usize {
    cuts.partition_point(|&c| c < v)
}

/// Labels of the `cuts.len() + 1` bins cut at `cuts`.
pub fn value_labels(cuts: &[f32]) -> Vec<String> {
    let (Some(first), Some(last)) = (cuts.first(), cuts.last()) else {
        return vec!["all values".into()];
    };
    let mut l = vec![format!("<= {first}")];
    l.extend(cuts.windows(2).map(|w| format!("({}, {}]", w[0], w[1])));
    l.push(format!("> {last}"));
    l
}

/// Cuts at the deciles of `values` (finite numbers; sorted here): the value at rank
/// `ceil(k n / 10)` for k = 1..9, duplicates collapsed, and cuts at the largest value
/// left out (the bin above it would hold no training value). Fewer than 9 cuts when
/// values repeat; none for a constant or empty column.
pub fn decile_cuts(values: &mut [f32]) -> Vec<f32> {
    values.sort_by(f32::total_cmp);
    let n = values.len();
    let Some(&max) = values.last() else {
        return Vec::new();
    };
    let mut cuts: Vec<f32> = Vec::with_capacity(DECILES - 1);
    for k in 1..DECILES {
        let cut = values[(k * n).div_ceil(DECILES) - 1];
        if cut < max && cuts.last().is_none_or(|&last| cut > last) {
            cuts.push(cut);
        }
    }
    cuts
}

/// The share of `counts`' total in each bin (all 0 when the total is 0).
pub fn fractions(counts: &[u64]) -> Vec<f64> {
    let total: u64 = counts.iter().sum();
    counts
        .iter()
        .map(|&c| match total {
            0 => 0.0,
            t => c as f64 / t as f64,
        })
        .collect()
}

/// Whether `fractions` are the shares of a whole: they add up to 1 (within the rounding
/// of their sum).
pub(crate) fn shares_of_a_whole(fractions: &[f64]) -> bool {
    (fractions.iter().sum::<f64>() - 1.0).abs() <= 1e-6 * fractions.len().max(1) as f64
}

/// One raw input column's training distribution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnProfile {
    /// The column's header name.
    pub name: String,
    /// Its bins.
    #[serde(flatten)]
    pub bins: ColumnBins,
    /// The share of the training rows in each bin (`bins.len()` of them, summing to 1).
    pub fractions: Vec<f64>,
}

impl ColumnProfile {
    /// Bins `cells` (one column's cells of the training rows): numeric cells at their
    /// deciles, categorical ones by `categories` (`None` for a numeric column).
    pub fn fit(name: &str, cells: &[RawCell], categories: Option<&[String]>) -> Self {
        let bins = match categories {
            Some(c) => ColumnBins::Categorical {
                categories: c.to_vec(),
            },
            None => {
                let mut values: Vec<f32> = cells
                    .iter()
                    .filter_map(|c| match c {
                        RawCell::Number(v) if v.is_finite() => Some(*v),
                        _ => None,
                    })
                    .collect();
                ColumnBins::Numeric {
                    cuts: decile_cuts(&mut values),
                }
            }
        };
        let mut counts = vec![0u64; bins.len()];
        for cell in cells {
            counts[bins.bin(cell)] += 1;
        }
        ColumnProfile {
            name: name.to_string(),
            fractions: fractions(&counts),
            bins,
        }
    }

    /// Why a profile read from a file cannot be used (`None` when it can): fractions
    /// not one per bin or not shares, cuts not finite and increasing.
    pub fn problem(&self) -> Option<String> {
        if self.fractions.len() != self.bins.len() {
            return Some(format!(
                "column {:?} has {} fractions for {} bins",
                self.name,
                self.fractions.len(),
                self.bins.len()
            ));
        }
        if self
            .fractions
            .iter()
            .any(|f| !f.is_finite() || !(0.0..=1.0).contains(f))
        {
            return Some(format!(
                "column {:?} has a fraction outside 0 to 1",
                self.name
            ));
        }
        if !shares_of_a_whole(&self.fractions) {
            return Some(format!(
                "column {:?}: its fractions do not add up to 1",
                self.name
            ));
        }
        match &self.bins {
            ColumnBins::Numeric { cuts }
                if cuts.iter().any(|c| !c.is_finite()) || cuts.windows(2).any(|w| w[0] >= w[1]) =>
            {
                Some(format!(
                    "column {:?}: its cuts are not increasing finite numbers",
                    self.name
                ))
            }
            _ => None,
        }
    }
}

/// The training distribution of each of `pre`'s input columns over `rows` of `table`, in
/// the order of `pre.inputs`.
pub fn fit_profile(
    table: &RawTable,
    pre: &Preprocessor,
    rows: &[u32],
) -> Result<Vec<ColumnProfile>> {
    let mut profile = Vec::with_capacity(pre.inputs.len());
    let mut cells = Vec::with_capacity(rows.len());
    let columns = table.columns_by_name();
    for input in &pre.inputs {
        let encoder = TableEncoder::new(input, table, &columns)?;
        cells.clear();
        cells.extend(rows.iter().map(|&r| encoder.cell(input, r as usize)));
        let categories = match input {
            super::InputColumn::Categorical(s) => Some(s.categories.as_slice()),
            super::InputColumn::Numeric(_) => None,
        };
        profile.push(ColumnProfile::fit(input.name(), &cells, categories));
    }
    Ok(profile)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_deciles_collapse_and_the_maximum_is_no_cut() {
        let mut v = [1.0, 1.0, 5.0, 1.0, 1.0, 2.0, 1.0, 3.0, 1.0, 4.0];
        assert_eq!(decile_cuts(&mut v), vec![1.0, 2.0, 3.0, 4.0]);
        // Two values, 70 % zeros: one cut, at 0 (a cut at 1 would close an empty bin).
        let mut binary: Vec<f32> = [0.0; 7].into_iter().chain([1.0; 3]).collect();
        assert_eq!(decile_cuts(&mut binary), vec![0.0]);
        assert!(decile_cuts(&mut [7.0; 5]).is_empty());
        assert!(decile_cuts(&mut []).is_empty());
        // Twenty distinct values: a cut every second one.
        let mut twenty: Vec<f32> = (1..=20).rev().map(|i| i as f32).collect();
        assert_eq!(
            decile_cuts(&mut twenty),
            vec![2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0]
        );
    }

    #[test]
    fn numeric_bins_by_hand() {
        use RawCell::*;
        // Values 1 (x6), 2, 3, 4, 5, and two missing: cuts 1, 2, 3, 4.
        let cells: Vec<RawCell> = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0, 4.0, 5.0]
            .into_iter()
            .map(Number)
            .chain([Missing, Missing])
            .collect();
        let p = ColumnProfile::fit("x", &cells, None);
        assert_eq!(
            p.bins,
            ColumnBins::Numeric {
                cuts: vec![1.0, 2.0, 3.0, 4.0]
            }
        );
        let twelfth = 1.0 / 12.0;
        let want = [
            6.0 * twelfth,
            twelfth,
            twelfth,
            twelfth,
            twelfth,
            2.0 * twelfth,
        ];
        for (got, want) in p.fractions.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{:?}", p.fractions);
        }
        assert_eq!(
            p.bins.labels(),
            ["<= 1", "(1, 2]", "(2, 3]", "(3, 4]", "> 4", "missing"]
        );
        // A new value below the training range, on a cut, between cuts, above them.
        assert_eq!(p.bins.bin(&Number(-50.0)), 0);
        assert_eq!(p.bins.bin(&Number(2.0)), 1);
        assert_eq!(p.bins.bin(&Number(2.5)), 2);
        assert_eq!(p.bins.bin(&Number(1e9)), 4);
        assert_eq!(p.bins.bin(&Missing), 5);
        assert!(p.problem().is_none());
    }

    #[test]
    fn categorical_bins_by_hand() {
        use RawCell::*;
        let categories = vec!["own".to_string(), "rent".to_string()];
        // own, own, rent, other (a rare value), missing.
        let cells = [Category(0), Category(0), Category(1), Category(2), Missing];
        let p = ColumnProfile::fit("housing", &cells, Some(&categories));
        assert_eq!(p.fractions, vec![0.4, 0.2, 0.2, 0.2]);
        assert_eq!(p.bins.labels(), ["own", "rent", "other/unseen", "missing"]);
        // An unseen category is read as other (index = the categories' count).
        assert_eq!(p.bins.bin(&Category(2)), 2);
        assert_eq!(p.bins.bin(&Missing), 3);
    }

    #[test]
    fn an_all_missing_column_has_one_empty_value_bin() {
        let p = ColumnProfile::fit("x", &[RawCell::Missing; 4], None);
        assert_eq!(p.bins, ColumnBins::Numeric { cuts: vec![] });
        assert_eq!(p.fractions, vec![0.0, 1.0]);
        assert_eq!(p.bins.labels(), ["all values", "missing"]);
    }
}
