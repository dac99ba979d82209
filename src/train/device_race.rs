//! `--device auto` for training: which device trains *this* model faster. A small model
//! is a few dozen dispatches of tiny matrices a step, where a GPU's launch costs can make
//! it slower than the native CPU backend; so when a hardware adapter qualifies, a few warm
//! steps of the run's own training plan are timed on it and on the CPU backend, and the
//! faster takes the run. The choice and both timings are cached per adapter, riskgrad
//! version, CPU thread count and model shape ([`cache_key`]), so the next run of the same
//! model decides without timing.
//!
//! The race trains throwaway copies (their own executors, parameters and shuffles), so the
//! run's result is the one the winner gives when named explicitly.

use super::{Split, TrainConfig, Trainer};
use crate::engine::cpu::CpuExecutor;
use crate::engine::exec::Executor;
use crate::engine::gpu::{pick_adapter, AdapterSummary, DeviceChoice, GpuContext, GpuExecutor};
use crate::error::{Error, Result, Setting};
use crate::nn::ModelSpec;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The environment variable that lets `auto` race a software adapter (lavapipe,
/// llvmpipe) when no hardware one qualifies: for tests and benchmarks of the race on
/// machines without a GPU. Ignored unless `1`.
pub const INCLUDE_SOFTWARE_VAR: &str = "RISKGRAD_AUTO_INCLUDE_SOFTWARE";

/// The environment variable naming the directory of riskgrad's cache (the device
/// choices); without it, the platform's cache directory (`$XDG_CACHE_HOME/riskgrad` or
/// `~/.cache/riskgrad` on Linux).
pub const CACHE_DIR_VAR: &str = "RISKGRAD_CACHE_DIR";

/// The cache file, in the cache directory.
pub const CACHE_FILE: &str = "device-auto.json";

/// Choices the cache keeps (the most recent): one per model shape and machine.
const CACHE_ENTRIES: usize = 64;

/// A device whose warm-up run is this many times slower a step than the other's median
/// has lost: it is not timed further (a software adapter, at 100 times, would take
/// seconds).
const CLEARLY_SLOWER: f64 = 2.0;
/// Timed runs at most; their median decides.
const TIMED_RUNS: usize = 5;
/// Timed runs stop after this many seconds (at least one runs): a device many times
/// slower than the other (a software adapter) is not worth timing closely.
const TIMING_BUDGET: f64 = 0.2;
/// Steps per run, submitted together and waited for once. The default MLP's epoch on the
/// bundled data goes to the executor in runs of about 4 steps (`Trainer::epoch_until`).
const STEPS_PER_RUN: usize = 4;
/// Validation rows the throwaway trainer holds (it never scores them).
const RACE_VALIDATION_ROWS: usize = 64;

/// A device training runs on.
#[derive(Clone)]
pub enum TrainingDevice {
    /// The native CPU backend.
    Cpu,
    /// A GPU adapter, opened.
    Gpu(Arc<GpuContext>),
}

impl TrainingDevice {
    /// A fresh executor on this device.
    pub fn executor(&self) -> Box<dyn Executor> {
        match self {
            TrainingDevice::Cpu => Box::new(CpuExecutor::new()),
            TrainingDevice::Gpu(ctx) => Box::new(GpuExecutor::new(ctx.clone())),
        }
    }

    /// The adapter's name when it is a software rasterizer (then the caller should say
    /// so, as for a named one).
    pub fn software_adapter(&self) -> Option<&str> {
        match self {
            TrainingDevice::Gpu(ctx) if ctx.info.is_software => Some(&ctx.info.name),
            _ => None,
        }
    }
}

/// Which of the two raced devices won.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// The native CPU backend.
    Cpu,
    /// The GPU adapter.
    Gpu,
}

/// Median seconds of one training step on each device.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepTimes {
    /// On the CPU backend.
    pub cpu: f64,
    /// On the adapter.
    pub gpu: f64,
}

impl StepTimes {
    /// The faster device; a tie goes to the CPU backend (no device to open, no driver).
    pub fn faster(&self) -> Side {
        match self.gpu < self.cpu {
            true => Side::Gpu,
            false => Side::Cpu,
        }
    }
}

