//! Convolution (2-D over NCHW; 1-D is its `H = 1` case, reached through reshapes that
//! cost nothing): every fact of these ops in one file. For each op: its graph variant
//! ([`ConvOp`]) and builder on [`Graph`] with the shape rule, its vector-Jacobian rule
//! (`ConvOp::vjp`), its launch with every size resolved ([`ConvKernel`], from
//! `ConvOp::lower`), the CPU kernel it calls (`engine::cpu::conv`), and its GPU
//! pipeline, uniform record and grid (`ConvKernel::encode`; the entry point is the
//! implicit GEMM of shaders/conv_common.wgsl in the variant the autotuner chose,
//! [`ConvGemmShape`]; the f64 reference tests/it/reference/conv.rs).

use crate::engine::cpu::conv as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::{
    ConvParams, ReduceParams, CONV_FORWARD, CONV_GRAD_INPUT, CONV_GRAD_WEIGHT,
};
use crate::engine::gpu::shaders::{Pipe, CONV_VARIANTS};
use crate::engine::graph::autodiff::through_act;
use crate::engine::graph::{Act, Graph, NodeId, Op, ProductInputs};
use crate::engine::ops::broadcast::{one_axis, reduce_grid, reduce_pipe};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};
use crate::pipe;
use serde::{Deserialize, Serialize};

/// Stride, zero padding and dilation of a 2-D convolution per axis `[h, w]`. A 1-D
/// convolution is the `h = 1` case: `[1, s]`, `[0, p]`, `[1, d]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ConvGeom {
    /// Step between output positions.
    pub stride: [usize; 2],
    /// Zeros added on each side.
    pub padding: [usize; 2],
    /// Step between the kernel's taps.
    pub dilation: [usize; 2],
}

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

/// The graph ops of the family.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvOp {
    /// `act(conv(x, w) + bias)` over NCHW: inputs `[x, w]` or `[x, w, bias]`
    /// (`ProductInputs`) with x `[N,C,H,W]`, w `[O,C,KH,KW]`, bias `[O]`; output
    /// `[N,O,OH,OW]`. Cross-correlation, as in every deep-learning library. `act` is
    /// fused only when its slope comes from its output, as for `MatMul`;
    /// `Graph::conv2d` splits off the others.
    Conv2d {
        /// Stride, padding, dilation.
        geom: ConvGeom,
        /// The activation of the epilogue.
        act: Act,
    },
    /// Inputs `[dz, w]`: the gradient of `Conv2d` w.r.t. x; the node's shape is x's.
    Conv2dGradInput {
        /// The forward convolution's.
        geom: ConvGeom,
    },
    /// Inputs `[dz, x]`: the gradient of `Conv2d` w.r.t. w in `splits` parts,
    /// `[splits, O, C*KH*KW]`; part `s` sums over the images `[s*N/S, (s+1)*N/S)`, so
    /// the parts add up to the gradient. Parts let a GPU spread a long sum over many
    /// workgroups (split-K); `ReduceTo` adds them.
    Conv2dGradWeight {
        /// The forward convolution's.
        geom: ConvGeom,
        /// The kernel's `[KH, KW]`.
        kernel: [usize; 2],
        /// Parts the sum over images is split into.
        splits: usize,
    },
    /// Input `[dz]` (`[N,O,H,W]`): `Σ over n, h, w of dz`, the bias gradient `[O]`.
    ConvGradBias,
}

