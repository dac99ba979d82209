//! A training step's row launches as one dispatch (issue 11 item 3): the fused step.
//!
//! A credit MLP's step is about 30 launches of small matrices: on a GPU each is a
//! dispatch with a few workgroups, and on lavapipe each costs tens of µs before it
//! computes anything. [`FusedStep`] takes the split of a plan's step
//! (`engine::step_split`: launches before the rows, the row launches, the sums over the
//! rows, the update) and runs its row launches (gathers, forward products, the loss
//! gradient, input gradients) as one dispatch of `shaders/rows.wgsl`, one invocation per
//! batch row, each running every row operation in order on its row. The sums over the
//! rows (weight and bias gradients, the loss) and the update stay the plan's own
//! launches, so every sum keeps its association and the weights are the bits of the
//! unfused plan: the choice between the two is the autotuner's, by time, with no effect
//! on the result (`Tuner::choose_row_program`).
//!
//! The row tensors live in one buffer, the arena (a slot of the fused form's own), so one
//! binding reaches all of them: every slot a row launch writes or reads moves there, at
//! an aligned offset of its own; the other slots stay slots.

use super::executor::{u32c, Bindings, Limits};
use super::kernel_params::{
    RowOp, BIAS_MATRIX, BIAS_NONE, BIAS_ROW, ROW_ACT_GRAD, ROW_BCE_GRAD, ROW_BINARY, ROW_DROPOUT,
    ROW_GATHER, ROW_MATMUL, ROW_UNARY, SRC_ARENA, SRC_PARAMS,
};
use crate::engine::ops::dropout::DropoutKernel;
use crate::engine::ops::elementwise::ElementwiseKernel;
use crate::engine::ops::gather::GatherKernel;
use crate::engine::ops::loss::LossKernel;
use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::plan::{Kernel, Storage, TensorRef};
use crate::engine::step_split::{map_reads, reads, set_output, StepSplit};
use crate::error::{Error, Result};

/// The most tables the row program binds (`table0`, `table1`): a model's features and
/// its labels.
const MAX_TABLES: usize = 2;

/// A stage of the fused form's step, in the order it runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Stage {
    /// One of [`FusedStep::launches`], as its own dispatch.
    Launch(usize),
    /// The row program: every row launch.
    Rows,
}

/// Where a slot of the split plan went in the fused form.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// Into the arena, from this word.
    Arena(usize),
    /// A slot of its own, of this index.
    Own(usize),
}

/// A plan's step with its row launches fused (see the module docs).
#[derive(Debug)]
pub(crate) struct FusedStep {
    split: StepSplit,
    places: Vec<Place>,
    /// The split plan's launches, their slots placed (the arena is slot `arena`).
    pub launches: Vec<Kernel>,
    /// Words of each slot of the fused form.
    pub slots: Vec<usize>,
    /// The arena's slot.
    pub arena: usize,
    /// The row launches (indices into `launches`), in order.
    pub rows: Vec<usize>,
    /// The step, stage by stage.
    pub stages: Vec<Stage>,
    /// Rows in the batch: one invocation each.
    pub batch: usize,
}

impl FusedStep {
    /// The fused form of a plan's launches (whose slots hold `slot_words` words each),
    /// with arena offsets aligned to `align_words`; `None` where the step does not split
    /// (`StepSplit::plan`) or a row launch reads what the row program cannot bind: a
    /// shared operand outside the parameters and the slots, a gather's table in a slot
    /// or the parameters, more than two tables, gathers by different index lists.
    pub fn of(launches: &[Kernel], slot_words: &[usize], align_words: usize) -> Option<FusedStep> {
        let split = StepSplit::plan(launches, slot_words)?;
        // The arena: every slot a row launch writes or reads.
        let mut in_arena = vec![false; split.slots.len()];
        for &(i, _) in &split.rows {
            let kernel = &split.launches[i];
            for t in reads(kernel)?.into_iter().chain([kernel.output()]) {
                if let Storage::Slot(s) = t.storage {
                    in_arena[s] = true;
                }
            }
        }
        let (mut own, mut arena_words) = (0, 0);
        let places: Vec<Place> = (0..split.slots.len())
            .map(|s| match in_arena[s] {
                true => {
                    let base = arena_words;
                    arena_words = (base + split.slots[s]).next_multiple_of(align_words.max(1));
                    Place::Arena(base)
                }
                false => {
                    own += 1;
                    Place::Own(own - 1)
                }
            })
            .collect();
        let mut slots: Vec<usize> = (0..split.slots.len())
            .filter(|&s| !in_arena[s])
            .map(|s| split.slots[s])
            .collect();
        let arena = slots.len();
        slots.push(arena_words);
        let mut fused = FusedStep {
            places,
            launches: Vec::new(),
            slots,
            arena,
            rows: split.rows.iter().map(|&(i, _)| i).collect(),
            stages: split
                .before
                .iter()
                .map(|&i| Stage::Launch(i))
                .chain([Stage::Rows])
                .chain(
                    split
                        .together
                        .iter()
                        .chain(&split.after)
                        .map(|&i| Stage::Launch(i)),
                )
                .collect(),
            batch: split.batch,
            split,
        };
        fused.launches = fused
            .split
            .launches
            .iter()
            .map(|k| {
                let mut k = map_reads(k, &mut |t| fused.place(t));
                let out = k.output();
                if matches!(out.storage, Storage::Slot(_)) {
                    set_output(&mut k, fused.place(out));
                }
                k
            })
            .collect();
        fused.binds_everything().then_some(fused)
    }

