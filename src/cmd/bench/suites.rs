//! Kernel and training-step benchmarks, run on any executor, and the lines that report
//! them. Nothing here asserts a speed. `riskgrad bench` (src/cmd/bench.rs) and the
//! `cargo bench` targets (benches/, which include this file by path) run the same code,
//! so this file uses only the library's public API.

// The peak kernels (`bench peak`, and the ceilings of % of peak), beside this file.
#[path = "peak.rs"]
pub mod peak;

use peak::{PeakSource, Peaks, Target};
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::tune::Tuning;
use riskgrad::engine::gpu::{choose_adapter, AdapterSummary, DeviceChoice, GpuExecutor};
use riskgrad::engine::graph::{Act, CellKind, Graph};
use riskgrad::engine::plan::{compile, PlanRequest, STEP_STATE};
use riskgrad::engine::{select_executor, WhenNoGpu};
use riskgrad::error::Result;
use riskgrad::rng::Rng;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;

/// The version of the JSON document `--json` writes (`Report`); it changes only when a
/// field changes meaning or goes away.
pub const SCHEMA: u32 = 1;
/// Timed samples a case takes at least, whatever the budget; `bench compare` calls a
/// case with fewer UNSURE.
pub const MIN_SAMPLES: usize = 5;
/// Timed samples a case takes at most.
pub const MAX_SAMPLES: usize = 1000;
/// Past 20 samples, a case stops early once its interquartile range is within this
/// fraction of its median.
pub const TARGET_RELATIVE_IQR: f64 = 0.01;
/// Default seconds of timed samples per case (`--budget`).
pub const DEFAULT_BUDGET_SECONDS: f64 = 1.0;

/// How long each case is measured: samples until `budget_seconds` have passed (at least
/// `MIN_SAMPLES`), or until the spread is within `TARGET_RELATIVE_IQR`.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub budget_seconds: f64,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            budget_seconds: DEFAULT_BUDGET_SECONDS,
        }
    }
}

/// Seconds of one repetition of a case, over its timed samples (each sample the mean of
/// `reps_per_sample` repetitions in one submission).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// First and third quartiles, and their difference.
    pub q1: f64,
    pub q3: f64,
    pub iqr: f64,
    pub samples: usize,
    pub reps_per_sample: usize,
}

impl Stats {
    /// The statistics of a non-empty list of seconds per repetition.
    pub fn of(xs: &[f64], reps_per_sample: usize) -> Stats {
        let mut v = xs.to_vec();
        v.sort_by(f64::total_cmp);
        let (q1, q3) = (quantile(&v, 0.25), quantile(&v, 0.75));
        Stats {
            median: quantile(&v, 0.5),
            min: v[0],
            max: v[v.len() - 1],
            q1,
            q3,
            iqr: q3 - q1,
            samples: v.len(),
            reps_per_sample,
        }
    }
}

/// The `q` quantile of a sorted non-empty list, interpolated linearly between ranks.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// Median of a non-empty list.
pub fn median(xs: Vec<f64>) -> f64 {
    Stats::of(&xs, 1).median
}

/// The device a case ran on, as the JSON names it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The adapter's name, or "cpu" for the native CPU backend.
    pub name: String,
    /// Vulkan, Metal, Dx12, Gl; "native" for the CPU backend.
    pub backend: String,
    /// Discrete, integrated, virtual or CPU (wgpu's words); "cpu" for the CPU backend.
    pub device_type: String,
    /// The driver and its version details; empty for the CPU backend.
    pub driver: String,
    /// Worker threads of the CPU backend; null on a GPU.
    pub threads: Option<usize>,
    /// The device's measured peaks, the ceilings of each case's % of peak; not written
    /// (each case names the ceiling it used in its own `peak`).
    #[serde(skip)]
    pub peaks: Option<Arc<Peaks>>,
}

impl DeviceInfo {
    fn cpu() -> DeviceInfo {
        DeviceInfo {
            name: "cpu".into(),
            backend: "native".into(),
            device_type: "cpu".into(),
            driver: String::new(),
            threads: Some(rayon::current_num_threads()),
            peaks: None,
        }
    }

    fn of_adapter(a: &AdapterSummary) -> DeviceInfo {
        if a.is_software {
            // Figures from a software adapter are the CPU's, not a GPU's: say so.
            eprintln!("{}", riskgrad::engine::software_adapter_note(&a.name));
        }
        DeviceInfo {
            name: a.name.clone(),
            backend: a.backend.clone(),
            device_type: a.device_type.clone(),
            driver: format!("{} {}", a.driver, a.driver_info).trim().to_string(),
            threads: None,
            peaks: None,
        }
    }
}

/// The executor for a device the user named on purpose (no fallback to the CPU), its
/// GPU matmuls tuned as `tuning` says (`riskgrad bench --tune`; the `cargo bench`
/// targets pass `Tuning::default()`, off), and what the device is.
pub fn open_device(
    choice: &DeviceChoice,
    tuning: &Tuning,
) -> Result<(Box<dyn Executor>, DeviceInfo)> {
    open(choice, tuning).map(|(exec, info, _)| (exec, info))
}

/// As `open_device`, with the device as the peak kernels see it.
fn open(choice: &DeviceChoice, tuning: &Tuning) -> Result<(Box<dyn Executor>, DeviceInfo, Target)> {
    if *choice == DeviceChoice::Cpu {
        let exec = select_executor(choice, WhenNoGpu::Refuse)?.executor;
        return Ok((exec, DeviceInfo::cpu(), Target::Cpu));
    }
    match choose_adapter(choice)? {
        Some(ctx) => {
            let info = DeviceInfo::of_adapter(&ctx.info);
            let target = Target::Gpu(ctx.adapter.clone(), ctx.info.clone());
            ctx.set_tuning(tuning.clone());
            Ok((Box::new(GpuExecutor::new(Arc::new(ctx))), info, target))
        }
        None => Err(no_adapter(choice)),
    }
}

/// No adapter matches `choice`: the selector's own refusal.
fn no_adapter(choice: &DeviceChoice) -> riskgrad::Error {
    select_executor(choice, WhenNoGpu::Refuse)
        .err()
        .unwrap_or_else(|| riskgrad::Error::Gpu(format!("no adapter matches {choice:?}")))
}

/// The device `choice` names for the peak kernels alone (no engine executor, whose
/// pipelines a peak measurement does not need), and what it is.
pub fn open_target(choice: &DeviceChoice) -> Result<(Target, DeviceInfo)> {
    if *choice == DeviceChoice::Cpu {
        return Ok((Target::Cpu, DeviceInfo::cpu()));
    }
    match riskgrad::engine::gpu::pick_adapter(choice)? {
        Some((adapter, summary)) => {
            let info = DeviceInfo::of_adapter(&summary);
            Ok((Target::Gpu(adapter, summary), info))
        }
        None => Err(no_adapter(choice)),
    }
}

