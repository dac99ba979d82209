//! Graph builders for convolution, with their shape rules. 1-D versions are the `H = 1`
//! case of the 2-D ops, reached through reshapes (which cost nothing). Pooling's are in
//! `engine::ops::pool`.

use super::{Act, ConvGeom, Graph, NodeId, Op};
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
}

/// A shape error of a 2-D op reached through its 1-D wrapper, named as the caller knows it.
pub(crate) fn rename(e: Error, op: &str) -> Error {
    match e {
        Error::Shape { detail, .. } => Error::shape(op, detail),
        other => other,
    }
}
