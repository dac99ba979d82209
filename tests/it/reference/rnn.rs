//! Recurrent layers in plain f64, written from the textbook equations, and the
//! interpreter's view of the fused cell ops.
//!
//! The equations (PyTorch's, gate order and both biases included; weights stored
//! input-major, `W_ih: [input, G]`, `W_hh: [hidden, G]`, gate blocks side by side):
//!
//! LSTM, gates (i, f, g, o), `G = 4H`:
//!     i = σ(x W_ii + b_ii + h W_hi + b_hi)      f = σ(x W_if + b_if + h W_hf + b_hf)
//!     g = tanh(x W_ig + b_ig + h W_hg + b_hg)   o = σ(x W_io + b_io + h W_ho + b_ho)
//!     c' = f c + i g                            h' = o tanh(c')
//!
//! GRU, gates (r, z, n), `G = 3H`:
//!     r = σ(x W_ir + b_ir + h W_hr + b_hr)      z = σ(x W_iz + b_iz + h W_hz + b_hz)
//!     n = tanh(x W_in + b_in + r (h W_hn + b_hn))
//!     h' = (1 − z) n + z h
//!
//! `lstm_layer` and `gru_layer` run a whole sequence with explicit loops and share
//! nothing with the graph, the autodiff or the kernels: the fused kernels of both
//! executors are compared with them. `cell_forward` and `cell_backward` are what the
//! graph interpreter runs for `RnnCell` and `RnnCellGrad`; the backward formulas are
//! held against finite differences of the forward ones in tests/it/rnn_gradcheck.rs.

use riskgrad::engine::graph::{CellKind, Packing, RnnCellGradInputs, RnnCellInputs, RnnOp};

/// The value of a node of `op` with packing `p`, inputs `x` of shapes `in_shapes`.
pub fn evaluate(op: &RnnOp, p: Packing, x: &[&Vec<f64>], in_shapes: &[&[usize]]) -> Vec<f64> {
    match *op {
        RnnOp::RnnCell {
            hidden,
            gx_col,
            has_gh,
            has_prev,
            ..
        } => {
            let at = RnnCellInputs::new(has_gh, has_prev);
            let w = in_shapes[at.gx][1];
            let g = p.kind.gates() * hidden;
            let gx = |r: usize, k: usize| x[at.gx][r * w + gx_col + k];
            let gh = |r: usize, k: usize| match at.gh {
                None => 0.0,
                Some(i) if in_shapes[i].len() == 2 => x[i][r * g + k],
                Some(i) => x[i][k],
            };
            let prev = |r: usize, j: usize| match at.prev {
                Some(i) => x[i][r * hidden + j],
                None => 0.0,
            };
            cell_forward(p, gx, gh, prev)
        }
        RnnOp::RnnCellGrad {
            hidden,
            ref dh_cols,
            has_dc,
            has_prev,
            ..
        } => {
            let at = RnnCellGradInputs::new(dh_cols.len(), has_dc, has_prev);
            let dh = |r: usize, j: usize| {
                at.dh
                    .clone()
                    .zip(dh_cols)
                    .map(|(k, &col)| x[k][r * in_shapes[k][1] + col + j])
                    .sum::<f64>()
            };
            let dc = |r: usize, j: usize| match at.dc {
                Some(i) => x[i][r * hidden + j],
                None => 0.0,
            };
            let state = x[at.state];
            let prev = |r: usize, j: usize| match at.prev {
                Some(i) => x[i][r * hidden + j],
                None => 0.0,
            };
            cell_backward(p, dh, dc, state, prev)
        }
    }
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// One layer's weights, input-major (see the module docs).
#[derive(Clone, Debug)]
pub struct LayerWeights {
    pub w_ih: Vec<f64>,
    pub w_hh: Vec<f64>,
    pub b_ih: Vec<f64>,
    pub b_hh: Vec<f64>,
}

/// `x·W + b` for one row `x` of length `k` and `W: [k, n]`.
fn affine(x: &[f64], w: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = b.to_vec();
    for (p, &xp) in x.iter().enumerate() {
        for (j, o) in out.iter_mut().enumerate() {
            *o += xp * w[p * n + j];
        }
    }
    out
}

/// An LSTM layer over `x: [batch, steps, input]` (batch-major, oldest step first),
/// from `h0`, `c0` (`[batch, hidden]`, zeros when `None`); `reverse` runs from the last
/// step to the first. Returns the hidden state of every step, `[batch, steps, hidden]`
/// (indexed by step, whichever way the layer ran), and the final `h` and `c`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_layer(
    x: &[f64],
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
    w: &LayerWeights,
    h0: Option<&[f64]>,
    c0: Option<&[f64]>,
    reverse: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let g = 4 * hidden;
    let mut out = vec![0.0; batch * steps * hidden];
    let mut h_n = vec![0.0; batch * hidden];
    let mut c_n = vec![0.0; batch * hidden];
    for b in 0..batch {
        let mut h: Vec<f64> = h0.map_or(vec![0.0; hidden], |v| {
            v[b * hidden..(b + 1) * hidden].to_vec()
        });
        let mut c: Vec<f64> = c0.map_or(vec![0.0; hidden], |v| {
            v[b * hidden..(b + 1) * hidden].to_vec()
        });
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let xt = &x[(b * steps + t) * input..][..input];
            let zx = affine(xt, &w.w_ih, &w.b_ih, g);
            let zh = affine(&h, &w.w_hh, &w.b_hh, g);
            for j in 0..hidden {
                let i = sigmoid(zx[j] + zh[j]);
                let f = sigmoid(zx[hidden + j] + zh[hidden + j]);
                let gg = (zx[2 * hidden + j] + zh[2 * hidden + j]).tanh();
                let o = sigmoid(zx[3 * hidden + j] + zh[3 * hidden + j]);
                c[j] = f * c[j] + i * gg;
                h[j] = o * c[j].tanh();
            }
            out[(b * steps + t) * hidden..][..hidden].copy_from_slice(&h);
        }
        h_n[b * hidden..(b + 1) * hidden].copy_from_slice(&h);
        c_n[b * hidden..(b + 1) * hidden].copy_from_slice(&c);
    }
    (out, h_n, c_n)
}