/// Where the choice came from.
#[derive(Clone, Debug, PartialEq)]
pub enum Source {
    /// Timed now, and cached in this file.
    Measured(PathBuf),
    /// Timed now; caching it failed (the message says why), so the next run times again.
    NotCached(String),
    /// Read from the cache file.
    Cached(PathBuf),
    /// The adapter failed while it was opened or timed (the message says how): the CPU
    /// backend takes the run, and nothing is cached.
    AdapterFailed(String),
}

/// What `auto` chose for a training, and why.
pub struct AutoChoice {
    /// The winner, opened.
    pub device: TrainingDevice,
    /// The winner.
    pub side: Side,
    /// The adapter raced against the CPU backend: its name and backend.
    pub adapter: String,
    /// Both devices' step times.
    pub times: StepTimes,
    /// Measured now or cached.
    pub source: Source,
}

impl AutoChoice {
    /// Which device and why, with the figures: e.g. "the CPU backend, 0.42 ms a step
    /// against 1.9 ms on llvmpipe (Vulkan)".
    pub fn reason(&self) -> String {
        let ms = |s: f64| format!("{:.3} ms", s * 1e3);
        if let Source::AdapterFailed(why) = &self.source {
            return format!(
                "the CPU backend, {} a step; {} failed while it was timed: {why}",
                ms(self.times.cpu),
                self.adapter
            );
        }
        match self.side {
            Side::Cpu => format!(
                "the CPU backend, {} a step against {} on {}",
                ms(self.times.cpu),
                ms(self.times.gpu),
                self.adapter
            ),
            Side::Gpu => format!(
                "{}, {} a step against {} on the CPU backend",
                self.adapter,
                ms(self.times.gpu),
                ms(self.times.cpu)
            ),
        }
    }

    /// The line a run prints: the reason and where it came from.
    pub fn line(&self) -> String {
        let source = match &self.source {
            Source::Measured(path) => format!("measured; cached in {}", path.display()),
            Source::NotCached(_) => "measured; not cached".to_string(),
            Source::Cached(path) => format!("cached in {}", path.display()),
            Source::AdapterFailed(_) => "not cached".to_string(),
        };
        format!("device auto: {} ({source})", self.reason())
    }
}

/// For `auto`: the faster of the CPU backend and the best hardware adapter for training
/// `model` on rows like `train` with `config` (the run's batch, optimizer and seed),
/// from the cache or by timing a few warm steps on each. `Ok(None)` when no adapter
/// qualifies ([`INCLUDE_SOFTWARE_VAR`] lets a software one in): then nothing is timed and
/// the run goes to the CPU backend as before. Neither the run's weights nor its shuffles
/// are touched; `val` only gives the throwaway trainers a few validation rows.
pub fn choose_for_training(
    model: &ModelSpec,
    train: &Split,
    val: &Split,
    config: &TrainConfig,
) -> Result<Option<AutoChoice>> {
    let Some((adapter, info)) = race_candidate()? else {
        return Ok(None);
    };
    let adapter_name = format!("{} ({})", info.name, info.backend);
    let key = cache_key(&info, rayon::current_num_threads(), model, config.batch);
    let path = cache_dir().map(|d| d.join(CACHE_FILE));
    if let Some(hit) = path.as_deref().and_then(|p| lookup(p, &key)) {
        let device = match hit.side {
            Side::Cpu => TrainingDevice::Cpu,
            Side::Gpu => TrainingDevice::Gpu(Arc::new(GpuContext::new(adapter, info.clone())?)),
        };
        return Ok(Some(AutoChoice {
            device,
            side: hit.side,
            adapter: adapter_name,
            times: hit.times,
            source: Source::Cached(path.expect("a hit has a file")),
        }));
    }
    let cpu = seconds_per_step(&TrainingDevice::Cpu, model, train, val, config, None)?;
    let raced = GpuContext::new(adapter, info.clone()).and_then(|ctx| {
        let gpu = TrainingDevice::Gpu(Arc::new(ctx));
        Ok((
            seconds_per_step(&gpu, model, train, val, config, Some(cpu))?,
            gpu,
        ))
    });
    let (gpu_seconds, gpu) = match raced {
        Ok(raced) => raced,
        // `auto` may always take the CPU backend: an adapter that cannot open or run this
        // model (a driver fault, too little memory) hands it the run, and nothing is
        // cached, so the next run tries the adapter again.
        Err(
            e @ (Error::Gpu(_)
            | Error::OutOfMemory { .. }
            | Error::OverBinding { .. }
            | Error::Invalid {
                setting: Setting::BatchSize,
                ..
            }),
        ) => {
            return Ok(Some(AutoChoice {
                device: TrainingDevice::Cpu,
                side: Side::Cpu,
                adapter: adapter_name,
                times: StepTimes {
                    cpu,
                    gpu: f64::INFINITY,
                },
                source: Source::AdapterFailed(e.to_string()),
            }))
        }
        Err(e) => return Err(e),
    };
    let times = StepTimes {
        cpu,
        gpu: gpu_seconds,
    };
    let side = times.faster();
    let entry = CacheEntry { key, side, times };
    let source = match &path {
        None => Source::NotCached("no cache directory (set RISKGRAD_CACHE_DIR or HOME)".into()),
        Some(p) => match remember(p, entry) {
            Ok(()) => Source::Measured(p.clone()),
            Err(e) => Source::NotCached(e.to_string()),
        },
    };
    Ok(Some(AutoChoice {
        device: match side {
            Side::Cpu => TrainingDevice::Cpu,
            Side::Gpu => gpu,
        },
        side,
        adapter: adapter_name,
        times,
        source,
    }))
}

