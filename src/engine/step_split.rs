//! A training step reordered around its batch rows (issue 11 items 3 and 7), for both
//! executors.
//!
//! Most of a step is row-wise: the gathers, the forward pass, the loss gradient and the
//! backward pass's input gradients compute each batch row from that row alone (and from
//! the parameters). Only the weight and bias gradients and the loss sum over the rows.
//! [`StepSplit::plan`] sorts a plan's launches into those that run first (`before`), the
//! row launches (`rows`, in plan order), the sums over the rows that are independent of
//! one another (`together`), and the rest (`after`: the update).
//!
//! - The CPU executor (`cpu::step_rows`) runs the row launches on a block of rows per lane
//!   (with two lanes, each also sums its own rows for the sums the CPU takes in two
//!   halves, `cpu::kernels::sum_halves`), joins the lanes once, then runs the sums (or
//!   adds their halves), one a lane, each followed on its
//!   lane by the update of its parameters (`update_spans`): splitting each kernel
//!   instead joins the lanes once per kernel, and a kernel split by columns hands the next
//!   one rows another core wrote. A row block is computed exactly as within the whole
//!   (blocks of at least 16 rows, `cpu::kernels::blocks`; tested by `kernels`' split
//!   tests).
//! - The GPU executor (`gpu::row_program`) runs all the row launches as one dispatch, one
//!   invocation a row, instead of one dispatch each.
//!
//! Either way every sum over the rows is taken as the plan's own kernel takes it, so the
//! weights are bit for bit those of the plan as it was.
//!
//! Moving launches out of plan order, and lanes running ahead of one another, is safe only
//! if no buffer a row launch uses is reused meanwhile: the split plan gives every output
//! held in a slot a buffer of its own (`private_slots`). A plan is not split if any launch
//! is of a kind not handled here (convolutions, pooling, recurrent cells, column copies),
//! if a row launch would read what a launch moved after the rows writes, or if its batch
//! is too small to share.

use crate::engine::ops::broadcast::BroadcastKernel;
use crate::engine::ops::dropout::DropoutKernel;
use crate::engine::ops::elementwise::ElementwiseKernel;
use crate::engine::ops::gather::GatherKernel;
use crate::engine::ops::loss::LossKernel;
use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::plan::{contiguous_strides, Kernel, Storage, TensorRef};
use std::collections::HashMap;

/// The fewest batch rows worth splitting: two lanes of 16 (a product's row tile).
const MIN_ROWS: usize = 32;
/// The most words the split plan's private buffers may take beside the plan's own.
const MAX_PRIVATE_WORDS: usize = 16 << 20;

/// A plan's step, reordered for splitting its rows (see the module docs).
#[derive(Clone, Debug)]
pub struct StepSplit {
    /// The plan's launches, every slot-held output in a slot of its own.
    pub launches: Vec<Kernel>,
    /// The words of each of those slots.
    pub slots: Vec<usize>,
    /// Launches run first, on the calling thread, in order.
    pub before: Vec<usize>,
    /// The row launches, in order, each with the words per batch row of its output.
    pub rows: Vec<(usize, usize)>,
    /// The launches run after the rows have joined: first `together`, independent of one
    /// another (the sums over the rows: weight and bias gradients, the loss), across the
    /// lanes, largest first; then `after`, in order.
    pub together: Vec<usize>,
    /// See `together`.
    pub after: Vec<usize>,
    /// Where the update (a `Kernel::Optimize`) instead runs piece by piece inside
    /// `together`: `after[update_at]` is skipped, and each launch named in
    /// `update_spans` updates its span of the parameters as soon as it is done, on its
    /// lane. The optimizer updates each parameter from its own gradient and state alone,
    /// so the pieces give the bits of the whole update.
    pub update_at: Option<usize>,
    /// Launches of `together` and the parameters each updates (see `update_at`): the
    /// window of the gradients it writes, with the padding up to the next window.
    pub update_spans: Vec<UpdateSpan>,
    /// Rows in the batch.
    pub batch: usize,
    /// For each of the plan's slots, the windows its launches wrote last, each with the
    /// slot that now holds it: where the host reads a node after a step (`relocate`).
    finals: HashMap<usize, Vec<Written>>,
}

