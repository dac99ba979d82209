//! `train --resume` with other flags or other data: the message names what differs, in
//! words and by its flag, never as a debug dump of the model.

use crate::common::{riskgrad, stderr};
use crate::eval_rows::{rows, write};
use crate::lifecycle_common::temp_dir;

#[test]
fn resume_names_what_differs() {
    let dir = temp_dir("resume-differs");
    let (csv, model) = (dir.join("train.csv"), dir.join("model"));
    let (header, original) = rows(21, 200);
    write(&csv, &header, &original);
    let (c, m) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let base = ["train", "--device", "cpu", "--data", c, "--batch", "16"];
    let first = riskgrad(&[&base[..], &["--epochs", "1", "--hidden", "8,4", "--out", m]].concat());
    assert!(first.status.success(), "{}", stderr(&first));
    let resume = |extra: &[&str]| {
        let out = riskgrad(&[&base[..], &["--epochs", "2", "--resume", m], extra].concat());
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        stderr(&out)
    };
    for (extra, words) in [
        (
            &["--hidden", "8,2"][..],
            &["--hidden", "is 8,2 here but 8,4"][..],
        ),
        (
            &["--hidden", "8,4", "--activation", "tanh"],
            &["--activation", "tanh", "relu"],
        ),
        (
            &["--hidden", "8,4", "--dropout", "0.25"],
            &["--dropout", "0.25", "but 0 in"],
        ),
        (
            &["--hidden", "8,4", "--seed", "9"],
            &["--seed", "is 9 here but 0"],
        ),
        (
            &["--hidden", "8,4", "--val-split", "0.3"],
            &["--val-split", "0.3"],
        ),
        (
            &["--hidden", "8,4", "--optimizer", "sgd"],
            &["--optimizer", "sgd", "adam"],
        ),
    ] {
        let err = resume(extra);
        for w in words {
            assert!(err.contains(w), "{extra:?}: {w:?} not in: {err}");
        }
        assert!(
            !err.contains('{') && !err.contains("Some("),
            "{extra:?}: {err}"
        );
    }
    // Other data: a column more gives the model more inputs; the data is named. (Not a
    // constant one: that is dropped.)
    let extra_col: Vec<String> = original
        .iter()
        .enumerate()
        .map(|(i, r)| format!("{}.5,{r}", i % 7))
        .collect();
    write(&csv, &format!("extra,{header}"), &extra_col);
    let err = resume(&["--hidden", "8,4"]);
    assert!(
        err.contains("--resume")
            && err.contains("the data gives")
            && err.contains("input features here but"),
        "{err}"
    );
    assert!(!err.contains('{') && !err.contains("--hidden"), "{err}");
}

/// A damaged checkpoint is a model directory that cannot be used (exit 4), named, and
/// left as it was.
#[test]
fn a_damaged_checkpoint_is_refused_naming_it() {
    let dir = temp_dir("resume-damaged");
    let (csv, model) = (dir.join("train.csv"), dir.join("model"));
    let (header, original) = rows(23, 120);
    write(&csv, &header, &original);
    let (c, m) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let base = [
        "train",
        "--device",
        "cpu",
        "--data",
        c,
        "--batch",
        "16",
        "--hidden",
        "4",
        "--members",
        "1",
        "--early-stop",
        "off",
    ];
    let first = riskgrad(&[&base[..], &["--epochs", "1", "--out", m]].concat());
    assert!(first.status.success(), "{}", stderr(&first));
    let checkpoint = model.join("checkpoint.safetensors");
    let whole = std::fs::read(&checkpoint).unwrap();
    // Cut short, and the same length with bytes changed inside a tensor (the end of the
    // file is tensor data): once it resumed from the changed weights without a word.
    let mut flipped = whole.clone();
    let at = flipped.len() - 10;
    flipped[at..at + 4].copy_from_slice(b"ZZZZ");
    for (bytes, why) in [
        (whole[..whole.len() / 2].to_vec(), ""),
        (flipped, "checksum"),
    ] {
        std::fs::write(&checkpoint, &bytes).unwrap();
        let out = riskgrad(&[&base[..], &["--epochs", "2", "--resume", m]].concat());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(4), "{err}");
        assert!(
            err.contains("checkpoint.safetensors") && err.contains(why),
            "{err}"
        );
        assert_eq!(
            std::fs::read(&checkpoint).unwrap(),
            bytes,
            "the checkpoint was touched"
        );
    }
}

#[test]
fn a_resume_on_another_device_says_so_and_the_same_device_does_not() {
    let dir = temp_dir("resume-device");
    let (csv, model) = (dir.join("train.csv"), dir.join("model"));
    let (header, original) = rows(23, 200);
    write(&csv, &header, &original);
    let (c, m) = (csv.to_str().unwrap(), model.to_str().unwrap());
    let base = [
        "train",
        "--device",
        "cpu",
        "--data",
        c,
        "--batch",
        "16",
        "--hidden",
        "4",
        "--members",
        "1",
        "--early-stop",
        "off",
    ];
    let run = |extra: &[&str]| {
        let out = riskgrad(&[&base[..], extra].concat());
        assert!(out.status.success(), "{extra:?}: {}", stderr(&out));
        stderr(&out)
    };
    run(&["--epochs", "1", "--threads", "1", "--out", m]);
    // One thread and two round differently (each deterministic), so they are two devices.
    let other = run(&["--epochs", "2", "--threads", "2", "--resume", m]);
    assert!(
        other.contains(
            "the checkpoint trained on CPU (1 thread) and this run continues on CPU (2 threads)"
        ),
        "{other}"
    );
    let same = run(&["--epochs", "3", "--threads", "2", "--resume", m]);
    assert!(!same.contains("the checkpoint trained on"), "{same}");
}
