//! The command line end to end: what a user types, what comes out, and the exit code.

use crate::common::{riskgrad, stderr, train_small, TempDir};

/// Where a command may create its output directory; removed when dropped.
fn temp_dir(name: &str) -> TempDir {
    TempDir::unmade(name)
}

#[test]
fn train_on_the_bundled_data_writes_metrics() {
    let dir = temp_dir("train");
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("val AUC"),
        "a line per epoch: {}",
        stderr(&out)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("metrics.json")).unwrap()).unwrap();
    let epochs = json["epochs"].as_array().unwrap();
    assert_eq!(epochs.len(), 2);
    assert!(epochs[1]["validation"]["auc"].as_f64().unwrap() > 0.7);
    assert!(json["train_rows_per_second"].as_f64().unwrap() > 0.0);
    assert_eq!(
        crate::common::temporary_files(&dir),
        Vec::<String>::new(),
        "no temporary file left behind"
    );
}

#[test]
fn bad_flags_name_the_flag_and_exit_2() {
    for (args, flag) in [
        (&["train", "--lr=-1"][..], "--lr"),
        (&["train", "--lr", "1e39"][..], "range of a 32-bit float"),
        (&["train", "--batch", "0"][..], "--batch"),
        (&["train", "--val-split", "1.5"][..], "--val-split"),
        (&["train", "--pos-weight", "heavy"][..], "--pos-weight"),
        (&["train", "--hidden", "64,0"][..], "--hidden"),
        (&["train", "--epochs", "0"][..], "--epochs"),
        (&["train", "--pos-weight", "1e-30"][..], "--pos-weight"),
        // Not "--numeric", which the history's columns join.
        (
            &[
                "train",
                "--model",
                "gru",
                "--sequence",
                "default payment next month",
            ][..],
            "--sequence: \"default payment next month\" is the target column",
        ),
        // A negative value is the flag's, not an unknown argument.
        (&["train", "--lr", "-1"][..], "must be a positive number"),
        (
            &["train", "--optimizer", "sgd", "--momentum", "nan"][..],
            "--momentum",
        ),
        (
            &["train", "--optimizer", "sgd", "--momentum", "-1"][..],
            "--momentum",
        ),
        (
            &["train", "--optimizer", "sgd", "--momentum", "1"][..],
            "--momentum",
        ),
        (
            &["train", "--optimizer", "adamw", "--weight-decay", "nan"][..],
            "--weight-decay",
        ),
        (
            &["train", "--optimizer", "adamw", "--weight-decay", "-5"][..],
            "--weight-decay",
        ),
        (
            &["train", "--optimizer", "adamw", "--weight-decay", "1e30"][..],
            "--weight-decay",
        ),
        (
            &[
                "train",
                "--optimizer",
                "adamw",
                "--lr",
                "0.5",
                "--weight-decay",
                "2",
            ][..],
            "--weight-decay",
        ),
    ] {
        let out = riskgrad(
            &[
                args,
                &[
                    "--device",
                    "cpu",
                    "--out",
                    temp_dir("bad").to_str().unwrap(),
                ],
            ]
            .concat(),
        );
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(flag),
            "{args:?} should name {flag}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    }
}

#[test]
fn a_missing_data_file_is_named() {
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        "/nonexistent/loans.csv",
    ]);
    assert_eq!(out.status.code(), Some(3), "unreadable input data exits 3");
    assert!(
        stderr(&out).contains("/nonexistent/loans.csv"),
        "{}",
        stderr(&out)
    );
}

