//! The `cnn` model: 1-D convolutions over the payment history, then the static features
//! and a dense head (the peer programs' CNN with the default sizes).
//!
//! It reads the sequence layout of `data::sequence`: `[batch, statics + steps·channels]`
//! with the static features first and the history time-major after them. The history is
//! turned channel-major (`[batch, channels, steps]`) for the convolutions.

use crate::engine::graph::{Act, Graph, NodeId};
use crate::error::{Error, Result, Setting};
use serde::{Deserialize, Serialize};

/// The CNN's layer sizes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CnnLayers {
    /// Output channels of each conv layer (each with the model's activation).
    pub conv: Vec<usize>,
    /// Kernel width of every conv layer, zero-padded by `kernel / 2` on each side (an
    /// odd kernel keeps the length).
    pub kernel: usize,
    /// Max pooling (window and stride) between conv layers; 1 for none.
    pub pool: usize,
    /// Dense layers (with the model's activation) after flattening and concatenating the
    /// statics, before the logit.
    pub dense: Vec<usize>,
}

impl Default for CnnLayers {
    /// The peer CNN: conv 32, pool 2, conv 64, dense 64 (kernel 3). It reaches a
    /// validation AUC of about 0.77 on the bundled data in 10 epochs.
    fn default() -> Self {
        CnnLayers {
            conv: vec![32, 64],
            kernel: 3,
            pool: 2,
            dense: vec![64],
        }
    }
}

impl CnnLayers {
    /// The history length after each conv layer (and its pooling), or the flag at fault.
    pub fn lengths(&self, steps: usize) -> Result<Vec<usize>> {
        if self.conv.is_empty() {
            return Err(Error::invalid(
                Setting::ConvChannels,
                "needs at least one conv layer",
            ));
        }
        if self.conv.contains(&0) {
            return Err(Error::invalid(
                Setting::ConvChannels,
                "layer sizes must be positive",
            ));
        }
        if self.dense.contains(&0) {
            return Err(Error::invalid(
                Setting::DenseSizes,
                "layer sizes must be positive",
            ));
        }
        if self.kernel == 0 {
            return Err(Error::invalid(Setting::ConvKernel, "must be at least 1"));
        }
        if self.pool == 0 {
            return Err(Error::invalid(
                Setting::Pool,
                "must be at least 1 (1 for no pooling)",
            ));
        }
        let mut len = steps;
        let mut out = Vec::new();
        for i in 0..self.conv.len() {
            len = len + 2 * (self.kernel / 2) - self.kernel + 1;
            if i + 1 < self.conv.len() && self.pool > 1 {
                if len < self.pool {
                    return Err(Error::invalid(
                        Setting::Pool,
                        format!(
                            "{} after conv layer {} leaves no steps of the {steps}-step payment history: pool less (1 for none) or give a longer history",
                            self.pool,
                            i + 1
                        ),
                    ));
                }
                len /= self.pool;
            }
            out.push(len);
        }
        Ok(out)
    }
}

/// Appends the CNN to `g` over `x` (`[batch, statics + steps·channels]`, the sizes given
/// as `(statics, channels, steps)`), `act` in its hidden layers, the head monotone in
/// the statics as `monotone` says (one sign per static feature; empty for none); returns
/// the logits `[batch, 1]`.
pub(super) fn build(
    g: &mut Graph,
    x: NodeId,
    (statics, channels, steps): (usize, usize, usize),
    layers: &CnnLayers,
    act: Act,
    monotone: &[i8],
    drop: super::HiddenDropout,
) -> Result<NodeId> {
    let batch = g.shape(x)[0];
    let lengths = layers.lengths(steps)?;
    let history = g.slice_cols(x, statics, steps * channels)?;
    let history = g.reshape(history, &[batch, steps, channels])?;
    let mut h = g.transpose_last(history)?; // [batch, channels, steps]
    let mut width = channels;
    for (i, &out) in layers.conv.iter().enumerate() {
        let w = g.param(&format!("conv{i}.weight"), &[out, width, layers.kernel])?;
        let b = g.param(&format!("conv{i}.bias"), &[out])?;
        h = g.conv1d(h, w, Some(b), 1, layers.kernel / 2, 1, act)?;
        if i + 1 < layers.conv.len() && layers.pool > 1 {
            h = g.max_pool1d(h, layers.pool, layers.pool, 0)?;
        }
        width = out;
    }
    let flat_width = width * lengths.last().expect("at least one conv layer");
    let mut z = g.reshape(h, &[batch, flat_width])?;
    let mut z_width = flat_width;
    if statics > 0 {
        let s = g.slice_cols(x, 0, statics)?;
        z = g.concat(&[z, s])?;
        z_width += statics;
    }
    if !monotone.is_empty() {
        // The conv output is free; the statics after it take their signs.
        let mut signs = vec![0i8; flat_width];
        signs.extend(monotone);
        return super::monotone::build_dense(
            g,
            z,
            &layers.dense,
            act,
            &signs,
            |i| format!("dense{i}"),
            |g, h, i| drop.after(g, h, i),
        );
    }
    for (i, &out) in layers.dense.iter().chain(std::iter::once(&1)).enumerate() {
        let w = g.param(&format!("dense{i}.weight"), &[z_width, out])?;
        let b = g.param(&format!("dense{i}.bias"), &[out])?;
        let layer_act = if i < layers.dense.len() {
            act
        } else {
            Act::Identity
        };
        z = g.linear(z, w, b, layer_act)?;
        if i < layers.dense.len() {
            z = drop.after(g, z, i)?;
        }
        z_width = out;
    }
    Ok(z)
}