/// Runs `body` on an executor for each device listed (GPU matmuls tuned as `tuning`
/// says); one that is not there is skipped with a line saying so. Each device's peaks
/// (the ceilings of % of peak) come from `peaks` first: measured briefly once per
/// process, read from a saved `bench peak`, or none.
pub fn each_device(
    devices: &[DeviceChoice],
    tuning: &Tuning,
    peaks: &PeakSource,
    mut body: impl FnMut(&mut dyn Executor, &DeviceInfo) -> Result<()>,
) -> Result<()> {
    for choice in devices {
        match open(choice, tuning) {
            Ok((mut exec, mut info, target)) => {
                info.peaks = peaks.for_device(&target, &info);
                body(exec.as_mut(), &info)?
            }
            Err(e) => eprintln!("skipping device {choice:?}: {e}"),
        }
    }
    Ok(())
}

/// The ceiling a case's rate was held against (`Case::peak`): one of its device's peaks.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PeakRef {
    /// The peak kernel: `fma`, `copy` or `read`.
    pub kernel: String,
    pub dtype: String,
    pub value: f64,
    /// `GFLOP/s` or `GB/s`, the unit of the case's rate.
    pub unit: String,
    /// `measured` (a short measurement in this process) or the `--peak` file read.
    pub source: String,
}

/// Which peak bounds a kind of case: compute-bound kernels the f32 fma rate,
/// memory-bound ones (all of which read and write) the copy bandwidth; `None` where the
/// figure has no ceiling (rows/s). The read peak bounds no suite yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ceiling {
    Fma,
    Copy,
    None,
}

impl Ceiling {
    /// The device's peak of this kind, as a case names it.
    fn of(self, device: &DeviceInfo) -> Option<PeakRef> {
        let p = device.peaks.as_ref()?;
        let (kernel, value, unit) = match self {
            Ceiling::Fma => ("fma", p.fma?, "GFLOP/s"),
            Ceiling::Copy => ("copy", p.copy?, "GB/s"),
            Ceiling::None => return None,
        };
        Some(PeakRef {
            kernel: kernel.into(),
            dtype: "f32".into(),
            value,
            unit: unit.into(),
            source: p.source.clone(),
        })
    }
}

/// One measured case: what ran where, its statistics, and its figure of merit. The JSON
/// of `riskgrad bench --json` holds a list of these (fields in README, "Benchmarks").
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Case {
    /// The `riskgrad bench` subcommand: matmul, conv, pool, lstm, gru, train.
    pub suite: String,
    pub kernel: String,
    pub shape: String,
    pub dtype: String,
    pub variant: String,
    pub device: DeviceInfo,
    /// "ok", or "wrong" when the output disagreed with the reference (then not timed).
    pub status: String,
    /// Seconds per repetition; null when not timed.
    pub stats: Option<Stats>,
    /// Work of one repetition, in `work_unit`s (flop, byte, row).
    pub work: f64,
    pub work_unit: String,
    /// `work` over the median time, in `unit` (GFLOP/s, GB/s, rows/s); null when not timed.
    pub rate: Option<f64>,
    pub unit: String,
    /// Largest absolute difference from the reference, and the tolerance it was held
    /// to; null where the case is not checked.
    pub max_error: Option<f64>,
    pub tolerance: Option<f64>,
    /// Arithmetic intensity: flops per byte of the least traffic (inputs read once, the
    /// output written once); null where meaningless (rows/s, the peak kernels).
    #[serde(default)]
    pub intensity: Option<f64>,
    /// The device peak the rate is held against; null with `--no-peak`, where the figure
    /// has no ceiling, or where the peak could not be measured.
    #[serde(default)]
    pub peak: Option<PeakRef>,
    /// `rate / peak.value * 100`; null when either is.
    #[serde(default)]
    pub percent_of_peak: Option<f64>,
    /// Which clock `stats` come from: "device timestamps" (a GPU with TIMESTAMP_QUERY:
    /// the launches' own time) or "wall clock".
    #[serde(default = "wall_clock")]
    pub clock: String,
    /// The wall clock's statistics beside device timestamps; null when `stats` are the
    /// wall clock's.
    #[serde(default)]
    pub wall_stats: Option<Stats>,
    /// `bench train` only: one training step's time by kernel family; absent elsewhere
    /// and where launches cannot be timed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breakdown: Option<Breakdown>,
}

fn wall_clock() -> String {
    "wall clock".into()
}

impl Case {
    /// The case with its statistics from `time` (device timestamps or the wall clock).
    fn timed_by(mut self, time: Option<&PlanTime>) -> Case {
        if let Some(wall) = time.and_then(|t| t.wall.clone()) {
            self.clock = "device timestamps".into();
            self.wall_stats = Some(wall);
        }
        self
    }

    /// The line `riskgrad bench` prints for a case.
    pub fn line(&self) -> String {
        let mut name = format!("{} {} {}", self.kernel, self.variant, self.shape);
        if self.dtype != "f32" {
            name = format!("{name} {}", self.dtype);
        }
        let device = device_label(&self.device);
        match (&self.stats, self.rate) {
            (Some(s), Some(rate)) => {
                let mut line = format!(
                    "{name:<52} {device:<32} {rate:>10.2} {}  (median {:.3} ms, IQR {:.3} ms, {} samples)",
                    self.unit,
                    s.median * 1e3,
                    s.iqr * 1e3,
                    s.samples
                );
                if let (Some(pct), Some(p)) = (self.percent_of_peak, &self.peak) {
                    line += &format!("  {pct:.1}% of {} {}", p.kernel, p.dtype);
                    // A kernel cannot beat the ceiling: the peak was measured low (a
                    // loaded machine, or a peak kernel that compiled badly).
                    if pct > 110.0 {
                        line += " (over the measured peak: that peak is too low)";
                    }
                }
                if let Some(i) = self.intensity {
                    line += &format!("  {i:.2} flop/B");
                }
                if let Some(w) = &self.wall_stats {
                    line += &format!("  [device timestamps; wall {:.3} ms]", w.median * 1e3);
                }
                line
            }
            _ => format!(
                "{name:<52} {device:<32} WRONG: max error {:.3e} against the reference, tolerance {:.1e}; not timed",
                self.max_error.unwrap_or(f64::NAN),
                self.tolerance.unwrap_or(f64::NAN)
            ),
        }
    }
}

/// A device as the text output names it.
pub fn device_label(d: &DeviceInfo) -> String {
    match d.threads {
        Some(t) => format!("CPU ({t} threads)"),
        None => format!("{} ({})", d.name, d.backend),
    }
}

/// Prints a case and adds it to `out`.
pub fn record(out: &mut Vec<Case>, case: Case) {
    println!("{}", case.line());
    out.push(case);
}

/// The machine a report was measured on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// The CPU model (/proc/cpuinfo's "model name"); null where unknown.
    pub cpu: Option<String>,
    /// Logical cores.
    pub cores: usize,
    /// The operating system: its family ("linux"), release and distribution where known.
    pub os: String,
    pub arch: String,
}

impl Machine {
    /// This machine.
    pub fn this() -> Machine {
        let cpu = std::fs::read_to_string("/proc/cpuinfo").ok().and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name") || l.starts_with("Model"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        });
        let mut os = std::env::consts::OS.to_string();
        if let Ok(release) = std::fs::read_to_string("/proc/sys/kernel/osrelease") {
            os = format!("{os} {}", release.trim());
        }
        let pretty = std::fs::read_to_string("/etc/os-release")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                    .map(|v| v.trim_matches('"').to_string())
            });
        if let Some(p) = pretty {
            os = format!("{os} ({p})");
        }
        Machine {
            cpu,
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            os,
            arch: std::env::consts::ARCH.to_string(),
        }
    }
}

