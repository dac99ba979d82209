//! `riskgrad bench --json` and `riskgrad bench compare`: the report holds every field the
//! README documents, a wrong kernel is reported and never timed, and compare's verdicts
//! follow its stated rule. No assertion here is about a speed.

use crate::common::{riskgrad, stderr, TempFile};
use serde_json::{json, Value};

/// A fresh path in the temp dir for a command to write (removed on drop).
fn out_path(name: &str) -> TempFile {
    let f = TempFile::new(name, b"");
    std::fs::remove_file(&f.0).unwrap();
    f
}

/// Runs `riskgrad ARGS` with every checked kernel's output made wrong
/// (`RISKGRAD_BENCH_INJECT_WRONG`, a test-only switch of the bench suites).
fn injected_wrong(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .env("RISKGRAD_BENCH_INJECT_WRONG", "1")
        .output()
        .unwrap()
}

fn read_json(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("the report was written"))
        .expect("the report is JSON")
}

/// Every field README's "Benchmarks" section documents, with its type, for a report of
/// the CPU backend's cases.
fn assert_documented_fields(doc: &Value) {
    assert_documented_fields_on(doc, true)
}

/// As `assert_documented_fields`, for a report of `cpu` cases or else GPU ones.
fn assert_documented_fields_on(doc: &Value, cpu: bool) {
    assert_eq!(doc["schema"], json!(1));
    assert!(doc["riskgrad"]["version"].is_string());
    assert!(doc["command"].is_string());
    assert!(doc["created_unix"].as_u64().unwrap() > 0);
    let m = &doc["machine"];
    assert!(m["cpu"].is_string() || m["cpu"].is_null(), "{m}");
    assert!(m["cores"].as_u64().unwrap() >= 1);
    assert!(m["os"].as_str().unwrap().contains(std::env::consts::OS));
    assert_eq!(m["arch"], json!(std::env::consts::ARCH));
    let cases = doc["cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for c in cases {
        for key in [
            "suite",
            "kernel",
            "shape",
            "dtype",
            "variant",
            "status",
            "work_unit",
            "unit",
        ] {
            assert!(c[key].is_string(), "{key} in {c}");
        }
        let dtype = c["dtype"].as_str().unwrap();
        if c["suite"] == json!("peak") {
            assert!(["f32", "f16", "u32"].contains(&dtype), "{c}");
        } else {
            assert_eq!(dtype, "f32");
        }
        let d = &c["device"];
        for key in ["name", "backend", "device_type", "driver"] {
            assert!(d[key].is_string(), "device.{key} in {c}");
        }
        if cpu {
            assert_eq!(d["name"], json!("cpu"));
            assert_eq!(d["backend"], json!("native"));
            assert_eq!(d["device_type"], json!("cpu"));
            assert!(d["threads"].as_u64().unwrap() >= 1);
        } else {
            assert_ne!(d["backend"], json!("native"), "{c}");
            assert!(d["threads"].is_null(), "{c}");
        }
        // % of peak: present, null or not (the peak kernels have no ceiling themselves).
        for key in ["intensity", "peak", "percent_of_peak"] {
            assert!(c.get(key).is_some(), "{key} in {c}");
        }
        if let Some(i) = c["intensity"].as_f64() {
            assert!(i.is_finite() && i >= 0.0, "{c}");
        }
        let p = &c["peak"];
        if !p.is_null() {
            assert!(
                ["fma", "copy", "read"].contains(&p["kernel"].as_str().unwrap()),
                "{p}"
            );
            assert!(p["dtype"].is_string() && p["source"].is_string(), "{p}");
            assert_eq!(p["unit"], c["unit"], "{c}");
            let (rate, peak) = (c["rate"].as_f64().unwrap(), p["value"].as_f64().unwrap());
            let pct = c["percent_of_peak"].as_f64().unwrap();
            assert!(
                (pct - rate / peak * 100.0).abs() <= 1e-9 * pct.abs().max(1.0),
                "{c}"
            );
        } else {
            assert!(c["percent_of_peak"].is_null(), "{c}");
        }
        assert!(c["work"].as_f64().unwrap() > 0.0);
        assert!(
            c.get("max_error").is_some() && c.get("tolerance").is_some(),
            "{c}"
        );
        assert_eq!(c["status"], json!("ok"));
        let s = &c["stats"];
        let get = |k: &str| s[k].as_f64().unwrap_or_else(|| panic!("stats.{k} in {c}"));
        let (min, q1, med, q3, max) = (get("min"), get("q1"), get("median"), get("q3"), get("max"));
        assert!(
            min > 0.0 && min <= q1 && q1 <= med && med <= q3 && q3 <= max,
            "{s}"
        );
        assert!(
            (get("iqr") - (q3 - q1)).abs() <= 1e-12 * q3.max(1e-30),
            "{s}"
        );
        assert!(s["samples"].as_u64().unwrap() >= 5, "{s}");
        assert!(s["reps_per_sample"].as_u64().unwrap() >= 1);
        let rate = c["rate"].as_f64().unwrap();
        assert!(rate.is_finite() && rate > 0.0);
    }
}