    /// The step's row launches as the tuner's cache names them: the batch, then each
    /// launch's kind and sizes (`row program b256 gather58 mm58x64+r1 ...`).
    pub fn key(&self) -> String {
        let mut key = format!("row program b{}", self.batch);
        for &i in &self.rows {
            let kernel = &self.launches[i];
            let width = kernel.output().len / self.batch;
            let op = match *kernel {
                Kernel::Gather(_) => format!("gather{width}"),
                Kernel::MatMul(MatMulKernel {
                    k,
                    trans_b,
                    bias,
                    act,
                    ..
                }) => {
                    let bias = match bias {
                        None => "",
                        Some(t) if t.len == width => "+r",
                        Some(_) => "+m",
                    };
                    let t = if trans_b { "t" } else { "" };
                    format!("mm{k}x{width}{t}{bias}a{}", act.code())
                }
                Kernel::Elementwise(ElementwiseKernel::Unary { act, .. }) => {
                    format!("act{width}a{}", act.code())
                }
                Kernel::Elementwise(ElementwiseKernel::ActGrad { act, .. }) => {
                    format!("actgrad{width}a{}", act.code())
                }
                Kernel::Elementwise(ElementwiseKernel::Binary { op, .. }) => {
                    format!("binary{width}o{}", op.code())
                }
                Kernel::Dropout(_) => format!("dropout{width}"),
                _ => format!("bcegrad{width}"),
            };
            key.push(' ');
            key.push_str(&op);
        }
        key
    }

    /// A window of the split plan in the fused form.
    fn place(&self, t: TensorRef) -> TensorRef {
        match t.storage {
            Storage::Slot(s) => match self.places[s] {
                Place::Arena(base) => TensorRef {
                    storage: Storage::Slot(self.arena),
                    offset: base + t.offset,
                    len: t.len,
                },
                Place::Own(slot) => TensorRef {
                    storage: Storage::Slot(slot),
                    ..t
                },
            },
            _ => t,
        }
    }

    /// Where a window of the plan's storage is after a fused step (the host reading a
    /// node): `None` for a slot window no one launch wrote whole.
    pub fn relocate(&self, t: TensorRef) -> Option<TensorRef> {
        self.split.relocate(t).map(|t| self.place(t))
    }

    /// The row launches' tables, in the order they bind (`table0`, `table1`).
    fn tables(&self) -> Vec<TensorRef> {
        let mut tables: Vec<TensorRef> = Vec::new();
        for &i in &self.rows {
            if let Kernel::Gather(GatherKernel::GatherRows { table, .. }) = self.launches[i] {
                if !tables.contains(&table) {
                    tables.push(table);
                }
            }
        }
        tables
    }

    /// The index lists the gathers read, as one window (all of one storage).
    fn perm(&self) -> Option<TensorRef> {
        let mut span: Option<TensorRef> = None;
        for &i in &self.rows {
            if let Kernel::Gather(GatherKernel::GatherRows { perm, .. }) = self.launches[i] {
                span = Some(match span {
                    None => perm,
                    Some(s) => {
                        let start = s.offset.min(perm.offset);
                        let end = (s.offset + s.len).max(perm.offset + perm.len);
                        TensorRef {
                            storage: s.storage,
                            offset: start,
                            len: end - start,
                        }
                    }
                });
            }
        }
        span
    }

    /// Whether the row program can bind every operand of the row launches.
    fn binds_everything(&self) -> bool {
        let arena_or_params =
            |t: TensorRef| t.storage == Storage::Params || t.storage == Storage::Slot(self.arena);
        let (tables, span) = (self.tables(), self.perm());
        let perms_agree = self.rows.iter().all(|&i| match self.launches[i] {
            Kernel::Gather(GatherKernel::GatherRows { perm, .. }) => {
                span.is_some_and(|p| p.storage == perm.storage)
            }
            _ => true,
        });
        tables.len() <= MAX_TABLES
            && tables
                .iter()
                .all(|t| !matches!(t.storage, Storage::Slot(_) | Storage::Params))
            && perms_agree
            && self.rows.iter().all(|&i| {
                let k = &self.launches[i];
                k.output().storage == Storage::Slot(self.arena)
                    && match *k {
                        Kernel::Gather(_) => true,
                        // Its step counters are the row program's own binding (`encode`).
                        Kernel::Dropout(DropoutKernel { x, .. }) => arena_or_params(x),
                        _ => reads(k)
                            .unwrap_or_default()
                            .into_iter()
                            .all(arena_or_params),
                    }
            })
    }

