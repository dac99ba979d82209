//! Reason codes by integrated gradients: for applicant `x` and the baseline `b` (the
//! training rows' mean), feature `f` gets
//!
//! ```text
//! attr_f = (x_f - b_f) · ∫₀¹ ∂p/∂x_f (b + α (x - b)) dα
//! ```
//!
//! where `p` is the model's probability of default. The attributions of a row add up to
//! `p(x) - p(b)` (completeness), so each says how much of the gap between this applicant
//! and an average one a feature explains. The integral is the midpoint rule over `steps`
//! points. The gradients come from the engine itself: a graph whose input is the
//! matrix of interpolation points, output `sum(sigmoid(logits))` (so the gradient of row
//! `i` is that row's own `∂p/∂x`), and `graph::backward` w.r.t. that input, run on the
//! chosen executor.
//!
//! Attributions of one-hot, missing-indicator, piecewise-linear bin and sequence features
//! are summed back to the raw CSV column they came from ([`by_source`] with
//! [`SavedModel::feature_sources`]), since reasons are given in the applicant's terms;
//! [`crate::reasons`] turns those columns into reason codes and texts.

use crate::engine::exec::Executor;
use crate::engine::graph::{backward, Graph, NodeId};
use crate::engine::plan::{compile, PlanRequest};
use crate::error::{Error, Result, Setting};
use crate::model_io::SavedModel;
use serde::Serialize;

const INPUT: &str = "ig_points";

/// Runs integrated gradients for a few rows at a time.
pub struct Explainer<'e> {
    exec: &'e mut dyn Executor,
    plan: usize,
    grad: NodeId,
    probs: NodeId,
    rows: usize,
    steps: usize,
    features: usize,
    baseline: Vec<f32>,
    baseline_score: f32,
    points: Vec<f32>,
}

/// Scores and attributions of a set of rows.
pub struct Explained {
    /// Probability of default of each row.
    pub scores: Vec<f32>,
    /// `[rows, F]`, model input columns.
    pub attributions: Vec<f32>,
}

impl<'e> Explainer<'e> {
    /// Builds the gradient plan for `rows` applicants per run, `steps` points each (plus
    /// the applicant itself, for its score), loads it and scores the baseline.
    pub fn new(
        exec: &'e mut dyn Executor,
        model: &SavedModel,
        rows: usize,
        steps: usize,
    ) -> Result<Self> {
        if rows == 0 {
            return Err(Error::invalid(Setting::BatchSize, "must be at least 1"));
        }
        if steps == 0 {
            return Err(Error::invalid(Setting::ExplainSteps, "must be at least 1"));
        }
        let features = model.n_inputs();
        let mut g = Graph::new();
        let x = g.input(INPUT, &[rows * (steps + 1), features])?;
        let probs = model.model.build_probability(&mut g, x)?;
        // Rows do not interact in a model's forward pass, so d(sum of p)/d(row i) is row
        // i's own gradient.
        let total = g.reduce_to(probs, &[1], 1.0)?;
        let grads = backward(&mut g, total, &[x])?;
        let grad = grads.of(x).ok_or_else(|| {
            Error::Unsupported("the model's output does not depend on its input".into())
        })?;
        let plan = compile(
            &g,
            &PlanRequest {
                keep: vec![grad, probs],
                ..Default::default()
            },
        )?;
        let plan = exec.load(plan)?;
        exec.write_params(&model.params)?;
        let mut e = Explainer {
            exec,
            plan,
            grad,
            probs,
            rows,
            steps,
            features,
            baseline: model.baseline.clone(),
            baseline_score: f32::NAN,
            points: Vec::new(),
        };
        let baseline = e.baseline.clone();
        e.baseline_score = e.explain(&baseline)?.scores[0];
        Ok(e)
    }

    /// Applicants per run.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// The probability of default of the baseline row.
    pub fn baseline_score(&self) -> f32 {
        self.baseline_score
    }

    /// Scores and attributions for row-major `x` in the model's column order, any number
    /// of rows.
    pub fn explain(&mut self, x: &[f32]) -> Result<Explained> {
        let f = self.features;
        if f == 0 || !x.len().is_multiple_of(f) {
            return Err(Error::NotWholeRows {
                what: "features",
                values: x.len(),
                width: f,
            });
        }
        let m = self.steps;
        let per_row = m + 1;
        let mut out = Explained {
            scores: Vec::with_capacity(x.len() / f),
            attributions: Vec::with_capacity(x.len()),
        };
        for chunk in x.chunks(self.rows * f) {
            let n = chunk.len() / f;
            // Per row: points b + α_k (x - b) with α_k = (k + 1/2) / m, then x itself.
            // Rows past `n` stay at the baseline (their results are not used).
            self.points.clear();
            self.points.reserve(self.rows * per_row * f);
            for r in 0..self.rows {
                for k in 0..per_row {
                    let alpha = if k == m {
                        1.0
                    } else {
                        (k as f32 + 0.5) / m as f32
                    };
                    for j in 0..f {
                        let b = self.baseline[j];
                        let v = if r >= n {
                            b
                        } else if k == m {
                            chunk[r * f + j]
                        } else {
                            b + alpha * (chunk[r * f + j] - b)
                        };
                        self.points.push(v);
                    }
                }
            }
            self.exec.write(INPUT, &self.points)?;
            self.exec.run(self.plan, 1)?;
            let grad = self.exec.read_node(self.plan, self.grad)?;
            let probs = self.exec.read_node(self.plan, self.probs)?;
            for r in 0..n {
                out.scores.push(probs[r * per_row + m]);
                for j in 0..f {
                    // Mean gradient along the path, summed in f64 in a fixed order.
                    let mean: f64 = (0..m)
                        .map(|k| grad[(r * per_row + k) * f + j] as f64)
                        .sum::<f64>()
                        / m as f64;
                    out.attributions
                        .push(((chunk[r * f + j] - self.baseline[j]) as f64 * mean) as f32);
                }
            }
        }
        Ok(out)
    }
}

