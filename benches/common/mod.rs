//! What the `cargo bench` targets share: which suites and devices to run, and how long.
//!
//! `cargo bench` runs each target with `--bench` and any filter words after it; a target
//! runs the suites the words name (all of its suites with none). The environment picks
//! the rest:
//! - `RISKGRAD_BENCH_DEVICES`: devices, comma-separated, each as for `--device`
//!   (default `cpu`; `cpu,gpu` adds the best GPU adapter);
//! - `RISKGRAD_BENCH_FULL=1`: the budgets and sizes of `riskgrad bench` instead of the
//!   short default run (a tenth of the work per round, fewer sizes and epochs).
//!
//! Each target writes its cases as `riskgrad bench --json` does, to
//! `target/riskgrad-bench/TARGET.json` (under `CARGO_TARGET_DIR` when it is set).

use riskgrad::engine::gpu::DeviceChoice;

/// The suites of `all` to run: those the command line names, or every one when it names
/// none. Flags (`--bench` from cargo) are not names.
pub fn selected(all: &[&'static str]) -> Vec<&'static str> {
    let words: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    if words.is_empty() {
        return all.to_vec();
    }
    all.iter()
        .copied()
        .filter(|name| words.iter().any(|w| name.contains(w.as_str())))
        .collect()
}

/// The devices from `RISKGRAD_BENCH_DEVICES` (default: the CPU backend).
pub fn devices() -> riskgrad::Result<Vec<DeviceChoice>> {
    std::env::var("RISKGRAD_BENCH_DEVICES")
        .unwrap_or_else(|_| "cpu".into())
        .split(',')
        .map(str::parse)
        .collect()
}

/// Writes `cases` as `riskgrad bench --json` would, to `target/riskgrad-bench/NAME.json`,
/// and says where.
pub fn write_json(
    name: &str,
    cases: Vec<crate::suites::Case>,
    budget_seconds: Option<f64>,
) -> riskgrad::Result<()> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("riskgrad-bench");
    std::fs::create_dir_all(&dir).map_err(|e| riskgrad::Error::io(&dir, e))?;
    let path = dir.join(format!("{name}.json"));
    crate::suites::Report::new(cases, budget_seconds).write(&path)?;
    println!("wrote {}", path.display());
    Ok(())
}

/// Whether `RISKGRAD_BENCH_FULL=1` asks for `riskgrad bench`'s full run.
pub fn full() -> bool {
    std::env::var("RISKGRAD_BENCH_FULL").is_ok_and(|v| v == "1")
}
