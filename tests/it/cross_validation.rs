//! `train --cv K`: stratified folds reproducible from the seed, each fold's figures and
//! their mean and spread in metrics.json and the report, and `--ensemble`, whose score is
//! the mean of its fold models' scores and which eval, predict and explain read as any
//! model.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::temp_dir;
use riskgrad::data::{stratified_folds, PredictReader};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::model_io::{param_layout, SavedModel};
use riskgrad::nn::ModelSpec;
use riskgrad::scoring::Scorer;
use std::path::{Path, PathBuf};

/// A table whose default odds follow a known logistic rule of two of its columns, with
/// a text column and a few missing cells.
fn loans(dir: &Path, rows: usize) -> PathBuf {
    let mut rng = riskgrad::rng::Rng::new(77);
    let mut csv = String::from("income,debt,region,default\n");
    for i in 0..rows {
        let (income, debt) = (rng.normal(), rng.normal());
        let logit = -1.0 - 0.8 * income + 1.0 * debt;
        let y = rng.uniform() < 1.0 / (1.0 + (-logit).exp());
        let income = match i % 37 {
            5 => String::new(),
            _ => format!("{:.0}", 50_000.0 + 15_000.0 * income),
        };
        let region = ["north", "south", "east"][i % 3];
        csv.push_str(&format!(
            "{income},{:.0},{region},{}\n",
            8_000.0 + 3_000.0 * debt,
            y as u8
        ));
    }
    let path = dir.join("loans.csv");
    std::fs::write(&path, csv).unwrap();
    path
}

fn cv(data: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    let base = [
        "train",
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
        "--hidden",
        "8",
        "--out",
        out.to_str().unwrap(),
    ];
    riskgrad(&[&base[..], extra].concat())
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// `(row, fold, score)` per line of folds.csv.
fn folds_csv(dir: &Path) -> Vec<(usize, u32, f32)> {
    let text = std::fs::read_to_string(dir.join("folds.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("row,fold,score,challenger_score"));
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[0].parse().unwrap(),
                f[1].parse().unwrap(),
                f[2].parse().unwrap(),
            )
        })
        .collect()
}

