//! Convolution on the CPU as GEMM over an im2col matrix, in channels-last order inside:
//! a chunk of images is turned from NCHW to NHWC, so each row of the im2col matrix (one
//! output position) is a run of `kh·kw` contiguous copies of `c` channels, and the
//! products `[positions × c·kh·kw] · [c·kh·kw × o]` go to the `gemm` crate. Many small
//! images go into one product (the CNN's histories are 6 steps long), large ones one at
//! a time, so the scratch stays within a fixed budget.
//!
//! Inside, the im2col columns are ordered `(kh, kw, c)`; weights are reordered to match
//! (`[o, c, kh, kw]` to `[o, (kh, kw, c)]`) on the way in and out. The scratch is owned by
//! the executor and sized when a plan is loaded: nothing is allocated per step.

use crate::engine::graph::Act;
use crate::engine::ops::conv::{ConvKernel, ConvShape};
use rayon::prelude::*;

/// Default scratch budget in f32 words for the chunk buffers of one lane.
pub const DEFAULT_CHUNK_WORDS: usize = 1 << 21;
/// Convolutions with at least this many multiply-adds (about a millisecond on one core)
/// are split into lanes; below it a fork-join costs more than it saves, and on a busy
/// machine a split kernel waits for its slowest lane. Measured with the CNN: the same
/// rows/s on one thread or two at load 3.6 on 2 cores.
const LANE_WORK: usize = 1 << 20;
/// A single-lane convolution's products use every core from this many multiply-adds.
const PARALLEL_WORK: usize = 1 << 20;
/// Parallel convolutions split their images into this many lanes, each with its own
/// scratch and single-threaded products: one fork-join per kernel instead of several
/// inside each product. A fixed count (not the thread count) keeps the weight
/// gradient's summation order, and so its bits, the same on every machine.
const LANES: usize = 4;

/// Words of scratch per image: NHWC copy, im2col rows and channels-last outputs.
fn words_per_image(s: &ConvShape) -> usize {
    s.in_plane() * s.c + s.out_plane() * (s.k() + s.o)
}

/// Lanes a convolution is split into (1: not split).
fn lanes(s: &ConvShape) -> usize {
    if s.macs() >= LANE_WORK {
        LANES.min(s.n).max(1)
    } else {
        1
    }
}

/// Images per lane (the last lane may have fewer).
fn images_per_lane(s: &ConvShape) -> usize {
    s.n.div_ceil(lanes(s)).max(1)
}

/// Images per chunk within `budget` words (at least one).
pub fn images_per_chunk(s: &ConvShape, budget: usize) -> usize {
    (budget / words_per_image(s).max(1)).clamp(1, images_per_lane(s))
}

/// Scratch words `kernel` needs (0 for kernels that need none).
pub fn scratch_words(kernel: &ConvKernel, budget: usize) -> usize {
    match kernel.shape() {
        Some(shape) => {
            let lanes = lanes(shape);
            lanes * images_per_chunk(shape, budget) * words_per_image(shape)
                + (1 + lanes) * shape.o * shape.k()
        }
        None => 0,
    }
}

/// A lane's chunk buffers.
struct Lane<'a> {
    /// `[g, h, w, c]`: images in channels-last order (input or input gradient).
    xcl: &'a mut [f32],
    /// `[g·oh·ow, kh·kw·c]`: im2col rows (or their gradient).
    cols: &'a mut [f32],
    /// `[g·oh·ow, o]`: outputs (or output gradients) in channels-last order.
    ycl: &'a mut [f32],
}

impl Lane<'_> {
    /// Images `[n0, n0 + g)` of `x` (NCHW) as im2col rows in `cols` (through `xcl`).
    fn load_cols(&mut self, x: &[f32], s: &ConvShape, n0: usize, g: usize) {
        to_channels_last(
            &x[n0 * s.c * s.in_plane()..],
            g,
            s.c,
            s.in_plane(),
            self.xcl,
        );
        im2col(self.xcl, s, g, self.cols);
    }
}

