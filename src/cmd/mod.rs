pub mod bench;
pub mod data_args;
pub mod devices;
pub mod eval;
pub mod explain;
pub mod inspect;
pub mod predict;
pub mod train;
pub mod train_logistic;

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::{select_executor, WhenNoGpu};
use riskgrad::{Error, Result, Setting};

/// The executor for `--device`: a GPU adapter when one qualifies, else the native CPU
/// backend (saying so when the user did not ask for it).
pub fn executor(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    let selected = select_executor(choice, WhenNoGpu::UseCpu)?;
    if selected.fell_back_to_cpu {
        eprintln!("no hardware GPU adapter found: using the native CPU backend (name a software adapter with --device to use it)");
    }
    Ok(selected.executor)
}

/// The executor for a device the user named on purpose (benchmarks): no fallback.
pub fn executor_strict(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    Ok(select_executor(choice, WhenNoGpu::Refuse)?.executor)
}

/// Loads a saved model for a command, naming the `--model` flag when the directory is
/// not there.
pub fn load_model(dir: &std::path::Path) -> Result<riskgrad::model_io::SavedModel> {
    if !dir.exists() {
        return Err(riskgrad::Error::flag(
            "--model",
            format!("{} does not exist", dir.display()),
        ));
    }
    riskgrad::model_io::SavedModel::load(dir)
}

/// The flag that sets each library setting.
fn flag_of(setting: Setting) -> &'static str {
    match setting {
        Setting::BatchSize => "--batch",
        Setting::Epochs => "--epochs",
        Setting::ExplainSteps => "--steps",
        Setting::ValidationSplit => "--val-split",
        Setting::HiddenSizes => "--hidden",
        Setting::DenseSizes => "--dense",
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
    }
}

/// An error as the command line shows it: library settings under their flag names.
pub fn message(error: &Error) -> String {
    match error {
        Error::Invalid { setting, message } => {
            format!("invalid value for {}: {message}", flag_of(*setting))
        }
        Error::Diverged { .. } => error.to_string().replace("learning rate", "--lr"),
        _ => error.to_string(),
    }
}
