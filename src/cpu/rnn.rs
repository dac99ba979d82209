//! CPU kernels of the fused recurrent cells (`Kernel::RnnCell`, `Kernel::RnnCellGrad`).
//! The equations are in `graph::rnn`, the packed layouts in `graph::Packing`.
//!
//! Each kernel is one pass over the rows: per row, slices of every operand and plain
//! index loops over the hidden units, which the compiler turns into SIMD code. The
//! exponential is a polynomial (Cephes' `expf`, within 2 ulp) rather than libm's, which
//! does not vectorize; sigmoid and tanh are built on it. The row loops are compiled
//! three times, for AVX-512, AVX2+FMA and the baseline, and the best one the processor
//! runs is picked once. Rows are split across threads when there is enough work.

use crate::graph::{CellKind, Packing};
use rayon::prelude::*;

/// Below this many gate values a step runs on one thread.
const PARALLEL_GATES: usize = 1 << 15;

/// Columns `[col, col + width)` of a row-major matrix with `stride` words per row.
#[derive(Clone, Copy, Debug)]
pub struct Cols<'a> {
    pub data: &'a [f32],
    pub stride: usize,
    pub col: usize,
}

impl<'a> Cols<'a> {
    #[inline(always)]
    fn row(&self, r: usize, width: usize) -> &'a [f32] {
        &self.data[r * self.stride + self.col..][..width]
    }
}

/// The recurrent product of a step: absent (zero), one bias row for every row, or a
/// matrix.
#[derive(Clone, Copy, Debug)]
pub enum Gh<'a> {
    None,
    Bias(&'a [f32]),
    Rows(&'a [f32]),
}

const LOG2E: f32 = std::f32::consts::LOG2_E;
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// Adding and subtracting 1.5·2²³ rounds an f32 of magnitude below 2²² to an integer.
const ROUND: f32 = 12_582_912.0;

/// `e^x` within 2 ulp for |x| < 87 (saturating beyond), NaN for NaN. Branch-free so
/// that loops over it vectorize: x = n·ln2 + r with |r| ≤ ln2/2, e^r by Cephes'
/// minimax polynomial, 2^n put straight into the exponent bits.
#[inline(always)]
fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = (((((1.987_569_1e-4 * r + 1.398_2e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r + 0.166_666_65) * r + 0.5) * r * r + r + 1.0;
    p * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

/// tanh with full relative precision near 0 (an odd polynomial below 0.3, as the WGSL
/// `tanh_stable`), and `(1 − e^{−2|x|}) / (1 + e^{−2|x|})` beyond, where there is no
/// cancellation.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let a = x.abs();
    let x2 = x * x;
    let small = a * (1.0 + x2 * (-1.0 / 3.0 + x2 * (2.0 / 15.0 + x2 * (-17.0 / 315.0 + x2 * (62.0 / 2835.0)))));
    let e = exp(-2.0 * a);
    let large = (1.0 - e) / (1.0 + e);
    let t = if a < 0.3 { small } else { large };
    t.copysign(x)
}

/// Per-row operands, already cut to length (zeros stand in for absent ones, so the loops
/// have no branches).
struct LstmFwdRow<'a> {
    zx: &'a [f32],
    zh: &'a [f32],
    c_prev: &'a [f32],
}

#[inline(always)]
fn lstm_forward_row(hh: usize, a: LstmFwdRow, h: &mut [f32], c: &mut [f32], saved: &mut [f32]) {
    let (zx, zh) = (&a.zx[..4 * hh], &a.zh[..4 * hh]);
    let cp = &a.c_prev[..hh];
    let (h, c) = (&mut h[..hh], &mut c[..hh]);
    let (si, rest) = saved[..4 * hh].split_at_mut(hh);
    let (sf, rest) = rest.split_at_mut(hh);
    let (sg, so) = rest.split_at_mut(hh);
    for j in 0..hh {
        let i = sigmoid(zx[j] + zh[j]);
        let f = sigmoid(zx[hh + j] + zh[hh + j]);
        let g = tanh(zx[2 * hh + j] + zh[2 * hh + j]);
        let o = sigmoid(zx[3 * hh + j] + zh[3 * hh + j]);
        let cn = f * cp[j] + i * g;
        c[j] = cn;
        h[j] = o * tanh(cn);
        si[j] = i;
        sf[j] = f;
        sg[j] = g;
        so[j] = o;
    }
}

struct GruFwdRow<'a> {
    zx: &'a [f32],
    zh: &'a [f32],
    h_prev: &'a [f32],
}

#[inline(always)]
fn gru_forward_row(hh: usize, a: GruFwdRow, h: &mut [f32], saved: &mut [f32]) {
    let (zx, zh) = (&a.zx[..3 * hh], &a.zh[..3 * hh]);
    let hp = &a.h_prev[..hh];
    let h = &mut h[..hh];
    let (sr, rest) = saved[..4 * hh].split_at_mut(hh);
    let (sz, rest) = rest.split_at_mut(hh);
    let (sn, sb) = rest.split_at_mut(hh);
    for j in 0..hh {
        let r = sigmoid(zx[j] + zh[j]);
        let z = sigmoid(zx[hh + j] + zh[hh + j]);
        let bn = zh[2 * hh + j];
        let n = tanh(zx[2 * hh + j] + r * bn);
        h[j] = (1.0 - z) * n + z * hp[j];
        sr[j] = r;
        sz[j] = z;
        sn[j] = n;
        sb[j] = bn;
    }
}

struct LstmBwdRow<'a> {
    dh0: &'a [f32],
    dh1: &'a [f32],
    dc: &'a [f32],
    c: &'a [f32],
    saved: &'a [f32],
    c_prev: &'a [f32],
}

