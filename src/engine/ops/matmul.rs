//! The matrix product with its fused epilogue (bias row or added matrix, activation):
//! graph op ([`MatMulOp`]) and builders on [`Graph`] with the shape rule, its
//! vector-Jacobian rule, lowering ([`MatMulKernel`]), the CPU kernel it calls
//! (`engine::cpu::kernels::matmul_auto`), and its GPU record and grid. Its pipelines
//! are the four transpose cases of shaders/matmul.wgsl in each of the variants the
//! autotuner chooses between (`gpu::shaders::MATMUL_VARIANTS`, `gpu::tune`); the CPU
//! executor runs two independent products side by side (`cpu::pairs`), and the rewrite
//! pass sums gradients into product epilogues (`graph::fuse`). The f64 reference is in
//! tests/it/reference.rs.

use crate::engine::cpu::kernels as cpu;
use crate::engine::cpu::lanes::Lanes;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::{MatMulParams, BIAS_MATRIX, BIAS_NONE, BIAS_ROW};
use crate::engine::gpu::shaders::{Pipe, MATMUL_VARIANTS};
use crate::engine::graph::autodiff::through_act;
use crate::engine::graph::{Act, Graph, NodeId, Op, ProductInputs};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result};

/// `act(op(a) · op(b) + bias)` with `op` a transpose when its flag is set.
/// Inputs `[a, b]` or `[a, b, bias]` (bias of shape `[n]`, added to every row, or a
/// whole `[m, n]` matrix added); `ProductInputs` says where each is.
/// The product is not stored, so autodiff can only fuse an `act` whose slope comes
/// from its output (`SlopeFrom::Output`); `Graph::matmul_ex` emits the product and
/// a separate `Unary` for the others (GELU, SiLU).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatMulOp {
    /// Whether `a` is read transposed.
    pub trans_a: bool,
    /// Whether `b` is read transposed.
    pub trans_b: bool,
    /// The epilogue's activation.
    pub act: Act,
}

impl MatMulOp {
    /// The vector-Jacobian rule of node `id` (inputs `x`, gradient `dy`): the gradient
    /// of each input that `needs` asks for, as products appended to `g`.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        let MatMulOp {
            trans_a,
            trans_b,
            act,
        } = *self;
        let dz = through_act(g, act, dy, id, None)?;
        let at = ProductInputs::of(x.len());
        let (a, b) = (x[at.a], x[at.b]);
        let mut out = Vec::new();
        if needs[a] {
            // d op(A) = dz · op(B)ᵀ; stored transposed when A is.
            let da = if trans_a {
                g.matmul_ex(b, dz, None, trans_b, true, Act::Identity)?
            } else {
                g.matmul_ex(dz, b, None, false, !trans_b, Act::Identity)?
            };
            out.push((a, da));
        }
        if needs[b] {
            // d op(B) = op(A)ᵀ · dz; stored transposed when B is.
            let db = if trans_b {
                g.matmul_ex(dz, a, None, true, trans_a, Act::Identity)?
            } else {
                g.matmul_ex(a, dz, None, !trans_a, false, Act::Identity)?
            };
            out.push((b, db));
        }
        if let Some(bias) = at.bias.map(|k| x[k]).filter(|&bias| needs[bias]) {
            let shape = g.shape(bias).to_vec();
            // A row bias sums the rows; an added matrix takes dz as it is.
            let d = if shape == g.shape(id) {
                dz
            } else {
                g.reduce_to(dz, &shape, 1.0)?
            };
            out.push((bias, d));
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
    ) -> MatMulKernel {
        let at = ProductInputs::of(ins.len());
        let sa = in_shapes[at.a];
        let k = if self.trans_a { sa[0] } else { sa[1] };
        MatMulKernel {
            a: ins[at.a],
            b: ins[at.b],
            bias: at.bias.map(|k| ins[k]),
            out,
            m: shape[0],
            n: shape[1],
            k,
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            act: self.act,
        }
    }
}

