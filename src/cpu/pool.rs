//! Pooling and the batched transpose on the CPU: one pass per output, windows scanned in
//! row-major order (which fixes the argmax on ties, and the order of every sum).

use crate::plan::PoolShape;

/// The input rows (or columns) `[lo, hi)` window `o` covers along one axis.
#[inline]
fn span(o: usize, kernel: usize, stride: usize, padding: usize, len: usize) -> (usize, usize) {
    let start = (o * stride) as isize - padding as isize;
    let lo = start.max(0) as usize;
    let hi = ((start + kernel as isize).max(0) as usize).min(len);
    (lo, hi.max(lo))
}

/// For each window, the in-plane position of its first maximum, as an f32 number.
pub fn argmax(x: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    for p in 0..s.planes {
        let plane = &x[p * in_plane..(p + 1) * in_plane];
        for oh in 0..s.oh {
            let (h0, h1) = span(oh, s.kernel[0], s.stride[0], s.padding[0], s.h);
            for ow in 0..s.ow {
                let (w0, w1) = span(ow, s.kernel[1], s.stride[1], s.padding[1], s.w);
                let mut best = h0 * s.w + w0;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        let q = ih * s.w + iw;
                        if plane[q] > plane[best] {
                            best = q;
                        }
                    }
                }
                out[p * out_plane + oh * s.ow + ow] = best as f32;
            }
        }
    }
}

/// `out[p, i] = x[p, idx[p, i]]`.
pub fn gather(x: &[f32], idx: &[f32], out: &mut [f32], planes: usize, in_plane: usize, out_plane: usize) {
    for p in 0..planes {
        let plane = &x[p * in_plane..(p + 1) * in_plane];
        for (o, &i) in out[p * out_plane..(p + 1) * out_plane].iter_mut().zip(&idx[p * out_plane..]) {
            *o = plane[i as usize];
        }
    }
}

/// `out[p, idx[p, i]] += dy[p, i]` over a zeroed `out`, windows in order.
pub fn max_grad(dy: &[f32], idx: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    out.fill(0.0);
    for p in 0..s.planes {
        let plane = &mut out[p * in_plane..(p + 1) * in_plane];
        for i in p * out_plane..(p + 1) * out_plane {
            plane[idx[i] as usize] += dy[i];
        }
    }
}

/// The sum of each window over the window's full size (padding counts as zeros).
pub fn avg(x: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    for p in 0..s.planes {
        let plane = &x[p * in_plane..(p + 1) * in_plane];
        for oh in 0..s.oh {
            let (h0, h1) = span(oh, s.kernel[0], s.stride[0], s.padding[0], s.h);
            for ow in 0..s.ow {
                let (w0, w1) = span(ow, s.kernel[1], s.stride[1], s.padding[1], s.w);
                let mut acc = 0.0f32;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        acc += plane[ih * s.w + iw];
                    }
                }
                out[p * out_plane + oh * s.ow + ow] = acc * inv;
            }
        }
    }
}

/// Each window sends `dy / window size` to the cells it covers, windows in order.
pub fn avg_grad(dy: &[f32], out: &mut [f32], s: &PoolShape) {
    let (in_plane, out_plane) = (s.h * s.w, s.oh * s.ow);
    let inv = 1.0 / (s.kernel[0] * s.kernel[1]) as f32;
    out.fill(0.0);
    for p in 0..s.planes {
        let plane = &mut out[p * in_plane..(p + 1) * in_plane];
        for oh in 0..s.oh {
            let (h0, h1) = span(oh, s.kernel[0], s.stride[0], s.padding[0], s.h);
            for ow in 0..s.ow {
                let (w0, w1) = span(ow, s.kernel[1], s.stride[1], s.padding[1], s.w);
                let d = dy[p * out_plane + oh * s.ow + ow] * inv;
                for ih in h0..h1 {
                    for iw in w0..w1 {
                        plane[ih * s.w + iw] += d;
                    }
                }
            }
        }
    }
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