/// riskgrad's build.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Build {
    pub version: String,
}

/// The document `riskgrad bench --json FILE` writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub schema: u32,
    pub riskgrad: Build,
    /// The command line that made it.
    pub command: String,
    /// Seconds since 1970 (UTC) when it was written.
    pub created_unix: u64,
    pub machine: Machine,
    /// The `--budget` per case, in seconds; null for `bench train` (its epochs decide).
    pub budget_seconds: Option<f64>,
    pub cases: Vec<Case>,
}

impl Report {
    /// A report of `cases` measured on this machine.
    pub fn new(cases: Vec<Case>, budget_seconds: Option<f64>) -> Report {
        Report {
            schema: SCHEMA,
            riskgrad: Build {
                version: env!("CARGO_PKG_VERSION").to_string(),
            },
            command: std::env::args().collect::<Vec<_>>().join(" "),
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            machine: Machine::this(),
            budget_seconds,
            cases,
        }
    }

    /// Writes the report as JSON to `path`, atomically.
    pub fn write(&self, path: &std::path::Path) -> Result<()> {
        let mut text = serde_json::to_string_pretty(self)
            .map_err(|e| riskgrad::Error::Internal(format!("bench report as JSON: {e}")))?;
        text.push('\n');
        riskgrad::files::write_atomically(path, text.as_bytes())
    }
}

/// Runs a loaded plan until the step counter reads back, returning the wall seconds.
fn run_waiting(exec: &mut dyn Executor, plan: usize, reps: usize) -> Result<f64> {
    let start = Instant::now();
    exec.run(plan, reps)?;
    exec.read(STEP_STATE)?;
    Ok(start.elapsed().as_secs_f64())
}

/// Times steps of a loaded plan by the wall clock (`time_reps`); reading the step
/// counter back waits for completion.
pub fn time_plan_wall(exec: &mut dyn Executor, plan: usize, timing: &Timing) -> Result<Stats> {
    time_reps(|reps| run_waiting(exec, plan, reps), timing)
}

/// A plan's time per step, and by which clock.
#[derive(Clone, Debug, Serialize)]
pub struct PlanTime {
    /// From device timestamps where the device has them, else from the wall clock.
    pub stats: Stats,
    /// The wall clock's, beside device timestamps; `None` when `stats` is the wall's.
    pub wall: Option<Stats>,
}

/// Times steps of a loaded plan: on a GPU with TIMESTAMP_QUERY, the device's own time
/// (the sum of the step's launches, from timestamps, one step per sample after one
/// warm-up) with the wall clock's beside it, half the budget each; elsewhere the wall
/// clock's alone.
pub fn time_plan(exec: &mut dyn Executor, plan: usize, timing: &Timing) -> Result<PlanTime> {
    // Only the CPU executor's memory is the host's: its "launch times" are host clocks.
    if exec.reads_are_free() || exec.time_launches(plan, 0)?.is_none() {
        return Ok(PlanTime {
            stats: time_plan_wall(exec, plan, timing)?,
            wall: None,
        });
    }
    let half = Timing {
        budget_seconds: timing.budget_seconds / 2.0,
    };
    let wall = time_plan_wall(exec, plan, &half)?;
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < MAX_SAMPLES
        && (samples.len() < MIN_SAMPLES || start.elapsed().as_secs_f64() < half.budget_seconds)
    {
        let launches = exec.time_launches(plan, 0)?.unwrap_or_default();
        samples.push(launches.iter().map(|(_, s)| s).sum::<f64>());
    }
    Ok(PlanTime {
        stats: Stats::of(&samples, 1),
        wall: Some(wall),
    })
}

/// On a GPU, runs a loaded plan once and compares its `out` with the CPU backend's run of
/// `plan` on the same random inputs (`load_with_random_inputs` from `seed`, then
/// `extra`): the largest absolute difference and the tolerance, 1e-3 of the CPU output's
/// largest magnitude (at least 1e-3). `None` on the CPU backend, whose kernels the test
/// suite holds against f64 references.
fn check_against_cpu(
    exec: &mut dyn Executor,
    (h, plan): (usize, riskgrad::engine::plan::Plan),
    out: riskgrad::engine::graph::NodeId,
    seed: u64,
    extra: &[(String, Vec<f32>)],
) -> Result<Option<(f64, f64)>> {
    if exec.reads_are_free() {
        return Ok(None);
    }
    exec.run(h, 1)?;
    let mut got = exec.read_node(h, out)?;
    if std::env::var_os(INJECT_WRONG_ENV).is_some() {
        got.iter_mut().for_each(|v| *v += 1.0);
    }
    let mut cpu = riskgrad::engine::cpu::CpuExecutor::new();
    let hc = load_with_random_inputs(&mut cpu, plan, seed)?;
    for (name, data) in extra {
        cpu.write(name, data)?;
    }
    cpu.run(hc, 1)?;
    Ok(Some(largest_difference(&got, &cpu.read_node(hc, out)?)))
}

/// The largest absolute difference of `got` from `want` (NaN if either has a NaN there,
/// or their lengths differ), and the tolerance it is held to: 1e-3 of `want`'s largest
/// magnitude, at least 1e-3.
fn largest_difference(got: &[f32], want: &[f32]) -> (f64, f64) {
    let scale = want.iter().fold(1.0f64, |m, v| m.max(v.abs() as f64));
    let error = got
        .iter()
        .zip(want)
        .map(|(g, w)| (*g as f64 - *w as f64).abs())
        .fold(0.0f64, |m, e| if e.is_nan() || e > m { e } else { m });
    let error = if got.len() == want.len() {
        error
    } else {
        f64::NAN
    };
    (error, 1e-3 * scale)
}

/// Times `run(reps)`, which runs `reps` repetitions (in one submission, on a GPU), waits
/// for them, and returns the wall seconds: one warm-up repetition (first-use costs stay
/// out), then samples of `reps` repetitions until the budget is spent (at least
/// `MIN_SAMPLES`) or the spread is within `TARGET_RELATIVE_IQR`. `reps` is sized so a
/// sample takes about a twentieth of the budget.
pub fn time_reps(mut run: impl FnMut(usize) -> Result<f64>, timing: &Timing) -> Result<Stats> {
    let probe = run(1)?;
    let probe = probe.min(run(1)?);
    let target = timing.budget_seconds / 20.0;
    let reps = ((target / probe.max(1e-7)) as usize).clamp(1, 10_000);
    if reps > 1 {
        run(reps)?; // warm-up at the sample's size
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while times.len() < MAX_SAMPLES {
        times.push(run(reps)? / reps as f64);
        let n = times.len();
        if n < MIN_SAMPLES {
            continue;
        }
        if start.elapsed().as_secs_f64() >= timing.budget_seconds {
            break;
        }
        if n >= 20 {
            let s = Stats::of(&times, reps);
            if s.iqr <= TARGET_RELATIVE_IQR * s.median {
                break;
            }
        }
    }
    Ok(Stats::of(&times, reps))
}

/// A case measured (or found wrong): `work` per repetition in `work_unit`, the rate in
/// `unit` as `work / seconds / scale`.
struct Measured<'a> {
    suite: &'a str,
    kernel: String,
    shape: String,
    dtype: &'a str,
    variant: String,
    work: f64,
    work_unit: &'a str,
    unit: &'a str,
    scale: f64,
    /// Flops per byte of least traffic, where meaningful.
    intensity: Option<f64>,
    /// The peak the rate is a percentage of.
    ceiling: Ceiling,
}

