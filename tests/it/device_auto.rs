//! `train --device auto` races the CPU backend against the best adapter on the model's own
//! steps and caches the choice. CI has only lavapipe, a software adapter, which `auto`
//! races only under RISKGRAD_AUTO_INCLUDE_SOFTWARE=1: these tests set it (except the one
//! that checks nothing is raced without it), and point RISKGRAD_CACHE_DIR at a temporary
//! directory. No timing is asserted: the winner is read from what the run says.

use crate::common::{context, stderr, take_turn, TempDir};
use crate::eval_rows::{rows, write};
use crate::lifecycle_common::temp_dir;
use riskgrad::train::device_race::{CACHE_DIR_VAR, CACHE_FILE, INCLUDE_SOFTWARE_VAR};
use std::path::{Path, PathBuf};
use std::process::Output;

/// A small table and a directory for the runs' models and cache.
struct Setup {
    dir: TempDir,
    csv: PathBuf,
}

impl Setup {
    fn new(name: &str) -> Self {
        let dir = temp_dir(&format!("device-auto-{name}"));
        let csv = dir.join("train.csv");
        let (header, r) = rows(17, 300);
        write(&csv, &header, &r);
        Setup { dir, csv }
    }

    fn cache_dir(&self) -> PathBuf {
        self.dir.join("cache")
    }

    /// `riskgrad train --device DEVICE` of a small MLP into `out`, with the cache in
    /// `cache` and the software adapter let into the race when `include_software`.
    fn train(
        &self,
        device: &str,
        out: &str,
        cache: &Path,
        include_software: bool,
        extra: &[&str],
    ) -> Output {
        self.command(device, out, cache, include_software, extra)
            .output()
            .expect("run riskgrad")
    }

    /// The command `train` runs.
    fn command(
        &self,
        device: &str,
        out: &str,
        cache: &Path,
        include_software: bool,
        extra: &[&str],
    ) -> std::process::Command {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"));
        let out = self.dir.join(out);
        cmd.args([
            "train",
            "--data",
            self.csv.to_str().unwrap(),
            "--device",
            device,
            "--hidden",
            "6",
            "--batch",
            "16",
            "--epochs",
            "2",
            "--early-stop",
            "off",
            "--seed",
            "5",
            "--out",
            out.to_str().unwrap(),
        ])
        .args(extra)
        .env("NODEVICE_SELECT", "1")
        .env(CACHE_DIR_VAR, cache)
        .env_remove(INCLUDE_SOFTWARE_VAR);
        if include_software {
            cmd.env(INCLUDE_SOFTWARE_VAR, "1");
        }
        cmd
    }

    fn weights(&self, out: &str) -> Vec<u8> {
        std::fs::read(self.dir.join(out).join("model.safetensors")).unwrap()
    }

    fn config(&self, out: &str) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dir.join(out).join("config.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }
}

/// The run's `device auto:` lines.
fn race_lines(o: &Output) -> Vec<String> {
    stderr(o)
        .lines()
        .filter(|l| l.starts_with("device auto: "))
        .map(str::to_string)
        .collect()
}

/// The `--device` that names the winner of a run whose race line is `line`.
fn winner(line: &str) -> &'static str {
    match line.starts_with("device auto: the CPU backend,") {
        true => "cpu",
        false => "gpu",
    }
}