/// Sums model-column attributions `[rows, F]` into raw columns (`sources[j]` is column
/// j's raw column, `n_sources` of them): `[rows, n_sources]`.
pub fn by_source(attr: &[f32], sources: &[usize], n_sources: usize) -> Vec<f64> {
    let f = sources.len().max(1);
    let mut out = Vec::with_capacity(attr.len() / f * n_sources);
    for row in attr.chunks_exact(f) {
        let mut acc = vec![0.0f64; n_sources];
        for (&a, &s) in row.iter().zip(sources) {
            acc[s] += a as f64;
        }
        out.extend(acc);
    }
    out
}

/// One reason: a raw column and how much it raised the probability of default over the
/// baseline's.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Reason {
    /// The raw column's name.
    pub column: String,
    /// Its attribution, in probability.
    pub contribution: f64,
}

/// The `top` columns that pushed a row's score up the most (positive contributions only,
/// largest first; ties keep column order).
pub fn top_reasons(row: &[f64], names: &[String], top: usize) -> Vec<Reason> {
    let mut idx: Vec<usize> = (0..row.len()).filter(|&i| row[i] > 0.0).collect();
    idx.sort_by(|&a, &b| row[b].total_cmp(&row[a]).then(a.cmp(&b)));
    idx.into_iter()
        .take(top)
        .map(|i| Reason {
            column: names[i].clone(),
            contribution: row[i],
        })
        .collect()
}

/// Importance of each raw column over many rows.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Importance {
    /// The raw column's name.
    pub column: String,
    /// Mean |attribution|: how much the column moves scores either way.
    pub mean_abs: f64,
    /// Mean attribution: its average push toward (+) or away from (−) default.
    pub mean: f64,
    /// Rows where it was among the top reasons.
    pub top_count: usize,
}

/// Running sums for [`Importance`], fed a batch of rows at a time.
#[derive(Clone, Debug)]
pub struct ImportanceSum {
    names: Vec<String>,
    abs: Vec<f64>,
    sum: Vec<f64>,
    top: Vec<usize>,
    rows: usize,
}

impl ImportanceSum {
    /// Empty sums for the raw columns `names`.
    pub fn new(names: Vec<String>) -> Self {
        let n = names.len();
        ImportanceSum {
            names,
            abs: vec![0.0; n],
            sum: vec![0.0; n],
            top: vec![0; n],
            rows: 0,
        }
    }

    /// Adds one row of raw-column attributions and the columns of its top reasons (each
    /// [`Reason::column`], or every column of a coded reason).
    pub fn add<'a>(&mut self, row: &[f64], top_columns: impl IntoIterator<Item = &'a str>) {
        for (i, &a) in row.iter().enumerate() {
            self.abs[i] += a.abs();
            self.sum[i] += a;
        }
        for column in top_columns {
            if let Some(i) = self.names.iter().position(|n| n == column) {
                self.top[i] += 1;
            }
        }
        self.rows += 1;
    }

    /// Rows added so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Columns by falling mean |attribution|.
    pub fn finish(&self) -> Vec<Importance> {
        let n = self.rows.max(1) as f64;
        let mut out: Vec<Importance> = (0..self.names.len())
            .map(|i| Importance {
                column: self.names[i].clone(),
                mean_abs: self.abs[i] / n,
                mean: self.sum[i] / n,
                top_count: self.top[i],
            })
            .collect();
        out.sort_by(|a, b| b.mean_abs.total_cmp(&a.mean_abs));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn by_source_sums_columns() {
        // 2 rows, 4 features from sources [0, 1, 1, 0].
        let attr = [1.0, 2.0, 3.0, 4.0, -1.0, 0.5, 0.25, 0.0];
        assert_eq!(by_source(&attr, &[0, 1, 1, 0], 2), [5.0, 5.0, -1.0, 0.75]);
    }

    #[test]
    fn top_reasons_are_positive_and_sorted() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let r = top_reasons(&[0.1, -0.5, 0.3, 0.1], &names, 3);
        let cols: Vec<&str> = r.iter().map(|r| r.column.as_str()).collect();
        assert_eq!(cols, ["c", "a", "d"]);
        assert!(top_reasons(&[-1.0, 0.0, -2.0, -0.1], &names, 3).is_empty());
    }

    #[test]
    fn importance_means() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let mut s = ImportanceSum::new(names.clone());
        for row in [[1.0, -2.0], [-1.0, 4.0]] {
            let top = top_reasons(&row, &names, 1);
            s.add(&row, top.iter().map(|r| r.column.as_str()));
        }
        let imp = s.finish();
        assert_eq!(
            imp[0],
            Importance {
                column: "b".into(),
                mean_abs: 3.0,
                mean: 1.0,
                top_count: 1
            }
        );
        assert_eq!(
            imp[1],
            Importance {
                column: "a".into(),
                mean_abs: 1.0,
                mean: 0.0,
                top_count: 1
            }
        );
    }
}
