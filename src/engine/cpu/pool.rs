//! Pooling and the batched transpose on the CPU: one pass per output, windows scanned in
//! row-major order (which fixes the argmax on ties, and the order of every sum).

use crate::engine::ops::pool::PoolShape;

/// The input rows (or columns) `[lo, hi)` window `o` covers along one axis.
#[inline]
fn span(o: usize, kernel: usize, stride: usize, padding: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - padding as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + kernel as isize).max(0) as usize).min(len);
    (lo, hi.max(lo))
}

/// Planes processed side by side: the inner loops run across planes with the window
/// fixed, so they are independent (no dependency chain through a running max or sum)
/// and the window's bounds are worked out once per block.
const PLANE_BLOCK: usize = 64;

/// Pooling over at least this many input values is split over the cores by planes.
const PARALLEL_VALUES: usize = 1 << 17;

/// Runs `f(first plane, planes)` over blocks of whole planes, with `out` cut to match
/// (`out_per_plane` words per plane); on every core for large inputs. Planes are
/// independent, so the split changes no result.
fn for_planes(
    s: &PoolShape,
    out: &mut [f32],
    out_per_plane: usize,
    f: impl Fn(usize, usize, &mut [f32]) + Sync,
) {
    let out = &mut out[..s.planes * out_per_plane];
    let lanes = if s.planes * s.h * s.w >= PARALLEL_VALUES {
        rayon::current_num_threads().min(s.planes).max(1)
    } else {
        1
    };
    let per_lane = s.planes.div_ceil(lanes).max(1);
    let run = |(lane, out): (usize, &mut [f32])| {
        f(lane * per_lane, out.len() / out_per_plane.max(1), out)
    };
    if lanes > 1 {
        use rayon::prelude::*;
        out.par_chunks_mut((per_lane * out_per_plane).max(1))
            .enumerate()
            .for_each(run);
    } else {
        run((0, out));
    }
}

/// Calls `f(first plane, planes in block, window index, rows, columns)` for every block
/// of planes in `planes` and every window, windows in order. Plane numbers are
/// relative to `planes.start`.
#[inline]
fn for_each_window(
    s: &PoolShape,
    planes: std::ops::Range<usize>,
    mut f: impl FnMut(usize, usize, usize, (usize, usize), (usize, usize)),
) {
    for p0 in (0..planes.len()).step_by(PLANE_BLOCK) {
        let pb = PLANE_BLOCK.min(planes.len() - p0);
        for oh in 0..s.oh {
            let rows = span(oh, s.kernel[0], s.stride[0], s.padding[0], s.h);
            for ow in 0..s.ow {
                let cols = span(ow, s.kernel[1], s.stride[1], s.padding[1], s.w);
                f(p0, pb, oh * s.ow + ow, rows, cols);
            }
        }
    }
}

/// For each window, the in-plane position of its first maximum, as an f32 number. The
/// select is branch-free: which element wins is data, a branch would mispredict.
pub fn max_pool_argmax(x: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    for_planes(s, out, out_plane, |first, planes, out| {
        argmax_planes(
            &x[first * in_plane..(first + planes) * in_plane],
            out,
            s,
            planes,
        )
    });
}

/// Planes at least this wide are swept a block of windows along a row at a time; narrower
/// ones a block of planes at a time (strided across planes, but many windows per block).
const ROW_SWEEP_WIDTH: usize = 16;

