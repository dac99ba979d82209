//! Stability monitoring (`riskgrad monitor`, stability.json) and scorecard points
//! (`predict --points`): the binning of a small table by hand, and end to end through
//! the command line, hostile inputs included.

use crate::common::{riskgrad, stderr, train_small};
use crate::lifecycle_common::temp_dir;
use riskgrad::data::{
    read_table_from, ColumnBins, LabelledTable, PredictReader, PrepareOptions, RareThreshold,
};
use riskgrad::rng::Rng;
use riskgrad::stability::{psi, Band, Baseline, Monitor, STABILITY_FILE};
use std::path::{Path, PathBuf};

/// Ten training rows: x has six 1s (duplicate deciles), a 2, a 3, a 5 and a missing
/// cell; c has a five times, b three times, z once (rarer than --min-category-count 2,
/// so other) and one missing cell.
const HAND: &str = "x,c,y\n1,a,0\n1,a,1\n1,b,0\n1,a,1\n1,,0\n1,b,1\n2,z,0\n3,b,1\n5,a,0\n,a,1\n";
/// New rows: x at 1, beyond the training range, missing, at 2; c at a, an unseen value,
/// missing, b.
const HAND_NEW: &str = "c,x\na,1\nq,7\n,\nb,2\n";

#[test]
fn csi_bins_of_a_small_table_by_hand() {
    let opts = PrepareOptions {
        rare: RareThreshold::Count(2),
        ..Default::default()
    };
    let table = read_table_from(
        std::io::Cursor::new(HAND.as_bytes().to_vec()),
        Path::new("hand.csv"),
        &opts,
    )
    .unwrap();
    let table = LabelledTable::new(table, &opts).unwrap();
    let every: Vec<u32> = (0..10).collect();
    let pre = table.fit_preprocessor(&every, &opts).unwrap();
    let profile = table.profile(&pre, &every).unwrap();
    assert_eq!(profile.len(), 2);
    let (x, c) = (&profile[0], &profile[1]);
    // Deciles 1,1,1,1,1,1,2,3,5: cut at 1, 2, 3 (5 is the maximum: no empty bin above).
    assert_eq!(
        x.bins,
        ColumnBins::Numeric {
            cuts: vec![1.0, 2.0, 3.0]
        }
    );
    assert_eq!(
        x.bins.labels(),
        ["<= 1", "(1, 2]", "(2, 3]", "> 3", "missing"]
    );
    close(&x.fractions, &[0.6, 0.1, 0.1, 0.1, 0.1]);
    assert_eq!(
        c.bins,
        ColumnBins::Categorical {
            categories: vec!["a".into(), "b".into()]
        }
    );
    assert_eq!(c.bins.labels(), ["a", "b", "other/unseen", "missing"]);
    close(&c.fractions, &[0.5, 0.3, 0.1, 0.1]);

    // A new file read as predict reads it, binned by the same rules.
    let baseline = Baseline::new(&[0.5; 10], profile.clone(), &[0.0]);
    let mut reader = PredictReader::from_reader(
        std::io::Cursor::new(HAND_NEW.as_bytes().to_vec()),
        Path::new("new.csv"),
        &pre,
    )
    .unwrap()
    .with_raw();
    let batch = reader.next_batch(100).unwrap().unwrap();
    let mut monitor = Monitor::new(&baseline);
    monitor
        .add(&[0.5; 4], batch.raw.as_deref().unwrap())
        .unwrap();
    let report = monitor.report();
    let (xs, cs) = (&report.columns[0], &report.columns[1]);
    let new = |s: &riskgrad::stability::Shift| s.bins.iter().map(|b| b.new).collect::<Vec<_>>();
    close(&new(xs), &[0.25, 0.25, 0.0, 0.25, 0.25]);
    close(&new(cs), &[0.25, 0.25, 0.25, 0.25]);
    // By hand, each share floored at 1e-4:
    // x: (.25-.6) ln(.25/.6) + 3 (.25-.1) ln(2.5) + (1e-4-.1) ln(1e-3) = 1.408830
    // c: (.25-.5) ln(.5) + (.25-.3) ln(.25/.3) + 2 (.25-.1) ln(2.5) = 0.457290
    assert!((xs.index - 1.408_829_6).abs() < 1e-6, "{}", xs.index);
    assert!((cs.index - 0.457_290_1).abs() < 1e-6, "{}", cs.index);
    assert_eq!((xs.band, cs.band), (Band::Shifted, Band::Shifted));
    assert_eq!(report.score.index, 0.0);
    assert_eq!(
        psi(&x.fractions, &x.fractions),
        0.0,
        "a distribution against itself"
    );
}

