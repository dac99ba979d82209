//! Graph builders for convolution and pooling, with their shape rules. 1-D versions are
//! the `H = 1` case of the 2-D ops, reached through reshapes (which cost nothing).

use super::{Act, ConvGeom, Graph, NodeId, Op, PoolGeom};
use crate::error::{Error, Result};

/// Output length of a convolution or pooling window along one axis, or `None` when the
/// (dilated) window does not fit in the padded input even once.
pub fn conv_out_len(
    len: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation * (kernel - 1) + 1;
    let padded = len + 2 * padding;
    (padded >= span && stride > 0).then(|| (padded - span) / stride + 1)
}

/// How many parts the weight gradient of a convolution is summed in (see
/// `Op::Conv2dGradWeight`): enough for about 128 GPU workgroups of 64×64 outputs, but
/// each part summing at least 1024 terms and holding at least one image.
pub fn weight_grad_splits(n: usize, out_plane: usize, o: usize, k: usize) -> usize {
    let tiles = o.div_ceil(64) * k.div_ceil(64);
    let by_parallelism = 128 / tiles;
    let by_length = n * out_plane / 1024;
    by_parallelism.min(by_length).min(n).max(1)
}

/// Positions in a plane are stored as f32 numbers by `MaxPoolArgmax` (exact, and read
/// back by the CPU kernels with a trick that needs them below 2^23).
const MAX_PLANE: usize = 1 << 23;

fn err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

impl Graph {
    /// `act(conv2d(x, w) + bias)`: x `[N,C,H,W]`, w `[O,C,KH,KW]`, bias `[O]`. One fused
    /// node, or the convolution and a `Unary` for GELU and SiLU (`SlopeFrom`).
    pub fn conv2d(
        &mut self,
        x: NodeId,
        w: NodeId,
        bias: Option<NodeId>,
        geom: ConvGeom,
        act: Act,
    ) -> Result<NodeId> {
        let (sx, sw) = (self.shape(x).to_vec(), self.shape(w).to_vec());
        if sx.len() != 4 || sw.len() != 4 {
            return err(
                "conv2d",
                format!("needs x [N,C,H,W] and w [O,C,KH,KW], got {sx:?} and {sw:?}"),
            );
        }
        if sx[1] != sw[1] {
            return err(
                "conv2d",
                format!(
                    "x {sx:?} has {} channels, w {sw:?} expects {}",
                    sx[1], sw[1]
                ),
            );
        }
        if geom.stride.contains(&0) || geom.dilation.contains(&0) {
            return err(
                "conv2d",
                format!(
                    "stride {:?} and dilation {:?} must be at least 1",
                    geom.stride, geom.dilation
                ),
            );
        }
        let out = |axis: usize| {
            conv_out_len(sx[2 + axis], sw[2 + axis], geom.stride[axis], geom.padding[axis], geom.dilation[axis]).ok_or_else(|| {
                Error::shape(
                    "conv2d",
                    format!(
                        "a kernel of {} with dilation {} does not fit in {} + 2×{} padding (x {sx:?}, w {sw:?})",
                        sw[2 + axis], geom.dilation[axis], sx[2 + axis], geom.padding[axis]
                    ),
                )
            })
        };
        let (oh, ow) = (out(0)?, out(1)?);
        let mut inputs = vec![x, w];
        if let Some(b) = bias {
            if self.shape(b) != [sw[0]] {
                return err(
                    "conv2d",
                    format!("bias {:?} must be [{}]", self.shape(b), sw[0]),
                );
            }
            inputs.push(b);
        }
        let op_with = |act| Op::Conv2d { geom, act };
        Ok(self.push_with_act(act, op_with, inputs, vec![sx[0], sw[0], oh, ow]))
    }

