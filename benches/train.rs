//! `riskgrad bench train` (the default MLP on the bundled data) as a `cargo bench`
//! target, on each device of `RISKGRAD_BENCH_DEVICES`:
//!
//!     cargo bench --bench train
//!
//! 2 epochs; `RISKGRAD_BENCH_FULL=1` runs the command's 10.

mod common;
// The suites `riskgrad bench` runs; each target uses only some of them.
#[allow(dead_code)]
#[path = "../src/cmd/bench/suites.rs"]
mod suites;

fn main() -> riskgrad::Result<()> {
    let epochs = if common::full() { 10 } else { 2 };
    if common::selected(&["train"]).is_empty() {
        return Ok(());
    }
    for device in common::devices()? {
        // Times to the first step count from here, not from the process start: a
        // second device's would include the first one's run.
        let started = std::time::Instant::now();
        let mut exec = match suites::open_device(&device) {
            Ok((exec, _)) => exec,
            Err(e) => {
                eprintln!("skipping device {device:?}: {e}");
                continue;
            }
        };
        let b = suites::train_default_mlp(exec.as_mut(), epochs, false, started)?;
        suites::print_train(&b, exec.as_ref());
    }
    Ok(())
}
