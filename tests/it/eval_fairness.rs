//! `eval --protected COL`: the fairness check per group of a protected column, through
//! the CLI on the bundled Taiwan data (SEX by value, AGE in quantile bins) on the
//! validation rows found by fingerprint, in text, JSON and the `--report` page; a
//! protected column that is not an input of the model, with missing cells; and the
//! errors.

use crate::common::{riskgrad, stderr};
use crate::eval_rows::{rows, write};
use crate::lifecycle_common::{taiwan_file, temp_dir};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A small MLP trained on the bundled data (one epoch), once per test binary.
fn taiwan_model() -> &'static PathBuf {
    static MODEL: OnceLock<PathBuf> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = crate::common::once_dir("fairness-taiwan");
        let out = riskgrad(&[
            "train",
            "--device",
            "cpu",
            "--hidden",
            "8",
            "--epochs",
            "1",
            "--out",
            dir.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "train: {}", stderr(&out));
        dir
    })
}

fn eval(model: &Path, extra: &[&str]) -> std::process::Output {
    riskgrad(
        &[
            &[
                "eval",
                "--model",
                model.to_str().unwrap(),
                "--device",
                "cpu",
                "--bootstrap",
                "10",
            ],
            extra,
        ]
        .concat(),
    )
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", stderr(out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The figures a fairness block must agree with: groups cover every row scored, each
/// approval rate is approved / rows, the ratios are against the highest approval rate,
/// and the flags follow the four-fifths rule.
fn check_consistent(v: &serde_json::Value) -> &Vec<serde_json::Value> {
    let f = &v["fairness"];
    let groups = f["groups"].as_array().unwrap();
    let rows: u64 = groups.iter().map(|g| g["rows"].as_u64().unwrap()).sum();
    assert_eq!(rows, v["rows"].as_u64().unwrap());
    let defaults: u64 = groups.iter().map(|g| g["defaults"].as_u64().unwrap()).sum();
    assert_eq!(defaults, v["positives"].as_u64().unwrap());
    assert_eq!(f["threshold"], v["threshold"]);
    let best = groups
        .iter()
        .map(|g| g["approval_rate"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let mut favoured = 0;
    for g in groups {
        let (n, a) = (g["rows"].as_f64().unwrap(), g["approved"].as_f64().unwrap());
        let rate = g["approval_rate"].as_f64().unwrap();
        assert!((rate - a / n).abs() < 1e-12);
        let air = g["adverse_impact_ratio"].as_f64().unwrap();
        assert!((air - rate / best).abs() < 1e-12, "{g}");
        assert_eq!(g["flagged"].as_bool().unwrap(), air < 0.8, "{g}");
        if g["most_favoured"].as_bool().unwrap() {
            favoured += 1;
            assert_eq!(air, 1.0);
            assert_eq!(f["most_favoured"], g["group"]);
        }
        let flagged_listed = f["flagged"].as_array().unwrap().contains(&g["group"]);
        assert_eq!(flagged_listed, g["flagged"].as_bool().unwrap());
        assert!(g["auc"].as_f64().is_some_and(|a| (0.0..=1.0).contains(&a)));
        assert!(!g["calibration"].as_array().unwrap().is_empty());
    }
    assert_eq!(favoured, 1);
    groups
}

#[test]
fn sex_and_age_on_the_bundled_validation_rows() {
    let m = taiwan_model();
    let v = json(&eval(m, &["--protected", "SEX", "--json"]));
    assert_eq!(v["rows_scored"], "validation");
    assert_eq!(v["validation_rows_verified"], true);
    assert_eq!(v["rows"], 6000);
    assert_eq!(v["fairness"]["column"], "SEX");
    assert_eq!(v["fairness"]["grouping"], "values");
    let groups = check_consistent(&v);
    let labels: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["1", "2"]);

    // AGE has dozens of values: five quantile bins by default, three when asked.
    let v = json(&eval(m, &["--protected", "AGE", "--json"]));
    assert_eq!(v["fairness"]["grouping"], "quantile_bins");
    let groups = check_consistent(&v);
    assert_eq!(groups.len(), 5);
    assert!(
        groups[0]["group"].as_str().unwrap().starts_with("[21, "),
        "{}",
        groups[0]
    );
    assert!(groups[4]["group"].as_str().unwrap().ends_with(']'));
    let v = json(&eval(
        m,
        &[
            "--protected",
            "age",
            "--protected-bins",
            "3",
            "--json",
            "--threshold",
            "0.3",
        ],
    ));
    assert_eq!(check_consistent(&v).len(), 3);
    assert!((v["fairness"]["threshold"].as_f64().unwrap() - 0.3).abs() < 1e-6);

    // The text tables and the report page show it; without --protected neither does.
    let text = eval(m, &["--protected", "SEX"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let shown = String::from_utf8_lossy(&text.stdout);
    for word in [
        "fairness by SEX",
        "approval rate",
        "AIR",
        "most favoured",
        "four-fifths",
    ] {
        assert!(shown.contains(word), "lacks {word:?}:\n{shown}");
    }
    let dir = temp_dir("fairness-report");
    let page = dir.join("eval.html");
    let out = eval(
        m,
        &[
            "--protected",
            "SEX",
            "--report",
            page.to_str().unwrap(),
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    for part in [
        "<table id=\"fairness\">",
        "Fairness by SEX",
        "adverse impact ratio",
        "(most favoured)",
        "<table id=\"metrics\">",
        "<figure id=\"roc\">",
    ] {
        assert!(html.contains(part), "report lacks {part:?}");
    }
    let plain = dir.join("plain.html");
    let out = eval(m, &["--report", plain.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&plain).unwrap();
    assert!(html.contains("<table id=\"metrics\">") && !html.contains("id=\"fairness\""));
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(!shown.contains("fairness"));
}

/// A protected column the model does not use, with missing cells: they form their own
/// group, and every row scored is in one group.
#[test]
fn a_column_outside_the_model_with_missing_cells() {
    let dir = temp_dir("fairness-outside");
    let (header, train_rows) = rows(5, 300);
    let train = dir.join("train.csv");
    write(&train, &header, &train_rows);
    let model = dir.join("model");
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        train.to_str().unwrap(),
        "--hidden",
        "4",
        "--epochs",
        "3",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // New applicants with a "group" column the model never saw.
    let (_, new_rows) = rows(6, 120);
    let with_group: Vec<String> = new_rows
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{r},{}", ["A", "B", ""][i % 3]))
        .collect();
    let data = dir.join("new.csv");
    write(
        &data,
        &format!("{},group\n", header.trim_end()),
        &with_group,
    );
    let d = data.to_str().unwrap();
    let v = json(&eval(
        &model,
        &["--data", d, "--protected", "group", "--json"],
    ));
    assert_eq!(v["rows_scored"], "all");
    let groups = v["fairness"]["groups"].as_array().unwrap();
    let labels: Vec<&str> = groups
        .iter()
        .map(|g| g["group"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["A", "B", "(missing)"]);
    assert!(groups.iter().all(|g| g["rows"] == 40));

    // Errors: a column not in the file names it and the file (exit 3); a bin count
    // below 2, or --protected-bins alone, is a usage error (exit 2).
    let out = eval(&model, &["--data", d, "--protected", "religion"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("\"religion\"") && err.contains("new.csv") && err.contains("--protected"),
        "{err}"
    );
    let out = eval(
        &model,
        &["--data", d, "--protected", "group", "--protected-bins", "1"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--protected-bins"));
    let out = eval(&model, &["--data", d, "--protected-bins", "4"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let out = eval(&model, &["--data", d, "--report", d]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--report"));
    // The data file was not touched.
    assert!(std::fs::read_to_string(&data)
        .unwrap()
        .starts_with("a,b,c,region,default,group\n"));
}

/// The protected column may be the bundled file's own, named without --data.
#[test]
fn a_missing_protected_column_in_the_bundled_file() {
    let out = eval(taiwan_model(), &["--protected", "RACE"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("\"RACE\"") && err.contains("taiwan"), "{err}");
}

/// An identifier-like text column (a value per row) is refused, not split into
/// thousands of one-row groups; the ID, numeric, still gets its quantile bins.
#[test]
fn a_column_of_a_value_per_row_is_refused() {
    let model = taiwan_model();
    let dir = temp_dir("fairness-names");
    let mut csv = String::new();
    let text = {
        use std::io::Read;
        let mut s = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(taiwan_file()).unwrap())
            .read_to_string(&mut s)
            .unwrap();
        s
    };
    for (i, line) in text.lines().take(600).enumerate() {
        let name = if i == 0 {
            "name".to_string()
        } else {
            format!("person{i}")
        };
        csv.push_str(&format!("{line},{name}\n"));
    }
    let data = dir.join("named.csv");
    std::fs::write(&data, csv).unwrap();
    let data = data.to_str().unwrap();
    let out = eval(
        model,
        &["--data", data, "--rows", "all", "--protected", "name"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--protected") && err.contains("599 distinct values"),
        "{err}"
    );
    let v = json(&eval(
        model,
        &[
            "--data",
            data,
            "--rows",
            "all",
            "--protected",
            "ID",
            "--json",
        ],
    ));
    assert_eq!(
        check_consistent(&v).len(),
        5,
        "the numeric ID in 5 quantile bins"
    );
}
