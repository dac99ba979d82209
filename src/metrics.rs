//! Classification metrics for scores/probabilities against 0/1 labels (a label > 0.5 is a
//! positive). AUC and KS are exact in the presence of ties and O(n log n).
//!
//! Bad input never panics: mismatched lengths, empty input or NaN scores give NaN.

use serde::{Deserialize, Serialize};

/// Exact ROC AUC: probability that a random positive scores above a random negative, ties counting 1/2 (rank-sum / Mann–Whitney with average ranks). Returns NaN if one class is absent.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let Some(groups) = tie_groups(scores, labels) else {
        return f64::NAN;
    };
    auc_of_groups(&groups)
}

/// Kolmogorov–Smirnov: max over thresholds of |TPR - FPR|, evaluating only between distinct score values (tied scores move together).
pub fn ks(scores: &[f32], labels: &[f32]) -> f64 {
    let Some(groups) = tie_groups(scores, labels) else {
        return f64::NAN;
    };
    let (n_pos, n_neg) = totals(&groups);
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    // A threshold between two distinct scores puts whole tie groups on one side; sweeping
    // row by row instead would split a group and could report a gap no threshold gives.
    let (mut pos_above, mut neg_above, mut best) = (0.0, 0.0, 0.0f64);
    for &(pos, neg) in groups.iter().rev() {
        pos_above += pos;
        neg_above += neg;
        best = best.max((pos_above / n_pos - neg_above / n_neg).abs());
    }
    best
}

/// Mean binary log loss on probabilities, clamped to [1e-15, 1-1e-15].
pub fn log_loss(probs: &[f32], labels: &[f32]) -> f64 {
    mean_of(probs, labels, |p, y| {
        let p = p.clamp(1e-15, 1.0 - 1e-15);
        -(y * p.ln() + (1.0 - y) * (1.0 - p).ln())
    })
}

/// Mean squared difference between probability and label.
pub fn brier(probs: &[f32], labels: &[f32]) -> f64 {
    mean_of(probs, labels, |p, y| (p - y) * (p - y))
}

/// The metrics reported after every epoch.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Summary {
    /// Area under the ROC curve.
    #[serde(deserialize_with = "f64_or_nan")]
    pub auc: f64,
    /// Kolmogorov-Smirnov statistic: the largest gap between the classes' score CDFs.
    #[serde(deserialize_with = "f64_or_nan")]
    pub ks: f64,
    /// 2 * auc - 1.
    #[serde(deserialize_with = "f64_or_nan")]
    pub gini: f64,
    /// Mean binary cross-entropy of the probabilities.
    #[serde(deserialize_with = "f64_or_nan")]
    pub log_loss: f64,
}

/// The [`Summary`] of probabilities `probs` against 0/1 `labels`.
pub fn summary(probs: &[f32], labels: &[f32]) -> Summary {
    let auc = auc(probs, labels);
    Summary {
        auc,
        ks: ks(probs, labels),
        gini: 2.0 * auc - 1.0,
        log_loss: log_loss(probs, labels),
    }
}

/// (positives, negatives) per distinct score, in ascending score order; None for
/// mismatched lengths, empty input or a NaN score.
fn tie_groups(scores: &[f32], labels: &[f32]) -> Option<Vec<(f64, f64)>> {
    if scores.len() != labels.len() || scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &y)| (s, y > 0.5))
        .collect();
    // No NaNs, so partial_cmp is total; it also treats -0.0 and 0.0 as the tie they are.
    pairs.sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut groups: Vec<(f64, f64)> = Vec::new();
    let mut prev = None;
    for (s, positive) in pairs {
        if prev != Some(s) {
            groups.push((0.0, 0.0));
            prev = Some(s);
        }
        let g = groups.last_mut()?;
        if positive {
            g.0 += 1.0;
        } else {
            g.1 += 1.0;
        }
    }
    Some(groups)
}

