//! Times the GPU executor's start: opening the device and building every pipeline.
//! Run with Mesa's shader cache removed to see a cold start:
//!
//!     rm -rf ~/.cache/mesa_shader_cache && cargo run --release --example gpu_cold_start

use riskgrad::engine::gpu::{choose_adapter, DeviceChoice};
use std::time::Instant;

fn main() -> riskgrad::Result<()> {
    let start = Instant::now();
    let ctx = choose_adapter(&DeviceChoice::Gpu)?
        .ok_or_else(|| riskgrad::Error::Gpu("no adapter".into()))?;
    println!(
        "{}: device and pipelines ready in {:.3} s",
        ctx.info.name,
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
