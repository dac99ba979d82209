//! `eval` finds the rows a model held out in training by their content (the fingerprints
//! saved in config.json), not by their position: reordering the training file or adding
//! a row to it scores the same held-out rows, and a file that holds none of them is never
//! said to be validation rows.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::temp_dir;
use riskgrad::rng::Rng;
use std::path::Path;

/// A header and `n` random rows of a small credit-like table whose label depends on the
/// features with noise, so that a model scores its training rows better than others.
pub fn rows(seed: u64, n: usize) -> (String, Vec<String>) {
    let mut rng = Rng::new(seed);
    let rows = (0..n)
        .map(|_| {
            let (a, b, c) = (rng.normal(), rng.normal(), rng.uniform());
            let cat = ["north", "south", "east"][rng.below(3)];
            let y = (a + 0.5 * b + rng.normal() > 0.3) as u8;
            format!("{a:.5},{b:.5},{c:.5},{cat},{y}")
        })
        .collect();
    ("a,b,c,region,default\n".to_string(), rows)
}

pub fn write(path: &Path, header: &str, rows: &[String]) {
    std::fs::write(path, format!("{header}{}\n", rows.join("\n"))).unwrap();
}

fn eval(model: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    riskgrad(
        &[
            &[
                "eval",
                "--model",
                model.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--device",
                "cpu",
                "--json",
                "--bootstrap",
                "10",
            ],
            extra,
        ]
        .concat(),
    )
}

/// A logistic model of `csv` (fast: solved in one go) into `model`, with `extra` flags.
fn train_logistic(csv: &Path, model: &Path, extra: &[&str]) {
    let (csv, model) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let args = [
        &[
            "train", "--device", "cpu", "--data", csv, "--model", "logistic",
        ][..],
        extra,
        &["--out", model],
    ]
    .concat();
    let trained = riskgrad(&args);
    assert!(trained.status.success(), "{}", stderr(&trained));
}

