//! `explain --reasons FILE`: reasons per raw column as codes and texts. Every derived
//! feature (one-hot slot, missing indicator, piecewise-linear bin) maps back to its raw
//! column; attributions grouped by column and then by code still add up to the score's
//! gap from the baseline; only codes that raised the score are reasons; a bad reasons
//! file is refused with its line and field named (exit 3).

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::temp_dir;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::explain::{by_source, Explainer};
use riskgrad::model_io::SavedModel;
use riskgrad::reasons::ReasonCodes;
use riskgrad::rng::Rng;
use riskgrad::scoring::open_data;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A credit-like table with a categorical column and missing cells in a numeric and the
/// categorical one, so the model has one-hot slots, missing indicators and PLE bins.
fn mixed_rows(seed: u64, n: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::from("id,income,util,region,age,default\n");
    for i in 0..n {
        let (income, util, age) = (rng.normal(), rng.uniform(), 20.0 + 50.0 * rng.uniform());
        let r = rng.below(4);
        let region = ["north", "south", "east", ""][r];
        let risk = util * 2.0 - income + [0.0, 0.8, -0.5, 0.3][r] + 0.5 * rng.normal();
        let y = (risk > 0.8) as u8;
        let income = if rng.below(8) == 0 {
            String::new()
        } else {
            format!("{income:.4}")
        };
        s.push_str(&format!(
            "{},{income},{util:.4},{region},{age:.0},{y}\n",
            1000 + i
        ));
    }
    s
}

/// The mixed table and a small MLP trained on it by the CLI, once per test binary.
fn mixed_model() -> &'static (PathBuf, PathBuf) {
    static MODEL: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    MODEL.get_or_init(|| {
        let dir = crate::common::once_dir("reasons-mixed");
        let data = dir.join("mixed.csv");
        std::fs::write(&data, mixed_rows(41, 600)).unwrap();
        let model = dir.join("model");
        let out = riskgrad(&[
            "train",
            "--device",
            "cpu",
            "--data",
            data.to_str().unwrap(),
            "--hidden",
            "8",
            "--epochs",
            "5",
            "--out",
            model.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "train: {}", stderr(&out));
        (data, model)
    })
}

const MIXED_REASONS: &str = "column,code,text\n\
income,R10,\"Income is low, or not stated\"\n\
util,R20,Balances are high relative to limits\n\
region,R30,Region\n\
age,R40,Length of credit history\n";

fn explain(model: &Path, data: &Path, extra: &[&str]) -> std::process::Output {
    riskgrad(
        &[
            &[
                "explain",
                "--model",
                model.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--device",
                "cpu",
                "--steps",
                "16",
            ],
            extra,
        ]
        .concat(),
    )
}

/// Every feature's raw column is the one its name was derived from, and the model has
/// one-hot slots, missing indicators and PLE bins to map.
#[test]
fn every_derived_feature_maps_back_to_its_source_column() {
    let (_, dir) = mixed_model();
    let m = SavedModel::load(dir).unwrap();
    let names = m.source_names();
    let sources = m.feature_sources();
    let features = m.feature_names();
    assert_eq!(sources.len(), features.len());
    let mut kinds = [0usize; 3];
    for (feature, &s) in features.iter().zip(&sources) {
        let src = &names[s];
        let rest = feature
            .strip_prefix(src.as_str())
            .unwrap_or_else(|| panic!("feature {feature:?} mapped to column {src:?}"));
        if rest.starts_with('=') {
            kinds[0] += 1;
        } else if rest == "_missing" {
            kinds[1] += 1;
        } else if rest.starts_with("_bin") {
            kinds[2] += 1;
        } else {
            assert!(rest.is_empty(), "feature {feature:?} of {src:?}");
        }
    }
    assert!(
        kinds.iter().all(|&k| k > 0),
        "one-hot, missing, bins: {kinds:?}"
    );
    // Every column has at least one feature.
    for (s, name) in names.iter().enumerate() {
        assert!(sources.contains(&s), "{name} has no feature");
    }
}

