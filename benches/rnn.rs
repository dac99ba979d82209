//! `riskgrad bench lstm` and `gru` (batch 256, 6 steps of 3 features, hidden 64) as a
//! `cargo bench` target:
//!
//!     cargo bench --bench rnn [-- lstm|gru]
//!
//! Devices as in benches/common (`RISKGRAD_BENCH_DEVICES`); one run is short already.

use riskgrad::engine::gpu::tune::Tuning;
use riskgrad::engine::graph::CellKind;

#[allow(dead_code)] // `full`: one run of these is short already
mod common;
// The suites `riskgrad bench` runs; each target uses only some of them.
#[allow(dead_code)]
#[path = "../src/cmd/bench/suites.rs"]
mod suites;

fn main() -> riskgrad::Result<()> {
    let devices = common::devices()?;
    let timing = suites::Timing {
        budget_seconds: 0.5,
    };
    let mut cases = Vec::new();
    for suite in common::selected(&["lstm", "gru"]) {
        let kind = if suite == "lstm" {
            CellKind::Lstm
        } else {
            CellKind::Gru
        };
        suites::recurrent_on_devices(
            kind,
            &devices,
            &Tuning::default(),
            256,
            3,
            64,
            6,
            &timing,
            &mut cases,
        )?;
    }
    common::write_json("rnn", cases, Some(timing.budget_seconds))
}