/// A GRU layer, as `lstm_layer` (no `c`). Returns every step's hidden state and the
/// final one.
#[allow(clippy::too_many_arguments)]
pub fn gru_layer(
    x: &[f64],
    batch: usize,
    steps: usize,
    input: usize,
    hidden: usize,
    w: &LayerWeights,
    h0: Option<&[f64]>,
    reverse: bool,
) -> (Vec<f64>, Vec<f64>) {
    let g = 3 * hidden;
    let mut out = vec![0.0; batch * steps * hidden];
    let mut h_n = vec![0.0; batch * hidden];
    for b in 0..batch {
        let mut h: Vec<f64> = h0.map_or(vec![0.0; hidden], |v| {
            v[b * hidden..(b + 1) * hidden].to_vec()
        });
        for s in 0..steps {
            let t = if reverse { steps - 1 - s } else { s };
            let xt = &x[(b * steps + t) * input..][..input];
            let a = affine(xt, &w.w_ih, &w.b_ih, g);
            let bb = affine(&h, &w.w_hh, &w.b_hh, g);
            let next: Vec<f64> = (0..hidden)
                .map(|j| {
                    let r = sigmoid(a[j] + bb[j]);
                    let z = sigmoid(a[hidden + j] + bb[hidden + j]);
                    let n = (a[2 * hidden + j] + r * bb[2 * hidden + j]).tanh();
                    (1.0 - z) * n + z * h[j]
                })
                .collect();
            h = next;
            out[(b * steps + t) * hidden..][..hidden].copy_from_slice(&h);
        }
        h_n[b * hidden..(b + 1) * hidden].copy_from_slice(&h);
    }
    (out, h_n)
}

