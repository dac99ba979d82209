//! CPU kernels of the fused recurrent cells (`RnnKernel::RnnCell`, `RnnKernel::RnnCellGrad`).
//! The equations are in `ops::rnn`, the packed layouts in `ops::rnn::Packing`.
//!
//! Each kernel is one pass over the rows: per row, slices of every operand and plain
//! index loops over the hidden units, which the compiler turns into SIMD code (sigmoid
//! and tanh are `approx`'s polynomials, which vectorize, where libm's do not). The row
//! loops are compiled three times, for AVX-512, AVX2+FMA and the baseline, and the best
//! one the processor runs is picked once. Rows are split across threads when there is
//! enough work.

use super::approx::{sigmoid, tanh};
use super::lanes::Lanes;
use super::simd::{isa, multiversion, MulAdd};
use crate::engine::graph::{CellKind, Packing};
use rayon::prelude::*;

/// Below this many gate values a step runs on one thread.
const PARALLEL_GATES: usize = 1 << 15;

/// Columns `[col, col + width)` of a row-major matrix with `stride` words per row.
#[derive(Clone, Copy, Debug)]
pub struct Cols<'a> {
    /// The whole matrix.
    pub data: &'a [f32],
    /// Words per row.
    pub stride: usize,
    /// First column of the window.
    pub col: usize,
}

impl<'a> Cols<'a> {
    #[inline(always)]
    fn row(&self, r: usize, width: usize) -> &'a [f32] {
        &self.data[r * self.stride + self.col..][..width]
    }

    /// Prefetches row `r`'s window, if there is such a row. A window of a wide matrix
    /// (a step's gate inputs among all steps') starts a whole matrix row after the last
    /// one, where the hardware prefetcher does not look: without this hint perf put 18%
    /// of the LSTM forward cell's samples on the first load of each row.
    #[inline(always)]
    fn prefetch_row(&self, r: usize, width: usize) {
        if let Some(row) = self
            .data
            .get(r * self.stride + self.col..)
            .and_then(|rest| rest.get(..width))
        {
            super::simd::prefetch(row);
        }
    }
}

/// The recurrent product of a step: absent (zero), one bias row for every row, or a
/// matrix.
#[derive(Clone, Copy, Debug)]
pub enum Gh<'a> {
    /// No recurrent product (the first step from a zero state).
    None,
    /// One row of `G` values added to every row.
    Bias(&'a [f32]),
    /// A `[rows, G]` matrix.
    Rows(&'a [f32]),
}

/// Units per block: the row loops load operands into local arrays of this many SIMD lanes,
/// compute on them and store the results. With only locals in the arithmetic, the
/// compiler vectorizes it without run-time aliasing checks between the many streams.
const L: usize = 16;
type Block = [f32; L];

/// `src[j..j + n]`, zero-padded to a block.
#[inline(always)]
fn ld(src: &[f32], j: usize, n: usize) -> Block {
    if n == L {
        src[j..j + L].try_into().expect("a whole block")
    } else {
        let mut a = [0.0; L];
        a[..n].copy_from_slice(&src[j..j + n]);
        a
    }
}

#[inline(always)]
fn st(dst: &mut [f32], j: usize, n: usize, a: &Block) {
    if n == L {
        dst[j..j + L].copy_from_slice(a);
    } else {
        dst[j..j + n].copy_from_slice(&a[..n]);
    }
}

/// `x[at..] + y[at..]` for one block (a function, not a closure: closures are not
/// always inlined into the instruction-set-specific copies, and a call costs more than
/// the block's arithmetic).
#[inline(always)]
fn sum2(x: &[f32], y: &[f32], at: usize, n: usize) -> Block {
    zip(ld(x, at, n), ld(y, at, n), |a, b| a + b)
}

/// A block whose lane `k` is `$e` (a plain loop: `std::array::from_fn` is not always
/// inlined into the instruction-set-specific copies).
macro_rules! lanes {
    (|$k:ident| $e:expr) => {{
        let mut out: Block = [0.0; L];
        for $k in 0..L {
            out[$k] = $e;
        }
        out
    }};
}

/// Lane-wise `f` of one or two blocks.
#[inline(always)]
fn map(a: Block, f: impl Fn(f32) -> f32) -> Block {
    lanes!(|k| f(a[k]))
}

#[inline(always)]
fn zip(a: Block, b: Block, f: impl Fn(f32, f32) -> f32) -> Block {
    lanes!(|k| f(a[k], b[k]))
}

/// Per-row operands, already cut to length (zeros stand in for absent ones, so the loops
/// have no branches).
struct LstmFwdRow<'a> {
    zx: &'a [f32],
    zh: &'a [f32],
    c_prev: &'a [f32],
}

