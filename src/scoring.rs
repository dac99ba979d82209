//! Scoring with a saved model: a forward plan of fixed batch size on any executor, fed
//! batch by batch, so any number of rows go through in constant memory.

use crate::data::{Batch, PredictReader, BUNDLED_BYTES, BUNDLED_NAME};
use crate::engine::exec::Executor;
use crate::engine::graph::{Graph, NodeId};
use crate::engine::plan::{compile, PlanRequest};
use crate::error::{Error, Result, Setting};
use crate::model_io::SavedModel;
use crate::nn::ModelSpec;
use std::path::Path;

/// The input's name: one per batch size, so that scorers of several sizes can share an
/// executor (its named inputs are shared by its plans, each name with one size).
fn input_name(batch: usize) -> String {
    format!("score_x{batch}")
}

/// A loaded forward pass: `[batch, F]` features in, probabilities of default out.
pub struct Scorer<'e> {
    exec: &'e mut dyn Executor,
    plan: usize,
    probs: NodeId,
    input: String,
    batch: usize,
    features: usize,
    pad: Vec<f32>,
}

impl<'e> Scorer<'e> {
    /// Compiles the model's forward pass for `batch` rows, loads it and writes the weights.
    pub fn new(exec: &'e mut dyn Executor, model: &SavedModel, batch: usize) -> Result<Self> {
        Scorer::for_weights(exec, &model.model, &model.params, batch)
    }

    /// As [`new`](Self::new), from an architecture and its packed weights (e.g. a model
    /// just trained, before it is saved).
    pub fn for_weights(
        exec: &'e mut dyn Executor,
        model: &ModelSpec,
        params: &[f32],
        batch: usize,
    ) -> Result<Self> {
        if batch == 0 {
            return Err(Error::invalid(Setting::BatchSize, "must be at least 1"));
        }
        let features = model.inputs();
        let mut g = Graph::new();
        let input = input_name(batch);
        let x = g.input(&input, &[batch, features])?;
        let probs = model.build_probability(&mut g, x)?;
        let plan = compile(
            &g,
            &PlanRequest {
                keep: vec![probs],
                ..Default::default()
            },
        )?;
        let plan = exec.load(plan)?;
        exec.write_params(params)?;
        Ok(Scorer {
            exec,
            plan,
            probs,
            input,
            batch,
            features,
            pad: Vec::new(),
        })
    }

    /// Reads the first batch of up to `batch` rows from `reader` and builds a scorer for
    /// it: the plan holds `batch` rows, or fewer when the data ends sooner, so a large
    /// `batch` never reserves memory for rows the file does not have. Returns the batch
    /// read (`None` for a file without rows) beside the scorer.
    pub fn for_first_batch(
        exec: &'e mut dyn Executor,
        model: &SavedModel,
        reader: &mut PredictReader,
        batch: usize,
    ) -> Result<(Self, Option<Batch>)> {
        let first = reader.next_batch(batch)?;
        Ok((Scorer::new(exec, model, plan_rows(first.as_ref()))?, first))
    }

    /// The loaded plan, to score with it again later on the same executor
    /// ([`KeptPlans`]).
    fn loaded(&self) -> LoadedPlan {
        LoadedPlan {
            plan: self.plan,
            probs: self.probs,
            input: self.input.clone(),
            batch: self.batch,
            features: self.features,
        }
    }

    /// A scorer over `loaded`, a plan loaded earlier into `exec` (the same executor).
    fn resume(exec: &'e mut dyn Executor, loaded: &LoadedPlan) -> Self {
        Scorer {
            exec,
            plan: loaded.plan,
            probs: loaded.probs,
            input: loaded.input.clone(),
            batch: loaded.batch,
            features: loaded.features,
            pad: Vec::new(),
        }
    }

    /// Rows per forward pass (the plan's fixed batch).
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Probabilities for row-major `x` (any number of rows, in the model's column order),
    /// `batch` rows per run; the last run is padded with zeros and cut.
    pub fn score(&mut self, x: &[f32]) -> Result<Vec<f32>> {
        if !x.len().is_multiple_of(self.features.max(1)) {
            return Err(Error::NotWholeRows {
                what: "features",
                values: x.len(),
                width: self.features,
            });
        }
        let rows = x.len() / self.features.max(1);
        let mut out = Vec::with_capacity(rows);
        for chunk in x.chunks(self.batch * self.features) {
            let n = chunk.len() / self.features;
            if n == self.batch {
                self.exec.write(&self.input, chunk)?;
            } else {
                self.pad.clear();
                self.pad.extend_from_slice(chunk);
                self.pad.resize(self.batch * self.features, 0.0);
                self.exec.write(&self.input, &self.pad)?;
            }
            self.exec.run(self.plan, 1)?;
            let p = self.exec.read_node(self.plan, self.probs)?;
            out.extend_from_slice(&p[..n]);
        }
        Ok(out)
    }
}

/// The rows of the plan that scores data whose first batch is `first`: its rows, so a
/// large batch never reserves memory for rows the data does not have (one for no rows).
pub fn plan_rows(first: Option<&Batch>) -> usize {
    first.map_or(1, |b| b.ids.len().max(1))
}

/// A scorer's plan apart from its executor (the executor keeps the plan itself).
struct LoadedPlan {
    plan: usize,
    probs: NodeId,
    input: String,
    batch: usize,
    features: usize,
}

/// An executor kept with the forward passes of one model loaded into it, one per batch
/// size: for a caller that scores many tables with one model (the Python package's
/// `predict`, called per batch by Ray or Spark), so that a call neither opens an executor
/// nor compiles and loads a plan. An executor cannot unload plans, so it keeps at most
/// `MAX_PLANS` sizes; a call of another size gets `None` and scores as before, on an
/// executor of its own.
pub struct KeptPlans {
    exec: Box<dyn Executor>,
    plans: Vec<LoadedPlan>,
}

impl KeptPlans {
    /// The batch sizes kept: a stream of equal batches and a short last one, with room
    /// for a second stream's sizes.
    pub const MAX_PLANS: usize = 4;