/// `eval`'s text report of `model` on `data`, with `extra` flags; the run succeeds.
fn eval_report(model: &Path, data: &Path, extra: &[&str]) -> String {
    let (model, data) = (model.to_str().unwrap(), data.to_str().unwrap());
    let args = [
        &["eval", "--model", model, "--data", data, "--device", "cpu"][..],
        &["--bootstrap", "10"],
        extra,
    ]
    .concat();
    let out = riskgrad(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn eval_finds_the_held_out_rows_by_content() {
    let dir = temp_dir("eval-content");
    let (csv, model) = (dir.join("train.csv"), dir.join("model"));
    let (header, original) = rows(11, 500);
    write(&csv, &header, &original);
    let trained = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        csv.to_str().unwrap(),
        "--hidden",
        "32",
        "--epochs",
        "8",
        "--batch",
        "16",
        "--seed",
        "3",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let recorded: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("metrics.json")).unwrap()).unwrap();
    let want_auc = recorded["validation"]["auc"].as_f64().unwrap();
    let same_rows = |ev: &serde_json::Value, what: &str| {
        assert_eq!(ev["rows_scored"], "validation", "{what}");
        assert_eq!(ev["validation_rows_verified"], true, "{what}");
        assert_eq!(ev["rows"], 100, "{what}");
        assert_eq!(
            ev["positives"], recorded["validation"]["positives"],
            "{what}"
        );
        let auc = ev["auc"].as_f64().unwrap();
        assert!(
            (auc - want_auc).abs() < 1e-6,
            "{what}: AUC {auc}, training {want_auc}"
        );
    };
    let unchanged = json(&eval(&model, &csv, &[]));
    same_rows(&unchanged, "the training file");
    assert_eq!(unchanged["validation_rows_not_found"], 0);
    // Other rows score otherwise: the test can tell them apart.
    let all = json(&eval(&model, &csv, &["--rows", "all"]));
    assert_eq!(
        (all["rows_scored"].as_str(), all["rows"].as_u64()),
        (Some("all"), Some(500))
    );
    assert!(
        (all["auc"].as_f64().unwrap() - want_auc).abs() > 1e-4,
        "{all} vs {want_auc}"
    );

    // The same file with its rows reordered, then with a row added.
    let mut reordered = original.clone();
    reordered.reverse();
    reordered.swap(3, 250);
    write(&csv, &header, &reordered);
    same_rows(&json(&eval(&model, &csv, &[])), "rows reordered");
    reordered.insert(7, "0.1,0.2,0.3,north,1".into());
    write(&csv, &header, &reordered);
    same_rows(&json(&eval(&model, &csv, &[])), "a row added");

    // A row held out changed: the others are scored, and the missing one is counted.
    let mut changed = original.clone();
    let val_pos = (0..50)
        .find(|&i| {
            let mut fewer = original.clone();
            fewer.remove(i);
            write(&csv, &header, &fewer);
            json(&eval(&model, &csv, &[]))["validation_rows_not_found"] == 1
        })
        .unwrap();
    let mut cells: Vec<&str> = original[val_pos].split(',').collect();
    cells[2] = "0.77777";
    changed[val_pos] = cells.join(",");
    write(&csv, &header, &changed);
    let ev = json(&eval(&model, &csv, &[]));
    assert_eq!(
        (
            ev["rows"].as_u64(),
            ev["validation_rows_not_found"].as_u64()
        ),
        (Some(99), Some(1))
    );

    // Other rows at the training file's path: not the training file, no held-out claim.
    let (_, other) = rows(12, 500);
    write(&csv, &header, &other);
    let refused = eval(&model, &csv, &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    let err = stderr(&refused);
    assert!(
        err.contains("no validation rows") && err.contains("--rows all"),
        "{err}"
    );
    let refused = eval(&model, &csv, &["--rows", "validation"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert_eq!(
        json(&eval(&model, &csv, &["--rows", "all"]))["rows_scored"],
        "all"
    );
    // ... and at another path: all its rows, with a note that none was held out.
    let elsewhere = dir.join("other.csv");
    write(&elsewhere, &header, &other);
    let out = eval(&model, &elsewhere, &[]);
    let ev = json(&out);
    assert_eq!(
        (ev["rows_scored"].as_str(), ev["rows"].as_u64()),
        (Some("all"), Some(500))
    );
    assert!(ev.get("validation_rows_verified").is_none(), "{ev}");
    assert!(
        stderr(&out).contains("none of them is one of the 100 rows held out"),
        "{}",
        stderr(&out)
    );
    let text = riskgrad(&[
        "eval",
        "--model",
        model.to_str().unwrap(),
        "--data",
        elsewhere.to_str().unwrap(),
        "--device",
        "cpu",
        "--bootstrap",
        "10",
    ]);
    assert!(text.status.success(), "{}", stderr(&text));
    assert!(!String::from_utf8_lossy(&text.stdout).contains("held out"));

    // A model saved before the fingerprints: the rows by position, said to be unverified.
    write(&csv, &header, &original);
    let config = model.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
    assert!(cfg["training"]["val_rows"].as_str().unwrap().len() == 16 * 100);
    cfg["training"].as_object_mut().unwrap().remove("val_rows");
    std::fs::write(&config, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
    let out = eval(&model, &csv, &[]);
    let ev = json(&out);
    assert_eq!(ev["validation_rows_verified"], false);
    assert!((ev["auc"].as_f64().unwrap() - want_auc).abs() < 1e-6);
    assert!(stderr(&out).contains("cannot verify"), "{}", stderr(&out));
}

/// A file whose rows have no target value is a data error naming the file (exit 3), as
/// an empty file is to explain and monitor; it used to be called a bad `--data` flag.
#[test]
fn a_file_without_target_values_is_a_data_error() {
    let dir = temp_dir("eval-unlabelled");
    let (csv, model) = (dir.join("train.csv"), dir.join("model"));
    let (header, labelled) = rows(5, 200);
    write(&csv, &header, &labelled);
    let trained = riskgrad(&[
        "train",
        "--data",
        csv.to_str().unwrap(),
        "--model",
        "logistic",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    let unlabelled: Vec<String> = labelled[..20]
        .iter()
        .map(|r| format!("{},", &r[..r.rfind(',').unwrap()]))
        .collect();
    let data = dir.join("unlabelled.csv");
    write(&data, &header, &unlabelled);
    let out = eval(&model, &data, &["--rows", "all"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("unlabelled.csv") && text.contains("no rows with a target value"),
        "{text}"
    );
    assert!(!text.contains("--data"), "{text}");
}

/// Scores that rank backwards (a target coded the other way round) give an AUC below 0.5
/// beside a KS as high as ever: the report says why, and says nothing when they do not.
#[test]
fn an_auc_below_one_half_is_explained_beside_its_ks() {
    let dir = temp_dir("eval-backwards");
    let (csv, flipped, model) = (
        dir.join("train.csv"),
        dir.join("flipped.csv"),
        dir.join("model"),
    );
    let (header, original) = rows(17, 400);
    write(&csv, &header, &original);
    let backwards: Vec<String> = original
        .iter()
        .map(|row| {
            let (rest, y) = row.rsplit_once(',').unwrap();
            format!("{rest},{}", if y == "1" { 0 } else { 1 })
        })
        .collect();
    write(&flipped, &header, &backwards);
    train_logistic(&csv, &model, &[]);
    let report = |data: &Path| eval_report(&model, data, &[]);
    let note = "note: AUC below 0.5: the scores rank the defaults lower than the others";
    assert!(report(&flipped).contains(note), "{}", report(&flipped));
    assert!(!report(&csv).contains(note), "{}", report(&csv));
}

/// A model of two columns whose names differ only in case (`a` and `A`), scoring a file
/// that has only `A`: the missing `a` is an error naming it (exit 3), never `A` read for
/// both (which scored at AUC 0.49 with exit 0); the whole file scores.
#[test]
fn a_column_named_again_in_other_case_never_serves_two_model_columns() {
    let dir = temp_dir("eval-case-twins");
    let (csv, only_upper, model) = (dir.join("t.csv"), dir.join("u.csv"), dir.join("model"));
    let (_, original) = rows(23, 300);
    // Each row's cells and its `A`: -3 times `b`, so `A` read as `a` is another model.
    fn twin(row: &str) -> (Vec<&str>, String) {
        let cells: Vec<&str> = row.split(',').collect();
        let upper: f64 = cells[1].parse::<f64>().unwrap() * -3.0;
        (cells, format!("{upper:.5}"))
    }
    let both: Vec<String> = original
        .iter()
        .map(|r| {
            let (c, upper) = twin(r);
            format!("{},{},{upper}", c[..4].join(","), c[4])
        })
        .collect();
    write(&csv, "a,b,c,region,default,A\n", &both);
    let upper_only: Vec<String> = original
        .iter()
        .map(|r| {
            let (c, upper) = twin(r);
            format!("{},{},{},{},{upper}", c[1], c[2], c[3], c[4])
        })
        .collect();
    write(&only_upper, "b,c,region,default,A\n", &upper_only);
    train_logistic(&csv, &model, &["--target", "default"]);
    let scored = riskgrad(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--data",
        only_upper.to_str().unwrap(),
        "--out",
        dir.join("s.csv").to_str().unwrap(),
    ]);
    assert_eq!(scored.status.code(), Some(3), "{}", stderr(&scored));
    assert!(
        stderr(&scored).contains("the model needs columns [\"a\"]"),
        "{}",
        stderr(&scored)
    );
    let whole = riskgrad(&[
        "predict",
        "--device",
        "cpu",
        "--model",
        model.to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--out",
        dir.join("s.csv").to_str().unwrap(),
    ]);
    assert!(whole.status.success(), "{}", stderr(&whole));
}

/// Rows of one class have no KS to maximize: the report says the threshold is 0.5 for
/// that reason, and "given" only when `--threshold` gave it.
#[test]
fn the_threshold_is_called_given_only_when_it_was() {
    let dir = temp_dir("eval-one-class");
    let (csv, one_class, model) = (dir.join("t.csv"), dir.join("zeros.csv"), dir.join("model"));
    let (header, original) = rows(29, 300);
    write(&csv, &header, &original);
    let zeros: Vec<String> = original
        .iter()
        .map(|row| format!("{},0", row.rsplit_once(',').unwrap().0))
        .collect();
    write(&one_class, &header, &zeros);
    train_logistic(&csv, &model, &[]);
    let report = |extra: &[&str]| eval_report(&model, &one_class, extra);
    let chosen = report(&[]);
    assert!(
        chosen.contains("threshold 0.5000 (0.5: KS needs both classes)"),
        "{chosen}"
    );
    let given = report(&["--threshold", "0.5"]);
    assert!(given.contains("threshold 0.5000 (given)"), "{given}");
}
