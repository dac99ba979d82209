//! The logistic-regression challenger: it recovers known coefficients, and the saved
//! model (an mlp with no hidden layer) scores the same through both executors as the
//! f64 fit does.

use crate::common::{context, rng_for, take_turn};
use riskgrad::data::{prepare_from, PrepareOptions, TargetSpec};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::logistic::fit_logistic;
use riskgrad::metrics::auc;
use riskgrad::model_io::{SavedModel, TrainSettings};
use riskgrad::rng::Rng;
use riskgrad::scoring::Scorer;
use std::path::Path;

/// True coefficients of the synthetic table; the last column carries no signal.
const BETA: [f64; 5] = [1.0, -0.7, 0.4, 0.25, 0.0];
const BIAS: f64 = -1.2;

/// `n` rows of standard normal features and a label drawn from σ(x·BETA + BIAS).
fn synthetic(rng: &mut Rng, n: usize) -> (Vec<f32>, Vec<f32>) {
    let p = BETA.len();
    let x: Vec<f32> = (0..n * p).map(|_| rng.normal() as f32).collect();
    let y = x
        .chunks_exact(p)
        .map(|row| {
            let z = BIAS
                + row
                    .iter()
                    .zip(BETA)
                    .map(|(&v, b)| v as f64 * b)
                    .sum::<f64>();
            (rng.uniform() < 1.0 / (1.0 + (-z).exp())) as u8 as f32
        })
        .collect();
    (x, y)
}

#[test]
fn recovers_known_coefficients() {
    let mut rng = rng_for("recovers_known_coefficients");
    let (x, y) = synthetic(&mut rng, 20_000);
    let fit = fit_logistic(&x, &y, BETA.len(), 1.0, 1.0).unwrap();
    // The standard error of each coefficient here is about 0.02; 0.08 is four of them.
    for (j, (&got, want)) in fit.weights.iter().zip(BETA).enumerate() {
        assert!((got - want).abs() < 0.08, "beta {j}: {got} vs {want}");
    }
    assert!(
        (fit.bias - BIAS).abs() < 0.08,
        "bias {} vs {BIAS}",
        fit.bias
    );
    assert!(
        fit.iterations >= 2 && fit.iterations < 30,
        "{}",
        fit.iterations
    );
    // Deterministic: the same data gives the same bits.
    assert_eq!(fit, fit_logistic(&x, &y, BETA.len(), 1.0, 1.0).unwrap());
    // A stronger penalty shrinks every coefficient.
    let shrunk = fit_logistic(&x, &y, BETA.len(), 5_000.0, 1.0).unwrap();
    for (s, f) in shrunk.weights.iter().zip(&fit.weights).take(4) {
        assert!(s.abs() < f.abs(), "{s} vs {f}");
    }
}

/// A CSV of the synthetic table (one text column that carries signal too), as a user
/// would bring it.
fn synthetic_csv(rng: &mut Rng, n: usize) -> String {
    let (x, y) = synthetic(rng, n);
    let mut csv = String::from("a,b,c,d,e,grade,default\n");
    for (row, &t) in x.chunks_exact(BETA.len()).zip(&y) {
        let grade = if (row[0] > 0.0) == (t > 0.5) {
            "A"
        } else {
            "B"
        };
        csv.push_str(&format!(
            "{},{},{},{},{},{grade},{}\n",
            row[0], row[1], row[2], row[3], row[4], t
        ));
    }
    csv
}

#[test]
fn saved_model_scores_as_the_fit_on_both_executors() {
    let mut rng = rng_for("saved_model_scores_as_the_fit_on_both_executors");
    let csv = synthetic_csv(&mut rng, 3_001);
    let opts = PrepareOptions {
        target: TargetSpec::Name("default".into()),
        ..Default::default()
    };
    let data = prepare_from(
        std::io::Cursor::new(csv.into_bytes()),
        Path::new("synthetic.csv"),
        &opts,
    )
    .unwrap();
    let f = data.n_features();
    let fit = fit_logistic(&data.train.x, &data.train.y, f, 1.0, 1.0).unwrap();
    let fit_probs: Vec<f32> = fit.predict(&data.val.x).iter().map(|&p| p as f32).collect();
    let fit_auc = auc(&fit_probs, &data.val.y);
    assert!(fit_auc > 0.75, "the synthetic signal is strong: {fit_auc}");

    let model = SavedModel {
        model: fit.model_spec().unwrap(),
        preprocessing: data.preprocessor.clone(),
        feature_order: None,
        baseline: vec![0.0; f],
        training: TrainSettings {
            data: "synthetic".into(),
            optimizer: Optimizer::Sgd {
                lr: 0.0,
                momentum: 0.0,
            },
            batch: data.train.rows(),
            epochs: 1,
            seed: 0,
            pos_weight: 1.0,
            val_split: 0.2,
            early_stop: None,
            stop_split: None,
            members: 1,
            cv_folds: None,
            device: "cpu".into(),
            device_choice: None,
            solver: Some("newton".into()),
            val_rows: None,
        },
        epoch: 1,
        validation: None,
        params: fit.params().unwrap(),
    };
    let dir = crate::common::TempDir::unmade("logistic");
    model.save(&dir).unwrap();
    let back = SavedModel::load(&dir).unwrap();
    assert_eq!(back.training.solver.as_deref(), Some("newton"));

    let score = |exec: &mut dyn Executor| -> Vec<f32> {
        // An awkward batch size, so the last run is padded.
        Scorer::new(exec, &back, 97)
            .unwrap()
            .score(&data.val.x)
            .unwrap()
    };
    let mut executors: Vec<(&str, Box<dyn Executor>)> = vec![("cpu", Box::new(CpuExecutor::new()))];
    let _turn = take_turn();
    if let Some(ctx) = context() {
        executors.push(("gpu", Box::new(GpuExecutor::new(ctx))));
    }
    for (name, mut exec) in executors {
        let probs = score(exec.as_mut());
        assert_eq!(probs.len(), fit_probs.len());
        for (i, (g, w)) in probs.iter().zip(&fit_probs).enumerate() {
            assert!((g - w).abs() < 1e-5, "{name} row {i}: {g} vs {w}");
        }
        // Equal up to f32 rounding reordering a near tie: one swapped pair moves the AUC
        // by 1 / (positives · negatives), about 1.5e-5 here.
        let engine_auc = auc(&probs, &data.val.y);
        assert!(
            (engine_auc - fit_auc).abs() < 1e-4,
            "{name}: AUC {engine_auc} vs the fit's {fit_auc}"
        );
    }
}