/// `out[m,n] = act(op(a)[m,k] · op(b)[k,n] + bias[n])`, row-major storage (`bias` a
/// `[n]` row or a whole `[m, n]` matrix).
#[allow(missing_docs)] // the fields are the names the formula uses
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MatMulKernel {
    pub a: TensorRef,
    pub b: TensorRef,
    pub bias: Option<TensorRef>,
    pub out: TensorRef,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub trans_a: bool,
    pub trans_b: bool,
    pub act: Act,
}

impl MatMulKernel {
    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's; large
    /// products split over `lanes`.
    pub(crate) fn run_cpu<'a>(
        &self,
        v: impl Fn(TensorRef) -> &'a [f32],
        dst: &mut [f32],
        lanes: &Lanes,
    ) {
        let k = self;
        cpu::matmul_auto(
            v(k.a),
            v(k.b),
            k.bias.map(&v),
            dst,
            k.m,
            k.n,
            k.k,
            k.trans_a,
            k.trans_b,
            k.act,
            lanes,
        )
    }

    /// Its GPU pipeline (of the variant the launch runs as: `gpu::shaders::PipeKey`).
    pub fn pipe(&self) -> Pipe {
        Pipe::matmul(self.trans_a, self.trans_b)
    }

    /// The shape the autotuner decides its variant by.
    pub fn shape(&self) -> MatMulShape {
        MatMulShape {
            m: self.m,
            n: self.n,
            k: self.k,
            trans_a: self.trans_a,
            trans_b: self.trans_b,
            bias: match self.bias {
                None => BIAS_NONE,
                Some(t) if t.len > self.n => BIAS_MATRIX,
                Some(_) => BIAS_ROW,
            },
            act: self.act.code(),
        }
    }

    /// Its GPU launch as matmul variant `variant`: uniform record (`MatMulParams`; the
    /// tile count depends on the variant's tile), bindings and grid.
    pub(crate) fn encode(&self, lim: &Limits, variant: usize) -> Result<Encoded> {
        let ((wa, oa), (wb, ob), (wo, oo)) = (
            lim.window(self.a)?,
            lim.window(self.b)?,
            lim.window(self.out)?,
        );
        let (wbias, obias) = lim.window_opt(self.bias)?;
        let (params, tiles) = self.shape().params(variant, [oa, ob, obias, oo])?;
        Ok((
            record(params),
            vec![(1, Some(wa)), (2, Some(wb)), (3, wbias), (4, Some(wo))],
            lim.grid(tiles)?,
        ))
    }
}

/// A matmul as the autotuner (`gpu::tune`) tells its launches apart: its sizes,
/// transposes, bias kind and activation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MatMulShape {
    /// Rows of the output.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// The summed axis.
    pub k: usize,
    /// Whether `a` is stored transposed.
    pub trans_a: bool,
    /// Whether `b` is stored transposed.
    pub trans_b: bool,
    /// `BIAS_NONE`, `BIAS_ROW` or `BIAS_MATRIX` (kernel_params).
    pub bias: u32,
    /// The activation's code (`Act::code`).
    pub act: u32,
}

impl MatMulShape {
    /// The shape as the cache and `riskgrad bench tune` name it, e.g.
    /// `256x64x58 NT bias1 act1`.
    pub fn key(&self) -> String {
        let t = |b: bool| if b { 'T' } else { 'N' };
        format!(
            "{}x{}x{} {}{} bias{} act{}",
            self.m,
            self.n,
            self.k,
            t(self.trans_a),
            t(self.trans_b),
            self.bias,
            self.act
        )
    }

    /// Its pipeline.
    pub fn pipe(&self) -> Pipe {
        Pipe::matmul(self.trans_a, self.trans_b)
    }