/// Completeness survives both groupings: per row, the per-code sums add up to the
/// per-column sums and the per-feature sums, and so to score - baseline score (within
/// the midpoint rule's error).
#[test]
fn attributions_grouped_by_column_and_code_add_up_to_the_score_gap() {
    let (data, dir) = mixed_model();
    let m = SavedModel::load(dir).unwrap();
    let names = m.source_names();
    // income and util share a code here, so grouping by code merges columns too.
    let shared = "column,code,text\nincome,R1,Money\nutil,R1,Money\nregion,R2,Where\n";
    let codes = ReasonCodes::from_reader(shared.as_bytes(), Path::new("r.csv"), &names).unwrap();
    assert_eq!(codes.uncovered(), ["age"]);
    let mut reader = open_data(Some(data), &m).unwrap();
    let batch = reader.next_batch(60).unwrap().unwrap();
    let mut exec = CpuExecutor::new();
    let mut e = Explainer::new(&mut exec, &m, 16, 256).unwrap();
    let base = e.baseline_score() as f64;
    let out = e.explain(&m.arrange(batch.x)).unwrap();
    let per_column = by_source(&out.attributions, &m.feature_sources(), names.len());
    let f = m.n_inputs();
    let mut worst = 0.0f64;
    for r in 0..batch.ids.len() {
        let features: f64 = out.attributions[r * f..(r + 1) * f]
            .iter()
            .map(|&a| a as f64)
            .sum();
        let row = &per_column[r * names.len()..(r + 1) * names.len()];
        let by_code = codes.by_code(row);
        assert_eq!(by_code.len(), codes.codes().len());
        let columns: f64 = row.iter().sum();
        let coded: f64 = by_code.iter().sum();
        assert!((features - columns).abs() < 1e-9 && (columns - coded).abs() < 1e-9);
        worst = worst.max((coded - (out.scores[r] as f64 - base)).abs());
        // The shared code is the sum of its two columns.
        let (inc, util) = (
            names.iter().position(|n| n == "income").unwrap(),
            names.iter().position(|n| n == "util").unwrap(),
        );
        assert!((by_code[0] - (row[inc] + row[util])).abs() < 1e-12);
    }
    assert!(worst < 2e-3, "completeness gap {worst}");
}