fn totals(groups: &[(f64, f64)]) -> (f64, f64) {
    groups
        .iter()
        .fold((0.0, 0.0), |(p, n), &(gp, gn)| (p + gp, n + gn))
}

fn mean_of(probs: &[f32], labels: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    if probs.len() != labels.len() || probs.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = probs
        .iter()
        .zip(labels)
        .map(|(&p, &y)| f(p as f64, y as f64))
        .sum();
    sum / probs.len() as f64
}

/// Reads a number that JSON may hold as `null` (serde_json writes NaN as null), so a
/// metric that was undefined (one class only) survives a round trip as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Counts of a yes/no decision "score >= threshold means default".
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Confusion {
    /// Defaults predicted as defaults.
    pub true_positives: u64,
    /// Non-defaults predicted as defaults.
    pub false_positives: u64,
    /// Non-defaults predicted as non-defaults.
    pub true_negatives: u64,
    /// Defaults predicted as non-defaults.
    pub false_negatives: u64,
}

impl Confusion {
    /// The counts for the decision "probability >= `threshold`".
    pub fn at(probs: &[f32], labels: &[f32], threshold: f32) -> Self {
        let mut c = Confusion::default();
        for (&p, &y) in probs.iter().zip(labels) {
            match (p >= threshold, y > 0.5) {
                (true, true) => c.true_positives += 1,
                (true, false) => c.false_positives += 1,
                (false, false) => c.true_negatives += 1,
                (false, true) => c.false_negatives += 1,
            }
        }
        c
    }

    fn ratio(num: u64, den: u64) -> f64 {
        if den == 0 {
            f64::NAN
        } else {
            num as f64 / den as f64
        }
    }

    /// Share of rows decided right (NaN with no rows).
    pub fn accuracy(&self) -> f64 {
        let all =
            self.true_positives + self.false_positives + self.true_negatives + self.false_negatives;
        Self::ratio(self.true_positives + self.true_negatives, all)
    }

    /// NaN when nothing is predicted positive.
    pub fn precision(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }

    /// NaN when there are no positives.
    pub fn recall(&self) -> f64 {
        Self::ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }

    /// Harmonic mean of precision and recall (`2TP / (2TP + FP + FN)`); NaN with no
    /// positives predicted or present.
    pub fn f1(&self) -> f64 {
        Self::ratio(
            2 * self.true_positives,
            2 * self.true_positives + self.false_positives + self.false_negatives,
        )
    }
}

/// The threshold `t` for which "score >= t" gives the largest TPR - FPR (the KS point):
/// one of the scores. None when a class is absent or the input is unusable.
pub fn max_ks_threshold(scores: &[f32], labels: &[f32]) -> Option<f32> {
    let groups = scored_groups(scores, labels)?;
    let (n_pos, n_neg) = groups
        .iter()
        .fold((0.0, 0.0), |(p, n), g| (p + g.1, n + g.2));
    if n_pos == 0.0 || n_neg == 0.0 {
        return None;
    }
    let (mut pos_above, mut neg_above) = (0.0, 0.0);
    let mut best = (f64::NEG_INFINITY, groups.last()?.0);
    for &(score, pos, neg) in groups.iter().rev() {
        pos_above += pos;
        neg_above += neg;
        let gap = pos_above / n_pos - neg_above / n_neg;
        if gap > best.0 {
            best = (gap, score);
        }
    }
    Some(best.1)
}

/// One point of the ROC curve or the KS curve: at `threshold`, the rates of positives and
/// negatives scored at or above it.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct RatePoint {
    /// The score cut.
    pub threshold: f32,
    /// True positive rate: share of the positives at or above it.
    pub tpr: f64,
    /// False positive rate: share of the negatives at or above it.
    pub fpr: f64,
}

