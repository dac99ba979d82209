//! Stability monitoring: how far a new population has moved from the one a model was
//! trained on. Training saves the baseline with the model ([`Baseline`], the model
//! directory's `stability.json`): the score deciles of the training rows and each raw
//! input column's training distribution (`data::ColumnProfile`). A new file is binned the
//! same way ([`Monitor`]) and compared bin by bin with the population stability index
//!
//! ```text
//! PSI = Σ_i (new_i − train_i) · ln(new_i / train_i)
//! ```
//!
//! over the shares of rows in each bin, each share below [`EPSILON`] taken as
//! [`EPSILON`] (an empty bin would make the logarithm infinite). Over the score's bins
//! it is the score's PSI; over a column's bins, that column's characteristic stability
//! index (CSI). The usual reading ([`Band`]): below 0.1 stable, 0.1 to 0.25 worth
//! watching, above 0.25 shifted.

pub mod html;

use crate::data::{decile_cuts, fractions, value_bin, value_labels, ColumnProfile, RawCell};
use crate::engine::exec::Executor;
use crate::error::{Error, Result};
use crate::files::FileSet;
use crate::model_io::{f32_bytes, fnv1a64, SavedModel};
use crate::nn::ModelSpec;
use crate::scoring::Scorer;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The baseline's file name in a model directory.
pub const STABILITY_FILE: &str = "stability.json";
/// The `format` field of stability.json.
pub const FORMAT_NAME: &str = "riskgrad-stability";
/// Version of stability.json's layout; a reader refuses any other.
pub const FORMAT_VERSION: u32 = 1;
/// The floor of a bin's share in the PSI: a share below it (an empty bin) counts as it.
pub const EPSILON: f64 = 1e-4;
/// An index below this is stable.
pub const WATCH_FROM: f64 = 0.1;
/// An index above this is a shift.
pub const SHIFTED_ABOVE: f64 = 0.25;
/// Rows per forward pass when scoring the training rows for the baseline.
const SCORE_CHUNK: usize = 4096;

/// The population stability index of `new` against `train` (shares per bin, same bins):
/// `Σ (new_i − train_i) ln(new_i / train_i)`, each share floored at [`EPSILON`]. 0 for
/// identical shares, and never negative.
pub fn psi(train: &[f64], new: &[f64]) -> f64 {
    train
        .iter()
        .zip(new)
        .map(|(&t, &n)| {
            let (t, n) = (t.max(EPSILON), n.max(EPSILON));
            (n - t) * (n / t).ln()
        })
        .sum()
}

/// How far an index says a distribution moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// Below 0.1.
    Stable,
    /// 0.1 to 0.25.
    Watch,
    /// Above 0.25.
    Shifted,
}

impl Band {
    /// The band of a PSI or CSI.
    pub fn of(index: f64) -> Band {
        if index < WATCH_FROM {
            Band::Stable
        } else if index <= SHIFTED_ABOVE {
            Band::Watch
        } else {
            Band::Shifted
        }
    }

    /// "stable", "watch" or "shifted".
    pub fn name(self) -> &'static str {
        match self {
            Band::Stable => "stable",
            Band::Watch => "watch",
            Band::Shifted => "shifted",
        }
    }
}

/// The training rows' scores: bins cut at their deciles, and the share in each.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ScoreProfile {
    /// Bin `i` holds the probabilities in `(cuts[i-1], cuts[i]]` (see
    /// `data::value_bin`): the training deciles, duplicates collapsed.
    pub cuts: Vec<f32>,
    /// The share of the training rows in each of the `cuts.len() + 1` bins.
    pub fractions: Vec<f64>,
}

/// The training-time distributions `riskgrad monitor` compares a new file with, saved in
/// the model directory as stability.json.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    /// [`FORMAT_NAME`].
    pub format: String,
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// The rows the distributions are over: the training split (for a cross-validation
    /// ensemble, every row with a target).
    pub rows: usize,
    /// FNV-1a (64-bit, hex) of the packed weights the scores came from, so that a
    /// baseline beside other weights (an interrupted save, a copied file) is refused.
    pub weights_fnv1a64: String,
    /// The training rows' probabilities of default.
    pub score: ScoreProfile,
    /// Each raw input column's training distribution, in the preprocessing's order.
    pub columns: Vec<ColumnProfile>,
}