impl Measured<'_> {
    fn case(self, device: &DeviceInfo, stats: Option<Stats>, check: Option<(f64, f64)>) -> Case {
        // A NaN error is wrong too.
        let wrong = check.is_some_and(|(err, tol)| err.is_nan() || err > tol);
        let stats = if wrong { None } else { stats };
        let rate = stats.as_ref().map(|s| self.work / s.median / self.scale);
        let peak = self.ceiling.of(device);
        Case {
            suite: self.suite.into(),
            kernel: self.kernel,
            shape: self.shape,
            dtype: self.dtype.into(),
            variant: self.variant,
            device: device.clone(),
            status: if wrong { "wrong" } else { "ok" }.into(),
            rate,
            percent_of_peak: rate.zip(peak.as_ref()).map(|(r, p)| r / p.value * 100.0),
            peak,
            intensity: self.intensity,
            stats,
            work: self.work,
            work_unit: self.work_unit.into(),
            unit: self.unit.into(),
            max_error: check.map(|c| c.0),
            tolerance: check.map(|c| c.1),
            breakdown: None,
            clock: wall_clock(),
            wall_stats: None,
        }
    }
}

/// Set (to anything) by tests only: the matmul check sees every output off by one, so a
/// wrong kernel's path (reported, never timed) can be exercised.
pub const INJECT_WRONG_ENV: &str = "RISKGRAD_BENCH_INJECT_WRONG";

/// `C = A·A` for square `size`, with random operands. Before timing, 64 entries of the
/// output are checked against an f64 dot product; a wrong output is reported and not
/// timed.
pub fn matmul(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    size: usize,
    timing: &Timing,
) -> Result<Case> {
    let mut g = Graph::new();
    // Names carry the size: one executor serves every size, and named inputs are shared.
    let (name_a, name_b) = (format!("bench_a_{size}"), format!("bench_b_{size}"));
    let a = g.input(&name_a, &[size, size])?;
    let b = g.input(&name_b, &[size, size])?;
    let c = g.matmul_ex(a, b, None, false, false, Act::Identity)?;
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![c],
            ..Default::default()
        },
    )?;
    let h = exec.load(plan)?;
    let mut rng = Rng::new(size as u64);
    let data: Vec<f32> = (0..size * size)
        .map(|_| rng.range(-1.0, 1.0) as f32)
        .collect();
    exec.write(&name_a, &data)?;
    exec.write(&name_b, &data)?;
    exec.run(h, 1)?;
    let mut out = exec.read_node(h, c)?;
    if std::env::var_os(INJECT_WRONG_ENV).is_some() {
        out.iter_mut().for_each(|v| *v += 1.0);
    }
    let mut max_error = 0f64;
    for _ in 0..64 {
        let (i, j) = (rng.below(size), rng.below(size));
        let want: f64 = (0..size)
            .map(|k| data[i * size + k] as f64 * data[k * size + j] as f64)
            .sum();
        let error = (out[i * size + j] as f64 - want).abs();
        // A NaN stays: the output is wrong.
        if error.is_nan() || error > max_error {
            max_error = error;
        }
    }
    // f32 sums of `size` products of values in ±1.
    let tolerance = 2e-5 * size as f64 + 1e-4;
    // On a GPU, the kernel variant its autotuner chose for this shape.
    let variant = exec.gemm_variants(h).first().copied().unwrap_or("default");
    let measured = Measured {
        suite: "matmul",
        kernel: "matmul".into(),
        shape: format!("{size}x{size}x{size}"),
        dtype: "f32",
        variant: variant.into(),
        work: 2.0 * (size as f64).powi(3),
        work_unit: "flop",
        unit: "GFLOP/s",
        scale: 1e9,
        // A and B read, C written: 3 n² words.
        intensity: Some(2.0 * (size as f64).powi(3) / (12.0 * (size * size) as f64)),
        ceiling: Ceiling::Fma,
    };
    let time = if max_error <= tolerance {
        Some(time_plan(exec, h, timing)?)
    } else {
        None
    };
    Ok(measured
        .case(
            device,
            time.as_ref().map(|t| t.stats.clone()),
            Some((max_error, tolerance)),
        )
        .timed_by(time.as_ref()))
}

/// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The models `bench train` runs, at the sizes the peers' scripts use.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BenchModel {
    /// Dense 64-32 over the prepared features.
    Mlp,
    /// The default CNN over the payment history.
    Cnn,
    /// LSTM layers of 64 and 32 over the payment history.
    Lstm,
    /// GRU layers of 64 and 32 over the payment history.
    Gru,
}

impl BenchModel {
    /// The model's name in the output and the JSON's `kernel` field.
    pub fn label(self) -> &'static str {
        match self {
            BenchModel::Mlp => "mlp 64-32",
            BenchModel::Cnn => "cnn",
            BenchModel::Lstm => "lstm 64-32",
            BenchModel::Gru => "gru 64-32",
        }
    }
}

/// One kernel family's share of a training step (`bench train`'s breakdown).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KernelTime {
    /// The `plan::Kernel` variant (MatMul, ReduceTo, RnnCell, ...).
    pub kernel: String,
    /// Its launches in one step.
    pub launches: usize,
    /// Seconds per step, summed over its launches (each launch's median over the timed
    /// steps).
    pub seconds: f64,
    /// `seconds` over the whole step's, in percent.
    pub percent: f64,
}

/// Where a step's time goes, kernel family by family, largest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Breakdown {
    /// "device timestamps" (GPU) or "host clock" (CPU).
    pub clock: String,
    /// Timed steps each launch's median is taken over.
    pub steps: usize,
    pub kernels: Vec<KernelTime>,
}