/// A table too small to leave validation rows is refused before any network trains
/// (it used to train one member, say the model trains, then fail); logistic regression,
/// which needs none, still trains.
#[test]
fn a_table_with_no_validation_rows_is_refused_before_training() {
    let data = crate::common::TempFile::new("two-rows.csv", b"a,b,default\n1,2,0\n3,4,1\n");
    let dir = temp_dir("no-val");
    let (data_path, out_dir) = (data.0.to_str().unwrap(), dir.to_str().unwrap());
    let args = |model| {
        [
            "train", "--device", "cpu", "--model", model, "--target", "default", "--data",
            data_path, "--out", out_dir,
        ]
    };
    let out = riskgrad(&args("mlp"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("--val-split") && err.contains("no validation rows"),
        "{err}"
    );
    assert!(!err.contains("member 1"), "refused before training: {err}");
    assert!(!err.contains("the model trains"), "{err}");
    assert!(!dir.exists());
    let out = riskgrad(&args("logistic"));
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn an_unknown_device_lists_what_there_is() {
    let out = riskgrad(&["train", "--device", "no-such-gpu-anywhere", "--epochs", "1"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-gpu-anywhere"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn devices_lists_the_cpu_backend() {
    let out = riskgrad(&["devices"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("native CPU backend"));
}

/// A headless run (stderr not a terminal, as under a job scheduler) draws no bar, so it
/// prints plain progress lines instead, at most `RISKGRAD_PROGRESS_SECONDS` apart (10 s
/// by default; 0 here, so every run of steps prints one).
#[test]
fn a_headless_run_logs_plain_progress_lines() {
    let dir = temp_dir("headless");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(["train", "--device", "cpu", "--epochs", "1", "--hidden", "8"])
        .args(["--members", "1"])
        .arg("--out")
        .arg(&*dir)
        .env("NODEVICE_SELECT", "1")
        .env("RISKGRAD_PROGRESS_SECONDS", "0")
        .output()
        .unwrap();
    let text = stderr(&out);
    assert!(out.status.success(), "{text}");
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("epoch 1/1: step "))
        .collect();
    assert!(lines.len() >= 5, "{text}");
    // The steps only go forward, and the last line is the epoch's last step.
    let steps: Vec<usize> = lines
        .iter()
        .map(|l| {
            l["epoch 1/1: step ".len()..]
                .split('/')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    assert!(steps.windows(2).all(|w| w[0] < w[1]), "{steps:?}");
    assert!(lines.last().unwrap().contains(&format!(
        "step {}/{}",
        steps[steps.len() - 1],
        steps[steps.len() - 1]
    )));
}

/// `--log json`: stdout holds one JSON object per line and nothing else: a start event,
/// an epoch event per epoch with the documented fields, and a done event (or an error
/// event with the exit status); cross-validation adds one event per fold.
#[test]
fn log_json_writes_one_event_per_line_on_stdout() {
    let data = crate::common::fixture("credit_mixed.csv");
    let dir = temp_dir("log-json");
    let run_in = |dir: &std::path::Path, extra: &[&str]| {
        let out = train_small(&data, dir, &[&["--log", "json"][..], extra].concat());
        let events: Vec<serde_json::Value> = String::from_utf8(out.stdout.clone())
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
            .collect();
        (out, events)
    };
    let run = |extra: &[&str]| run_in(&dir, extra);
    let kinds = |events: &[serde_json::Value]| -> Vec<String> {
        events
            .iter()
            .map(|e| e["event"].as_str().unwrap().to_string())
            .collect()
    };
    let (out, events) = run(&["--epochs", "3", "--early-stop", "off", "--members", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(kinds(&events), ["start", "epoch", "epoch", "epoch", "done"]);
    for e in &events {
        assert!(e["time"].as_f64().unwrap() > 1.6e9, "{e}");
    }
    assert_eq!(events[0]["validation_rows"], 8);
    for key in [
        "epoch",
        "epochs",
        "train_loss",
        "figures_on",
        "auc",
        "ks",
        "log_loss",
        "seconds",
        "rows_per_second",
    ] {
        assert!(!events[1][key].is_null(), "{key}: {}", events[1]);
    }
    assert_eq!(events[4]["saved_epoch"], 3);
    assert!(
        stderr(&out).contains("done in"),
        "the person's line is on stderr"
    );

    // Members: an event as each begins, then its epochs; done names each kept epoch.
    let (out, events) = run(&["--epochs", "2", "--early-stop", "off", "--members", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let member_run = [
        "start", "member", "epoch", "epoch", "member", "epoch", "epoch",
    ];
    assert_eq!(kinds(&events), [&member_run[..], &["done"]].concat());
    assert_eq!(events[0]["members"], 2);
    assert_eq!(
        (events[4]["member"].as_u64(), events[4]["members"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(events[7]["saved_epochs"], serde_json::json!([2, 2]));

    let (out, events) = run(&["--lr", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(kinds(&events), ["error"]);
    assert_eq!(events[0]["exit"], 2);
    assert!(events[0]["message"].as_str().unwrap().contains("--lr"));

    // Into a directory of its own: a cross-validation saves no model, so it may not
    // replace the one trained above.
    let (out, events) = run_in(&dir.join("cv"), &["--cv", "2"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(kinds(&events), ["start", "fold", "fold", "done"]);
    assert!(events[1]["auc"].is_number() || events[1]["auc"].is_null());
}

/// A setting of an optimizer the run does not use is said, not silently dropped.
#[test]
fn another_optimizers_setting_is_noted() {
    let data = crate::common::fixture("credit_mixed.csv");
    let dir = temp_dir("other-optimizer");
    let base = ["--epochs", "1", "--members", "1"];
    let out = train_small(&data, &dir, &[&base[..], &["--momentum", "0.5"]].concat());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("note: --momentum is a setting of --optimizer sgd"),
        "{}",
        stderr(&out)
    );
    let sgd = [&base[..], &["--optimizer", "sgd", "--momentum", "0.5"]].concat();
    let out = train_small(&data, &dir, &sgd);
    assert!(out.status.success() && !stderr(&out).contains("note: --momentum"));
}

/// Trains on a two-feature table (`rows`, `seed`) and on `variant` of its text, with
/// `flags`: the standard error of each, for a note the variant must bring and the plain
/// table must not.
fn stderr_plain_and_variant(
    name: &str,
    rows: usize,
    seed: u64,
    flags: &[&str],
    variant: impl Fn(&str) -> String,
) -> (String, String) {
    let dir = temp_dir(name);
    std::fs::create_dir_all(&dir).unwrap();
    let plain = dir.join("plain.csv");
    crate::common::two_feature_table(&plain, rows, seed);
    let changed = dir.join("variant.csv");
    std::fs::write(&changed, variant(&std::fs::read_to_string(&plain).unwrap())).unwrap();
    let run = |data: &std::path::Path, out: &str| {
        let o = train_small(data, &dir.join(out), flags);
        assert!(o.status.success(), "{}", stderr(&o));
        stderr(&o)
    };
    (run(&plain, "plain"), run(&changed, "variant"))
}

/// A column that copies the target gives a validation AUC of 1, which is noted as the
/// leak it likely is.
#[test]
fn a_perfect_validation_auc_is_noted_as_a_likely_leak() {
    let flags = ["--epochs", "2", "--members", "1", "--target", "default"];
    let (plain, leaky) = stderr_plain_and_variant("leak", 400, 12, &flags, |text| {
        let mut lines = text.lines();
        let mut leaky = format!("{},outcome_code\n", lines.next().unwrap());
        for line in lines {
            let target = line.rsplit(',').next().unwrap();
            leaky.push_str(&format!("{line},{target}\n"));
        }
        leaky
    });
    assert!(leaky.contains("(a leak)"), "{leaky}");
    assert!(!plain.contains("(a leak)"), "{plain}");
}

/// A target coded 2/1 is read by convention (2 = default, the German credit coding);
/// the run says which value it took as the default, and not for an obvious 0/1.
#[test]
fn a_target_read_by_convention_says_which_value_is_the_default() {
    let flags = ["--epochs", "1", "--members", "1"];
    let (plain, german) = stderr_plain_and_variant("target-2-1", 300, 14, &flags, |text| {
        let mut lines = text.lines();
        let mut coded = format!("{}\n", lines.next().unwrap());
        for line in lines {
            let (rest, y) = line.rsplit_once(',').unwrap();
            coded.push_str(&format!("{rest},{}\n", if y == "1" { 2 } else { 1 }));
        }
        coded
    });
    assert!(
        german.contains("\"2\" is read as the default and \"1\" as repaid"),
        "{german}"
    );
    assert!(!plain.contains("note: target"), "{plain}");
}

/// A file that repeats its rows puts copies of training rows among the validation rows:
/// said, with how many, and not for a file without repeats.
#[test]
fn validation_rows_copied_from_training_rows_are_noted() {
    let flags = ["--epochs", "1", "--members", "1"];
    let (plain, repeated) = stderr_plain_and_variant("repeated-rows", 200, 15, &flags, |text| {
        let (header, rows) = text.split_once('\n').unwrap();
        format!("{header}\n{}", rows.repeat(4))
    });
    assert!(
        repeated.contains("validation rows are copies of training rows"),
        "{repeated}"
    );
    assert!(!plain.contains("copies of training rows"), "{plain}");
}
