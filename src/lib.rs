//! riskgrad: a static-graph compute engine with a wgpu (WGSL) executor and a native CPU
//! executor, and the pieces of a credit-default model trainer built on it.

#![warn(missing_docs)]

// The command layer (`cli`, the files of src/cmd) names this crate `riskgrad::`, as the
// binary it was written in did; this makes those paths resolve inside the library too.
extern crate self as riskgrad;

pub mod engine;
pub mod error;
pub mod eval;
pub mod rng;

pub use error::{Error, Result, Setting};
pub mod checkpoint;
pub mod data;
pub mod explain;
pub mod fairness;
pub mod files;
pub mod logistic;
pub mod metrics;
pub mod model_card;
pub mod model_io;
pub mod nn;
pub mod reasons;
pub mod report;
pub mod scoring;
pub mod stability;
pub mod train;

/// The command layer of the `riskgrad` binary (src/cmd): each command's flags, the
/// orchestration behind them (defaults chosen from the data, training and the
/// challenger, the model directory written, eval's and explain's figures) and its
/// messages. A library module so that other front ends (the Python package in
/// python/) run the very same commands rather than copies of them; src/main.rs only
/// parses the command line and maps errors to exit statuses.
#[doc(hidden)]
#[allow(missing_docs)]
#[path = "cmd/mod.rs"]
pub mod cli;
