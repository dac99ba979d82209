//! Recurrent layers (LSTM, GRU) unrolled into the graph, stacked, optionally
//! bidirectional, and their PyTorch initialization.
//!
//! Sequences are batch-major `[batch, steps · features]` matrices, oldest step first
//! (the layout of the payment-history block of the feature matrix). Per layer and
//! direction:
//!   - one matmul computes the input products of every step at once,
//!     `GX = x · W_ih + b_ih` as `[batch, steps · G]` (a reshape of `[batch·steps, G]`);
//!   - each step is a recurrent matmul `h_{t-1} · W_hh (+ b_hh)` and one fused cell that
//!     reads its columns of `GX` in place. The first step from a zero state has no
//!     recurrent matmul: the LSTM folds `b_hh` into the input matmul's bias (the gates
//!     only see the sum), the GRU hands the cell `b_hh` alone (it is inside `r ⊙ ·`);
//!   - the hidden states are views of the cells' outputs; the sequence output, when a
//!     next layer needs it, is their concatenation `[batch, steps · H]` (directions side
//!     by side within each step), which is the next layer's input as it stands.
//!
//! Parameter names follow PyTorch's (`weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, with
//! `_reverse` for the backward direction), stored input-major (`[input, G]`).

use crate::engine::graph::{Act, CellKind, Graph, NodeId};
use crate::error::{Error, Result};

/// A layer's initial state for one direction: `h0` and, for the LSTM, `c0`, each
/// `[batch, hidden]`. Without one the state starts at zero.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct InitialState {
    /// The hidden state before the first step.
    pub h: NodeId,
    /// The LSTM's cell state before the first step (`None` for a GRU).
    pub c: Option<NodeId>,
}

/// What a recurrent layer or stack hands on.
#[derive(Clone, Debug)]
pub struct RnnOutput {
    /// Every step's hidden state, `[batch, steps · width]` (when asked for).
    pub sequence: Option<NodeId>,
    /// The final hidden state, `[batch, width]`: the last step's for the forward
    /// direction, beside the first step's for the reverse one (PyTorch's `h_n`).
    pub last: NodeId,
    /// Output width: `hidden`, or `2 · hidden` when bidirectional.
    pub width: usize,
}

/// One direction of one layer over `x` (`[batch, steps · input]`): the hidden state of
/// each step, in step order.
#[allow(clippy::too_many_arguments)]
fn direction(
    g: &mut Graph,
    kind: CellKind,
    name: &str,
    x: NodeId,
    steps: usize,
    input: usize,
    hidden: usize,
    reverse: bool,
    init: Option<InitialState>,
) -> Result<Vec<NodeId>> {
    let batch = g.shape(x)[0];
    let gw = kind.gates() * hidden;
    let suffix = if reverse { "_reverse" } else { "" };
    let w_ih = g.param(&format!("{name}.weight_ih{suffix}"), &[input, gw])?;
    // Declared only where a recurrent product exists: a single step from a zero state
    // has none, and a parameter that never reaches the loss could not be trained.
    let w_hh = if steps > 1 || init.is_some() {
        Some(g.param(&format!("{name}.weight_hh{suffix}"), &[hidden, gw])?)
    } else {
        None
    };
    let b_ih = g.param(&format!("{name}.bias_ih{suffix}"), &[gw])?;
    let b_hh = g.param(&format!("{name}.bias_hh{suffix}"), &[gw])?;
    if let Some(s) = init {
        for (what, node) in [("h0", Some(s.h)), ("c0", s.c)] {
            if let Some(node) = node {
                if g.shape(node) != [batch, hidden] {
                    return Err(Error::shape(
                        kind.name(),
                        format!(
                            "{name}: {what} {:?} must be [{batch}, {hidden}]",
                            g.shape(node)
                        ),
                    ));
                }
            }
        }
        if (kind == CellKind::Lstm) != s.c.is_some() {
            return Err(Error::shape(
                kind.name(),
                format!("{name}: an initial c is needed by the LSTM and only by it"),
            ));
        }
    }

    // The LSTM's gates see b_ih + b_hh only as a sum: one bias for the input matmul.
    let (input_bias, recurrent_bias) = match kind {
        CellKind::Lstm => (g.add(b_ih, b_hh)?, None),
        CellKind::Gru => (b_ih, Some(b_hh)),
    };
    let rows = g.reshape(x, &[batch * steps, input])?;
    let gx = g.linear(rows, w_ih, input_bias, Act::Identity)?;
    let gx = g.reshape(gx, &[batch, steps * gw])?;

    let mut h_prev = init.map(|s| s.h);
    let mut c_prev = init.and_then(|s| s.c);
    let mut hs = vec![0; steps];
    for s in 0..steps {
        let t = if reverse { steps - 1 - s } else { s };
        let gh = match (h_prev.zip(w_hh), recurrent_bias) {
            (Some((h, w_hh)), bias) => {
                Some(g.matmul_ex(h, w_hh, bias, false, false, Act::Identity)?)
            }
            // A zero state: the recurrent product is its bias.
            (None, bias) => bias,
        };
        let prev = match kind {
            CellKind::Lstm => c_prev,
            CellKind::Gru => h_prev,
        };
        let cell = g.rnn_cell(kind, hidden, gx, t * gw, gh, prev)?;
        let h = g.cell_h(cell)?;
        if kind == CellKind::Lstm {
            c_prev = Some(g.cell_c(cell)?);
        }
        h_prev = Some(h);
        hs[t] = h;
    }
    Ok(hs)
}

