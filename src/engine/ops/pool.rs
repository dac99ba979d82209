//! Pooling over planes, and the batched transpose (a gather of the same shape): every
//! fact of these ops in one file. For each op: its graph variant ([`PoolOp`]) and
//! builder on [`Graph`] with the shape rule, its vector-Jacobian rule
//! (`PoolOp::vjp`), its launch with every size resolved ([`PoolKernel`], from
//! `PoolOp::lower`), the CPU kernel it calls (`engine::cpu::pool`), and its GPU
//! pipeline, uniform record and grid (`PoolKernel::encode`; the entry points are in
//! shaders/pool.wgsl, the f64 reference in tests/it/reference/pool.rs).

use crate::engine::cpu::pool as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::PoolParams;
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{conv_out_len, rename, Graph, NodeId, Op};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};
use crate::pipe;
use serde::{Deserialize, Serialize};

/// Window, stride and padding of a pooling op per axis `[h, w]`. Padding is never part
/// of a max (it is -inf) and counts as zeros in an average (PyTorch's default,
/// `count_include_pad`): the divisor is always the window's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PoolGeom {
    /// Window size.
    pub kernel: [usize; 2],
    /// Step between windows.
    pub stride: [usize; 2],
    /// Padding on each side.
    pub padding: [usize; 2],
}

/// Positions in a plane are stored as f32 numbers by `MaxPoolArgmax` (exact, and read
/// back by the CPU kernels with a trick that needs them below 2^23).
const MAX_PLANE: usize = 1 << 23;

/// The graph ops of the family; each reads and writes `[N,C,H,W]` planes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolOp {
    /// Where each max-pooling window of x (`[N,C,H,W]`) has its maximum: the flat index
    /// `h * W + w` within its `(n, c)` plane, stored as an f32 number (planes are at
    /// most 2^23 positions). The first maximum in row-major window order wins a tie.
    MaxPoolArgmax {
        /// The windows.
        geom: PoolGeom,
    },
    /// Inputs `[x, idx]` with idx from `MaxPoolArgmax`: `out[i] = x[plane(i), idx[i]]`,
    /// the max-pooled values.
    PoolGather,
    /// Inputs `[dy, idx]`: routes each pooled gradient to its argmax, summing where
    /// windows overlap; the node's shape is x's.
    MaxPoolGrad {
        /// The forward pool's windows.
        geom: PoolGeom,
    },
    /// The mean of each window of x (`[N,C,H,W]`), zero padding included.
    AvgPool {
        /// The windows.
        geom: PoolGeom,
    },
    /// Input `[dy]`: the gradient of `AvgPool`; the node's shape is x's.
    AvgPoolGrad {
        /// The forward pool's windows.
        geom: PoolGeom,
    },
    /// Swaps the last two axes (a batched transpose), e.g. `[B,T,C]` to `[B,C,T]`.
    Transpose,
}