impl Baseline {
    /// The baseline of a model with weights `params`, from its probabilities for the
    /// training rows and its input columns' profile over the same rows.
    pub fn new(scores: &[f32], columns: Vec<ColumnProfile>, params: &[f32]) -> Self {
        let mut finite: Vec<f32> = scores.iter().copied().filter(|p| p.is_finite()).collect();
        let cuts = decile_cuts(&mut finite);
        let mut counts = vec![0u64; cuts.len() + 1];
        for &p in &finite {
            counts[value_bin(&cuts, p)] += 1;
        }
        Baseline {
            format: FORMAT_NAME.into(),
            format_version: FORMAT_VERSION,
            rows: scores.len(),
            weights_fnv1a64: weights_hash(params),
            score: ScoreProfile {
                cuts,
                fractions: fractions(&counts),
            },
            columns,
        }
    }

    /// As [`new`](Self::new), scoring the training rows (`rows`: row-major feature
    /// matrices in the model's column order, e.g. a split's `x`) with `model` and
    /// `params` on `exec`.
    pub fn scored(
        exec: &mut dyn Executor,
        model: &ModelSpec,
        params: &[f32],
        rows: &[&[f32]],
        columns: Vec<ColumnProfile>,
    ) -> Result<Self> {
        let width = model.inputs().max(1);
        let total = rows.iter().map(|x| x.len() / width).sum::<usize>();
        let mut scorer = Scorer::for_weights(exec, model, params, total.clamp(1, SCORE_CHUNK))?;
        let mut scores = Vec::with_capacity(total);
        for x in rows {
            scores.extend(scorer.score(x)?);
        }
        Ok(Baseline::new(&scores, columns, params))
    }

    /// Writes `dir/stability.json` into `files` (add it before the model's config.json,
    /// which makes the set count).
    pub fn stage(&self, dir: &Path, files: &mut FileSet) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(Error::internal)?;
        files.add(&dir.join(STABILITY_FILE), &json)
    }

    /// Reads `dir/stability.json` and checks it against `model` (the model loaded from
    /// `dir`): its columns and categories, and the weights it was scored with. Any
    /// failure, a missing file included, is an [`Error::BadModel`] that says to retrain.
    pub fn load(dir: &Path, model: &SavedModel) -> Result<Self> {
        let path = dir.join(STABILITY_FILE);
        let bad = |m: String| Error::BadModel {
            dir: dir.to_path_buf(),
            source: Box::new(Error::corrupt(&path, m)),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(
                    "not there: the model was saved without its training distributions (by an earlier riskgrad, or the file was removed), so there is nothing to compare a new file with; train it again with this riskgrad to monitor it".into(),
                ))
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        let head: serde_json::Value = serde_json::from_str(&text)
            .map_err(|e| bad(format!("not JSON (line {}): {e}", e.line())))?;
        if head.get("format").and_then(|f| f.as_str()) != Some(FORMAT_NAME) {
            return Err(bad(format!(
                "not a riskgrad stability baseline (its \"format\" is not {FORMAT_NAME:?})"
            )));
        }
        let version = head.get("format_version").and_then(|v| v.as_u64());
        if version != Some(FORMAT_VERSION as u64) {
            return Err(bad(format!(
                "format version {} is not {FORMAT_VERSION}, the one this riskgrad reads; train the model again",
                version.map_or("missing".into(), |v| v.to_string())
            )));
        }
        let baseline: Baseline = serde_json::from_value(head).map_err(|e| bad(format!("{e}")))?;
        baseline.check(model).map_err(|m| {
            bad(format!(
                "{m}; it does not belong to this model (an interrupted save, or a file from another model): train the model again"
            ))
        })?;
        Ok(baseline)
    }

    /// Why this baseline cannot be the one of `model` (`Err` with the reason).
    fn check(&self, model: &SavedModel) -> std::result::Result<(), String> {
        if self.weights_fnv1a64 != weights_hash(&model.params) {
            return Err("it was scored with other weights than model.safetensors holds".into());
        }
        let s = &self.score;
        if s.fractions.len() != s.cuts.len() + 1
            || s.cuts.iter().any(|c| !c.is_finite())
            || s.cuts.windows(2).any(|w| w[0] >= w[1])
            || s.fractions.iter().any(|f| !(0.0..=1.0).contains(f))
        {
            return Err("its score bins are not increasing cuts with a share per bin".into());
        }
        if !crate::data::shares_of_a_whole(&s.fractions) {
            return Err("its score bins' shares do not add up to 1".into());
        }
        if self.rows == 0 {
            return Err("it counts no training rows".into());
        }
        let inputs = &model.preprocessing.inputs;
        if self.columns.len() != inputs.len() {
            return Err(format!(
                "it profiles {} columns, the model reads {}",
                self.columns.len(),
                inputs.len()
            ));
        }
        for (profile, input) in self.columns.iter().zip(inputs) {
            if let Some(problem) = profile.problem() {
                return Err(problem);
            }
            let same = profile.name == input.name()
                && match (&profile.bins, input) {
                    (
                        crate::data::ColumnBins::Categorical { categories },
                        crate::data::InputColumn::Categorical(step),
                    ) => *categories == step.categories,
                    (
                        crate::data::ColumnBins::Numeric { .. },
                        crate::data::InputColumn::Numeric(_),
                    ) => true,
                    _ => false,
                };
            if !same {
                return Err(format!(
                    "its column {:?} ({}) is not the model's column {:?}",
                    profile.name,
                    profile.bins.kind(),
                    input.name()
                ));
            }
        }
        Ok(())
    }
}

