//! A run on a software adapter (lavapipe in CI) says so in one line and names the fix.

use crate::common::{context, riskgrad, stderr, take_turn};
use crate::eval_rows::{rows, write};
use crate::lifecycle_common::temp_dir;

#[test]
fn a_software_adapter_is_named_with_the_fix() {
    let (ctx, _turn) = gpu_or_skip!();
    if !ctx.info.is_software {
        eprintln!("{} is a hardware adapter: nothing to test", ctx.info.name);
        return;
    }
    let dir = temp_dir("software-adapter");
    let csv = dir.join("train.csv");
    let (header, r) = rows(5, 120);
    write(&csv, &header, &r);
    let out = riskgrad(&[
        "train",
        "--device",
        "gpu",
        "--data",
        csv.to_str().unwrap(),
        "--epochs",
        "1",
        "--batch",
        "16",
        "--hidden",
        "4",
        "--out",
        dir.join("model").to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("software Vulkan adapter"))
        .collect();
    assert_eq!(lines.len(), 1, "{err}");
    for w in [
        ctx.info.name.as_str(),
        "Vulkan driver",
        "NVIDIA_DRIVER_CAPABILITIES",
        "graphics",
    ] {
        assert!(lines[0].contains(w), "{w:?} not in {:?}", lines[0]);
    }
    // The native CPU backend is no software adapter.
    let cpu = riskgrad(&[
        "eval",
        "--model",
        dir.join("model").to_str().unwrap(),
        "--data",
        csv.to_str().unwrap(),
        "--device",
        "cpu",
        "--bootstrap",
        "10",
    ]);
    assert!(cpu.status.success(), "{}", stderr(&cpu));
    assert!(
        !stderr(&cpu).contains("software Vulkan"),
        "{}",
        stderr(&cpu)
    );
    // bench says it too: its figures on this adapter are the CPU's.
    let bench = riskgrad(&[
        "bench",
        "matmul",
        "--devices",
        "gpu",
        "--sizes",
        "32",
        "--budget",
        "0.01",
    ]);
    assert!(bench.status.success(), "{}", stderr(&bench));
    assert!(
        stderr(&bench).contains("software Vulkan adapter"),
        "{}",
        stderr(&bench)
    );
}
