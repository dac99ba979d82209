//! A learned periodic embedding of numeric features, in front of an MLP
//! (`--numeric-encoding periodic`): Gorishniy, Rubachev and Babenko, "On Embeddings for
//! Numerical Features in Tabular Deep Learning" (NeurIPS 2022), their "PLR (lite)" form.
//!
//! Each embedded feature `x` (a standardised numeric value) becomes
//! `relu(W · sin(c ⊙ x + φ) + b)`: `2k` learned frequencies `c` and phases `φ` per
//! feature, then one dense layer `W` (`[2k, d]`, shared by all features) to `d` outputs
//! per feature. The phases start at 0 for the first `k` sines and π/2 for the other `k`
//! (cosines), with the same frequencies in both halves, drawn from N(0, σ²)·2π: the
//! paper's `[cos(2πcx), sin(2πcx)]` at initialisation, free to drift apart in training.
//! The other features (missing-value indicators, categories) pass through unchanged,
//! after the embedded ones.
//!
//! Everything is built from existing ops (slice, concat, reshape, broadcast mul/add, the
//! `sin` activation, a fused dense layer), so both executors, the f64 reference and
//! autodiff cover it.

use crate::data::{InputColumn, Preprocessor};
use crate::engine::graph::{Act, Graph, NodeId};
use crate::engine::plan::ParamLayout;
use crate::error::{Error, Result, Setting};
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The embedding's sizes, saved with the model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeriodicEmbedding {
    /// The model's input features that are embedded, in increasing order (the
    /// standardised values of the numeric columns).
    pub features: Vec<usize>,
    /// `k`: sine and cosine pairs per embedded feature.
    pub frequencies: usize,
    /// `d`: outputs per embedded feature.
    pub width: usize,
    /// Standard deviation of the initial frequencies (before the factor 2π).
    pub sigma: f32,
}

/// Parameter names (scoped like every parameter of the model).
const FREQUENCY: &str = "periodic.frequency";
const PHASE: &str = "periodic.phase";

impl PeriodicEmbedding {
    /// Pairs per feature. With the next two, the best of eight settings in 5-fold
    /// cross-validation on the bundled data (k, d, σ from 4–16, 8–24, 0.01–1; all
    /// within 0.003 of each other but σ = 0.01; BENCHMARKS.md).
    pub const FREQUENCIES: usize = 8;
    /// Outputs per feature.
    pub const WIDTH: usize = 16;
    /// Initial frequency scale (the paper tunes it in [0.01, 100]; standardised inputs
    /// want the low end).
    pub const SIGMA: f32 = 0.1;

    /// An embedding of `features` (indices among `inputs` features) with the default
    /// sizes; refuses an empty or out-of-range list.
    pub fn new(features: Vec<usize>, inputs: usize) -> Result<Self> {
        let refuse = |msg: String| Err(Error::invalid(Setting::NumericEncoding, msg));
        if features.is_empty() {
            return refuse(
                "periodic embeds numeric columns, and the data has none (use standard)".into(),
            );
        }
        if features.windows(2).any(|w| w[0] >= w[1]) || features[features.len() - 1] >= inputs {
            return refuse(format!(
                "embedded features {features:?} are not increasing indices below {inputs}"
            ));
        }
        Ok(PeriodicEmbedding {
            features,
            frequencies: Self::FREQUENCIES,
            width: Self::WIDTH,
            sigma: Self::SIGMA,
        })
    }

    /// Features out of the embedding for `inputs` features in: `d` per embedded feature
    /// and the others as they are.
    pub fn outputs(&self, inputs: usize) -> usize {
        self.features.len() * self.width + inputs - self.features.len()
    }

