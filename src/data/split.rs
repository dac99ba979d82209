//! Stratified train/validation split and stratified K-fold assignment.

use crate::rng::Rng;

/// Stratified split: returns `(train_rows, val_rows)` as sorted row indices.
///
/// Rows with `y > 0.5` are one class, all others the other. Each class's row list (in file
/// order) is shuffled with its own fresh `Rng::new(seed)`, so a class's split does not depend
/// on the size of the other class, and the first `round(val_fraction * class_count)` rows of
/// each class go to validation. `val_fraction` is clamped to [0, 1] (NaN counts as 0).
pub fn stratified_split(y: &[f32], val_fraction: f64, seed: u64) -> (Vec<u32>, Vec<u32>) {
    let frac = if val_fraction.is_nan() {
        0.0
    } else {
        val_fraction.clamp(0.0, 1.0)
    };
    let mut train = Vec::with_capacity(y.len());
    let mut val = Vec::new();
    for positive in [false, true] {
        let mut rows: Vec<u32> = (0..y.len() as u32)
            .filter(|&i| (y[i as usize] > 0.5) == positive)
            .collect();
        Rng::new(seed).shuffle(&mut rows);
        let n_val = ((frac * rows.len() as f64).round() as usize).min(rows.len());
        val.extend_from_slice(&rows[..n_val]);
        train.extend_from_slice(&rows[n_val..]);
    }
    train.sort_unstable();
    val.sort_unstable();
    (train, val)
}

/// When `labels` (the rows of a `side`, e.g. "training") lack a class, what is there in
/// words: "no training rows", "1 training row, a non-default", "2 training rows, none
/// of them a default"; `None` when both classes are there.
pub fn one_class_rows(labels: impl ExactSizeIterator<Item = f32>, side: &str) -> Option<String> {
    let n = labels.len();
    let positives = labels.filter(|&y| y > 0.5).count();
    match (n, positives) {
        (0, _) => Some(format!("no {side} rows")),
        (1, p) => Some(format!(
            "1 {side} row, {}",
            ["a non-default", "a default"][p]
        )),
        (n, 0) => Some(format!("{n} {side} rows, none of them a default")),
        (n, p) if p == n => Some(format!("{n} {side} rows, all of them defaults")),
        _ => None,
    }
}

/// Stratified K-fold assignment: returns each row's fold in `0..k`.
///
/// Each class's rows (in file order, `y > 0.5` positive) are shuffled with their own
/// fresh `Rng::new(seed)` and dealt out round-robin, the negatives continuing where the
/// positives stopped, so every fold gets `floor` or `ceil` of each class's share and
/// fold sizes differ by at most one row. Reproducible from `seed`; `k` is clamped to at
/// least 1.
pub fn stratified_folds(y: &[f32], k: usize, seed: u64) -> Vec<u32> {
    let k = k.max(1);
    let mut fold = vec![0u32; y.len()];
    let mut next = 0usize;
    for positive in [true, false] {
        let mut rows: Vec<u32> = (0..y.len() as u32)
            .filter(|&i| (y[i as usize] > 0.5) == positive)
            .collect();
        Rng::new(seed).shuffle(&mut rows);
        for r in rows {
            fold[r as usize] = (next % k) as u32;
            next += 1;
        }
    }
    fold
}

/// The rows of fold `f` and the rest, as `(train_rows, held_out_rows)`, both sorted.
pub fn fold_rows(folds: &[u32], f: u32) -> (Vec<u32>, Vec<u32>) {
    let (held, train): (Vec<u32>, Vec<u32>) =
        (0..folds.len() as u32).partition(|&i| folds[i as usize] == f);
    (train, held)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(n: usize, n_pos: usize) -> Vec<f32> {
        // Positives spread through the file, not in a block.
        (0..n)
            .map(|i| {
                if i * n_pos / n != (i + 1) * n_pos / n {
                    1.0
                } else {
                    0.0
                }
            })
            .collect()
    }

    #[test]
    fn proportions_disjoint_complete() {
        let y = labels(1000, 221);
        assert_eq!(y.iter().filter(|&&v| v == 1.0).count(), 221);
        let (train, val) = stratified_split(&y, 0.2, 7);
        // round(0.2 * 221) = 44 positives, round(0.2 * 779) = 156 negatives.
        let pos = |rows: &[u32]| rows.iter().filter(|&&i| y[i as usize] == 1.0).count();
        assert_eq!(pos(&val), 44);
        assert_eq!(val.len() - pos(&val), 156);
        assert_eq!(pos(&train), 221 - 44);
        assert_eq!(train.len() + val.len(), 1000);
        assert!(train.windows(2).all(|w| w[0] < w[1]));
        assert!(val.windows(2).all(|w| w[0] < w[1]));
        let mut all: Vec<u32> = train.iter().chain(&val).copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<u32>>());
    }

    #[test]
    fn deterministic_for_a_seed() {
        let y = labels(500, 60);
        assert_eq!(
            stratified_split(&y, 0.25, 42),
            stratified_split(&y, 0.25, 42)
        );
        assert_ne!(
            stratified_split(&y, 0.25, 42).1,
            stratified_split(&y, 0.25, 43).1
        );
    }

    #[test]
    fn rounding_and_edges() {
        // 3 positives * 0.5 = 1.5 rounds to 2; 5 negatives * 0.5 = 2.5 rounds to 3.
        let y = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 0.0];
        let (train, val) = stratified_split(&y, 0.5, 1);
        assert_eq!(val.len(), 5);
        assert_eq!(train.len(), 3);
        assert_eq!(stratified_split(&y, 0.0, 1).1.len(), 0);
        assert_eq!(stratified_split(&y, 1.0, 1).0.len(), 0);
        assert_eq!(stratified_split(&y, f64::NAN, 1).1.len(), 0);
        assert_eq!(stratified_split(&y, 7.0, 1).1.len(), 8);
        assert_eq!(stratified_split(&[], 0.2, 1), (vec![], vec![]));
    }

    #[test]
    fn folds_stratified_complete_reproducible() {
        for (n, n_pos, k) in [(1000, 221, 5), (997, 37, 10), (13, 4, 3), (5, 5, 2)] {
            let y = labels(n, n_pos);
            let folds = stratified_folds(&y, k, 11);
            assert_eq!(folds.len(), n);
            assert!(folds.iter().all(|&f| (f as usize) < k));
            let share = n_pos as f64 / n as f64;
            let mut covered = vec![0usize; n];
            for f in 0..k as u32 {
                let (train, held) = fold_rows(&folds, f);
                assert_eq!(train.len() + held.len(), n);
                for &r in &held {
                    covered[r as usize] += 1;
                }
                // Positives within one row of the fold's share of the overall rate.
                let pos = held.iter().filter(|&&r| y[r as usize] > 0.5).count() as f64;
                assert!(
                    (pos - share * held.len() as f64).abs() <= 1.0 + 1e-9,
                    "n {n} k {k} fold {f}: {pos} positives of {}",
                    held.len()
                );
                // Fold sizes within one row of n / k.
                assert!((held.len() as f64 - n as f64 / k as f64).abs() < 1.0);
            }
            assert!(
                covered.iter().all(|&c| c == 1),
                "every row in exactly one fold"
            );
            assert_eq!(folds, stratified_folds(&y, k, 11));
        }
        let y = labels(500, 60);
        assert_ne!(stratified_folds(&y, 5, 1), stratified_folds(&y, 5, 2));
        assert_eq!(stratified_folds(&y, 0, 1), vec![0; 500]);
        assert!(stratified_folds(&[], 5, 1).is_empty());
    }
}
