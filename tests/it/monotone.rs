//! Monotone constraints (`nn::monotone`, `train --monotone`): on random inputs and random
//! weights, raising a constrained feature never moves the score against its constraint,
//! on both executors; the same weights without the constraint do move it (so the check
//! can fail); the gradients against finite differences; and through the CLI, a model
//! trained against a constraint the data contradicts still obeys it.

use crate::common::*;
use crate::lifecycle_common::temp_dir;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::Act;
use riskgrad::model_io::{param_layout, SavedModel};
use riskgrad::nn::monotone::{Direction, MonotoneConstraint};
use riskgrad::nn::ModelSpec;
use riskgrad::rng::Rng;
use riskgrad::scoring::Scorer;

const FEATURES: usize = 7;
const ROWS: usize = 37;

/// The cases: hidden sizes, activation, and the sign of each of the 7 features.
fn cases() -> Vec<(Vec<usize>, Act, [i8; FEATURES])> {
    vec![
        (vec![5, 4], Act::Relu, [1, 0, -1, -1, 0, 1, 1]),
        (vec![7], Act::Tanh, [0, 0, 0, 1, 0, 0, -1]),
        (vec![3, 3, 2], Act::LeakyRelu, [-1; FEATURES]),
        (vec![6], Act::Sigmoid, [1, 1, 1, 0, 0, 0, 0]),
        (vec![1], Act::Relu, [1, -1, 1, -1, 1, -1, 0]),
    ]
}

fn spec(hidden: &[usize], act: Act, signs: &[i8]) -> ModelSpec {
    ModelSpec::mlp(FEATURES, hidden)
        .unwrap()
        .with_activation(act)
        .with_monotone(signs.to_vec())
        .unwrap()
}

fn scores(exec: &mut dyn Executor, model: &ModelSpec, params: &[f32], x: &[f32]) -> Vec<f32> {
    assert_eq!(x.len(), ROWS * model.inputs());
    Scorer::for_weights(exec, model, params, ROWS)
        .unwrap()
        .score(x)
        .unwrap()
}

/// For each constrained feature, each row raised by a random amount: the largest move
/// against the constraint and the largest move along it, over all features and rows.
fn moves(
    exec: &mut dyn Executor,
    model: &ModelSpec,
    signs: &[i8],
    params: &[f32],
    rng: &mut Rng,
) -> (f32, f32) {
    let features = model.inputs();
    let x: Vec<f32> = (0..ROWS * features)
        .map(|_| rng.range(-3.0, 3.0) as f32)
        .collect();
    let base = scores(exec, model, params, &x);
    let (mut against, mut along) = (0.0f32, 0.0f32);
    for (j, &sign) in signs.iter().enumerate() {
        if sign == 0 {
            continue;
        }
        let mut raised = x.clone();
        for row in raised.chunks_exact_mut(features) {
            row[j] += rng.range(0.01, 4.0) as f32;
        }
        for (after, before) in scores(exec, model, params, &raised).iter().zip(&base) {
            let moved = (after - before) * sign as f32;
            against = against.max(-moved);
            along = along.max(moved);
        }
    }
    (against, along)
}

/// Random weights in ±2 (wider than any initialisation, so the test does not lean on
/// small weights) for `model`.
fn random_params(model: &ModelSpec, rng: &mut Rng) -> Vec<f32> {
    let (_, layout) = param_layout(model).unwrap();
    (0..layout.total)
        .map(|_| rng.range(-2.0, 2.0) as f32)
        .collect()
}

/// Checks every case on a fresh executor from `new_exec` (an executor holds plans of one
/// model).
fn check_monotone(mut new_exec: impl FnMut() -> Box<dyn Executor>, what: &str) {
    let mut rng = rng_for(what);
    for (hidden, act, signs) in cases() {
        let model = spec(&hidden, act, &signs);
        let mut exec = new_exec();
        let mut moved = 0.0f32;
        for trial in 0..4 {
            let params = random_params(&model, &mut rng);
            let (against, along) = moves(exec.as_mut(), &model, &signs, &params, &mut rng);
            assert!(
                against <= 1e-6,
                "{what}: {hidden:?} {act} signs {signs:?}, trial {trial}: a constrained feature moved the score against its constraint by {against}"
            );
            moved = moved.max(along);
        }
        // Weights of ±2 through a deep narrow net may saturate a trial's sigmoid; over
        // four trials some score must move, or the check would pass on a flat model.
        assert!(
            moved > 1e-3,
            "{what}: {hidden:?} {act} signs {signs:?}: no score moved ({moved})"
        );
    }
}