/// Runs `f(first image, images, images before it)` over the `count` images from `first`
/// in chunks of at most `g_max` (what a lane's buffers hold at once).
fn for_each_chunk(
    first: usize,
    count: usize,
    g_max: usize,
    mut f: impl FnMut(usize, usize, usize),
) {
    let mut done = 0;
    while done < count {
        let g = g_max.min(count - done);
        f(first + done, g, done);
        done += g;
    }
}

fn lane_parts<'a>(part: &'a mut [f32], s: &ConvShape, g: usize) -> Lane<'a> {
    let (xcl, rest) = part.split_at_mut(g * s.in_plane() * s.c);
    let (cols, rest) = rest.split_at_mut(g * s.out_plane() * s.k());
    let (ycl, _) = rest.split_at_mut(g * s.out_plane() * s.o);
    Lane { xcl, cols, ycl }
}

/// The scratch of one call: each lane's part, the reordered weights `[o, kh·kw·c]`, and
/// one weight-gradient sum per lane.
struct Scratch<'a> {
    lanes: &'a mut [f32],
    part_len: usize,
    wo: &'a mut [f32],
    dw: &'a mut [f32],
}

fn split_scratch<'a>(scratch: &'a mut [f32], s: &ConvShape, g: usize) -> Scratch<'a> {
    let part_len = g * words_per_image(s);
    let (lanes_buf, rest) = scratch.split_at_mut(lanes(s) * part_len);
    let (wo, rest) = rest.split_at_mut(s.o * s.k());
    let (dw, _) = rest.split_at_mut(lanes(s) * s.o * s.k());
    Scratch {
        lanes: lanes_buf,
        part_len,
        wo,
        dw,
    }
}

/// Runs `f(lane, first image, images, lane buffers, lane's output)` for each lane, on all
/// cores when there are several; `out` is cut per lane in `out_per_image` words per
/// image.
fn for_each_lane(
    s: &ConvShape,
    scr: &mut Scratch,
    g: usize,
    out: &mut [f32],
    out_per_image: usize,
    f: impl Fn(usize, usize, usize, Lane, &mut [f32]) + Sync,
) {
    let ipl = images_per_lane(s);
    let run = |(lane, (part, out)): (usize, (&mut [f32], &mut [f32]))| {
        let first = lane * ipl;
        let count = ipl.min(s.n.saturating_sub(first));
        if count > 0 {
            f(lane, first, count, lane_parts(part, s, g), out);
        }
    };
    let (part_len, out_len) = (scr.part_len.max(1), (ipl * out_per_image).max(1));
    if lanes(s) > 1 {
        scr.lanes
            .par_chunks_mut(part_len)
            .zip(out.par_chunks_mut(out_len))
            .enumerate()
            .for_each(run);
    } else {
        scr.lanes
            .chunks_mut(part_len)
            .zip(out.chunks_mut(out_len))
            .enumerate()
            .for_each(run);
    }
}

/// A matrix view: element `(i, j)` at `data[i·rs + j·cs]`.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rs: usize,
    cs: usize,
}

/// `dst[m×n] = (dst if accumulate) + lhs[m×k] · rhs[k×n]`, dst row-major with row
/// stride `n`.
#[allow(clippy::too_many_arguments)]
fn gemm(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    parallel: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let reach =
        |v: &Mat, rows: usize, cols: usize| (rows - 1) * v.rs + (cols - 1) * v.cs < v.data.len();
    assert!(dst.len() >= m * n, "gemm output too small");
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    assert!(
        reach(&lhs, m, k) && reach(&rhs, k, n),
        "gemm operand too small"
    );
    gemm_raw(m, n, k, dst, (n, 1), accumulate, lhs, rhs, parallel);
}