#[inline(always)]
fn lstm_backward_row(hh: usize, a: LstmBwdRow, dz: &mut [f32], dc_prev: &mut [f32]) {
    let (dh0, dh1, dcn, c, cp) = (&a.dh0[..hh], &a.dh1[..hh], &a.dc[..hh], &a.c[..hh], &a.c_prev[..hh]);
    let s = &a.saved[..4 * hh];
    let (dzi, rest) = dz[..4 * hh].split_at_mut(hh);
    let (dzf, rest) = rest.split_at_mut(hh);
    let (dzg, dzo) = rest.split_at_mut(hh);
    let dcp = &mut dc_prev[..hh];
    for j in 0..hh {
        let (i, f, g, o) = (s[j], s[hh + j], s[2 * hh + j], s[3 * hh + j]);
        let dh = dh0[j] + dh1[j];
        let tc = tanh(c[j]);
        let dct = dcn[j] + dh * o * (1.0 - tc * tc);
        dzi[j] = dct * g * i * (1.0 - i);
        dzf[j] = dct * cp[j] * f * (1.0 - f);
        dzg[j] = dct * i * (1.0 - g * g);
        dzo[j] = dh * tc * o * (1.0 - o);
        dcp[j] = dct * f;
    }
}

struct GruBwdRow<'a> {
    dh0: &'a [f32],
    dh1: &'a [f32],
    saved: &'a [f32],
    h_prev: &'a [f32],
}

#[inline(always)]
fn gru_backward_row(hh: usize, a: GruBwdRow, dgx: &mut [f32], dgh: &mut [f32], dh_prev: &mut [f32]) {
    let (dh0, dh1, hp) = (&a.dh0[..hh], &a.dh1[..hh], &a.h_prev[..hh]);
    let s = &a.saved[..4 * hh];
    let (xr, rest) = dgx[..3 * hh].split_at_mut(hh);
    let (xz, xn) = rest.split_at_mut(hh);
    let (hr, rest) = dgh[..3 * hh].split_at_mut(hh);
    let (hz, hn) = rest.split_at_mut(hh);
    let dhp = &mut dh_prev[..hh];
    for j in 0..hh {
        let (r, z, n, bn) = (s[j], s[hh + j], s[2 * hh + j], s[3 * hh + j]);
        let dh = dh0[j] + dh1[j];
        let dan = dh * (1.0 - z) * (1.0 - n * n);
        let dar = dan * bn * r * (1.0 - r);
        let daz = dh * (hp[j] - n) * z * (1.0 - z);
        xr[j] = dar;
        xz[j] = daz;
        xn[j] = dan;
        hr[j] = dar;
        hz[j] = daz;
        hn[j] = dan * r;
        dhp[j] = dh * z;
    }
}

/// Splits a packed output into `chunks` blocks of `chunk_rows` rows, each the row
/// range's part of every plane (planes of `widths[k]` words per row, back to back).
fn split_planes<'a>(out: &'a mut [f32], rows: usize, widths: &[usize], chunk_rows: usize) -> Vec<Vec<&'a mut [f32]>> {
    let mut per_plane: Vec<Vec<&'a mut [f32]>> = Vec::new();
    let mut rest = out;
    for &w in widths {
        let (plane, tail) = rest.split_at_mut(rows * w);
        rest = tail;
        per_plane.push(plane.chunks_mut(chunk_rows * w).collect());
    }
    let chunks = rows.div_ceil(chunk_rows);
    let mut out: Vec<Vec<&'a mut [f32]>> = (0..chunks).map(|_| Vec::with_capacity(widths.len())).collect();
    for plane in per_plane {
        for (k, part) in plane.into_iter().enumerate() {
            out[k].push(part);
        }
    }
    out
}

