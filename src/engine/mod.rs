//! The compute engine: static graphs with autodiff, the planner, and the two executors
//! (native CPU kernels, WGSL kernels on wgpu). It knows nothing of credit data, files or
//! command-line flags; everything above it (`nn`, `data`, `train`, the CLI) builds on it.

pub mod cpu;
pub mod exec;
pub mod gpu;
pub mod graph;
pub mod plan;