/// The ROC curve from (0, 0) to (1, 1), one point per distinct score, thresholds falling.
/// Empty when a class is absent.
pub fn rate_curve(scores: &[f32], labels: &[f32]) -> Vec<RatePoint> {
    let Some(groups) = scored_groups(scores, labels) else {
        return Vec::new();
    };
    let (n_pos, n_neg) = groups
        .iter()
        .fold((0.0, 0.0), |(p, n), g| (p + g.1, n + g.2));
    if n_pos == 0.0 || n_neg == 0.0 {
        return Vec::new();
    }
    let mut out = vec![RatePoint {
        threshold: f32::INFINITY,
        tpr: 0.0,
        fpr: 0.0,
    }];
    let (mut pos_above, mut neg_above) = (0.0, 0.0);
    for &(score, pos, neg) in groups.iter().rev() {
        pos_above += pos;
        neg_above += neg;
        out.push(RatePoint {
            threshold: score,
            tpr: pos_above / n_pos,
            fpr: neg_above / n_neg,
        });
    }
    out
}

/// One score bin of a calibration table: rows sorted by score and cut into equal counts.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct CalibrationBin {
    /// 1 = the lowest scores.
    pub bin: usize,
    /// Rows in the bin.
    pub rows: usize,
    /// Lowest score in the bin.
    pub min_score: f32,
    /// Highest score in the bin.
    pub max_score: f32,
    /// Mean score of the bin: the default rate the model predicts for it.
    #[serde(deserialize_with = "f64_or_nan")]
    pub mean_score: f64,
    /// The share of the bin's rows that defaulted.
    #[serde(deserialize_with = "f64_or_nan")]
    pub default_rate: f64,
}

/// Calibration by score quantile: `bins` bins of (nearly) equal row counts, lowest scores
/// first; fewer bins when there are fewer rows. Empty for unusable input.
pub fn calibration(probs: &[f32], labels: &[f32], bins: usize) -> Vec<CalibrationBin> {
    if probs.len() != labels.len()
        || probs.is_empty()
        || bins == 0
        || probs.iter().any(|p| p.is_nan())
    {
        return Vec::new();
    }
    let mut order: Vec<usize> = (0..probs.len()).collect();
    order.sort_by(|&a, &b| probs[a].total_cmp(&probs[b]));
    let n = order.len();
    let bins = bins.min(n);
    (0..bins)
        .map(|k| {
            let rows = &order[k * n / bins..(k + 1) * n / bins];
            let sum: f64 = rows.iter().map(|&i| probs[i] as f64).sum();
            let defaults = rows.iter().filter(|&&i| labels[i] > 0.5).count();
            CalibrationBin {
                bin: k + 1,
                rows: rows.len(),
                min_score: probs[rows[0]],
                max_score: probs[rows[rows.len() - 1]],
                mean_score: sum / rows.len() as f64,
                default_rate: defaults as f64 / rows.len() as f64,
            }
        })
        .collect()
}

/// The fewest rows of each class an AUC interval is drawn from.
pub const MIN_CLASS_ROWS_FOR_INTERVAL: usize = 10;