    /// Appends the embedding to `g`, reading `x` (`[batch, inputs]`); returns the
    /// `[batch, outputs(inputs)]` features the dense layers read.
    pub fn build(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        let (rows, inputs) = match *g.shape(x) {
            [rows, inputs] => (rows, inputs),
            ref other => return Err(Error::Internal(format!("periodic input {other:?}"))),
        };
        let embedded = columns(g, x, &runs(&self.features))?;
        let (f, m, d) = (self.features.len(), 2 * self.frequencies, self.width);
        let frequency = g.param(FREQUENCY, &[f, m])?;
        let phase = g.param(PHASE, &[f, m])?;
        let weight = g.param("periodic.weight", &[m, d])?;
        let bias = g.param("periodic.bias", &[d])?;

        let x3 = g.reshape(embedded, &[rows, f, 1])?;
        let angle = g.mul(x3, frequency)?;
        let angle = g.add(angle, phase)?;
        let waves = g.unary(Act::Sin, angle)?;
        let waves = g.reshape(waves, &[rows * f, m])?;
        let out = g.linear(waves, weight, bias, Act::Relu)?;
        let out = g.reshape(out, &[rows, f * d])?;

        let others: Vec<usize> = (0..inputs).filter(|i| !self.features.contains(i)).collect();
        if others.is_empty() {
            return Ok(out);
        }
        let passed = columns(g, x, &runs(&others))?;
        g.concat(&[out, passed])
    }

    /// Sets the frequencies and phases in `flat` (packed by `layout`) to their
    /// initial values (see the module doc); the dense layer keeps the usual start.
    pub fn initialise(&self, g: &Graph, layout: &ParamLayout, seed: u64, flat: &mut [f32]) {
        let k = self.frequencies;
        let mut rng = Rng::new(seed ^ 0x5EED_F00D);
        for (i, p) in g.params.iter().enumerate() {
            let values = &mut flat[layout.offsets[i]..layout.offsets[i] + layout.lens[i]];
            if p.name.ends_with(FREQUENCY) {
                for row in values.chunks_mut(2 * k) {
                    for j in 0..k {
                        let c = truncated_normal(&mut rng)
                            * self.sigma as f64
                            * 2.0
                            * std::f64::consts::PI;
                        row[j] = c as f32;
                        row[k + j] = c as f32;
                    }
                }
            } else if p.name.ends_with(PHASE) {
                for row in values.chunks_mut(2 * k) {
                    row[..k].fill(0.0);
                    row[k..].fill(std::f32::consts::FRAC_PI_2);
                }
            }
        }
    }
}

/// The feature index of each numeric column's standardised value among `pre`'s
/// features (its missing-value flag, when it has one, is not embedded).
pub fn numeric_features(pre: &Preprocessor) -> Vec<usize> {
    let mut features = Vec::new();
    let mut at = 0;
    for input in &pre.inputs {
        if let InputColumn::Numeric(step) = input {
            if step.ple_edges.is_none() {
                features.push(at);
            }
        }
        at += input.width();
    }
    features
}

/// A standard normal draw, redrawn outside ±3 (as the paper's `trunc_normal_`).
fn truncated_normal(rng: &mut Rng) -> f64 {
    loop {
        let v = rng.normal();
        if v.abs() <= 3.0 {
            return v;
        }
    }
}

/// `indices` (increasing) as runs of consecutive columns `(start, len)`.
fn runs(indices: &[usize]) -> Vec<(usize, usize)> {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &i in indices {
        match runs.last_mut() {
            Some((start, len)) if *start + *len == i => *len += 1,
            _ => runs.push((i, 1)),
        }
    }
    runs
}

/// The columns of `x` in `runs`, side by side (`x` itself when they are all of it).
fn columns(g: &mut Graph, x: NodeId, runs: &[(usize, usize)]) -> Result<NodeId> {
    if let [(0, len)] = runs {
        if *len == g.shape(x)[1] {
            return Ok(x);
        }
    }
    let parts = runs
        .iter()
        .map(|&(start, len)| g.slice_cols(x, start, len))
        .collect::<Result<Vec<_>>>()?;
    match parts.as_slice() {
        [one] => Ok(*one),
        _ => g.concat(&parts),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_group_consecutive_columns() {
        assert_eq!(runs(&[0, 1, 2, 5, 7, 8]), vec![(0, 3), (5, 1), (7, 2)]);
        assert_eq!(runs(&[]), vec![]);
    }

    #[test]
    fn outputs_count_embedded_and_passed_features() {
        let e = PeriodicEmbedding::new(vec![0, 2], 5).unwrap();
        assert_eq!(e.outputs(5), 2 * PeriodicEmbedding::WIDTH + 3);
        assert!(PeriodicEmbedding::new(vec![], 5).is_err());
        assert!(PeriodicEmbedding::new(vec![2, 1], 5).is_err());
        assert!(PeriodicEmbedding::new(vec![5], 5).is_err());
    }
}