/// `RnnCell`: `gx(r, k)` and `gh(r, k)` give row `r`, column `k < G` of the two
/// products (zero when absent), `prev(r, j)` the previous state. Returns the packed
/// output.
pub fn cell_forward(
    p: Packing,
    gx: impl Fn(usize, usize) -> f64,
    gh: impl Fn(usize, usize) -> f64,
    prev: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let (rows, hh) = (p.rows, p.hidden);
    let mut out = vec![0.0; p.state_len()];
    for r in 0..rows {
        for j in 0..hh {
            let pre = |k: usize| gx(r, k * hh + j) + gh(r, k * hh + j);
            let at = r * hh + j;
            let saved = |k: usize| p.saved() + r * 4 * hh + k * hh + j;
            match p.kind {
                CellKind::Lstm => {
                    let (i, f, g, o) = (
                        sigmoid(pre(0)),
                        sigmoid(pre(1)),
                        pre(2).tanh(),
                        sigmoid(pre(3)),
                    );
                    let c = f * prev(r, j) + i * g;
                    out[p.h() + at] = o * c.tanh();
                    out[p.c() + at] = c;
                    out[p.tanh_c() + at] = c.tanh();
                    for (k, v) in [i, f, g, o].into_iter().enumerate() {
                        out[saved(k)] = v;
                    }
                }
                CellKind::Gru => {
                    let r_ = sigmoid(pre(0));
                    let z = sigmoid(pre(1));
                    let bn = gh(r, 2 * hh + j);
                    let n = (gx(r, 2 * hh + j) + r_ * bn).tanh();
                    out[p.h() + at] = (1.0 - z) * n + z * prev(r, j);
                    for (k, v) in [r_, z, n, bn].into_iter().enumerate() {
                        out[saved(k)] = v;
                    }
                }
            }
        }
    }
    out
}

/// `RnnCellGrad`: `dh(r, j)` and `dc(r, j)` are the incoming gradients (zero when
/// absent), `state` the cell's packed output, `prev(r, j)` its previous state. Returns
/// the packed gradients.
pub fn cell_backward(
    p: Packing,
    dh: impl Fn(usize, usize) -> f64,
    dc: impl Fn(usize, usize) -> f64,
    state: &[f64],
    prev: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    let (rows, hh) = (p.rows, p.hidden);
    let g = p.kind.gates() * hh;
    let mut out = vec![0.0; p.grad_len()];
    for r in 0..rows {
        for j in 0..hh {
            let at = r * hh + j;
            let saved = |k: usize| state[p.saved() + r * 4 * hh + k * hh + j];
            let dh = dh(r, j);
            match p.kind {
                CellKind::Lstm => {
                    let (i, f, gg, o) = (saved(0), saved(1), saved(2), saved(3));
                    let tc = state[p.tanh_c() + at];
                    let dc_total = dc(r, j) + dh * o * (1.0 - tc * tc);
                    let dz = [
                        dc_total * gg * i * (1.0 - i),
                        dc_total * prev(r, j) * f * (1.0 - f),
                        dc_total * i * (1.0 - gg * gg),
                        dh * tc * o * (1.0 - o),
                    ];
                    for (k, v) in dz.into_iter().enumerate() {
                        out[p.dgx() + r * g + k * hh + j] = v;
                    }
                    out[p.dprev() + at] = dc_total * f;
                }
                CellKind::Gru => {
                    let (rr, z, n, bn) = (saved(0), saved(1), saved(2), saved(3));
                    let da_n = dh * (1.0 - z) * (1.0 - n * n);
                    let da_r = da_n * bn * rr * (1.0 - rr);
                    let da_z = dh * (prev(r, j) - n) * z * (1.0 - z);
                    for (k, v) in [da_r, da_z, da_n].into_iter().enumerate() {
                        out[p.dgx() + r * g + k * hh + j] = v;
                    }
                    for (k, v) in [da_r, da_z, da_n * rr].into_iter().enumerate() {
                        out[p.dgh() + r * g + k * hh + j] = v;
                    }
                    out[p.dprev() + at] = dh * z;
                }
            }
        }
    }
    out
}