/// Whether `auto` has an adapter to race against the CPU backend (else it takes the CPU
/// backend without timing).
pub fn auto_races() -> Result<bool> {
    Ok(race_candidate()?.is_some())
}

/// The adapter `auto` races: the best hardware one, or under [`INCLUDE_SOFTWARE_VAR`]
/// the best of any kind.
fn race_candidate() -> Result<Option<(wgpu::Adapter, AdapterSummary)>> {
    if let Some(hardware) = pick_adapter(&DeviceChoice::Auto)? {
        return Ok(Some(hardware));
    }
    if std::env::var(INCLUDE_SOFTWARE_VAR).as_deref() != Ok("1") {
        return Ok(None);
    }
    // `Gpu` refuses when there is no adapter at all: then there is nothing to race.
    Ok(pick_adapter(&DeviceChoice::Gpu).unwrap_or(None))
}

/// The median seconds of one training step on `device`, on a throwaway trainer over the
/// first rows of `train` (enough for one run of steps): one lone step and one run of
/// steps warm it up (pipelines built, caches and clocks warm), then up to [`TIMED_RUNS`]
/// runs are timed. When the warm-up run is [`CLEARLY_SLOWER`] than `rival` seconds a
/// step, its figure is returned untimed further.
fn seconds_per_step(
    device: &TrainingDevice,
    model: &ModelSpec,
    train: &Split,
    val: &Split,
    config: &TrainConfig,
    rival: Option<f64>,
) -> Result<f64> {
    let rows = |split: &Split, n: usize| {
        let n = n.min(split.rows());
        let features = split.x.len() / split.rows().max(1);
        Split {
            x: split.x[..n * features].to_vec(),
            y: split.y[..n].to_vec(),
        }
    };
    let train = rows(train, STEPS_PER_RUN * config.batch);
    let val = rows(val, RACE_VALIDATION_ROWS);
    let mut exec = device.executor();
    let mut trainer = Trainer::new(exec.as_mut(), model, &train, &val, config.clone())?;
    trainer.step_once()?;
    let steps = STEPS_PER_RUN.min(trainer.steps_per_epoch());
    let warm_up = trainer.time_steps(steps)? / steps as f64;
    if rival.is_some_and(|r| warm_up > CLEARLY_SLOWER * r) {
        return Ok(warm_up);
    }
    let mut per_step = Vec::with_capacity(TIMED_RUNS);
    let mut spent = 0.0;
    while per_step.len() < TIMED_RUNS && (per_step.is_empty() || spent < TIMING_BUDGET) {
        let seconds = trainer.time_steps(steps)?;
        spent += seconds;
        per_step.push(seconds / steps as f64);
    }
    per_step.sort_by(f64::total_cmp);
    Ok(per_step[per_step.len() / 2])
}

