//! `--out` of predict and explain never destroys anything the user had: not the data
//! being scored, not a file of the model, not what a symbolic link points at, not a
//! device or a pipe. Each refusal comes before any work, names --out, and leaves every
//! file as it was.

use crate::common::{riskgrad, train_small};
use crate::lifecycle_common::{taiwan_file, temp_dir};
use std::path::Path;
use std::process::Command;

fn refused(args: &[&str], needle: &str) {
    let out = riskgrad(args);
    let msg = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {msg}");
    assert!(
        msg.contains("--out") && msg.contains(needle),
        "{args:?}: {msg}"
    );
    assert!(!msg.contains("panicked"), "{msg}");
}

fn snapshot(paths: &[&Path]) -> Vec<Vec<u8>> {
    paths.iter().map(|p| std::fs::read(p).unwrap()).collect()
}

#[test]
fn outputs_pointed_at_inputs_links_or_devices_are_refused() {
    let dir = temp_dir("outputs");
    let model = dir.join("model");
    let data = dir.join("applicants.csv.gz");
    std::fs::copy(taiwan_file(), &data).unwrap();
    let status = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--out",
        model.to_str().unwrap(),
    ])
    .status;
    assert!(status.success());
    let config = model.join("config.json");
    let weights = model.join("model.safetensors");
    let before = snapshot(&[&data, &config, &weights]);
    let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
    fn predict<'a>(m: &'a str, d: &'a str, out: &'a str) -> Vec<&'a str> {
        vec!["predict", "--model", m, "--data", d, "--out", out]
    }

    refused(&predict(m, d, d), "input");
    // A name promising another format (scores.csv.gz was written as plain CSV).
    for (name, format) in [("scores.csv.gz", "gzip"), ("scores.xlsx", "Excel")] {
        let path = dir.join(name);
        refused(
            &predict(m, d, path.to_str().unwrap()),
            &format!("promises {format}"),
        );
        assert!(!path.exists());
    }
    refused(&predict(m, d, config.to_str().unwrap()), "input");
    refused(&predict(m, d, weights.to_str().unwrap()), "input");
    let hard_link = dir.join("same-data.csv.gz");
    std::fs::hard_link(&data, &hard_link).unwrap();
    refused(&predict(m, d, hard_link.to_str().unwrap()), "input");
    refused(
        &[
            "explain", "--model", m, "--data", d, "--rows", "2", "--out", d,
        ],
        "input",
    );

    #[cfg(unix)]
    {
        let link = dir.join("scores-link.csv");
        let target = dir.join("precious.txt");
        std::fs::write(&target, "keep me").unwrap();
        std::os::unix::fs::symlink(&target, &link).unwrap();
        refused(&predict(m, d, link.to_str().unwrap()), "symbolic link");
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep me");
        let fifo = dir.join("pipe");
        assert!(Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        refused(&predict(m, d, fifo.to_str().unwrap()), "not a regular file");
        refused(&predict(m, d, "/dev/null"), "not a regular file");
    }
    refused(&predict(m, d, m), "directory");
    refused(&predict(m, d, "-"), "not read as standard output");
    // The outcome is no protected attribute (eval's fairness groups).
    let o = riskgrad(&[
        "eval",
        "--model",
        m,
        "--data",
        d,
        "--protected",
        "default payment next month",
    ]);
    assert_eq!(o.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--protected"));
    let missing = dir.join("no-such-dir").join("scores.csv");
    refused(&predict(m, d, missing.to_str().unwrap()), "does not exist");
    // A parent that is a file, and a directory that takes no files: said so, not the
    // system's "No such file or directory".
    let under_a_file = data.join("scores.csv");
    refused(
        &predict(m, d, under_a_file.to_str().unwrap()),
        "is not a directory",
    );
    if Path::new("/proc/version").is_file() {
        refused(
            &predict(m, d, "/proc/version"),
            "cannot create a file in /proc",
        );
        let out = riskgrad(&predict(m, d, "/proc/version"));
        let msg = String::from_utf8_lossy(&out.stderr);
        assert!(!msg.contains("No such file"), "{msg}");
    }

    assert_eq!(snapshot(&[&data, &config, &weights]), before);
    let leftovers = crate::common::temporary_files(&dir);
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // A new file, and an existing regular file that is no input, are written.
    let scores = dir.join("scores.csv");
    std::fs::write(&scores, "old scores").unwrap();
    let out = riskgrad(&predict(m, d, scores.to_str().unwrap()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(&scores).unwrap();
    assert!(
        written.starts_with("ID,probability_of_default"),
        "{written:.80}"
    );
}

/// A training that fails while writing its files (here: report.html is larger than the
/// process may write, as on a full disk) leaves the previous model, its metrics and its
/// report exactly as they were, loadable; and a directory another run is writing is
/// refused up front.
#[test]
fn a_failed_save_keeps_the_old_model_and_a_locked_directory_is_refused() {
    let dir = temp_dir("transactional");
    let model = dir.join("model");
    let data = crate::common::fixture("credit_mixed.csv");
    let train = |seed: &str| train_small(&data, &model, &["--epochs", "2", "--seed", seed]);
    let first = train("1");
    assert!(first.status.success(), "{}", crate::common::stderr(&first));
    let files = [
        "model.safetensors",
        "config.json",
        "metrics.json",
        "report.html",
    ];
    let paths: Vec<_> = files.iter().map(|f| model.join(f)).collect();
    let path_refs: Vec<&Path> = paths.iter().map(|p| p.as_path()).collect();
    let before = snapshot(&path_refs);

    // The save fails at report.html, after the metrics were written and before the
    // model was (a file-size limit: unix only).
    #[cfg(unix)]
    {
        let failed = crate::model_dir_swap::train_with_files_limited(
            &data,
            &model,
            &["--epochs", "2", "--seed", "2"],
            false,
        );
        assert_eq!(
            failed.status.code(),
            Some(3),
            "{}",
            crate::common::stderr(&failed)
        );
        assert_eq!(
            snapshot(&path_refs),
            before,
            "an earlier run's file was replaced"
        );
        riskgrad::model_io::SavedModel::load(&model).unwrap();
        let leftovers = crate::common::temporary_files(&model);
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    // While another process holds the directory's lock, a training into it is refused
    // before it starts, naming --out and the lock; once released, it goes through.
    let lock = riskgrad::files::DirLock::try_acquire(&model)
        .unwrap()
        .expect("no one else holds it");
    let busy = train("2");
    let msg = crate::common::stderr(&busy);
    assert_eq!(busy.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("--out") && msg.contains(".riskgrad.lock"),
        "{msg}"
    );
    assert_eq!(snapshot(&path_refs), before);
    drop(lock);
    let second = train("2");
    assert!(
        second.status.success(),
        "{}",
        crate::common::stderr(&second)
    );
    assert_ne!(
        snapshot(&path_refs),
        before,
        "the new run's files are in place"
    );
}

/// `train --out` naming a file (here its own data file) is refused before any work,
/// naming --out, and the file is left as it was.
#[test]
fn train_out_naming_a_file_is_refused() {
    let dir = temp_dir("train-out-file");
    let data = dir.join("loans.csv");
    std::fs::copy(crate::common::fixture("credit_mixed.csv"), &data).unwrap();
    let before = std::fs::read(&data).unwrap();
    for extra in [&[][..], &["--cv", "3"]] {
        let out = train_small(&data, &data, extra);
        let msg = crate::common::stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{msg}");
        assert!(msg.contains("--out") && msg.contains("is a file"), "{msg}");
        assert_eq!(std::fs::read(&data).unwrap(), before);
    }
}