/// FNV-1a of the packed weights, in hex.
fn weights_hash(params: &[f32]) -> String {
    format!("{:016x}", fnv1a64(&f32_bytes(params)))
}

/// A new file's rows counted into the baseline's bins, batch by batch (memory: one count
/// per bin).
pub struct Monitor<'b> {
    baseline: &'b Baseline,
    score: Vec<u64>,
    columns: Vec<Vec<u64>>,
    rows: u64,
}

impl<'b> Monitor<'b> {
    /// No rows counted yet.
    pub fn new(baseline: &'b Baseline) -> Self {
        Monitor {
            baseline,
            score: vec![0; baseline.score.cuts.len() + 1],
            columns: baseline
                .columns
                .iter()
                .map(|c| vec![0; c.bins.len()])
                .collect(),
            rows: 0,
        }
    }

    /// Counts a batch: each row's probability, and its input cells (row-major, one per
    /// baseline column, as `PredictReader::with_raw` gives them).
    pub fn add(&mut self, scores: &[f32], cells: &[RawCell]) -> Result<()> {
        let width = self.columns.len();
        if cells.len() != scores.len() * width {
            return Err(Error::size_mismatch(
                format!(
                    "input cells of {} scored rows of {width} columns",
                    scores.len()
                ),
                cells.len(),
                scores.len() * width,
            ));
        }
        for &p in scores {
            // A probability is never NaN; were one, it would count in the top bin.
            let bin = match p.is_nan() {
                true => self.score.len() - 1,
                false => value_bin(&self.baseline.score.cuts, p),
            };
            self.score[bin] += 1;
        }
        for row in cells.chunks_exact(width.max(1)) {
            for ((cell, counts), profile) in row
                .iter()
                .zip(&mut self.columns)
                .zip(&self.baseline.columns)
            {
                counts[profile.bins.bin(cell)] += 1;
            }
        }
        self.rows += scores.len() as u64;
        Ok(())
    }

    /// Rows counted so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// The comparison of the rows counted with the baseline.
    pub fn report(&self) -> StabilityReport {
        let b = self.baseline;
        let score = Shift::new(
            "probability of default".into(),
            "score",
            value_labels(&b.score.cuts),
            &b.score.fractions,
            &fractions(&self.score),
        );
        let columns = b
            .columns
            .iter()
            .zip(&self.columns)
            .map(|(p, counts)| {
                Shift::new(
                    p.name.clone(),
                    p.bins.kind(),
                    p.bins.labels(),
                    &p.fractions,
                    &fractions(counts),
                )
            })
            .collect();
        StabilityReport {
            rows: self.rows,
            training_rows: b.rows,
            score,
            columns,
        }
    }
}

/// One bin's share of the training rows and of the new rows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BinShare {
    /// The bin, in words (`<= 0.05`, `(0.05, 0.1]`, a category, `missing`).
    pub bin: String,
    /// Its share of the training rows.
    pub training: f64,
    /// Its share of the new rows.
    pub new: f64,
}