impl ConvOp {
    /// The op's name, in error messages and profiles.
    pub fn name(&self) -> &'static str {
        match self {
            ConvOp::Conv2d { .. } => "conv2d",
            ConvOp::Conv2dGradInput { .. } => "conv2d_grad_input",
            ConvOp::Conv2dGradWeight { .. } => "conv2d_grad_weight",
            ConvOp::ConvGradBias => "conv_grad_bias",
        }
    }

    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): the gradient
    /// of each input that `needs` asks for, as nodes appended to `g`.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        let ConvOp::Conv2d { geom, act } = *self else {
            return Err(Error::Unsupported(format!(
                "cannot differentiate through {} (second derivatives are not supported)",
                self.name()
            )));
        };
        let dz = through_act(g, act, dy, id, None)?;
        let at = ProductInputs::of(x.len());
        let (x_in, w) = (x[at.a], x[at.b]);
        let mut out = Vec::new();
        if needs[x_in] {
            let shape = g.shape(x_in).to_vec();
            out.push((x_in, g.conv2d_grad_input(dz, w, &shape, geom)?));
        }
        if needs[w] {
            let shape = g.shape(w).to_vec();
            out.push((w, g.conv2d_grad_weight(dz, x_in, &shape, geom)?));
        }
        if let Some(bias) = at.bias.map(|k| x[k]).filter(|&bias| needs[bias]) {
            out.push((bias, g.conv_grad_bias(dz)?));
        }
        Ok(out)
    }

    /// The launch that computes a node of this op: inputs at `ins` with shapes
    /// `in_shapes`, output of `shape` at `out`.
    pub(crate) fn lower(
        &self,
        ins: &[TensorRef],
        in_shapes: &[&[usize]],
        shape: &[usize],
        out: TensorRef,
    ) -> ConvKernel {
        match *self {
            ConvOp::Conv2d { geom, act } => {
                let at = ProductInputs::of(ins.len());
                ConvKernel::Conv2d {
                    x: ins[at.a],
                    w: ins[at.b],
                    bias: at.bias.map(|k| ins[k]),
                    out,
                    shape: ConvShape::new(in_shapes[at.a], in_shapes[at.b], shape, &geom),
                    act,
                }
            }
            ConvOp::Conv2dGradInput { geom } => ConvKernel::Conv2dGradInput {
                dz: ins[0],
                w: ins[1],
                out,
                shape: ConvShape::new(shape, in_shapes[1], in_shapes[0], &geom),
            },
            ConvOp::Conv2dGradWeight {
                geom,
                kernel,
                splits,
            } => {
                let (sz, sx) = (in_shapes[0], in_shapes[1]);
                let ws = [sz[1], sx[1], kernel[0], kernel[1]];
                ConvKernel::Conv2dGradWeight {
                    dz: ins[0],
                    x: ins[1],
                    out,
                    shape: ConvShape::new(sx, &ws, sz, &geom),
                    splits,
                }
            }
            ConvOp::ConvGradBias => {
                let s = in_shapes[0];
                ConvKernel::ConvGradBias {
                    dz: ins[0],
                    out,
                    n: s[0],
                    o: s[1],
                    plane: s[2..].iter().product(),
                }
            }
        }
    }
}

/// A convolution with every size resolved: x `[n,c,h,w]`, w `[o,c,kh,kw]`, output
/// `[n,o,oh,ow]`; stride, padding and dilation per axis `[h, w]`.
#[allow(missing_docs)] // the fields are the sizes the doc above names
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvShape {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub oh: usize,
    pub ow: usize,
    pub stride: [usize; 2],
    pub padding: [usize; 2],
    pub dilation: [usize; 2],
}

impl ConvShape {
    /// Terms summed per output: `c · kh · kw`.
    pub fn k(&self) -> usize {
        self.c * self.kh * self.kw
    }
    /// Positions per input plane: `h · w`.
    pub fn in_plane(&self) -> usize {
        self.h * self.w
    }
    /// Positions per output plane: `oh · ow`.
    pub fn out_plane(&self) -> usize {
        self.oh * self.ow
    }
    /// Multiply-adds of the forward pass (each backward kernel does as many).
    pub fn macs(&self) -> usize {
        self.n * self.o * self.out_plane() * self.k()
    }
}

impl ConvShape {
    /// The sizes of a convolution with x `xs`, w `ws` and output `ys` (all 4-D).
    pub fn new(xs: &[usize], ws: &[usize], ys: &[usize], g: &ConvGeom) -> ConvShape {
        ConvShape {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            o: ws[0],
            kh: ws[2],
            kw: ws[3],
            oh: ys[2],
            ow: ys[3],
            stride: g.stride,
            padding: g.padding,
            dilation: g.dilation,
        }
    }
}

