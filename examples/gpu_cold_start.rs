//! Times the GPU executor's start: opening the device, then building every pipeline.
//! Run with Mesa's shader cache removed to see a cold start:
//!
//!     rm -rf ~/.cache/mesa_shader_cache && cargo run --release --example gpu_cold_start

use riskgrad::engine::gpu::{choose_adapter, DeviceChoice};
use std::time::Instant;

fn main() -> riskgrad::Result<()> {
    let start = Instant::now();
    let ctx = choose_adapter(&DeviceChoice::Gpu)?
        .ok_or_else(|| riskgrad::Error::Gpu("no adapter".into()))?;
    let opened = start.elapsed().as_secs_f64();
    // A plan builds only its own pipelines as it loads; this is all of them.
    ctx.prepare_all()?;
    println!(
        "{}: device open in {opened:.3} s, every pipeline built by {:.3} s",
        ctx.info.name,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