/// A launch run together (by index) and the parameters it updates (`update_spans`).
pub type UpdateSpan = (usize, std::ops::Range<usize>);

/// A window of one of the plan's slots, `len` words from `offset`, now held whole in the
/// split plan's slot `slot`.
#[derive(Clone, Copy, Debug)]
struct Written {
    offset: usize,
    len: usize,
    slot: usize,
}

impl StepSplit {
    /// The split of a plan's launches (whose slots hold `slot_words` words each), or
    /// `None` where it cannot be split (see the module docs).
    pub fn plan(launches: &[Kernel], slot_words: &[usize]) -> Option<StepSplit> {
        let batch = launches.iter().find_map(|k| match *k {
            Kernel::Gather(GatherKernel::GatherRows { batch, .. }) => Some(batch),
            _ => None,
        })?;
        if batch < MIN_ROWS {
            return None;
        }
        let (launches, slots, finals) = private_slots(launches)?;
        let own: usize = slot_words.iter().sum();
        if slots.iter().sum::<usize>() > own + MAX_PRIVATE_WORDS {
            return None;
        }
        let mut split = StepSplit {
            launches,
            slots,
            before: Vec::new(),
            rows: Vec::new(),
            together: Vec::new(),
            after: Vec::new(),
            update_at: None,
            update_spans: Vec::new(),
            batch,
            finals,
        };
        // Slots holding a whole row tensor: `batch` rows of the given width.
        let mut row_slots: HashMap<usize, usize> = HashMap::new();
        for i in 0..split.launches.len() {
            let kernel = &split.launches[i];
            let clashes_with =
                |others: &[usize]| others.iter().any(|&j| conflict(kernel, &split.launches[j]));
            match row_width(kernel, batch, &row_slots) {
                Some(width) => {
                    if clashes_with(&split.after) {
                        return None;
                    }
                    if let Storage::Slot(s) = kernel.output().storage {
                        row_slots.insert(s, width);
                    }
                    split.rows.push((i, width));
                }
                None => {
                    let moved: Vec<usize> = split.rows.iter().map(|&(j, _)| j).collect();
                    if clashes_with(&moved) || clashes_with(&split.after) {
                        split.after.push(i);
                    } else {
                        split.before.push(i);
                    }
                }
            }
        }
        // The leading launches after the rows that `run_whole` runs and that are
        // independent of one another run together.
        let independent = split
            .after
            .iter()
            .take_while(|&&i| cost(&split.launches[i]).is_some())
            .count();
        let mut together: Vec<usize> = Vec::new();
        for &i in &split.after[..independent] {
            if together
                .iter()
                .any(|&j| conflict(&split.launches[i], &split.launches[j]))
            {
                break;
            }
            together.push(i);
        }
        split.after.drain(..together.len());
        split.together = together;
        if let Some((at, spans)) = split.update_with_sums() {
            split.update_at = Some(at);
            split.update_spans = spans;
        }
        let cost_of = |i: usize| {
            let span = split.update_spans.iter().find(|s| s.0 == i);
            cost(&split.launches[i]).map(|c| c + span.map_or(0, |s| UPDATE_COST * s.1.len()))
        };
        let mut together = std::mem::take(&mut split.together);
        together.sort_by_key(|&i| std::cmp::Reverse(cost_of(i)));
        split.together = together;
        let products = split
            .rows
            .iter()
            .filter(|&&(i, _)| matches!(split.launches[i], Kernel::MatMul(_)))
            .count();
        (products >= 2).then_some(split)
    }

