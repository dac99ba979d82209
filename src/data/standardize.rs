//! Per-feature standardisation, fitted on the training rows only so that validation data
//! does not leak into the scaling.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Standardizer {
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
}

impl Standardizer {
    /// Fit on the given rows only (f64 accumulation; std = population std; a constant column
    /// gets std 1). Row indices past the end of `x` are ignored; with no usable rows every
    /// column gets mean 0 and std 1.
    pub fn fit(x: &[f32], n_features: usize, rows: &[u32]) -> Self {
        let n = n_features;
        let rows_of = || {
            rows.iter().filter_map(move |&r| {
                let start = (r as usize).checked_mul(n)?;
                x.get(start..start.checked_add(n)?)
            })
        };
        let mut sum = vec![0f64; n];
        let mut count = 0usize;
        for row in rows_of() {
            for (s, &v) in sum.iter_mut().zip(row) {
                *s += v as f64;
            }
            count += 1;
        }
        if n == 0 || count == 0 {
            return Standardizer { mean: vec![0.0; n], std: vec![1.0; n] };
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / count as f64).collect();
        // Two passes: the sum of squared deviations is exact-ish, unlike E[x^2] - E[x]^2,
        // which cancels badly for large amounts such as BILL_AMT.
        let mut ss = vec![0f64; n];
        let mut constant = vec![true; n];
        let first = rows_of().next().unwrap_or(&[]);
        for row in rows_of() {
            for j in 0..n {
                let d = row[j] as f64 - mean[j];
                ss[j] += d * d;
                constant[j] &= row[j] == first[j];
            }
        }
        let std = ss
            .iter()
            .zip(&constant)
            .map(|(&s, &c)| {
                let sd = (s / count as f64).sqrt() as f32;
                // A constant column would divide by zero (or by rounding noise).
                if c || !sd.is_normal() { 1.0 } else { sd }
            })
            .collect();
        Standardizer { mean: mean.iter().map(|&m| m as f32).collect(), std }
    }

    /// `(x - mean) / std` in place, for all rows (`x` is row-major with `mean.len()` columns).
    pub fn apply(&self, x: &mut [f32]) {
        let n = self.mean.len();
        if n == 0 {
            return;
        }
        for row in x.chunks_exact_mut(n) {
            for ((v, &m), &s) in row.iter_mut().zip(&self.mean).zip(&self.std) {
                *v = ((*v as f64 - m as f64) / s as f64) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed() {
        // 3 features; rows 0, 1, 3 are the fit rows, row 2 is held out (and huge).
        let mut x = vec![
            1.0, 10.0, 5.0, //
            2.0, 20.0, 5.0, //
            1000.0, -1000.0, 7.0, //
            3.0, 60.0, 5.0,
        ];
        let s = Standardizer::fit(&x, 3, &[0, 1, 3]);
        // col 0: mean 2, var (1+0+1)/3 = 2/3.  col 1: mean 30, var (400+100+900)/3 = 1400/3.
        // col 2: constant 5 -> std 1.
        assert_eq!(s.mean, vec![2.0, 30.0, 5.0]);
        assert!((s.std[0] as f64 - (2.0f64 / 3.0).sqrt()).abs() < 1e-6);
        assert!((s.std[1] as f64 - (1400.0f64 / 3.0).sqrt()).abs() < 1e-4);
        assert_eq!(s.std[2], 1.0);
        s.apply(&mut x);
        let sd0 = (2.0f64 / 3.0).sqrt();
        assert!((x[0] as f64 - (-1.0 / sd0)).abs() < 1e-5);
        assert!((x[3] as f64).abs() < 1e-6);
        assert_eq!(x[5], 0.0);
        assert_eq!(x[8], 2.0); // held-out row, constant column: 7 - 5
        assert!((x[6] as f64 - 998.0 / sd0).abs() < 1e-2);
    }

    #[test]
    fn degenerate_inputs() {
        let s = Standardizer::fit(&[1.0, 2.0], 2, &[]);
        assert_eq!((s.mean, s.std), (vec![0.0, 0.0], vec![1.0, 1.0]));
        let s = Standardizer::fit(&[1.0, 2.0], 2, &[0, 5, u32::MAX]);
        assert_eq!((s.mean.clone(), s.std.clone()), (vec![1.0, 2.0], vec![1.0, 1.0]));
        let s = Standardizer::fit(&[], 0, &[0]);
        assert!(s.mean.is_empty());
        s.apply(&mut [1.0, 2.0]);
    }

    #[test]
    fn serde_roundtrip() {
        let s = Standardizer { mean: vec![1.5, -2.0], std: vec![0.25, 3.0] };
        let json = serde_json::to_string(&s).unwrap();
        let back: Standardizer = serde_json::from_str(&json).unwrap();
        assert_eq!((back.mean, back.std), (s.mean, s.std));
    }
}