#[test]
fn matmul_json_holds_every_documented_field_and_checks_the_output() {
    let out = out_path("bench-matmul.json");
    let path = out.0.to_str().unwrap();
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "8,16",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--no-peak",
        "--json",
        path,
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("median") && text.contains("IQR"), "{text}");
    let doc = read_json(&out.0);
    assert_documented_fields(&doc);
    assert_eq!(doc["budget_seconds"], json!(0.01));
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2);
    for (c, size) in cases.iter().zip([8, 16]) {
        assert_eq!(c["suite"], json!("matmul"));
        assert_eq!(c["shape"], json!(format!("{size}x{size}x{size}")));
        assert_eq!(c["unit"], json!("GFLOP/s"));
        assert_eq!(c["work"], json!(2.0 * (size as f64).powi(3)));
        // matmul is checked against the reference before it is timed.
        assert!(c["max_error"].as_f64().unwrap() <= c["tolerance"].as_f64().unwrap());
        // 2n³ flops over 3n² words: n/6 flop per byte; no ceiling with --no-peak.
        assert!((c["intensity"].as_f64().unwrap() - size as f64 / 6.0).abs() < 1e-12);
        assert!(c["peak"].is_null() && c["percent_of_peak"].is_null(), "{c}");
    }
}

/// `bench peak` on `devices` with a small buffer: its report, checked for every
/// documented field, and its cases.
fn short_peak(devices: &str, out: &TempFile, cpu: bool) -> Vec<Value> {
    let o = riskgrad(&[
        "bench",
        "peak",
        "--devices",
        devices,
        "--budget",
        "0.01",
        "--buffer-mib",
        "4",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&out.0);
    assert_documented_fields_on(&doc, cpu);
    let cases = doc["cases"].as_array().unwrap().clone();
    for c in &cases {
        assert_eq!(c["suite"], json!("peak"));
        // Each kernel's output was checked before it was timed.
        assert_eq!(c["status"], json!("ok"));
        assert!(c["max_error"].as_f64().unwrap() <= c["tolerance"].as_f64().unwrap());
        let unit = if c["kernel"] == json!("fma") {
            "GFLOP/s"
        } else {
            "GB/s"
        };
        assert_eq!(c["unit"], json!(unit), "{c}");
        assert!(c["intensity"].is_null() && c["peak"].is_null(), "{c}");
    }
    let kernels: Vec<(&str, &str)> = cases
        .iter()
        .map(|c| (c["kernel"].as_str().unwrap(), c["dtype"].as_str().unwrap()))
        .collect();
    for want in [("fma", "f32"), ("copy", "u32"), ("read", "u32")] {
        assert!(kernels.contains(&want), "{want:?} in {kernels:?}");
    }
    cases
}

#[test]
fn peak_json_on_the_cpu_backend_holds_every_field_and_checked_kernels() {
    let out = out_path("bench-peak-cpu.json");
    let cases = short_peak("cpu", &out, true);
    assert_eq!(cases.len(), 3, "no f16 on the CPU backend");
    // The copy and read move the whole 4 MiB buffer (copy: read and written).
    let work = |k: &str| cases.iter().find(|c| c["kernel"] == json!(k)).unwrap()["work"].clone();
    assert_eq!(work("copy"), json!(2.0 * 4.0 * 1048576.0));
    assert_eq!(work("read"), json!(4.0 * 1048576.0));
}

/// On the GPU (lavapipe in CI): fails, rather than skips, without an adapter.
#[test]
fn peak_json_on_the_gpu_holds_every_field_and_checked_kernels() {
    if std::env::var("RISKGRAD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("RISKGRAD_SKIP_GPU_TESTS=1: skipped");
        return;
    }
    let _turn = crate::common::take_turn();
    let out = out_path("bench-peak-gpu.json");
    let cases = short_peak("gpu", &out, false);
    let f16 = riskgrad::engine::gpu::list_adapters()
        .iter()
        .any(|a| a.f16 && cases[0]["device"]["name"] == json!(a.name));
    let has_f16 = cases
        .iter()
        .any(|c| c["kernel"] == json!("fma") && c["dtype"] == json!("f16"));
    assert_eq!(
        has_f16, f16,
        "an f16 case exactly where the adapter has SHADER_F16"
    );
}

#[test]
fn a_wrong_peak_kernel_is_reported_and_never_timed() {
    let o = injected_wrong(&[
        "bench",
        "peak",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--buffer-mib",
        "1",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("WRONG").count(), 3, "{text}");
}

#[test]
fn percent_of_peak_is_the_rate_over_the_saved_peak() {
    let peak = out_path("bench-peak-for-matmul.json");
    short_peak("cpu", &peak, true);
    let fma = read_json(&peak.0)["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kernel"] == json!("fma"))
        .unwrap()["rate"]
        .as_f64()
        .unwrap();
    let out = out_path("bench-matmul-peak.json");
    let p = peak.0.to_str().unwrap();
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "16",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--peak",
        p,
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("% of fma f32"));
    let doc = read_json(&out.0);
    assert_documented_fields(&doc);
    let c = &doc["cases"][0];
    assert_eq!(c["peak"]["kernel"], json!("fma"));
    assert_eq!(c["peak"]["dtype"], json!("f32"));
    assert_eq!(c["peak"]["unit"], json!("GFLOP/s"));
    assert_eq!(c["peak"]["source"], json!(p));
    assert_eq!(c["peak"]["value"].as_f64().unwrap(), fma);
    let pct = c["rate"].as_f64().unwrap() / fma * 100.0;
    assert!((c["percent_of_peak"].as_f64().unwrap() - pct).abs() <= 1e-9 * pct);

    // The saved peaks it reads are never the report it writes.
    let before = std::fs::read(&peak.0).unwrap();
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "16",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--peak",
        p,
        "--json",
        p,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("an input of this command"),
        "{}",
        stderr(&o)
    );
    assert_eq!(std::fs::read(&peak.0).unwrap(), before);
}

