//! Helpers the training examples share.

// Each example uses a part of these.
#![allow(dead_code)]

/// Median of a non-empty list.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// User + system CPU seconds this process has used so far, all threads (Linux, from
/// `/proc`; `None` elsewhere). Less sensitive than wall time to other work on a shared
/// machine.
pub fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0) // USER_HZ is 100 on Linux
}

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::{select_executor, WhenNoGpu};
use riskgrad::train::{fit, EpochReport, FitEvent, FitOptions, Trainer};

/// The executor for a device argument (`cpu`, `gpu`, `auto`, an adapter's index or
/// name; default `cpu`), through the library's one chooser; says which device it is.
pub fn executor(device: Option<String>) -> riskgrad::Result<Box<dyn Executor>> {
    let choice: DeviceChoice = device.as_deref().unwrap_or("cpu").parse()?;
    let exec = select_executor(&choice, WhenNoGpu::Refuse)?.executor;
    println!("device: {}", exec.device_name());
    Ok(exec)
}

/// Trains every epoch with the library's loop (`fit`, no early stop or checkpoint),
/// calling `at_start` as each epoch begins and `at_end` with its report.
pub fn train_epochs(
    trainer: &mut Trainer,
    epochs: usize,
    at_start: &mut dyn FnMut(),
    at_end: &mut dyn FnMut(&EpochReport),
) -> riskgrad::Result<()> {
    let options = FitOptions {
        epochs,
        early_stop: None,
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    fit(trainer, &options, None, &mut |event| match event {
        FitEvent::EpochStart { .. } => at_start(),
        FitEvent::EpochEnd(report) => at_end(report),
        FitEvent::Warning(w) => eprintln!("warning: {w}"),
        _ => {}
    })?;
    Ok(())
}
