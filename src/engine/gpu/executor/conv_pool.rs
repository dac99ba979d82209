//! How the GPU runs the convolution, pooling and transpose kernels: their uniform
//! records (`ConvParams`, `PoolParams`), bindings and grids. The conv bias gradient
//! reuses reduce.wgsl. Which pipeline each kernel runs is `Pipe::of`'s choice.

use super::{record, Encoded, Limits};
use crate::engine::gpu::kernel_params::{ConvParams, ReduceParams, TILE};
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::Act;
use crate::engine::plan::{ConvShape, Kernel, TensorRef};
use crate::error::Result;

/// The launch of a convolution, pooling or transpose kernel on `pipe` (`Pipe::of`);
/// `None` for other kernels.
pub(super) fn lower(kernel: &Kernel, pipe: Pipe, lim: &Limits) -> Result<Option<Encoded>> {
    Ok(Some(match *kernel {
        Kernel::Conv2d {
            x,
            w,
            bias,
            out,
            shape,
            act,
        } => conv(
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
            w,
            dz,
            None,
            out,
            &shape,
            Act::Identity.code(),
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
            dz,
            x,
            None,
            out,
            &shape,
            Act::Identity.code(),
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
            let r = record(ReduceParams {
                out_shape: [1, 1, u32c(o)?, 1],
                reduced: [1, u32c(n)?, 1, u32c(plane)?],
                in_strides: [u32c(n * o * plane)?, u32c(o * plane)?, u32c(plane)?, 1],
                n_out: u32c(o)?,
                count: u32c(n * plane)?,
                off_x: ox,
                off_out: oo,
                scale: 1.0,
                ..Default::default()
            });
            let groups = if pipe == Pipe::REDUCE_TO_TREE {
                lim.grid(o)?
            } else {
                lim.grid_1d(o)?
            };
            (r, vec![(1, Some(wx)), (2, Some(wo))], groups)
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
) -> Result<Encoded> {
    let ((wa, oa), (wb, ob), (wo, oo)) = (lim.window(a)?, lim.window(b)?, lim.window(out)?);
    let (wbias, obias) = match bias {
        Some(t) => {
            let (wt, ot) = lim.window(t)?;
            (Some(wt), ot)
        }
        None => (None, 0),
    };
    let tiles_n = cols.div_ceil(TILE as usize);
    let tiles = m.div_ceil(TILE as usize) * tiles_n;
    let r = record(ConvParams {
        n: u32c(s.n)?,
        c: u32c(s.c)?,
        h: u32c(s.h)?,
        w: u32c(s.w)?,
        o: u32c(s.o)?,
        kh: u32c(s.kh)?,
        kw: u32c(s.kw)?,
        oh: u32c(s.oh)?,
        ow: u32c(s.ow)?,
        stride_h: u32c(s.stride[0])?,
        stride_w: u32c(s.stride[1])?,
        pad_h: u32c(s.padding[0])?,
        pad_w: u32c(s.padding[1])?,
        dil_h: u32c(s.dilation[0])?,
        dil_w: u32c(s.dilation[1])?,
        act,
        off_a: oa,
        off_b: ob,
        off_bias: obias,
        off_out: oo,
        has_bias: bias.is_some() as u32,
        m: u32c(m)?,
        cols: u32c(cols)?,
        tiles_n: u32c(tiles_n)?,
        tiles: u32c(tiles)?,
        splits: u32c(splits)?,
        ..Default::default()
    });
    Ok((
        r,
        vec![(1, Some(wa)), (2, Some(wb)), (3, wbias), (4, Some(wo))],
        lim.grid(tiles * splits)?,
    ))
}
