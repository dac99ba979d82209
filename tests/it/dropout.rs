//! Dropout: the op against the f64 reference and finite differences, its mask's keep
//! rate and its freshness from one optimizer step to the next, and models that drop in
//! training only (scoring a model trained with dropout is the same with or without it).
//! The GPU kernel is checked against the CPU one in gpu_kernels.rs.

use crate::common::*;
use crate::lifecycle_common::{bundled, temp_dir};
use crate::reference::dropout_word;
use riskgrad::engine::cpu::{kernels, CpuExecutor};
use riskgrad::engine::exec::Executor;
use riskgrad::engine::graph::{dropout_hash, dropout_threshold, Act, Graph, Op, Optimizer};
use riskgrad::engine::plan::{compile, PlanRequest, STEP_STATE};
use riskgrad::model_io::{SavedModel, TrainSettings, CONFIG_FILE};
use riskgrad::nn::{CnnLayers, ModelSpec, RecurrentSpec};
use riskgrad::scoring::Scorer;
use riskgrad::train::{Split, TrainConfig, Trainer};

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn the_mask_hash_is_the_reference_definition() {
    let mut rng = rng_for("dropout hash");
    let mut cases: Vec<(u32, u32, u32)> = (0..20_000)
        .map(|_| {
            let w = rng.next_u64();
            (w as u32, (w >> 32) as u32, rng.next_u64() as u32)
        })
        .collect();
    cases.extend([
        (0, 0, 0),
        (u32::MAX, u32::MAX, u32::MAX),
        (1, 0, 0),
        (0, 1, 0),
    ]);
    for (seed, step, i) in cases {
        assert_eq!(
            dropout_hash(seed, step, i) as u64,
            dropout_word(seed as u64, step as u64, i as u64),
            "seed {seed} step {step} index {i}"
        );
    }
    assert_eq!(dropout_threshold(0.0), 0);
    assert_eq!(dropout_threshold(0.5), 1 << 31);
    assert_eq!(dropout_threshold(0.25), 1 << 30);
}

#[test]
fn dropout_gradients_and_the_cpu_kernel_match_the_reference() {
    for (shape, p) in [
        (&[1][..], 0.5),
        (&[7][..], 0.1),
        (&[33, 7][..], 0.3),
        (&[4, 3, 5][..], 0.75),
    ] {
        check_op_gradients(
            &format!("dropout {shape:?} p={p}"),
            1,
            |g| {
                let x = g.input("x", shape).unwrap();
                let d = g.dropout(x, p, 0xC0FFEE).unwrap();
                vec![g.tanh(d).unwrap()]
            },
            &[None],
        );
    }
    // Between two layers of a network, as the MLP uses it: the gradient reaches the
    // first layer's weights only through the kept units.
    check_op_gradients(
        "dropout in an mlp",
        1,
        |g| {
            let x = g.input("x", &[9, 4]).unwrap();
            let w1 = g.param("w1", &[4, 17]).unwrap();
            let b1 = g.param("b1", &[17]).unwrap();
            let w2 = g.param("w2", &[17, 1]).unwrap();
            let b2 = g.param("b2", &[1]).unwrap();
            let h = g.linear(x, w1, b1, Act::Tanh).unwrap();
            let h = g.dropout(h, 0.4, 7).unwrap();
            vec![g.linear(h, w2, b2, Act::Identity).unwrap()]
        },
        &[None],
    );
}

#[test]
fn zero_probability_adds_no_node_and_bad_ones_are_refused() {
    let mut g = Graph::new();
    let x = g.input("x", &[3, 4]).unwrap();
    assert_eq!(g.dropout(x, 0.0, 1).unwrap(), x);
    for p in [1.0, 1.5, -0.1, f32::NAN] {
        assert!(g.dropout(x, p, 1).is_err(), "p = {p}");
        assert!(ModelSpec::mlp(4, &[8]).unwrap().with_dropout(p).is_err());
    }
}