impl PoolOp {
    /// The op's name: in error messages and profiles, and the WGSL entry point of its
    /// kernel.
    pub fn name(&self) -> &'static str {
        match self {
            PoolOp::MaxPoolArgmax { .. } => "max_pool_argmax",
            PoolOp::PoolGather => "pool_gather",
            PoolOp::MaxPoolGrad { .. } => "max_pool_grad",
            PoolOp::AvgPool { .. } => "avg_pool",
            PoolOp::AvgPoolGrad { .. } => "avg_pool_grad",
            PoolOp::Transpose => "transpose",
        }
    }

    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): each input's
    /// gradient, as nodes appended to `g` (every op here has one differentiable input,
    /// so `needs` is the caller's to apply).
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        _id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        _needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        Ok(match *self {
            // An index is piecewise constant: no gradient flows through it.
            PoolOp::MaxPoolArgmax { .. } => vec![],
            PoolOp::PoolGather => {
                let Op::Pool(PoolOp::MaxPoolArgmax { geom }) = g.nodes[x[1]].op else {
                    return Err(Error::Unsupported(
                        "pool_gather must read the indices of a max_pool_argmax".into(),
                    ));
                };
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.max_pool_grad(dy, x[1], &shape, geom)?)]
            }
            PoolOp::AvgPool { geom } => {
                let shape = g.shape(x[0]).to_vec();
                vec![(x[0], g.avg_pool_grad(dy, &shape, geom)?)]
            }
            PoolOp::Transpose => vec![(x[0], g.transpose_last(dy)?)],
            PoolOp::MaxPoolGrad { .. } | PoolOp::AvgPoolGrad { .. } => {
                return Err(Error::Unsupported(format!(
                    "cannot differentiate through {} (second derivatives are not supported)",
                    self.name()
                )))
            }
        })
    }

    /// The launch that computes a node of this op: inputs at `ins` with shapes
    /// `in_shapes`, output of `shape` at `out`.
    pub(crate) fn lower(
        &self,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        shape: &[usize],
        out: TensorRef,
    ) -> PoolKernel {
        match *self {
            PoolOp::MaxPoolArgmax { geom } => PoolKernel::MaxPoolArgmax {
                x: ins[0],
                out,
                shape: PoolShape::new(in_shapes[0], shape, &geom),
            },
            PoolOp::PoolGather => {
                let s = in_shapes[0];
                PoolKernel::PoolGather {
                    x: ins[0],
                    idx: ins[1],
                    out,
                    planes: s[0] * s[1],
                    in_plane: s[2] * s[3],
                    out_plane: shape[2] * shape[3],
                }
            }
            PoolOp::MaxPoolGrad { geom } => PoolKernel::MaxPoolGrad {
                dy: ins[0],
                idx: ins[1],
                out,
                shape: PoolShape::new(shape, in_shapes[0], &geom),
            },
            PoolOp::AvgPool { geom } => PoolKernel::AvgPool {
                x: ins[0],
                out,
                shape: PoolShape::new(in_shapes[0], shape, &geom),
            },
            PoolOp::AvgPoolGrad { geom } => PoolKernel::AvgPoolGrad {
                dy: ins[0],
                out,
                shape: PoolShape::new(shape, in_shapes[0], &geom),
            },
            PoolOp::Transpose => {
                let s = in_shapes[0];
                let r = s.len();
                PoolKernel::Transpose {
                    x: ins[0],
                    out,
                    batch: s[..r - 2].iter().product(),
                    rows: s[r - 2],
                    cols: s[r - 1],
                }
            }
        }
    }
}

/// A pooling op with every size resolved: `planes` (`n·c`) planes of `h × w` in, of
/// `oh × ow` out; window, stride and padding per axis `[h, w]`.
#[allow(missing_docs)] // the fields are the sizes the doc above names
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolShape {
    pub planes: usize,
    pub h: usize,
    pub w: usize,
    pub oh: usize,
    pub ow: usize,
    pub kernel: [usize; 2],
    pub stride: [usize; 2],
    pub padding: [usize; 2],
}

impl PoolShape {
    /// The sizes of a pooling op from x `xs` to `ys` (both 4-D).
    pub fn new(xs: &[usize], ys: &[usize], g: &PoolGeom) -> PoolShape {
        PoolShape {
            planes: xs[0] * xs[1],
            h: xs[2],
            w: xs[3],
            oh: ys[2],
            ow: ys[3],
            kernel: g.kernel,
            stride: g.stride,
            padding: g.padding,
        }
    }

    /// The shape of a one-to-one gather of `planes` planes: `h × w` in, `oh × ow` out,
    /// 1×1 windows (how `PoolGather` and `Transpose` run on pool.wgsl's indexing).
    fn gather(planes: usize, [h, w]: [usize; 2], [oh, ow]: [usize; 2]) -> PoolShape {
        PoolShape {
            planes,
            h,
            w,
            oh,
            ow,
            kernel: [1, 1],
            stride: [1, 1],
            padding: [0, 0],
        }
    }
}

