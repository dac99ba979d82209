//! Runs `bench::conv_suite` and `bench::pool_suite` (what `riskgrad bench conv` and
//! `riskgrad bench pool` print) on the CPU backend and/or a GPU adapter.
//!
//!     cargo run --release --example bench_conv -- [cpu|gpu|both] [conv|pool|all]

use riskgrad::bench::{conv_suite, pool_suite, Measurement};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::{choose_adapter, DeviceChoice, GpuExecutor};

fn print(ms: &[Measurement]) {
    for m in ms {
        println!(
            "{:<62} {:<34} {:>9.2} {:<7} ({:.3} ms)",
            m.name,
            m.device,
            m.rate,
            m.unit,
            m.median_seconds * 1e3
        );
    }
}

fn main() -> riskgrad::Result<()> {
    let mut args = std::env::args().skip(1);
    let devices = args.next().unwrap_or_else(|| "cpu".into());
    let what = args.next().unwrap_or_else(|| "all".into());
    let mut execs: Vec<Box<dyn Executor>> = Vec::new();
    if devices == "cpu" || devices == "both" {
        execs.push(Box::new(CpuExecutor::new()));
    }
    if devices == "gpu" || devices == "both" {
        let ctx = choose_adapter(&DeviceChoice::Gpu)?
            .ok_or_else(|| riskgrad::Error::Gpu("no adapter".into()))?;
        execs.push(Box::new(GpuExecutor::new(std::sync::Arc::new(ctx))));
    }
    for exec in &mut execs {
        if what == "conv" || what == "all" {
            print(&conv_suite(exec.as_mut(), 2e9)?);
        }
        if what == "pool" || what == "all" {
            print(&pool_suite(exec.as_mut(), 2e8)?);
        }
    }
    Ok(())
}