impl Breakdown {
    /// Groups per-launch times (one list per timed step, each `(kernel, seconds)` in
    /// launch order) by kernel.
    pub fn of(timed: &[Vec<(String, f64)>], clock: &str) -> Breakdown {
        let mut kernels: Vec<KernelTime> = Vec::new();
        if let Some(first) = timed.first() {
            for (i, (name, _)) in first.iter().enumerate() {
                let seconds = median(timed.iter().map(|step| step[i].1).collect());
                match kernels.iter_mut().find(|k| &k.kernel == name) {
                    Some(k) => {
                        k.launches += 1;
                        k.seconds += seconds;
                    }
                    None => kernels.push(KernelTime {
                        kernel: name.clone(),
                        launches: 1,
                        seconds,
                        percent: 0.0,
                    }),
                }
            }
        }
        let total: f64 = kernels.iter().map(|k| k.seconds).sum();
        for k in &mut kernels {
            k.percent = if total > 0.0 {
                k.seconds / total * 100.0
            } else {
                0.0
            };
        }
        kernels.sort_by(|a, b| b.seconds.total_cmp(&a.seconds));
        Breakdown {
            clock: clock.into(),
            steps: timed.len(),
            kernels,
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub model: BenchModel,
    pub device: String,
    pub features: usize,
    /// Median over epochs of training rows per second (validation excluded).
    pub rows_per_second: f64,
    pub epochs: usize,
    /// Seconds from `since` (process start) to: the data prepared, the plans loaded
    /// (buffers, bind groups, data uploaded), and the end of the first training step.
    pub data_ready_seconds: f64,
    pub plans_loaded_seconds: f64,
    pub first_step_seconds: f64,
    pub val_auc: f64,
    pub peak_rss_mib: Option<f64>,
    /// Training rows per epoch, and each epoch's seconds of training steps (validation
    /// excluded).
    pub train_rows: usize,
    pub epoch_seconds: Vec<f64>,
    pub peer_features: bool,
    /// Where one step's time goes; `None` where launches cannot be timed.
    pub breakdown: Option<Breakdown>,
}

impl TrainBench {
    /// The benchmark as a case (a repetition is one epoch's training steps).
    pub fn case(&self, device: &DeviceInfo) -> Case {
        let mut case = Measured {
            suite: "train",
            kernel: self.model.label().into(),
            shape: format!(
                "rows {} features {} batch {TRAIN_BATCH}",
                self.train_rows, self.features
            ),
            variant: if self.peer_features {
                "adam peer-features"
            } else {
                "adam"
            }
            .into(),
            dtype: "f32",
            work: self.train_rows as f64,
            work_unit: "row",
            unit: "rows/s",
            scale: 1.0,
            intensity: None,
            ceiling: Ceiling::None,
        }
        .case(device, Some(Stats::of(&self.epoch_seconds, 1)), None);
        case.breakdown = self.breakdown.clone();
        case
    }
}

/// Prints a training benchmark; `exec` is the executor it ran on (for its host time per
/// step, where it keeps one).
pub fn print_train(b: &TrainBench, exec: &dyn Executor) {
    println!(
        "{} on {}; {} input features",
        b.model.label(),
        b.device,
        b.features
    );
    println!(
        "training throughput: {:.0} rows/s (median of {} epochs)",
        b.rows_per_second, b.epochs
    );
    println!(
        "process start to end of first training step: {:.3} s (data prepared {:.3} s, device ready and plans loaded {:.3} s)",
        b.first_step_seconds, b.data_ready_seconds, b.plans_loaded_seconds
    );
    println!("validation AUC after {} epochs: {:.4}", b.epochs, b.val_auc);
    if let Some(host) = exec.host_seconds_per_step() {
        println!(
            "host time per training step (recording + submitting): {:.1} µs",
            host * 1e6
        );
    }
    if let Some(rss) = b.peak_rss_mib {
        println!("peak resident memory: {rss:.1} MiB");
    }
    match &b.breakdown {
        Some(d) => {
            let total: f64 = d.kernels.iter().map(|k| k.seconds).sum();
            let launches: usize = d.kernels.iter().map(|k| k.launches).sum();
            println!(
                "one training step by kernel ({}, each launch alone, median of {} steps): {:.1} µs in {launches} launches",
                d.clock,
                d.steps,
                total * 1e6
            );
            for k in &d.kernels {
                println!(
                    "  {:<20} {:>4} launches {:>10.1} µs {:>6.1}%",
                    k.kernel,
                    k.launches,
                    k.seconds * 1e6,
                    k.percent
                );
            }
        }
        None => println!("per-kernel times: this device has no timestamp queries"),
    }
}

/// Rows per training step in `bench train` (the peers' batch).
pub const TRAIN_BATCH: usize = 256;

/// How the benchmarks train: batches of [`TRAIN_BATCH`], Adam at 1e-3, seed 0.
pub fn train_config(epochs: usize) -> riskgrad::train::TrainConfig {
    riskgrad::train::TrainConfig {
        epochs,
        batch: TRAIN_BATCH,
        optimizer: riskgrad::engine::graph::Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 0,
        pos_weight: 1.0,
    }
}
/// Training steps timed launch by launch for the breakdown.
const TIMED_STEPS: usize = 10;

/// The bundled data prepared for `which` and the model (see [`train_model`]).
pub fn model_and_data(
    which: BenchModel,
    peer_features: bool,
) -> Result<(riskgrad::data::Prepared, riskgrad::nn::ModelSpec)> {
    use riskgrad::data::sequence::{self, SequenceLayout};
    use riskgrad::data::{prepare_bundled, PrepareOptions};
    use riskgrad::nn::{CnnLayers, ModelSpec, RecurrentSpec};
    let mut opts = PrepareOptions::bundled();
    if peer_features {
        opts.categorical.clear();
        opts.signed_log = riskgrad::data::SignedLog::Off;
    }
    if which != BenchModel::Mlp {
        opts = sequence::prepare_options(opts, &[], true)?;
    }
    let mut data = prepare_bundled(&opts)?;
    let model = match which {
        BenchModel::Mlp => ModelSpec::mlp(data.n_features(), &[64, 32])?,
        _ => {
            let l = SequenceLayout::taiwan_default(&data.feature_names).ok_or_else(|| {
                riskgrad::Error::Internal("the bundled data lacks its payment history".into())
            })?;
            l.apply(&mut data)?;
            let (statics, channels, steps) = (l.statics(), l.channels(), l.steps());
            match which {
                BenchModel::Cnn => ModelSpec::cnn(statics, channels, steps, CnnLayers::default())?,
                BenchModel::Lstm | BenchModel::Gru => {
                    let spec = RecurrentSpec::new(statics, channels, steps, &[64, 32], false, &[])?;
                    match which {
                        BenchModel::Lstm => ModelSpec::lstm(spec),
                        _ => ModelSpec::gru(spec),
                    }
                }
                BenchModel::Mlp => unreachable!("handled above"),
            }
        }
    };
    Ok((data, model))
}

/// Trains `which` (batch 256, Adam 1e-3, seed 0) on the bundled Taiwan data and measures
/// throughput, then times the launches of a few more steps; `since` is when the process
/// started. With `peer_features` the MLP's data is prepared as the peer programs do (the
/// 23 columns as numbers, standardized) instead of riskgrad's defaults (58 features
/// after one-hot); the sequence models always read the columns as numbers.
pub fn train_model(
    exec: &mut dyn Executor,
    which: BenchModel,
    epochs: usize,
    peer_features: bool,
    since: Instant,
) -> Result<TrainBench> {
    use riskgrad::train::Trainer;
    let (data, model) = model_and_data(which, peer_features)?;
    let (train, val) = (&data.train, &data.val);
    let data_ready_seconds = since.elapsed().as_secs_f64();
    let device = exec.device_name();
    // Only the CPU executor's memory is the host's.
    let clock = if exec.reads_are_free() {
        "host clock"
    } else {
        "device timestamps"
    };
    let mut trainer = Trainer::new(exec, &model, train, val, train_config(epochs))?;
    let plans_loaded_seconds = since.elapsed().as_secs_f64();
    trainer.step_once()?;
    let first_step_seconds = since.elapsed().as_secs_f64();
    let mut rates = Vec::new();
    let mut epoch_seconds = Vec::new();
    let mut val_auc = f64::NAN;
    for _ in 0..epochs {
        let report = trainer.epoch(&mut |_, _, _| {})?;
        rates.push(report.rows_per_second);
        epoch_seconds.push(train.rows() as f64 / report.rows_per_second);
        val_auc = report.validation.auc;
    }
    // After the figures above: the timed steps move the weights.
    let mut timed = Vec::new();
    for _ in 0..TIMED_STEPS {
        match trainer.time_step_launches()? {
            Some(launches) => timed.push(launches),
            None => break,
        }
    }
    Ok(TrainBench {
        model: which,
        device,
        features: data.n_features(),
        rows_per_second: median(rates),
        epochs,
        data_ready_seconds,
        plans_loaded_seconds,
        first_step_seconds,
        val_auc,
        peak_rss_mib: peak_rss_mib(),
        train_rows: train.rows(),
        epoch_seconds,
        peer_features,
        breakdown: (!timed.is_empty()).then(|| Breakdown::of(&timed, clock)),
    })
}

/// A convolution to time: x `[n, c, h, w]`, `o` filters of `kh × kw`, one stride and
/// one padding on both axes, no dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConvCase {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvCase {
    /// The peer CNN's two layers at batch 256 (conv1d as `h = 1`), and an image-like
    /// layer (32 images of 64×56×56, 64 filters of 3×3).
    pub fn representative() -> Vec<ConvCase> {
        vec![
            ConvCase {
                n: 256,
                c: 3,
                h: 1,
                w: 6,
                o: 32,
                kh: 1,
                kw: 3,
                stride: 1,
                padding: 1,
            },
            ConvCase {
                n: 256,
                c: 32,
                h: 1,
                w: 3,
                o: 64,
                kh: 1,
                kw: 3,
                stride: 1,
                padding: 1,
            },
            ConvCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                o: 64,
                kh: 3,
                kw: 3,
                stride: 1,
                padding: 1,
            },
        ]
    }