    /// Where the update may run with the sums (`update_at`, `update_spans`): where the
    /// update may move ahead of the launches after the sums that precede it, no launch
    /// run together reads the parameters, and some write the gradients.
    fn update_with_sums(&self) -> Option<(usize, Vec<UpdateSpan>)> {
        let at = self
            .after
            .iter()
            .position(|&i| matches!(self.launches[i], Kernel::Optimize { .. }))?;
        let update = &self.launches[self.after[at]];
        let Kernel::Optimize { len, .. } = *update else {
            unreachable!("found above")
        };
        if self.after[..at]
            .iter()
            .any(|&i| conflict(&self.launches[i], update))
        {
            return None;
        }
        let mut windows = Vec::new();
        for &i in &self.together {
            let kernel = &self.launches[i];
            let reads = reads(kernel).unwrap_or_default();
            if reads.iter().any(|r| r.storage == Storage::Params) {
                return None;
            }
            let out = kernel.output();
            if out.storage == Storage::Grads {
                windows.push((out.offset, i));
            }
        }
        windows.sort_unstable();
        // Each span reaches to the next window (the layout pads tensors), the first
        // from 0, the last to the end. The gradients in the padding are as the whole
        // update would read them: no launch after the rows writes them (the windows of
        // launches run together do not overlap).
        let mut spans = Vec::with_capacity(windows.len());
        for (w, &(offset, i)) in windows.iter().enumerate() {
            let start = if w == 0 { 0 } else { offset };
            let end = windows.get(w + 1).map_or(len, |next| next.0);
            if self.launches[i].output().offset + self.launches[i].output().len > end {
                return None;
            }
            spans.push((i, start..end));
        }
        (!spans.is_empty()).then_some((at, spans))
    }

    /// Where a window of the plan's storage is after a step of the split plan: a window
    /// of a slot moves to the slot its last writer now writes; any other stays. `None`
    /// for a window of a slot that no one launch wrote whole.
    pub fn relocate(&self, t: TensorRef) -> Option<TensorRef> {
        let Storage::Slot(s) = t.storage else {
            return Some(t);
        };
        let w = self
            .finals
            .get(&s)?
            .iter()
            .rev()
            .find(|w| w.offset <= t.offset && t.offset + t.len <= w.offset + w.len)?;
        Some(TensorRef {
            storage: Storage::Slot(w.slot),
            offset: t.offset - w.offset,
            len: t.len,
        })
    }
}

/// Whether a tensor is a whole row tensor: `batch` rows, all of a slot holding one.
fn whole_rows(t: TensorRef, batch: usize, row_slots: &HashMap<usize, usize>) -> Option<usize> {
    match t.storage {
        Storage::Slot(s) => row_slots
            .get(&s)
            .copied()
            .filter(|&w| t.offset == 0 && t.len == batch * w),
        _ => None,
    }
}

/// Whether a tensor is one every row reads whole: not held in a row tensor's slot.
fn shared(t: TensorRef, row_slots: &HashMap<usize, usize>) -> bool {
    !matches!(t.storage, Storage::Slot(s) if row_slots.contains_key(&s))
}

/// The words per batch row of a launch's output when the launch is row-wise: each row of
/// its output computed from the same row of its row inputs and from shared ones.
fn row_width(kernel: &Kernel, batch: usize, row_slots: &HashMap<usize, usize>) -> Option<usize> {
    if !matches!(kernel.output().storage, Storage::Slot(_)) {
        return None;
    }
    let rows = |t| whole_rows(t, batch, row_slots);
    let width = match *kernel {
        Kernel::Gather(GatherKernel::GatherRows {
            batch: b,
            cols,
            table,
            perm,
            ..
        }) if b == batch && shared(table, row_slots) && shared(perm, row_slots) => cols,
        Kernel::MatMul(MatMulKernel {
            a,
            b,
            bias,
            m,
            n,
            k,
            trans_a: false,
            ..
        }) if m == batch && rows(a) == Some(k) && shared(b, row_slots) => match bias {
            None => n,
            Some(bias) if bias.len == n && shared(bias, row_slots) => n,
            Some(bias) if rows(bias) == Some(n) => n,
            Some(_) => return None,
        },
        Kernel::Elementwise(ElementwiseKernel::ActGrad { dy, y, .. }) => {
            rows(dy).filter(|&w| rows(y) == Some(w))?
        }
        Kernel::Elementwise(ElementwiseKernel::Unary { x, .. }) => rows(x)?,
        Kernel::Elementwise(ElementwiseKernel::Binary {
            a,
            b,
            shape,
            a_strides,
            b_strides,
            ..
        }) if a_strides == contiguous_strides(&shape) && b_strides == a_strides => {
            rows(a).filter(|&w| rows(b) == Some(w))?
        }
        // Each element's mask is a hash of its index in the whole tensor, so a row's
        // elements are masked as within the whole.
        Kernel::Dropout(DropoutKernel { x, step, .. }) if shared(step, row_slots) => rows(x)?,
        Kernel::Loss(LossKernel::BceWithLogitsGrad {
            logits,
            targets,
            dloss,
            ..
        }) if shared(dloss, row_slots) => rows(logits).filter(|&w| rows(targets) == Some(w))?,
        _ => return None,
    };
    (kernel.output().len == batch * width && width > 0).then_some(width)
}

