//! The periodic embedding (`nn::periodic`, `train --numeric-encoding periodic`): its
//! gradients against finite differences, the GPU's scores against the CPU's, its
//! starting frequencies and phases, and through the CLI a saved model that scores the
//! same after loading, with the combinations it cannot serve refused by flag.

use crate::common::*;
use crate::lifecycle_common::temp_dir;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::Graph;
use riskgrad::model_io::{param_layout, SavedModel};
use riskgrad::nn::periodic::PeriodicEmbedding;
use riskgrad::nn::ModelSpec;
use riskgrad::rng::Rng;
use riskgrad::scoring::Scorer;

const FEATURES: usize = 6;
const ROWS: usize = 29;

/// An MLP over 6 features whose features 0, 2 and 3 are embedded (two runs, and passed
/// features between and after them), with small sizes so finite differences stay cheap.
fn model(hidden: &[usize]) -> ModelSpec {
    let mut embedding = PeriodicEmbedding::new(vec![0, 2, 3], FEATURES).unwrap();
    embedding.frequencies = 3;
    embedding.width = 2;
    ModelSpec::mlp(FEATURES, hidden)
        .unwrap()
        .with_periodic(embedding)
        .unwrap()
}

#[test]
fn periodic_mlp_gradients_match_finite_differences() {
    for hidden in [vec![4], vec![3, 2]] {
        let model = model(&hidden);
        check_op_gradients(
            &format!("periodic mlp {hidden:?}"),
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
fn gpu_scores_of_a_periodic_mlp_match_the_cpu() {
    let (ctx, _turn) = crate::gpu_or_skip!();
    let mut rng = rng_for("periodic gpu vs cpu");
    let model = model(&[5, 3]);
    let (_, layout) = param_layout(&model).unwrap();
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.range(-1.5, 1.5) as f32)
        .collect();
    let x: Vec<f32> = (0..ROWS * FEATURES)
        .map(|_| rng.range(-3.0, 3.0) as f32)
        .collect();
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let mut cpu = CpuExecutor::new();
    let score = |exec: &mut dyn riskgrad::engine::exec::Executor| {
        Scorer::for_weights(exec, &model, &params, ROWS)
            .unwrap()
            .score(&x)
            .unwrap()
    };
    assert_matches_cpu("periodic mlp", &score(&mut gpu), &score(&mut cpu));
}

/// At the start, each feature's sines and cosines share their frequencies: the second
/// half of a row of frequencies repeats the first, the phases are 0 then π/2, and the
/// frequencies are spread about as σ·2π says.
#[test]
fn frequencies_and_phases_start_as_sines_and_cosines() {
    let model = model(&[4]);
    let embedding = model.periodic().unwrap().clone();
    let mut g = Graph::new();
    let x = g.input("x", &[ROWS, FEATURES]).unwrap();
    model.build(&mut g, x).unwrap();
    let (_, layout) = param_layout(&model).unwrap();
    let flat = model.initial_params(&g, &layout, 7).unwrap();
    let values = |name: &str| {
        let i = g.params.iter().position(|p| p.name == name).unwrap();
        flat[layout.offsets[i]..layout.offsets[i] + layout.lens[i]].to_vec()
    };
    let k = embedding.frequencies;
    let frequency = values("periodic.frequency");
    let phase = values("periodic.phase");
    assert_eq!(frequency.len(), 3 * 2 * k);
    for (row, phases) in frequency.chunks(2 * k).zip(phase.chunks(2 * k)) {
        assert_eq!(row[..k], row[k..], "cosines share the sines' frequencies");
        assert!(phases[..k].iter().all(|&p| p == 0.0), "{phases:?}");
        assert!(
            phases[k..]
                .iter()
                .all(|&p| p == std::f32::consts::FRAC_PI_2),
            "{phases:?}"
        );
    }
    let bound = 3.0 * embedding.sigma * std::f32::consts::TAU;
    assert!(frequency.iter().all(|c| c.abs() <= bound), "{frequency:?}");
    assert!(frequency.iter().any(|&c| c != 0.0), "{frequency:?}");
    // Another seed draws other frequencies.
    assert_ne!(model.initial_params(&g, &layout, 8).unwrap(), flat);
}

/// `train --numeric-encoding periodic` saves the embedding; the saved model scores the
/// training file as the library's scorer does with the saved weights, and `eval` and
/// `explain` run on it.
#[test]
fn train_periodic_then_predict_eval_explain() {
    let dir = temp_dir("periodic-cli");
    let data = fixture("credit_mixed.csv");
    let o = train_small(
        &data,
        &dir,
        &[
            "--numeric-encoding",
            "periodic",
            "--epochs",
            "2",
            "--batch",
            "8",
        ],
    );
    assert!(o.status.success(), "train: {}", stderr(&o));
    let saved = SavedModel::load(&dir).unwrap();
    let embedding = saved.model.periodic().expect("the embedding is saved");
    // duration, amount and age are the numeric columns.
    assert_eq!(embedding.features.len(), 3, "{embedding:?}");
    let card = std::fs::read_to_string(dir.join("model_card.md")).unwrap();
    assert!(
        card.contains("periodic embedding of 3 numeric features"),
        "{card}"
    );

    let data = data.to_str().unwrap();
    let scores = predict_cpu(&dir, data, &dir.join("scores.csv"));
    assert_eq!(scores.lines().count(), 41, "a header and a line per row");
    for command in ["eval", "explain"] {
        let o = riskgrad(&[
            command,
            "--model",
            dir.to_str().unwrap(),
            "--data",
            data,
            "--device",
            "cpu",
        ]);
        assert!(o.status.success(), "{command}: {}", stderr(&o));
    }

    // Without the embedding in config.json the same weights do not load as this model.
    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    // The default saves three members: the embedding is in the ensemble's model.
    assert_eq!(json["model"]["kind"], "ensemble");
    json["model"]["model"]
        .as_object_mut()
        .unwrap()
        .remove("periodic")
        .expect("config.json records the embedding");
    std::fs::write(&config, json.to_string()).unwrap();
    assert!(
        SavedModel::load(&dir).is_err(),
        "weights and model disagree"
    );
}

#[test]
fn periodic_refuses_what_it_cannot_serve_by_flag() {
    let dir = temp_dir("periodic-refusals");
    let data = fixture("credit_mixed.csv");
    let out = dir.join("model");
    for (flags, says) in [
        (
            vec!["--model", "lstm", "--sequence", "duration,amount"],
            "sequence model",
        ),
        (
            vec!["--monotone", "age:+1"],
            "not monotone in their column: with monotone constraints use the standard or ple numeric encoding",
        ),
    ] {
        let flags = [&["--numeric-encoding", "periodic"][..], &flags].concat();
        let o = train_small(&data, &out, &flags);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            (err.contains("--numeric-encoding") || err.contains("--monotone")) && err.contains(says),
            "{flags:?}: {err}"
        );
        assert!(!err.contains("panicked"), "{flags:?}: {err}");
    }
    assert!(!out.join("config.json").exists());
}

/// A random check that the scorer's input really reaches the embedding: moving one
/// embedded feature moves some score.
#[test]
fn embedded_features_move_the_score() {
    let model = model(&[4]);
    let mut rng = Rng::new(11);
    let (_, layout) = param_layout(&model).unwrap();
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.range(-1.0, 1.0) as f32)
        .collect();
    let x: Vec<f32> = (0..ROWS * FEATURES)
        .map(|_| rng.range(-2.0, 2.0) as f32)
        .collect();
    let mut cpu = CpuExecutor::new();
    let mut scorer = Scorer::for_weights(&mut cpu, &model, &params, ROWS).unwrap();
    let before = scorer.score(&x).unwrap();
    for feature in [0, 2, 3] {
        let mut moved = x.clone();
        for row in moved.chunks_mut(FEATURES) {
            row[feature] += 0.5;
        }
        assert_ne!(scorer.score(&moved).unwrap(), before, "feature {feature}");
    }
}
