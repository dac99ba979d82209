pub mod bench;
pub mod cross_validate;
pub mod data_args;
pub mod devices;
pub mod eval;
pub mod explain;
pub mod inspect;
pub mod log;
pub mod monitor;
pub mod output;
pub mod predict;
pub mod scores_out;
pub mod signals;
pub mod stdout;
pub mod train;
pub mod train_device;
pub mod train_logistic;

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::shaders::Precision;
use riskgrad::engine::gpu::tune::{TuneMode, Tuning};
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::{select_executor_tuned, software_adapter_note, WhenNoGpu};
use riskgrad::{Error, Result, Setting};

/// `--tune`'s default: tune a shape the first time it is met on an adapter, then read
/// the choice from the cache (DESIGN.md, "GEMM variants and the autotuner", has the
/// cold-start measurements behind it).
pub const DEFAULT_TUNE: TuneMode = TuneMode::Cached;

/// The GEMM tuning cache file in riskgrad's cache directory (the one `--device auto`'s
/// choices are kept in).
pub const TUNE_CACHE_FILE: &str = "gpu-tune.json";

/// The GPU GEMM tuning (matmul and convolution) for `mode`: the cache in riskgrad's cache directory, written
/// atomically, notes to standard error.
pub fn tuning(mode: TuneMode) -> Tuning {
    fn note(line: &str) {
        eprintln!("{line}");
    }
    fn write(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
        riskgrad::files::write_atomically(path, bytes)
    }
    let file = riskgrad::train::device_race::cache_dir().map(|d| d.join(TUNE_CACHE_FILE));
    Tuning::new(mode, file, Some(write), Some(note))
}

/// `--precision`'s value.
pub fn parse_precision(s: &str) -> std::result::Result<Precision, String> {
    match s.trim().to_ascii_lowercase().as_str() {
        "f32" => Ok(Precision::F32),
        "f16" => Ok(Precision::F16),
        _ => Err(format!("{s:?} is not f32 or f16")),
    }
}

/// `--tune`'s value.
pub fn parse_tune(s: &str) -> std::result::Result<TuneMode, String> {
    TuneMode::parse(s).ok_or_else(|| format!("{s:?} is not off, cached or full"))
}

/// `--tune`, the one definition every command that can run a GPU flattens in.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct TuneArg {
    /// off | cached | full: how a GPU picks among its matmul and convolution kernel
    /// variants, and whether a training step runs its row-wise kernels fused into one
    /// dispatch. cached measures each shape (and step) the first time it meets it on an
    /// adapter and keeps the fastest in gpu-tune.json in the cache directory; full
    /// measures again; off runs the default kernels, unfused. Every choice gives the same
    /// bits, but a split-K matmul (taken for a weight gradient only where clearly
    /// faster), which rounds differently.
    // Global: `bench --tune` reaches every bench subcommand.
    #[arg(long = "tune", id = "tune", global = true, default_value = DEFAULT_TUNE.name(), value_parser = parse_tune)]
    pub mode: TuneMode,
}

/// The executor for `--device`: a GPU adapter when one qualifies, else the native CPU
/// backend (saying so when the user did not ask for it), with the GPU matmuls tuned as
/// `tune` says (`--tune`). A software adapter (lavapipe and the like) gets one line
/// saying so and how to reach the GPU instead.
pub fn executor_tuned(choice: &DeviceChoice, tune: TuneMode) -> Result<Box<dyn Executor>> {
    executor_for(choice, tune, Precision::F32)
}

/// [`executor_tuned`], its GPU kernels storing tensors in `precision` (`--precision`):
/// f16 is for a GPU the user names, so `auto` and `cpu` are refused, as is (by the
/// context) an adapter without SHADER_F16.
pub fn executor_for(
    choice: &DeviceChoice,
    tune: TuneMode,
    precision: Precision,
) -> Result<Box<dyn Executor>> {
    if precision == Precision::F16 && matches!(choice, DeviceChoice::Auto | DeviceChoice::Cpu) {
        return Err(Error::flag(
            "--precision",
            "f16 is for a GPU: name one with --device (gpu, an index or a name; `riskgrad devices` lists them)",
        ));
    }
    let selected = select_executor_tuned(choice, WhenNoGpu::UseCpu, tuning(tune), precision)?;
    // Each note once per process: a cross-validation opens an executor per fold.
    static NO_GPU_SAID: std::sync::Once = std::sync::Once::new();
    if selected.fell_back_to_cpu {
        NO_GPU_SAID.call_once(|| eprintln!("no hardware GPU adapter found: using the native CPU backend (for a GPU, install its Vulkan driver, or in a container add `graphics` to NVIDIA_DRIVER_CAPABILITIES; name a software adapter with --device to use it)"));
    }
    static SOFTWARE_SAID: std::sync::Once = std::sync::Once::new();
    if let Some(name) = &selected.software_adapter {
        SOFTWARE_SAID.call_once(|| eprintln!("{}", software_adapter_note(name)));
    }
    Ok(selected.executor)
}

/// Loads a saved model for a command, naming the `--model` flag when the directory is
/// not there.
pub fn load_model(dir: &std::path::Path) -> Result<riskgrad::model_io::SavedModel> {
    if !dir.exists() {
        return Err(Error::BadModel {
            dir: dir.to_path_buf(),
            source: Box::new(Error::flag(
                "--model",
                format!("{} does not exist", dir.display()),
            )),
        });
    }
    riskgrad::model_io::SavedModel::load(dir)
}