/// A window standing for all of a storage (the optimizer's reads and writes).
fn all_of(storage: Storage) -> TensorRef {
    TensorRef {
        storage,
        offset: 0,
        len: usize::MAX / 2,
    }
}

/// What a launch reads, for the kinds a split plan may hold; `None` for the others.
pub(crate) fn reads(kernel: &Kernel) -> Option<Vec<TensorRef>> {
    Some(match *kernel {
        Kernel::Fill { .. } => vec![],
        Kernel::MatMul(MatMulKernel { a, b, bias, .. }) => {
            [Some(a), Some(b), bias].into_iter().flatten().collect()
        }
        Kernel::Elementwise(ElementwiseKernel::Binary { a, b, .. }) => vec![a, b],
        Kernel::Elementwise(ElementwiseKernel::Unary { x, .. }) => vec![x],
        Kernel::Elementwise(ElementwiseKernel::ActGrad { dy, y, .. }) => vec![dy, y],
        Kernel::Broadcast(BroadcastKernel::ReduceTo { x, .. })
        | Kernel::Broadcast(BroadcastKernel::ExpandTo { x, .. }) => vec![x],
        Kernel::Loss(LossKernel::BceWithLogits {
            logits, targets, ..
        }) => vec![logits, targets],
        Kernel::Loss(LossKernel::BceWithLogitsGrad {
            logits,
            targets,
            dloss,
            ..
        }) => vec![logits, targets, dloss],
        Kernel::Gather(GatherKernel::GatherRows { table, perm, .. }) => vec![table, perm],
        Kernel::Gather(GatherKernel::ScatterAddRows { dy, perm, .. }) => vec![dy, perm],
        Kernel::Accumulate { x, acc } => vec![x, acc],
        Kernel::Collect { x, .. } => vec![x],
        Kernel::AdvanceStep { step, .. } => vec![step],
        Kernel::Optimize { step, .. } => {
            vec![step, all_of(Storage::Params), all_of(Storage::Grads)]
        }
        Kernel::Dropout(DropoutKernel { x, step, .. }) => vec![x, step],
        Kernel::CopyCols { .. } | Kernel::Rnn(_) | Kernel::Conv(_) | Kernel::Pool(_) => {
            return None
        }
    })
}

/// What a launch writes (the optimizer: all the parameters, and its own state, which no
/// other launch touches).
fn writes(kernel: &Kernel) -> TensorRef {
    match kernel {
        Kernel::Optimize { .. } => all_of(Storage::Params),
        _ => kernel.output(),
    }
}

fn overlap(a: TensorRef, b: TensorRef) -> bool {
    a.storage == b.storage && a.offset < b.offset + b.len && b.offset < a.offset + a.len
}

/// Whether two launches must keep their order: one writes what the other reads or
/// writes. (Both are of kinds `reads` knows: `private_slots` checked every launch.)
fn conflict(a: &Kernel, b: &Kernel) -> bool {
    let (wa, wb) = (writes(a), writes(b));
    let reads_of = |k| reads(k).unwrap_or_default();
    let advances_what_reads =
        |x: &Kernel, y: &Kernel| matches!(x, Kernel::AdvanceStep { .. }) && reads_step_counters(y);
    overlap(wa, wb)
        || reads_of(b).into_iter().any(|r| overlap(wa, r))
        || reads_of(a).into_iter().any(|r| overlap(wb, r))
        || advances_what_reads(a, b)
        || advances_what_reads(b, a)
}