fn close(got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{got:?} vs {want:?}");
    for (g, w) in got.iter().zip(want) {
        assert!((g - w).abs() < 1e-12, "{got:?} vs {want:?}");
    }
}

/// A credit-like table: income and age (some missing) drive the default rate, region is
/// a category (some missing). `shifted` triples every income and puts half the rows in
/// a region training never saw.
fn synthetic(rows: usize, shifted: bool) -> String {
    let mut rng = Rng::new(14);
    let mut s = String::from("id,income,age,region,default\n");
    for i in 0..rows {
        let mut income = (20_000.0 + 80_000.0 * rng.uniform()).round();
        let age = match rng.uniform() < 0.05 {
            true => String::new(),
            false => (20 + rng.below(50)).to_string(),
        };
        let mut region = match rng.uniform() {
            u if u < 0.03 => "",
            u if u < 0.5 => "north",
            u if u < 0.8 => "south",
            _ => "east",
        };
        let risk = 0.1 + 0.3 * (income < 40_000.0) as u8 as f64;
        let default = (rng.uniform() < risk) as u8;
        if shifted {
            income *= 3.0;
            if i % 2 == 0 {
                region = "west";
            }
        }
        s.push_str(&format!("C{i},{income},{age},{region},{default}\n"));
    }
    s
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn monitor(model: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    let base = [
        "monitor",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
    ];
    riskgrad(&[&base[..], extra].concat())
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The text line of a column (or of the score).
fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line for {start}: {text}"))
}

#[test]
fn monitor_end_to_end_same_data_is_stable_and_a_shift_is_flagged() {
    let dir = temp_dir("monitor");
    let data = write(&dir, "loans.csv", &synthetic(1200, false));
    let moved = write(&dir, "moved.csv", &synthetic(1200, true));
    let model = dir.join("model");
    let o = train_small(&data, &model, &["--target", "default", "--epochs", "3"]);
    assert!(o.status.success(), "train: {}", stderr(&o));
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join(STABILITY_FILE)).unwrap()).unwrap();
    assert_eq!(saved["format"], "riskgrad-stability");
    // The training split: 80 % of the rows.
    assert_eq!(saved["rows"], 960);
    assert_eq!(saved["columns"].as_array().unwrap().len(), 3);

    // The training file against its own training rows: nothing moved.
    let (json, html) = (dir.join("same.json"), dir.join("same.html"));
    let o = monitor(
        &model,
        &data,
        &[
            "--json",
            json.to_str().unwrap(),
            "--html",
            html.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "monitor: {}", stderr(&o));
    let text = stdout(&o);
    assert!(line_of(&text, "score PSI").contains("stable"), "{text}");
    assert!(text.contains("shifted: none; watch: none"), "{text}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["schema"], 1);
    assert_eq!(doc["rows"], 1200);
    assert_eq!(doc["training_rows"], 960);
    assert_eq!(doc["epsilon"], 1e-4);
    let psi = doc["score"]["psi"].as_f64().unwrap();
    assert!((0.0..0.02).contains(&psi), "score PSI {psi}");
    assert_eq!(doc["score"]["band"], "stable");
    let columns = doc["columns"].as_array().unwrap();
    let names: Vec<&str> = columns
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["income", "age", "region"]);
    for c in columns {
        let csi = c["csi"].as_f64().unwrap();
        assert!((0.0..0.02).contains(&csi), "{c}");
        assert_eq!(c["band"], "stable");
        let bins = c["bins"].as_array().unwrap();
        let share = |k: &str| bins.iter().map(|b| b[k].as_f64().unwrap()).sum::<f64>();
        assert!((share("training") - 1.0).abs() < 1e-9 && (share("new") - 1.0).abs() < 1e-9);
        assert!(bins.iter().all(|b| b["bin"].is_string()));
    }
    assert_eq!(columns[2]["kind"], "categorical");
    assert_eq!(
        columns[2]["bins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["bin"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ["east", "north", "south", "other/unseen", "missing"]
    );
    assert_eq!(doc["shifted"], serde_json::json!([]));
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        page.matches("<svg").count(),
        4,
        "the score and three columns"
    );
    assert!(!page.contains("<script"));

    // Incomes tripled, half the rows in an unseen region: both flagged, age is not.
    let json = dir.join("moved.json");
    let o = monitor(&model, &moved, &["--json", json.to_str().unwrap()]);
    assert!(o.status.success(), "monitor: {}", stderr(&o));
    let text = stdout(&o);
    assert!(line_of(&text, "income").ends_with("shifted"), "{text}");
    assert!(line_of(&text, "region").ends_with("shifted"), "{text}");
    assert!(line_of(&text, "age").ends_with("stable"), "{text}");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    assert_eq!(doc["shifted"], serde_json::json!(["income", "region"]));
    let region = &doc["columns"][2]["bins"][3];
    assert_eq!(region["bin"], "other/unseen");
    assert!(region["new"].as_f64().unwrap() >= 0.5);
}