/// A percentile bootstrap interval for the AUC: `resamples` draws of n rows with
/// replacement (seeded, so the interval is reproducible), AUC of each, the
/// `(1 - level) / 2` and `(1 + level) / 2` quantiles. Resamples that lose a class are
/// skipped. None when fewer than 10 resamples are usable, or when either class has
/// fewer than [`MIN_CLASS_ROWS_FOR_INTERVAL`] rows: resampling one default gives a
/// narrow interval around a meaningless AUC (0.28–0.34 was once printed from one).
///
/// The scores are sorted once; a resample only counts how often each tie group is drawn,
/// so each costs O(n) instead of a sort.
pub fn auc_bootstrap_interval(
    scores: &[f32],
    labels: &[f32],
    resamples: usize,
    level: f64,
    seed: u64,
) -> Option<(f64, f64)> {
    let positives = labels.iter().filter(|&&y| y > 0.5).count();
    let smaller_class = positives.min(labels.len() - positives);
    if scores.len() != labels.len()
        || scores.is_empty()
        || scores.iter().any(|s| s.is_nan())
        || !(level > 0.0 && level < 1.0)
        || smaller_class < MIN_CLASS_ROWS_FOR_INTERVAL
    {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Tie group of each row, groups in ascending score order.
    let mut group = vec![0usize; scores.len()];
    let mut groups = 0;
    for (k, &i) in order.iter().enumerate() {
        if k > 0 && scores[i] != scores[order[k - 1]] {
            groups += 1;
        }
        group[i] = groups;
    }
    let groups = groups + 1;
    let positive: Vec<bool> = labels.iter().map(|&y| y > 0.5).collect();
    let mut rng = crate::rng::Rng::new(seed ^ 0xB007);
    let mut aucs = Vec::with_capacity(resamples);
    let mut counts = vec![(0.0f64, 0.0f64); groups];
    for _ in 0..resamples {
        counts.iter_mut().for_each(|c| *c = (0.0, 0.0));
        for _ in 0..scores.len() {
            let i = rng.below(scores.len());
            let c = &mut counts[group[i]];
            if positive[i] {
                c.0 += 1.0;
            } else {
                c.1 += 1.0;
            }
        }
        let a = auc_of_groups(&counts);
        if !a.is_nan() {
            aucs.push(a);
        }
    }
    if aucs.len() < 10 {
        return None;
    }
    aucs.sort_by(f64::total_cmp);
    let q = |p: f64| aucs[((p * aucs.len() as f64).floor() as usize).min(aucs.len() - 1)];
    Some((q((1.0 - level) / 2.0), q((1.0 + level) / 2.0)))
}

/// Everything `riskgrad eval` reports for one set of scores.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct Evaluation {
    /// Rows scored.
    pub rows: usize,
    /// Rows labelled as defaults.
    pub positives: usize,
    /// Area under the ROC curve.
    #[serde(deserialize_with = "f64_or_nan")]
    pub auc: f64,
    /// Bootstrap 95 % interval of the AUC (absent when it could not be computed).
    pub auc_ci95: Option<(f64, f64)>,
    /// Resamples behind the interval.
    pub bootstrap_resamples: usize,
    /// Kolmogorov-Smirnov statistic.
    #[serde(deserialize_with = "f64_or_nan")]
    pub ks: f64,
    /// 2 * auc - 1.
    #[serde(deserialize_with = "f64_or_nan")]
    pub gini: f64,
    /// Mean binary cross-entropy.
    #[serde(deserialize_with = "f64_or_nan")]
    pub log_loss: f64,
    /// Mean squared error of the probabilities.
    #[serde(deserialize_with = "f64_or_nan")]
    pub brier: f64,
    /// "score >= threshold" counts as predicted default.
    pub threshold: f32,
    /// Whether the threshold is the max-KS one (no `--threshold` given).
    pub threshold_is_max_ks: bool,
    /// Share of rows decided right at the threshold.
    #[serde(deserialize_with = "f64_or_nan")]
    pub accuracy: f64,
    /// Share of the predicted defaults that defaulted.
    #[serde(deserialize_with = "f64_or_nan")]
    pub precision: f64,
    /// Share of the defaults predicted.
    #[serde(deserialize_with = "f64_or_nan")]
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    #[serde(deserialize_with = "f64_or_nan")]
    pub f1: f64,
    /// The counts at the threshold.
    pub confusion: Confusion,
    /// By score decile, lowest scores first.
    pub calibration: Vec<CalibrationBin>,
}