    fn geom(&self) -> riskgrad::engine::graph::ConvGeom {
        let pad_h = if self.h == 1 { 0 } else { self.padding };
        let stride_h = if self.h == 1 { 1 } else { self.stride };
        riskgrad::engine::graph::ConvGeom {
            stride: [stride_h, self.stride],
            padding: [pad_h, self.padding],
            dilation: [1, 1],
        }
    }

    fn label(&self) -> String {
        format!(
            "{}x{}x{}x{} * {}x{}x{}x{} s{} p{}",
            self.n,
            self.c,
            self.h,
            self.w,
            self.o,
            self.c,
            self.kh,
            self.kw,
            self.stride,
            self.padding
        )
    }
}

/// Which product of a convolution to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConvPass {
    Forward,
    GradInput,
    GradWeight,
}

/// Loads `plan` and writes random values in ±1 to each of its inputs.
fn load_with_random_inputs(
    exec: &mut dyn Executor,
    plan: riskgrad::engine::plan::Plan,
    seed: u64,
) -> Result<usize> {
    let inputs = plan.inputs.clone();
    let h = exec.load(plan)?;
    let mut rng = Rng::new(seed);
    for i in inputs {
        let data: Vec<f32> = (0..i.len).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        exec.write(&i.name, &data)?;
    }
    Ok(h)
}

/// Times one pass of a convolution (forward with bias and ReLU; or the input or weight
/// gradient, the latter with its parts summed). GFLOP/s counts 2 flops per
/// multiply-add of the definition (`n·o·oh·ow·c·kh·kw` of them), whatever the kernel
/// does.
pub fn conv(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    case: &ConvCase,
    pass: ConvPass,
    timing: &Timing,
) -> Result<Case> {
    let mut g = Graph::new();
    let geom = case.geom();
    // Input names per case and pass: an executor keeps every named input.
    let tag = format!("{} {pass:?}", case.label());
    let x = g.input(&format!("bench_x {tag}"), &[case.n, case.c, case.h, case.w])?;
    let w = g.input(
        &format!("bench_w {tag}"),
        &[case.o, case.c, case.kh, case.kw],
    )?;
    let b = g.input(&format!("bench_b {tag}"), &[case.o])?;
    let y = g.conv2d(x, w, Some(b), geom, Act::Relu)?;
    let y_len = g.nodes[y].numel();
    let macs = y_len * case.c * case.kh * case.kw;
    let (x_len, w_len) = (
        case.n * case.c * case.h * case.w,
        case.o * case.c * case.kh * case.kw,
    );
    // The gradients read a random dz; the forward node is then left out of the plan.
    let y_shape = g.shape(y).to_vec();
    let out = match pass {
        ConvPass::Forward => y,
        ConvPass::GradInput => {
            let dz = g.input(&format!("bench_dz {tag}"), &y_shape)?;
            g.conv2d_grad_input(dz, w, &[case.n, case.c, case.h, case.w], geom)?
        }
        ConvPass::GradWeight => {
            let dz = g.input(&format!("bench_dz {tag}"), &y_shape)?;
            g.conv2d_grad_weight(dz, x, &[case.o, case.c, case.kh, case.kw], geom)?
        }
    };
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![out],
            ..Default::default()
        },
    )?;
    let seed = macs as u64;
    let h = load_with_random_inputs(exec, plan.clone(), seed)?;
    let check = check_against_cpu(exec, (h, plan), out, seed, &[])?;
    let wrong = check.is_some_and(|(e, t)| e.is_nan() || e > t);
    let time = if wrong {
        None
    } else {
        Some(time_plan(exec, h, timing)?)
    };
    let variant = match pass {
        ConvPass::Forward => "forward",
        ConvPass::GradInput => "grad_input",
        ConvPass::GradWeight => "grad_weight",
    };
    // Least traffic in words: forward reads x, w and the bias and writes y; the input
    // gradient reads dz and w and writes dx; the weight gradient reads dz and x, writes dw.
    let words = match pass {
        ConvPass::Forward => x_len + w_len + case.o + y_len,
        ConvPass::GradInput => y_len + w_len + x_len,
        ConvPass::GradWeight => y_len + x_len + w_len,
    };
    let measured = Measured {
        suite: "conv",
        kernel: "conv2d".into(),
        shape: case.label(),
        dtype: "f32",
        variant: variant.into(),
        work: 2.0 * macs as f64,
        work_unit: "flop",
        unit: "GFLOP/s",
        scale: 1e9,
        intensity: Some(2.0 * macs as f64 / (4 * words) as f64),
        ceiling: Ceiling::Fma,
    };
    Ok(measured
        .case(device, time.as_ref().map(|t| t.stats.clone()), check)
        .timed_by(time.as_ref()))
}

/// A pooling op to time: x `[n, c, h, w]`, a `kh × kw` window, one stride and one
/// padding on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolCase {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub max: bool,
}

