//! Op families whose every fact lives in one file: a family's graph ops, their shape
//! and vector-Jacobian rules, their lowering to launches, the CPU kernels they call, and
//! their GPU pipelines, uniform records and grids. The graph (`Op`), the plan
//! (`Kernel`), autodiff and both executors hold one arm per family that hands the work
//! to it. DESIGN.md's "Adding an op" says which files an op touches.

pub mod broadcast;
pub mod conv;
pub mod dropout;
pub mod elementwise;
pub mod gather;
pub mod loss;
pub mod matmul;
pub mod pool;
pub mod rnn;