/// Computes an [`Evaluation`]. `threshold: None` takes the max-KS threshold (0.5 when it is
/// undefined); `seed` fixes the bootstrap.
pub fn evaluate(
    probs: &[f32],
    labels: &[f32],
    threshold: Option<f32>,
    resamples: usize,
    seed: u64,
) -> Evaluation {
    let (threshold, is_ks) = match threshold {
        Some(t) => (t, false),
        None => match max_ks_threshold(probs, labels) {
            Some(t) => (t, true),
            None => (0.5, false),
        },
    };
    let confusion = Confusion::at(probs, labels, threshold);
    let s = summary(probs, labels);
    Evaluation {
        rows: probs.len(),
        positives: labels.iter().filter(|&&y| y > 0.5).count(),
        auc: s.auc,
        auc_ci95: auc_bootstrap_interval(probs, labels, resamples, 0.95, seed),
        bootstrap_resamples: resamples,
        ks: s.ks,
        gini: s.gini,
        log_loss: s.log_loss,
        brier: brier(probs, labels),
        threshold,
        threshold_is_max_ks: is_ks,
        accuracy: confusion.accuracy(),
        precision: confusion.precision(),
        recall: confusion.recall(),
        f1: confusion.f1(),
        confusion,
        calibration: calibration(probs, labels, 10),
    }
}

/// AUC from (positives, negatives) per tie group in ascending score order: each positive
/// beats every negative below its group and ties half of the negatives in it. Counts are
/// integers (or halves) well below 2^53: exact.
fn auc_of_groups(groups: &[(f64, f64)]) -> f64 {
    let (n_pos, n_neg) = totals(groups);
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    let mut neg_below = 0.0;
    let mut wins = 0.0;
    for &(pos, neg) in groups {
        wins += pos * neg_below + 0.5 * pos * neg;
        neg_below += neg;
    }
    wins / (n_pos * n_neg)
}