/// Whether a launch reads the step counters without naming them in its kernel: on the
/// GPU the gathers and the collect read "the step within the run" from the counters
/// that `Kernel::AdvanceStep` writes (the executor binds them; the CPU passes the step
/// from the host). Without this a validation plan, which has no update to hold the
/// advance after its rows, ran the advance first, and every step gathered and collected
/// the next step's rows: the first chunk's scores were never written.
fn reads_step_counters(kernel: &Kernel) -> bool {
    matches!(kernel, Kernel::Gather(_) | Kernel::Collect { .. })
}

/// The launches with every output held in a slot moved to a slot of its own, and every
/// read of a slot pointed at the slot of the launch that last wrote that window; with
/// the new slots' words, and each old slot's windows as the last launches left them.
/// `None` if a launch is of a kind `reads` does not know, or reads a window of a slot
/// that no one launch wrote.
#[allow(clippy::type_complexity)]
fn private_slots(
    launches: &[Kernel],
) -> Option<(Vec<Kernel>, Vec<usize>, HashMap<usize, Vec<Written>>)> {
    // For each original slot, the windows written so far.
    let mut written: HashMap<usize, Vec<Written>> = HashMap::new();
    let mut slots = Vec::new();
    let mut out = Vec::with_capacity(launches.len());
    for kernel in launches {
        reads(kernel)?;
        let mut failed = false;
        let mut remap_read = |t: TensorRef| -> TensorRef {
            let Storage::Slot(s) = t.storage else {
                return t;
            };
            let source = written.get(&s).and_then(|ws| {
                ws.iter()
                    .rev()
                    .find(|w| w.offset <= t.offset && t.offset + t.len <= w.offset + w.len)
            });
            match source {
                Some(w) => TensorRef {
                    storage: Storage::Slot(w.slot),
                    offset: t.offset - w.offset,
                    len: t.len,
                },
                None => {
                    failed = true;
                    t
                }
            }
        };
        let mut kernel = map_reads(kernel, &mut remap_read);
        if failed {
            return None;
        }
        let target = kernel.output();
        if let Storage::Slot(s) = target.storage {
            let new = slots.len();
            slots.push(target.len);
            let windows = written.entry(s).or_default();
            windows.retain(|w| {
                !(w.offset < target.offset + target.len && target.offset < w.offset + w.len)
            });
            windows.push(Written {
                offset: target.offset,
                len: target.len,
                slot: new,
            });
            set_output(
                &mut kernel,
                TensorRef {
                    storage: Storage::Slot(new),
                    offset: 0,
                    len: target.len,
                },
            );
        }
        out.push(kernel);
    }
    Some((out, slots, written))
}

/// The launch with each window it reads passed through `f`.
pub(crate) fn map_reads(kernel: &Kernel, f: &mut impl FnMut(TensorRef) -> TensorRef) -> Kernel {
    let mut k = *kernel;
    match &mut k {
        Kernel::MatMul(MatMulKernel { a, b, bias, .. }) => {
            *a = f(*a);
            *b = f(*b);
            if let Some(bias) = bias {
                *bias = f(*bias);
            }
        }
        Kernel::Elementwise(ElementwiseKernel::Binary { a, b, .. }) => {
            *a = f(*a);
            *b = f(*b);
        }
        Kernel::Elementwise(ElementwiseKernel::Unary { x, .. })
        | Kernel::Broadcast(BroadcastKernel::ReduceTo { x, .. })
        | Kernel::Broadcast(BroadcastKernel::ExpandTo { x, .. })
        | Kernel::Collect { x, .. } => *x = f(*x),
        Kernel::Elementwise(ElementwiseKernel::ActGrad { dy, y, .. }) => {
            *dy = f(*dy);
            *y = f(*y);
        }
        Kernel::Loss(LossKernel::BceWithLogits {
            logits, targets, ..
        }) => {
            *logits = f(*logits);
            *targets = f(*targets);
        }
        Kernel::Loss(LossKernel::BceWithLogitsGrad {
            logits,
            targets,
            dloss,
            ..
        }) => {
            *logits = f(*logits);
            *targets = f(*targets);
            *dloss = f(*dloss);
        }
        Kernel::Gather(GatherKernel::GatherRows { table, perm, .. }) => {
            *table = f(*table);
            *perm = f(*perm);
        }
        Kernel::Gather(GatherKernel::ScatterAddRows { dy, perm, .. }) => {
            *dy = f(*dy);
            *perm = f(*perm);
        }
        Kernel::Accumulate { x, acc } => {
            *x = f(*x);
            *acc = f(*acc);
        }
        Kernel::AdvanceStep { step, .. } | Kernel::Optimize { step, .. } => *step = f(*step),
        Kernel::Dropout(DropoutKernel { x, step, .. }) => {
            *x = f(*x);
            *step = f(*step);
        }
        Kernel::Fill { .. }
        | Kernel::CopyCols { .. }
        | Kernel::Rnn(_)
        | Kernel::Conv(_)
        | Kernel::Pool(_) => {}
    }
    k
}

