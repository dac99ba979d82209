//! riskgrad writes a file by replacing it (a temporary file renamed over it), so it must
//! never be pointed at something that is not a regular file: as root, `bench --json
//! /dev/full` once replaced the device node with a JSON file. A named pipe stands in for
//! a device here (the same check refuses both, and a failing test must not harm /dev).

use crate::common::{riskgrad, stderr, TempDir};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

fn fifo(path: &Path) {
    let name = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path that outlives the call.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0, "mkfifo");
}

fn still_a_fifo(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_fifo())
}

#[test]
fn the_library_never_replaces_a_special_file() {
    let dir = TempDir::new("special-lib");
    let pipe = dir.join("pipe");
    fifo(&pipe);
    let e = riskgrad::files::write_atomically(&pipe, b"results").unwrap_err();
    assert!(e.to_string().contains("not a regular file"), "{e}");
    assert!(still_a_fifo(&pipe));
    assert!(
        riskgrad::files::write_atomically(dir.as_ref(), b"results").is_err(),
        "a directory is not replaced either"
    );
    let listed: Vec<_> = std::fs::read_dir(dir.as_ref()).unwrap().collect();
    assert_eq!(listed.len(), 1, "no temporary file left: {listed:?}");
}

#[test]
fn bench_refuses_a_json_path_that_is_not_a_regular_file_before_measuring() {
    let dir = TempDir::new("special-bench");
    let pipe = dir.join("pipe");
    fifo(&pipe);
    let p = pipe.to_str().unwrap();
    let out = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "3",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--no-peak",
        "--json",
        p,
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("--json") && message.contains("not a regular file"),
        "{message}"
    );
    assert!(out.stdout.is_empty(), "nothing was measured first");
    assert!(still_a_fifo(&pipe));
}

/// A directory holding a two-feature table (`seed`) and a small model trained on it:
/// the directory, the table's path and the model's.
fn table_and_model(name: &str, seed: u64) -> (TempDir, PathBuf, PathBuf) {
    let dir = TempDir::new(name);
    let data = dir.join("loans.csv");
    crate::common::two_feature_table(&data, 300, seed);
    let model = dir.join("model");
    let trained = crate::common::train_small(&data, &model, &["--epochs", "1", "--members", "1"]);
    assert!(trained.status.success(), "{}", stderr(&trained));
    (dir, data, model)
}

/// Data may come through a pipe (`--data /dev/stdin`) or a named pipe: read once, from
/// its first byte. The Parquet sniff used to open it first and take 4 bytes (the
/// header's first column lost its name, or the target was not found), and a FIFO
/// opened a second time waited for a writer forever.
#[test]
fn data_read_through_a_pipe_or_a_fifo_scores_as_the_file_does() {
    use std::io::Write;
    let (dir, data, model) = table_and_model("special-pipe-data", 5);
    let want = crate::common::predict_cpu(&model, data.to_str().unwrap(), &dir.join("file.csv"));

    let predict_from = |source: &str, out: &str| {
        let m = model.to_str().unwrap().to_string();
        let out = dir.join(out).to_str().unwrap().to_string();
        let source = source.to_string();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
                .args(["predict", "--device", "cpu", "--model", &m])
                .args(["--data", &source, "--out", &out])
                .env("NODEVICE_SELECT", "1")
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("run riskgrad")
        }
    };
    let mut child = predict_from("/dev/stdin", "stdin.csv")();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(&data).unwrap())
        .unwrap();
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.join("stdin.csv")).unwrap(),
        want
    );

    let pipe = dir.join("pipe");
    fifo(&pipe);
    let mut child = predict_from(pipe.to_str().unwrap(), "fifo.csv")();
    // One writer opens the FIFO once, as `cat data > pipe` would; a reader opening it a
    // second time waits for another writer forever, so the run is given a deadline.
    let bytes = std::fs::read(&data).unwrap();
    let writer = pipe.clone();
    std::thread::spawn(move || std::fs::write(writer, bytes));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("predict from a FIFO still waiting after 60 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(dir.join("fifo.csv")).unwrap(), want);
}