/// A size or device named twice is measured once, saying so: the report then passes
/// `bench compare`, which refuses a case listed twice. A report is never written into a
/// model's directory (it replaced config.json, and the model no longer loaded).
#[test]
fn repeated_sizes_are_measured_once_and_no_report_lands_in_a_model_dir() {
    let out = out_path("bench-repeats.json");
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "16,16",
        "--devices",
        "cpu,cpu",
        "--no-peak",
        "--budget",
        "0.01",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for note in [
        "--sizes names 16 more than once",
        "--devices names cpu more than once",
    ] {
        assert!(stderr(&o).contains(note), "{note:?}: {}", stderr(&o));
    }
    assert_eq!(read_json(&out.0)["cases"].as_array().unwrap().len(), 1);
    let r = out.0.to_str().unwrap();
    let o = riskgrad(&["bench", "compare", r, r]);
    assert!(o.status.success(), "{}", stderr(&o));

    let model = crate::lifecycle_common::temp_dir("bench-into-model");
    std::fs::write(model.join("model.safetensors"), b"weights").unwrap();
    std::fs::write(model.join("config.json"), b"{}").unwrap();
    let config = model.join("config.json");
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "16",
        "--devices",
        "cpu",
        "--no-peak",
        "--budget",
        "0.01",
        "--json",
        config.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("a model's directory"), "{}", stderr(&o));
    assert_eq!(std::fs::read(&config).unwrap(), b"{}");
}

