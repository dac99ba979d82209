//! Monotone constraints: an MLP whose probability of default never falls (or never
//! rises) as a constrained input rises, by construction rather than by a penalty.
//!
//! The construction is that of "Constrained Monotonic Neural Networks" (Runje and
//! Shankaranarayana, ICML 2023). Every weight on a path from a constrained input has a
//! fixed sign and every activation is non-decreasing, so each path's product of slopes
//! has the constraint's sign:
//! - the first layer's weights from an increasing feature are `|v|`, from a decreasing
//!   one `−|v|`, from the others free;
//! - every later layer's weights (the output layer's included) are `|v|`;
//! - with ReLU, a hidden layer's units are split in three: a third keep ReLU (convex), a
//!   third take its point reflection `min(z, 0)` (concave), a third the saturated
//!   `clamp(z, −1, 1)`. Non-negative weights over ReLU alone could only make convex
//!   functions; the mix keeps the network a universal approximator of monotone ones.
//!   Tanh, sigmoid and leaky ReLU are non-decreasing and kept as they are; GELU and SiLU
//!   are not monotone and are refused.
//!
//! The weights are stored unconstrained (`v`) and constrained in the graph, so training
//! needs no projection step and a saved model's weights are its parameters as always.

use crate::data::{InputColumn, Preprocessor};
use crate::engine::graph::{Act, Graph, NodeId};
use crate::engine::plan::ParamLayout;
use crate::error::{Error, Result, Setting};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Which way the probability of default may move as a constrained column rises.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Never falls (`+1`).
    Increasing,
    /// Never rises (`-1`).
    Decreasing,
}

impl Direction {
    /// "increasing" or "decreasing".
    pub fn describe(self) -> &'static str {
        match self {
            Direction::Increasing => "increasing",
            Direction::Decreasing => "decreasing",
        }
    }

    /// `+1` or `-1`, the sign every path from the column carries.
    pub fn sign(self) -> i8 {
        match self {
            Direction::Increasing => 1,
            Direction::Decreasing => -1,
        }
    }
}

/// One `--monotone` constraint: a raw input column and its direction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonotoneConstraint {
    /// The raw column's name.
    pub column: String,
    /// Which way the probability of default may move as it rises.
    pub direction: Direction,
}

impl FromStr for MonotoneConstraint {
    type Err = String;

    /// `COLUMN:+1` (or `:1`, `:increasing`) or `COLUMN:-1` (`:decreasing`); the name is
    /// everything before the last colon, so it may hold colons itself.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let (column, dir) = s.rsplit_once(':').ok_or_else(|| {
            format!("{s:?} is not COLUMN:+1 or COLUMN:-1 (increasing or decreasing in the probability of default)")
        })?;
        let direction = match dir.trim() {
            "+1" | "1" | "increasing" | "inc" => Direction::Increasing,
            "-1" | "decreasing" | "dec" => Direction::Decreasing,
            other => {
                return Err(format!(
                    "{s:?}: the direction {other:?} is not +1 (increasing) or -1 (decreasing)"
                ))
            }
        };
        if column.trim().is_empty() {
            return Err(format!("{s:?} names no column"));
        }
        Ok(MonotoneConstraint {
            column: column.trim().to_string(),
            direction,
        })
    }
}

impl fmt::Display for MonotoneConstraint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = match self.direction {
            Direction::Increasing => "+1",
            Direction::Decreasing => "-1",
        };
        write!(f, "{}:{sign}", self.column)
    }
}