#[inline(always)]
fn lstm_forward_row<M: MulAdd>(
    hh: usize,
    a: LstmFwdRow,
    h: &mut [f32],
    c: &mut [f32],
    saved: &mut [f32],
    tanh_c: &mut [f32],
) {
    for j in (0..hh).step_by(L) {
        let n = (hh - j).min(L);
        // Each gate is saved as soon as it is computed (fewer blocks live at once).
        let i = map(sum2(a.zx, a.zh, j, n), sigmoid::<M>);
        st(saved, j, n, &i);
        let f = map(sum2(a.zx, a.zh, hh + j, n), sigmoid::<M>);
        st(saved, hh + j, n, &f);
        let g = map(sum2(a.zx, a.zh, 2 * hh + j, n), tanh::<M>);
        st(saved, 2 * hh + j, n, &g);
        let o = map(sum2(a.zx, a.zh, 3 * hh + j, n), sigmoid::<M>);
        st(saved, 3 * hh + j, n, &o);
        let cp = ld(a.c_prev, j, n);
        let cn: Block = lanes!(|k| f[k] * cp[k] + i[k] * g[k]);
        let tc = map(cn, tanh::<M>);
        st(c, j, n, &cn);
        st(tanh_c, j, n, &tc);
        st(h, j, n, &zip(o, tc, |o, t| o * t));
    }
}

struct GruFwdRow<'a> {
    zx: &'a [f32],
    zh: &'a [f32],
    h_prev: &'a [f32],
}

#[inline(always)]
fn gru_forward_row<M: MulAdd>(hh: usize, a: GruFwdRow, h: &mut [f32], saved: &mut [f32]) {
    for j in (0..hh).step_by(L) {
        let n = (hh - j).min(L);
        let r = map(sum2(a.zx, a.zh, j, n), sigmoid::<M>);
        st(saved, j, n, &r);
        let z = map(sum2(a.zx, a.zh, hh + j, n), sigmoid::<M>);
        st(saved, hh + j, n, &z);
        let bn = ld(a.zh, 2 * hh + j, n);
        st(saved, 3 * hh + j, n, &bn);
        let xn = ld(a.zx, 2 * hh + j, n);
        let nn: Block = lanes!(|k| tanh::<M>(xn[k] + r[k] * bn[k]));
        st(saved, 2 * hh + j, n, &nn);
        let hp = ld(a.h_prev, j, n);
        let hn: Block = lanes!(|k| (1.0 - z[k]) * nn[k] + z[k] * hp[k]);
        st(h, j, n, &hn);
    }
}

struct LstmBwdRow<'a> {
    dh0: &'a [f32],
    dh1: &'a [f32],
    dc: &'a [f32],
    tanh_c: &'a [f32],
    saved: &'a [f32],
    c_prev: &'a [f32],
}

#[inline(always)]
fn lstm_backward_row<M: MulAdd>(hh: usize, a: LstmBwdRow, dz: &mut [f32], dc_prev: &mut [f32]) {
    for j in (0..hh).step_by(L) {
        let n = (hh - j).min(L);
        let (i, f, g, o) = (
            ld(a.saved, j, n),
            ld(a.saved, hh + j, n),
            ld(a.saved, 2 * hh + j, n),
            ld(a.saved, 3 * hh + j, n),
        );
        let dh = sum2(a.dh0, a.dh1, j, n);
        let tc = ld(a.tanh_c, j, n);
        let dcn = ld(a.dc, j, n);
        let cp = ld(a.c_prev, j, n);
        let dct: Block = lanes!(|k| dcn[k] + dh[k] * o[k] * (1.0 - tc[k] * tc[k]));
        let dzi: Block = lanes!(|k| dct[k] * g[k] * i[k] * (1.0 - i[k]));
        let dzf: Block = lanes!(|k| dct[k] * cp[k] * f[k] * (1.0 - f[k]));
        let dzg: Block = lanes!(|k| dct[k] * i[k] * (1.0 - g[k] * g[k]));
        let dzo: Block = lanes!(|k| dh[k] * tc[k] * o[k] * (1.0 - o[k]));
        for (k, v) in [dzi, dzf, dzg, dzo].iter().enumerate() {
            st(dz, k * hh + j, n, v);
        }
        st(dc_prev, j, n, &zip(dct, f, |d, f| d * f));
    }
}

