//! Model specs: how a model turns a batch of features into one logit per row, and how its
//! parameters start.

use crate::error::{Error, Result};
use crate::graph::{Act, Graph, NodeId};
use crate::plan::ParamLayout;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

/// The architectures the CLI offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Dense layers with ReLU, then a dense layer to one logit.
    Mlp { inputs: usize, hidden: Vec<usize> },
}

impl ModelSpec {
    pub fn mlp(inputs: usize, hidden: &[usize]) -> Result<Self> {
        if inputs == 0 {
            return Err(Error::Other("the data has no feature columns".into()));
        }
        if hidden.contains(&0) {
            return Err(Error::flag("--hidden", "layer sizes must be positive"));
        }
        Ok(ModelSpec::Mlp { inputs, hidden: hidden.to_vec() })
    }

    /// Number of feature columns the model reads.
    pub fn inputs(&self) -> usize {
        match self {
            ModelSpec::Mlp { inputs, .. } => *inputs,
        }
    }

    /// Appends the model to `g`, reading `x` (`[batch, inputs]`); returns the logits
    /// `[batch, 1]`.
    pub fn build(&self, g: &mut Graph, x: NodeId) -> Result<NodeId> {
        match self {
            ModelSpec::Mlp { inputs, hidden } => {
                let mut h = x;
                let mut width = *inputs;
                for (i, &out) in hidden.iter().chain(std::iter::once(&1)).enumerate() {
                    let w = g.param(&format!("dense{i}.weight"), &[width, out])?;
                    let b = g.param(&format!("dense{i}.bias"), &[out])?;
                    let act = if i < hidden.len() { Act::Relu } else { Act::Identity };
                    h = g.linear(h, w, b, act)?;
                    width = out;
                }
                Ok(h)
            }
        }
    }
}

/// Initial values for every parameter of `g`, packed by `layout`: uniform in
/// ±1/sqrt(fan_in) for weights and biases alike, as PyTorch's `nn.Linear` does (so the
/// peers start from the same distribution). `fan_in` is a weight's first dimension; a
/// bias takes the fan-in of the weight of the same layer.
pub fn init_params(g: &Graph, layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed ^ 0x1D1D);
    let mut flat = vec![0.0f32; layout.total];
    for (i, p) in g.params.iter().enumerate() {
        let fan_in = match p.name.strip_suffix(".bias") {
            Some(layer) => g.params.iter().find(|q| q.name == format!("{layer}.weight")).map_or(p.shape[0], |w| w.shape[0]),
            None => p.shape[0],
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        for v in &mut flat[layout.offsets[i]..layout.offsets[i] + layout.lens[i]] {
            *v = rng.range(-bound, bound) as f32;
        }
    }
    flat
}