    /// Words of the operands `[a, b, bias, out]` the kernel binds (bias 0 when absent).
    pub fn operand_lens(&self) -> [usize; 4] {
        let bias = match self.bias {
            BIAS_NONE => 0,
            BIAS_MATRIX => self.m * self.n,
            _ => self.n,
        };
        [self.m * self.k, self.k * self.n, bias, self.m * self.n]
    }

    /// The uniform record of a launch as `variant` (an index into `MATMUL_VARIANTS`;
    /// the tile count depends on its tile) with the operands at `offsets` (`[a, b,
    /// bias, out]`, words within each binding), and its number of workgroups.
    pub(crate) fn params(
        &self,
        variant: usize,
        offsets: [u32; 4],
    ) -> Result<(MatMulParams, usize)> {
        let variant = &MATMUL_VARIANTS[variant];
        let tiles_n = self.n.div_ceil(variant.tile_cols as usize);
        let tiles = self.m.div_ceil(variant.tile_rows as usize) * tiles_n;
        let [off_a, off_b, off_bias, off_out] = offsets;
        let params = MatMulParams {
            m: u32c(self.m)?,
            n: u32c(self.n)?,
            k: u32c(self.k)?,
            act: self.act,
            off_a,
            off_b,
            off_bias,
            off_out,
            has_bias: self.bias,
            tiles_n: u32c(tiles_n)?,
            tiles: u32c(tiles)?,
            _pad: 0,
        };
        Ok((params, tiles))
    }
}

/// The family's builders, with their shape rules.
impl Graph {
    /// `act(op(a) · op(b) + bias)`; `a`, `b` are 2-D, `bias` is `[n]` (added to every
    /// row) or `[m, n]` (a whole matrix added, as when gradients are summed into it).
    /// One fused node, or the product and a `Unary` for GELU and SiLU (`SlopeFrom`).
    pub fn matmul_ex(
        &mut self,
        a: NodeId,
        b: NodeId,
        bias: Option<NodeId>,
        trans_a: bool,
        trans_b: bool,
        act: Act,
    ) -> Result<NodeId> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        if sa.len() != 2 || sb.len() != 2 {
            return Err(Error::shape(
                "matmul",
                format!("needs 2-D operands, got {sa:?} and {sb:?}"),
            ));
        }
        let (m, ka) = if trans_a {
            (sa[1], sa[0])
        } else {
            (sa[0], sa[1])
        };
        let (kb, n) = if trans_b {
            (sb[1], sb[0])
        } else {
            (sb[0], sb[1])
        };
        if ka != kb {
            return Err(Error::shape(
                "matmul",
                format!(
                    "inner sizes differ: {sa:?}{} · {sb:?}{}",
                    t(trans_a),
                    t(trans_b)
                ),
            ));
        }
        let mut inputs = vec![a, b];
        if let Some(bias) = bias {
            if self.shape(bias) != [n] && self.shape(bias) != [m, n] {
                return Err(Error::shape(
                    "matmul",
                    format!("bias {:?} must be [{n}] or [{m}, {n}]", self.shape(bias)),
                ));
            }
            inputs.push(bias);
        }
        let op_with = |act| {
            Op::MatMul(MatMulOp {
                trans_a,
                trans_b,
                act,
            })
        };
        Ok(self.push_with_act(act, op_with, inputs, vec![m, n]))
    }

    /// `a · b` for 2-D `a`, `b` (no bias, no activation).
    pub fn matmul(&mut self, a: NodeId, b: NodeId) -> Result<NodeId> {
        self.matmul_ex(a, b, None, false, false, Act::Identity)
    }

    /// A dense layer `act(x · w + b)` as one fused matmul.
    pub fn linear(&mut self, x: NodeId, w: NodeId, b: NodeId, act: Act) -> Result<NodeId> {
        self.matmul_ex(x, w, Some(b), false, false, act)
    }
}

fn t(trans: bool) -> &'static str {
    if trans {
        "ᵀ"
    } else {
        ""
    }
}