/// One recurrent layer over `x` (`[batch, steps · input]`). `init` holds one initial
/// state per direction, or is empty for zeros. With `sequence` false only the final
/// state is built.
#[allow(clippy::too_many_arguments)]
pub fn rnn_layer(
    g: &mut Graph,
    kind: CellKind,
    name: &str,
    x: NodeId,
    steps: usize,
    hidden: usize,
    bidirectional: bool,
    init: &[InitialState],
    sequence: bool,
) -> Result<RnnOutput> {
    let sx = g.shape(x).to_vec();
    let dirs = 1 + bidirectional as usize;
    if steps == 0 || hidden == 0 || sx.len() != 2 || !sx[1].is_multiple_of(steps) {
        return Err(Error::shape(
            kind.name(),
            format!(
                "{name}: input {sx:?} is not [batch, {steps} steps × features], hidden {hidden}"
            ),
        ));
    }
    if !init.is_empty() && init.len() != dirs {
        return Err(Error::shape(
            kind.name(),
            format!(
                "{name}: {} initial states for {dirs} directions",
                init.len()
            ),
        ));
    }
    let input = sx[1] / steps;
    let mut per_dir = Vec::new();
    for d in 0..dirs {
        per_dir.push(direction(
            g,
            kind,
            name,
            x,
            steps,
            input,
            hidden,
            d == 1,
            init.get(d).copied(),
        )?);
    }
    let last = if bidirectional {
        g.concat(&[per_dir[0][steps - 1], per_dir[1][0]])?
    } else {
        per_dir[0][steps - 1]
    };
    let sequence = if sequence {
        let parts: Vec<NodeId> = (0..steps)
            .flat_map(|t| per_dir.iter().map(move |hs| hs[t]))
            .collect();
        Some(if parts.len() == 1 {
            parts[0]
        } else {
            g.concat(&parts)?
        })
    } else {
        None
    };
    Ok(RnnOutput {
        sequence,
        last,
        width: dirs * hidden,
    })
}

/// Stacked layers named `{prefix}{i}`, each reading the previous one's sequence.
/// `init`, when given, holds each layer's initial states (see `rnn_layer`). With
/// `sequence` the last layer's whole sequence is returned too.
#[allow(clippy::too_many_arguments)]
pub fn rnn_stack(
    g: &mut Graph,
    kind: CellKind,
    prefix: &str,
    x: NodeId,
    steps: usize,
    hidden: &[usize],
    bidirectional: bool,
    init: Option<&[Vec<InitialState>]>,
    sequence: bool,
) -> Result<RnnOutput> {
    if hidden.is_empty() {
        return Err(Error::shape(
            kind.name(),
            "a recurrent stack needs at least one layer".to_string(),
        ));
    }
    if let Some(init) = init {
        if init.len() != hidden.len() {
            return Err(Error::shape(
                kind.name(),
                format!("{} initial states for {} layers", init.len(), hidden.len()),
            ));
        }
    }
    let mut input = x;
    let mut out = None;
    for (i, &h) in hidden.iter().enumerate() {
        let last_layer = i + 1 == hidden.len();
        let states = init.map_or(&[][..], |s| &s[i][..]);
        let o = rnn_layer(
            g,
            kind,
            &format!("{prefix}{i}"),
            input,
            steps,
            h,
            bidirectional,
            states,
            sequence || !last_layer,
        )?;
        if let Some(seq) = o.sequence {
            input = seq;
        }
        out = Some(o);
    }
    Ok(out.expect("at least one layer"))
}

/// PyTorch's initialization of recurrent parameters, U(±1/√hidden) for weights and
/// biases alike: the bound for a parameter named as `direction` names them, `None` for
/// any other parameter.
pub fn init_bound(g: &Graph, name: &str) -> Option<f64> {
    const KINDS: [&str; 4] = [".weight_ih", ".weight_hh", ".bias_ih", ".bias_hh"];
    let (layer, rest) = KINDS
        .iter()
        .find_map(|k| name.find(k).map(|at| (&name[..at], &name[at + k.len()..])))?;
    if !(rest.is_empty() || rest == "_reverse") {
        return None;
    }
    // The hidden size is the rows of W_hh. A single step from a zero state has no W_hh;
    // then it is W_ih's columns over the gates, the kind read from the layer's name as
    // `ModelSpec` gives it (`gru0`, `lstm1`).
    let hidden = match g
        .params
        .iter()
        .find(|p| p.name == format!("{layer}.weight_hh{rest}"))
    {
        Some(w_hh) => w_hh.shape[0],
        None => {
            let w_ih = g
                .params
                .iter()
                .find(|p| p.name == format!("{layer}.weight_ih{rest}"))?;
            w_ih.shape[1] / if layer.starts_with("gru") { 3 } else { 4 }
        }
    };
    Some(1.0 / (hidden as f64).sqrt())
}