/// Like `tie_groups`, with each group's score.
fn scored_groups(scores: &[f32], labels: &[f32]) -> Option<Vec<(f32, f64, f64)>> {
    if scores.len() != labels.len() || scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut pairs: Vec<(f32, bool)> = scores
        .iter()
        .zip(labels)
        .map(|(&s, &y)| (s, y > 0.5))
        .collect();
    pairs.sort_unstable_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    let mut groups: Vec<(f32, f64, f64)> = Vec::new();
    for (s, positive) in pairs {
        match groups.last_mut() {
            Some(g) if g.0 == s => {
                if positive {
                    g.1 += 1.0
                } else {
                    g.2 += 1.0
                }
            }
            _ => groups.push((s, positive as u8 as f64, (!positive) as u8 as f64)),
        }
    }
    Some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn auc_hand_cases() {
        assert!(close(
            auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]),
            0.75
        ));
        assert!(close(auc(&[0.5; 6], &[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]), 0.5));
        assert!(close(auc(&[0.1, 0.2, 0.3], &[0.0, 0.0, 1.0]), 1.0));
        assert!(close(auc(&[0.3, 0.2, 0.1], &[0.0, 0.0, 1.0]), 0.0));
        // One positive/negative pair tied at 0.5 (counts 1/2), the other 3 pairs won: 3.5 / 4.
        assert!(close(
            auc(&[0.2, 0.5, 0.5, 0.9], &[0.0, 0.0, 1.0, 1.0]),
            0.875
        ));
        // -0.0 and 0.0 are the same score: a tie.
        assert!(close(auc(&[-0.0, 0.0], &[1.0, 0.0]), 0.5));
    }

    #[test]
    fn ks_hand_cases() {
        // Distinct scores, descending 0.9(+), 0.7(-), 0.4(+), 0.1(-):
        // (TPR, FPR) = (1/2, 0), (1/2, 1/2), (1, 1/2), (1, 1) -> gaps 0.5, 0, 0.5, 0 -> 0.5.
        assert!(close(ks(&[0.9, 0.7, 0.4, 0.1], &[1.0, 0.0, 1.0, 0.0]), 0.5));
        assert!(close(ks(&[0.9, 0.8, 0.2, 0.1], &[1.0, 1.0, 0.0, 0.0]), 1.0));
        // A tie across classes at 0.5: thresholds give (TPR, FPR) = (1/2, 0), (1, 1/2), (1, 1)
        // -> KS 0.5. A per-row sweep taking the positive 0.5 first would see (1, 0) -> 1.0.
        assert!(close(ks(&[0.9, 0.5, 0.5, 0.1], &[1.0, 1.0, 0.0, 0.0]), 0.5));
        assert!(close(ks(&[0.9, 0.5, 0.5, 0.1], &[1.0, 0.0, 1.0, 0.0]), 0.5));
        // All tied: the only thresholds give (0,0) and (1,1).
        assert!(close(ks(&[0.3; 5], &[1.0, 0.0, 0.0, 1.0, 0.0]), 0.0));
        // |TPR - FPR| counts an inverted model too.
        assert!(close(ks(&[0.1, 0.2, 0.8, 0.9], &[1.0, 1.0, 0.0, 0.0]), 1.0));
    }

    #[test]
    fn bad_input_is_nan() {
        assert!(auc(&[0.1, 0.2], &[1.0, 1.0]).is_nan());
        assert!(ks(&[0.1, 0.2], &[0.0, 0.0]).is_nan());
        assert!(auc(&[], &[]).is_nan());
        assert!(auc(&[0.1], &[0.0, 1.0]).is_nan());
        assert!(auc(&[f32::NAN, 0.2], &[0.0, 1.0]).is_nan());
        assert!(log_loss(&[], &[]).is_nan());
        assert!(brier(&[0.5], &[]).is_nan());
    }

    #[test]
    fn log_loss_and_brier() {
        let p = [0.9, 0.2, 0.6, 0.5];
        let y = [1.0, 0.0, 0.0, 1.0];
        let expect_ll = -((0.9f64).ln() + (0.8f64).ln() + (0.4f64).ln() + (0.5f64).ln()) / 4.0;
        assert!((log_loss(&p, &y) - expect_ll).abs() < 1e-7);
        let expect_brier = (0.01 + 0.04 + 0.36 + 0.25) / 4.0;
        assert!((brier(&p, &y) - expect_brier).abs() < 1e-7);
        // Clamping: a confident wrong answer costs -ln(1e-15), not infinity.
        assert!((log_loss(&[0.0], &[1.0]) - 1e-15f64.ln().abs()).abs() < 1e-9);
        assert!(log_loss(&[1.0], &[1.0]) < 1e-14);
    }

    #[test]
    fn summary_fields() {
        let s = summary(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]);
        assert!(close(s.auc, 0.75));
        assert!(close(s.gini, 0.5));
        assert!(close(s.ks, 0.5));
        assert!(s.log_loss.is_finite());
    }

    /// O(n^2) references straight from the definitions.
    fn brute_auc(s: &[f32], y: &[f32]) -> f64 {
        let (mut wins, mut pairs) = (0.0f64, 0.0f64);
        for i in 0..s.len() {
            for j in 0..s.len() {
                if y[i] == 1.0 && y[j] == 0.0 {
                    pairs += 1.0;
                    wins += if s[i] > s[j] {
                        1.0
                    } else if s[i] == s[j] {
                        0.5
                    } else {
                        0.0
                    };
                }
            }
        }
        wins / pairs
    }

    fn brute_ks(s: &[f32], y: &[f32]) -> f64 {
        let n_pos = y.iter().filter(|&&v| v == 1.0).count() as f64;
        let n_neg = y.len() as f64 - n_pos;
        // Thresholds "score >= t" for every observed t, plus "nothing" (gap 0).
        let mut best = 0.0f64;
        for &t in s {
            let tp = s
                .iter()
                .zip(y)
                .filter(|(&v, &l)| v >= t && l == 1.0)
                .count() as f64;
            let fp = s
                .iter()
                .zip(y)
                .filter(|(&v, &l)| v >= t && l == 0.0)
                .count() as f64;
            best = best.max((tp / n_pos - fp / n_neg).abs());
        }
        best
    }

    #[test]
    fn matches_brute_force_with_many_ties() {
        let mut rng = Rng::new(2024);
        for n in 1..=257usize {
            // Few distinct levels, so most scores tie, some across classes.
            let levels = 1 + rng.below(8);
            let s: Vec<f32> = (0..n).map(|_| rng.below(levels) as f32 / 8.0).collect();
            let p_pos = rng.uniform();
            let y: Vec<f32> = (0..n)
                .map(|_| if rng.uniform() < p_pos { 1.0 } else { 0.0 })
                .collect();
            let has_both = y.contains(&1.0) && y.contains(&0.0);
            let (a, k) = (auc(&s, &y), ks(&s, &y));
            if !has_both {
                assert!(a.is_nan() && k.is_nan(), "n={n}");
                continue;
            }
            assert!((a - brute_auc(&s, &y)).abs() < 1e-12, "auc n={n}");
            assert!((k - brute_ks(&s, &y)).abs() < 1e-12, "ks n={n}");
        }
    }
    #[test]
    fn confusion_and_rates_by_hand() {
        // threshold 0.5: predicted yes = 0.9(+), 0.6(-), 0.5(+); no = 0.4(+), 0.1(-), 0.2(-)
        let p = [0.9, 0.6, 0.5, 0.4, 0.1, 0.2];
        let y = [1.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let c = Confusion::at(&p, &y, 0.5);
        assert_eq!(
            (
                c.true_positives,
                c.false_positives,
                c.true_negatives,
                c.false_negatives
            ),
            (2, 1, 2, 1)
        );
        assert!(close(c.accuracy(), 4.0 / 6.0));
        assert!(close(c.precision(), 2.0 / 3.0));
        assert!(close(c.recall(), 2.0 / 3.0));
        assert!(close(c.f1(), 2.0 / 3.0));
        // Nothing predicted positive: precision undefined.
        let none = Confusion::at(&p, &y, 2.0);
        assert!(none.precision().is_nan() && none.recall() == 0.0);
    }

    #[test]
    fn max_ks_threshold_reaches_the_ks() {
        let mut rng = Rng::new(99);
        for n in 2..120usize {
            let s: Vec<f32> = (0..n).map(|_| rng.below(12) as f32 / 12.0).collect();
            let y: Vec<f32> = (0..n).map(|i| ((i + rng.below(3)) % 2) as f32).collect();
            let Some(t) = max_ks_threshold(&s, &y) else {
                assert!(ks(&s, &y).is_nan());
                continue;
            };
            let c = Confusion::at(&s, &y, t);
            let gap = c.recall()
                - c.false_positives as f64 / (c.false_positives + c.true_negatives) as f64;
            // The signed maximum; the KS statistic is the absolute one, so it may be larger
            // only when the model is inverted.
            let best_signed = s
                .iter()
                .map(|&u| {
                    let c = Confusion::at(&s, &y, u);
                    c.recall()
                        - c.false_positives as f64 / (c.false_positives + c.true_negatives) as f64
                })
                .fold(f64::NEG_INFINITY, f64::max);
            assert!(close(gap, best_signed), "n={n}: {gap} vs {best_signed}");
            assert!(s.contains(&t));
        }
    }

    #[test]
    fn rate_curve_area_is_the_auc() {
        let mut rng = Rng::new(5);
        let s: Vec<f32> = (0..300).map(|_| rng.below(40) as f32 / 40.0).collect();
        let y: Vec<f32> = s
            .iter()
            .map(|&v| (rng.uniform() < v as f64) as u8 as f32)
            .collect();
        let curve = rate_curve(&s, &y);
        assert_eq!((curve[0].tpr, curve[0].fpr), (0.0, 0.0));
        let last = curve.last().unwrap();
        assert_eq!((last.tpr, last.fpr), (1.0, 1.0));
        let area: f64 = curve
            .windows(2)
            .map(|w| (w[1].fpr - w[0].fpr) * (w[1].tpr + w[0].tpr) / 2.0)
            .sum();
        assert!(close(area, auc(&s, &y)));
        assert!(rate_curve(&s, &vec![1.0; s.len()]).is_empty());
    }

    #[test]
    fn calibration_bins_by_hand() {
        // 10 rows, 5 bins of 2, sorted by score.
        let p = [0.9, 0.1, 0.8, 0.2, 0.7, 0.3, 0.6, 0.4, 0.5, 0.05];
        let y = [1.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0];
        let bins = calibration(&p, &y, 5);
        assert_eq!(bins.len(), 5);
        assert_eq!(
            (bins[0].min_score, bins[0].max_score, bins[0].rows),
            (0.05, 0.1, 2)
        );
        assert!((bins[0].mean_score - 0.075).abs() < 1e-7 && bins[0].default_rate == 0.0);
        assert!((bins[1].mean_score - 0.25).abs() < 1e-7 && bins[1].default_rate == 0.5);
        assert!((bins[4].mean_score - 0.85).abs() < 1e-7 && bins[4].default_rate == 1.0);
        assert_eq!(
            calibration(&p[..3], &y[..3], 10).len(),
            3,
            "no more bins than rows"
        );
        assert!(calibration(&[], &[], 10).is_empty());
    }

    #[test]
    fn bootstrap_interval_brackets_the_auc_and_is_seeded() {
        let mut rng = Rng::new(11);
        let s: Vec<f32> = (0..2000).map(|_| rng.uniform() as f32).collect();
        let y: Vec<f32> = s
            .iter()
            .map(|&v| (rng.uniform() < 0.2 + 0.5 * v as f64) as u8 as f32)
            .collect();
        let a = auc(&s, &y);
        let (lo, hi) = auc_bootstrap_interval(&s, &y, 500, 0.95, 1).unwrap();
        assert!(lo < a && a < hi, "{lo} < {a} < {hi}");
        // The standard error of an AUC near 0.65 on 2000 rows is about 0.013: the 95 %
        // interval is about 0.05 wide.
        assert!(hi - lo > 0.02 && hi - lo < 0.1, "width {}", hi - lo);
        assert_eq!(auc_bootstrap_interval(&s, &y, 500, 0.95, 1), Some((lo, hi)));
        assert_ne!(auc_bootstrap_interval(&s, &y, 500, 0.95, 2), Some((lo, hi)));
        // Perfect separation stays perfect in every resample.
        let n = MIN_CLASS_ROWS_FOR_INTERVAL;
        let scores: Vec<f32> = (0..2 * n).map(|i| i as f32).collect();
        let labels: Vec<f32> = (0..2 * n).map(|i| (i >= n) as u8 as f32).collect();
        assert_eq!(
            auc_bootstrap_interval(&scores, &labels, 200, 0.95, 0),
            Some((1.0, 1.0))
        );
        // With one default (or non-default) fewer than an interval is drawn from, none.
        assert_eq!(
            auc_bootstrap_interval(&scores[1..], &labels[1..], 200, 0.95, 0),
            None
        );
        assert_eq!(
            auc_bootstrap_interval(&scores[..2 * n - 1], &labels[..2 * n - 1], 200, 0.95, 0),
            None
        );
        assert!(auc_bootstrap_interval(&s, &y, 5, 0.95, 0).is_none());
    }

    #[test]
    fn evaluation_json_round_trip_keeps_nan() {
        let e = evaluate(&[0.2, 0.4], &[0.0, 0.0], None, 50, 0);
        assert!(e.auc.is_nan() && e.threshold == 0.5 && !e.threshold_is_max_ks);
        let back: Evaluation = serde_json::from_str(&serde_json::to_string(&e).unwrap()).unwrap();
        assert!(back.auc.is_nan() && back.precision.is_nan());
        assert_eq!(back.confusion, e.confusion);
    }
}