#[test]
fn constrained_features_never_move_the_score_against_their_sign_on_the_cpu() {
    check_monotone(|| Box::new(CpuExecutor::new()), "monotone cpu");
}

#[test]
fn constrained_features_never_move_the_score_against_their_sign_on_the_gpu() {
    let (ctx, _turn) = crate::gpu_or_skip!();
    check_monotone(
        || {
            let mut gpu = GpuExecutor::new(ctx.clone());
            gpu.set_poison(true);
            Box::new(gpu)
        },
        "monotone gpu",
    );
}

/// The check above can fail: the same weights in a plain MLP move some score against
/// the signs.
#[test]
fn without_the_constraint_the_same_weights_move_scores_both_ways() {
    let mut rng = rng_for("monotone control");
    let mut cpu = CpuExecutor::new();
    let (hidden, act, signs) = cases().remove(0);
    let constrained = spec(&hidden, act, &signs);
    let plain = ModelSpec::mlp(FEATURES, &hidden)
        .unwrap()
        .with_activation(act);
    assert_eq!(
        param_layout(&plain).unwrap().1.total,
        param_layout(&constrained).unwrap().1.total,
        "the constraint changes no parameter"
    );
    let worst = (0..4)
        .map(|_| {
            let params = random_params(&plain, &mut rng);
            moves(&mut cpu, &plain, &signs, &params, &mut rng).0
        })
        .fold(0.0f32, f32::max);
    assert!(
        worst > 1e-3,
        "an unconstrained MLP never moved against the signs ({worst})"
    );
}

#[test]
fn gpu_scores_of_a_monotone_mlp_match_the_cpu() {
    let (ctx, _turn) = crate::gpu_or_skip!();
    let mut rng = rng_for("monotone gpu vs cpu");
    for (hidden, act, signs) in cases() {
        let mut gpu = GpuExecutor::new(ctx.clone());
        gpu.set_poison(true);
        let mut cpu = CpuExecutor::new();
        let model = spec(&hidden, act, &signs);
        let params = random_params(&model, &mut rng);
        let x: Vec<f32> = (0..ROWS * FEATURES)
            .map(|_| rng.range(-3.0, 3.0) as f32)
            .collect();
        assert_matches_cpu(
            &format!("monotone {hidden:?} {act}"),
            &scores(&mut gpu, &model, &params, &x),
            &scores(&mut cpu, &model, &params, &x),
        );
    }
}

#[test]
fn monotone_mlp_gradients_match_finite_differences() {
    for (k, (hidden, act, signs)) in cases().into_iter().enumerate() {
        let model = spec(&hidden, act, &signs);
        check_op_gradients(
            &format!("monotone mlp case {k}"),
            ROWS,
            |g| {
                let x = g.input("x", &[5, FEATURES]).unwrap();
                vec![model.build(g, x).unwrap()]
            },
            &[None],
        );
    }
}

#[test]
fn constraint_text_parses_and_refuses_what_it_should() {
    let c: MonotoneConstraint = "PAY_0:+1".parse().unwrap();
    assert_eq!(
        (c.column.as_str(), c.direction),
        ("PAY_0", Direction::Increasing)
    );
    let c: MonotoneConstraint = "a:b:-1".parse().unwrap();
    assert_eq!(
        (c.column.as_str(), c.direction),
        ("a:b", Direction::Decreasing)
    );
    assert_eq!(c.to_string(), "a:b:-1");
    for bad in ["PAY_0", "PAY_0:2", ":+1", "PAY_0:"] {
        assert!(bad.parse::<MonotoneConstraint>().is_err(), "{bad:?} parsed");
    }
    let model = ModelSpec::mlp(3, &[4]).unwrap();
    assert!(
        model.clone().with_monotone(vec![1, 0]).is_err(),
        "wrong length"
    );
    assert!(
        model.clone().with_monotone(vec![2, 0, 0]).is_err(),
        "sign 2"
    );
    assert!(model
        .clone()
        .with_activation(Act::Gelu)
        .with_monotone(vec![1, 0, 0])
        .is_err());
    assert!(model
        .with_monotone(vec![0, 0, 0])
        .unwrap()
        .monotone()
        .is_empty());
}