/// How one distribution (the score's or a column's) moved.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shift {
    /// The column's name, or "probability of default" for the score.
    pub name: String,
    /// "score", "numeric" or "categorical".
    pub kind: &'static str,
    /// The PSI (the score) or CSI (a column).
    pub index: f64,
    /// The index's band.
    pub band: Band,
    /// Each bin's shares.
    pub bins: Vec<BinShare>,
}

impl Shift {
    fn new(
        name: String,
        kind: &'static str,
        labels: Vec<String>,
        training: &[f64],
        new: &[f64],
    ) -> Self {
        let index = psi(training, new);
        Shift {
            name,
            kind,
            index,
            band: Band::of(index),
            bins: labels
                .into_iter()
                .zip(training.iter().zip(new))
                .map(|(bin, (&training, &new))| BinShare { bin, training, new })
                .collect(),
        }
    }
}

/// A new file against a model's baseline: the score's PSI and every input column's CSI.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StabilityReport {
    /// Rows of the new file.
    pub rows: u64,
    /// Rows of the baseline (the training rows).
    pub training_rows: usize,
    /// The score's shift (its index is the PSI).
    pub score: Shift,
    /// Each input column's shift (its index is the CSI), in the model's order.
    pub columns: Vec<Shift>,
}

impl StabilityReport {
    /// The columns in a band, by name.
    pub fn columns_in(&self, band: Band) -> Vec<&str> {
        self.columns
            .iter()
            .filter(|c| c.band == band)
            .map(|c| c.name.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psi_of_two_histograms_by_hand() {
        // (0.1-0.25) ln(0.4) + (0.2-0.25) ln(0.8) + (0.3-0.25) ln(1.2) + (0.4-0.25) ln(1.6)
        let got = psi(&[0.25; 4], &[0.1, 0.2, 0.3, 0.4]);
        assert!((got - 0.228_217_4).abs() < 1e-6, "{got}");
        assert_eq!(psi(&[0.2, 0.3, 0.5], &[0.2, 0.3, 0.5]), 0.0);
        // An empty training bin counts as 1e-4: (0.1-1e-4) ln(0.1/1e-4) + (0.4-0.5) ln(0.8).
        let got = psi(&[0.5, 0.5, 0.0], &[0.5, 0.4, 0.1]);
        assert!((got - 0.712_399_3).abs() < 1e-6, "{got}");
        // Empty on both sides: nothing.
        assert_eq!(psi(&[1.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    #[test]
    fn bands() {
        assert_eq!(Band::of(0.0), Band::Stable);
        assert_eq!(Band::of(0.099), Band::Stable);
        assert_eq!(Band::of(0.1), Band::Watch);
        assert_eq!(Band::of(0.25), Band::Watch);
        assert_eq!(Band::of(0.2501), Band::Shifted);
    }

    #[test]
    fn the_training_scores_against_themselves_are_stable() {
        let scores: Vec<f32> = (0..200).map(|i| (i as f32 + 0.5) / 200.0).collect();
        let column = ColumnProfile::fit("x", &[RawCell::Number(1.0), RawCell::Missing], None);
        let b = Baseline::new(&scores, vec![column], &[1.0, 2.0]);
        assert_eq!(b.score.cuts.len(), 9);
        assert!(b.score.fractions.iter().all(|f| (f - 0.1).abs() < 1e-12));
        let mut m = Monitor::new(&b);
        let cells: Vec<RawCell> = (0..200)
            .map(|i| match i % 2 {
                0 => RawCell::Number(1.0),
                _ => RawCell::Missing,
            })
            .collect();
        m.add(&scores, &cells).unwrap();
        let r = m.report();
        assert_eq!(r.rows, 200);
        assert_eq!(r.score.index, 0.0);
        assert_eq!(r.columns[0].index, 0.0);
        assert_eq!(r.columns[0].band, Band::Stable);
        // Every new score in the top decile: shifted.
        let mut m = Monitor::new(&b);
        m.add(&[0.99; 10], &[RawCell::Missing; 10]).unwrap();
        let r = m.report();
        assert_eq!(r.score.band, Band::Shifted);
        assert_eq!(r.columns_in(Band::Shifted), ["x"]);
        assert!(m.add(&[0.5], &[]).is_err());
    }
}