/// Over a million elements (the kernel's threaded path) the share kept is within six
/// standard deviations of `1 - p`, every kept value is exactly `x / (1 - p)` in f32 and
/// each element's fate is the reference's.
#[test]
fn the_keep_rate_is_one_minus_p() {
    let n = 1 << 20;
    let mut rng = rng_for("keep rate");
    let x = values(&mut rng, n);
    for (p, seed, step) in [
        (0.1, 1, 0),
        (0.3, 99, 12_345),
        (0.5, 7, 1),
        (0.9, 0, u32::MAX),
    ] {
        let threshold = dropout_threshold(p);
        let scale = (1.0 / (1.0 - p as f64)) as f32;
        let mut out = vec![f32::NAN; n];
        kernels::dropout(&x, &mut out, seed, step, threshold, scale);
        let kept = out.iter().filter(|&&v| v != 0.0).count();
        let rate = kept as f64 / n as f64;
        let sigma = (p as f64 * (1.0 - p as f64) / n as f64).sqrt();
        assert!(
            (rate - (1.0 - p as f64)).abs() <= 6.0 * sigma,
            "p {p}: kept {rate}, want {} ± {}",
            1.0 - p as f64,
            6.0 * sigma
        );
        let want_threshold = (p as f64 * 4_294_967_296.0).round();
        for i in (0..n).step_by(97) {
            let keep = dropout_word(seed as u64, step as u64, i as u64) as f64 >= want_threshold;
            let want = if keep { x[i] * scale } else { 0.0 };
            assert_eq!(out[i].to_bits(), want.to_bits(), "p {p} element {i}");
        }
        // The serial path (a short tensor) gives the threaded path's first values.
        let mut short = vec![f32::NAN; 1000];
        kernels::dropout(&x[..1000], &mut short, seed, step, threshold, scale);
        assert_eq!(bits(&short), bits(&out[..1000]), "p {p}");
    }
}

/// A plan computing dropout of an input, on a fresh CPU executor.
fn dropout_plan(ex: &mut CpuExecutor, n: usize, p: f32) -> (usize, usize) {
    let mut g = Graph::new();
    let x = g.input("x", &[n]).unwrap();
    let d = g.dropout(x, p, 3).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![d],
            ..Default::default()
        },
    )
    .unwrap();
    (ex.load(plan).unwrap(), d)
}

/// Each optimizer step draws a fresh mask, and the mask depends on that count alone:
/// not on the window counter a run restarts, so a resumed run (which restores both
/// counters) draws the masks it would have drawn.
#[test]
fn each_step_draws_a_fresh_mask_from_the_optimizer_count() {
    let n = 4096;
    let mut ex = CpuExecutor::new();
    let (h, d) = dropout_plan(&mut ex, n, 0.5);
    let mut rng = rng_for("fresh masks");
    ex.write("x", &values(&mut rng, n)).unwrap();
    let mut masks = Vec::new();
    for count in 0..3u32 {
        // A plan without an update leaves the optimizer count alone (a training plan
        // advances it every step): set it as training would have.
        ex.write(STEP_STATE, &[f32::from_bits(0), f32::from_bits(count)])
            .unwrap();
        ex.run(h, 1).unwrap();
        let out = ex.read_node(h, d).unwrap();
        masks.push(out.iter().map(|&v| v != 0.0).collect::<Vec<_>>());
    }
    for (a, b) in [(0, 1), (1, 2), (0, 2)] {
        let differ = masks[a]
            .iter()
            .zip(&masks[b])
            .filter(|(x, y)| x != y)
            .count();
        // Independent masks at p = 0.5 differ in half the places.
        assert!(
            (differ as f64 / n as f64 - 0.5).abs() < 0.05,
            "steps {a} and {b}: {differ} of {n} differ"
        );
    }
    // Back at count 1, with another window: step 1's mask again.
    ex.write(STEP_STATE, &[f32::from_bits(0), f32::from_bits(1)])
        .unwrap();
    ex.run_from(h, 5, 1).unwrap();
    let again: Vec<bool> = ex
        .read_node(h, d)
        .unwrap()
        .iter()
        .map(|&v| v != 0.0)
        .collect();
    assert_eq!(again, masks[1]);
}

