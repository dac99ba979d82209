//! A hostile user's files, generated: a valid CSV file and a valid model directory are
//! mutated (bytes flipped, cut short, fields duplicated or dropped, cells swapped for
//! huge numbers or text) and every command is run on them. Each must end with success
//! or a clear error and its documented exit status: never a panic, an abort, a signal or
//! a hang. Seeded, so a failure repeats; bounded to seconds.

use crate::common::{fixture, train_small};
use crate::lifecycle_common::temp_dir;
use riskgrad::rng::Rng;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Longest a command may take on these small files before it counts as a hang.
const HANG: Duration = Duration::from_secs(60);

/// Runs riskgrad with `args`; panics unless it ended by itself within `HANG`, with a
/// documented exit status, and without a Rust panic message.
fn run_checked(args: &[&str], what: &str) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > HANG {
            let _ = child.kill();
            panic!("{what}: {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut err = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let code = status.code();
    assert!(
        matches!(code, Some(0 | 2 | 3 | 4)),
        "{what}: {args:?} ended with {status:?}:\n{err}"
    );
    assert!(!err.contains("panicked"), "{what}: {args:?}:\n{err}");
    if code != Some(0) {
        assert!(
            err.contains("error"),
            "{what}: {args:?}: no message:\n{err}"
        );
    }
}

/// One mutation of `bytes`, chosen by `rng`; returns its name for the failure message.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) -> &'static str {
    let n = bytes.len().max(1);
    match rng.below(7) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(n).min(bytes.len().saturating_sub(1));
                if let Some(b) = bytes.get_mut(i) {
                    *b ^= 1 << rng.below(8);
                }
            }
            "bytes flipped"
        }
        1 => {
            bytes.truncate(rng.below(n));
            "cut short"
        }
        2 => {
            // A line's field repeated (one field too many on that line).
            let at = nth_of(bytes, b',', rng);
            let field: Vec<u8> = bytes[at..]
                .iter()
                .take_while(|&&b| b != b'\n')
                .take(12)
                .copied()
                .collect();
            bytes.splice(at..at, field);
            "field duplicated"
        }
        3 => {
            // A field separator dropped (one field too few).
            let at = nth_of(bytes, b',', rng);
            if at < bytes.len() {
                bytes.remove(at);
            }
            "separator dropped"
        }
        4 => {
            let huge: &[&[u8]] = &[
                b"1e308",
                b"-1e39",
                b"inf",
                b"NaN",
                b"99999999999999999999999",
            ];
            let at = nth_of(bytes, b',', rng);
            bytes.splice(at..at, huge[rng.below(huge.len())].iter().copied());
            "huge number"
        }
        5 => {
            let at = nth_of(bytes, b'\n', rng);
            bytes.splice(at..at, b"\"unterminated".iter().copied());
            "open quote"
        }
        _ => {
            bytes.extend_from_slice(&[0xff, 0xfe, 0x00, b',', b'\r']);
            "binary tail"
        }
    }
}

/// The position just after a random occurrence of `byte` (0 when there is none).
fn nth_of(bytes: &[u8], byte: u8, rng: &mut Rng) -> usize {
    let hits: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == byte).collect();
    match hits.len() {
        0 => 0,
        n => hits[rng.below(n)] + 1,
    }
}

#[test]
fn mutated_data_and_model_files_never_crash_any_command() {
    let dir = temp_dir("mutation-fuzz");
    let data = fixture("credit_mixed.csv");
    let good_model = dir.join("model");
    assert!(train_small(&data, &good_model, &["--epochs", "2"])
        .status
        .success());
    let clean = std::fs::read(&data).unwrap();
    let mut rng = Rng::new(0xF022);
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();

    // Mutated data through every command that reads data.
    for case in 0..24 {
        let mut bytes = clean.clone();
        let what = mutate(&mut bytes, &mut rng);
        let csv = path(&format!("case{case}.csv"));
        std::fs::write(&csv, &bytes).unwrap();
        let what = format!("data case {case} ({what})");
        let model = good_model.to_str().unwrap();
        let scores = path(&format!("scores{case}.csv"));
        run_checked(&["inspect", "--data", &csv], &what);
        run_checked(
            &[
                "train",
                "--data",
                &csv,
                "--device",
                "cpu",
                "--hidden",
                "4",
                "--epochs",
                "2",
                "--out",
                &path(&format!("m{case}")),
            ],
            &what,
        );
        run_checked(
            &[
                "predict", "--model", model, "--data", &csv, "--device", "cpu", "--out", &scores,
            ],
            &what,
        );
        run_checked(
            &[
                "eval", "--model", model, "--data", &csv, "--device", "cpu", "--rows", "all",
            ],
            &what,
        );
        run_checked(
            &[
                "explain", "--model", model, "--data", &csv, "--device", "cpu", "--rows", "2",
            ],
            &what,
        );
    }

    // Mutated model files through every command that reads a model.
    for case in 0..16 {
        let model = dir.join(format!("bad-model{case}"));
        std::fs::create_dir_all(&model).unwrap();
        for f in ["model.safetensors", "config.json"] {
            std::fs::copy(good_model.join(f), model.join(f)).unwrap();
        }
        let victim = model.join(["model.safetensors", "config.json"][case % 2]);
        let mut bytes = std::fs::read(&victim).unwrap();
        let what = mutate(&mut bytes, &mut rng);
        std::fs::write(&victim, &bytes).unwrap();
        let what = format!("model case {case} ({what} in {})", victim.display());
        let (m, d) = (model.to_str().unwrap(), data.to_str().unwrap());
        let scores = path(&format!("model-scores{case}.csv"));
        run_checked(
            &[
                "predict", "--model", m, "--data", d, "--device", "cpu", "--out", &scores,
            ],
            &what,
        );
        run_checked(
            &["eval", "--model", m, "--data", d, "--device", "cpu"],
            &what,
        );
        run_checked(
            &[
                "explain", "--model", m, "--data", d, "--device", "cpu", "--rows", "2",
            ],
            &what,
        );
    }
}