/// One launch of the family, every size resolved. Each variant's doc gives its formula.
#[allow(missing_docs)] // the fields are the names the formulas use
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConvKernel {
    /// `out = act(conv2d(x, w) + bias)` over NCHW.
    Conv2d {
        x: TensorRef,
        w: TensorRef,
        bias: Option<TensorRef>,
        out: TensorRef,
        shape: ConvShape,
        act: Act,
    },
    /// `out` (x-shaped) = the gradient of a convolution w.r.t. x, from `dz` and `w`.
    Conv2dGradInput {
        dz: TensorRef,
        w: TensorRef,
        out: TensorRef,
        shape: ConvShape,
    },
    /// `out` (`[splits, o, c·kh·kw]`) = the gradient w.r.t. w in parts over images.
    Conv2dGradWeight {
        dz: TensorRef,
        x: TensorRef,
        out: TensorRef,
        shape: ConvShape,
        splits: usize,
    },
    /// `out[o] = Σ_n Σ_p dz[n, o, p]` for dz `[n, o, plane]`.
    ConvGradBias {
        dz: TensorRef,
        out: TensorRef,
        n: usize,
        o: usize,
        plane: usize,
    },
}

const CONV2D: Pipe = pipe!(
    "conv2d",
    Conv,
    Read3Write1,
    "conv",
    [("MODE", CONV_FORWARD)]
);
const CONV2D_GRAD_INPUT: Pipe = pipe!(
    "conv2d_grad_input",
    Conv,
    Read3Write1,
    "conv",
    [("MODE", CONV_GRAD_INPUT)]
);
const CONV2D_GRAD_WEIGHT: Pipe = pipe!(
    "conv2d_grad_weight",
    Conv,
    Read3Write1,
    "conv",
    [("MODE", CONV_GRAD_WEIGHT)]
);

/// The family's pipelines: the implicit GEMM's one entry point in three modes, each in
/// every variant of `CONV_VARIANTS`. The bias gradient is a reduction and runs on
/// reduce.wgsl's.
pub const PIPES: &[Pipe] = &[CONV2D, CONV2D_GRAD_INPUT, CONV2D_GRAD_WEIGHT];

impl ConvKernel {
    /// The window it writes.
    pub fn output(&self) -> TensorRef {
        match *self {
            ConvKernel::Conv2d { out, .. }
            | ConvKernel::Conv2dGradInput { out, .. }
            | ConvKernel::Conv2dGradWeight { out, .. }
            | ConvKernel::ConvGradBias { out, .. } => out,
        }
    }