/// A table where the default rate rises steeply with `x` (and `z` is noise), with some
/// `x` cells empty.
fn rising_table(dir: &std::path::Path) -> std::path::PathBuf {
    let mut rng = Rng::new(41);
    let mut csv = String::from("x,z,segment,default\n");
    for i in 0..600 {
        let x = rng.range(-2.0, 2.0);
        let z = rng.range(-1.0, 1.0);
        let p = 1.0 / (1.0 + (-3.0 * x).exp());
        let y = (rng.range(0.0, 1.0) < p) as u8;
        let cell = if i % 23 == 0 {
            String::new()
        } else {
            format!("{x:.4}")
        };
        let segment = ["a", "b", "c"][i % 3];
        csv.push_str(&format!("{cell},{z:.4},{segment},{y}\n"));
    }
    let path = dir.join("rising.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

/// Scores of rows with `x` on a grid from −4 to 4 (beyond the training range on both
/// sides) and the other columns fixed, for each of a few fixed `z` and segments.
fn grid_scores(dir: &std::path::Path, model: &std::path::Path) -> Vec<Vec<f64>> {
    let mut out = Vec::new();
    for (z, segment) in [(-0.9, "a"), (0.0, "b"), (0.7, "c")] {
        let mut csv = String::from("x,z,segment\n");
        for k in 0..=80 {
            csv.push_str(&format!("{},{z},{segment}\n", -4.0 + 0.1 * k as f64));
        }
        let grid = dir.join("grid.csv");
        std::fs::write(&grid, csv).unwrap();
        let scores = predict_cpu(model, grid.to_str().unwrap(), &dir.join("grid_scores.csv"));
        out.push(
            scores
                .lines()
                .skip(1)
                .map(|l| l.rsplit(',').next().unwrap().parse::<f64>().unwrap())
                .collect(),
        );
    }
    out
}

#[test]
fn a_model_trained_against_the_data_still_obeys_its_constraint() {
    let dir = temp_dir("monotone_contradicted");
    let data = rising_table(&dir);
    for (constraint, sign) in [("x:-1", -1.0), ("x:+1", 1.0)] {
        let model = dir.join(format!("model{sign}"));
        let o = train_small(
            &data,
            &model,
            &["--monotone", constraint, "--epochs", "30", "--lr", "0.01"],
        );
        assert!(o.status.success(), "{constraint}: {}", stderr(&o));
        let saved = SavedModel::load(&model).unwrap();
        assert_eq!(
            saved.monotone_constraints(),
            vec![constraint.parse::<MonotoneConstraint>().unwrap()],
            "the constraint is saved with the model"
        );
        for row in grid_scores(&dir, &model) {
            assert!(row.iter().all(|p| p.is_finite()));
            for w in row.windows(2) {
                assert!(
                    (w[1] - w[0]) * sign >= -1e-6,
                    "{constraint}: the score moved against the constraint: {} then {}",
                    w[0],
                    w[1]
                );
            }
            let span = (row[row.len() - 1] - row[0]) * sign;
            if sign > 0.0 {
                assert!(
                    span > 0.2,
                    "x:+1 agrees with the data and should rise steeply: {span}"
                );
            }
        }
    }
}

#[test]
fn monotone_flag_errors_name_the_flag() {
    let dir = temp_dir("monotone_errors");
    let data = rising_table(&dir);
    let out = dir.join("model");
    for (flags, says) in [
        (vec!["--monotone", "segment:+1"], "categorical"),
        (
            vec!["--monotone", "nope:+1"],
            "not one of the model's input columns",
        ),
        (vec!["--monotone", "default:+1"], "it is the target"),
        (vec!["--monotone", "x:+1,x:-1"], "constrained twice"),
        (vec!["--monotone", "x:+2"], "is not +1"),
        (
            vec!["--monotone", "x:+1", "--activation", "gelu"],
            "non-decreasing activation",
        ),
        (
            vec!["--monotone", "x:+1", "--model", "logistic"],
            "not to --model logistic",
        ),
    ] {
        let o = train_small(&data, &out, &flags);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            err.contains("--monotone") && err.contains(says),
            "{flags:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{flags:?}: {err}");
    }
    assert!(!out.join("config.json").exists());
}

/// The sequence models, monotone in their static features (3 of them, before a history
/// of 4 steps of 2 channels): signs for the statics, the history free.
fn sequence_cases() -> Vec<(ModelSpec, Vec<i8>)> {
    use riskgrad::nn::{CnnLayers, RecurrentSpec};
    let spec = RecurrentSpec::new(3, 2, 4, &[5], false, &[4]).unwrap();
    let bare = RecurrentSpec::new(3, 2, 4, &[3], true, &[]).unwrap();
    let cnn = ModelSpec::cnn(
        3,
        2,
        4,
        CnnLayers {
            conv: vec![3],
            kernel: 3,
            pool: 1,
            dense: vec![4],
        },
    )
    .unwrap();
    let mut signs = vec![1i8, 0, -1];
    signs.resize(11, 0);
    [
        ModelSpec::lstm(spec.clone()),
        ModelSpec::gru(spec),
        ModelSpec::gru(bare),
        cnn,
    ]
    .into_iter()
    .map(|m| (m.with_monotone(signs.clone()).unwrap(), signs.clone()))
    .collect()
}

#[test]
fn sequence_models_never_move_the_score_against_a_static_constraint() {
    let mut rng = rng_for("monotone sequence models");
    for (model, signs) in sequence_cases() {
        assert_eq!(model.monotone(), signs);
        let mut cpu = CpuExecutor::new();
        let mut moved = 0.0f32;
        for trial in 0..4 {
            let params = random_params(&model, &mut rng);
            let (against, along) = moves(&mut cpu, &model, &signs, &params, &mut rng);
            assert!(
                against <= 1e-6,
                "{model:?} trial {trial}: moved against by {against}"
            );
            moved = moved.max(along);
        }
        assert!(moved > 1e-3, "{model:?}: no score moved ({moved})");
    }
    // A history column cannot be constrained.
    let spec = riskgrad::nn::RecurrentSpec::new(3, 2, 4, &[5], false, &[]).unwrap();
    let mut signs = vec![0i8; 11];
    signs[5] = 1;
    let err = ModelSpec::lstm(spec).with_monotone(signs).unwrap_err();
    assert!(err.to_string().contains("static features"), "{err}");
}

#[test]
fn gpu_scores_of_monotone_sequence_models_match_the_cpu() {
    let (ctx, _turn) = crate::gpu_or_skip!();
    let mut rng = rng_for("monotone sequence gpu vs cpu");
    for (model, _) in sequence_cases() {
        let params = random_params(&model, &mut rng);
        let x: Vec<f32> = (0..ROWS * model.inputs())
            .map(|_| rng.range(-3.0, 3.0) as f32)
            .collect();
        let mut gpu = GpuExecutor::new(ctx.clone());
        gpu.set_poison(true);
        assert_matches_cpu(
            &format!("{model:?}"),
            &scores(&mut gpu, &model, &params, &x),
            &scores(&mut CpuExecutor::new(), &model, &params, &x),
        );
    }
}

#[test]
fn sequence_model_gradients_match_finite_differences() {
    for (k, (model, _)) in sequence_cases().into_iter().enumerate() {
        check_op_gradients(
            &format!("monotone sequence case {k}"),
            ROWS,
            |g| {
                let x = g.input("x", &[3, model.inputs()]).unwrap();
                vec![model.build(g, x).unwrap()]
            },
            &[None],
        );
    }
}

#[test]
fn a_sequence_model_takes_constraints_on_its_statics_through_the_cli() {
    let dir = temp_dir("monotone_sequence_cli");
    let out = dir.join("gru");
    let run = |extra: &[&str]| {
        let base = [
            "train", "--model", "gru", "--device", "cpu", "--hidden", "4", "--epochs", "1", "--out",
        ];
        riskgrad(&[&base[..], &[out.to_str().unwrap()], extra].concat())
    };
    let o = run(&["--monotone", "LIMIT_BAL:-1,AGE:+1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let saved = SavedModel::load(&out).unwrap();
    let names: Vec<String> = saved
        .monotone_constraints()
        .iter()
        .map(|c| c.to_string())
        .collect();
    assert_eq!(names, ["LIMIT_BAL:-1", "AGE:+1"]);
    let o = run(&["--monotone", "PAY_AMT1:-1"]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--monotone") && err.contains("its sequence history"),
        "{err}"
    );
}
