//! Model specs: how a model turns a batch of features into one logit per row, and how its
//! parameters start.

use crate::error::{Error, Result};
use crate::graph::{Act, Graph, NodeId};
use crate::plan::ParamLayout;
use crate::rng::Rng;
use serde::{Deserialize, Serialize};

mod cnn;
pub use cnn::CnnLayers;

/// The architectures the CLI offers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ModelSpec {
    /// Dense layers with ReLU, then a dense layer to one logit.
    Mlp { inputs: usize, hidden: Vec<usize> },
    /// Conv1d + ReLU layers over the payment history (max pooling between them), then
    /// the flattened result with the static features, dense ReLU layers and one logit.
    /// Reads the layout of `data::sequence`: statics first, then steps × channels.
    Cnn { statics: usize, channels: usize, steps: usize, layers: CnnLayers },
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

    /// The CNN over `steps` steps of `channels` history channels and `statics` static
    /// features (see `data::sequence::SequenceLayout`).
    pub fn cnn(statics: usize, channels: usize, steps: usize, layers: CnnLayers) -> Result<Self> {
        if channels == 0 || steps == 0 {
            return Err(Error::flag("--sequence", "the cnn model needs at least one sequence of at least one step"));
        }
        layers.lengths(steps)?;
        Ok(ModelSpec::Cnn { statics, channels, steps, layers })
    }

    /// Number of feature columns the model reads.
    pub fn inputs(&self) -> usize {
        match self {
            ModelSpec::Mlp { inputs, .. } => *inputs,
            ModelSpec::Cnn { statics, channels, steps, .. } => statics + channels * steps,
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
            ModelSpec::Cnn { statics, channels, steps, layers } => cnn::build(g, x, *statics, *channels, *steps, layers),
        }
    }
}

/// Initial values for every parameter of `g`, packed by `layout`: uniform in
/// ±1/sqrt(fan_in) for weights and biases alike, as PyTorch's `nn.Linear` and `nn.Conv1d`
/// do (so the peers start from the same distribution). `fan_in` is a dense weight's
/// first dimension (`[in, out]`) and a conv weight's `c·k` (`[o, c, k…]`, rank 3 or
/// more); a bias takes the fan-in of the weight of the same layer.
pub fn init_params(g: &Graph, layout: &ParamLayout, seed: u64) -> Vec<f32> {
    let fan_in_of = |shape: &[usize]| if shape.len() >= 3 { shape[1..].iter().product() } else { shape[0] };
    let mut rng = Rng::new(seed ^ 0x1D1D);
    let mut flat = vec![0.0f32; layout.total];
    for (i, p) in g.params.iter().enumerate() {
        let fan_in = match p.name.strip_suffix(".bias") {
            Some(layer) => g.params.iter().find(|q| q.name == format!("{layer}.weight")).map_or(p.shape[0], |w| fan_in_of(&w.shape)),
            None => fan_in_of(&p.shape),
        };
        let bound = 1.0 / (fan_in as f64).sqrt();
        for v in &mut flat[layout.offsets[i]..layout.offsets[i] + layout.lens[i]] {
            *v = rng.range(-bound, bound) as f32;
        }
    }
    flat
}