#[test]
fn peak_flags_are_checked() {
    // A report without peak cases.
    let matmul = file("no-peaks.json", &report(&[("a", 1e-3)], 20));
    let m = matmul.0.to_str().unwrap();
    let o = riskgrad(&[
        "bench",
        "matmul",
        "--sizes",
        "8",
        "--devices",
        "cpu",
        "--peak",
        m,
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--peak") && stderr(&o).contains("no peak cases"),
        "{}",
        stderr(&o)
    );
    let o = riskgrad(&["bench", "matmul", "--no-peak", "--peak", m]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A budget no one means (1e300 seconds a case ran until it was killed).
    for budget in ["1e300", "3601", "0", "nan"] {
        let o = riskgrad(&["bench", "peak", "--devices", "cpu", "--budget", budget]);
        assert_eq!(o.status.code(), Some(2), "{budget}: {}", stderr(&o));
        assert!(stderr(&o).contains("--budget"), "{}", stderr(&o));
    }
    let o = riskgrad(&["bench", "peak", "--devices", "cpu", "--buffer-mib", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--buffer-mib"), "{}", stderr(&o));
    // A size whose matrices no machine holds is refused by name, not an allocation
    // failure after the peak measurement; so is a size of 0, in every matmul suite.
    for suite in [&["matmul", "--devices", "cpu"][..], &["tune"]] {
        for size in ["1000000", "0"] {
            let o = riskgrad(&[&["bench"], suite, &["--sizes", size]].concat());
            assert_eq!(o.status.code(), Some(2), "{suite:?} {size}: {}", stderr(&o));
            assert!(stderr(&o).contains("--sizes"), "{}", stderr(&o));
        }
    }
}

#[test]
fn lstm_json_has_a_case_per_variant() {
    let out = out_path("bench-lstm.json");
    let o = riskgrad(&[
        "bench",
        "lstm",
        "--devices",
        "cpu",
        "--batch",
        "4",
        "--hidden",
        "4",
        "--steps",
        "2",
        "--budget",
        "0.01",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&out.0);
    assert_documented_fields(&doc);
    let variants: Vec<&str> = doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["variant"].as_str().unwrap())
        .collect();
    assert_eq!(variants, ["step", "matmuls", "cells"]);
    assert!(
        doc["cases"][0]["max_error"].is_null(),
        "the lstm suite is not checked"
    );
}

#[test]
fn a_wrong_kernel_is_reported_and_never_timed() {
    let out = out_path("bench-wrong.json");
    let o = injected_wrong(&[
        "bench",
        "matmul",
        "--sizes",
        "8",
        "--devices",
        "cpu",
        "--budget",
        "0.01",
        "--no-peak",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("disagreed with the reference"),
        "{}",
        stderr(&o)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("WRONG"));
    let doc = read_json(&out.0);
    let c = &doc["cases"][0];
    assert_eq!(c["status"], json!("wrong"));
    assert!(c["stats"].is_null() && c["rate"].is_null(), "{c}");
    assert!(c["max_error"].as_f64().unwrap() > c["tolerance"].as_f64().unwrap());
}

/// A report of one case per (kernel, median seconds), a tight spread around each.
fn report(cases: &[(&str, f64)], samples: u64) -> Value {
    let cases: Vec<Value> = cases
        .iter()
        .map(|&(kernel, median)| {
            json!({
                "suite": "matmul", "kernel": kernel, "shape": "64x64x64", "dtype": "f32",
                "variant": "default",
                "device": {"name": "cpu", "backend": "native", "device_type": "cpu",
                           "driver": "", "threads": 4},
                "status": "ok",
                "stats": {"median": median, "min": 0.9 * median, "max": 1.1 * median,
                          "q1": 0.95 * median, "q3": 1.05 * median, "iqr": 0.1 * median,
                          "samples": samples, "reps_per_sample": 10},
                "work": 524288.0, "work_unit": "flop", "rate": 524288.0 / median / 1e9,
                "unit": "GFLOP/s", "max_error": 1e-6, "tolerance": 1e-3
            })
        })
        .collect();
    json!({
        "schema": 1, "riskgrad": {"version": "0.0.0"}, "command": "riskgrad bench matmul",
        "created_unix": 1, "budget_seconds": 1.0,
        "machine": {"cpu": "test", "cores": 4, "os": "linux", "arch": "x86_64"},
        "cases": cases
    })
}

fn file(name: &str, doc: &Value) -> TempFile {
    TempFile::new(name, doc.to_string().as_bytes())
}

/// The verdict `compare` prints on the line of `kernel`.
fn verdict_of(stdout: &str, kernel: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.contains(&format!(" {kernel} ")))
        .unwrap_or_else(|| panic!("no line for {kernel} in\n{stdout}"));
    line.split_whitespace().last().unwrap().to_string()
}

#[test]
fn compare_labels_a_planted_slowdown_slow_and_identical_runs_same() {
    let base = file(
        "base.json",
        &report(&[("a", 1e-3), ("b", 2e-3), ("c", 1e-3)], 20),
    );
    // a twice as slow, b unchanged, c twice as fast.
    let new = file(
        "new.json",
        &report(&[("a", 2e-3), ("b", 2e-3), ("c", 0.5e-3)], 20),
    );
    let (b, n) = (base.0.to_str().unwrap(), new.0.to_str().unwrap());
    let o = riskgrad(&["bench", "compare", b, n]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(verdict_of(&text, "a"), "SLOW");
    assert_eq!(verdict_of(&text, "b"), "SAME");
    assert_eq!(verdict_of(&text, "c"), "FAST");
    let o = riskgrad(&["bench", "compare", b, b]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    for k in ["a", "b", "c"] {
        assert_eq!(verdict_of(&text, k), "SAME");
    }
}

#[test]
fn compare_with_few_samples_is_unsure_and_lists_unmatched_cases() {
    let base = file("few-base.json", &report(&[("a", 1e-3), ("gone", 1e-3)], 3));
    let new = file("few-new.json", &report(&[("a", 2e-3), ("added", 1e-3)], 20));
    let o = riskgrad(&[
        "bench",
        "compare",
        base.0.to_str().unwrap(),
        new.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(verdict_of(&text, "a"), "UNSURE");
    let gone = text.lines().find(|l| l.contains(" gone ")).unwrap();
    assert!(
        gone.contains("only in") && gone.contains("few-base.json"),
        "{gone}"
    );
    let added = text.lines().find(|l| l.contains(" added ")).unwrap();
    assert!(
        added.contains("only in") && added.contains("few-new.json"),
        "{added}"
    );
}

#[test]
fn fail_on_slow_exits_6_past_its_threshold_only() {
    let base = file("fos-base.json", &report(&[("a", 1e-3)], 20));
    let new = file("fos-new.json", &report(&[("a", 2e-3)], 20));
    let (b, n) = (base.0.to_str().unwrap(), new.0.to_str().unwrap());
    let o = riskgrad(&["bench", "compare", b, n, "--fail-on-slow", "10"]);
    assert_eq!(o.status.code(), Some(6), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("SLOW by more than 10"));
    // 2x is 100 % slower: within a 150 % allowance.
    let o = riskgrad(&["bench", "compare", b, n, "--fail-on-slow", "150"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = riskgrad(&["bench", "compare", b, b, "--fail-on-slow", "0"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

#[test]
fn compare_names_a_missing_or_bad_file() {
    let good = file("good.json", &report(&[("a", 1e-3)], 20));
    let garbage = TempFile::new("garbage.json", b"{ this is not json");
    let no_schema = TempFile::new("noschema.json", b"{\"cases\": []}");
    let old_schema = file("schema99.json", &json!({"schema": 99, "cases": []}));
    // Times riskgrad could not have measured, and a case twice.
    let zero_median = file("zero.json", &report(&[("a", 0.0)], 20));
    let mut inverted = report(&[("a", 1e-3)], 20);
    inverted["cases"][0]["stats"]["q1"] = json!(2e-3);
    let inverted = file("inverted.json", &inverted);
    let twice = file("twice.json", &report(&[("a", 1e-3), ("a", 1e-3)], 20));
    let g = good.0.to_str().unwrap();
    let missing = std::env::temp_dir().join("riskgrad-test-no-such-report.json");
    for (bad, says) in [
        (missing.as_path(), "No such file"),
        (garbage.0.as_path(), "not JSON"),
        (no_schema.0.as_path(), "not a riskgrad bench report"),
        (old_schema.0.as_path(), "schema 99"),
        (zero_median.0.as_path(), "no measurement"),
        (inverted.0.as_path(), "no measurement"),
        (twice.0.as_path(), "in the report twice"),
    ] {
        let name = bad.to_str().unwrap();
        for args in [[g, name], [name, g]] {
            let o = riskgrad(&["bench", "compare", args[0], args[1]]);
            assert_eq!(o.status.code(), Some(3), "{name}: {}", stderr(&o));
            let err = stderr(&o);
            assert!(err.contains(name) && err.contains(says), "{err}");
        }
    }
}

/// `bench train --model gru` on the CPU backend: one sample per epoch, and a breakdown names the recurrent kernels, one entry per kernel family, with
/// shares that add up to the whole step. `--model` refuses a model it does not run.
#[test]
fn train_json_holds_a_breakdown_by_kernel() {
    let out = out_path("bench-train.json");
    let o = riskgrad(&[
        "bench",
        "train",
        "--model",
        "gru",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(text.contains("one training step by kernel"), "{text}");
    let doc = read_json(&out.0);
    assert_eq!(doc["schema"], json!(1));
    let case = &doc["cases"][0];
    assert_eq!(case["stats"]["samples"], json!(1), "one sample per epoch");
    assert!(case["rate"].as_f64().unwrap() > 0.0, "{case}");
    assert_eq!(case["suite"], json!("train"));
    assert_eq!(case["kernel"], json!("gru 64-32"));
    let b = &case["breakdown"];
    assert_eq!(b["clock"], json!("host clock"));
    assert!(b["steps"].as_u64().unwrap() >= 1, "{b}");
    let kernels = b["kernels"].as_array().unwrap();
    let names: Vec<&str> = kernels
        .iter()
        .map(|k| k["kernel"].as_str().unwrap())
        .collect();
    for family in ["RnnCell", "RnnCellGrad", "MatMul", "Optimize"] {
        assert!(names.contains(&family), "{family} in {names:?}");
    }
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), names.len(), "one entry per family: {names:?}");
    let percent: f64 = kernels.iter().map(|k| k["percent"].as_f64().unwrap()).sum();
    assert!((percent - 100.0).abs() < 1e-6, "{percent}");
    assert!(
        kernels
            .iter()
            .all(|k| k["launches"].as_u64().unwrap() >= 1 && k["seconds"].as_f64().unwrap() >= 0.0),
        "{b}"
    );

    let o = riskgrad(&["bench", "train", "--model", "logistic"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--model"), "{}", stderr(&o));
}

/// `bench pool` (and `bench gru`/`lstm`) on lavapipe: each case's output is checked
/// against the CPU backend's before it is timed, and timed by device timestamps with the wall clock beside; a wrong
/// kernel (injected) is reported wrong and never timed. (`bench conv` takes the same path,
/// `check_against_cpu` and `time_plan`, at sizes too slow for a test on lavapipe.)
#[test]
fn gpu_cases_are_checked_against_the_cpu_and_timed_by_timestamps() {
    use crate::common::{context, take_turn};
    let (_ctx, _turn) = crate::gpu_or_skip!();
    {
        let suite = "pool";
        let out = out_path(&format!("bench-gpu-{suite}.json"));
        let o = riskgrad(&[
            "bench",
            suite,
            "--devices",
            "gpu",
            "--budget",
            "0.02",
            "--no-peak",
            "--json",
            out.0.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{suite}: {}", stderr(&o));
        let doc = read_json(&out.0);
        for c in doc["cases"].as_array().unwrap() {
            assert_eq!(c["status"], json!("ok"), "{c}");
            let (error, tolerance) = (
                c["max_error"].as_f64().unwrap(),
                c["tolerance"].as_f64().unwrap(),
            );
            assert!(error <= tolerance, "{c}");
            assert_eq!(c["clock"], json!("device timestamps"), "{c}");
            assert!(c["stats"]["median"].as_f64().unwrap() > 0.0, "{c}");
            assert!(c["wall_stats"]["median"].as_f64().unwrap() > 0.0, "{c}");
        }
    }
    let o = injected_wrong(&[
        "bench",
        "pool",
        "--devices",
        "gpu",
        "--budget",
        "0.01",
        "--no-peak",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("WRONG").count(), 8, "{text}");
    assert!(!text.contains("GB/s "), "nothing wrong is timed: {text}");
    // A recurrent step: every gradient against the CPU backend's, wrong ones not timed.
    let out = out_path("bench-gpu-gru.json");
    let o = riskgrad(&[
        "bench",
        "gru",
        "--devices",
        "gpu",
        "--budget",
        "0.01",
        "--json",
        out.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    for c in read_json(&out.0)["cases"].as_array().unwrap() {
        let error = c["max_error"].as_f64().unwrap();
        assert!(error <= c["tolerance"].as_f64().unwrap(), "{c}");
        assert_eq!(c["status"], json!("ok"), "{c}");
    }
    let o = injected_wrong(&["bench", "lstm", "--devices", "gpu", "--budget", "0.01"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert_eq!(text.matches("WRONG").count(), 3, "{text}");
}

/// `bench all --out DIR` on the CPU backend (a short run of three suites): results.json
/// holds the cases of each suite as `--json` writes them, and index.html the matmul plot,
/// the CPU's roofline from its measured peaks and the training plot, with every case in
/// its table. An `--out` that is a file is refused before anything runs.
#[test]
fn bench_all_writes_results_and_a_page() {
    let dir = crate::lifecycle_common::temp_dir("bench-all");
    let out = dir.join("bench");
    let o = riskgrad(&[
        "bench",
        "all",
        "--out",
        out.to_str().unwrap(),
        "--devices",
        "cpu",
        "--suites",
        "peak,matmul,train",
        "--sizes",
        "64,96",
        "--models",
        "mlp",
        "--epochs",
        "1",
        "--budget",
        "0.01",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let doc = read_json(&out.join("results.json"));
    assert_eq!(doc["schema"], json!(1));
    let cases = doc["cases"].as_array().unwrap();
    for suite in ["peak", "matmul", "train"] {
        assert!(
            cases.iter().any(|c| c["suite"] == json!(suite)),
            "{suite} in {doc}"
        );
    }
    let matmul: Vec<&Value> = cases.iter().filter(|c| c["suite"] == "matmul").collect();
    assert_eq!(matmul.len(), 2, "one case per size");
    assert!(
        matmul.iter().all(|c| c["peak"]["source"] != json!(null)),
        "% of peak against this run's peaks: {matmul:?}"
    );
    let page = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert_eq!(
        page.matches("<svg").count(),
        3,
        "matmul, roofline, training"
    );
    assert!(page.contains("Roofline: CPU"), "the CPU's roofline");
    assert_eq!(
        page.matches("<tr><td").count(),
        cases.len(),
        "a table row per case"
    );

    let file = dir.join("a-file");
    std::fs::write(&file, "keep").unwrap();
    let o = riskgrad(&["bench", "all", "--out", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--out"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep");

    // A directory with the user's own index.html is refused before anything runs.
    let site = dir.join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("index.html"), "<html>mine</html>").unwrap();
    let o = riskgrad(&["bench", "all", "--out", site.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not from an earlier"), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(site.join("index.html")).unwrap(),
        "<html>mine</html>"
    );
}

/// A matmul case is the same product whichever kernel variant the GPU's tuner chose, so a
/// tuned run is compared with an untuned (or older, `default`) one, both variants named;
/// another suite's variant is different work and is matched only to itself.
#[test]
fn compare_matches_matmul_cases_across_tuned_variants_only() {
    let base = report(&[("a", 1e-3)], 20);
    let mut new = report(&[("a", 0.5e-3)], 20);
    new["cases"][0]["variant"] = json!("tile32-direct");
    let (base_file, new_file) = (file("tuned-base.json", &base), file("tuned-new.json", &new));
    let o = riskgrad(&[
        "bench",
        "compare",
        base_file.0.to_str().unwrap(),
        new_file.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(verdict_of(&text, "a"), "FAST");
    assert!(text.contains("default->tile32-direct"), "{text}");
    assert!(!text.contains("only in"), "{text}");

    let (mut conv_base, mut conv_new) = (base.clone(), new.clone());
    conv_base["cases"][0]["suite"] = json!("conv");
    conv_new["cases"][0]["suite"] = json!("conv");
    let (b, n) = (
        file("conv-base.json", &conv_base),
        file("conv-new.json", &conv_new),
    );
    let o = riskgrad(&[
        "bench",
        "compare",
        b.0.to_str().unwrap(),
        n.0.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(text.matches("only in").count(), 2, "{text}");
}