#[test]
fn folds_are_stratified_reproducible_and_reported_with_mean_and_spread() {
    let dir = temp_dir("cv");
    let data = loans(&dir, 300);
    let out = dir.join("a");
    let run = cv(&data, &out, &["--cv", "3", "--seed", "4"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let text = stderr(&run);
    assert!(text.matches("fold ").count() >= 3, "{text}");
    assert!(text.contains("no model saved"), "{text}");
    assert!(!out.join("model.safetensors").exists());

    // Every row once, in the fold the library assigns for this seed.
    let rows = folds_csv(&out);
    assert_eq!(rows.len(), 300);
    let labels: Vec<f32> = std::fs::read_to_string(&data)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().parse().unwrap())
        .collect();
    let expected = stratified_folds(&labels, 3, 4);
    for (i, &(row, fold, score)) in rows.iter().enumerate() {
        assert_eq!((row, fold), (i, expected[i]));
        assert!((0.0..=1.0).contains(&score), "row {row}: score {score}");
    }
    // Stratified: each fold's defaults within one of its share.
    let positives = labels.iter().filter(|&&y| y > 0.5).count() as f64;
    for f in 0..3 {
        let held: Vec<usize> = (0..300).filter(|&i| expected[i] == f).collect();
        let pos = held.iter().filter(|&&i| labels[i] > 0.5).count() as f64;
        assert!((pos - positives * held.len() as f64 / 300.0).abs() <= 1.0);
    }

    // metrics.json: three folds, and the mean and spread are theirs.
    let m = json(&out.join("metrics.json"));
    let folds = m["folds"].as_array().unwrap();
    assert_eq!(folds.len(), 3);
    let aucs: Vec<f64> = folds.iter().map(|f| f["auc"].as_f64().unwrap()).collect();
    let mean = aucs.iter().sum::<f64>() / 3.0;
    let std = (aucs.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
    assert!((m["auc"]["mean"].as_f64().unwrap() - mean).abs() < 1e-12);
    assert!((m["auc"]["std"].as_f64().unwrap() - std).abs() < 1e-12);
    for key in ["ks", "log_loss", "challenger_auc"] {
        assert!(m[key]["mean"].as_f64().unwrap().is_finite(), "{key}");
    }
    // The signal is known: every fold ranks well above chance.
    assert!(aucs.iter().all(|&a| a > 0.6), "{aucs:?}");
    let report = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(report.contains("id=\"folds\"") && report.contains("mean ± std"));

    // The same seed gives the same folds and scores; another seed other folds.
    let again = dir.join("b");
    assert!(cv(&data, &again, &["--cv", "3", "--seed", "4"])
        .status
        .success());
    assert_eq!(folds_csv(&again), rows);
    let other = dir.join("c");
    assert!(cv(&data, &other, &["--cv", "3", "--seed", "5"])
        .status
        .success());
    assert_ne!(
        folds_csv(&other).iter().map(|r| r.1).collect::<Vec<_>>(),
        rows.iter().map(|r| r.1).collect::<Vec<_>>()
    );
}

#[test]
fn an_ensemble_scores_the_mean_of_its_fold_models_and_works_as_any_model() {
    let dir = temp_dir("ensemble");
    let data = loans(&dir, 240);
    let out = dir.join("model");
    // Two members a fold: the saved ensemble averages all six networks, flat.
    let run = cv(&data, &out, &["--cv", "3", "--ensemble", "--members", "2"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let saved = SavedModel::load(&out).unwrap();
    let ModelSpec::Ensemble { members, model } = &saved.model else {
        panic!("saved {:?}", saved.model)
    };
    assert_eq!(*members, 6);
    assert_eq!(saved.training.cv_folds, Some(3));
    assert_eq!(saved.training.members, 2);

    // Each member's weights, cut out of the ensemble's by parameter name.
    let (specs, layout) = param_layout(&saved.model).unwrap();
    let (member_specs, member_layout) = param_layout(model).unwrap();
    let member = |k: usize| {
        let mut params = vec![0.0f32; member_layout.total];
        for (j, spec) in member_specs.iter().enumerate() {
            let i = specs
                .iter()
                .position(|s| s.name == format!("member{k}.{}", spec.name))
                .unwrap();
            let from = layout.offsets[i];
            params[member_layout.offsets[j]..][..member_layout.lens[j]]
                .copy_from_slice(&saved.params[from..from + layout.lens[i]]);
        }
        SavedModel {
            model: (**model).clone(),
            params,
            ..saved.clone()
        }
    };
    let mut reader = PredictReader::open(&data, &saved.preprocessing).unwrap();
    let batch = reader.next_batch(1000).unwrap().unwrap();
    let rows = batch.ids.len();
    // An executor holds the plans of one model: one each.
    let score = |model: &SavedModel| {
        Scorer::new(&mut CpuExecutor::new(), model, rows)
            .unwrap()
            .score(&batch.x)
            .unwrap()
    };
    let ensemble = score(&saved);
    let fold_scores: Vec<Vec<f32>> = (0..6).map(|k| score(&member(k))).collect();
    for r in 0..rows {
        let mean = fold_scores.iter().map(|s| s[r] as f64).sum::<f64>() / 6.0;
        assert!(
            (ensemble[r] as f64 - mean).abs() < 1e-6,
            "row {r}: ensemble {} vs mean {mean}",
            ensemble[r]
        );
    }
    // The members differ (each trained on other rows), so the mean is not one of them.
    assert!((0..rows).any(|r| fold_scores[0][r] != fold_scores[1][r]));

    // predict gives the same scores; explain gives reasons; eval refuses to call rows
    // that trained the members "held out", and scores them when told to.
    let scores = dir.join("scores.csv");
    let m = out.to_str().unwrap();
    let d = data.to_str().unwrap();
    let p = riskgrad(&[
        "predict",
        "--model",
        m,
        "--data",
        d,
        "--device",
        "cpu",
        "--out",
        scores.to_str().unwrap(),
    ]);
    assert!(p.status.success(), "{}", stderr(&p));
    let predicted: Vec<f32> = std::fs::read_to_string(&scores)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    assert_eq!(predicted.len(), rows);
    for r in 0..rows {
        assert!((predicted[r] - ensemble[r]).abs() < 1e-6, "row {r}");
    }
    let e = riskgrad(&[
        "explain", "--model", m, "--data", d, "--device", "cpu", "--rows", "3",
    ]);
    assert!(e.status.success(), "{}", stderr(&e));
    let refused = riskgrad(&["eval", "--model", m, "--data", d, "--device", "cpu"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("cross-validation ensemble"));
    let all = riskgrad(&[
        "eval", "--model", m, "--data", d, "--device", "cpu", "--rows", "all",
    ]);
    assert!(all.status.success(), "{}", stderr(&all));
}

#[test]
fn cross_validation_flags_are_checked() {
    let dir = temp_dir("cv-flags");
    let data = loans(&dir, 60);
    for (flags, named) in [
        (&["--cv", "1"][..], "--cv"),
        (&["--cv", "1000"], "--cv"),
        (&["--cv", "3", "--model", "logistic"], "--model"),
        (&["--ensemble"], "--cv"),
        (&["--cv", "40"], "--cv"),
    ] {
        let out = dir.join("out");
        let run = cv(&data, &out, flags);
        assert_eq!(run.status.code(), Some(2), "{flags:?}: {}", stderr(&run));
        assert!(stderr(&run).contains(named), "{flags:?}: {}", stderr(&run));
        assert!(!out.exists(), "{flags:?} left {}", out.display());
    }
}

/// A cross-validation writes folds.csv, metrics.json and a report over its directory,
/// so it may neither replace the table it reads (a data file named folds.csv inside
/// `--out`) nor a trained model it would leave no model in place of (without
/// `--ensemble`): both refused as usage errors, with every byte left as it was.
#[test]
fn a_cross_validation_keeps_the_data_and_a_model_it_would_overwrite() {
    let dir = temp_dir("cv-keeps");
    let data = loans(&dir, 120);
    let out = dir.join("cv");
    std::fs::create_dir(&out).unwrap();
    let inside = out.join("folds.csv");
    std::fs::copy(&data, &inside).unwrap();
    let before = std::fs::read(&inside).unwrap();
    let run = cv(&inside, &out, &["--cv", "2", "--epochs", "1"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stderr(&run).contains("--out") && stderr(&run).contains("the data this run trains on"),
        "{}",
        stderr(&run)
    );
    assert_eq!(std::fs::read(&inside).unwrap(), before);

    let model = dir.join("model");
    let trained = cv(&data, &model, &["--epochs", "1", "--members", "1"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let run = cv(&data, &model, &["--cv", "2", "--epochs", "1"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(stderr(&run).contains("--ensemble"), "{}", stderr(&run));
    assert_eq!(
        std::fs::read(model.join("model.safetensors")).unwrap(),
        weights
    );
    assert!(!model.join("folds.csv").exists());
    // With --ensemble the folds' model takes the trained one's place.
    let run = cv(&data, &model, &["--cv", "2", "--epochs", "1", "--ensemble"]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(model.join("folds.csv").exists() && model.join("model.safetensors").exists());
}