impl PoolCase {
    /// The peer CNN's max pool at batch 256, and 2×2 / 3×3 pools over image-like maps.
    pub fn representative() -> Vec<PoolCase> {
        vec![
            PoolCase {
                n: 256,
                c: 32,
                h: 1,
                w: 6,
                kh: 1,
                kw: 2,
                stride: 2,
                padding: 0,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 2,
                kw: 2,
                stride: 2,
                padding: 0,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 3,
                kw: 3,
                stride: 2,
                padding: 1,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 2,
                kw: 2,
                stride: 2,
                padding: 0,
                max: false,
            },
        ]
    }

    fn geom(&self) -> riskgrad::engine::graph::PoolGeom {
        let (stride_h, pad_h) = if self.h == 1 {
            (1, 0)
        } else {
            (self.stride, self.padding)
        };
        riskgrad::engine::graph::PoolGeom {
            kernel: [self.kh, self.kw],
            stride: [stride_h, self.stride],
            padding: [pad_h, self.padding],
        }
    }
}

/// Times a pooling op forward (for max: the argmax and the gather) or backward (for
/// max: from a recorded argmax). GB/s counts the bytes a pass must move at least: x
/// read and y written forward; dy (and the argmax) read and dx written backward.
pub fn pool(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    case: &PoolCase,
    backward: bool,
    timing: &Timing,
) -> Result<Case> {
    let xs = [case.n, case.c, case.h, case.w];
    let tag = format!("{case:?} {backward}");
    let mut g = Graph::new();
    let x = g.input(&format!("bench_x {tag}"), &xs)?;
    let y = if case.max {
        g.max_pool2d(x, case.geom())?
    } else {
        g.avg_pool2d(x, case.geom())?
    };
    let (x_len, y_len) = (riskgrad::engine::graph::numel(&xs), g.nodes[y].numel());
    let mut argmax = None;
    if backward && case.max {
        // The gradient reads the argmax the forward pass recorded: record it once, then
        // time the gradient alone with it as an input.
        let idx = g.nodes[y].inputs[1];
        let h = load_with_random_inputs(
            exec,
            compile(
                &g,
                &PlanRequest {
                    keep: vec![idx],
                    ..Default::default()
                },
            )?,
            x_len as u64,
        )?;
        exec.run(h, 1)?;
        argmax = Some(exec.read_node(h, idx)?);
    }
    let (plan, bytes, out) = if backward {
        let mut gb = Graph::new();
        let dy = gb.input(&format!("bench_dy {tag}"), g.shape(y))?;
        let dx = match &argmax {
            Some(_) => {
                let idx = gb.input(&format!("bench_idx {tag}"), g.shape(y))?;
                gb.max_pool_grad(dy, idx, &xs, case.geom())?
            }
            None => gb.avg_pool_grad(dy, &xs, case.geom())?,
        };
        let idx_bytes = if argmax.is_some() { 4 * y_len } else { 0 };
        (
            compile(
                &gb,
                &PlanRequest {
                    keep: vec![dx],
                    ..Default::default()
                },
            )?,
            4 * (y_len + x_len) + idx_bytes,
            dx,
        )
    } else {
        (
            compile(
                &g,
                &PlanRequest {
                    keep: vec![y],
                    ..Default::default()
                },
            )?,
            4 * (x_len + y_len),
            y,
        )
    };
    let seed = y_len as u64;
    let h = load_with_random_inputs(exec, plan.clone(), seed)?;
    let extra: Vec<(String, Vec<f32>)> = argmax
        .map(|idx| (format!("bench_idx {tag}"), idx))
        .into_iter()
        .collect();
    for (name, data) in &extra {
        exec.write(name, data)?;
    }
    let check = check_against_cpu(exec, (h, plan), out, seed, &extra)?;
    let wrong = check.is_some_and(|(e, t)| e.is_nan() || e > t);
    let time = if wrong {
        None
    } else {
        Some(time_plan(exec, h, timing)?)
    };
    // Operations, counting a compare (max) or an add (average) as a flop: one per window
    // element forward; backward, one add per dy for max, per window element for average.
    let window = (case.kh * case.kw) as f64;
    let flop = if backward && case.max {
        y_len as f64
    } else {
        y_len as f64 * window
    };
    let measured = Measured {
        suite: "pool",
        kernel: if case.max { "max_pool2d" } else { "avg_pool2d" }.into(),
        shape: format!(
            "{}x{}x{}x{} window {}x{} s{} p{}",
            case.n, case.c, case.h, case.w, case.kh, case.kw, case.stride, case.padding
        ),
        dtype: "f32",
        variant: if backward { "backward" } else { "forward" }.into(),
        work: bytes as f64,
        work_unit: "byte",
        unit: "GB/s",
        scale: 1e9,
        intensity: Some(flop / bytes as f64),
        // Pooling reads and writes: held against the copy bandwidth.
        ceiling: Ceiling::Copy,
    };
    Ok(measured
        .case(device, time.as_ref().map(|t| t.stats.clone()), check)
        .timed_by(time.as_ref()))
}

/// `riskgrad bench matmul`: each square size in turn, a line printed as each is measured
/// (the large sizes take a while).
pub fn matmul_suite(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    sizes: &[usize],
    timing: &Timing,
    out: &mut Vec<Case>,
) -> Result<()> {
    for &size in sizes {
        record(out, matmul(exec, device, size, timing)?);
    }
    Ok(())
}

/// `riskgrad bench conv`: every representative convolution, each pass.
pub fn conv_suite(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    timing: &Timing,
    out: &mut Vec<Case>,
) -> Result<()> {
    for case in ConvCase::representative() {
        for pass in [ConvPass::Forward, ConvPass::GradInput, ConvPass::GradWeight] {
            record(out, conv(exec, device, &case, pass, timing)?);
        }
    }
    Ok(())
}

/// `riskgrad bench pool`: every representative pooling op, forward and backward.
pub fn pool_suite(
    exec: &mut dyn Executor,
    device: &DeviceInfo,
    timing: &Timing,
    out: &mut Vec<Case>,
) -> Result<()> {
    for case in PoolCase::representative() {
        for backward in [false, true] {
            record(out, pool(exec, device, &case, backward, timing)?);
        }
    }
    Ok(())
}

/// One recurrent training step measured three ways (see `recurrent`).
#[derive(Clone, Debug, Serialize)]
pub struct RnnBench {
    pub name: String,
    pub device: String,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub steps: usize,
    /// Seconds of one step, forward and backward through time: every launch. The three
    /// are `None` when the step's outputs disagreed with the CPU backend's (not timed).
    pub step: Option<PlanTime>,
    /// The same step's matmul launches alone (same shapes and buffers).
    pub matmuls: Option<PlanTime>,
    /// Its fused cell launches alone (forward and backward).
    pub cells: Option<PlanTime>,
    /// On a GPU, the largest difference of the step's gradients from the CPU backend's
    /// and its tolerance (the worst gradient relative to its tolerance); `None` on the
    /// CPU backend.
    pub check: Option<(f64, f64)>,
    /// Kernel launches per step, and how many of them are matmuls and cells.
    pub launches: usize,
    pub matmul_launches: usize,
    pub cell_launches: usize,
}

