//! The fairness check of a model's decisions across the groups of a protected column
//! (sex, age band, ...): per group, its size, observed default rate, approval rate at
//! the decision threshold, adverse impact ratio, AUC and calibration.
//!
//! An applicant is approved when the predicted probability of default is below the
//! threshold (a score at or above it is a predicted default, as in
//! [`crate::metrics::Confusion`]). A group's adverse impact ratio (AIR) is its approval
//! rate over the most favoured group's, the group with the highest approval rate (ties:
//! the larger group, then the one listed first). The four-fifths rule of the US
//! Uniform Guidelines on Employee Selection Procedures, used for credit decisions too,
//! flags an AIR below 0.8 ([`FOUR_FIFTHS`]). When no group has any approval the ratios are
//! undefined (NaN) and nothing is flagged.
//!
//! Groups come from the column's cells ([`group_cells`]): one group per value, or, for a
//! numeric column with more distinct values than asked for (an age, an income), quantile
//! bins of about equal rows. Missing cells form a group of their own.

use crate::data::{category_key, parse_number};
use crate::metrics::{auc, calibration, CalibrationBin};
use serde::Serialize;
use std::collections::HashMap;

/// The adverse impact ratio below which a group is flagged (the four-fifths rule).
pub const FOUR_FIFTHS: f64 = 0.8;

/// Calibration bins per group (quintiles of the group's scores).
pub const GROUP_CALIBRATION_BINS: usize = 5;

/// The label of the group of missing cells.
pub const MISSING_GROUP: &str = "(missing)";

/// How a protected column's cells became groups.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// One group per distinct value (numbers compared as numbers: `2` and `2.0` are one).
    Values,
    /// A numeric column cut at quantiles of its values into bins of about equal rows.
    QuantileBins,
}

/// The rows of a table split into groups of a protected column.
#[derive(Clone, Debug, PartialEq)]
pub struct Groups {
    /// How the groups were formed.
    pub grouping: Grouping,
    /// Each group's label: its value, a bin `[lo, hi)` (the last `[lo, hi]`), or
    /// [`MISSING_GROUP`]. Values and bins in ascending order, the missing group last.
    pub labels: Vec<String>,
    /// Each row's group, an index into `labels`.
    pub of_row: Vec<usize>,
}

/// Groups rows by their cell of a protected column (`None` for a missing cell). A column
/// whose cells are all numbers and that has more than `max_values` distinct values is cut
/// into at most `max_values` quantile bins of about equal rows (fewer when values
/// repeat); any other column has one group per value. `max_values` below 2 counts as 2.
pub fn group_cells(cells: &[Option<String>], max_values: usize) -> Groups {
    let max_values = max_values.max(2);
    let numbers: Vec<Option<f32>> = cells
        .iter()
        .map(|c| c.as_deref().and_then(|c| parse_number(c.as_bytes())))
        .collect();
    let all_numeric = cells
        .iter()
        .zip(&numbers)
        .all(|(c, n)| c.is_none() || n.is_some());
    let has_missing = cells.iter().any(Option::is_none);
    if all_numeric {
        let mut values: Vec<f32> = numbers.iter().flatten().copied().collect();
        values.sort_by(f32::total_cmp);
        let mut distinct = values.clone();
        distinct.dedup();
        if distinct.len() > max_values {
            return quantile_bins(&numbers, &values, max_values, has_missing);
        }
    }
    // One group per value, keyed as categories are (`2`, `2.0` and `02` are one).
    let key_of = |c: &str| -> String {
        match category_key(c.as_bytes()) {
            Ok(Some(k)) => k.into_owned(),
            _ => c.to_string(),
        }
    };
    let mut keys: Vec<String> = cells.iter().flatten().map(|c| key_of(c)).collect();
    if all_numeric {
        keys.sort_by(|a, b| {
            let num = |s: &str| s.parse::<f64>().unwrap_or(f64::NAN);
            num(a).total_cmp(&num(b))
        });
    } else {
        keys.sort();
    }
    keys.dedup();
    let index: HashMap<&str, usize> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let missing = keys.len();
    let of_row = cells
        .iter()
        .map(|c| match c {
            Some(c) => index[key_of(c).as_str()],
            None => missing,
        })
        .collect();
    let mut labels = keys.clone();
    if has_missing {
        labels.push(MISSING_GROUP.to_string());
    }
    Groups {
        grouping: Grouping::Values,
        labels,
        of_row,
    }
}

