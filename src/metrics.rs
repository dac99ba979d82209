//! Classification metrics for scores/probabilities against 0/1 labels (a label > 0.5 is a
//! positive). AUC and KS are exact in the presence of ties and O(n log n).
//!
//! Bad input never panics: mismatched lengths, empty input or NaN scores give NaN.

use serde::Serialize;

/// Exact ROC AUC: probability that a random positive scores above a random negative, ties counting 1/2 (rank-sum / Mann–Whitney with average ranks). Returns NaN if one class is absent.
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let Some(groups) = tie_groups(scores, labels) else { return f64::NAN };
    let (n_pos, n_neg) = totals(&groups);
    if n_pos == 0.0 || n_neg == 0.0 {
        return f64::NAN;
    }
    // Ascending by score: each positive beats every negative below its group and ties
    // half of the negatives in it. Counts are integers (or halves) well below 2^53: exact.
    let mut neg_below = 0.0;
    let mut wins = 0.0;
    for &(pos, neg) in &groups {
        wins += pos * neg_below + 0.5 * pos * neg;
        neg_below += neg;
    }
    wins / (n_pos * n_neg)
}

/// Kolmogorov–Smirnov: max over thresholds of |TPR - FPR|, evaluating only between distinct score values (tied scores move together).
pub fn ks(scores: &[f32], labels: &[f32]) -> f64 {
    let Some(groups) = tie_groups(scores, labels) else { return f64::NAN };
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

#[derive(Serialize, Clone, Debug)]
pub struct Summary {
    pub auc: f64,
    pub ks: f64,
    /// 2 * auc - 1.
    pub gini: f64,
    pub log_loss: f64,
}

pub fn summary(probs: &[f32], labels: &[f32]) -> Summary {
    let auc = auc(probs, labels);
    Summary { auc, ks: ks(probs, labels), gini: 2.0 * auc - 1.0, log_loss: log_loss(probs, labels) }
}

/// (positives, negatives) per distinct score, in ascending score order; None for
/// mismatched lengths, empty input or a NaN score.
fn tie_groups(scores: &[f32], labels: &[f32]) -> Option<Vec<(f64, f64)>> {
    if scores.len() != labels.len() || scores.is_empty() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let mut pairs: Vec<(f32, bool)> =
        scores.iter().zip(labels).map(|(&s, &y)| (s, y > 0.5)).collect();
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
    groups.iter().fold((0.0, 0.0), |(p, n), &(gp, gn)| (p + gp, n + gn))
}

fn mean_of(probs: &[f32], labels: &[f32], f: impl Fn(f64, f64) -> f64) -> f64 {
    if probs.len() != labels.len() || probs.is_empty() {
        return f64::NAN;
    }
    let sum: f64 = probs.iter().zip(labels).map(|(&p, &y)| f(p as f64, y as f64)).sum();
    sum / probs.len() as f64
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
        assert!(close(auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]), 0.75));
        assert!(close(auc(&[0.5; 6], &[0.0, 1.0, 0.0, 1.0, 1.0, 0.0]), 0.5));
        assert!(close(auc(&[0.1, 0.2, 0.3], &[0.0, 0.0, 1.0]), 1.0));
        assert!(close(auc(&[0.3, 0.2, 0.1], &[0.0, 0.0, 1.0]), 0.0));
        // One positive/negative pair tied at 0.5 (counts 1/2), the other 3 pairs won: 3.5 / 4.
        assert!(close(auc(&[0.2, 0.5, 0.5, 0.9], &[0.0, 0.0, 1.0, 1.0]), 0.875));
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
                    wins += if s[i] > s[j] { 1.0 } else if s[i] == s[j] { 0.5 } else { 0.0 };
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
            let tp = s.iter().zip(y).filter(|(&v, &l)| v >= t && l == 1.0).count() as f64;
            let fp = s.iter().zip(y).filter(|(&v, &l)| v >= t && l == 0.0).count() as f64;
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
            let y: Vec<f32> = (0..n).map(|_| if rng.uniform() < p_pos { 1.0 } else { 0.0 }).collect();
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
}