/// One launch of the family, every size resolved. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PoolKernel {
    /// `out` = the in-plane position of each window's first maximum, as f32 numbers.
    MaxPoolArgmax {
        x: TensorRef,
        out: TensorRef,
        shape: PoolShape,
    },
    /// `out[p, i] = x[p, idx[p, i]]` per plane p.
    PoolGather {
        x: TensorRef,
        idx: TensorRef,
        out: TensorRef,
        planes: usize,
        in_plane: usize,
        out_plane: usize,
    },
    /// `out[p, j] = Σ dy[p, i]` over the windows i whose argmax is j, in window order.
    MaxPoolGrad {
        dy: TensorRef,
        idx: TensorRef,
        out: TensorRef,
        shape: PoolShape,
    },
    /// `out` = the mean of each window (padding counts as zeros in the window).
    AvgPool {
        x: TensorRef,
        out: TensorRef,
        shape: PoolShape,
    },
    /// `out[p, j] = Σ dy[p, i] / window size` over the windows i that cover j.
    AvgPoolGrad {
        dy: TensorRef,
        out: TensorRef,
        shape: PoolShape,
    },
    /// `out[b, c, r] = x[b, r, c]` for `batch` matrices of `rows × cols`.
    Transpose {
        x: TensorRef,
        out: TensorRef,
        batch: usize,
        rows: usize,
        cols: usize,
    },
}

const MAX_POOL_ARGMAX: Pipe = pipe!("max_pool_argmax", Pool, Read2Write1);
const POOL_GATHER: Pipe = pipe!("pool_gather", Pool, Read2Write1);
const MAX_POOL_GRAD: Pipe = pipe!("max_pool_grad", Pool, Read2Write1);
const AVG_POOL: Pipe = pipe!("avg_pool", Pool, Read2Write1);
const AVG_POOL_GRAD: Pipe = pipe!("avg_pool_grad", Pool, Read2Write1);
const TRANSPOSE: Pipe = pipe!("transpose", Pool, Read2Write1);

/// The family's pipelines (entry points of shaders/pool.wgsl), one per kernel.
pub const PIPES: &[Pipe] = &[
    MAX_POOL_ARGMAX,
    POOL_GATHER,
    MAX_POOL_GRAD,
    AVG_POOL,
    AVG_POOL_GRAD,
    TRANSPOSE,
];

