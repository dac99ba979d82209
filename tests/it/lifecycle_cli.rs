//! The model lifecycle from the command line: train writes a loadable model, a report and
//! checkpoints; --resume equals an uninterrupted run; a diverging run stops and keeps its
//! last good checkpoint; --early-stop saves the best epoch; eval, predict and explain
//! agree with each other and fail clearly.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common;

use lifecycle_common::{taiwan_file, temp_dir};
use riskgrad::model_io::SavedModel;
use std::path::Path;
use std::process::{Command, Output};

fn ok(args: &[&str]) -> Output {
    let out = riskgrad(args);
    assert!(out.status.success(), "{args:?} failed: {}", stderr(&out));
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn train(dir: &Path, extra: &[&str]) -> Output {
    riskgrad(
        &[
            &[
                "train",
                "--device",
                "cpu",
                "--hidden",
                "16",
                // One network: these tests are of the lifecycle; members have their own.
                "--members",
                "1",
                "--out",
                dir.to_str().unwrap(),
            ],
            extra,
        ]
        .concat(),
    )
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(
        &std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    )
    .unwrap()
}

/// The epochs of metrics.json without their timings.
fn history(dir: &Path) -> Vec<serde_json::Value> {
    json(&dir.join("metrics.json"))["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut()
                .unwrap()
                .retain(|k, _| k != "seconds" && k != "rows_per_second");
            e
        })
        .collect()
}

#[test]
fn resume_equals_an_uninterrupted_run() {
    let whole = temp_dir("whole");
    let split = temp_dir("split");
    assert!(train(&whole, &["--epochs", "3"]).status.success());
    assert!(train(&split, &["--epochs", "1"]).status.success());
    let resumed = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "16",
        "--members",
        "1",
        "--epochs",
        "3",
        "--resume",
        split.to_str().unwrap(),
    ]);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("after epoch 1"),
        "{}",
        stderr(&resumed)
    );
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        weights(&whole) == weights(&split),
        "the same weights, bit for bit"
    );
    assert_eq!(
        history(&whole),
        history(&split),
        "the same losses and validation metrics per epoch"
    );
    assert_eq!(json(&split.join("metrics.json"))["resumed_from_epoch"], 1);

    // Other training flags than the checkpoint's are refused, naming the flag.
    let other = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "16",
        "--members",
        "1",
        "--epochs",
        "4",
        "--batch",
        "64",
        "--resume",
        split.to_str().unwrap(),
    ]);
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(stderr(&other).contains("--batch"), "{}", stderr(&other));
    let done = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "16",
        "--members",
        "1",
        "--epochs",
        "3",
        "--resume",
        split.to_str().unwrap(),
    ]);
    assert_eq!(done.status.code(), Some(2));
    assert!(stderr(&done).contains("--epochs"), "{}", stderr(&done));
    let none = riskgrad(&["train", "--device", "cpu", "--resume", "/nonexistent/run"]);
    assert_eq!(none.status.code(), Some(2));
    assert!(stderr(&none).contains("--resume"), "{}", stderr(&none));
}