/// The output columns `[lo, hi)` whose window's tap `t` reads inside the row.
#[inline]
fn tap_outputs(
    t: usize,
    stride: usize,
    padding: usize,
    len: usize,
    out_len: usize,
) -> (usize, usize) {
    let lo = if padding > t {
        (padding - t).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + padding > t {
        (len + padding - t - 1) / stride + 1
    } else {
        0
    };
    (lo.min(out_len), hi.min(out_len).max(lo.min(out_len)))
}

/// Calls `f(plane, window row, first window, windows, rows)` for each block of up to
/// `PLANE_BLOCK` windows along each output row of each plane in `0..planes`.
#[inline]
fn for_each_row_block(
    s: &PoolShape,
    planes: usize,
    mut f: impl FnMut(usize, usize, usize, usize, (usize, usize)),
) {
    for p in 0..planes {
        for oh in 0..s.oh {
            let rows = span(oh, s.kernel[0], s.stride[0], s.padding[0], s.h);
            for ow0 in (0..s.ow).step_by(PLANE_BLOCK) {
                f(p, oh, ow0, PLANE_BLOCK.min(s.ow - ow0), rows);
            }
        }
    }
}

/// Whether every window is one contiguous run of a row: 1-D, no padding.
fn runs(s: &PoolShape) -> bool {
    s.h == 1 && s.kernel[0] == 1 && s.padding == [0, 0]
}

fn argmax_planes(x: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    if runs(s) {
        return argmax_runs(x, out, s, planes);
    }
    if s.w >= ROW_SWEEP_WIDTH {
        return argmax_rows(x, out, s, planes);
    }
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    // Positions are kept as f32 (exact below 2^23, which the graph checks) so the select
    // can be arithmetic: `best += (q - best) · wins` is exact, and LLVM may not turn a
    // float multiply into a branch, as it does with an `if` or an integer mask here.
    let mut best = [0f32; PLANE_BLOCK];
    let mut best_v = [0f32; PLANE_BLOCK];
    for_each_window(s, 0..planes, |p0, pb, i, (h0, h1), (w0, w1)| {
        let first = h0 * s.w + w0;
        for j in 0..pb {
            best[j] = first as f32;
            best_v[j] = x[(p0 + j) * in_plane + first];
        }
        for ih in h0..h1 {
            for iw in w0..w1 {
                let q = (ih * s.w + iw) as f32;
                let column = &x[p0 * in_plane + ih * s.w + iw..];
                for j in 0..pb {
                    let v = column[j * in_plane];
                    let wins = (v > best_v[j]) as u8 as f32;
                    best[j] += (q - best[j]) * wins;
                    best_v[j] = if v > best_v[j] { v } else { best_v[j] };
                }
            }
        }
        out[p0 * out_plane + i..]
            .iter_mut()
            .step_by(out_plane)
            .zip(&best[..pb])
            .for_each(|(o, b)| *o = *b);
    });
}

/// `max_pool_argmax` when each window is a run `[o·stride, o·stride + k)` of a row: plane after
/// plane, window after window; the windows do not depend on each other, so their short
/// scans overlap in the core.
fn argmax_runs(x: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    let (k, stride) = (s.kernel[1], s.stride[1]);
    for (plane, out) in x
        .chunks_exact(s.w)
        .zip(out.chunks_exact_mut(s.ow))
        .take(planes)
    {
        for (o, slot) in out.iter_mut().enumerate() {
            let start = o * stride;
            let window = &plane[start..start + k];
            let (mut best, mut best_v) = (start as f32, window[0]);
            for (t, &v) in window.iter().enumerate().skip(1) {
                let wins = (v > best_v) as u8 as f32;
                best += ((start + t) as f32 - best) * wins;
                best_v = if v > best_v { v } else { best_v };
            }
            *slot = best;
        }
    }
}

/// `max_pool_argmax` for wide planes: the windows of a block along one output row side by side,
/// each visiting its cells in row-major order (the same order, so the same winner).
fn argmax_rows(x: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let mut best = [0f32; PLANE_BLOCK];
    let mut best_v = [0f32; PLANE_BLOCK];
    for_each_row_block(s, planes, |p, oh, ow0, nb, (h0, h1)| {
        let plane = &x[p * in_plane..(p + 1) * in_plane];
        for j in 0..nb {
            let (w0, _) = span(ow0 + j, s.kernel[1], s.stride[1], s.padding[1], s.w);
            best[j] = (h0 * s.w + w0) as f32;
            best_v[j] = plane[h0 * s.w + w0];
        }
        for ih in h0..h1 {
            for tw in 0..s.kernel[1] {
                let (lo, hi) = tap_outputs(tw, s.stride[1], s.padding[1], s.w, s.ow);
                let (lo, hi) = (lo.max(ow0), hi.min(ow0 + nb));
                for ow in lo..hi {
                    let (j, q) = (ow - ow0, ih * s.w + ow * s.stride[1] + tw - s.padding[1]);
                    let v = plane[q];
                    let wins = (v > best_v[j]) as u8 as f32;
                    best[j] += (q as f32 - best[j]) * wins;
                    best_v[j] = if v > best_v[j] { v } else { best_v[j] };
                }
            }
        }
        out[p * out_plane + oh * s.ow + ow0..][..nb].copy_from_slice(&best[..nb]);
    });
}

/// `avg_pool` for wide planes (see `argmax_rows`); each window sums its cells in row-major
/// order, as `avg_planes` does.
fn avg_rows(x: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    let mut acc = [0f32; PLANE_BLOCK];
    for_each_row_block(s, planes, |p, oh, ow0, nb, (h0, h1)| {
        let plane = &x[p * in_plane..(p + 1) * in_plane];
        acc[..nb].fill(0.0);
        for ih in h0..h1 {
            for tw in 0..s.kernel[1] {
                let (lo, hi) = tap_outputs(tw, s.stride[1], s.padding[1], s.w, s.ow);
                for ow in lo.max(ow0)..hi.min(ow0 + nb) {
                    acc[ow - ow0] += plane[ih * s.w + ow * s.stride[1] + tw - s.padding[1]];
                }
            }
        }
        for (o, a) in out[p * out_plane + oh * s.ow + ow0..][..nb]
            .iter_mut()
            .zip(&acc[..nb])
        {
            *o = a * inv;
        }
    });
}

/// The position an argmax word holds (an integer below 2^23, as f32): adding 2^23 puts
/// it in the mantissa bits exactly, cheaper than a saturating float-to-int conversion.
#[inline]
fn position(i: f32) -> usize {
    ((i + 8_388_608.0).to_bits() & 0x7f_ffff) as usize
}

/// `out[p, i] = x[p, idx[p, i]]`.
pub fn pool_gather(
    x: &[f32],
    idx: &[f32],
    out: &mut [f32],
    planes: usize,
    in_plane: usize,
    out_plane: usize,
) {
    let shape = PoolShape {
        planes,
        h: 1,
        w: in_plane,
        oh: 1,
        ow: out_plane,
        kernel: [1, 1],
        stride: [1, 1],
        padding: [0, 0],
    };
    for_planes(&shape, out, out_plane, |first, count, out| {
        for p in 0..count {
            let plane = &x[(first + p) * in_plane..(first + p + 1) * in_plane];
            let idx = &idx[(first + p) * out_plane..(first + p + 1) * out_plane];
            for (o, &i) in out[p * out_plane..(p + 1) * out_plane].iter_mut().zip(idx) {
                *o = plane[position(i)];
            }
        }
    });
}

/// `out[p, idx[p, i]] += dy[p, i]` over a zeroed `out`, windows in order.
pub fn max_pool_grad(dy: &[f32], idx: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    for_planes(s, out, in_plane, |first, count, out| {
        out.fill(0.0);
        for p in 0..count {
            let plane = &mut out[p * in_plane..(p + 1) * in_plane];
            for i in (first + p) * out_plane..(first + p + 1) * out_plane {
                plane[position(idx[i])] += dy[i];
            }
        }
    });
}

/// The sum of each window (rows in order, then columns) over the window's full size
/// (padding counts as zeros).
pub fn avg_pool(x: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    for_planes(s, out, out_plane, |first, planes, out| {
        avg_planes(
            &x[first * in_plane..(first + planes) * in_plane],
            out,
            s,
            planes,
        )
    });
}

fn avg_planes(x: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    if s.w >= ROW_SWEEP_WIDTH {
        return avg_rows(x, out, s, planes);
    }
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    let mut acc = [0f32; PLANE_BLOCK];
    for_each_window(s, 0..planes, |p0, pb, i, (h0, h1), (w0, w1)| {
        acc[..pb].fill(0.0);
        for ih in h0..h1 {
            for iw in w0..w1 {
                let column = &x[p0 * in_plane + ih * s.w + iw..];
                for j in 0..pb {
                    acc[j] += column[j * in_plane];
                }
            }
        }
        for j in 0..pb {
            out[(p0 + j) * out_plane + i] = acc[j] * inv;
        }
    });
}

/// Each window sends `dy / window size` to the cells it covers, windows in order.
pub fn avg_pool_grad(dy: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    for_planes(s, out, in_plane, |first, planes, out| {
        avg_grad_planes(
            &dy[first * out_plane..(first + planes) * out_plane],
            out,
            s,
            planes,
        )
    });
}

fn avg_grad_planes(dy: &[f32], out: &mut [f32], s: &PoolShape, planes: usize) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    out.fill(0.0);
    let mut d = [0f32; PLANE_BLOCK];
    for_each_window(s, 0..planes, |p0, pb, i, (h0, h1), (w0, w1)| {
        for j in 0..pb {
            d[j] = dy[(p0 + j) * out_plane + i] * inv;
        }
        for ih in h0..h1 {
            for iw in w0..w1 {
                let column = &mut out[p0 * in_plane + ih * s.w + iw..];
                for j in 0..pb {
                    column[j * in_plane] += d[j];
                }
            }
        }
    });
}

/// `out[b, j, i] = x[b, i, j]` for x `[batch, rows, cols]`, in 8×8 blocks.
pub fn transpose(x: &[f32], out: &mut [f32], batch: usize, rows: usize, cols: usize) {
    const B: usize = 8;
    let m = rows * cols;
    for b in 0..batch {
        let (src, dst) = (&x[b * m..(b + 1) * m], &mut out[b * m..(b + 1) * m]);
        for i0 in (0..rows).step_by(B) {
            for j0 in (0..cols).step_by(B) {
                for i in i0..(i0 + B).min(rows) {
                    for j in j0..(j0 + B).min(cols) {
                        dst[j * rows + i] = src[i * cols + j];
                    }
                }
            }
        }
    }
}