    /// The sizes of a convolution kernel (`None` for the bias gradient).
    pub fn shape(&self) -> Option<&ConvShape> {
        match self {
            ConvKernel::Conv2d { shape, .. }
            | ConvKernel::Conv2dGradInput { shape, .. }
            | ConvKernel::Conv2dGradWeight { shape, .. } => Some(shape),
            ConvKernel::ConvGradBias { .. } => None,
        }
    }

    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's; `scratch`
    /// holds `cpu::scratch_words(self, budget)` words.
    pub(crate) fn run_cpu<'a>(
        &self,
        v: impl Fn(TensorRef) -> &'a [f32],
        dst: &mut [f32],
        scratch: &mut [f32],
        budget: usize,
    ) {
        match *self {
            ConvKernel::Conv2d {
                x,
                w,
                bias,
                shape,
                act,
                ..
            } => cpu::conv2d(v(x), v(w), bias.map(&v), dst, &shape, act, scratch, budget),
            ConvKernel::Conv2dGradInput { dz, w, shape, .. } => {
                cpu::conv2d_grad_input(v(dz), v(w), dst, &shape, scratch, budget)
            }
            ConvKernel::Conv2dGradWeight {
                dz,
                x,
                shape,
                splits,
                ..
            } => cpu::conv2d_grad_weight(v(dz), v(x), dst, &shape, splits, scratch, budget),
            ConvKernel::ConvGradBias {
                dz, n, o, plane, ..
            } => cpu::conv_grad_bias(v(dz), dst, n, o, plane),
        }
    }

    /// Its GPU pipeline.
    pub fn pipe(&self) -> Pipe {
        match *self {
            ConvKernel::Conv2d { .. } => CONV2D,
            ConvKernel::Conv2dGradInput { .. } => CONV2D_GRAD_INPUT,
            ConvKernel::Conv2dGradWeight { .. } => CONV2D_GRAD_WEIGHT,
            // The bias gradient is a reduction: Σ over images and positions.
            ConvKernel::ConvGradBias { n, o, plane, .. } => {
                reduce_pipe(o, n * plane, one_axis(&[n, plane]))
            }
        }
    }

    /// What the autotuner decides its variant by (`None` for the bias gradient, a
    /// reduction).
    pub fn gemm_shape(&self) -> Option<ConvGemmShape> {
        let (mode, shape, splits, bias, act) = match *self {
            ConvKernel::Conv2d {
                bias, shape, act, ..
            } => (CONV_FORWARD, shape, 1, bias.is_some(), act.code()),
            ConvKernel::Conv2dGradInput { shape, .. } => {
                (CONV_GRAD_INPUT, shape, 1, false, Act::Identity.code())
            }
            ConvKernel::Conv2dGradWeight { shape, splits, .. } => {
                (CONV_GRAD_WEIGHT, shape, splits, false, Act::Identity.code())
            }
            ConvKernel::ConvGradBias { .. } => return None,
        };
        Some(ConvGemmShape {
            mode,
            shape,
            splits,
            bias,
            act,
        })
    }

    /// Its GPU launch, a convolution as GEMM variant `variant` (`CONV_VARIANTS`; the
    /// tile count depends on the variant's tile): uniform record, bindings and grid.
    pub(crate) fn encode(&self, lim: &Limits, variant: usize) -> Result<Encoded> {
        // The product's operands, as conv_common.wgsl binds them (see its header).
        let (a, b, bias) = match *self {
            ConvKernel::Conv2d { x, w, bias, .. } => (w, x, bias),
            ConvKernel::Conv2dGradInput { dz, w, .. } => (w, dz, None),
            ConvKernel::Conv2dGradWeight { dz, x, .. } => (dz, x, None),
            ConvKernel::ConvGradBias {
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
                let groups = reduce_grid(self.pipe(), o, lim)?;
                return Ok((r, vec![(1, Some(wx)), (2, Some(wo))], groups));
            }
        };
        let gemm = self.gemm_shape().expect("a convolution product");
        let ((wa, oa), (wb, ob), (wo, oo)) =
            (lim.window(a)?, lim.window(b)?, lim.window(self.output())?);
        let (wbias, obias) = lim.window_opt(bias)?;
        let (params, groups) = gemm.params(variant, [oa, ob, obias, oo])?;
        Ok((
            record(params),
            vec![(1, Some(wa)), (2, Some(wb)), (3, wbias), (4, Some(wo))],
            lim.grid(groups)?,
        ))
    }
}

/// A convolution product as the autotuner (`gpu::tune`) tells its launches apart: which
/// product (a `CONV_*` mode of conv_common.wgsl), the sizes, the weight gradient's
/// splits, whether a bias is added and the activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConvGemmShape {
    /// `CONV_FORWARD`, `CONV_GRAD_INPUT` or `CONV_GRAD_WEIGHT`.
    pub mode: u32,
    /// The convolution's sizes.
    pub shape: ConvShape,
    /// Parts the weight gradient's sum is split into (1 for the other products).
    pub splits: usize,
    /// Whether the forward product adds a bias.
    pub bias: bool,
    /// The activation's code (`Act::code`).
    pub act: u32,
}