/// A signal ends `predict` with 128 + its number and without its temporary file: here
/// the data comes through a FIFO whose writer holds it open after the header and one
/// row, so the run is sure to be between its first and last write when it is stopped.
#[test]
fn a_stopped_predict_leaves_the_old_output_and_no_temporary_file() {
    use std::io::Write;
    let (dir, data, model) = table_and_model("special-stop", 6);
    let out = dir.join("scores.csv");
    std::fs::write(&out, "the scores of an earlier run").unwrap();
    for (signal, status) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let pipe = dir.join(format!("pipe{signal}"));
        fifo(&pipe);
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
            .args([
                "predict",
                "--device",
                "cpu",
                "--model",
                model.to_str().unwrap(),
            ])
            .args([
                "--data",
                pipe.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ])
            .env("NODEVICE_SELECT", "1")
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Opening blocks until predict opens the FIFO to read.
        let mut writer = std::fs::OpenOptions::new().write(true).open(&pipe).unwrap();
        let text = std::fs::read_to_string(&data).unwrap();
        let first_rows: String = text.lines().take(2).map(|l| format!("{l}\n")).collect();
        writer.write_all(first_rows.as_bytes()).unwrap();
        let temporaries = || crate::common::temporary_files(dir.as_ref()).len();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while temporaries() == 0 {
            assert!(std::time::Instant::now() < deadline, "no temporary file");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        // SAFETY: a signal to our own child, which is still running (it waits for rows).
        assert_eq!(unsafe { libc::kill(child.id() as i32, signal) }, 0);
        let o = child.wait_with_output().unwrap();
        drop(writer);
        assert_eq!(o.status.code(), Some(status), "{}", stderr(&o));
        let name = if signal == libc::SIGINT {
            "SIGINT"
        } else {
            "SIGTERM"
        };
        assert!(
            stderr(&o).contains(&format!(
                "stopped by {name}: the outputs being written were removed"
            )),
            "{}",
            stderr(&o)
        );
        assert_eq!(temporaries(), 0);
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "the scores of an earlier run"
        );
    }
}

/// Standard output that cannot be written (`> /dev/full`) is an error of its own (exit
/// 3, one line naming it), not a panic's backtrace and exit 101.
#[test]
fn an_unwritable_standard_output_is_a_clear_error() {
    let dir = TempDir::new("special-stdout");
    let data = dir.join("loans.csv");
    crate::common::two_feature_table(&data, 100, 7);
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(["inspect", "--data", data.to_str().unwrap()])
        .env("NODEVICE_SELECT", "1")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let message = stderr(&o);
    assert!(
        message.contains("could not write to standard output") && !message.contains("panicked"),
        "{message}"
    );
    // clap writes --help itself: a help text that was not written is no success either.
    let full = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap();
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .arg("--help")
        .stdout(full)
        .output()
        .unwrap();
    assert_eq!(help.status.code(), Some(3));
}

/// `train --log json` on a table of 2,000 rows into `DIR/model`, its events read line by
/// line until `enough` says so, then the reader dropped: the run's later prints fail.
fn train_until_the_log_reader_leaves(
    dir: &TempDir,
    enough: impl Fn(&str) -> bool,
) -> (std::process::Output, std::path::PathBuf) {
    use std::io::BufRead;
    let data = dir.join("loans.csv");
    crate::common::two_feature_table(&data, 2000, 8);
    let out = dir.join("model");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(["train", "--device", "cpu", "--data", data.to_str().unwrap()])
        .args(["--epochs", "20", "--early-stop", "off", "--members", "1"])
        .args(["--log", "json", "--out", out.to_str().unwrap()])
        .env("NODEVICE_SELECT", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        if enough(&line.unwrap()) {
            break;
        }
    }
    drop(lines); // the run's next event has nowhere to go
    (child.wait_with_output().unwrap(), out)
}

/// `train_until_the_log_reader_leaves`'s training, resumed from `out` to its end.
fn resume_the_training(dir: &TempDir, out: &Path) -> std::process::Output {
    let data = dir.join("loans.csv");
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        data,
        "--epochs",
        "20",
        "--early-stop",
        "off",
        "--members",
        "1",
        "--resume",
        out,
        "--out",
        out,
    ])
}

