//! The training loss in f64 (`engine::ops::loss`), from its definition.

use riskgrad::engine::graph::LossOp;

/// The value of a node of `op` with inputs `x`.
pub fn evaluate(op: &LossOp, x: &[&Vec<f64>]) -> Vec<f64> {
    let n = x[0].len() as f64;
    let sigmoid = |z: f64| 1.0 / (1.0 + (-z).exp());
    match *op {
        LossOp::BceWithLogits { pos_weight } => {
            let pw = pos_weight as f64;
            let terms = x[0]
                .iter()
                .zip(x[1])
                .map(|(&z, &y)| -(pw * y * sigmoid(z).ln() + (1.0 - y) * (1.0 - sigmoid(z)).ln()));
            vec![terms.sum::<f64>() / n]
        }
        LossOp::BceWithLogitsGrad { pos_weight } => {
            let pw = pos_weight as f64;
            let d = x[2][0];
            x[0].iter()
                .zip(x[1])
                .map(|(&z, &y)| d * (pw * y * (sigmoid(z) - 1.0) + (1.0 - y) * sigmoid(z)) / n)
                .collect()
        }
    }
}
