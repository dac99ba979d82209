//! `riskgrad bench matmul`, `conv` and `pool` as a `cargo bench` target:
//!
//!     cargo bench --bench kernels [-- matmul|conv|pool]
//!
//! Devices and run length as in benches/common (`RISKGRAD_BENCH_DEVICES`,
//! `RISKGRAD_BENCH_FULL`).

mod common;
use riskgrad::engine::gpu::tune::Tuning;
// The suites `riskgrad bench` runs; each target uses only some of them.
#[allow(dead_code)]
#[path = "../src/cmd/bench/suites.rs"]
mod suites;

fn main() -> riskgrad::Result<()> {
    let devices = common::devices()?;
    // The short run: a fifth of the command's time per case, and the smaller matmuls.
    let (budget, sizes): (f64, &[usize]) = if common::full() {
        (1.0, &[128, 256, 512, 1024, 2048])
    } else {
        (0.2, &[128, 256, 512])
    };
    let timing = suites::Timing {
        budget_seconds: budget,
    };
    let mut cases = Vec::new();
    for suite in common::selected(&["matmul", "conv", "pool"]) {
        suites::each_device(
            &devices,
            &Tuning::default(),
            &suites::peak::PeakSource::Measure,
            |exec, device| match suite {
                "matmul" => suites::matmul_suite(exec, device, sizes, &timing, &mut cases),
                "conv" => suites::conv_suite(exec, device, &timing, &mut cases),
                _ => suites::pool_suite(exec, device, &timing, &mut cases),
            },
        )?;
    }
    common::write_json("kernels", cases, Some(budget))
}
