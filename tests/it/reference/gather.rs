//! Row gathers and their adjoint in f64 (`engine::ops::gather`), from their definitions.

use riskgrad::engine::graph::GatherOp;

/// The value of a node of `op` at step `step`, with inputs `x` of shapes `in_shapes` and
/// output `shape`; index lists hold row numbers.
pub fn evaluate(
    op: &GatherOp,
    x: &[&Vec<f64>],
    in_shapes: &[&[usize]],
    shape: &[usize],
    step: usize,
) -> Vec<f64> {
    match op {
        GatherOp::GatherRows => {
            let (batch, cols) = (shape[0], shape[1]);
            let mut out = Vec::with_capacity(batch * cols);
            for b in 0..batch {
                let row = x[1][step * batch + b] as usize;
                out.extend_from_slice(&x[0][row * cols..(row + 1) * cols]);
            }
            out
        }
        GatherOp::ScatterAddRows => {
            let (batch, cols) = (in_shapes[0][0], in_shapes[0][1]);
            let mut out = vec![0.0; shape.iter().product()];
            for b in 0..batch {
                let row = x[1][step * batch + b] as usize;
                for c in 0..cols {
                    out[row * cols + c] += x[0][b * cols + c];
                }
            }
            out
        }
    }
}