/// Bins `[c_k, c_{k+1})` between cut points at the `k / bins` quantiles of the sorted
/// values (a cut that repeats the one before is dropped, so a heavy value never
/// straddles two bins, and one at the lowest value moves up to the next value).
fn quantile_bins(
    numbers: &[Option<f32>],
    sorted: &[f32],
    bins: usize,
    has_missing: bool,
) -> Groups {
    let n = sorted.len();
    let mut cuts: Vec<f32> = Vec::with_capacity(bins);
    for q in 1..bins {
        let mut v = sorted[q * n / bins];
        if v == sorted[0] {
            // A cut at the lowest value would leave the first bin empty: cut above it.
            match sorted.iter().find(|&&x| x > v) {
                Some(&x) => v = x,
                None => continue,
            }
        }
        if cuts.last().is_none_or(|&last| v > last) {
            cuts.push(v);
        }
    }
    let show = |v: f32| format!("{v}");
    let (lo, hi) = (sorted[0], sorted[n - 1]);
    let mut labels = Vec::with_capacity(cuts.len() + 2);
    for b in 0..=cuts.len() {
        let from = if b == 0 { lo } else { cuts[b - 1] };
        labels.push(if b == cuts.len() {
            format!("[{}, {}]", show(from), show(hi))
        } else {
            format!("[{}, {})", show(from), show(cuts[b]))
        });
    }
    let missing = labels.len();
    if has_missing {
        labels.push(MISSING_GROUP.to_string());
    }
    let of_row = numbers
        .iter()
        .map(|v| match v {
            Some(v) => cuts.partition_point(|&c| c <= *v),
            None => missing,
        })
        .collect();
    Groups {
        grouping: Grouping::QuantileBins,
        labels,
        of_row,
    }
}

/// One group's figures.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupFairness {
    /// The group's label ([`Groups::labels`]).
    pub group: String,
    /// Rows in the group.
    pub rows: usize,
    /// Rows that defaulted.
    pub defaults: usize,
    /// Observed default (positive) rate.
    pub default_rate: f64,
    /// Mean predicted probability of default: beside `default_rate`, the group's
    /// calibration in the large.
    pub mean_predicted: f64,
    /// Rows approved: predicted probability below the threshold.
    pub approved: usize,
    /// Share of the group approved.
    pub approval_rate: f64,
    /// Approval rate over the most favoured group's (NaN when no group has approvals).
    pub adverse_impact_ratio: f64,
    /// Whether the ratio is below [`FOUR_FIFTHS`].
    pub flagged: bool,
    /// Whether this is the most favoured group (the ratios' reference).
    pub most_favoured: bool,
    /// AUC within the group (NaN when it has one class only).
    pub auc: f64,
    /// Calibration by quintile of the group's scores.
    pub calibration: Vec<CalibrationBin>,
}

/// The fairness check of one protected column.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fairness {
    /// The protected column.
    pub column: String,
    /// How its cells became groups.
    pub grouping: Grouping,
    /// Probabilities at or above it are predicted defaults (declined).
    pub threshold: f32,
    /// The ratio below which a group is flagged ([`FOUR_FIFTHS`]).
    pub flag_below: f64,
    /// The reference group of the ratios (`None` when no group has approvals).
    pub most_favoured: Option<String>,
    /// Groups flagged by the four-fifths rule.
    pub flagged: Vec<String>,
    /// Per group, in [`Groups::labels`] order.
    pub groups: Vec<GroupFairness>,
}