struct GruBwdRow<'a> {
    dh0: &'a [f32],
    dh1: &'a [f32],
    saved: &'a [f32],
    h_prev: &'a [f32],
}

#[inline(always)]
fn gru_backward_row<M: MulAdd>(
    hh: usize,
    a: GruBwdRow,
    dgx: &mut [f32],
    dgh: &mut [f32],
    dh_prev: &mut [f32],
) {
    for j in (0..hh).step_by(L) {
        let n = (hh - j).min(L);
        let (r, z, nn, bn) = (
            ld(a.saved, j, n),
            ld(a.saved, hh + j, n),
            ld(a.saved, 2 * hh + j, n),
            ld(a.saved, 3 * hh + j, n),
        );
        let dh = sum2(a.dh0, a.dh1, j, n);
        let hp = ld(a.h_prev, j, n);
        let dan: Block = lanes!(|k| dh[k] * (1.0 - z[k]) * (1.0 - nn[k] * nn[k]));
        let dar: Block = lanes!(|k| dan[k] * bn[k] * r[k] * (1.0 - r[k]));
        let daz: Block = lanes!(|k| dh[k] * (hp[k] - nn[k]) * z[k] * (1.0 - z[k]));
        st(dgx, j, n, &dar);
        st(dgx, hh + j, n, &daz);
        st(dgx, 2 * hh + j, n, &dan);
        st(dgh, j, n, &dar);
        st(dgh, hh + j, n, &daz);
        st(dgh, 2 * hh + j, n, &zip(dan, r, |d, r| d * r));
        st(dh_prev, j, n, &zip(dh, z, |d, z| d * z));
    }
}

/// Splits a packed output into `chunks` blocks of `chunk_rows` rows, each the row
/// range's part of every plane (planes of `widths[k]` words per row, back to back).
fn split_planes<'a>(
    out: &'a mut [f32],
    rows: usize,
    widths: &[usize],
    chunk_rows: usize,
) -> Vec<Vec<&'a mut [f32]>> {
    let mut per_plane: Vec<Vec<&'a mut [f32]>> = Vec::new();
    let mut rest = out;
    for &w in widths {
        let (plane, tail) = rest.split_at_mut(rows * w);
        rest = tail;
        per_plane.push(plane.chunks_mut(chunk_rows * w).collect());
    }
    let chunks = rows.div_ceil(chunk_rows);
    let mut out: Vec<Vec<&'a mut [f32]>> = (0..chunks)
        .map(|_| Vec::with_capacity(widths.len()))
        .collect();
    for plane in per_plane {
        for (k, part) in plane.into_iter().enumerate() {
            out[k].push(part);
        }
    }
    out
}

/// Runs `body(first_row, row_count, planes)` over the rows: when the step is large
/// enough, in one chunk per lane while the lanes split, or per thread of the pool.
fn for_row_chunks(
    out: &mut [f32],
    rows: usize,
    widths: &[usize],
    work: usize,
    lanes: &Lanes,
    body: impl Fn(usize, usize, &mut [&mut [f32]]) + Sync,
) {
    let threads = if work < PARALLEL_GATES {
        1
    } else if lanes.splitting() {
        lanes.count()
    } else {
        rayon::current_num_threads()
    };
    let chunk_rows = rows.div_ceil(threads.min(rows).max(1)).max(1);
    let mut chunks = split_planes(out, rows, widths, chunk_rows);
    if chunks.len() == 1 {
        return body(0, rows, &mut chunks[0]);
    }
    let run = |k: usize, planes: &mut Vec<&mut [f32]>| {
        let first = k * chunk_rows;
        body(first, chunk_rows.min(rows - first), planes)
    };
    if lanes.splitting() {
        return lanes.split_chunks(&mut chunks, 1, |k, planes| run(k, &mut planes[0]));
    }
    chunks
        .into_par_iter()
        .enumerate()
        .for_each(|(k, mut planes)| run(k, &mut planes));
}