/// gemm::gemm into `dst` with element `(i, j)` at `dst[i·row_stride + j·col_stride]`; the
/// caller has checked that `m×n` lies inside `dst`, and the operands' extents.
#[allow(clippy::too_many_arguments)]
fn gemm_raw(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    (row_stride, col_stride): (usize, usize),
    accumulate: bool,
    lhs: Mat,
    rhs: Mat,
    parallel: bool,
) {
    let parallelism = if parallel {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: every element the strides reach lies inside its slice (the callers assert
    // it); dst does not overlap the operands (distinct borrows).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            col_stride as isize,
            row_stride as isize,
            accumulate,
            lhs.data.as_ptr(),
            lhs.cs as isize,
            lhs.rs as isize,
            rhs.data.as_ptr(),
            rhs.cs as isize,
            rhs.rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `[o, c, kh, kw]` to `[o, (kh, kw, c)]`.
fn reorder_weights(w: &[f32], s: &ConvShape, wo: &mut [f32]) {
    let taps = s.kh * s.kw;
    for o in 0..s.o {
        for c in 0..s.c {
            for t in 0..taps {
                wo[(o * taps + t) * s.c + c] = w[(o * s.c + c) * taps + t];
            }
        }
    }
}

/// `[o, (kh, kw, c)]` to `[o, c, kh, kw]`.
fn restore_weights(wo: &[f32], s: &ConvShape, w: &mut [f32]) {
    let taps = s.kh * s.kw;
    for o in 0..s.o {
        for c in 0..s.c {
            for t in 0..taps {
                w[(o * s.c + c) * taps + t] = wo[(o * taps + t) * s.c + c];
            }
        }
    }
}

/// `[g, c, plane]` (NCHW) to `[g, plane, c]`. The transposes here all write in order
/// and read with a stride: strided stores cost more than strided loads.
fn to_channels_last(x: &[f32], g: usize, c: usize, plane: usize, out: &mut [f32]) {
    for gi in 0..g {
        let src = &x[gi * c * plane..(gi + 1) * c * plane];
        let dst = &mut out[gi * c * plane..(gi + 1) * c * plane];
        for (q, row) in dst.chunks_exact_mut(c).enumerate() {
            row.iter_mut()
                .zip(src[q..].iter().step_by(plane))
                .for_each(|(d, v)| *d = *v);
        }
    }
}

/// The range of output positions along one axis whose tap `t` reads inside `0..len`:
/// `0 <= o·stride + t·dilation − padding < len`.
fn valid_outputs(
    t: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
    len: usize,
    out_len: usize,
) -> (usize, usize) {
    let shift = t * dilation;
    let lo = if padding > shift {
        (padding - shift).div_ceil(stride)
    } else {
        0
    };
    let hi = if len + padding > shift {
        (len + padding - shift - 1) / stride + 1
    } else {
        0
    };
    (lo.min(out_len), hi.min(out_len).max(lo.min(out_len)))
}

/// im2col rows for `g` channels-last images: row `(gi, oh, ow)`, columns `(kh, kw, c)`,
/// zeros where a tap falls in the padding.
fn im2col(xcl: &[f32], s: &ConvShape, g: usize, cols: &mut [f32]) {
    let (k, c, taps_w) = (s.k(), s.c, s.kw);
    for gi in 0..g {
        let img = &xcl[gi * s.in_plane() * c..(gi + 1) * s.in_plane() * c];
        for oh in 0..s.oh {
            for kh in 0..s.kh {
                let ih = (oh * s.stride[0] + kh * s.dilation[0]) as isize - s.padding[0] as isize;
                for kw in 0..taps_w {
                    let (lo, hi) =
                        valid_outputs(kw, s.stride[1], s.padding[1], s.dilation[1], s.w, s.ow);
                    let col = (kh * taps_w + kw) * c;
                    for ow in 0..s.ow {
                        let row = ((gi * s.oh + oh) * s.ow + ow) * k;
                        let dst = &mut cols[row + col..row + col + c];
                        if ih < 0 || ih >= s.h as isize || ow < lo || ow >= hi {
                            dst.fill(0.0);
                        } else {
                            let iw = ow * s.stride[1] + kw * s.dilation[1] - s.padding[1];
                            let src = &img[(ih as usize * s.w + iw) * c..][..c];
                            if c < 16 {
                                // A call to memcpy costs more than a few floats.
                                dst.iter_mut().zip(src).for_each(|(d, v)| *d = *v);
                            } else {
                                dst.copy_from_slice(src);
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The adjoint of `im2col`: adds each row's taps back into channels-last images (zeroed
/// first), rows in order, taps in order.
fn col2im(cols: &[f32], s: &ConvShape, g: usize, xcl: &mut [f32]) {
    let (k, c) = (s.k(), s.c);
    xcl[..g * s.in_plane() * c].fill(0.0);
    for gi in 0..g {
        let img = &mut xcl[gi * s.in_plane() * c..(gi + 1) * s.in_plane() * c];
        for oh in 0..s.oh {
            for ow in 0..s.ow {
                let row = &cols[((gi * s.oh + oh) * s.ow + ow) * k..][..k];
                for kh in 0..s.kh {
                    let ih =
                        (oh * s.stride[0] + kh * s.dilation[0]) as isize - s.padding[0] as isize;
                    if ih < 0 || ih >= s.h as isize {
                        continue;
                    }
                    for kw in 0..s.kw {
                        let iw = (ow * s.stride[1] + kw * s.dilation[1]) as isize
                            - s.padding[1] as isize;
                        if iw < 0 || iw >= s.w as isize {
                            continue;
                        }
                        let dst = &mut img[(ih as usize * s.w + iw as usize) * c..][..c];
                        let src = &row[(kh * s.kw + kw) * c..][..c];
                        dst.iter_mut().zip(src).for_each(|(d, v)| *d += v);
                    }
                }
            }
        }
    }
}

/// Whether a single lane's products should use every core instead (one big image).
fn gemm_parallel(s: &ConvShape) -> bool {
    lanes(s) == 1 && s.macs() >= PARALLEL_WORK
}

/// `out = act(conv2d(x, w) + bias)`.
#[allow(clippy::too_many_arguments)]
pub fn conv2d(
    x: &[f32],
    w: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    s: &ConvShape,
    act: Act,
    scratch: &mut [f32],
    budget: usize,
) {
    let g_max = images_per_chunk(s, budget);
    let scr = split_scratch(scratch, s, g_max);
    let (k, plane) = (s.k(), s.out_plane());
    reorder_weights(w, s, scr.wo);
    let wo: &[f32] = scr.wo;
    let wt = Mat {
        data: wo,
        rs: 1,
        cs: k,
    }; // woᵀ: [k, o]
    let par = gemm_parallel(s);
    let out = &mut out[..s.n * s.o * plane];
    for_each_lane(
        s,
        &mut Scratch { wo: &mut [], ..scr },
        g_max,
        out,
        s.o * plane,
        |_, first, count, mut lane, out| {
            for_each_chunk(first, count, g_max, |n0, g, done| {
                lane.load_cols(x, s, n0, g);
                let cols = Mat {
                    data: lane.cols,
                    rs: k,
                    cs: 1,
                };
                let out_chunk = &mut out[done * s.o * plane..(done + g) * s.o * plane];
                if g == 1 {
                    // One image: the product lands in NCHW directly ([plane × o] with row
                    // stride 1 is [o × plane] row-major), bias first.
                    for (o, row) in out_chunk.chunks_exact_mut(plane).enumerate() {
                        row.fill(bias.map_or(0.0, |b| b[o]));
                    }
                    gemm_into_nchw(plane, s.o, k, out_chunk, cols, wt, par);
                } else {
                    gemm(g * plane, s.o, k, lane.ycl, false, cols, wt, par);
                    channels_last_to_nchw(lane.ycl, g, plane, s.o, bias, out_chunk);
                }
                apply(act, out_chunk);
            });
        },
    );
}

/// `[g·plane, o]` plus `bias[o]` to `[g, o, plane]` (NCHW).
fn channels_last_to_nchw(
    src: &[f32],
    g: usize,
    plane: usize,
    o: usize,
    bias: Option<&[f32]>,
    dst: &mut [f32],
) {
    for gi in 0..g {
        let img = &src[gi * plane * o..(gi + 1) * plane * o];
        for (oi, row) in dst[gi * o * plane..(gi + 1) * o * plane]
            .chunks_exact_mut(plane)
            .enumerate()
        {
            let b = bias.map_or(0.0, |b| b[oi]);
            row.iter_mut()
                .zip(img[oi..].iter().step_by(o))
                .for_each(|(d, v)| *d = v + b);
        }
    }
}

/// `xs = act(xs)`, with the activation chosen once rather than per element.
fn apply(act: Act, xs: &mut [f32]) {
    if act != Act::Identity {
        super::kernels::per_act!(act, A => xs.iter_mut().for_each(|v| *v = A.eval(*v)));
    }
}

/// `dst[o, q] += Σ_k lhs[q, k] · rhs[k, o]`, for one image written as NCHW.
fn gemm_into_nchw(
    plane: usize,
    o: usize,
    k: usize,
    dst: &mut [f32],
    lhs: Mat,
    rhs: Mat,
    parallel: bool,
) {
    assert!(
        dst.len() >= plane * o
            && (plane - 1) * lhs.rs + (k - 1) * lhs.cs < lhs.data.len()
            && (k - 1) * rhs.rs + (o - 1) * rhs.cs < rhs.data.len()
    );
    // Output `(q, oi)` at `dst[oi·plane + q]`: rows of stride 1, columns of stride `plane`.
    gemm_raw(plane, o, k, dst, (1, plane), true, lhs, rhs, parallel);
}

/// `[g, o, plane]` (NCHW) to `[g·plane, o]`.
fn outputs_to_channels_last(dz: &[f32], g: usize, o: usize, plane: usize, out: &mut [f32]) {
    to_channels_last(dz, g, o, plane, out);
}

/// `[g, plane, c]` to `[g, c, plane]` (NCHW).
fn from_channels_last(xcl: &[f32], g: usize, c: usize, plane: usize, out: &mut [f32]) {
    for gi in 0..g {
        let img = &xcl[gi * plane * c..(gi + 1) * plane * c];
        for (ci, row) in out[gi * c * plane..(gi + 1) * c * plane]
            .chunks_exact_mut(plane)
            .enumerate()
        {
            row.iter_mut()
                .zip(img[ci..].iter().step_by(c))
                .for_each(|(d, v)| *d = *v);
        }
    }
}

/// `out` = the gradient of the convolution w.r.t. x, from `dz` (`[n,o,oh,ow]`).
pub fn conv2d_grad_input(
    dz: &[f32],
    w: &[f32],
    out: &mut [f32],
    s: &ConvShape,
    scratch: &mut [f32],
    budget: usize,
) {
    let g_max = images_per_chunk(s, budget);
    let scr = split_scratch(scratch, s, g_max);
    let (k, plane) = (s.k(), s.out_plane());
    reorder_weights(w, s, scr.wo);
    let wo_data: &[f32] = scr.wo;
    let wo = Mat {
        data: wo_data,
        rs: k,
        cs: 1,
    }; // [o, k]
    let par = gemm_parallel(s);
    let out = &mut out[..s.n * s.c * s.in_plane()];
    for_each_lane(
        s,
        &mut Scratch { wo: &mut [], ..scr },
        g_max,
        out,
        s.c * s.in_plane(),
        |_, first, count, lane, out| {
            for_each_chunk(first, count, g_max, |n0, g, done| {
                outputs_to_channels_last(&dz[n0 * s.o * plane..], g, s.o, plane, lane.ycl);
                gemm(
                    g * plane,
                    k,
                    s.o,
                    lane.cols,
                    false,
                    Mat {
                        data: lane.ycl,
                        rs: s.o,
                        cs: 1,
                    },
                    wo,
                    par,
                );
                col2im(lane.cols, s, g, lane.xcl);
                from_channels_last(
                    lane.xcl,
                    g,
                    s.c,
                    s.in_plane(),
                    &mut out[done * s.c * s.in_plane()..(done + g) * s.c * s.in_plane()],
                );
            });
        },
    );
}

/// `out[part]` = the gradient w.r.t. w summed over the part's images, for each of the
/// `splits` parts (see `Op::Conv2dGradWeight`). Within a part, each lane sums its images
/// and the lanes' sums are added in lane order.
#[allow(clippy::too_many_arguments)]
pub fn conv2d_grad_weight(
    dz: &[f32],
    x: &[f32],
    out: &mut [f32],
    s: &ConvShape,
    splits: usize,
    scratch: &mut [f32],
    budget: usize,
) {
    let g_max = images_per_chunk(s, budget);
    let scr = split_scratch(scratch, s, g_max);
    let (k, plane, ok) = (s.k(), s.out_plane(), s.o * s.k());
    let par = gemm_parallel(s);
    let (lanes_buf, part_len, sum, dw) = (scr.lanes, scr.part_len, scr.wo, scr.dw);
    for part in 0..splits {
        let (first, end) = (part * s.n / splits, (part + 1) * s.n / splits);
        // The part's images, cut into lanes as a convolution of `end - first` images.
        let sub = ConvShape {
            n: end - first,
            ..*s
        };
        let ipl = images_per_lane(&sub).max(1);
        let work = |(lane, (buf, dw)): (usize, (&mut [f32], &mut [f32]))| {
            dw.fill(0.0);
            let lane_first = first + lane * ipl;
            let count = ipl.min(end.saturating_sub(lane_first));
            let mut l = lane_parts(buf, s, g_max);
            for_each_chunk(lane_first, count, g_max, |n0, g, _| {
                l.load_cols(x, s, n0, g);
                outputs_to_channels_last(&dz[n0 * s.o * plane..], g, s.o, plane, l.ycl);
                // dw[o, k] += Σ_q dzcl[q, o] · cols[q, k]
                let dzt = Mat {
                    data: l.ycl,
                    rs: 1,
                    cs: s.o,
                };
                gemm(
                    s.o,
                    k,
                    g * plane,
                    dw,
                    true,
                    dzt,
                    Mat {
                        data: l.cols,
                        rs: k,
                        cs: 1,
                    },
                    par,
                );
            });
        };
        let used = lanes(&sub).min(lanes(s));
        if used > 1 {
            lanes_buf
                .par_chunks_mut(part_len.max(1))
                .zip(dw.par_chunks_mut(ok))
                .take(used)
                .enumerate()
                .for_each(work);
        } else {
            lanes_buf
                .chunks_mut(part_len.max(1))
                .zip(dw.chunks_mut(ok))
                .take(used)
                .enumerate()
                .for_each(work);
        }
        sum.copy_from_slice(&dw[..ok]);
        for lane_sum in dw.chunks(ok).take(used).skip(1) {
            sum.iter_mut().zip(lane_sum).for_each(|(a, b)| *a += b);
        }
        restore_weights(sum, s, &mut out[part * ok..(part + 1) * ok]);
    }
}

/// `out[o] = Σ_n Σ_p dz[n, o, p]`, summed in index order.
pub fn conv_grad_bias(dz: &[f32], out: &mut [f32], n: usize, o: usize, plane: usize) {
    out[..o].fill(0.0);
    for ni in 0..n {
        for (oi, acc) in out[..o].iter_mut().enumerate() {
            *acc += dz[(ni * o + oi) * plane..][..plane].iter().sum::<f32>();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_output_ranges_match_a_scan() {
        for len in 1..7 {
            for stride in 1..4 {
                for padding in 0..4 {
                    for dilation in 1..3 {
                        for t in 0..4 {
                            let out_len = 9;
                            let (lo, hi) =
                                valid_outputs(t, stride, padding, dilation, len, out_len);
                            for o in 0..out_len {
                                let i = (o * stride + t * dilation) as isize - padding as isize;
                                let inside = i >= 0 && i < len as isize;
                                assert_eq!(
                                    inside,
                                    o >= lo && o < hi,
                                    "len {len} s {stride} p {padding} d {dilation} t {t} o {o}"
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}
