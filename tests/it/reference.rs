//! A plain f64 interpreter of a graph, written from each op's definition with simple
//! loops. It shares no code with the executors' kernels, so tests can hold the kernels
//! (and the autodiff rules, through finite differences) against it. The one exception
//! is the activations' formulas: `Act::eval` and `Act::slope` are written once, generic
//! over the float type, and evaluated here in f64; tests pin them to published values,
//! to finite differences and to the independent WGSL.

use riskgrad::engine::graph::{
    BinaryOp, BroadcastOp, DropoutOp, ElementwiseOp, Graph, MatMulOp, Op, ProductInputs,
};
use std::collections::HashMap;

pub mod conv;
pub mod gather;
pub mod loss;
pub mod pool;
pub mod rnn;

/// Evaluates every node of `graph` at step `step` (the gather window, and the optimizer
/// step a dropout mask is drawn for: on a fresh executor's first plan the two counters
/// are equal), with the named inputs and the parameters (by parameter index) given.
/// Index inputs hold row numbers.
pub fn evaluate(
    graph: &Graph,
    inputs: &HashMap<String, Vec<f64>>,
    params: &[Vec<f64>],
    step: usize,
) -> Vec<Vec<f64>> {
    let mut values: Vec<Vec<f64>> = Vec::with_capacity(graph.nodes.len());
    for (id, node) in graph.nodes.iter().enumerate() {
        let x = |k: usize| &values[node.inputs[k]];
        let shape_of = |k: usize| graph.shape(node.inputs[k]);
        let out = match &node.op {
            Op::Input { name } => inputs[name].clone(),
            Op::Param { index } => params[*index].clone(),
            Op::Fill { value } => vec![*value as f64; node.numel()],
            Op::MatMul(MatMulOp {
                trans_a,
                trans_b,
                act,
            }) => {
                let at = ProductInputs::of(node.inputs.len());
                let (m, n) = (node.shape[0], node.shape[1]);
                let k = if *trans_a {
                    shape_of(at.a)[0]
                } else {
                    shape_of(at.a)[1]
                };
                let a_at = |i: usize, p: usize| {
                    if *trans_a {
                        x(at.a)[p * m + i]
                    } else {
                        x(at.a)[i * k + p]
                    }
                };
                let b_at = |p: usize, j: usize| {
                    if *trans_b {
                        x(at.b)[j * k + p]
                    } else {
                        x(at.b)[p * n + j]
                    }
                };
                let mut out = vec![0.0; m * n];
                for i in 0..m {
                    for j in 0..n {
                        let mut z: f64 = (0..k).map(|p| a_at(i, p) * b_at(p, j)).sum();
                        if let Some(bias) = at.bias {
                            // A bias row, or a whole added matrix.
                            z += if shape_of(bias).len() == 2 {
                                x(bias)[i * n + j]
                            } else {
                                x(bias)[j]
                            };
                        }
                        out[i * n + j] = act.eval(z);
                    }
                }
                out
            }
            Op::Elementwise(ElementwiseOp::Binary(op)) => {
                let (sa, sb) = (shape_of(0), shape_of(1));
                (0..node.numel())
                    .map(|i| {
                        let a = x(0)[broadcast_index(i, &node.shape, sa)];
                        let b = x(1)[broadcast_index(i, &node.shape, sb)];
                        match op {
                            BinaryOp::Add => a + b,
                            BinaryOp::Sub => a - b,
                            BinaryOp::Mul => a * b,
                            BinaryOp::Div => a / b,
                        }
                    })
                    .collect()
            }
            Op::Elementwise(ElementwiseOp::Unary(act)) => {
                x(0).iter().map(|&z| act.eval(z)).collect()
            }
            Op::Elementwise(ElementwiseOp::ActGrad(act)) => x(0)
                .iter()
                .zip(x(1))
                .map(|(&d, &v)| d * act.slope(v))
                .collect(),
            Op::Broadcast(BroadcastOp::ReduceTo { scale }) => {
                let mut out = vec![0.0; node.numel()];
                for i in 0..shape_of(0).iter().product() {
                    out[broadcast_index(i, shape_of(0), &node.shape)] += x(0)[i];
                }
                out.iter().map(|v| v * *scale as f64).collect()
            }
            Op::Broadcast(BroadcastOp::ExpandTo { scale }) => (0..node.numel())
                .map(|i| x(0)[broadcast_index(i, &node.shape, shape_of(0))] * *scale as f64)
                .collect(),
            Op::Reshape => x(0).clone(),
            Op::Loss(op) => {
                let xs: Vec<_> = (0..node.inputs.len()).map(x).collect();
                loss::evaluate(op, &xs)
            }
            Op::Gather(op) => {
                let xs: Vec<_> = (0..node.inputs.len()).map(x).collect();
                let shapes: Vec<_> = (0..node.inputs.len()).map(shape_of).collect();
                gather::evaluate(op, &xs, &shapes, &node.shape, step)
            }
            Op::Concat => {
                let rows = node.shape[0];
                let mut out = Vec::with_capacity(node.numel());
                for r in 0..rows {
                    for (k, _) in node.inputs.iter().enumerate() {
                        let cols = shape_of(k)[1];
                        out.extend_from_slice(&x(k)[r * cols..(r + 1) * cols]);
                    }
                }
                out
            }
            Op::SliceCols { start } => {
                let src_cols = shape_of(0)[1];
                let (rows, cols) = (node.shape[0], node.shape[1]);
                (0..rows * cols)
                    .map(|i| x(0)[(i / cols) * src_cols + start + i % cols])
                    .collect()
            }
            Op::View { offset } => x(0)[*offset..*offset + node.numel()].to_vec(),
            Op::Rnn(op) => {
                let xs: Vec<_> = (0..node.inputs.len()).map(x).collect();
                let shapes: Vec<_> = (0..node.inputs.len()).map(shape_of).collect();
                let packing = graph.packing(id).expect("a cell or its gradient");
                rnn::evaluate(op, packing, &xs, &shapes)
            }
            Op::Conv(op) => {
                let xs: Vec<_> = (0..node.inputs.len()).map(x).collect();
                let shapes: Vec<_> = (0..node.inputs.len()).map(shape_of).collect();
                conv::evaluate(op, &xs, &shapes, &node.shape)
            }
            Op::Pool(op) => {
                let xs: Vec<_> = (0..node.inputs.len()).map(x).collect();
                let shapes: Vec<_> = (0..node.inputs.len()).map(shape_of).collect();
                pool::evaluate(op, &xs, &shapes, &node.shape)
            }
            Op::Dropout(DropoutOp { p, seed }) => {
                let threshold = (*p as f64 * 4_294_967_296.0).round();
                let scale = 1.0 / (1.0 - *p as f64);
                x(0).iter()
                    .enumerate()
                    .map(|(i, &v)| {
                        let word = dropout_word(*seed as u64, step as u64, i as u64);
                        if word as f64 >= threshold {
                            v * scale
                        } else {
                            0.0
                        }
                    })
                    .collect()
            }
        };
        debug_assert_eq!(
            out.len(),
            node.numel(),
            "{} produced the wrong size",
            node.op.name()
        );
        values.push(out);
    }
    values
}