multiversion!(lstm_forward_rows, lstm_forward_rows_body, (hh: usize, first: usize, count: usize, gx: Cols, gh: Gh, prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]));
multiversion!(gru_forward_rows, gru_forward_rows_body, (hh: usize, first: usize, count: usize, gx: Cols, gh: Gh, prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]));
multiversion!(lstm_backward_rows, lstm_backward_rows_body, (hh: usize, first: usize, count: usize, dh: [Option<Cols>; 2], dc: Option<&[f32]>, state: &[f32], prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]));
multiversion!(gru_backward_rows, gru_backward_rows_body, (hh: usize, first: usize, count: usize, dh: [Option<Cols>; 2], state: &[f32], prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]));

#[inline(always)]
fn gh_row<'a>(gh: Gh<'a>, r: usize, width: usize, zeros: &'a [f32]) -> &'a [f32] {
    match gh {
        Gh::None => &zeros[..width],
        Gh::Bias(b) => &b[..width],
        Gh::Rows(m) => &m[r * width..][..width],
    }
}

#[inline(always)]
fn row_or<'a>(m: Option<&'a [f32]>, r: usize, width: usize, zeros: &'a [f32]) -> &'a [f32] {
    match m {
        Some(m) => &m[r * width..][..width],
        None => &zeros[..width],
    }
}