impl RnnBench {
    /// The step, its matmuls alone and its cells alone as three cases (rows/s: batch
    /// rows through one training step).
    pub fn cases(&self, device: &DeviceInfo) -> Vec<Case> {
        let kernel = self.name.trim_end_matches(" step").to_string();
        [
            ("step", &self.step),
            ("matmuls", &self.matmuls),
            ("cells", &self.cells),
        ]
        .into_iter()
        .map(|(variant, stats)| {
            Measured {
                suite: if kernel == "gru" { "gru" } else { "lstm" },
                kernel: kernel.clone(),
                shape: format!(
                    "batch {} steps {} input {} hidden {}",
                    self.batch, self.steps, self.input, self.hidden
                ),
                dtype: "f32",
                variant: variant.into(),
                work: self.batch as f64,
                work_unit: "row",
                unit: "rows/s",
                scale: 1.0,
                intensity: None,
                ceiling: Ceiling::None,
            }
            .case(device, stats.as_ref().map(|t| t.stats.clone()), self.check)
            .timed_by(stats.as_ref())
        })
        .collect()
    }
}

/// `recurrent` on each device listed (GPU matmuls tuned as `tuning` says), a line for
/// each, its cases added to `out`.
#[allow(clippy::too_many_arguments)]
pub fn recurrent_on_devices(
    kind: CellKind,
    devices: &[DeviceChoice],
    tuning: &Tuning,
    batch: usize,
    input: usize,
    hidden: usize,
    steps: usize,
    timing: &Timing,
    out: &mut Vec<Case>,
) -> Result<()> {
    each_device(devices, tuning, &PeakSource::Off, |exec, device| {
        let b = recurrent(exec, kind, batch, input, hidden, steps, timing)?;
        match (&b.step, &b.matmuls, &b.cells) {
            (Some(step), Some(matmuls), Some(cells)) => println!(
                "{} on {}: step {:.3} ms (IQR {:.3} ms, {} samples; forward + backward through time); its {} matmul launches alone {:.3} ms, its {} fused cell launches alone {:.3} ms; {} launches per step ({})",
                b.name, b.device, step.stats.median * 1e3, step.stats.iqr * 1e3, step.stats.samples, b.matmul_launches, matmuls.stats.median * 1e3, b.cell_launches, cells.stats.median * 1e3, b.launches,
                if step.wall.is_some() { "device timestamps" } else { "wall clock" }
            ),
            _ => {
                for case in b.cases(device) {
                    println!("{}", case.line());
                }
            }
        }
        out.extend(b.cases(device));
        Ok(())
    })
}

/// A recurrent layer of `kind` (LSTM or GRU; `batch` rows, `steps` steps of `input`
/// features, `hidden` units) stepped forward and backward through time, its whole
/// sequence read out linearly into a mean: gradients of every weight and of the input, no
/// optimizer. Also times the step's matmuls alone and its fused cells alone (the same
/// launches, filtered out of the compiled plan), and counts launches.
pub fn recurrent(
    exec: &mut dyn Executor,
    kind: CellKind,
    batch: usize,
    input: usize,
    hidden: usize,
    steps: usize,
    timing: &Timing,
) -> Result<RnnBench> {
    use riskgrad::engine::plan::Kernel;
    if batch == 0 || input == 0 || hidden == 0 || steps == 0 {
        return Err(riskgrad::Error::Internal(format!(
            "bench {}: sizes must be positive",
            kind.name()
        )));
    }
    let mut g = Graph::new();
    let x = g.input("bench_seq", &[batch, steps * input])?;
    let out =
        riskgrad::nn::rnn::rnn_layer(&mut g, kind, "bench", x, steps, hidden, false, &[], true)?;
    // A scalar of every step's state (a linear read-out, as a next layer's input product
    // would be), so the gradient enters at every step as in a stack.
    let seq = out.sequence.expect("asked for the sequence");
    let readout = g.param("bench.readout", &[steps * hidden, 1])?;
    let score = g.matmul(seq, readout)?;
    let loss = g.mean(score)?;
    let grads = riskgrad::engine::graph::backward(&mut g, loss, &[x])?;
    let mut keep = vec![grads.of(x).expect("the input reaches the loss")];
    keep.extend((0..g.params.len()).filter_map(|p| grads.of(g.param_node(p))));
    let plan = compile(
        &g,
        &PlanRequest {
            keep: keep.clone(),
            ..Default::default()
        },
    )?;
    let only = |pick: &dyn Fn(&Kernel) -> bool| {
        let mut p = plan.clone();
        p.launches
            .retain(|l| pick(&l.kernel) || matches!(l.kernel, Kernel::AdvanceStep { .. }));
        p
    };
    let matmuls = only(&|k| matches!(k, Kernel::MatMul(_)));
    let cells = only(&|k| matches!(k, Kernel::Rnn(_)));
    // Per step, without the step counter's own launch.
    let count = |p: &riskgrad::engine::plan::Plan| p.launches.len() - 1;
    let (launches, matmul_launches, cell_launches) = (count(&plan), count(&matmuls), count(&cells));
    let layout = plan.layout.clone();
    let reference = plan.clone();
    let full = exec.load(plan)?;
    let mm = exec.load(matmuls)?;
    let cl = exec.load(cells)?;
    let mut rng = Rng::new(0xBE7C);
    let data: Vec<f32> = (0..batch * steps * input)
        .map(|_| rng.range(-1.0, 1.0) as f32)
        .collect();
    exec.write("bench_seq", &data)?;
    let bound = 1.0 / (hidden as f64).sqrt();
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.range(-bound, bound) as f32)
        .collect();
    exec.write_params(&params)?;
    // On a GPU, every gradient of one step against the CPU backend's, before timing.
    let check = if exec.reads_are_free() {
        None
    } else {
        let mut cpu = riskgrad::engine::cpu::CpuExecutor::new();
        let hc = cpu.load(reference)?;
        cpu.write("bench_seq", &data)?;
        cpu.write_params(&params)?;
        cpu.run(hc, 1)?;
        exec.run(full, 1)?;
        let mut worst = (0.0f64, 1.0f64);
        for &node in &keep {
            let mut got = exec.read_node(full, node)?;
            if std::env::var_os(INJECT_WRONG_ENV).is_some() {
                got.iter_mut().for_each(|v| *v += 1.0);
            }
            let (error, tolerance) = largest_difference(&got, &cpu.read_node(hc, node)?);
            if error.is_nan() || error / tolerance > worst.0 / worst.1 {
                worst = (error, tolerance);
            }
        }
        Some(worst)
    };
    let wrong = check.is_some_and(|(e, t)| e.is_nan() || e > t);
    let device = exec.device_name();
    let mut time = |plan: usize| -> Result<Option<PlanTime>> {
        Ok(match wrong {
            true => None,
            false => Some(time_plan(exec, plan, timing)?),
        })
    };
    Ok(RnnBench {
        name: format!("{} step", kind.name()),
        device,
        batch,
        input,
        hidden,
        steps,
        step: time(full)?,
        matmuls: time(mm)?,
        cells: time(cl)?,
        check,
        launches,
        matmul_launches,
        cell_launches,
    })
}