/// How many dropout nodes `build` and `build_training` put into a graph of the model.
fn dropout_nodes(model: &ModelSpec, seed: u64) -> (usize, usize) {
    let count = |training: bool| {
        let mut g = Graph::new();
        let x = g.input("x", &[5, model.inputs()]).unwrap();
        match training {
            true => model.build_training(&mut g, x, seed).unwrap(),
            false => model.build(&mut g, x).unwrap(),
        };
        let seeds: Vec<u32> = g
            .nodes
            .iter()
            .filter_map(|n| match n.op {
                Op::Dropout(op) => Some(op.seed),
                _ => None,
            })
            .collect();
        let mut distinct = seeds.clone();
        distinct.dedup();
        assert_eq!(
            distinct.len(),
            seeds.len(),
            "each layer draws its own masks"
        );
        seeds.len()
    };
    (count(false), count(true))
}

#[test]
fn models_drop_after_their_hidden_layers_in_training_only() {
    let mlp = ModelSpec::mlp(6, &[8, 4, 3]).unwrap();
    assert_eq!(dropout_nodes(&mlp, 0), (0, 0));
    assert_eq!(
        dropout_nodes(&mlp.clone().with_dropout(0.2).unwrap(), 0),
        (0, 3)
    );
    let cnn = ModelSpec::cnn(2, 3, 6, CnnLayers::default()).unwrap();
    let dense = CnnLayers::default().dense.len();
    assert_eq!(
        dropout_nodes(&cnn.with_dropout(0.2).unwrap(), 1),
        (0, dense)
    );
    let rnn = RecurrentSpec::new(2, 3, 6, &[4], false, &[5, 4]).unwrap();
    for model in [ModelSpec::lstm(rnn.clone()), ModelSpec::gru(rnn)] {
        assert_eq!(dropout_nodes(&model.with_dropout(0.2).unwrap(), 2), (0, 2));
    }
}

#[test]
fn a_model_saved_without_dropout_loads_as_none() {
    let model = ModelSpec::mlp(6, &[8]).unwrap().with_dropout(0.25).unwrap();
    let json = serde_json::to_value(&model).unwrap();
    assert_eq!(json["dropout"], serde_json::json!(0.25));
    let mut old = json.clone();
    old.as_object_mut().unwrap().remove("dropout");
    let back: ModelSpec = serde_json::from_value(old).unwrap();
    assert_eq!(back.dropout(), 0.0);
    assert_eq!(back, model.with_dropout(0.0).unwrap());
}

fn adam() -> Optimizer {
    Optimizer::Adam {
        lr: 3e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    }
}

/// The first `rows` rows of a split.
fn head(split: &Split, rows: usize) -> Split {
    let f = split.x.len() / split.rows();
    Split {
        x: split.x[..rows * f].to_vec(),
        y: split.y[..rows].to_vec(),
    }
}

/// Trains `model` for `epochs` on the first 4,096 bundled training rows; returns the
/// weights and the trainer's validation probabilities.
fn train(model: &ModelSpec, epochs: usize) -> (Vec<f32>, Vec<f32>) {
    let data = bundled();
    let config = TrainConfig {
        epochs,
        batch: 128,
        optimizer: adam(),
        seed: 5,
        pos_weight: 1.0,
    };
    let mut exec = CpuExecutor::new();
    let (fit, val) = (head(&data.train, 4096), head(&data.val, 1000));
    let mut trainer = Trainer::new(&mut exec, model, &fit, &val, config).unwrap();
    for _ in 0..epochs {
        trainer.epoch(&mut |_, _, _| {}).unwrap();
    }
    (
        trainer.params().unwrap(),
        trainer.predict_validation().unwrap(),
    )
}