/// Points the launch's output at `to` (kinds `reads` knows whose output is a slot).
pub(crate) fn set_output(kernel: &mut Kernel, to: TensorRef) {
    match kernel {
        Kernel::Fill { out, .. }
        | Kernel::MatMul(MatMulKernel { out, .. })
        | Kernel::Elementwise(ElementwiseKernel::Binary { out, .. })
        | Kernel::Elementwise(ElementwiseKernel::Unary { out, .. })
        | Kernel::Elementwise(ElementwiseKernel::ActGrad { out, .. })
        | Kernel::Broadcast(BroadcastKernel::ReduceTo { out, .. })
        | Kernel::Broadcast(BroadcastKernel::ExpandTo { out, .. })
        | Kernel::Loss(LossKernel::BceWithLogits { out, .. })
        | Kernel::Loss(LossKernel::BceWithLogitsGrad { out, .. })
        | Kernel::Gather(GatherKernel::GatherRows { out, .. })
        | Kernel::Gather(GatherKernel::ScatterAddRows { out, .. })
        | Kernel::Collect { out, .. }
        | Kernel::Accumulate { acc: out, .. }
        | Kernel::Dropout(DropoutKernel { out, .. })
        | Kernel::AdvanceStep { step: out, .. } => *out = to,
        Kernel::Optimize { .. }
        | Kernel::CopyCols { .. }
        | Kernel::Rnn(_)
        | Kernel::Conv(_)
        | Kernel::Pool(_) => unreachable!("no slot output"),
    }
}

/// What updating one parameter costs in `cost`'s units: an Adam step costs about what
/// 32 multiply-adds of a product do (three divisions and a square root, in SIMD vectors
/// of 16).
const UPDATE_COST: usize = 32;