/// What the cache remembers of one race.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct CacheEntry {
    key: String,
    side: Side,
    times: StepTimes,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct CacheFile {
    /// Oldest first.
    entries: Vec<CacheEntry>,
}

/// What decides a race's outcome, as one string: the adapter (name, backend, driver),
/// riskgrad's version, the CPU backend's threads and the model's shape at this batch.
pub fn cache_key(
    adapter: &AdapterSummary,
    threads: usize,
    model: &ModelSpec,
    batch: usize,
) -> String {
    format!(
        "{} | {} | {} {} | riskgrad {} | {threads} CPU threads | {}, {} inputs, batch {batch}",
        adapter.name,
        adapter.backend,
        adapter.driver,
        adapter.driver_info,
        env!("CARGO_PKG_VERSION"),
        model.label(),
        model.inputs()
    )
}

/// riskgrad's cache directory: [`CACHE_DIR_VAR`], else the platform's.
pub fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    cache_dir_from(var(CACHE_DIR_VAR), platform_cache_dir(var))
}

/// The cache directory from [`CACHE_DIR_VAR`]'s value and the platform's cache
/// directory.
fn cache_dir_from(ours: Option<PathBuf>, platform: Option<PathBuf>) -> Option<PathBuf> {
    ours.or_else(|| platform.map(|d| d.join("riskgrad")))
}

/// The platform's per-user cache directory, from the environment `var` reads.
fn platform_cache_dir(var: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    if cfg!(windows) {
        var("LOCALAPPDATA")
    } else if cfg!(target_os = "macos") {
        var("HOME").map(|h| h.join("Library").join("Caches"))
    } else {
        var("XDG_CACHE_HOME").or_else(|| var("HOME").map(|h| h.join(".cache")))
    }
}

/// The cached race for `key`; a missing, unreadable or corrupt file is no hit.
fn lookup(path: &Path, key: &str) -> Option<CacheEntry> {
    read_cache(path)
        .ok()?
        .entries
        .into_iter()
        .rev()
        .find(|e| e.key == key)
}

fn read_cache(path: &Path) -> Result<CacheFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Internal(format!("{}: {e}", path.display())))
}

/// Adds `entry` to the cache file (replacing its key's earlier one, keeping the last
/// [`CACHE_ENTRIES`]), written atomically; a corrupt file is started afresh.
fn remember(path: &Path, entry: CacheEntry) -> Result<()> {
    let mut cache = read_cache(path).unwrap_or_default();
    add_entry(&mut cache, entry);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let json = serde_json::to_string_pretty(&cache)
        .map_err(|e| Error::Internal(format!("the device cache: {e}")))?;
    crate::files::write_atomically(path, json.as_bytes())
}

