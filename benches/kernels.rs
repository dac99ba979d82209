//! `riskgrad bench matmul`, `conv` and `pool` as a `cargo bench` target:
//!
//!     cargo bench --bench kernels [-- matmul|conv|pool]
//!
//! Devices and run length as in benches/common (`RISKGRAD_BENCH_DEVICES`,
//! `RISKGRAD_BENCH_FULL`).

mod common;
// The suites `riskgrad bench` runs; each target uses only some of them.
#[allow(dead_code)]
#[path = "../src/cmd/bench/suites.rs"]
mod suites;

fn main() -> riskgrad::Result<()> {
    let devices = common::devices()?;
    // The short run: a tenth of the work per round, and the smaller matmuls.
    let (scale, sizes): (f64, &[usize]) = if common::full() {
        (1.0, &[128, 256, 512, 1024, 2048])
    } else {
        (0.1, &[128, 256, 512])
    };
    for suite in common::selected(&["matmul", "conv", "pool"]) {
        suites::each_device(&devices, |exec| match suite {
            "matmul" => suites::matmul_suite(exec, sizes, scale * suites::MATMUL_BUDGET_FLOPS),
            "conv" => {
                let measured = suites::conv_suite(exec, scale * suites::CONV_BUDGET_FLOPS)?;
                measured.iter().for_each(suites::print_measurement);
                Ok(())
            }
            _ => {
                let measured = suites::pool_suite(exec, scale * suites::POOL_BUDGET_BYTES)?;
                measured.iter().for_each(suites::print_measurement);
                Ok(())
            }
        })?;
    }
    Ok(())
}
