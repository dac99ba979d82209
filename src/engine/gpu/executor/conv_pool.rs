//! How the GPU runs the convolution, pooling and transpose kernels: their uniform
//! records (in the order of the `Params` structs of conv.wgsl and pool.wgsl), bindings
//! and grids. The conv bias gradient reuses reduce.wgsl.

use super::{Bindings, Limits, Record, TILE, TREE_MAX_OUTPUTS, TREE_MIN_COUNT};
use crate::engine::gpu::shaders::Pipe;
use crate::engine::plan::{ConvShape, Kernel, PoolShape, TensorRef};
use crate::error::Result;

pub(super) type Lowered = (Pipe, Record, Bindings, [u32; 3]);

/// The launch of a convolution, pooling or transpose kernel; `None` for other kernels.
pub(super) fn lower(kernel: &Kernel, lim: &Limits) -> Result<Option<Lowered>> {
    Ok(Some(match *kernel {
        Kernel::Conv2d {
            x,
            w,
            bias,
            out,
            shape,
            act,
        } => conv(
            Pipe::ConvForward,
            w,
            x,
            bias,
            out,
            &shape,
            act.code(),
            shape.o,
            shape.n * shape.out_plane(),
            1,
            lim,
        )?,
        Kernel::Conv2dGradInput { dz, w, out, shape } => conv(
            Pipe::ConvGradInput,
            w,
            dz,
            None,
            out,
            &shape,
            0,
            shape.c,
            shape.n * shape.in_plane(),
            1,
            lim,
        )?,
        Kernel::Conv2dGradWeight {
            dz,
            x,
            out,
            shape,
            splits,
        } => conv(
            Pipe::ConvGradWeight,
            dz,
            x,
            None,
            out,
            &shape,
            0,
            shape.o,
            shape.k(),
            splits,
            lim,
        )?,
        Kernel::ConvGradBias {
            dz,
            out,
            n,
            o,
            plane,
        } => {
            let ((wx, ox), (wo, oo)) = (lim.window(dz)?, lim.window(out)?);
            let r = Record::default()
                .v4([1, 1, u32c(o)?, 1])
                .v4([1, u32c(n)?, 1, u32c(plane)?])
                .v4([u32c(n * o * plane)?, u32c(o * plane)?, u32c(plane)?, 1])
                .n(o)?
                .n(n * plane)?
                .u(ox)
                .u(oo)
                .f(1.0)
                .u(0)
                .u(0)
                .u(0);
            let tree = o < TREE_MAX_OUTPUTS && n * plane >= TREE_MIN_COUNT;
            let (pipe, groups) = if tree {
                (Pipe::ReduceTree, lim.grid(o)?)
            } else {
                (Pipe::ReduceSerial, lim.grid_1d(o)?)
            };
            (pipe, r, vec![(1, Some(wx)), (2, Some(wo))], groups)
        }
        Kernel::Transpose {
            x,
            out,
            batch,
            rows,
            cols,
        } => {
            let s = PoolShape {
                planes: batch,
                h: rows,
                w: cols,
                oh: cols,
                ow: rows,
                kernel: [1, 1],
                stride: [1, 1],
                padding: [0, 0],
            };
            pool(Pipe::Transpose, x, None, out, &s, out.len, lim)?
        }
        Kernel::PoolArgmax { x, out, shape } => {
            pool(Pipe::PoolArgmax, x, None, out, &shape, out.len, lim)?
        }
        Kernel::PoolGather {
            x,
            idx,
            out,
            planes,
            in_plane,
            out_plane,
        } => {
            let s = PoolShape {
                planes,
                h: in_plane,
                w: 1,
                oh: out_plane,
                ow: 1,
                kernel: [1, 1],
                stride: [1, 1],
                padding: [0, 0],
            };
            pool(Pipe::PoolGather, x, Some(idx), out, &s, out.len, lim)?
        }
        Kernel::MaxPoolGrad {
            dy,
            idx,
            out,
            shape,
        } => pool(Pipe::MaxPoolGrad, dy, Some(idx), out, &shape, out.len, lim)?,
        Kernel::AvgPool { x, out, shape } => {
            pool(Pipe::AvgPool, x, None, out, &shape, out.len, lim)?
        }
        Kernel::AvgPoolGrad { dy, out, shape } => {
            pool(Pipe::AvgPoolGrad, dy, None, out, &shape, out.len, lim)?
        }
        _ => return Ok(None),
    }))
}

fn u32c(v: usize) -> Result<u32> {
    super::u32c(v)
}

/// An implicit-GEMM launch: `a` and `b` are the product's operand tensors (see
/// conv.wgsl), `m × cols` outputs per split.
#[allow(clippy::too_many_arguments)]
fn conv(
    pipe: Pipe,
    a: TensorRef,
    b: TensorRef,
    bias: Option<TensorRef>,
    out: TensorRef,
    s: &ConvShape,
    act: u32,
    m: usize,
    cols: usize,
    splits: usize,
    lim: &Limits,
) -> Result<Lowered> {
    let ((wa, oa), (wb, ob), (wo, oo)) = (lim.window(a)?, lim.window(b)?, lim.window(out)?);
    let (wbias, obias) = match bias {
        Some(t) => {
            let (wt, ot) = lim.window(t)?;
            (Some(wt), ot)
        }
        None => (None, 0),
    };
    let tiles_n = cols.div_ceil(TILE);
    let tiles = m.div_ceil(TILE) * tiles_n;
    let mut r = Record::default();
    for v in [
        s.n,
        s.c,
        s.h,
        s.w,
        s.o,
        s.kh,
        s.kw,
        s.oh,
        s.ow,
        s.stride[0],
        s.stride[1],
        s.padding[0],
        s.padding[1],
        s.dilation[0],
        s.dilation[1],
    ] {
        r = r.n(v)?;
    }
    let r = r
        .u(act)
        .u(oa)
        .u(ob)
        .u(obias)
        .u(oo)
        .u(bias.is_some() as u32)
        .n(m)?
        .n(cols)?
        .n(tiles_n)?
        .n(tiles)?
        .n(splits)?
        .u(0)
        .u(0);
    Ok((
        pipe,
        r,
        vec![(1, Some(wa)), (2, Some(wb)), (3, wbias), (4, Some(wo))],
        lim.grid(tiles * splits)?,
    ))
}

/// A pooling-family launch with one invocation per value written (`n` of them).
fn pool(
    pipe: Pipe,
    x: TensorRef,
    y: Option<TensorRef>,
    out: TensorRef,
    s: &PoolShape,
    n: usize,
    lim: &Limits,
) -> Result<Lowered> {
    let ((wx, ox), (wo, oo)) = (lim.window(x)?, lim.window(out)?);
    let (wy, oy) = match y {
        Some(t) => {
            let (wt, ot) = lim.window(t)?;
            (Some(wt), ot)
        }
        None => (None, 0),
    };
    let mut r = Record::default();
    for v in [
        n,
        s.planes,
        s.h,
        s.w,
        s.oh,
        s.ow,
        s.kernel[0],
        s.kernel[1],
        s.stride[0],
        s.stride[1],
        s.padding[0],
        s.padding[1],
    ] {
        r = r.n(v)?;
    }
    let r = r.u(ox).u(oy).u(oo).u(0);
    Ok((
        pipe,
        r,
        vec![(1, Some(wx)), (2, wy), (3, Some(wo))],
        lim.grid_1d(n)?,
    ))
}
