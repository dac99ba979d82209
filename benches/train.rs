//! `riskgrad bench train --model mlp|cnn|lstm|gru` on the bundled data as a `cargo bench`
//! target, on each device of `RISKGRAD_BENCH_DEVICES`:
//!
//!     cargo bench --bench train [-- mlp|cnn|lstm|gru]
//!
//! 2 epochs; `RISKGRAD_BENCH_FULL=1` runs the command's 10.

mod common;
// The suites `riskgrad bench` runs; each target uses only some of them.
#[allow(dead_code)]
#[path = "../src/cmd/bench/suites.rs"]
mod suites;

use riskgrad::engine::gpu::tune::Tuning;
use suites::BenchModel;

fn main() -> riskgrad::Result<()> {
    let epochs = if common::full() { 10 } else { 2 };
    let models = [
        BenchModel::Mlp,
        BenchModel::Cnn,
        BenchModel::Lstm,
        BenchModel::Gru,
    ];
    let names: Vec<&'static str> = models.iter().map(|m| m.label()).collect();
    let chosen = common::selected(&names);
    let mut cases = Vec::new();
    for device in common::devices()? {
        for model in models.iter().filter(|m| chosen.contains(&m.label())) {
            // Times to the first step count from here, not from the process start: a
            // second run's would include the first one's.
            let started = std::time::Instant::now();
            let (mut exec, info) = match suites::open_device(&device, &Tuning::default()) {
                Ok(opened) => opened,
                Err(e) => {
                    eprintln!("skipping device {device:?}: {e}");
                    break;
                }
            };
            let b = suites::train_model(exec.as_mut(), *model, epochs, false, started)?;
            suites::print_train(&b, exec.as_ref());
            cases.push(b.case(&info));
        }
    }
    common::write_json("train", cases, None)
}