/// The sign of each preprocessed feature (`+1`, `-1`, or `0` for free) that makes the
/// model monotone in each constrained raw column. A numeric column's value features
/// (its standardised value, or each of its piecewise-linear bins) are non-decreasing in
/// the raw value, so they all take the column's sign; its missing indicator stays free
/// (a missing value is not smaller or larger than any other). Refuses a column that is
/// not a numeric input of the model, and a column named twice.
pub fn feature_signs(pre: &Preprocessor, constraints: &[MonotoneConstraint]) -> Result<Vec<i8>> {
    let mut signs = vec![0i8; pre.n_features()];
    let mut offsets = Vec::with_capacity(pre.inputs.len());
    let mut at = 0;
    for input in &pre.inputs {
        offsets.push(at);
        at += input.width();
    }
    for (k, c) in constraints.iter().enumerate() {
        let refuse = |msg: String| Err(Error::invalid(Setting::Monotone, msg));
        if constraints[..k].iter().any(|d| d.column == c.column) {
            return refuse(format!("{} is constrained twice", c.column));
        }
        let Some(i) = pre.inputs.iter().position(|inp| inp.name() == c.column) else {
            let why = if c.column == pre.target {
                "it is the target".to_string()
            } else if pre.id_column.as_deref() == Some(c.column.as_str()) {
                "it is the row identifier".to_string()
            } else {
                let names: Vec<&str> = pre.inputs.iter().map(|i| i.name()).collect();
                format!(
                    "it is not one of the model's input columns ({})",
                    names.join(", ")
                )
            };
            return refuse(format!("cannot constrain {}: {why}", c.column));
        };
        match &pre.inputs[i] {
            InputColumn::Numeric(step) => {
                let start = offsets[i];
                signs[start..start + step.value_width()].fill(c.direction.sign());
            }
            InputColumn::Categorical(_) => {
                return refuse(format!(
                    "cannot constrain {0}: it is read as categorical, and categories have no order (to read it as numbers, declare it numeric)",
                    c.column
                ))
            }
        }
    }
    Ok(signs)
}

/// Refuses an activation that is not non-decreasing (the construction needs every
/// activation to be).
pub fn check_activation(act: Act) -> Result<()> {
    match act {
        Act::Gelu | Act::Silu | Act::Sin => Err(Error::invalid(
            Setting::Monotone,
            format!(
                "a monotone model needs a non-decreasing activation, and {act} is not one (use relu, leaky_relu, tanh or sigmoid)"
            ),
        )),
        Act::Identity | Act::Relu | Act::Sigmoid | Act::Tanh | Act::LeakyRelu => Ok(()),
    }
}

/// The output layer's initial weights are scaled by this. Its weights are `|v|` over
/// hidden units whose mean is not zero (the first layer's signed weights meet
/// non-negative features, and each later layer's `|v|` carries the shift on), so the
/// usual initialisation starts every logit far from zero: on a table with 3% defaults
/// the first epochs were spent undoing it, and early stopping kept an untrained epoch.
pub const OUTPUT_INIT_SCALE: f32 = 0.1;

/// Scales the initial values in `flat` of the parameter named `weight` (the output
/// layer's weight) by [`OUTPUT_INIT_SCALE`].
pub(super) fn scale_output_init(g: &Graph, layout: &ParamLayout, weight: &str, flat: &mut [f32]) {
    for (i, p) in g.params.iter().enumerate() {
        if p.name == weight {
            let (at, len) = (layout.offsets[i], layout.lens[i]);
            flat[at..at + len]
                .iter_mut()
                .for_each(|v| *v *= OUTPUT_INIT_SCALE);
        }
    }
}

/// `|v|` as `relu(v) + relu(−v)`, from ops every executor has.
fn abs(g: &mut Graph, v: NodeId) -> Result<NodeId> {
    let zero = g.fill(&[1], 0.0)?;
    let neg = g.sub(zero, v)?;
    let (p, n) = (g.relu(v)?, g.relu(neg)?);
    g.add(p, n)
}

/// `v` with the sign `sign`: itself (0), `|v|` (+1) or `−|v|` (−1).
fn signed(g: &mut Graph, v: NodeId, sign: i8) -> Result<NodeId> {
    match sign {
        0 => Ok(v),
        1 => abs(g, v),
        _ => {
            let a = abs(g, v)?;
            let zero = g.fill(&[1], 0.0)?;
            g.sub(zero, a)
        }
    }
}

