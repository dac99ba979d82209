//! Integrated gradients: completeness (a row's attributions add up to its score minus
//! the baseline's), the engine's input gradients against finite differences on the f64
//! reference interpreter, and the mapping back to raw columns.

use crate::lifecycle_common;

use lifecycle_common::{bundled, trained};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::Graph;
use riskgrad::explain::{by_source, Explainer};
use riskgrad::model_io::{param_layout, SavedModel};
use riskgrad::scoring::Scorer;
use std::collections::HashMap;

/// Validation rows `start..start + n`.
fn rows(start: usize, n: usize) -> Vec<f32> {
    let f = bundled().n_features();
    bundled().val.x[start * f..(start + n) * f].to_vec()
}

/// The largest and the mean |sum of attributions - (p(x) - p(baseline))| over the rows.
fn gaps(m: &SavedModel, x: &[f32], steps: usize) -> (f64, f64) {
    let mut exec = CpuExecutor::new();
    let mut e = Explainer::new(&mut exec, m, 16, steps).unwrap();
    let base = e.baseline_score() as f64;
    let out = e.explain(x).unwrap();
    let f = m.n_inputs();
    let gaps: Vec<f64> = out
        .attributions
        .chunks_exact(f)
        .zip(&out.scores)
        .map(|(a, &p)| (a.iter().map(|&v| v as f64).sum::<f64>() - (p as f64 - base)).abs())
        .collect();
    (
        gaps.iter().copied().fold(0.0, f64::max),
        gaps.iter().sum::<f64>() / gaps.len() as f64,
    )
}

/// Completeness, in probability units. With the default 64 midpoint steps on a ReLU MLP
/// the worst row of these 300 is within 5e-3 of its score gap and the mean within 5e-4
/// (measured: worst 2.9e-3; 1.4e-2 at 16 steps, 1.3e-3 at 256, 1.5e-4 at 1024). The
/// ReLU kinks make the integrand piecewise smooth, so the midpoint rule's error falls
/// like 1/m rather than 1/m²; a logistic model (no kinks) is held to 1e-4 at 64 steps.
#[test]
fn attributions_add_up_to_the_score_gap() {
    let (mlp, _) = trained(&[32, 16], 2);
    let x = rows(0, 300);
    let (worst, mean) = gaps(&mlp, &x, 64);
    eprintln!("MLP completeness gap, 64 steps: worst {worst:.2e}, mean {mean:.2e}");
    assert!(worst < 5e-3 && mean < 5e-4, "worst {worst}, mean {mean}");
    let (fine, _) = gaps(&mlp, &x, 1024);
    eprintln!("MLP completeness gap, 1024 steps: worst {fine:.2e}");
    assert!(fine < 5e-4, "1024 steps: worst {fine}");

    let (logistic, _) = trained(&[], 1);
    let (worst, _) = gaps(&logistic, &x, 64);
    eprintln!("logistic completeness gap, 64 steps: worst {worst:.2e}");
    assert!(worst < 1e-4, "worst gap {worst}");
}

/// The explainer's scores are the model's scores, and the baseline row explains to zero.
#[test]
fn scores_match_the_scorer_and_the_baseline_has_no_reasons() {
    let (m, _) = trained(&[16], 1);
    let x = rows(100, 40);
    let mut exec = CpuExecutor::new();
    let scores = Scorer::new(&mut exec, &m, 64).unwrap().score(&x).unwrap();
    let mut exec = CpuExecutor::new();
    let mut e = Explainer::new(&mut exec, &m, 7, 8).unwrap();
    let out = e.explain(&x).unwrap();
    for (a, b) in out.scores.iter().zip(&scores) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    let at_baseline = e.explain(&m.baseline).unwrap();
    assert!(at_baseline.attributions.iter().all(|&a| a == 0.0));
    assert_eq!(at_baseline.scores[0], e.baseline_score());
}

/// With one step, the attribution of feature f is (x_f - b_f) · ∂p/∂x_f at the midpoint:
/// the engine's gradient w.r.t. its input, checked against central differences of the
/// f64 reference interpreter.
#[test]
fn input_gradients_match_finite_differences() {
    let (m, _) = trained(&[16, 8], 1);
    let f = m.n_inputs();
    let x = rows(7, 3);
    let mut exec = CpuExecutor::new();
    let mut e = Explainer::new(&mut exec, &m, 3, 1).unwrap();
    let attr = e.explain(&x).unwrap().attributions;

    // The model alone, on one row, evaluated in f64.
    let mut g = Graph::new();
    let input = g.input("x", &[1, f]).unwrap();
    let logits = m.model.build(&mut g, input).unwrap();
    let probs = g.sigmoid(logits).unwrap();
    let (_, layout) = param_layout(&m.model).unwrap();
    let params: Vec<Vec<f64>> = (0..layout.lens.len())
        .map(|i| {
            m.params[layout.offsets[i]..layout.offsets[i] + layout.lens[i]]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let p = |row: &[f64]| -> f64 {
        let inputs = HashMap::from([("x".to_string(), row.to_vec())]);
        crate::reference::evaluate(&g, &inputs, &params, 0)[probs][0]
    };
    let h = 1e-4;
    for r in 0..3 {
        let mid: Vec<f64> = (0..f)
            .map(|j| (m.baseline[j] + 0.5 * (x[r * f + j] - m.baseline[j])) as f64)
            .collect();
        for j in 0..f {
            let dx = (x[r * f + j] - m.baseline[j]) as f64;
            let (mut up, mut down) = (mid.clone(), mid.clone());
            up[j] += h;
            down[j] -= h;
            let want = dx * (p(&up) - p(&down)) / (2.0 * h);
            let got = attr[r * f + j] as f64;
            assert!(
                (got - want).abs() <= 1e-5 + 1e-3 * want.abs(),
                "row {r} feature {j}: engine {got}, finite differences {want}"
            );
        }
    }
}

/// One-hot and indicator features add up into their raw column; the columns' sum is the
/// features' sum.
#[test]
fn attributions_map_back_to_raw_columns() {
    let (m, _) = trained(&[8], 1);
    let names = m.source_names();
    let sources = m.feature_sources();
    assert_eq!(sources.len(), m.n_inputs());
    // The bundled data one-hot encodes PAY_0 and friends: several features, one column.
    let pay0 = names.iter().position(|n| n == "PAY_0").unwrap();
    let feature_names = m.feature_names();
    let pay0_features: Vec<&String> = feature_names
        .iter()
        .zip(&sources)
        .filter(|(_, &s)| s == pay0)
        .map(|(n, _)| n)
        .collect();
    assert!(
        pay0_features.len() > 2 && pay0_features.iter().all(|n| n.starts_with("PAY_0")),
        "{pay0_features:?}"
    );

    let x = rows(0, 5);
    let mut exec = CpuExecutor::new();
    let out = Explainer::new(&mut exec, &m, 5, 16)
        .unwrap()
        .explain(&x)
        .unwrap();
    let per_column = by_source(&out.attributions, &sources, names.len());
    let f = m.n_inputs();
    for r in 0..5 {
        let features: f64 = out.attributions[r * f..(r + 1) * f]
            .iter()
            .map(|&a| a as f64)
            .sum();
        let columns: f64 = per_column[r * names.len()..(r + 1) * names.len()]
            .iter()
            .sum();
        assert!((features - columns).abs() < 1e-9);
        let pay0_sum: f64 = (0..f)
            .filter(|&j| sources[j] == pay0)
            .map(|j| out.attributions[r * f + j] as f64)
            .sum();
        assert!((per_column[r * names.len() + pay0] - pay0_sum).abs() < 1e-9);
    }
}