/// The fairness figures of `probs` against 0/1 `labels` (a label above 0.5 is a default)
/// for the rows' `groups`, approving a row when its probability is below `threshold`.
/// Rows beyond the shortest of the three inputs are ignored.
pub fn fairness(
    column: &str,
    groups: &Groups,
    probs: &[f32],
    labels: &[f32],
    threshold: f32,
) -> Fairness {
    let k = groups.labels.len();
    let mut members: Vec<(Vec<f32>, Vec<f32>)> = vec![(Vec::new(), Vec::new()); k];
    for ((&g, &p), &y) in groups.of_row.iter().zip(probs).zip(labels) {
        if let Some(m) = members.get_mut(g) {
            m.0.push(p);
            m.1.push(y);
        }
    }
    let mut out: Vec<GroupFairness> = groups
        .labels
        .iter()
        .zip(&members)
        .map(|(label, (p, y))| {
            let rows = p.len();
            let defaults = y.iter().filter(|&&y| y > 0.5).count();
            let approved = p.iter().filter(|&&p| p < threshold).count();
            let share = |c: usize| {
                if rows == 0 {
                    f64::NAN
                } else {
                    c as f64 / rows as f64
                }
            };
            GroupFairness {
                group: label.clone(),
                rows,
                defaults,
                default_rate: share(defaults),
                mean_predicted: p.iter().map(|&p| p as f64).sum::<f64>() / rows as f64,
                approved,
                approval_rate: share(approved),
                adverse_impact_ratio: f64::NAN,
                flagged: false,
                most_favoured: false,
                auc: auc(p, y),
                calibration: calibration(p, y, GROUP_CALIBRATION_BINS),
            }
        })
        .collect();
    // The most favoured group: highest approval rate, then most rows, then first listed.
    let best = (0..k)
        .filter(|&g| out[g].rows > 0 && out[g].approval_rate > 0.0)
        .max_by(|&a, &b| {
            out[a]
                .approval_rate
                .total_cmp(&out[b].approval_rate)
                .then(out[a].rows.cmp(&out[b].rows))
                .then(b.cmp(&a))
        });
    if let Some(best) = best {
        let reference = out[best].approval_rate;
        for g in out.iter_mut() {
            g.adverse_impact_ratio = g.approval_rate / reference;
            g.flagged = g.adverse_impact_ratio < FOUR_FIFTHS;
        }
        out[best].most_favoured = true;
    }
    Fairness {
        column: column.to_string(),
        grouping: groups.grouping,
        threshold,
        flag_below: FOUR_FIFTHS,
        most_favoured: best.map(|b| out[b].group.clone()),
        flagged: out
            .iter()
            .filter(|g| g.flagged)
            .map(|g| g.group.clone())
            .collect(),
        groups: out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(v: &[&str]) -> Vec<Option<String>> {
        v.iter()
            .map(|s| (!s.is_empty()).then(|| s.to_string()))
            .collect()
    }

    /// Three groups worked by hand at threshold 0.5:
    ///
    /// | group | probabilities             | labels    | approved | approval | AIR  |
    /// |-------|---------------------------|-----------|----------|----------|------|
    /// | A     | 0.1 0.5 0.6 0.7           | 0 0 1 1   | 1        | 0.25     | 0.25 |
    /// | B     | 0.05 0.2 0.3 0.4 0.9      | 0 1 0 0 1 | 4        | 0.8      | 0.8  |
    /// | C     | 0.1 0.2 0.3 0.4           | 0 0 0 0   | 4        | 1.0      | 1.0  |
    ///
    /// C is the most favoured; A is flagged; B sits on the line (0.8 is not below 0.8).
    /// B's AUC: of its 2 × 3 (default, non-default) pairs, 0.2 outranks 0.05 and 0.9
    /// outranks all three: 4/6. C has one class, so no AUC. A's 0.5 is at the threshold,
    /// so declined.
    #[test]
    fn hand_computed_table() {
        let groups = cells(&[
            "A", "A", "A", "A", "B", "B", "B", "B", "B", "C", "C", "C", "C",
        ]);
        let probs = [
            0.1, 0.5, 0.6, 0.7, 0.05, 0.2, 0.3, 0.4, 0.9, 0.1, 0.2, 0.3, 0.4,
        ];
        let labels = [0., 0., 1., 1., 0., 1., 0., 0., 1., 0., 0., 0., 0.];
        let g = group_cells(&groups, 5);
        assert_eq!(g.grouping, Grouping::Values);
        assert_eq!(g.labels, ["A", "B", "C"]);
        let f = fairness("G", &g, &probs, &labels, 0.5);
        let [a, b, c] = [&f.groups[0], &f.groups[1], &f.groups[2]];
        assert_eq!((a.rows, a.approved, a.defaults), (4, 1, 2));
        assert_eq!((b.rows, b.approved, b.defaults), (5, 4, 2));
        assert_eq!((c.rows, c.approved, c.defaults), (4, 4, 0));
        assert_eq!(a.approval_rate, 0.25);
        assert_eq!(b.approval_rate, 0.8);
        assert_eq!(c.approval_rate, 1.0);
        assert_eq!(a.adverse_impact_ratio, 0.25);
        assert_eq!(b.adverse_impact_ratio, 0.8);
        assert_eq!(c.adverse_impact_ratio, 1.0);
        assert!(a.flagged && !b.flagged && !c.flagged);
        assert!(c.most_favoured && !a.most_favoured && !b.most_favoured);
        assert_eq!(f.most_favoured.as_deref(), Some("C"));
        assert_eq!(f.flagged, ["A"]);
        assert_eq!(a.auc, 1.0);
        assert!((b.auc - 4.0 / 6.0).abs() < 1e-12);
        assert!(c.auc.is_nan());
        assert!((a.mean_predicted - 0.475).abs() < 1e-7);
        assert_eq!(a.default_rate, 0.5);
        assert_eq!(c.default_rate, 0.0);
        assert!(!b.calibration.is_empty());
    }

    #[test]
    fn ties_go_to_the_larger_group_and_no_approvals_flag_nothing() {
        let g = group_cells(&cells(&["x", "y", "y"]), 5);
        let f = fairness("G", &g, &[0.1, 0.2, 0.3], &[0., 1., 0.], 0.5);
        assert_eq!(f.most_favoured.as_deref(), Some("y"));
        assert!(f.groups[1].most_favoured && !f.groups[0].most_favoured);
        let f = fairness("G", &g, &[0.6, 0.7, 0.8], &[0., 1., 0.], 0.5);
        assert_eq!(f.most_favoured, None);
        assert!(f.flagged.is_empty());
        assert!(f.groups.iter().all(|g| g.adverse_impact_ratio.is_nan()));
    }

    #[test]
    fn missing_cells_form_their_own_group_and_numbers_key_as_numbers() {
        let g = group_cells(&cells(&["2", "1", "", "2.0", "10", "NA"]), 5);
        // "NA" is not missing here: the caller decides what is missing (None).
        assert_eq!(g.grouping, Grouping::Values);
        assert_eq!(g.labels, ["1", "10", "2", "NA", MISSING_GROUP]);
        let g = group_cells(&cells(&["2", "1", "", "2.0", "10"]), 5);
        assert_eq!(g.labels, ["1", "2", "10", MISSING_GROUP]);
        assert_eq!(g.of_row, [1, 0, 3, 1, 2]);
    }

    #[test]
    fn many_numbers_become_quantile_bins() {
        // 1..=10 and a missing cell, in 4 bins: cuts at the values of rank 10/4, 20/4
        // and 30/4 (0-based): 3, 6, 8.
        let mut v: Vec<String> = (1..=10).map(|i| i.to_string()).collect();
        v.push(String::new());
        let refs: Vec<&str> = v.iter().map(String::as_str).collect();
        let g = group_cells(&cells(&refs), 4);
        assert_eq!(g.grouping, Grouping::QuantileBins);
        assert_eq!(
            g.labels,
            ["[1, 3)", "[3, 6)", "[6, 8)", "[8, 10]", MISSING_GROUP]
        );
        assert_eq!(g.of_row, [0, 0, 1, 1, 1, 2, 2, 3, 3, 3, 4]);
        // A value repeated past a quantile never splits: no empty bins.
        let heavy = cells(&["1", "1", "1", "1", "1", "1", "1", "2", "3", "4"]);
        let g = group_cells(&heavy, 3);
        assert_eq!(g.labels, ["[1, 2)", "[2, 4]"]);
        // Few distinct numbers stay values.
        assert_eq!(group_cells(&cells(&["1", "2", "1"]), 4).labels, ["1", "2"]);
    }
}