/// The flag that sets each library setting.
fn flag_of(setting: Setting) -> &'static str {
    match setting {
        Setting::BatchSize => "--batch",
        Setting::Epochs => "--epochs",
        Setting::EarlyStop => "--early-stop",
        Setting::ExplainSteps => "--steps",
        Setting::ValidationSplit => "--val-split",
        Setting::StopSplit => "--stop-split",
        Setting::HiddenSizes => "--hidden",
        Setting::DenseSizes => "--dense",
        Setting::Monotone => "--monotone",
        Setting::Date => "--date",
        Setting::Threads => "--threads",
        Setting::Dropout => "--dropout",
        Setting::ConvChannels => "--conv-channels",
        Setting::ConvKernel => "--conv-kernel",
        Setting::Pool => "--pool",
        Setting::Sequence => "--sequence",
        Setting::TimeOrder => "--time-order",
        Setting::Categorical => "--categorical",
        Setting::Numeric => "--numeric",
        Setting::SignedLog => "--signed-log",
        Setting::NumericEncoding => "--numeric-encoding",
        Setting::Target => "--target",
        Setting::Device => "--device",
        Setting::Positive => "--positive",
        Setting::Drop => "--drop",
        Setting::Strict => "--strict",
        Setting::Seed => "--seed",
        Setting::PosWeight => "--pos-weight",
        Setting::Optimizer => "--optimizer",
        Setting::Momentum => "--momentum",
        Setting::WeightDecay => "--weight-decay",
        Setting::Model => "--model",
        Setting::Activation => "--activation",
        Setting::Bidirectional => "--bidirectional",
        Setting::Folds => "--cv",
        Setting::Resume => "--resume",
        Setting::Rows => "--rows",
        Setting::Protected => "--protected",
        Setting::Members => "--members",
    }
}

/// Notes to print after a failed command's error line (`notes_after_error`).
static NOTES_AFTER_ERROR: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

/// Keeps `note` to print after the error line, should the command fail: what a failure
/// left behind, said where the user reads the failure.
pub fn note_after_error(note: String) {
    NOTES_AFTER_ERROR
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(note);
}

/// The notes kept by `note_after_error`, taken.
pub fn notes_after_error() -> Vec<String> {
    std::mem::take(&mut NOTES_AFTER_ERROR.lock().unwrap_or_else(|e| e.into_inner()))
}

/// An error as the command line shows it: library settings under their flag names.
pub fn message(error: &Error) -> String {
    match error {
        Error::Invalid {
            setting: Setting::Rows,
            ..
        } => format!(
            "{}; --rows all scores every row",
            error.naming_settings(|setting| flag_of(setting).to_string())
        ),
        Error::Invalid { .. } | Error::Data { .. } => {
            error.naming_settings(|setting| flag_of(setting).to_string())
        }
        Error::Diverged { .. } => format!("{error}; try a lower --lr"),
        Error::OutOfMemory { .. } | Error::OverBinding { .. } => {
            format!("{error} (the layer sizes: --hidden, --dense, --conv-channels; rows per step: --batch)")
        }
        Error::Interrupted {
            checkpoint: Some(path),
            ..
        } => format!(
            "{error}; continue with `riskgrad train --resume {}` and the same flags",
            path.parent()
                .map_or(".".into(), |d| d.display().to_string())
        ),
        Error::BadModel { source, .. } => message(source),
        _ => error.to_string(),
    }
}

/// Exit statuses, one per kind of failure (listed in `riskgrad --help` and the README).
pub mod exit {
    /// An internal error, or a device that failed.
    pub const INTERNAL: u8 = 1;
    /// A flag or value that makes no sense (clap's own usage errors use 2 as well), or
    /// sizes that ask for more memory than the machine has.
    pub const USAGE: u8 = 2;
    /// Input data that cannot be used, or a file that cannot be read or written.
    pub const DATA: u8 = 3;
    /// A model directory that cannot be used.
    pub const MODEL: u8 = 4;
    /// Training diverged (the loss stopped being a finite, sane number).
    pub const DIVERGED: u8 = 5;
    /// `riskgrad bench compare --fail-on-slow`: a case slower than the threshold.
    pub const SLOWER: u8 = 6;
    /// Stopped by a signal: 128 + its number (130 for SIGINT, 143 for SIGTERM), as a
    /// shell reports a process the signal ended; this one when it cannot be told.
    pub const INTERRUPTED: u8 = 130;
}

/// The exit status for an error.
pub fn exit_code(error: &Error) -> u8 {
    match error {
        // Memory is asked for by the settings (the model's sizes, rows per step): one
        // sized beyond the machine is a usage error, as any size out of range.
        Error::Flag { .. }
        | Error::Invalid { .. }
        | Error::OutOfMemory { .. }
        | Error::OverBinding { .. } => exit::USAGE,
        Error::Data { .. } | Error::Io { .. } => exit::DATA,
        Error::BadModel { .. } | Error::Corrupt { .. } => exit::MODEL,
        Error::Diverged { .. } => exit::DIVERGED,
        Error::Interrupted { .. } => signals::exit_status().unwrap_or(exit::INTERRUPTED),
        Error::Shape { .. }
        | Error::Gpu(_)
        | Error::SizeMismatch { .. }
        | Error::NotWholeRows { .. }
        | Error::Unsupported(_)
        | Error::Internal(_) => exit::INTERNAL,
    }
}