/// Runs `body(first_row, row_count, planes)` over row chunks, in parallel when the step
/// is large enough.
fn for_row_chunks(out: &mut [f32], rows: usize, widths: &[usize], work: usize, body: impl Fn(usize, usize, &mut [&mut [f32]]) + Sync) {
    let threads = if work >= PARALLEL_GATES { rayon::current_num_threads().min(rows).max(1) } else { 1 };
    let chunk_rows = rows.div_ceil(threads);
    let chunks = split_planes(out, rows, widths, chunk_rows);
    if chunks.len() == 1 {
        let mut planes = chunks.into_iter().next().expect("one chunk");
        body(0, rows, &mut planes);
    } else {
        chunks.into_par_iter().enumerate().for_each(|(k, mut planes)| {
            let first = k * chunk_rows;
            body(first, chunk_rows.min(rows - first), &mut planes)
        });
    }
}

/// Which instruction set the row loops are compiled for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Isa {
    Baseline,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Avx512,
}

fn isa() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        static ISA: std::sync::OnceLock<Isa> = std::sync::OnceLock::new();
        *ISA.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vl") && is_x86_feature_detected!("fma") {
                Isa::Avx512
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                Isa::Avx2
            } else {
                Isa::Baseline
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    Isa::Baseline
}

/// Defines `$name(isa, args)`, which runs the `#[inline(always)]` `$body` compiled for
/// the instruction set given.
macro_rules! multiversion {
    ($name:ident, $body:ident, ($($arg:ident: $ty:ty),*)) => {
        fn $name(isa: Isa, $($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx512vl,avx2,fma")]
            unsafe fn avx512($($arg: $ty),*) {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            unsafe fn avx2($($arg: $ty),*) {
                $body($($arg),*)
            }
            match isa {
                // SAFETY: `isa()` picked these only where the processor has the features.
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => unsafe { avx2($($arg),*) },
                Isa::Baseline => $body($($arg),*),
            }
        }
    };
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
fn lstm_forward_rows_body(hh: usize, first: usize, count: usize, gx: Cols, gh: Gh, prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]) {
    let [h, c, saved] = planes else { unreachable!("three planes") };
    for k in 0..count {
        let r = first + k;
        let row = LstmFwdRow { zx: gx.row(r, 4 * hh), zh: gh_row(gh, r, 4 * hh, zeros), c_prev: row_or(prev, r, hh, zeros) };
        lstm_forward_row(hh, row, &mut h[k * hh..], &mut c[k * hh..], &mut saved[k * 4 * hh..]);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_forward_rows_body(hh: usize, first: usize, count: usize, gx: Cols, gh: Gh, prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]) {
    let [h, saved] = planes else { unreachable!("two planes") };
    for k in 0..count {
        let r = first + k;
        let row = GruFwdRow { zx: gx.row(r, 3 * hh), zh: gh_row(gh, r, 3 * hh, zeros), h_prev: row_or(prev, r, hh, zeros) };
        gru_forward_row(hh, row, &mut h[k * hh..], &mut saved[k * 4 * hh..]);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn lstm_backward_rows_body(hh: usize, first: usize, count: usize, dh: [Option<Cols>; 2], dc: Option<&[f32]>, state: &[f32], prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]) {
    let [dz, dcp] = planes else { unreachable!("two planes") };
    let p = Packing::new(CellKind::Lstm, state.len() / (6 * hh), hh);
    for k in 0..count {
        let r = first + k;
        let row = LstmBwdRow {
            dh0: cols_or(dh[0], r, hh, zeros),
            dh1: cols_or(dh[1], r, hh, zeros),
            dc: row_or(dc, r, hh, zeros),
            c: &state[p.c() + r * hh..][..hh],
            saved: &state[p.saved() + r * 4 * hh..][..4 * hh],
            c_prev: row_or(prev, r, hh, zeros),
        };
        lstm_backward_row(hh, row, &mut dz[k * 4 * hh..], &mut dcp[k * hh..]);
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn gru_backward_rows_body(hh: usize, first: usize, count: usize, dh: [Option<Cols>; 2], state: &[f32], prev: Option<&[f32]>, zeros: &[f32], planes: &mut [&mut [f32]]) {
    let [dgx, dgh, dhp] = planes else { unreachable!("three planes") };
    let p = Packing::new(CellKind::Gru, state.len() / (5 * hh), hh);
    for k in 0..count {
        let r = first + k;
        let row = GruBwdRow {
            dh0: cols_or(dh[0], r, hh, zeros),
            dh1: cols_or(dh[1], r, hh, zeros),
            saved: &state[p.saved() + r * 4 * hh..][..4 * hh],
            h_prev: row_or(prev, r, hh, zeros),
        };
        gru_backward_row(hh, row, &mut dgx[k * 3 * hh..], &mut dgh[k * 3 * hh..], &mut dhp[k * hh..]);
    }
}

/// One fused recurrent step: `out` is packed as `Packing::new(kind, rows, hidden)`.
#[allow(clippy::too_many_arguments)]
pub fn cell_forward(kind: CellKind, rows: usize, hidden: usize, gx: Cols, gh: Gh, prev: Option<&[f32]>, out: &mut [f32]) {
    let p = Packing::new(kind, rows, hidden);
    let zeros = vec![0.0f32; 4 * hidden];
    let isa = isa();
    let work = rows * hidden * kind.gates();
    let out = &mut out[..p.state_len()];
    match kind {
        CellKind::Lstm => for_row_chunks(out, rows, &[hidden, hidden, 4 * hidden], work, |first, count, planes| {
            lstm_forward_rows(isa, hidden, first, count, gx, gh, prev, &zeros, planes)
        }),
        CellKind::Gru => for_row_chunks(out, rows, &[hidden, 4 * hidden], work, |first, count, planes| {
            gru_forward_rows(isa, hidden, first, count, gx, gh, prev, &zeros, planes)
        }),
    }
}

/// The backward of one step: `dh` windows are summed; `state` is the cell's packed
/// output; `out` is packed (`Packing::grad_len`).
#[allow(clippy::too_many_arguments)]
pub fn cell_backward(kind: CellKind, rows: usize, hidden: usize, dh: [Option<Cols>; 2], dc: Option<&[f32]>, state: &[f32], prev: Option<&[f32]>, out: &mut [f32]) {
    let p = Packing::new(kind, rows, hidden);
    let zeros = vec![0.0f32; hidden];
    let isa = isa();
    let work = rows * hidden * kind.gates();
    let out = &mut out[..p.grad_len()];
    let state = &state[..p.state_len()];
    match kind {
        CellKind::Lstm => for_row_chunks(out, rows, &[4 * hidden, hidden], work, |first, count, planes| {
            lstm_backward_rows(isa, hidden, first, count, dh, dc, state, prev, &zeros, planes)
        }),
        CellKind::Gru => for_row_chunks(out, rows, &[3 * hidden, 3 * hidden, hidden], work, |first, count, planes| {
            gru_backward_rows(isa, hidden, first, count, dh, state, prev, &zeros, planes)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_sigmoid_and_tanh_are_accurate_across_the_range() {
        let mut x = -100.0f32;
        while x <= 100.0 {
            let e = (x as f64).exp();
            if (-87.0..=88.0).contains(&x) {
                let rel = ((exp(x) as f64 - e) / e).abs();
                assert!(rel < 3e-7, "exp({x}): {} vs {e}", exp(x));
            }
            let s = 1.0 / (1.0 + (-(x as f64)).exp());
            assert!(((sigmoid(x) as f64 - s) / s.max(1e-30)).abs() < 1e-6 || (sigmoid(x) as f64 - s).abs() < 1e-37, "sigmoid({x})");
            let t = (x as f64).tanh();
            assert!((tanh(x) as f64 - t).abs() <= 1e-6 * t.abs().max(1e-30) + 1e-37 || (tanh(x) as f64 - t).abs() < 2e-7, "tanh({x}): {} vs {t}", tanh(x));
            x += 0.0137;
        }
        for &tiny in &[1e-8f32, -3e-5, 0.299, -0.3, 0.301] {
            let t = (tiny as f64).tanh();
            assert!(((tanh(tiny) as f64 - t) / t).abs() < 1e-6, "tanh({tiny})");
        }
        assert!(exp(f32::NAN).is_nan() && sigmoid(f32::NAN).is_nan() && tanh(f32::NAN).is_nan());
        assert_eq!(sigmoid(-200.0), 0.0f32.max(sigmoid(-200.0)));
        assert_eq!(tanh(50.0), 1.0);
    }
}