/// A run of members whose first members finished resumes only with the epochs and
/// patience it began with: the finished members cannot be trained on to other ones.
/// A number of members out of range is refused before any data is read.
#[test]
fn a_run_of_members_resumes_only_with_its_own_epochs() {
    let dir = temp_dir("members-resume");
    let data = crate::common::fixture("credit_mixed.csv");
    let run = |members: &str, extra: &[&str]| {
        let flags = [&["--members", members][..], extra].concat();
        crate::common::train_small(&data, &dir, &flags)
    };
    let refused = |out: &std::process::Output, wants: &[&str]| {
        let msg = stderr(out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        for want in wants {
            assert!(msg.contains(want), "{want:?} missing from {msg}");
        }
    };
    let resume = dir.to_str().unwrap();
    assert!(run("2", &["--epochs", "1", "--early-stop", "off"])
        .status
        .success());
    let more = run(
        "2",
        &["--epochs", "3", "--early-stop", "off", "--resume", resume],
    );
    refused(
        &more,
        &[
            "--epochs: is 3 here but 1 in the checkpoint",
            "first 1 of 2 members finished",
        ],
    );
    // Early stopping needs more rows to rank than the small file has: the bundled data.
    let bundled = temp_dir("members-resume-patience");
    let patience = |p: &str, resume: bool| {
        let out = bundled.to_str().unwrap();
        let mut flags = vec![
            "train",
            "--device",
            "cpu",
            "--hidden",
            "4",
            "--members",
            "2",
        ];
        flags.extend(["--epochs", "1", "--early-stop", p, "--out", out]);
        if resume {
            flags.extend(["--resume", out]);
        }
        riskgrad(&flags)
    };
    assert!(patience("2", false).status.success());
    refused(
        &patience("3", true),
        &[
            "--early-stop: is 3 epochs here but 2 epochs in the checkpoint",
            "first 1 of 2 members",
        ],
    );
    let other = run(
        "3",
        &["--epochs", "1", "--early-stop", "off", "--resume", resume],
    );
    refused(&other, &["--members: is 3 here but 2 in the checkpoint"]);
    for n in ["0", "65"] {
        let out = run(n, &[]);
        refused(&out, &[&format!("--members: {n} must be between 1 and 64")]);
    }
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let dir = temp_dir("nan");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let checkpoint = std::fs::read(dir.join("checkpoint.safetensors")).unwrap();
    let model = std::fs::read(dir.join("model.safetensors")).unwrap();
    // Adam moves each weight by about lr per step: 1e30 overflows the activations.
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "16",
        "--members",
        "1",
        "--epochs",
        "3",
        "--lr",
        "1e30",
        "--resume",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    let msg = stderr(&out);
    assert!(
        msg.contains("epoch 2") && msg.contains("training stopped") && msg.contains("--lr"),
        "{msg}"
    );
    assert!(
        msg.contains("last good checkpoint (epoch 1)") && msg.contains("checkpoint.safetensors"),
        "{msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
    assert!(
        std::fs::read(dir.join("checkpoint.safetensors")).unwrap() == checkpoint,
        "the checkpoint is untouched"
    );
    assert!(
        std::fs::read(dir.join("model.safetensors")).unwrap() == model,
        "the saved model is untouched"
    );
    SavedModel::load(&dir).expect("the model there still loads");

    // From scratch: nothing finished, nothing to keep.
    let fresh = temp_dir("nan-fresh");
    let out = train(&fresh, &["--epochs", "2", "--lr", "1e30"]);
    assert_eq!(out.status.code(), Some(5), "a diverged run exits 5");
    assert!(
        stderr(&out).contains("NaN") || stderr(&out).contains("inf"),
        "{}",
        stderr(&out)
    );
    assert!(!fresh.join("model.safetensors").exists());
    // A directory the failed run created itself goes with it; one it found stays.
    let created = fresh.join("new");
    let out = train(&created, &["--epochs", "2", "--lr", "1e30"]);
    assert_eq!(out.status.code(), Some(5), "{}", stderr(&out));
    assert!(
        !created.exists(),
        "the failed run left {}",
        created.display()
    );
    assert!(fresh.is_dir());
}

#[test]
fn early_stop_saves_the_best_epoch_and_reports_on_rows_it_never_saw() {
    let dir = temp_dir("early");
    // A high learning rate makes the stopping rows' AUC wander.
    let out = train(
        &dir,
        &["--epochs", "8", "--lr", "0.03", "--early-stop", "2"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = json(&dir.join("metrics.json"));
    assert_eq!(metrics["epoch_figures_on"], "stopping rows");
    // The stopping rows are 20% of the training rows, carved out of them: the model is
    // fitted on the rest and scored on the validation rows, which are neither.
    let rows = |k: &str| metrics[k].as_u64().unwrap() as usize;
    assert_eq!(rows("fit_rows") + rows("stopping_rows"), rows("train_rows"));
    assert_eq!(rows("stopping_rows"), rows("train_rows") / 5);
    assert_eq!(
        rows("validation_rows"),
        metrics["validation"]["rows"].as_u64().unwrap() as usize
    );
    let epochs = metrics["epochs"].as_array().unwrap();
    let aucs: Vec<f64> = epochs
        .iter()
        .map(|e| e["validation"]["auc"].as_f64().unwrap())
        .collect();
    let best = aucs
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i + 1)
        .unwrap();
    assert_eq!(
        metrics["saved_epoch"].as_u64().unwrap() as usize,
        best,
        "AUCs {aucs:?}"
    );
    if aucs.len() < 8 {
        assert!(stderr(&out).contains("stopping early"), "{}", stderr(&out));
        assert_eq!(aucs.len(), best + 2, "stopped 2 epochs after the best");
    }
    let saved = SavedModel::load(&dir).unwrap();
    assert_eq!(saved.epoch, best);
    assert_eq!(saved.training.early_stop, Some(2));
    assert_eq!(saved.training.stop_split, Some(0.2));
    // The saved weights are the best epoch's, and the figures saved with them are the
    // validation rows'.
    let saved_auc = saved.validation.as_ref().unwrap().auc;
    assert_eq!(metrics["validation"]["auc"].as_f64().unwrap(), saved_auc);
    assert_ne!(
        saved_auc,
        aucs[best - 1],
        "scored on other rows than the stopping rows"
    );

    // With early stopping off, every epoch trains on all the training rows and is scored
    // on the validation rows, and the last epoch is saved.
    let off = temp_dir("early-off");
    let out = train(&off, &["--epochs", "3", "--early-stop", "off"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let metrics = json(&off.join("metrics.json"));
    assert_eq!(metrics["epoch_figures_on"], "validation rows");
    assert_eq!(metrics["stopping_rows"], 0);
    assert_eq!(metrics["saved_epoch"], 3);
    assert_eq!(
        metrics["validation"]["auc"],
        metrics["epochs"][2]["validation"]["auc"]
    );
    let saved = SavedModel::load(&off).unwrap();
    assert_eq!(
        (saved.training.early_stop, saved.training.stop_split),
        (None, None)
    );
}

/// The report's files are there and hold what they should. When Chromium is installed
/// (Debian's `chromium`; CI machines may not have it) the page is also rendered headless
/// to a screenshot, which must come out as a PNG of some size; otherwise that part is
/// skipped with a note. scripts/report_screenshot.sh does the same by hand.
#[test]
fn train_writes_a_report_that_renders() {
    let dir = temp_dir("report");
    assert!(train(&dir, &["--epochs", "2"]).status.success());
    for name in ["roc.svg", "ks.svg", "training.svg", "calibration.svg"] {
        let svg = std::fs::read_to_string(dir.join(name)).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{name}"
        );
        assert!(
            svg.contains("<polyline") || svg.contains("<path"),
            "{name} draws lines"
        );
    }
    assert!(std::fs::read_to_string(dir.join("roc.svg"))
        .unwrap()
        .contains("AUC 0."));
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("<svg").count(), 4, "the four plots inline");
    for id in [
        "id=\"metrics\"",
        "id=\"confusion\"",
        "id=\"calibration\"",
        "id=\"epochs\"",
        "AUC 95% CI",
        "Brier score",
        "KS",
    ] {
        assert!(html.contains(id), "report.html lacks {id}");
    }
    let auc = json(&dir.join("metrics.json"))["validation"]["auc"]
        .as_f64()
        .unwrap();
    assert!(
        html.contains(&format!("{auc:.4}")),
        "the table shows the AUC {auc:.4}"
    );

    let Ok(chromium) = which("chromium") else {
        eprintln!("chromium is not installed: skipped rendering report.html");
        return;
    };
    let png = dir.join("report.png");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,2600",
        ])
        .arg(format!("--screenshot={}", png.display()))
        .arg(format!("file://{}", dir.join("report.html").display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run chromium");
    // A browser that hangs must not hold the test run forever.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish the screenshot in 120 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(status.success(), "chromium failed: {status}");
    let bytes = std::fs::read(&png).expect("a screenshot");
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000,
        "{} bytes",
        bytes.len()
    );
}

fn which(name: &str) -> Result<std::path::PathBuf, ()> {
    let path = std::env::var_os("PATH").ok_or(())?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or(())
}

/// Predict's scores on the Taiwan file are eval's: the metrics computed from the
/// predicted file equal eval's to the last bit, and every row is there with its ID.
#[test]
fn predict_gives_the_scores_eval_uses() {
    let dir = temp_dir("predict");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let data = taiwan_file();
    let (d, m) = (data.to_str().unwrap(), dir.to_str().unwrap());
    // The same batch size for both (777: the last batch is partial). A row's score may
    // differ in its last bit between batch sizes, as gemm blocks a product by its size.
    let ev: serde_json::Value = serde_json::from_slice(
        &ok(&[
            "eval", "--model", m, "--data", d, "--device", "cpu", "--json", "--batch", "777",
            "--rows", "all",
        ])
        .stdout,
    )
    .unwrap();
    let scores_path = dir.join("scores.csv");
    ok(&[
        "predict",
        "--model",
        m,
        "--data",
        d,
        "--device",
        "cpu",
        "--batch",
        "777",
        "--out",
        scores_path.to_str().unwrap(),
    ]);
    let text = std::fs::read_to_string(&scores_path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("ID,probability_of_default"));
    let rows: Vec<(String, f32)> = lines
        .map(|l| {
            let (id, p) = l.split_once(',').unwrap();
            (id.to_string(), p.parse().unwrap())
        })
        .collect();
    assert_eq!(rows.len(), 30_000);
    assert_eq!(rows[0].0, "1");
    assert_eq!(rows[29_999].0, "30000");
    let probs: Vec<f32> = rows.iter().map(|r| r.1).collect();

    // The labels, read through the saved preprocessing.
    let model = SavedModel::load(&dir).unwrap();
    let mut reader = riskgrad::data::PredictReader::open(&data, &model.preprocessing)
        .unwrap()
        .with_labels()
        .unwrap();
    let mut labels = Vec::new();
    while let Some(b) = reader.next_batch(5000).unwrap() {
        labels.extend(b.labels.unwrap());
    }
    assert_eq!(ev["rows"], 30_000);
    assert_eq!(
        ev["auc"].as_f64().unwrap(),
        riskgrad::metrics::auc(&probs, &labels)
    );
    assert_eq!(
        ev["log_loss"].as_f64().unwrap(),
        riskgrad::metrics::log_loss(&probs, &labels)
    );
    assert_eq!(
        ev["brier"].as_f64().unwrap(),
        riskgrad::metrics::brier(&probs, &labels)
    );
    let ci = ev["auc_ci95"].as_array().unwrap();
    assert!(
        ci[0].as_f64().unwrap() < ev["auc"].as_f64().unwrap()
            && ev["auc"].as_f64().unwrap() < ci[1].as_f64().unwrap()
    );
    assert_eq!(ev["calibration"].as_array().unwrap().len(), 10);
    assert!(ev["threshold_is_max_ks"].as_bool().unwrap());

    // A given threshold is used as given; the table output names the metrics.
    let table = stdout(&ok(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--device",
        "cpu",
        "--threshold",
        "0.5",
        "--bootstrap",
        "100",
    ]));
    for word in [
        "AUC",
        "95% CI",
        "KS",
        "Gini",
        "log loss",
        "Brier",
        "threshold 0.5000",
        "precision",
        "recall",
        "F1",
        "confusion",
        "decile",
    ] {
        assert!(table.contains(word), "eval's table lacks {word}:\n{table}");
    }
}

#[test]
fn explain_gives_reasons_and_a_summary() {
    let dir = temp_dir("explain");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let m = dir.to_str().unwrap();
    let d = taiwan_file();
    let out = ok(&[
        "explain",
        "--model",
        m,
        "--data",
        d.to_str().unwrap(),
        "--device",
        "cpu",
        "--rows",
        "20",
        "--top",
        "3",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = v["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 20);
    let columns = SavedModel::load(&dir).unwrap().source_names();
    for row in rows {
        let reasons = row["reasons"].as_array().unwrap();
        assert!(reasons.len() <= 3);
        let c: Vec<f64> = reasons
            .iter()
            .map(|r| r["contribution"].as_f64().unwrap())
            .collect();
        assert!(
            c.windows(2).all(|w| w[0] >= w[1]) && c.iter().all(|&x| x > 0.0),
            "{c:?}"
        );
        for r in reasons {
            assert!(
                columns.contains(&r["column"].as_str().unwrap().to_string()),
                "a raw column name: {r}"
            );
        }
    }
    let importance = v["importance"].as_array().unwrap();
    assert_eq!(importance.len(), columns.len());
    assert!(stderr(&out).contains("completeness gap"));

    // `explain --rows ROWS --top TOP --out FILE` in the model's directory: the CSV.
    let reasons_csv = |rows: &str, top: &str, file: &str| {
        let path = dir.join(file);
        ok(&[
            "explain",
            "--model",
            m,
            "--device",
            "cpu",
            "--rows",
            rows,
            "--top",
            top,
            "--out",
            path.to_str().unwrap(),
        ]);
        std::fs::read_to_string(&path).unwrap()
    };
    let csv = reasons_csv("50", "2", "reasons.csv");
    assert!(csv.starts_with("id,score,reason_1,contribution_1,reason_2,contribution_2\n"));
    assert_eq!(csv.lines().count(), 51);

    // A --top past the columns gives one reason a column at most: no empty fields by the
    // million on every line (--top 1000000 once wrote 3.7 MB a row).
    let csv = reasons_csv("5", "1000000", "all-reasons.csv");
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(header.len(), 2 + 2 * columns.len(), "{header:?}");
    assert!(
        csv.lines().all(|l| l.split(',').count() == header.len()),
        "{csv}"
    );
}

/// On the file the model was trained on, eval scores by default only the rows training
/// held out, and so reproduces the validation metrics training recorded; `--rows all`
/// scores every row.
#[test]
fn eval_on_the_training_file_scores_the_held_out_rows() {
    let dir = temp_dir("eval-rows");
    assert!(train(
        &dir,
        &["--epochs", "1", "--val-split", "0.3", "--seed", "5"]
    )
    .status
    .success());
    let m = dir.to_str().unwrap();
    let eval = |extra: &[&str]| -> serde_json::Value {
        serde_json::from_slice(
            &ok(&[
                &[
                    "eval",
                    "--model",
                    m,
                    "--device",
                    "cpu",
                    "--json",
                    "--bootstrap",
                    "10",
                ],
                extra,
            ]
            .concat())
            .stdout,
        )
        .unwrap()
    };
    let recorded = &json(&dir.join("metrics.json"))["validation"];
    let held_out = eval(&[]);
    assert_eq!(held_out["rows_scored"], "validation");
    assert_eq!(held_out["rows"], 9000);
    assert_eq!(held_out["positives"], recorded["positives"]);
    for metric in ["auc", "ks", "log_loss", "brier"] {
        let (got, want) = (
            held_out[metric].as_f64().unwrap(),
            recorded[metric].as_f64().unwrap(),
        );
        assert!(
            (got - want).abs() < 1e-6,
            "{metric}: eval {got}, training {want}"
        );
    }
    let all = eval(&["--rows", "all"]);
    assert_eq!(
        (all["rows_scored"].as_str(), all["rows"].as_u64()),
        (Some("all"), Some(30_000))
    );

    // Trained on a named file, evaluated on the same file written another way.
    let file = taiwan_file();
    let dir = temp_dir("eval-rows-file");
    assert!(
        train(&dir, &["--epochs", "1", "--data", file.to_str().unwrap()])
            .status
            .success()
    );
    let parent = file.parent().unwrap();
    let other_spelling = parent
        .join("..")
        .join(parent.file_name().unwrap())
        .join(file.file_name().unwrap());
    let out = ok(&[
        "eval",
        "--model",
        dir.to_str().unwrap(),
        "--device",
        "cpu",
        "--json",
        "--bootstrap",
        "10",
        "--data",
        other_spelling.to_str().unwrap(),
    ]);
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (ev["rows_scored"].as_str(), ev["rows"].as_u64()),
        (Some("validation"), Some(6_000))
    );
}

/// When the training file has since shrunk so that its split holds no validation rows,
/// eval says so, names --rows and points to --rows all, with exit code 2.
#[test]
fn eval_refuses_an_empty_validation_split() {
    let dir = temp_dir("eval-empty-val");
    let csv = dir.join("tiny.csv");
    std::fs::write(&csv, "a,b,y\n1,2,0\n2,3,1\n3,1,0\n4,5,1\n5,2,0\n6,1,1\n").unwrap();
    let (c, m) = (csv.to_str().unwrap(), dir.join("model"));
    ok(&[
        "train",
        "--device",
        "cpu",
        "--data",
        c,
        "--val-split",
        "0.34",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--out",
        m.to_str().unwrap(),
    ]);
    std::fs::write(&csv, "a,b,y\n1,2,0\n2,3,1\n").unwrap();
    let out = riskgrad(&[
        "eval",
        "--model",
        m.to_str().unwrap(),
        "--data",
        c,
        "--device",
        "cpu",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--rows") && err.contains("no validation rows") && err.contains("--rows all"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn lifecycle_commands_fail_clearly() {
    let dir = temp_dir("fail");
    assert!(train(&dir, &["--epochs", "1"]).status.success());
    let m = dir.to_str().unwrap();
    let bad_csv = dir.join("bad.csv");
    std::fs::write(&bad_csv, "a,b\n1,2\n").unwrap();
    // Outside the model directory: every file in there is an input of predict.
    let out_dir = temp_dir("fail-out");
    let out_file = out_dir.join("out.csv");
    std::fs::write(&out_file, "previous contents").unwrap();
    for (args, needle, code) in [
        (vec!["eval", "--model", "/nonexistent/model"], "--model", 4),
        (
            vec![
                "predict",
                "--model",
                "/nonexistent/model",
                "--out",
                "/tmp/x.csv",
            ],
            "--model",
            4,
        ),
        (vec!["explain", "--model", m, "--top", "0"], "--top", 2),
        (
            vec!["eval", "--model", m, "--data", bad_csv.to_str().unwrap()],
            "bad.csv",
            3,
        ),
        (
            vec![
                "predict",
                "--model",
                m,
                "--data",
                bad_csv.to_str().unwrap(),
                "--out",
                out_file.to_str().unwrap(),
            ],
            "bad.csv",
            3,
        ),
        (
            vec![
                "predict",
                "--model",
                m,
                "--out",
                "/nonexistent/dir/scores.csv",
            ],
            "/nonexistent/dir/scores.csv",
            2,
        ),
        (vec!["eval", "--model", m, "--batch", "0"], "--batch", 2),
        (
            vec![
                "predict",
                "--model",
                m,
                "--batch",
                "0",
                "--out",
                "/tmp/never.csv",
            ],
            "--batch",
            2,
        ),
        (
            vec![
                "eval",
                "--model",
                m,
                "--data",
                bad_csv.to_str().unwrap(),
                "--rows",
                "validation",
            ],
            // The held-out rows are found by content: the file is read first, and this
            // one lacks the model's columns (eval_rows tests the --rows refusal).
            "the model needs columns",
            3,
        ),
        (vec!["explain", "--model", m, "--steps", "0"], "--steps", 2),
        (
            vec!["eval", "--model", m, "--threshold", "1.5"],
            "between 0 and 1",
            2,
        ),
        // Refused at once: it ran for hours before.
        (
            vec!["eval", "--model", m, "--bootstrap", "100000000"],
            "--bootstrap",
            2,
        ),
    ] {
        let out = riskgrad(&[&args[..], &["--device", "cpu"]].concat());
        assert_eq!(out.status.code(), Some(code), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(needle),
            "{args:?} should name {needle}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "previous contents",
        "a failed predict leaves the old file"
    );
    assert!(crate::common::temporary_files(&out_dir).is_empty());
}

/// SIGTERM (a scheduler's or a spot instance's notice) in the middle of an epoch: the
/// run finishes its current steps, writes a checkpoint there, says how to continue and
/// exits 143; continued with --resume, it ends with the same model as a run never
/// stopped.
#[cfg(unix)]
#[test]
fn sigterm_checkpoints_mid_epoch_and_the_resumed_run_is_the_same() {
    use std::io::{BufRead, BufReader};
    let whole = temp_dir("sigterm-whole");
    let stopped = temp_dir("sigterm-stopped");
    let flags = |dir: &Path| {
        vec![
            "train".to_string(),
            "--device".into(),
            "cpu".into(),
            "--hidden".into(),
            "8".into(),
            // 3000 steps an epoch: the notice lands well inside epoch 2 (at batch 256 an
            // epoch took 10 ms, and a busy machine let it end before the signal came).
            "--batch".into(),
            "8".into(),
            "--epochs".into(),
            "12".into(),
            "--early-stop".into(),
            "off".into(),
            "--out".into(),
            dir.to_str().unwrap().into(),
        ]
    };
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(flags(&stopped))
        .env("NODEVICE_SELECT", "1")
        .env("RISKGRAD_PROGRESS_SECONDS", "0")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut log = String::new();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if line.starts_with("epoch 2/12: step ") {
            break;
        }
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    for line in lines {
        log.push_str(&line.unwrap());
        log.push('\n');
    }
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(143), "{log}");
    assert!(
        log.contains("stopped at epoch 2, step") && log.contains("--resume"),
        "{log}"
    );
    let ck =
        riskgrad::checkpoint::Checkpoint::load(&stopped.join("checkpoint.safetensors")).unwrap();
    assert_eq!(ck.state.epoch, 1, "{log}");
    assert!(ck.state.within_epoch.is_some(), "{log}");
    assert!(!stopped.join("model.safetensors").exists());

    let mut resume = flags(&stopped);
    resume.extend(["--resume".into(), stopped.to_str().unwrap().into()]);
    let resume: Vec<&str> = resume.iter().map(String::as_str).collect();
    let out = riskgrad(&resume);
    assert!(out.status.success(), "{}", stderr(&out));
    // The default's three members: the kill came in the first one's second epoch.
    assert!(
        stderr(&out).contains("in epoch 2 of member 1/3, after step"),
        "{}",
        stderr(&out)
    );
    let all: Vec<String> = flags(&whole);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    assert!(riskgrad(&all).status.success());
    let weights = |d: &Path| std::fs::read(d.join("model.safetensors")).unwrap();
    assert!(
        weights(&whole) == weights(&stopped),
        "the resumed model differs"
    );
}