#[test]
fn monitor_refuses_hostile_inputs_with_clear_errors() {
    let dir = temp_dir("monitor-hostile");
    let data = write(&dir, "loans.csv", &synthetic(400, false));
    let model = dir.join("model");
    let o = train_small(&data, &model, &["--target", "default", "--epochs", "2"]);
    assert!(o.status.success(), "train: {}", stderr(&o));
    let refused = |o: std::process::Output, code: i32, needles: &[&str]| {
        let msg = stderr(&o);
        assert_eq!(o.status.code(), Some(code), "{msg}");
        for n in needles {
            assert!(msg.contains(n), "{n:?} not in {msg}");
        }
        assert!(!msg.contains("panicked"), "{msg}");
    };
    let config = model.join("config.json");
    let before = std::fs::read(&config).unwrap();
    let data_before = std::fs::read(&data).unwrap();

    // Outputs pointed at the inputs, or at each other: refused before any work.
    refused(
        monitor(&model, &data, &["--json", data.to_str().unwrap()]),
        2,
        &["--json", "input"],
    );
    refused(
        monitor(&model, &data, &["--html", config.to_str().unwrap()]),
        2,
        &["--html", "input"],
    );
    let same = dir.join("out.txt");
    let same = same.to_str().unwrap();
    refused(
        monitor(&model, &data, &["--json", same, "--html", same]),
        2,
        &["--html", "--json"],
    );
    refused(monitor(&model, &data, &["--batch", "0"]), 2, &["--batch"]);
    assert_eq!(std::fs::read(&config).unwrap(), before);
    assert_eq!(std::fs::read(&data).unwrap(), data_before);

    // A file with a header and no rows, a file without a column the model needs.
    let empty = write(&dir, "empty.csv", "id,income,age,region,default\n");
    refused(
        monitor(&model, &empty, &[]),
        3,
        &["empty.csv", "no data rows"],
    );
    let no_age = write(&dir, "no-age.csv", "id,income,region\nA,1000,north\n");
    refused(monitor(&model, &no_age, &[]), 3, &["no-age.csv", "age"]);

    // One row: reported, with a note that so few rows say little.
    let one = write(&dir, "one.csv", "income,age,region\n50000,30,north\n");
    let o = monitor(&model, &one, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("has only 1 row:"), "{}", stderr(&o));
    assert!(stdout(&o).contains("score PSI"));

    // Every age missing: the column is reported as shifted (all in its missing bin).
    let mut no_ages = String::from("income,age,region\n");
    for i in 0..200 {
        no_ages.push_str(&format!("{},,north\n", 20_000 + 300 * i));
    }
    let no_ages = write(&dir, "no-ages.csv", &no_ages);
    let o = monitor(&model, &no_ages, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        line_of(&stdout(&o), "age").ends_with("shifted"),
        "{}",
        stdout(&o)
    );

    // stability.json from other weights, then none at all (a model saved before it
    // existed): a bad model, exit 4, with what to do.
    let path = model.join(STABILITY_FILE);
    let good = std::fs::read_to_string(&path).unwrap();
    let mut other: serde_json::Value = serde_json::from_str(&good).unwrap();
    other["weights_fnv1a64"] = "0000000000000000".into();
    std::fs::write(&path, other.to_string()).unwrap();
    refused(
        monitor(&model, &data, &[]),
        4,
        &[STABILITY_FILE, "other weights", "train the model again"],
    );
    // Edited by hand: shares that do not add up to 1 (doubled; a column's all 0), no
    // training rows. Each gave a PSI or CSI (0.70 "shifted") with exit 0.
    type Edit = fn(&mut serde_json::Value);
    let edits: [(&str, Edit); 3] = [
        ("score bins' shares do not add up to 1", |v| {
            for f in v["score"]["fractions"].as_array_mut().unwrap() {
                *f = (f.as_f64().unwrap() * 2.0).min(1.0).into();
            }
        }),
        ("fractions do not add up to 1", |v| {
            for f in v["columns"][0]["fractions"].as_array_mut().unwrap() {
                *f = 0.0.into();
            }
        }),
        ("counts no training rows", |v| v["rows"] = 0.into()),
    ];
    for (needle, edit) in edits {
        let mut edited: serde_json::Value = serde_json::from_str(&good).unwrap();
        edit(&mut edited);
        std::fs::write(&path, edited.to_string()).unwrap();
        refused(monitor(&model, &data, &[]), 4, &[STABILITY_FILE, needle]);
    }
    std::fs::write(&path, &good).unwrap();
    assert!(monitor(&model, &data, &[]).status.success());
    std::fs::write(&path, "{\"format\": 1").unwrap();
    refused(
        monitor(&model, &data, &[]),
        4,
        &[STABILITY_FILE, "not JSON"],
    );
    std::fs::remove_file(&path).unwrap();
    refused(
        monitor(&model, &data, &[]),
        4,
        &[STABILITY_FILE, "not there", "train it again"],
    );
    let leftovers = crate::common::temporary_files(&dir);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_logistic_model_and_a_cross_validation_ensemble_save_their_baseline() {
    let dir = temp_dir("monitor-paths");
    let data = write(&dir, "loans.csv", &synthetic(400, false));
    let model = dir.join("model");
    for extra in [
        &["--model", "logistic"][..],
        &["--cv", "2", "--ensemble", "--epochs", "2"][..],
    ] {
        let o = train_small(
            &data,
            &model,
            &[&["--target", "default"][..], extra].concat(),
        );
        assert!(o.status.success(), "train {extra:?}: {}", stderr(&o));
        let saved: serde_json::Value =
            serde_json::from_slice(&std::fs::read(model.join(STABILITY_FILE)).unwrap()).unwrap();
        // The logistic model's training split, or every row for the ensemble.
        let rows = if extra[0] == "--cv" { 400 } else { 320 };
        assert_eq!(saved["rows"], rows, "{extra:?}");
        let o = monitor(&model, &data, &[]);
        assert!(
            o.status.success(),
            "monitor after {extra:?}: {}",
            stderr(&o)
        );
        assert!(stdout(&o).contains("shifted: none"), "{}", stdout(&o));
    }
    // A cross-validation without --ensemble saves no model: it may not replace one (the
    // baseline stays with its model), and into a new directory it writes no baseline.
    let o = train_small(
        &data,
        &model,
        &["--target", "default", "--cv", "2", "--epochs", "2"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(model.join(STABILITY_FILE).exists());
    let plain = model.with_file_name("cv-plain");
    let o = train_small(
        &data,
        &plain,
        &["--target", "default", "--cv", "2", "--epochs", "2"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(!plain.join(STABILITY_FILE).exists());
}

#[test]
fn predict_points_scale_the_probabilities_and_bad_scales_name_the_flag() {
    let dir = temp_dir("points");
    let data = write(&dir, "loans.csv", &synthetic(300, false));
    let model = dir.join("model");
    let o = train_small(&data, &model, &["--target", "default", "--epochs", "2"]);
    assert!(o.status.success(), "train: {}", stderr(&o));
    let out = dir.join("scores.csv");
    let predict = |points: &str| {
        riskgrad(&[
            "predict",
            "--model",
            model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--out",
            out.to_str().unwrap(),
            "--points",
            points,
        ])
    };
    let o = predict("600:50:20");
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("id,probability_of_default,points"));
    let (factor, offset) = (20.0 / 2f64.ln(), 600.0 - 20.0 / 2f64.ln() * 50f64.ln());
    let mut rows = 0;
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        let p: f64 = fields[1].parse().unwrap();
        let points: f64 = fields[2].parse().unwrap();
        let want = offset + factor * ((1.0 - p) / p).ln();
        assert!((points - want).abs() <= 0.005 + 1e-9, "{line}: want {want}");
        assert_eq!(fields[2].split('.').nth(1).map(str::len), Some(2), "{line}");
        rows += 1;
    }
    assert_eq!(rows, 300);

    for bad in [
        "600:50",
        "600:50:20:1",
        "600:x:20",
        "600:50:0",
        "600:-5:20",
        "nan:50:20",
        "",
    ] {
        let o = predict(bad);
        let msg = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{bad:?}: {msg}");
        assert!(msg.contains("--points"), "{bad:?}: {msg}");
        assert!(!msg.contains("panicked"), "{msg}");
    }
}
