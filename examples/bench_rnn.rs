//! `bench::lstm` and `bench::gru` on one device (what `riskgrad bench lstm|gru` prints):
//! time per training step, forward and backward through time, at batch 256, hidden 64,
//! 6 steps of 3 features, beside the time of the same step's matmuls alone and of its
//! fused cells alone, and the kernel launches per step.
//!
//!     cargo run --release --example bench_rnn -- [cpu|gpu] [batch hidden steps input]

use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::{choose_adapter, DeviceChoice, GpuExecutor};

fn executor(device: &str) -> riskgrad::Result<Box<dyn Executor>> {
    if device == "cpu" {
        return Ok(Box::new(CpuExecutor::new()));
    }
    let choice: DeviceChoice = device.parse()?;
    let ctx = choose_adapter(&choice)?
        .ok_or_else(|| riskgrad::Error::Gpu(format!("no adapter for {device:?}")))?;
    Ok(Box::new(GpuExecutor::new(std::sync::Arc::new(ctx))))
}

fn main() -> riskgrad::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let device = args.first().map_or("cpu", |s| s.as_str());
    let size =
        |i: usize, default: usize| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let (batch, hidden, steps, input) = (size(1, 256), size(2, 64), size(3, 6), size(4, 3));
    for kind in ["lstm", "gru"] {
        // A fresh executor per model: plans in one executor share one parameter layout.
        let mut exec = executor(device)?;
        let b = match kind {
            "lstm" => riskgrad::bench::lstm(exec.as_mut(), batch, input, hidden, steps)?,
            _ => riskgrad::bench::gru(exec.as_mut(), batch, input, hidden, steps)?,
        };
        println!(
            "{:<10} {} | batch {} input {} hidden {} steps {} | step {:.3} ms | matmuls alone {:.3} ms ({:.0}%) | cells alone {:.3} ms ({:.0}%) | {} launches/step ({} matmul, {} cell)",
            b.name,
            b.device,
            b.batch,
            b.input,
            b.hidden,
            b.steps,
            b.step_seconds * 1e3,
            b.matmul_seconds * 1e3,
            100.0 * b.matmul_seconds / b.step_seconds,
            b.cell_seconds * 1e3,
            100.0 * b.cell_seconds / b.step_seconds,
            b.launches,
            b.matmul_launches,
            b.cell_launches
        );
    }
    Ok(())
}