/// A rough cost of a launch `run_whole` runs (multiply-adds, or words read); `None` for
/// the others.
fn cost(kernel: &Kernel) -> Option<usize> {
    match *kernel {
        Kernel::MatMul(MatMulKernel { m, n, k, .. }) => Some(m * n * k),
        Kernel::Broadcast(BroadcastKernel::ReduceTo { x, .. }) => Some(x.len),
        Kernel::Loss(LossKernel::BceWithLogits { logits, .. }) => Some(4 * logits.len),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::graph::Act;
    use crate::engine::ops::dropout::DropoutKernel;

    fn at(storage: Storage, len: usize) -> TensorRef {
        TensorRef {
            storage,
            offset: 0,
            len,
        }
    }

    /// `x = gather(table)`, `h = x·W1` (into slot 1), `z = h·W2` (into slot 0, which x
    /// held: reused), `dW2 = hᵀ·z` into the gradients: a forward pass and one weight
    /// gradient at a batch of 64.
    fn tiny_step() -> Vec<Kernel> {
        let (batch, d, w) = (64, 8, 16);
        let gather = Kernel::Gather(GatherKernel::GatherRows {
            table: at(Storage::Input(0), 1000 * d),
            perm: at(Storage::Input(1), 1000),
            out: at(Storage::Slot(0), batch * d),
            batch,
            cols: d,
        });
        let product = |a, b, out, m, n, k, trans_a| {
            Kernel::MatMul(MatMulKernel {
                a,
                b,
                bias: None,
                out,
                m,
                n,
                k,
                trans_a,
                trans_b: false,
                act: Act::Relu,
            })
        };
        vec![
            gather,
            product(
                at(Storage::Slot(0), batch * d),
                at(Storage::Params, d * w),
                at(Storage::Slot(1), batch * w),
                batch,
                w,
                d,
                false,
            ),
            product(
                at(Storage::Slot(1), batch * w),
                at(Storage::Params, w * w),
                at(Storage::Slot(0), batch * w),
                batch,
                w,
                w,
                false,
            ),
            product(
                at(Storage::Slot(1), batch * w),
                at(Storage::Slot(0), batch * w),
                at(Storage::Grads, w * w),
                w,
                w,
                batch,
                true,
            ),
        ]
    }

    #[test]
    fn a_row_wise_step_splits_with_private_slots_and_its_row_sum_after() {
        let split = StepSplit::plan(&tiny_step(), &[64 * 16, 64 * 16]).expect("splits");
        assert_eq!(split.batch, 64);
        assert_eq!(split.rows, vec![(0, 8), (1, 16), (2, 16)]);
        assert_eq!(
            split.together,
            vec![3],
            "the weight gradient sums over the rows"
        );
        // Slot 0, reused for z in the plan, is two buffers in the split plan, and the
        // weight gradient reads the product's, not the gather's.
        assert_eq!(split.slots, vec![64 * 8, 64 * 16, 64 * 16]);
        let Kernel::MatMul(grad) = split.launches[3] else {
            unreachable!()
        };
        assert_eq!(grad.b.storage, Storage::Slot(2));
    }

    /// `tiny_step` with its weight gradient at `offset` of the gradients, a bias
    /// gradient after it at `bias_at`, and the update of `len` parameters last.
    fn step_with_update(offset: usize, bias_at: usize, len: usize) -> Vec<Kernel> {
        let mut step = tiny_step();
        if let Some(Kernel::MatMul(k)) = step.last_mut() {
            k.out = TensorRef {
                storage: Storage::Grads,
                offset,
                len: 16 * 16,
            };
        }
        step.push(Kernel::Broadcast(BroadcastKernel::ReduceTo {
            x: at(Storage::Slot(0), 64 * 16),
            out: TensorRef {
                storage: Storage::Grads,
                offset: bias_at,
                len: 16,
            },
            in_shape: [1, 1, 64, 16],
            out_shape: [1, 1, 1, 16],
            scale: 1.0,
        }));
        step.push(Kernel::Optimize {
            optimizer: crate::engine::graph::Optimizer::Sgd {
                lr: 0.1,
                momentum: 0.9,
            },
            len,
            step: at(Storage::State(0), 2),
        });
        step
    }

    #[test]
    fn the_update_runs_with_the_sums_in_spans_that_cover_every_parameter() {
        // Weight gradient at 0..256, padding to 272, the bias gradient at 272..288,
        // padding to the update's 300: the first span takes the first padding, the last
        // the tail.
        let split = StepSplit::plan(&step_with_update(0, 272, 300), &[1024, 1024]).unwrap();
        assert_eq!(split.together, vec![3, 4], "{split:?}");
        assert_eq!(split.update_at, Some(0), "{split:?}");
        assert_eq!(split.update_spans, vec![(3, 0..272), (4, 272..300)]);
        // The spans go in the order of the windows; the first starts at 0 whatever its
        // window's offset.
        let split = StepSplit::plan(&step_with_update(32, 0, 300), &[1024, 1024]).unwrap();
        assert_eq!(split.update_spans, vec![(4, 0..32), (3, 32..300)]);
        let split = StepSplit::plan(&step_with_update(16, 280, 300), &[1024, 1024]).unwrap();
        assert_eq!(split.update_spans, vec![(3, 0..280), (4, 280..300)]);
        // A gradient past the update's parameters: the update stays whole, after.
        let split = StepSplit::plan(&step_with_update(0, 272, 280), &[1024, 1024]).unwrap();
        assert_eq!((split.update_at, split.update_spans.len()), (None, 0));
        assert_eq!(split.after, vec![5]);
        // A launch between the sums and the update that adds to the gradients keeps the
        // update after it.
        let mut step = step_with_update(0, 272, 300);
        step.insert(
            5,
            Kernel::Accumulate {
                x: at(Storage::State(1), 16),
                acc: at(Storage::Grads, 16),
            },
        );
        let split = StepSplit::plan(&step, &[1024, 1024]).unwrap();
        assert_eq!(split.update_at, None, "{split:?}");
        // A sum that reads the parameters: the update's pieces would change them under it.
        let mut step = step_with_update(0, 272, 300);
        if let Kernel::MatMul(k) = &mut step[3] {
            k.b = at(Storage::Params, 64 * 16);
        }
        let split = StepSplit::plan(&step, &[1024, 1024]).unwrap();
        assert_eq!(split.update_at, None, "{split:?}");
    }

    #[test]
    fn a_dropout_is_a_row_launch() {
        // The first product's output dropped out into slot 2, which the second reads.
        let mut step = tiny_step();
        step.insert(
            2,
            Kernel::Dropout(DropoutKernel {
                x: at(Storage::Slot(1), 64 * 16),
                out: at(Storage::Slot(2), 64 * 16),
                step: at(Storage::State(0), 2),
                seed: 1,
                threshold: 1 << 30,
                scale: 1.5,
            }),
        );
        if let Kernel::MatMul(k) = &mut step[3] {
            k.a = at(Storage::Slot(2), 64 * 16);
        }
        let split = StepSplit::plan(&step, &[1024, 1024, 1024]).expect("splits");
        let rows: Vec<usize> = split.rows.iter().map(|&(i, _)| i).collect();
        assert_eq!(rows, vec![0, 1, 2, 3], "{split:?}");
        assert_eq!(split.rows[2].1, 16, "the dropout's row width");
    }

    #[test]
    fn a_scoring_step_advances_the_counters_after_its_gather_and_collect() {
        // A validation plan: the forward pass, its output collected into a state, the
        // counters advanced; no update. The gather and the collect read the counters
        // though their kernels do not name them, so the advance must stay last.
        let mut step = tiny_step();
        step.pop();
        let counters = at(Storage::State(0), 2);
        step.push(Kernel::Collect {
            x: at(Storage::Slot(0), 64 * 16),
            out: at(Storage::State(1), 64 * 16 * 4),
        });
        step.push(Kernel::AdvanceStep {
            step: counters,
            counters: 1,
        });
        let split = StepSplit::plan(&step, &[1024, 1024]).expect("splits");
        assert!(split.before.is_empty(), "{split:?}");
        assert_eq!(split.after.last(), Some(&4), "{split:?}");
        assert!(conflict(&step[4], &step[0]) && conflict(&step[3], &step[4]));
        assert!(
            !conflict(&step[4], &step[1]),
            "a product does not read the counters"
        );
    }

    #[test]
    fn steps_it_cannot_split_are_left_whole() {
        // A kernel of a kind it does not know (a column copy).
        let mut step = tiny_step();
        step.insert(
            2,
            Kernel::CopyCols {
                x: at(Storage::Slot(1), 64 * 16),
                out: at(Storage::Slot(2), 64 * 8),
                rows: 64,
                cols: 8,
                src_cols: 16,
                src_start: 0,
                dst_cols: 8,
                dst_start: 0,
            },
        );
        assert!(StepSplit::plan(&step, &[1024, 1024, 1024]).is_none());
        // A batch too small to share.
        let mut step = tiny_step();
        if let Kernel::Gather(GatherKernel::GatherRows { batch, .. }) = &mut step[0] {
            *batch = 16;
        }
        assert!(StepSplit::plan(&step, &[1024, 1024]).is_none());
        // A row launch reading what a launch after the rows writes: the second product
        // reads the gradients the weight gradient wrote before it.
        let mut step = tiny_step();
        let grad = step.pop().unwrap();
        step.insert(2, grad);
        if let Kernel::MatMul(k) = &mut step[3] {
            k.b = at(Storage::Grads, 16 * 16);
        }
        assert!(StepSplit::plan(&step, &[1024, 1024]).is_none());
    }
}