    /// Keeps `exec` (which holds no plan yet) for the forward passes of one model.
    pub fn new(exec: Box<dyn Executor>) -> Self {
        KeptPlans {
            exec,
            plans: Vec::new(),
        }
    }

    /// A scorer of `model` (always the same model for one `KeptPlans`) for `batch` rows:
    /// the plan loaded for that size earlier, else one compiled and loaded now; `None`
    /// when `MAX_PLANS` other sizes are loaded already.
    pub fn scorer(&mut self, model: &SavedModel, batch: usize) -> Result<Option<Scorer<'_>>> {
        if let Some(k) = self.plans.iter().position(|p| p.batch == batch) {
            return Ok(Some(Scorer::resume(self.exec.as_mut(), &self.plans[k])));
        }
        if self.plans.len() >= Self::MAX_PLANS {
            return Ok(None);
        }
        let scorer = Scorer::new(self.exec.as_mut(), model, batch)?;
        self.plans.push(scorer.loaded());
        Ok(Some(scorer))
    }
}

/// Opens a CSV file (or the bundled Taiwan file when `path` is None) for scoring with
/// `model`'s preprocessing.
pub fn open_data<'p>(path: Option<&Path>, model: &'p SavedModel) -> Result<PredictReader<'p>> {
    match path {
        Some(p) => PredictReader::open(p, &model.preprocessing),
        None => PredictReader::from_reader(
            std::io::Cursor::new(BUNDLED_BYTES),
            Path::new(BUNDLED_NAME),
            &model.preprocessing,
        ),
    }
}

/// Scorecard points: the probability of default as points on a scale where `base`
/// points stand for good:bad odds of `odds`:1 and every `pdo` points double the odds
/// (`600:50:20` is 600 points at 50:1, 620 at 100:1, 580 at 25:1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PointsScale {
    /// `pdo / ln 2`: points per unit of log-odds.
    factor: f64,
    /// `base − factor · ln(odds)`: the points at even odds.
    offset: f64,
}

/// How close to 0 or 1 a probability is taken for points: `p` is clipped to
/// `[POINTS_EPSILON, 1 − POINTS_EPSILON]`, so a probability of exactly 0 or 1 (an f32
/// sigmoid rounds to them) still gets finite points.
pub const POINTS_EPSILON: f64 = 1e-6;

/// The largest base or points-to-double-the-odds a points scale takes.
pub const MAX_POINTS: f64 = 1e6;

impl PointsScale {
    /// The scale with `base` points at odds `odds`:1 and `pdo` points to double the odds;
    /// the reason in words when the numbers cannot make one (every number finite, odds
    /// and pdo above 0).
    pub fn new(base: f64, odds: f64, pdo: f64) -> std::result::Result<Self, String> {
        if !(base.is_finite() && odds.is_finite() && pdo.is_finite()) {
            return Err("base, odds and pdo must be finite numbers".into());
        }
        if odds <= 0.0 {
            return Err(format!(
                "the odds must be above 0 (good:bad, e.g. 50 for 50:1), not {odds}"
            ));
        }
        if pdo <= 0.0 {
            return Err(format!(
                "the points to double the odds must be above 0, not {pdo}"
            ));
        }
        // Scorecards live in the hundreds or thousands; past a million points the
        // figures are a typo, not a scale.
        if base.abs() > MAX_POINTS || pdo > MAX_POINTS {
            return Err(format!(
                "base {base} and pdo {pdo} must be within ±{MAX_POINTS} points (e.g. 600:50:20)"
            ));
        }
        let factor = pdo / std::f64::consts::LN_2;
        Ok(PointsScale {
            factor,
            offset: base - factor * odds.ln(),
        })
    }

    /// The points of probability of default `p`: `offset + factor · ln((1 − p) / p)`,
    /// with `p` clipped to [`POINTS_EPSILON`] from 0 and 1 (a NaN is taken as 1/2).
    pub fn points(&self, p: f32) -> f64 {
        let p = match p.is_nan() {
            true => 0.5,
            false => (p as f64).clamp(POINTS_EPSILON, 1.0 - POINTS_EPSILON),
        };
        self.offset + self.factor * ((1.0 - p) / p).ln()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_of_known_probabilities() {
        let scale = PointsScale::new(600.0, 50.0, 20.0).unwrap();
        // Good:bad odds of 50:1 are p = 1/51: the base points.
        assert!((scale.points(1.0 / 51.0) - 600.0).abs() < 1e-4);
        // 100:1 is 20 points more, 25:1 20 fewer, 1:1 (p = 1/2) the offset,
        // 600 − 20 log2(50) = 487.1229.
        assert!((scale.points(1.0 / 101.0) - 620.0).abs() < 1e-3);
        assert!((scale.points(1.0 / 26.0) - 580.0).abs() < 1e-3);
        assert!((scale.points(0.5) - 487.122_88).abs() < 1e-4);
        // 0 and 1 are clipped: finite, at the ends of the scale.
        let (top, bottom) = (scale.points(0.0), scale.points(1.0));
        assert!((top - 885.755).abs() < 1e-2 && (bottom - 88.491).abs() < 1e-2);
        assert!(PointsScale::new(600.0, 0.0, 20.0).is_err());
        assert!(PointsScale::new(600.0, 50.0, -20.0).is_err());
        assert!(PointsScale::new(f64::NAN, 50.0, 20.0).is_err());
    }
}
