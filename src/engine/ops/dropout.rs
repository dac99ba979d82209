//! Inverted dropout: every fact of the op in one file: its graph variant
//! ([`DropoutOp`]) and builder on [`Graph`], its vector-Jacobian rule, its lowering
//! ([`DropoutKernel`]), the CPU kernel it calls (`engine::cpu::kernels::dropout`), its
//! GPU pipeline, uniform record and grid (entry point `dropout` in shaders/gather.wgsl,
//! beside the other kernels that read the step counters), and the mask it draws
//! (`dropout_hash`, whose WGSL twin is in common.wgsl). The f64 reference is in
//! tests/it/reference.rs.

use crate::engine::cpu::kernels as cpu;
use crate::engine::gpu::executor::{record, u32c, Encoded, Limits};
use crate::engine::gpu::kernel_params::GatherParams;
use crate::engine::gpu::shaders::Pipe;
use crate::engine::graph::{Graph, NodeId, Op};
use crate::engine::plan::TensorRef;
use crate::error::{Error, Result, Setting};
use crate::pipe;

/// Inverted dropout: `out[i] = x[i] / (1 - p)` where `dropout_hash(seed, step, i) >=
/// dropout_threshold(p)`, else 0, with `step` the executor's optimizer step counter
/// (word 1 of the `"step"` state), so each training step draws a fresh mask and a run
/// repeats exactly. The mask is a pure function of `(seed, step, i)`: the op is linear
/// in x with a diagonal 0-or-`1/(1-p)` Jacobian, and its gradient is the same op applied
/// to dy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutOp {
    /// The drop probability, in `[0, 1)`.
    pub p: f32,
    /// Tells one dropout layer's masks from another's.
    pub seed: u32,
}

impl DropoutOp {
    /// The vector-Jacobian rule: the mask depends only on (seed, step, index), and the
    /// backward pass runs in the forward's step, so the gradient is the same mask and
    /// scale applied to `dy`.
    pub(crate) fn vjp(
        &self,
        g: &mut Graph,
        _id: NodeId,
        x: &[NodeId],
        dy: NodeId,
        _needs: &[bool],
    ) -> Result<Vec<(NodeId, NodeId)>> {
        Ok(vec![(x[0], g.dropout(dy, self.p, self.seed)?)])
    }

    /// The launch of a node reading `x` into `out`, with the step counters at `step`.
    pub(crate) fn lower(&self, x: TensorRef, out: TensorRef, step: TensorRef) -> DropoutKernel {
        DropoutKernel {
            x,
            out,
            step,
            seed: self.seed,
            threshold: dropout_threshold(self.p),
            scale: (1.0 / (1.0 - self.p as f64)) as f32,
        }
    }
}

/// `out[i] = x[i] · scale` where `dropout_hash(seed, step[1], i) >= threshold`, else 0;
/// `step` holds the step counters, word 1 the optimizer's count.
#[allow(missing_docs)] // the fields are the names the formula uses
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DropoutKernel {
    pub x: TensorRef,
    pub out: TensorRef,
    pub step: TensorRef,
    pub seed: u32,
    pub threshold: u32,
    pub scale: f32,
}

/// The op's pipeline (an entry point of shaders/gather.wgsl).
pub const PIPE: Pipe = pipe!("dropout", Gather, Read3Write1);

impl DropoutKernel {
    /// Runs it on the CPU: `v` reads an input window, `dst` is the output's.
    pub(crate) fn run_cpu<'a>(&self, v: impl Fn(TensorRef) -> &'a [f32], dst: &mut [f32]) {
        let step = v(self.step)[1].to_bits();
        cpu::dropout(v(self.x), dst, self.seed, step, self.threshold, self.scale)
    }

    /// Its GPU launch: uniform record (`GatherParams`), bindings and grid.
    pub(crate) fn encode(&self, lim: &Limits) -> Result<Encoded> {
        let ((wx, ox), (ws, os), (wo, oo)) = (
            lim.window(self.x)?,
            lim.window(self.step)?,
            lim.window(self.out)?,
        );
        let r = record(GatherParams {
            n: u32c(self.out.len)?,
            off_src: ox,
            off_step: os,
            off_out: oo,
            seed: self.seed,
            threshold: self.threshold,
            scale: self.scale,
            ..Default::default()
        });
        Ok((
            r,
            vec![(1, Some(wx)), (2, None), (3, Some(ws)), (4, Some(wo))],
            lim.grid_1d(self.out.len)?,
        ))
    }
}

/// The mask word of element `i` of a dropout with `seed` at optimizer step `step`: a
/// murmur3-style 32-bit mix (Wellons' lowbias32) applied three times, folding in the
/// seed, the step and the index. For a fixed seed and step it is a bijection of `i`.
/// shaders/common.wgsl holds its WGSL twin, `dropout_hash`; the GPU test checks that
/// they agree bit for bit.
pub fn dropout_hash(seed: u32, step: u32, i: u32) -> u32 {
    fn mix(mut h: u32) -> u32 {
        h ^= h >> 16;
        h = h.wrapping_mul(0x7feb_352d);
        h ^= h >> 15;
        h = h.wrapping_mul(0x846c_a68b);
        h ^ (h >> 16)
    }
    mix(mix(mix(seed) ^ step) ^ i)
}

/// The mask words below which a dropout with drop probability `p` zeroes an element:
/// `p · 2^32`, rounded (a word is uniform on `[0, 2^32)`).
pub fn dropout_threshold(p: f32) -> u32 {
    (p as f64 * 4_294_967_296.0)
        .round()
        .clamp(0.0, u32::MAX as f64) as u32
}

/// The op's builder.
impl Graph {
    /// Inverted dropout of `x` with drop probability `p` (`Op::Dropout`); `seed` tells
    /// one dropout layer's masks from another's. `p = 0` is the identity and adds no node.
    pub fn dropout(&mut self, x: NodeId, p: f32, seed: u32) -> Result<NodeId> {
        if !(0.0..1.0).contains(&p) {
            return Err(Error::invalid(
                Setting::Dropout,
                format!("{p} must be at least 0 and below 1"),
            ));
        }
        if p == 0.0 {
            return Ok(x);
        }
        let shape = self.shape(x).to_vec();
        Ok(self.push(Op::Dropout(DropoutOp { p, seed }), vec![x], shape))
    }
}
