//! `--threads N`: the CPU backend's thread count, on every command. Training gives the
//! same weights whatever the count (kernels split by rows and columns and sum in an
//! order fixed by the shapes), and a count that makes no sense is refused naming the flag.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::temp_dir;

/// One epoch of the default MLP on the bundled data, with `threads` threads; with
/// `split`, every step's rows split across the lanes (`RISKGRAD_CPU_SPLIT=always`: one
/// lane a thread, whatever the machine's cores), else as the chooser decides.
fn weights_with(threads: &str, split: bool, dir: &std::path::Path) -> Vec<u8> {
    weights_at_batch(threads, split, "256", dir)
}

/// `weights_with` at a batch of `batch` rows.
fn weights_at_batch(threads: &str, split: bool, batch: &str, dir: &std::path::Path) -> Vec<u8> {
    weights_of(threads, split, &["--batch", batch], dir)
}

/// `weights_with` with `args` added to `train`'s.
fn weights_of(threads: &str, split: bool, args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join(format!("t{threads}-{split}-{}", args.join("_")));
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .env("NODEVICE_SELECT", "1")
        .env(
            "RISKGRAD_CPU_SPLIT",
            if split { "always" } else { "measure" },
        )
        .args([
            "train",
            "--device",
            "cpu",
            "--threads",
            threads,
            "--epochs",
            "1",
            "--early-stop",
            "off",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(args)
        .output()
        .expect("run riskgrad");
    assert!(o.status.success(), "--threads {threads}: {}", stderr(&o));
    let log = stderr(&o);
    let named = match threads {
        "1" => "CPU (1 thread)".to_string(),
        n => format!("CPU ({n} threads)"),
    };
    assert!(
        log.contains(&named),
        "the run names its thread count: {log}"
    );
    std::fs::read(out.join("model.safetensors")).unwrap()
}

#[test]
fn training_gives_the_same_weights_on_one_two_and_three_threads() {
    let dir = temp_dir("threads");
    let one = weights_with("1", false, &dir);
    assert_eq!(
        one,
        weights_with("2", false, &dir),
        "1 and 2 threads differ"
    );
    assert_eq!(
        one,
        weights_with("3", false, &dir),
        "1 and 3 threads differ"
    );
}

/// Every step split: its batch rows across 2 and 3 lanes (`cpu::step_split`), the sums
/// over the rows across them, and the kernels across them where the lanes split them.
#[test]
fn training_with_every_step_split_gives_the_weights_of_one_thread() {
    let dir = temp_dir("threads-split");
    let one = weights_with("1", false, &dir);
    assert_eq!(one, weights_with("2", true, &dir), "2 split lanes differ");
    assert_eq!(one, weights_with("3", true, &dir), "3 split lanes differ");
    // A batch that does not divide: 33 rows on 3 lanes are blocks of 16 and 17, not 16,
    // 16 and 1 (a one-row product takes another path, with other bits).
    let one = weights_at_batch("1", false, "33", &dir);
    assert_eq!(
        one,
        weights_at_batch("3", true, "33", &dir),
        "33-row batches differ"
    );
    // Two lanes sum the rows they computed, in the halves one thread sums them in: 64
    // and 36 rows of a 100-row batch.
    let one = weights_at_batch("1", false, "100", &dir);
    assert_eq!(
        one,
        weights_at_batch("2", true, "100", &dir),
        "100-row batches differ"
    );
    // Dropout splits by rows too: each element's mask is a hash of its index in the
    // whole tensor.
    let dropout = ["--dropout", "0.3", "--batch", "256"];
    let one = weights_of("1", false, &dropout, &dir);
    assert_eq!(
        one,
        weights_of("3", true, &dropout, &dir),
        "dropout differs"
    );
    // The update runs with the sums over the rows on the split step, a piece a lane:
    // SGD's state (one value a parameter) as well as Adam's (two).
    let sgd = ["--optimizer", "sgd"];
    let one = weights_of("1", false, &sgd, &dir);
    assert_eq!(one, weights_of("2", true, &sgd, &dir), "SGD differs");
}

#[test]
fn absurd_thread_counts_are_refused_naming_the_flag() {
    for n in ["0", "1025", "99999999999999999999999", "-1", "two", ""] {
        let o = riskgrad(&["devices", &format!("--threads={n}")]);
        assert_eq!(o.status.code(), Some(2), "--threads {n}: {}", stderr(&o));
        assert!(
            stderr(&o).contains("--threads"),
            "--threads {n}: {}",
            stderr(&o)
        );
    }
    let o = riskgrad(&["devices", "--threads", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("CPU backend (1 thread)"));
}