/// The first layer's weight `[inputs, out]` with each row signed as `signs` says: the
/// stored weight transposed (rows become columns), each run of columns of one sign
/// signed, put side by side again. Returned transposed, `[out, inputs]`.
fn first_weight_transposed(g: &mut Graph, w: NodeId, signs: &[i8]) -> Result<NodeId> {
    let wt = g.transpose_last(w)?;
    let mut parts = Vec::new();
    let mut start = 0;
    while start < signs.len() {
        let sign = signs[start];
        let len = signs[start..].iter().take_while(|&&s| s == sign).count();
        let part = if len == signs.len() {
            wt
        } else {
            g.slice_cols(wt, start, len)?
        };
        parts.push(signed(g, part, sign)?);
        start += len;
    }
    if parts.len() == 1 {
        Ok(parts[0])
    } else {
        g.concat(&parts)
    }
}

/// The hidden activation of a monotone layer over pre-activations `z` `[batch, n]`: for
/// ReLU the convex / concave / saturated mix (module docs), else `act` itself.
fn monotone_activation(g: &mut Graph, z: NodeId, act: Act) -> Result<NodeId> {
    if act != Act::Relu {
        return g.unary(act, z);
    }
    let n = g.shape(z)[1];
    let third = n / 3;
    let convex = n - 2 * third;
    if third == 0 {
        return g.relu(z);
    }
    let zero = g.fill(&[1], 0.0)?;
    let one = g.fill(&[1], 1.0)?;
    // Convex: relu(z).
    let zc = g.slice_cols(z, 0, convex)?;
    let hc = g.relu(zc)?;
    // Concave: min(z, 0) = −relu(−z).
    let zv = g.slice_cols(z, convex, third)?;
    let nv = g.sub(zero, zv)?;
    let rv = g.relu(nv)?;
    let hv = g.sub(zero, rv)?;
    // Saturated: clamp(z, −1, 1) = relu(z + 1) − relu(z − 1) − 1.
    let zs = g.slice_cols(z, convex + third, third)?;
    let up = g.add(zs, one)?;
    let down = g.sub(zs, one)?;
    let (ru, rd) = (g.relu(up)?, g.relu(down)?);
    let diff = g.sub(ru, rd)?;
    let hs = g.sub(diff, one)?;
    g.concat(&[hc, hv, hs])
}

/// A monotone stack of dense layers over `x` `[batch, inputs]` (the MLP, or the head of
/// a sequence model over its recurrent or conv output beside the static features):
/// `signs` per input column (see [`feature_signs`]), the hidden layers of the `hidden`
/// widths, then one logit. Layer `i`'s parameters are `{name(i)}.weight` `[in, out]` and
/// `{name(i)}.bias`, as in the unconstrained model, with the weights signed as the
/// module docs say. `after_hidden` applies after each hidden layer's activation (the
/// training graph's dropout). Returns the logits `[batch, 1]`.
pub(super) fn build_dense(
    g: &mut Graph,
    x: NodeId,
    hidden: &[usize],
    act: Act,
    signs: &[i8],
    name: impl Fn(usize) -> String,
    mut after_hidden: impl FnMut(&mut Graph, NodeId, usize) -> Result<NodeId>,
) -> Result<NodeId> {
    check_activation(act)?;
    let mut h = x;
    let mut width = signs.len();
    for (i, &out) in hidden.iter().enumerate() {
        let z = layer(g, h, &name(i), i == 0, width, out, signs)?;
        h = monotone_activation(g, z, act)?;
        h = after_hidden(g, h, i)?;
        width = out;
    }
    layer(
        g,
        h,
        &name(hidden.len()),
        hidden.is_empty(),
        width,
        1,
        signs,
    )
}

/// A layer's pre-activations `h · w + b`, its weight signed: by `signs` per row in the
/// first layer, `|w|` in the others.
fn layer(
    g: &mut Graph,
    h: NodeId,
    name: &str,
    first: bool,
    width: usize,
    out: usize,
    signs: &[i8],
) -> Result<NodeId> {
    let w = g.param(&format!("{name}.weight"), &[width, out])?;
    let b = g.param(&format!("{name}.bias"), &[out])?;
    if first {
        let wt = first_weight_transposed(g, w, signs)?;
        g.matmul_ex(h, wt, Some(b), false, true, Act::Identity)
    } else {
        let w = abs(g, w)?;
        g.linear(h, w, b, Act::Identity)
    }
}