fn add_entry(cache: &mut CacheFile, entry: CacheEntry) {
    cache.entries.retain(|e| e.key != entry.key);
    cache.entries.push(entry);
    let over = cache.entries.len().saturating_sub(CACHE_ENTRIES);
    cache.entries.drain(..over);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn adapter(name: &str, driver_info: &str) -> AdapterSummary {
        AdapterSummary {
            index: 0,
            name: name.into(),
            backend: "Vulkan".into(),
            device_type: "DiscreteGpu".into(),
            driver: "drv".into(),
            driver_info: driver_info.into(),
            is_software: false,
            f16: false,
            subgroups: false,
            timestamps: false,
            max_storage_buffer_binding_size: 1 << 27,
            max_buffer_size: 1 << 28,
            max_storage_buffers_per_shader_stage: 8,
            max_compute_workgroup_storage_size: 16384,
            max_compute_invocations_per_workgroup: 256,
            max_compute_workgroups_per_dimension: 65535,
        }
    }

    fn mlp(inputs: usize, hidden: &[usize]) -> ModelSpec {
        ModelSpec::mlp(inputs, hidden).unwrap()
    }

    #[test]
    fn the_key_changes_with_everything_that_decides_the_race() {
        let base = cache_key(&adapter("GPU A", "1.0"), 2, &mlp(23, &[64, 32]), 256);
        assert_eq!(
            base,
            cache_key(&adapter("GPU A", "1.0"), 2, &mlp(23, &[64, 32]), 256)
        );
        for other in [
            cache_key(&adapter("GPU B", "1.0"), 2, &mlp(23, &[64, 32]), 256),
            cache_key(&adapter("GPU A", "1.1"), 2, &mlp(23, &[64, 32]), 256),
            cache_key(&adapter("GPU A", "1.0"), 4, &mlp(23, &[64, 32]), 256),
            cache_key(&adapter("GPU A", "1.0"), 2, &mlp(24, &[64, 32]), 256),
            cache_key(&adapter("GPU A", "1.0"), 2, &mlp(23, &[64, 16]), 256),
            cache_key(&adapter("GPU A", "1.0"), 2, &mlp(23, &[64, 32]), 128),
        ] {
            assert_ne!(base, other);
        }
        assert!(base.contains(env!("CARGO_PKG_VERSION")), "{base}");
    }

    #[test]
    fn the_faster_device_wins_and_a_tie_goes_to_the_cpu() {
        assert_eq!(
            StepTimes {
                cpu: 4e-4,
                gpu: 1.9e-3
            }
            .faster(),
            Side::Cpu
        );
        assert_eq!(
            StepTimes {
                cpu: 1.9e-3,
                gpu: 4e-4
            }
            .faster(),
            Side::Gpu
        );
        assert_eq!(
            StepTimes {
                cpu: 1e-3,
                gpu: 1e-3
            }
            .faster(),
            Side::Cpu
        );
    }

    #[test]
    fn the_cache_directory_follows_the_variable_then_the_platform() {
        let ours = Some(PathBuf::from("/tmp/ours"));
        let platform = Some(PathBuf::from("/home/u/.cache"));
        assert_eq!(cache_dir_from(ours.clone(), platform.clone()), ours);
        assert_eq!(
            cache_dir_from(None, platform),
            Some(PathBuf::from("/home/u/.cache/riskgrad"))
        );
        assert_eq!(cache_dir_from(None, None), None);
        if cfg!(all(unix, not(target_os = "macos"))) {
            fn env(xdg: Option<&'static str>) -> impl Fn(&str) -> Option<PathBuf> {
                move |name| match name {
                    "XDG_CACHE_HOME" => xdg.map(PathBuf::from),
                    "HOME" => Some(PathBuf::from("/home/u")),
                    _ => None,
                }
            }
            assert_eq!(
                platform_cache_dir(env(Some("/x"))),
                Some(PathBuf::from("/x"))
            );
            assert_eq!(
                platform_cache_dir(env(None)),
                Some(PathBuf::from("/home/u/.cache"))
            );
        }
    }

    #[test]
    fn the_cache_keeps_one_entry_a_key_and_the_latest_ones() {
        let entry = |i: usize, cpu: f64| CacheEntry {
            key: format!("k{i}"),
            side: Side::Cpu,
            times: StepTimes { cpu, gpu: 2.0 },
        };
        let mut cache = CacheFile::default();
        for i in 0..CACHE_ENTRIES + 5 {
            add_entry(&mut cache, entry(i, 1.0));
        }
        assert_eq!(cache.entries.len(), CACHE_ENTRIES);
        assert_eq!(cache.entries[0].key, "k5");
        add_entry(&mut cache, entry(10, 0.5));
        assert_eq!(cache.entries.len(), CACHE_ENTRIES);
        assert_eq!(cache.entries.iter().filter(|e| e.key == "k10").count(), 1);
        assert_eq!(cache.entries.last(), Some(&entry(10, 0.5)));
    }

    #[test]
    fn a_corrupt_or_missing_cache_file_is_no_hit_and_is_replaced() {
        let dir = std::env::temp_dir().join(format!("riskgrad-race-cache-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join(CACHE_FILE);
        assert_eq!(lookup(&path, "k"), None);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(&path, "{ not json").unwrap();
        assert_eq!(lookup(&path, "k"), None);
        let entry = CacheEntry {
            key: "k".into(),
            side: Side::Gpu,
            times: StepTimes {
                cpu: 3e-3,
                gpu: 1e-3,
            },
        };
        remember(&path, entry.clone()).unwrap();
        assert_eq!(lookup(&path, "k"), Some(entry));
        assert_eq!(lookup(&path, "other"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
