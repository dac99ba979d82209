//! The CPU runners of a split step (`engine::step_split`): a row launch on a block of
//! the batch rows, a launch that sums over the rows, whole, inside one lane's part, and
//! such a sum taken as the CPU always takes it, in two halves (`kernels::sum_halves`),
//! each half on the lane that computed its rows.

use crate::engine::ops::broadcast::BroadcastKernel;
use crate::engine::ops::dropout::DropoutKernel;
use crate::engine::ops::elementwise::ElementwiseKernel;
use crate::engine::ops::gather::GatherKernel;
use crate::engine::ops::loss::LossKernel;
use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::plan::{contiguous_strides, Kernel, TensorRef, MAX_RANK};

/// A whole launch that `cost` knows, on the calling thread: `read` gives an input
/// window, `out` is the output's.
pub fn run_whole<'a>(kernel: &Kernel, read: impl Fn(TensorRef) -> &'a [f32], out: &mut [f32]) {
    use super::kernels as cpu;
    match *kernel {
        Kernel::MatMul(MatMulKernel {
            a,
            b,
            bias,
            m,
            n,
            k,
            trans_a,
            trans_b,
            act,
            ..
        }) => cpu::matmul_on(
            read(a),
            read(b),
            bias.map(&read),
            out,
            m,
            n,
            k,
            trans_a,
            trans_b,
            act,
            false,
        ),
        // Their own CPU runners take no lanes, so they may run inside a lane's part.
        Kernel::Broadcast(k) => k.run_cpu(read, out),
        Kernel::Loss(k) => k.run_cpu(read, out),
        _ => unreachable!("not a launch run whole"),
    }
}

/// Rows `rows` of a row launch (`row_width` said it is one, its rows `width` words):
/// `read` gives a whole input window, `out` is those rows of the output.
pub fn run_rows<'a>(
    kernel: &Kernel,
    width: usize,
    rows: std::ops::Range<usize>,
    step: usize,
    read: impl Fn(TensorRef) -> &'a [f32],
    out: &mut [f32],
) {
    use super::kernels as cpu;
    let block = |t: TensorRef, w: usize| &read(t)[rows.start * w..rows.end * w];
    let count = rows.len();
    match *kernel {
        Kernel::Gather(GatherKernel::GatherRows {
            table,
            perm,
            batch,
            cols,
            ..
        }) => {
            // These rows of the step's window, as the window of a step of `count` rows.
            let perm: &[u32] = bytemuck::cast_slice(read(perm));
            let window = &perm[step * batch + rows.start..step * batch + rows.end];
            cpu::gather_rows(read(table), window, out, 0, count, cols)
        }
        Kernel::MatMul(MatMulKernel {
            a,
            b,
            bias,
            n,
            k,
            trans_b,
            act,
            ..
        }) => {
            let bias = bias.map(|t| if t.len == n { read(t) } else { block(t, n) });
            cpu::matmul_on(
                block(a, k),
                read(b),
                bias,
                out,
                count,
                n,
                k,
                false,
                trans_b,
                act,
                false,
            )
        }
        Kernel::Elementwise(ElementwiseKernel::ActGrad { act, dy, y, .. }) => {
            cpu::act_grad(act, block(dy, width), block(y, width), out, None)
        }
        Kernel::Elementwise(ElementwiseKernel::Unary { act, x, .. }) => {
            cpu::unary(act, block(x, width), out, None)
        }
        Kernel::Elementwise(ElementwiseKernel::Binary { op, a, b, .. }) => {
            let shape: [usize; MAX_RANK] = crate::engine::plan::padded(&[count * width], 1);
            let strides = contiguous_strides(&shape);
            cpu::binary(
                op,
                block(a, width),
                block(b, width),
                out,
                &shape,
                &strides,
                &strides,
                None,
            )
        }
        Kernel::Loss(LossKernel::BceWithLogitsGrad {
            logits,
            targets,
            dloss,
            pos_weight,
            ..
        }) => {
            let scale = read(dloss)[0] / logits.len as f32;
            cpu::bce_with_logits_grad_scaled(
                block(logits, width),
                block(targets, width),
                scale,
                out,
                pos_weight,
            )
        }
        Kernel::Dropout(DropoutKernel {
            x,
            step: counters,
            seed,
            threshold,
            scale,
            ..
        }) => {
            // The optimizer's step count, as the whole kernel reads it.
            let t = read(counters)[1].to_bits();
            cpu::dropout_from(
                block(x, width),
                out,
                seed,
                t,
                threshold,
                scale,
                rows.start * width,
            )
        }
        _ => unreachable!("not a row launch"),
    }
}

/// Whether a launch run together sums over the batch's `batch` rows in the two halves
/// the rows split into across two lanes (`kernels::sum_halves`), reading only those rows
/// of its row-tensor inputs: a product over the rows (a weight gradient) or a sum of
/// leading rows (a bias gradient). Each lane of a split step then sums its own rows
/// (`run_half`), and the halves are added after the join (`add_halves`).
pub fn sums_in_halves(kernel: &Kernel, batch: usize) -> bool {
    use super::kernels as cpu;
    let halves = match *kernel {
        Kernel::MatMul(MatMulKernel {
            k,
            trans_a: true,
            trans_b: false,
            bias: None,
            act: crate::engine::graph::Act::Identity,
            ..
        }) if k == batch => cpu::product_halves(k, true),
        Kernel::Broadcast(BroadcastKernel::ReduceTo {
            in_shape,
            out_shape,
            ..
        }) => match cpu::leading_rows(&in_shape, &out_shape) {
            Some((rows, _)) if rows == batch => cpu::sum_halves(rows),
            _ => None,
        },
        _ => None,
    };
    halves.is_some()
}

/// Half `half` of a launch that `sums_in_halves`, unscaled, into `out`: the first into
/// its output window, the second into a buffer of the window's size.
pub fn run_half<'a>(
    kernel: &Kernel,
    half: usize,
    read: impl Fn(TensorRef) -> &'a [f32],
    out: &mut [f32],
) {
    use super::kernels as cpu;
    match *kernel {
        Kernel::MatMul(MatMulKernel { a, b, m, n, k, .. }) => {
            cpu::product_half(read(a), read(b), out, m, n, k, half)
        }
        Kernel::Broadcast(BroadcastKernel::ReduceTo {
            x,
            in_shape,
            out_shape,
            ..
        }) => {
            let (rows, cols) = cpu::leading_rows(&in_shape, &out_shape).expect("leading rows");
            let halves = cpu::sum_halves(rows).expect("two halves");
            cpu::sum_rows(read(x), cols, halves[half].clone(), &mut out[..cols])
        }
        _ => unreachable!("not a sum in halves"),
    }
}

/// A launch that `sums_in_halves` finished from its halves: `out` (its window, holding
/// the first) becomes `first + second`, scaled as the whole launch scales.
pub fn add_halves(kernel: &Kernel, out: &mut [f32], second: &[f32]) {
    use super::kernels as cpu;
    cpu::add_halves(out, second);
    if let Kernel::Broadcast(BroadcastKernel::ReduceTo { scale, .. }) = *kernel {
        cpu::scale_all(out, scale);
    }
}