/// Training drops (the weights differ from a run without dropout) and repeats exactly;
/// the trainer's validation pass, the scorer, and a saved model whose config.json has
/// no dropout field all score without it, to the bit.
#[test]
fn a_model_trained_with_dropout_scores_the_same_without_it() {
    let data = bundled();
    let plain = ModelSpec::mlp(data.n_features(), &[32, 16]).unwrap();
    let dropped = plain.clone().with_dropout(0.3).unwrap();
    let (weights, trainer_probs) = train(&dropped, 2);
    let (again, _) = train(&dropped, 2);
    assert_eq!(bits(&weights), bits(&again), "a seeded run repeats exactly");
    let (without, _) = train(&plain, 2);
    assert_ne!(bits(&weights), bits(&without), "dropout changes training");

    let val = head(&data.val, 1000);
    let score = |model: &ModelSpec| {
        let mut exec = CpuExecutor::new();
        Scorer::for_weights(&mut exec, model, &weights, 1000)
            .unwrap()
            .score(&val.x)
            .unwrap()
    };
    let with_field = score(&dropped);
    assert_eq!(bits(&with_field), bits(&score(&plain)));
    // The trainer's validation plan (gathered rows) is the same math as the scorer's.
    for (i, (a, b)) in with_field.iter().zip(&trainer_probs).enumerate() {
        assert!((a - b).abs() <= 1e-6, "row {i}: scorer {a} vs trainer {b}");
    }

    let saved = SavedModel {
        model: dropped.clone(),
        preprocessing: data.preprocessor.clone(),
        feature_order: None,
        baseline: vec![0.0; data.n_features()],
        training: TrainSettings {
            data: "bundled".into(),
            optimizer: adam(),
            batch: 128,
            epochs: 2,
            seed: 5,
            pos_weight: 1.0,
            val_split: 0.2,
            early_stop: None,
            stop_split: None,
            members: 1,
            cv_folds: None,
            device: "cpu".into(),
            device_choice: None,
            solver: None,
            val_rows: None,
        },
        epoch: 2,
        validation: None,
        params: weights.clone(),
    };
    let dir = temp_dir("dropout-field");
    saved.save(&dir).unwrap();
    let loaded = SavedModel::load(&dir).unwrap();
    assert_eq!(loaded.model.dropout(), 0.3, "saved with the model");
    let path = dir.join(CONFIG_FILE);
    let config = std::fs::read_to_string(&path).unwrap();
    assert_eq!(config.matches("\"dropout\"").count(), 1, "{config}");
    let mut json: serde_json::Value = serde_json::from_str(&config).unwrap();
    json["model"]
        .as_object_mut()
        .expect("the model's entry")
        .remove("dropout")
        .expect("its dropout");
    std::fs::write(&path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    let old = SavedModel::load(&dir).unwrap();
    assert_eq!(old.model, plain);
    let mut exec = CpuExecutor::new();
    let old_scores = Scorer::new(&mut exec, &old, 1000)
        .unwrap()
        .score(&val.x)
        .unwrap();
    assert_eq!(bits(&old_scores), bits(&with_field));
}

/// `train --dropout` saves the probability in config.json with the model, and
/// `predict` scores the same with the field removed (as written before the flag).
#[test]
fn train_with_dropout_then_predict() {
    let dir = temp_dir("dropout-cli");
    let data = fixture("credit_mixed.csv");
    let data = data.to_str().unwrap();
    let o = riskgrad(&[
        "train",
        "--data",
        data,
        "--device",
        "cpu",
        "--hidden",
        "8,4",
        "--dropout",
        "0.5",
        "--epochs",
        "2",
        "--batch",
        "8",
        "--members",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "train: {}", stderr(&o));
    assert_eq!(SavedModel::load(&dir).unwrap().model.dropout(), 0.5);
    let with_field = predict_cpu(&dir, data, &dir.join("with.csv"));

    let config = dir.join(CONFIG_FILE);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(json["model"]["dropout"], serde_json::json!(0.5));
    json["model"].as_object_mut().unwrap().remove("dropout");
    std::fs::write(&config, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    assert_eq!(SavedModel::load(&dir).unwrap().model.dropout(), 0.0);
    assert_eq!(
        predict_cpu(&dir, data, &dir.join("without.csv")),
        with_field
    );
}

#[test]
fn a_dropout_outside_zero_to_one_is_refused_with_the_flag_named() {
    for p in ["1", "1.5", "-0.1", "NaN"] {
        let o = riskgrad(&["train", "--device", "cpu", &format!("--dropout={p}")]);
        assert_eq!(o.status.code(), Some(2), "--dropout {p}: {}", stderr(&o));
        assert!(stderr(&o).contains("--dropout"), "{}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}