#[test]
fn auto_races_once_then_reads_the_cache_and_trains_as_the_winner_named() {
    let (ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("race");
    let cache = s.cache_dir();
    let first = s.train("auto", "first", &cache, true, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let lines = race_lines(&first);
    assert_eq!(lines.len(), 1, "{}", stderr(&first));
    let file = cache.join(CACHE_FILE);
    assert!(
        lines[0].ends_with(&format!("(measured; cached in {})", file.display())),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains(&ctx.info.name), "{}", lines[0]);
    assert!(lines[0].contains(" ms a step against "), "{}", lines[0]);
    // config.json keeps the device and why.
    let config = s.config("first");
    let why = config["training"]["device_choice"].as_str().unwrap();
    assert!(lines[0].contains(why), "{why:?} not in {}", lines[0]);

    let second = s.train("auto", "second", &cache, true, &[]);
    assert!(second.status.success(), "{}", stderr(&second));
    let again = race_lines(&second);
    assert_eq!(again.len(), 1, "{}", stderr(&second));
    assert!(
        again[0].ends_with(&format!("(cached in {})", file.display())),
        "{}",
        again[0]
    );
    // The same choice and figures as measured.
    assert_eq!(
        again[0].split(" (cached").next(),
        lines[0].split(" (measured").next()
    );

    // The race trains throwaway copies: the run's weights are those of the winner named.
    let named = s.train(winner(&lines[0]), "named", &cache, false, &[]);
    assert!(named.status.success(), "{}", stderr(&named));
    assert_eq!(s.weights("first"), s.weights("named"));
    assert_eq!(s.weights("second"), s.weights("named"));
}

#[test]
fn a_cached_gpu_choice_runs_on_the_adapter_with_its_weights() {
    let (_ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("gpu-wins");
    let cache = s.cache_dir();
    let first = s.train("auto", "first", &cache, true, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // Whichever won, make the cache say the adapter was the faster, as on a real GPU.
    let file = cache.join(CACHE_FILE);
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    let entry = &mut json["entries"][0];
    entry["side"] = "gpu".into();
    entry["times"] = serde_json::json!({"cpu": 2e-3, "gpu": 1e-3});
    std::fs::write(&file, json.to_string()).unwrap();

    let auto = s.train("auto", "auto", &cache, true, &[]);
    assert!(auto.status.success(), "{}", stderr(&auto));
    let lines = race_lines(&auto);
    assert_eq!(lines.len(), 1, "{}", stderr(&auto));
    assert!(lines[0].contains("2.000 ms"), "{}", lines[0]);
    assert_eq!(winner(&lines[0]), "gpu", "{}", lines[0]);
    let config = s.config("auto");
    assert!(
        !config["training"]["device"]
            .as_str()
            .unwrap()
            .starts_with("CPU"),
        "{config}"
    );
    let gpu = s.train("gpu", "gpu", &cache, false, &[]);
    assert!(gpu.status.success(), "{}", stderr(&gpu));
    assert_eq!(s.weights("auto"), s.weights("gpu"));
}

#[test]
fn a_corrupt_cache_is_measured_again_and_replaced() {
    let (_ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("corrupt");
    let cache = s.cache_dir();
    std::fs::create_dir_all(&cache).unwrap();
    let file = cache.join(CACHE_FILE);
    std::fs::write(&file, "{\"entries\": [{\"key\": 3").unwrap();
    let o = s.train("auto", "model", &cache, true, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = race_lines(&o);
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    assert!(lines[0].contains("(measured; cached in"), "{}", lines[0]);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
    assert_eq!(json["entries"].as_array().unwrap().len(), 1, "{json}");
}

#[test]
fn an_unwritable_cache_still_trains_and_says_so() {
    let (_ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("unwritable");
    // A directory below a regular file cannot be made, whoever runs the test.
    let blocker = s.dir.join("a-file");
    std::fs::write(&blocker, "not a directory").unwrap();
    let o = s.train("auto", "model", &blocker.join("cache"), true, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lines = race_lines(&o);
    assert_eq!(lines.len(), 1, "{}", stderr(&o));
    assert!(lines[0].ends_with("(measured; not cached)"), "{}", lines[0]);
    let err = stderr(&o);
    let notes: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("note: the device choice is not cached"))
        .collect();
    assert_eq!(notes.len(), 1, "{err}");
    assert!(notes[0].contains("a-file"), "{}", notes[0]);
    assert!(s.dir.join("model").join("model.safetensors").exists());
}

#[test]
fn without_the_variable_a_software_adapter_is_not_raced_and_the_cpu_is_said_once() {
    let (ctx, _turn) = gpu_or_skip!();
    if !ctx.info.is_software {
        eprintln!("{} is a hardware adapter: auto races it", ctx.info.name);
        return;
    }
    let s = Setup::new("no-race");
    let cache = s.cache_dir();
    let o = s.train("auto", "model", &cache, false, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(race_lines(&o).is_empty(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("no hardware GPU adapter found: using the native CPU backend"),
        "{}",
        stderr(&o)
    );
    assert!(!cache.exists());
    let config = s.config("model");
    assert!(
        config["training"].get("device_choice").is_none(),
        "{config}"
    );
    assert!(config["training"]["device"]
        .as_str()
        .unwrap()
        .starts_with("CPU"));
    // A cross-validation opens a device per fold and says so once.
    let o = s.train("auto", "cv", &cache, false, &["--cv", "3"]);
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    assert_eq!(
        err.matches("no hardware GPU adapter found").count(),
        1,
        "one note for three folds: {err}"
    );
}

#[test]
fn cross_validation_races_once_for_all_folds() {
    let (_ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("cv");
    let cache = s.cache_dir();
    let o = s.train("auto", "cv", &cache, true, &["--cv", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(race_lines(&o).len(), 1, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("| device: auto (decided on the first fold)"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn an_adapter_that_fails_in_the_race_hands_the_run_to_the_cpu_backend() {
    let (_ctx, _turn) = gpu_or_skip!();
    let s = Setup::new("adapter-fails");
    let cache = s.cache_dir();
    // An adapter that cannot hold one step's rows fails the race's trainer.
    let o = s
        .command("auto", "model", &cache, true, &[])
        .env(riskgrad::engine::gpu::executor::INPUT_LIMIT_VAR, "64")
        .output()
        .expect("run riskgrad");
    let err = stderr(&o);
    assert!(o.status.success(), "{err}");
    let lines = race_lines(&o);
    assert_eq!(lines.len(), 1, "{err}");
    assert!(
        lines[0].starts_with("device auto: the CPU backend,")
            && lines[0].contains("failed while it was timed")
            && lines[0].contains("one step's 16 rows")
            && lines[0].contains("more than the device holds in one buffer")
            && lines[0].ends_with("(not cached)"),
        "{}",
        lines[0]
    );
    assert!(!cache.join(CACHE_FILE).exists(), "a failure is not cached");
    let o = s.train("cpu", "cpu", &cache, false, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(s.weights("model"), s.weights("cpu"));
}