    /// The row program's operations, its bindings (arena, parameters, tables, index list,
    /// step counters at bindings 2–7; the operations' own buffer is the caller's, at 1)
    /// and the step counter's offset in its window: every offset relative to the window
    /// that binds it. `params` and `step`: the plan's parameter and counter windows.
    pub fn encode(
        &self,
        lim: &Limits,
        params: TensorRef,
        step: TensorRef,
    ) -> Result<(Vec<RowOp>, Bindings, u32)> {
        let arena = TensorRef {
            storage: Storage::Slot(self.arena),
            offset: 0,
            len: self.slots[self.arena],
        };
        let (arena_window, _) = lim.window(arena)?;
        let (params_window, _) = lim.window(params)?;
        let (step_window, off_step) = lim.window(step)?;
        let tables = self.tables();
        let table_windows = tables
            .iter()
            .map(|&t| lim.window(t))
            .collect::<Result<Vec<_>>>()?;
        let span = self.perm();
        let (perm_window, off_perm) = lim.window_opt(span)?;
        let source = |t: TensorRef| match t.storage {
            Storage::Params => SRC_PARAMS,
            _ => SRC_ARENA,
        };
        let mut ops = Vec::with_capacity(self.rows.len());
        for &i in &self.rows {
            let kernel = &self.launches[i];
            let out = kernel.output();
            let width = out.len / self.batch;
            let base = RowOp {
                width: u32c(width)?,
                off_out: u32c(out.offset)?,
                ..Default::default()
            };
            let op = match *kernel {
                Kernel::Gather(GatherKernel::GatherRows {
                    table, perm, cols, ..
                }) => {
                    let which = tables.iter().position(|&t| t == table).expect("listed");
                    RowOp {
                        kind: ROW_GATHER,
                        x_src: which as u32,
                        off_x: table_windows[which].1,
                        off_y: off_perm + u32c(perm.offset - span.expect("a gather").offset)?,
                        n: u32c(table.len / cols.max(1))?,
                        ..base
                    }
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
                    let (bias_kind, z_src, off_z) = match bias {
                        None => (BIAS_NONE, SRC_ARENA, 0),
                        Some(t) if t.len == n => (BIAS_ROW, source(t), t.offset),
                        Some(t) => (BIAS_MATRIX, SRC_ARENA, t.offset),
                    };
                    RowOp {
                        kind: ROW_MATMUL,
                        k: u32c(k)?,
                        code: act.code(),
                        off_x: u32c(a.offset)?,
                        y_src: source(b),
                        off_y: u32c(b.offset)?,
                        z_src,
                        off_z: u32c(off_z)?,
                        trans_b: trans_b as u32,
                        bias_kind,
                        ..base
                    }
                }
                Kernel::Elementwise(ElementwiseKernel::Unary { act, x, .. }) => RowOp {
                    kind: ROW_UNARY,
                    code: act.code(),
                    off_x: u32c(x.offset)?,
                    ..base
                },
                Kernel::Elementwise(ElementwiseKernel::ActGrad { act, dy, y, .. }) => RowOp {
                    kind: ROW_ACT_GRAD,
                    code: act.code(),
                    off_x: u32c(dy.offset)?,
                    off_y: u32c(y.offset)?,
                    ..base
                },
                Kernel::Elementwise(ElementwiseKernel::Binary { op, a, b, .. }) => RowOp {
                    kind: ROW_BINARY,
                    code: op.code(),
                    off_x: u32c(a.offset)?,
                    off_y: u32c(b.offset)?,
                    ..base
                },
                Kernel::Loss(LossKernel::BceWithLogitsGrad {
                    logits,
                    targets,
                    dloss,
                    pos_weight,
                    ..
                }) => RowOp {
                    kind: ROW_BCE_GRAD,
                    off_x: u32c(logits.offset)?,
                    off_y: u32c(targets.offset)?,
                    z_src: source(dloss),
                    off_z: u32c(dloss.offset)?,
                    n: u32c(logits.len)?,
                    value: pos_weight,
                    ..base
                },
                Kernel::Dropout(DropoutKernel {
                    x,
                    step: counters,
                    seed,
                    threshold,
                    scale,
                    ..
                }) => {
                    if counters.storage != step.storage || counters.offset != step.offset {
                        return Err(Error::Gpu(
                            "a dropout reads step counters the row program does not bind".into(),
                        ));
                    }
                    RowOp {
                        kind: ROW_DROPOUT,
                        code: seed,
                        off_x: u32c(x.offset)?,
                        n: threshold,
                        value: scale,
                        ..base
                    }
                }
                _ => unreachable!("step_split::row_width admits no other row launch"),
            };
            ops.push(op);
        }
        let table = |i: usize| table_windows.get(i).map(|&(w, _)| w);
        let bindings = vec![
            (2, Some(arena_window)),
            (3, Some(params_window)),
            (4, table(0)),
            (5, table(1)),
            (6, perm_window),
            (7, Some(step_window)),
        ];
        Ok((ops, bindings, off_step))
    }
}