impl PoolKernel {
    /// Its GPU pipeline, named like the op and the WGSL entry point.
    pub fn pipe(&self) -> Pipe {
        match self {
            PoolKernel::MaxPoolArgmax { .. } => MAX_POOL_ARGMAX,
            PoolKernel::PoolGather { .. } => POOL_GATHER,
            PoolKernel::MaxPoolGrad { .. } => MAX_POOL_GRAD,
            PoolKernel::AvgPool { .. } => AVG_POOL,
            PoolKernel::AvgPoolGrad { .. } => AVG_POOL_GRAD,
            PoolKernel::Transpose { .. } => TRANSPOSE,
        }
    }

    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            PoolKernel::MaxPoolArgmax { out, .. }
            | PoolKernel::PoolGather { out, .. }
            | PoolKernel::MaxPoolGrad { out, .. }
            | PoolKernel::AvgPool { out, .. }
            | PoolKernel::AvgPoolGrad { out, .. }
            | PoolKernel::Transpose { out, .. } => out,
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's.
    pub(crate) fn run_cpu<'a>(&self, v: impl Fn(TensorRef) -> &'a [f32], dst: &mut [f32]) {
        match *self {
            PoolKernel::MaxPoolArgmax { x, shape, .. } => cpu::max_pool_argmax(v(x), dst, &shape),
            PoolKernel::PoolGather {
                x,
                idx,
                planes,
                in_plane,
                out_plane,
                ..
            } => cpu::pool_gather(v(x), v(idx), dst, planes, in_plane, out_plane),
            PoolKernel::MaxPoolGrad { dy, idx, shape, .. } => {
                cpu::max_pool_grad(v(dy), v(idx), dst, &shape)
            }
            PoolKernel::AvgPool { x, shape, .. } => cpu::avg_pool(v(x), dst, &shape),
            PoolKernel::AvgPoolGrad { dy, shape, .. } => cpu::avg_pool_grad(v(dy), dst, &shape),
            PoolKernel::Transpose {
                x,
                batch,
                rows,
                cols,
                ..
            } => cpu::transpose(v(x), dst, batch, rows, cols),
        }
    }

    /// Its GPU launch: uniform record (`PoolParams`), bindings and grid, with one
    /// invocation per value written.
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let (x, y, out, shape) = match *self {
            PoolKernel::MaxPoolArgmax { x, out, shape } | PoolKernel::AvgPool { x, out, shape } => {
                (x, None, out, shape)
            }
            PoolKernel::PoolGather {
                x,
                idx,
                out,
                planes,
                in_plane,
                out_plane,
            } => (
                x,
                Some(idx),
                out,
                PoolShape::gather(planes, [in_plane, 1], [out_plane, 1]),
            ),
            PoolKernel::MaxPoolGrad {
                dy,
                idx,
                out,
                shape,
            } => (dy, Some(idx), out, shape),
            PoolKernel::AvgPoolGrad { dy, out, shape } => (dy, None, out, shape),
            PoolKernel::Transpose {
                x,
                out,
                batch,
                rows,
                cols,
            } => (
                x,
                None,
                out,
                PoolShape::gather(batch, [rows, cols], [cols, rows]),
            ),
        };
        let s = shape;
        let n = out.len;
        let u = u32c;
        let ((wx, ox), (wo, oo)) = (lim.window(x)?, lim.window(out)?);
        let (wy, oy) = lim.window_opt(y)?;
        let r = record(PoolParams {
            n: u(n)?,
            planes: u(s.planes)?,
            h: u(s.h)?,
            w: u(s.w)?,
            oh: u(s.oh)?,
            ow: u(s.ow)?,
            kh: u(s.kernel[0])?,
            kw: u(s.kernel[1])?,
            stride_h: u(s.stride[0])?,
            stride_w: u(s.stride[1])?,
            pad_h: u(s.padding[0])?,
            pad_w: u(s.padding[1])?,
            off_x: ox,
            off_y: oy,
            off_out: oo,
            ..Default::default()
        });
        Ok((
            r,
            vec![(1, Some(wx)), (2, wy), (3, Some(wo))],
            lim.grid_1d(n)?,
        ))
    }
}

fn err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

/// The family's builders, with their shape rules.
impl Graph {
    /// Swaps the last two axes of a tensor of rank 2 or more.
    pub fn transpose_last(&mut self, x: NodeId) -> Result<NodeId> {
        let mut s = self.shape(x).to_vec();
        if s.len() < 2 {
            return err("transpose", format!("needs at least 2 axes, got {s:?}"));
        }
        let r = s.len();
        s.swap(r - 2, r - 1);
        Ok(self.push(Op::Pool(PoolOp::Transpose), vec![x], s))
    }

    fn pool_shape(&self, op: &str, x: NodeId, geom: &PoolGeom) -> Result<Vec<usize>> {
        let s = self.shape(x).to_vec();
        if s.len() != 4 {
            return err(op, format!("needs x [N,C,H,W], got {s:?}"));
        }
        if geom.kernel.contains(&0) || geom.stride.contains(&0) {
            return err(
                op,
                format!(
                    "window {:?} and stride {:?} must be at least 1",
                    geom.kernel, geom.stride
                ),
            );
        }
        for a in 0..2 {
            // As in PyTorch: every window then holds at least one element of x.
            if 2 * geom.padding[a] > geom.kernel[a] {
                return err(
                    op,
                    format!(
                        "padding {:?} is more than half the window {:?}",
                        geom.padding, geom.kernel
                    ),
                );
            }
        }
        if s[2] * s[3] > MAX_PLANE {
            return err(
                op,
                format!(
                    "planes of {}×{} are over the 2^23 positions an index can name",
                    s[2], s[3]
                ),
            );
        }
        let out =
            |a: usize| conv_out_len(s[2 + a], geom.kernel[a], geom.stride[a], geom.padding[a], 1);
        match (out(0), out(1)) {
            (Some(oh), Some(ow)) => Ok(vec![s[0], s[1], oh, ow]),
            _ => err(
                op,
                format!(
                    "a window of {:?} does not fit in {s:?} with padding {:?}",
                    geom.kernel, geom.padding
                ),
            ),
        }
    }