/// End to end: text, JSON and CSV reasons carry the file's codes and texts, adverse
/// only, largest first, each code once.
#[test]
fn explain_with_a_reasons_file_gives_codes_and_texts() {
    let (data, model) = mixed_model();
    let dir = temp_dir("reasons-e2e");
    let reasons = dir.join("reasons.csv");
    std::fs::write(&reasons, MIXED_REASONS).unwrap();
    let r = reasons.to_str().unwrap();
    let out = explain(model, data, &["--reasons", r, "--rows", "40", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!stderr(&out).contains("warning"), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["columns_without_reason"], serde_json::json!([]));
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 40);
    let texts = [
        ("R10", "Income is low, or not stated"),
        ("R20", "Balances are high relative to limits"),
        ("R30", "Region"),
        ("R40", "Length of credit history"),
    ];
    let mut seen = 0;
    for row in rows {
        let reasons = row["reasons"].as_array().unwrap();
        assert!(reasons.len() <= 3);
        let c: Vec<f64> = reasons
            .iter()
            .map(|r| r["contribution"].as_f64().unwrap())
            .collect();
        assert!(c.windows(2).all(|w| w[0] >= w[1]) && c.iter().all(|&x| x > 0.0));
        for r in reasons {
            let code = r["code"].as_str().unwrap();
            let (_, text) = texts.iter().find(|(c, _)| *c == code).unwrap();
            assert_eq!(r["text"], *text);
            assert_eq!(r["columns"].as_array().unwrap().len(), 1);
            seen += 1;
        }
    }
    assert!(seen > 0);

    let text = explain(model, data, &["--reasons", r, "--rows", "5"]);
    assert!(text.status.success(), "{}", stderr(&text));
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(
        texts
            .iter()
            .any(|(c, t)| shown.contains(&format!("{c}  {t}"))),
        "{shown}"
    );

    let csv = dir.join("out.csv");
    let o = explain(
        model,
        data,
        &[
            "--reasons",
            r,
            "--rows",
            "25",
            "--top",
            "2",
            "--out",
            csv.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let written = std::fs::read_to_string(&csv).unwrap();
    assert!(written.starts_with(
        "id,score,reason_1_code,reason_1_text,reason_1_contribution,reason_2_code,reason_2_text,reason_2_contribution\n"
    ));
    assert_eq!(written.lines().count(), 26);
    // A text with a comma is quoted.
    if written.contains("R10") {
        assert!(written.contains("R10,\"Income is low, or not stated\","));
    }
}

/// A column the file leaves out is a warning and stands under its own name; two columns
/// that share a code are one reason.
#[test]
fn uncovered_columns_warn_and_shared_codes_are_one_reason() {
    let (data, model) = mixed_model();
    let dir = temp_dir("reasons-uncovered");
    let reasons = dir.join("partial.csv");
    std::fs::write(
        &reasons,
        "column,code,text\nincome,M,Money\nutil,M,Money\nregion,W,Where\n",
    )
    .unwrap();
    let out = explain(
        model,
        data,
        &[
            "--reasons",
            reasons.to_str().unwrap(),
            "--rows",
            "40",
            "--top",
            "5",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("warning") && err.contains("\"age\""), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["columns_without_reason"], serde_json::json!(["age"]));
    for row in v["rows"].as_array().unwrap() {
        let codes: Vec<&str> = row["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert!(codes.len() <= 3, "3 codes in all: {codes:?}");
        let mut unique = codes.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), codes.len(), "{codes:?}");
        for r in row["reasons"].as_array().unwrap() {
            match r["code"].as_str().unwrap() {
                "M" => assert_eq!(r["columns"], serde_json::json!(["income", "util"])),
                "age" => assert_eq!(r["text"], "age"),
                _ => {}
            }
        }
    }
}

/// Each bad reasons file exits 3 with the file, the line and what is wrong.
#[test]
fn bad_reasons_files_are_refused_with_their_line() {
    let (data, model) = mixed_model();
    let dir = temp_dir("reasons-bad");
    let cases: [(&str, &str, &[&str]); 7] = [
        (
            "column,code,text\nincome,R1,a\nutill,R2,b\n",
            "line 3",
            &[
                "\"utill\" is not one of the model's input columns",
                "\"util\"",
            ],
        ),
        (
            "column,code,text\nincome,R1,a\nutil,R2,b\nINCOME,R3,c\n",
            "line 4",
            &["\"income\" already has a reason, on line 2"],
        ),
        (
            "column,code,text\nincome,,a\n",
            "line 2",
            &["column \"code\"", "empty"],
        ),
        (
            "column,code,text\nincome,R1,\n",
            "line 2",
            &["column \"text\"", "empty"],
        ),
        (
            "column,code,text\nincome,R1,Money\nutil,R1,Debt\n",
            "line 3",
            &["code \"R1\"", "on line 2"],
        ),
        ("column,reason\nincome,a\n", "line 1", &["column,code,text"]),
        (
            "column,code,text\nincome,R1,a, b\n",
            "line 2",
            &["4 fields"],
        ),
    ];
    for (i, (text, line, words)) in cases.iter().enumerate() {
        let path = dir.join(format!("bad{i}.csv"));
        std::fs::write(&path, text).unwrap();
        let out = explain(
            model,
            data,
            &["--reasons", path.to_str().unwrap(), "--rows", "2"],
        );
        assert_eq!(out.status.code(), Some(3), "case {i}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&format!("bad{i}.csv")) && err.contains(line),
            "case {i}: {err}"
        );
        for w in *words {
            assert!(err.contains(w), "case {i} lacks {w:?}: {err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    }
    let missing = dir.join("absent.csv");
    let out = explain(model, data, &["--reasons", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("absent.csv"));
}

/// A logistic model on two risk factors: an applicant at the low end of both is below
/// the average applicant on each column, so no column raised the score and there is no
/// reason; one at the high end has both.
#[test]
fn an_applicant_whose_columns_all_lowered_the_score_has_no_reasons() {
    let dir = temp_dir("reasons-adverse");
    let mut rng = Rng::new(7);
    let mut train = String::from("x1,x2,default\n");
    for _ in 0..400 {
        let (a, b) = (rng.uniform(), rng.uniform());
        let y = (a + b + 0.3 * rng.normal() > 1.0) as u8;
        train.push_str(&format!("{a:.4},{b:.4},{y}\n"));
    }
    let data = dir.join("train.csv");
    std::fs::write(&data, train).unwrap();
    let model = dir.join("model");
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        data.to_str().unwrap(),
        "--model",
        "logistic",
        "--numeric-encoding",
        "standard",
        "--out",
        model.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "train: {}", stderr(&out));
    let applicants = dir.join("applicants.csv");
    std::fs::write(&applicants, "x1,x2\n0.01,0.02\n0.99,0.98\n").unwrap();
    let reasons = dir.join("reasons.csv");
    std::fs::write(&reasons, "column,code,text\nx1,A1,High x1\nx2,A2,High x2\n").unwrap();
    let r = reasons.to_str().unwrap();
    let out = explain(&model, &applicants, &["--reasons", r, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert!(rows[0]["score"].as_f64().unwrap() < v["baseline_score"].as_f64().unwrap());
    assert_eq!(rows[0]["reasons"], serde_json::json!([]));
    let codes: Vec<&str> = rows[1]["reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), 2, "{codes:?}");
    let text = explain(&model, &applicants, &["--reasons", r]);
    let shown = String::from_utf8_lossy(&text.stdout);
    assert!(shown.contains("no column raised the score"), "{shown}");
}

/// A file with a header and no rows is a data error naming the file (exit 3, as monitor
/// says it), not "--data has no rows", and the `--out` file is not written.
#[test]
fn explain_of_a_file_without_rows_names_it_and_writes_nothing() {
    let (_, model) = mixed_model();
    let dir = temp_dir("explain-empty");
    let data = dir.join("header-only.csv");
    std::fs::write(&data, "id,income,util,region,age,default\n").unwrap();
    let out = dir.join("reasons.csv");
    let o = explain(model, &data, &["--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let message = stderr(&o);
    assert!(
        message.contains("header-only.csv") && message.contains("no data rows"),
        "{message}"
    );
    assert!(!out.exists(), "nothing written");
}