/// A training whose log reader goes away (`train --log json | head -1`) ends as an
/// error (exit 3) and takes the model directory it created with it, instead of being
/// killed by SIGPIPE with an empty directory left behind.
#[test]
fn a_training_whose_log_reader_goes_away_leaves_no_directory() {
    let dir = TempDir::new("special-closed-log");
    let (o, out) = train_until_the_log_reader_leaves(&dir, |line| {
        assert!(line.contains("\"start\""), "{line}");
        true
    });
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains("could not write to standard output")
            || said.contains("the run's files are written"),
        "{said}"
    );
    if out.exists() {
        // A busy machine delayed the reader past the run's first epochs (or all of
        // them): the cases of the next two tests.
        assert!(
            said.contains("keeps the checkpoint this run wrote")
                || said.contains("the run's files are written"),
            "{said}"
        );
    }
}

/// A reader that goes away mid-run (after epoch 2 of 20): the run ends with exit 3, its
/// directory keeping the checkpoint it wrote, and says so after the error with the
/// command that continues it, which does.
#[test]
fn a_log_reader_gone_mid_run_leaves_the_checkpoint_and_says_how_to_resume() {
    let dir = TempDir::new("special-closed-log-mid");
    let (o, out) = train_until_the_log_reader_leaves(&dir, |line| {
        line.contains("\"event\":\"epoch\"") && line.contains("\"epoch\":2,")
    });
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let said = stderr(&o);
    let error = said
        .find("error: could not write to standard output")
        .expect(&said);
    let note = said
        .find(&format!(
            "note: {} keeps the checkpoint this run wrote: `riskgrad train --resume {}`",
            out.display(),
            out.display()
        ))
        .expect(&said);
    assert!(error < note, "the note follows the error: {said}");
    assert!(
        out.join("checkpoint.safetensors").is_file() && !out.join("model.safetensors").exists()
    );
    let resumed = resume_the_training(&dir, &out);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(out.join("model.safetensors").is_file());
}

/// A reader that goes away after the last epoch: the model is written when the run's
/// last line fails. The files stay (they are whole), and the error (exit 3) says so,
/// naming the directory, instead of a bare print failure beside a model.
#[test]
fn a_log_reader_gone_after_the_last_epoch_leaves_the_written_model_and_says_so() {
    let dir = TempDir::new("special-closed-log-late");
    let (o, out) = train_until_the_log_reader_leaves(&dir, |line| {
        line.contains("\"event\":\"epoch\"") && line.contains("\"epoch\":20,")
    });
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.contains(&format!(
            "{}: the run's files are written, but its last line could not be printed",
            out.display()
        )),
        "{said}"
    );
    assert!(out.join("model.safetensors").is_file() && out.join("model_card.md").is_file());
}

/// A retraining into a directory that holds a model, failing mid-run (its log reader
/// gone after epoch 2): the earlier model's files and its checkpoint stay byte for
/// byte (the run's own went to checkpoint.next.safetensors); `--resume` continues the
/// interrupted run from there, and its model then takes over the directory, checkpoint
/// included.
#[test]
fn an_interrupted_retraining_leaves_the_earlier_models_checkpoint_as_it_was() {
    let dir = TempDir::new("special-retrain");
    let (first, out) = train_until_the_log_reader_leaves(&dir, |_| false);
    assert!(first.status.success(), "{}", stderr(&first));
    let files = ["model.safetensors", "config.json", "checkpoint.safetensors"];
    let before: Vec<Vec<u8>> = files
        .iter()
        .map(|f| std::fs::read(out.join(f)).unwrap())
        .collect();
    let (o, _) = train_until_the_log_reader_leaves(&dir, |line| {
        line.contains("\"event\":\"epoch\"") && line.contains("\"epoch\":2,")
    });
    assert_eq!(o.status.code(), Some(3), "{}", stderr(&o));
    for (f, bytes) in files.iter().zip(&before) {
        assert_eq!(&std::fs::read(out.join(f)).unwrap(), bytes, "{f} changed");
    }
    let next = out.join("checkpoint.next.safetensors");
    assert!(next.is_file(), "the run's checkpoint");
    assert!(
        stderr(&o).contains("keeps the checkpoint this run wrote"),
        "{}",
        stderr(&o)
    );
    let resumed = resume_the_training(&dir, &out);
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("after epoch 2"),
        "{}",
        stderr(&resumed)
    );
    assert!(!next.exists(), "renamed once the run's model is in place");
    assert!(out.join("checkpoint.safetensors").is_file());
}