    /// Max pooling over `[N,C,H,W]`: the argmax of each window (kept for the backward
    /// pass), then the values it points at.
    pub fn max_pool2d(&mut self, x: NodeId, geom: PoolGeom) -> Result<NodeId> {
        let shape = self.pool_shape("max_pool", x, &geom)?;
        let idx = self.push(
            Op::Pool(PoolOp::MaxPoolArgmax { geom }),
            vec![x],
            shape.clone(),
        );
        Ok(self.push(Op::Pool(PoolOp::PoolGather), vec![x, idx], shape))
    }

    /// Average pooling over `[N,C,H,W]` (the divisor is the window size, padding
    /// included).
    pub fn avg_pool2d(&mut self, x: NodeId, geom: PoolGeom) -> Result<NodeId> {
        let shape = self.pool_shape("avg_pool", x, &geom)?;
        Ok(self.push(Op::Pool(PoolOp::AvgPool { geom }), vec![x], shape))
    }

    /// Max pooling over `[N,C,L]`.
    pub fn max_pool1d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<NodeId> {
        self.pool1d(x, kernel, stride, padding, true)
    }

    /// Average pooling over `[N,C,L]`.
    pub fn avg_pool1d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: usize,
    ) -> Result<NodeId> {
        self.pool1d(x, kernel, stride, padding, false)
    }

    fn pool1d(
        &mut self,
        x: NodeId,
        kernel: usize,
        stride: usize,
        padding: usize,
        max: bool,
    ) -> Result<NodeId> {
        let s = self.shape(x).to_vec();
        let op = if max { "max_pool1d" } else { "avg_pool1d" };
        if s.len() != 3 {
            return err(op, format!("needs x [N,C,L], got {s:?}"));
        }
        let x4 = self.reshape(x, &[s[0], s[1], 1, s[2]])?;
        let geom = PoolGeom {
            kernel: [1, kernel],
            stride: [1, stride],
            padding: [0, padding],
        };
        let y = if max {
            self.max_pool2d(x4, geom)
        } else {
            self.avg_pool2d(x4, geom)
        }
        .map_err(|e| rename(e, op))?;
        let sy = self.shape(y).to_vec();
        self.reshape(y, &[sy[0], sy[1], sy[3]])
    }

    /// The mean over every position of `[N,C,H,W]` or `[N,C,L]`, as `[N,C]`.
    pub fn global_avg_pool(&mut self, x: NodeId) -> Result<NodeId> {
        let s = self.shape(x).to_vec();
        let x4 = match s.len() {
            4 => x,
            3 => self.reshape(x, &[s[0], s[1], 1, s[2]])?,
            _ => {
                return err(
                    "global_avg_pool",
                    format!("needs [N,C,H,W] or [N,C,L], got {s:?}"),
                )
            }
        };
        let s4 = self.shape(x4).to_vec();
        let geom = PoolGeom {
            kernel: [s4[2], s4[3]],
            stride: [1, 1],
            padding: [0, 0],
        };
        let y = self.avg_pool2d(x4, geom)?;
        self.reshape(y, &[s[0], s[1]])
    }

    /// The input gradient of a max pool (`x_shape`) from `dy` and the argmax `idx` the
    /// forward pass recorded.
    pub fn max_pool_grad(
        &mut self,
        dy: NodeId,
        idx: NodeId,
        x_shape: &[usize],
        geom: PoolGeom,
    ) -> Result<NodeId> {
        Ok(self.push(
            Op::Pool(PoolOp::MaxPoolGrad { geom }),
            vec![dy, idx],
            x_shape.to_vec(),
        ))
    }

    /// The input gradient of an average pool (`x_shape`) from `dy`.
    pub fn avg_pool_grad(
        &mut self,
        dy: NodeId,
        x_shape: &[usize],
        geom: PoolGeom,
    ) -> Result<NodeId> {
        Ok(self.push(
            Op::Pool(PoolOp::AvgPoolGrad { geom }),
            vec![dy],
            x_shape.to_vec(),
        ))
    }
}