impl ConvGemmShape {
    /// Its pipeline.
    pub fn pipe(&self) -> Pipe {
        match self.mode {
            CONV_FORWARD => CONV2D,
            CONV_GRAD_INPUT => CONV2D_GRAD_INPUT,
            _ => CONV2D_GRAD_WEIGHT,
        }
    }

    /// Rows and columns of one split's product (see conv_common.wgsl's header).
    fn product(&self) -> (usize, usize) {
        let s = &self.shape;
        match self.mode {
            CONV_FORWARD => (s.o, s.n * s.out_plane()),
            CONV_GRAD_INPUT => (s.c, s.n * s.in_plane()),
            _ => (s.o, s.k()),
        }
    }

    /// Words of the operands `[a, b, bias, out]` the kernel binds (bias 0 when absent).
    pub fn operand_lens(&self) -> [usize; 4] {
        let s = &self.shape;
        let (w, x, z) = (
            s.o * s.k(),
            s.n * s.c * s.in_plane(),
            s.n * s.o * s.out_plane(),
        );
        match self.mode {
            CONV_FORWARD => [w, x, if self.bias { s.o } else { 0 }, z],
            CONV_GRAD_INPUT => [w, z, 0, x],
            _ => [z, x, 0, self.splits * s.o * s.k()],
        }
    }

    /// The shape as the tune cache and `riskgrad bench tune` name it, e.g.
    /// `conv2d_grad_weight n256 c32 3x1 o64 k1x3 s1x1 p0x1 d1x1 splits 2 act0`.
    pub fn key(&self) -> String {
        let s = &self.shape;
        format!(
            "{} n{} c{} {}x{} o{} k{}x{} s{}x{} p{}x{} d{}x{} splits {} bias{} act{}",
            self.pipe().name(),
            s.n,
            s.c,
            s.h,
            s.w,
            s.o,
            s.kh,
            s.kw,
            s.stride[0],
            s.stride[1],
            s.padding[0],
            s.padding[1],
            s.dilation[0],
            s.dilation[1],
            self.splits,
            self.bias as u32,
            self.act
        )
    }

    /// The uniform record of a launch as `variant` (an index into `CONV_VARIANTS`) with
    /// the operands at `offsets` (`[a, b, bias, out]`, words within each binding), and
    /// its number of workgroups.
    pub(crate) fn params(&self, variant: usize, offsets: [u32; 4]) -> Result<(ConvParams, usize)> {
        let s = &self.shape;
        let tile = &CONV_VARIANTS[variant];
        let (m, cols) = self.product();
        let tiles_n = cols.div_ceil(tile.tile_cols as usize);
        let tiles = m.div_ceil(tile.tile_rows as usize) * tiles_n;
        let [off_a, off_b, off_bias, off_out] = offsets;
        let params = ConvParams {
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
            act: self.act,
            off_a,
            off_b,
            off_bias,
            off_out,
            has_bias: self.bias as u32,
            m: u32c(m)?,
            cols: u32c(cols)?,
            tiles_n: u32c(tiles_n)?,
            tiles: u32c(tiles)?,
            splits: u32c(self.splits)?,
            ..Default::default()
        };
        Ok((params, tiles * self.splits))
    }
}

fn err<T>(op: &str, detail: String) -> Result<T> {
    Err(Error::shape(op, detail))
}

/// The family's builders, with their shape rules.
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
        let op_with = |act| Op::Conv(ConvOp::Conv2d { geom, act });
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
        Ok(self.push(
            Op::Conv(ConvOp::Conv2dGradInput { geom }),
            vec![dz, w],
            x_shape.to_vec(),
        ))
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
            Op::Conv(ConvOp::Conv2dGradWeight {
                geom,
                kernel,
                splits,
            }),
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
        Ok(self.push(Op::Conv(ConvOp::ConvGradBias), vec![dz], vec![o]))
    }
}

/// A shape error of a 2-D op reached through its 1-D wrapper, named as the caller knows it.
pub(crate) fn rename(e: Error, op: &str) -> Error {
    match e {
        Error::Shape { detail, .. } => Error::shape(op, detail),
        other => other,
    }
}