#[inline(always)]
fn cols_or<'a>(m: Option<Cols<'a>>, r: usize, width: usize, zeros: &'a [f32]) -> &'a [f32] {
    match m {
        Some(m) => m.row(r, width),
        None => &zeros[..width],
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_forward_rows_body<M: MulAdd>(
    hh: usize,
    first: usize,
    count: usize,
    gx: Cols,
    gh: Gh,
    prev: Option<&[f32]>,
    zeros: &[f32],
    planes: &mut [&mut [f32]],
) {
    let [h, c, saved, tanh_c] = planes else {
        unreachable!("four planes")
    };
    for k in 0..count {
        let r = first + k;
        gx.prefetch_row(r + 1, 4 * hh);
        let row = LstmFwdRow {
            zx: gx.row(r, 4 * hh),
            zh: gh_row(gh, r, 4 * hh, zeros),
            c_prev: row_or(prev, r, hh, zeros),
        };
        lstm_forward_row::<M>(
            hh,
            row,
            &mut h[k * hh..],
            &mut c[k * hh..],
            &mut saved[k * 4 * hh..],
            &mut tanh_c[k * hh..],
        );
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_forward_rows_body<M: MulAdd>(
    hh: usize,
    first: usize,
    count: usize,
    gx: Cols,
    gh: Gh,
    prev: Option<&[f32]>,
    zeros: &[f32],
    planes: &mut [&mut [f32]],
) {
    let [h, saved] = planes else {
        unreachable!("two planes")
    };
    for k in 0..count {
        let r = first + k;
        gx.prefetch_row(r + 1, 3 * hh);
        let row = GruFwdRow {
            zx: gx.row(r, 3 * hh),
            zh: gh_row(gh, r, 3 * hh, zeros),
            h_prev: row_or(prev, r, hh, zeros),
        };
        gru_forward_row::<M>(hh, row, &mut h[k * hh..], &mut saved[k * 4 * hh..]);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_backward_rows_body<M: MulAdd>(
    hh: usize,
    first: usize,
    count: usize,
    dh: [Option<Cols>; 2],
    dc: Option<&[f32]>,
    state: &[f32],
    prev: Option<&[f32]>,
    zeros: &[f32],
    planes: &mut [&mut [f32]],
) {
    let [dz, dcp] = planes else {
        unreachable!("two planes")
    };
    let p = Packing::new(CellKind::Lstm, state.len() / (7 * hh), hh);
    for k in 0..count {
        let r = first + k;
        dh.iter().flatten().for_each(|w| w.prefetch_row(r + 1, hh));
        let row = LstmBwdRow {
            dh0: cols_or(dh[0], r, hh, zeros),
            dh1: cols_or(dh[1], r, hh, zeros),
            dc: row_or(dc, r, hh, zeros),
            tanh_c: &state[p.tanh_c() + r * hh..][..hh],
            saved: &state[p.saved() + r * 4 * hh..][..4 * hh],
            c_prev: row_or(prev, r, hh, zeros),
        };
        lstm_backward_row::<M>(hh, row, &mut dz[k * 4 * hh..], &mut dcp[k * hh..]);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_backward_rows_body<M: MulAdd>(
    hh: usize,
    first: usize,
    count: usize,
    dh: [Option<Cols>; 2],
    state: &[f32],
    prev: Option<&[f32]>,
    zeros: &[f32],
    planes: &mut [&mut [f32]],
) {
    let [dgx, dgh, dhp] = planes else {
        unreachable!("three planes")
    };
    let p = Packing::new(CellKind::Gru, state.len() / (5 * hh), hh);
    for k in 0..count {
        let r = first + k;
        dh.iter().flatten().for_each(|w| w.prefetch_row(r + 1, hh));
        let row = GruBwdRow {
            dh0: cols_or(dh[0], r, hh, zeros),
            dh1: cols_or(dh[1], r, hh, zeros),
            saved: &state[p.saved() + r * 4 * hh..][..4 * hh],
            h_prev: row_or(prev, r, hh, zeros),
        };
        gru_backward_row::<M>(
            hh,
            row,
            &mut dgx[k * 3 * hh..],
            &mut dgh[k * 3 * hh..],
            &mut dhp[k * hh..],
        );
    }
}

/// One fused recurrent step: `out` is packed as `Packing::new(kind, rows, hidden)`.
/// Large steps are split in two halves of the rows, one per lane.
#[allow(clippy::too_many_arguments)]
pub fn rnn_cell(
    kind: CellKind,
    rows: usize,
    hidden: usize,
    gx: Cols,
    gh: Gh,
    prev: Option<&[f32]>,
    out: &mut [f32],
    lanes: &Lanes,
) {
    let p = Packing::new(kind, rows, hidden);
    let zeros = vec![0.0f32; 4 * hidden];
    let isa = isa();
    let work = rows * hidden * kind.gates();
    let out = &mut out[..p.state_len()];
    match kind {
        CellKind::Lstm => for_row_chunks(
            out,
            rows,
            &[hidden, hidden, 4 * hidden, hidden],
            work,
            lanes,
            |first, count, planes| {
                lstm_forward_rows(isa, hidden, first, count, gx, gh, prev, &zeros, planes)
            },
        ),
        CellKind::Gru => for_row_chunks(
            out,
            rows,
            &[hidden, 4 * hidden],
            work,
            lanes,
            |first, count, planes| {
                gru_forward_rows(isa, hidden, first, count, gx, gh, prev, &zeros, planes)
            },
        ),
    }
}

/// The backward of one step: `dh` windows are summed; `state` is the cell's packed
/// output; `out` is packed (`Packing::grad_len`).
#[allow(clippy::too_many_arguments)]
pub fn rnn_cell_grad(
    kind: CellKind,
    rows: usize,
    hidden: usize,
    dh: [Option<Cols>; 2],
    dc: Option<&[f32]>,
    state: &[f32],
    prev: Option<&[f32]>,
    out: &mut [f32],
    lanes: &Lanes,
) {
    let p = Packing::new(kind, rows, hidden);
    let zeros = vec![0.0f32; hidden];
    let isa = isa();
    let work = rows * hidden * kind.gates();
    let out = &mut out[..p.grad_len()];
    let state = &state[..p.state_len()];
    match kind {
        CellKind::Lstm => for_row_chunks(
            out,
            rows,
            &[4 * hidden, hidden],
            work,
            lanes,
            |first, count, planes| {
                lstm_backward_rows(
                    isa, hidden, first, count, dh, dc, state, prev, &zeros, planes,
                )
            },
        ),
        CellKind::Gru => for_row_chunks(
            out,
            rows,
            &[3 * hidden, 3 * hidden, hidden],
            work,
            lanes,
            |first, count, planes| {
                gru_backward_rows(isa, hidden, first, count, dh, state, prev, &zeros, planes)
            },
        ),
    }
}
