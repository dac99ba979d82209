pub mod bench;
pub mod data_args;
pub mod devices;
pub mod inspect;
pub mod train;

use riskgrad::cpu::CpuExecutor;
use riskgrad::exec::Executor;
use riskgrad::gpu::{choose_adapter, DeviceChoice, GpuExecutor};
use riskgrad::Result;

/// The executor for `--device`: a GPU adapter when one qualifies, else the native CPU
/// backend (saying so when the user did not ask for it).
pub fn executor(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(Box::new(CpuExecutor::new()));
    }
    match choose_adapter(choice)? {
        Some(ctx) => Ok(Box::new(GpuExecutor::new(std::sync::Arc::new(ctx)))),
        None => {
            eprintln!("no hardware GPU adapter found: using the native CPU backend (name a software adapter with --device to use it)");
            Ok(Box::new(CpuExecutor::new()))
        }
    }
}

/// The executor for a device the user named on purpose (benchmarks): no fallback.
pub fn executor_strict(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(Box::new(CpuExecutor::new()));
    }
    match choose_adapter(choice)? {
        Some(ctx) => Ok(Box::new(GpuExecutor::new(std::sync::Arc::new(ctx)))),
        None => Err(riskgrad::Error::Gpu(format!("no adapter matches {choice:?}"))),
    }
}

/// Writes `contents` to `path` through a temporary file and a rename, so an existing file
/// is never left half-written.
pub fn write_atomically(path: &std::path::Path, contents: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, contents).map_err(|e| riskgrad::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| riskgrad::Error::io(path, e))
}