/// Dropout's mask word for element `i` at `step`, from the op's definition (three rounds
/// of Wellons' lowbias32 mix over seed, step and index), in 64-bit arithmetic masked to
/// 32 bits rather than the kernels' wrapping u32 operations.
pub fn dropout_word(seed: u64, step: u64, i: u64) -> u64 {
    const LOW: u64 = 0xffff_ffff;
    let mix = |mut h: u64| {
        h &= LOW;
        h ^= h >> 16;
        h = (h * 0x7feb_352d) & LOW;
        h ^= h >> 15;
        h = (h * 0x846c_a68b) & LOW;
        h ^ (h >> 16)
    };
    mix(mix(mix(seed) ^ (step & LOW)) ^ (i & LOW))
}

/// The flat index into `from` (which broadcasts to `to`) of element `i` of `to`.
fn broadcast_index(i: usize, to: &[usize], from: &[usize]) -> usize {
    let pad = to.len() - from.len();
    let mut rem = i;
    let mut coords = vec![0; to.len()];
    for d in (0..to.len()).rev() {
        coords[d] = rem % to[d];
        rem /= to[d];
    }
    let mut index = 0;
    for d in 0..from.len() {
        let c = if from[d] == 1 { 0 } else { coords[pad + d] };
        index = index * from[d] + c;
    }
    index
}
