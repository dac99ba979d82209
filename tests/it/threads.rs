//! `--threads N`: the CPU backend's thread count, on every command. Training gives the
//! same weights whatever the count (kernels split by rows and columns and sum in index
//! order), and a count that makes no sense is refused naming the flag.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::temp_dir;

/// One epoch of the default MLP on the bundled data, with `threads` threads.
fn weights_with(threads: &str, dir: &std::path::Path) -> Vec<u8> {
    let out = dir.join(format!("t{threads}"));
    let o = riskgrad(&[
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
    ]);
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
    let one = weights_with("1", &dir);
    assert_eq!(one, weights_with("2", &dir), "1 and 2 threads differ");
    assert_eq!(one, weights_with("3", &dir), "1 and 3 threads differ");
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
