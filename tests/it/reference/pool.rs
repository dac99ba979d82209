//! Pooling and the batched transpose in f64 (`engine::ops::pool`), written as the
//! definitions read: one loop per index.

use super::conv::tap;
use riskgrad::engine::graph::{PoolGeom, PoolOp};

/// The value of a node of `op` with inputs `x` of shapes `in_shapes` and output `shape`.
pub fn evaluate(op: &PoolOp, x: &[&Vec<f64>], in_shapes: &[&[usize]], shape: &[usize]) -> Vec<f64> {
    let s = in_shapes[0];
    match *op {
        PoolOp::Transpose => {
            let r = s.len();
            transpose(x[0], s[..r - 2].iter().product(), s[r - 2], s[r - 1])
        }
        PoolOp::MaxPoolArgmax { geom } => max_pool_argmax(x[0], s, shape, &geom),
        PoolOp::PoolGather => pool_gather(x[0], x[1], s[0] * s[1], s[2] * s[3]),
        PoolOp::MaxPoolGrad { .. } => {
            max_pool_grad(x[0], x[1], shape[0] * shape[1], shape[2] * shape[3])
        }
        PoolOp::AvgPool { geom } => avg_pool(x[0], s, shape, &geom),
        PoolOp::AvgPoolGrad { geom } => avg_pool_grad(x[0], shape, s, &geom),
    }
}

/// `y[b, j, i] = x[b, i, j]` for x `[batch, rows, cols]`.
pub fn transpose(x: &[f64], batch: usize, rows: usize, cols: usize) -> Vec<f64> {
    let mut y = vec![0.0; x.len()];
    for b in 0..batch {
        for i in 0..rows {
            for j in 0..cols {
                y[(b * cols + j) * rows + i] = x[(b * rows + i) * cols + j];
            }
        }
    }
    y
}

/// For each window (in output order), the positions of x it covers, row-major.
fn windows(xs: &[usize], ys: &[usize], g: &PoolGeom) -> Vec<Vec<usize>> {
    let (h, w) = (xs[2], xs[3]);
    let mut out = Vec::new();
    for yh in 0..ys[2] {
        for yw in 0..ys[3] {
            let mut cells = Vec::new();
            for th in 0..g.kernel[0] {
                for tw in 0..g.kernel[1] {
                    if let (Some(ih), Some(iw)) = (
                        tap(yh, th, g.stride[0], g.padding[0], 1, h),
                        tap(yw, tw, g.stride[1], g.padding[1], 1, w),
                    ) {
                        cells.push(ih * w + iw);
                    }
                }
            }
            out.push(cells);
        }
    }
    out
}

/// Position (within its plane) of the first maximum of each window.
pub fn max_pool_argmax(x: &[f64], xs: &[usize], ys: &[usize], g: &PoolGeom) -> Vec<f64> {
    let planes = xs[0] * xs[1];
    let plane = xs[2] * xs[3];
    let wins = windows(xs, ys, g);
    let mut idx = Vec::with_capacity(planes * wins.len());
    for p in 0..planes {
        for cells in &wins {
            let mut best = cells[0];
            for &q in &cells[1..] {
                if x[p * plane + q] > x[p * plane + best] {
                    best = q;
                }
            }
            idx.push(best as f64);
        }
    }
    idx
}

/// `y[p, i] = x[p, idx[p, i]]` for each plane p.
pub fn pool_gather(x: &[f64], idx: &[f64], planes: usize, in_plane: usize) -> Vec<f64> {
    let out_plane = idx.len() / planes;
    (0..idx.len())
        .map(|i| x[(i / out_plane) * in_plane + idx[i] as usize])
        .collect()
}

/// `dx[p, idx[p, i]] += dy[p, i]`.
pub fn max_pool_grad(dy: &[f64], idx: &[f64], planes: usize, in_plane: usize) -> Vec<f64> {
    let out_plane = idx.len() / planes;
    let mut dx = vec![0.0; planes * in_plane];
    for i in 0..idx.len() {
        dx[(i / out_plane) * in_plane + idx[i] as usize] += dy[i];
    }
    dx
}

/// The sum of each window divided by the window's full size.
pub fn avg_pool(x: &[f64], xs: &[usize], ys: &[usize], g: &PoolGeom) -> Vec<f64> {
    let (planes, plane) = (xs[0] * xs[1], xs[2] * xs[3]);
    let size = (g.kernel[0] * g.kernel[1]) as f64;
    let wins = windows(xs, ys, g);
    let mut y = Vec::with_capacity(planes * wins.len());
    for p in 0..planes {
        for cells in &wins {
            y.push(cells.iter().map(|&q| x[p * plane + q]).sum::<f64>() / size);
        }
    }
    y
}

/// Each window sends `dy / window size` to every cell of x it covers.
pub fn avg_pool_grad(dy: &[f64], xs: &[usize], ys: &[usize], g: &PoolGeom) -> Vec<f64> {
    let (planes, plane) = (xs[0] * xs[1], xs[2] * xs[3]);
    let size = (g.kernel[0] * g.kernel[1]) as f64;
    let wins = windows(xs, ys, g);
    let mut dx = vec![0.0; planes * plane];
    for p in 0..planes {
        for (i, cells) in wins.iter().enumerate() {
            for &q in cells {
                dx[p * plane + q] += dy[p * wins.len() + i] / size;
            }
        }
    }
    dx
}