    /// `act(conv1d(x, w) + bias)` over `[N,C,L]` with w `[O,C,K]`: the `H = 1` case of
    /// `conv2d`, on the same kernels.
    #[allow(clippy::too_many_arguments)]
    pub fn conv1d(
        &mut self,
        x: NodeId,
        w: NodeId,
        bias: Option<NodeId>,
        stride: usize,
        padding: usize,
        dilation: usize,
        act: Act,
    ) -> Result<NodeId> {
        let (sx, sw) = (self.shape(x).to_vec(), self.shape(w).to_vec());
        if sx.len() != 3 || sw.len() != 3 {
            return err(
                "conv1d",
                format!("needs x [N,C,L] and w [O,C,K], got {sx:?} and {sw:?}"),
            );
        }
        let x4 = self.reshape(x, &[sx[0], sx[1], 1, sx[2]])?;
        let w4 = self.reshape(w, &[sw[0], sw[1], 1, sw[2]])?;
        let geom = ConvGeom {
            stride: [1, stride],
            padding: [0, padding],
            dilation: [1, dilation],
        };
        let y = self
            .conv2d(x4, w4, bias, geom, act)
            .map_err(|e| rename(e, "conv1d"))?;
        let sy = self.shape(y).to_vec();
        self.reshape(y, &[sy[0], sy[1], sy[3]])
    }

    /// The input gradient of a convolution (x-shaped `x_shape`) from `dz` and the
    /// weights `w`; autodiff adds it, and benchmarks time it on its own.
    pub fn conv2d_grad_input(
        &mut self,
        dz: NodeId,
        w: NodeId,
        x_shape: &[usize],
        geom: ConvGeom,
    ) -> Result<NodeId> {
        Ok(self.push(Op::Conv2dGradInput { geom }, vec![dz, w], x_shape.to_vec()))
    }

    /// The weight gradient `[O,C,KH,KW]`: split parts (for long sums) added by a reduce.
    pub fn conv2d_grad_weight(
        &mut self,
        dz: NodeId,
        x: NodeId,
        w_shape: &[usize],
        geom: ConvGeom,
    ) -> Result<NodeId> {
        let (sz, sx) = (self.shape(dz).to_vec(), self.shape(x).to_vec());
        let k = w_shape[1] * w_shape[2] * w_shape[3];
        let splits = weight_grad_splits(sx[0], sz[2] * sz[3], w_shape[0], k);
        let kernel = [w_shape[2], w_shape[3]];
        let parts = self.push(
            Op::Conv2dGradWeight {
                geom,
                kernel,
                splits,
            },
            vec![dz, x],
            vec![splits, w_shape[0], k],
        );
        let summed = if splits > 1 {
            self.reduce_to(parts, &[1, w_shape[0], k], 1.0)?
        } else {
            parts
        };
        self.reshape(summed, w_shape)
    }

    pub(crate) fn conv_grad_bias(&mut self, dz: NodeId) -> Result<NodeId> {
        let o = self.shape(dz)[1];
        Ok(self.push(Op::ConvGradBias, vec![dz], vec![o]))
    }

    /// Swaps the last two axes of a tensor of rank 2 or more.
    pub fn transpose_last(&mut self, x: NodeId) -> Result<NodeId> {
        let mut s = self.shape(x).to_vec();
        if s.len() < 2 {
            return err("transpose", format!("needs at least 2 axes, got {s:?}"));
        }
        let r = s.len();
        s.swap(r - 2, r - 1);
        Ok(self.push(Op::Transpose, vec![x], s))
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
        let idx = self.push(Op::MaxPoolArgmax { geom }, vec![x], shape.clone());
        Ok(self.push(Op::PoolGather, vec![x, idx], shape))
    }

    /// Average pooling over `[N,C,H,W]` (the divisor is the window size, padding
    /// included).
    pub fn avg_pool2d(&mut self, x: NodeId, geom: PoolGeom) -> Result<NodeId> {
        let shape = self.pool_shape("avg_pool", x, &geom)?;
        Ok(self.push(Op::AvgPool { geom }, vec![x], shape))
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
        Ok(self.push(Op::MaxPoolGrad { geom }, vec![dy, idx], x_shape.to_vec()))
    }

    /// The input gradient of an average pool (`x_shape`) from `dy`.
    pub fn avg_pool_grad(
        &mut self,
        dy: NodeId,
        x_shape: &[usize],
        geom: PoolGeom,
    ) -> Result<NodeId> {
        Ok(self.push(Op::AvgPoolGrad { geom }, vec![dy], x_shape.to_vec()))
    }
}

/// A shape error of a 2-D op reached through its 1-D wrapper, named as the caller knows it.
fn rename(e: Error, op: &str) -> Error {
    match e {
        Error::Shape { detail, .. } => Error::shape(op, detail),
        other => other,
    }
}
