//! riskgrad: a static-graph compute engine with a wgpu (WGSL) executor and a native CPU
//! executor, and the pieces of a credit-default model trainer built on it.

#![warn(missing_docs)]

pub mod engine;
pub mod error;
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
