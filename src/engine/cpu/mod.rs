//! The native CPU executor: runs a `Plan` with the kernels in `kernels`.

mod approx;
pub mod conv;
pub mod kernels;
pub mod lanes;
mod pairs;
pub mod pool;
pub mod rnn;
mod simd;
mod step_rows;

use crate::engine::exec::{zeroed_words, Executor, Words};
use crate::engine::ops::matmul::MatMulKernel;
use crate::engine::plan::{Kernel, Plan, Storage, TensorRef};
use crate::engine::step_split::StepSplit;
use crate::error::{Error, Result, Setting};

/// The most threads [`use_threads`] accepts: far beyond any machine's cores, well
/// below what an operating system refuses to start.
pub const MAX_THREADS: usize = 1024;

/// Runs the CPU backend's kernels on `threads` threads, for the rest of the process:
/// the caller and `threads - 1` others (with 2, the spinning helper lane of `lanes`;
/// with more, the rayon pool that large products split over). Call it before any
/// executor is made. Without it the pool takes the machine's cores (or
/// `RAYON_NUM_THREADS`).
///
/// Errors: a count of 0 or over [`MAX_THREADS`], or a pool already started with
/// another count.
pub fn use_threads(threads: usize) -> Result<()> {
    if !(1..=MAX_THREADS).contains(&threads) {
        return Err(Error::invalid(
            Setting::Threads,
            format!("{threads} must be between 1 and {MAX_THREADS}"),
        ));
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("riskgrad-cpu-{i}"))
        .build_global()
    {
        Ok(()) => Ok(()),
        Err(_) if rayon::current_num_threads() == threads => Ok(()),
        Err(e) => Err(Error::invalid(
            Setting::Threads,
            format!(
                "the CPU backend already runs on {} threads: {e}",
                rayon::current_num_threads()
            ),
        )),
    }
}

/// "1 thread", "2 threads": the CPU backend's pool, as the device name and `devices`
/// give it.
pub fn thread_count() -> String {
    match rayon::current_num_threads() {
        1 => "1 thread".to_string(),
        n => format!("{n} threads"),
    }
}

/// The storage of one loaded plan: its transient slots and where its inputs and states
/// are kept in the executor.
struct LoadedPlan {
    plan: Plan,
    /// Launches that run at once with the next one (see `pairs`).
    pair_with_next: Vec<bool>,
    /// Whether this plan's steps run faster split across the lanes.
    lanes: lanes::Chooser,
    /// The step reordered to split its batch rows across the lanes, where it can be,
    /// with its own slots (`step_split`); used whenever the lanes split.
    split: Option<SplitPlan>,
    /// Whether the last step ran split: then its nodes are in the split plan's slots
    /// (`read_node`).
    last_step_split: bool,
    slots: Vec<Vec<f32>>,
    inputs: Vec<usize>,
    states: Vec<usize>,
}

/// Words of scratch space the plan's convolutions need (the largest of them).
fn plan_scratch_words(plan: &Plan, conv_budget: usize) -> usize {
    plan.launches
        .iter()
        .map(|l| match &l.kernel {
            Kernel::Conv(k) => conv::scratch_words(k, conv_budget),
            _ => 0,
        })
        .max()
        .unwrap_or(0)
}

/// Zeroed slots of these lengths in words.
fn zeroed_slots(lens: &[usize]) -> Result<Vec<Vec<f32>>> {
    lens.iter()
        .map(|&len| zeroed_words(len, "an intermediate tensor"))
        .collect()
}

/// A plan's split step and the slots it runs in (swapped with the plan's while it runs).
struct SplitPlan {
    step: StepSplit,
    slots: Vec<Vec<f32>>,
    /// For each launch run together that sums in halves (`step_rows::sums_in_halves`),
    /// a buffer for its second half; empty for the others.
    second_halves: Vec<Vec<f32>>,
}

/// The words of each launch run together's second half (`SplitPlan::second_halves`).
fn second_half_words(step: &StepSplit) -> Vec<usize> {
    step.together
        .iter()
        .map(|&i| {
            let kernel = &step.launches[i];
            match step_rows::sums_in_halves(kernel, step.batch) {
                true => kernel.output().len,
                false => 0,
            }
        })
        .collect()
}

/// Every buffer of an executor and a plan, for the lanes of a split step: what the lanes
/// write by pointer (a lane its own rows of the slots, its own sums' gradients, and
/// where the update runs with the sums, those parameters and their optimizer state),
/// the rest read-only.
struct SplitStepBuffers<'a> {
    slots: Vec<(*mut f32, usize)>,
    inputs: Vec<&'a [f32]>,
    states: Vec<&'a [f32]>,
    params: (*mut f32, usize),
    grads: (*mut f32, usize),
    opt_state: (*mut f32, usize),
    /// `SplitPlan::second_halves`.
    second_halves: Vec<(*mut f32, usize)>,
}

// SAFETY: see `CpuExecutor::run_split_step`: the lanes write disjoint rows of the slots,
// disjoint windows of the gradients, parameters and state, and read only windows no
// lane writes during the phase.
unsafe impl Sync for SplitStepBuffers<'_> {}

impl SplitStepBuffers<'_> {
    /// The buffer behind a storage the lanes write (a slot, the gradients).
    fn writable(&self, storage: Storage) -> Option<(*mut f32, usize)> {
        match storage {
            Storage::Slot(s) => Some(self.slots[s]),
            Storage::Grads => Some(self.grads),
            Storage::Params => Some(self.params),
            Storage::Input(_) | Storage::State(_) => None,
        }
    }

    /// The window `t`. Safety: no lane writes any of it while the slice lives.
    unsafe fn read(&self, t: TensorRef) -> &[f32] {
        if let Some((ptr, len)) = self.writable(t.storage) {
            assert!(t.offset + t.len <= len, "window inside its buffer");
            return std::slice::from_raw_parts(ptr.add(t.offset), t.len);
        }
        let whole: &[f32] = match t.storage {
            Storage::Input(i) => self.inputs[i],
            Storage::State(i) => self.states[i],
            Storage::Slot(_) | Storage::Grads | Storage::Params => unreachable!("writable above"),
        };
        &whole[t.offset..t.offset + t.len]
    }

    /// Words `words` of the window `t` (in a slot or the gradients), to write. Safety:
    /// no other slice of them lives meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn write(&self, t: TensorRef, words: std::ops::Range<usize>) -> &mut [f32] {
        let (ptr, len) = self
            .writable(t.storage)
            .expect("split steps' lanes write slots, gradients and parameters");
        assert!(
            t.offset + words.end <= len && words.end <= t.len,
            "rows inside the window"
        );
        std::slice::from_raw_parts_mut(ptr.add(t.offset + words.start), words.len())
    }

    /// The second half of the `together`-th launch run together
    /// (`SplitPlan::second_halves`). Safety: no other slice of it lives meanwhile.
    #[allow(clippy::mut_from_ref)]
    unsafe fn second_half(&self, together: usize) -> &mut [f32] {
        let (ptr, len) = self.second_halves[together];
        std::slice::from_raw_parts_mut(ptr, len)
    }

    /// The update `update` (the plan's, its `t`-th) of the parameters `span`
    /// (`StepSplit::update_spans`). Safety: no other slice of those parameters,
    /// gradients or state values lives meanwhile.
    unsafe fn update(&self, update: &Kernel, span: std::ops::Range<usize>, t: u32) {
        let Kernel::Optimize { optimizer, len, .. } = *update else {
            unreachable!("the split plan's update")
        };
        let window = |storage| TensorRef {
            storage,
            offset: span.start,
            len: span.len(),
        };
        let params = self.write(window(Storage::Params), 0..span.len());
        let grads = self.read(window(Storage::Grads));
        // The state: a first value per parameter, then (Adam's) a second, `len` later.
        let (state, words) = self.opt_state;
        assert!(span.end <= words, "state inside its buffer");
        let first = std::slice::from_raw_parts_mut(state.add(span.start), span.len());
        let second = match words >= len + span.end {
            true => std::slice::from_raw_parts_mut(state.add(len + span.start), span.len()),
            false => &mut [],
        };
        kernels::update_params(optimizer, params, grads, first, second, t);
    }
}

/// Plans share the packed parameters, gradients and optimizer state, and named inputs
/// and states (a dataset uploaded once serves the training and the validation plan).
#[derive(Default)]
pub struct CpuExecutor {
    /// `None` only while the plan is running (it is moved out beside the buffers).
    plans: Vec<Option<LoadedPlan>>,
    params: Vec<f32>,
    grads: Vec<f32>,
    opt_state: Vec<f32>,
    named: Words,
    /// The calling thread and a helper, for splitting kernels (see `lanes`).
    lanes: std::sync::Arc<lanes::Lanes>,
    /// Working memory of the convolution kernels, sized by `load` for every plan.
    scratch: Vec<f32>,
    /// Words a convolution may use per chunk of images (`None`: the default).
    conv_budget: Option<usize>,
    /// A cap on a named input's bytes, which host memory does not have; for tests of
    /// the streamed training tables (`limit_input_bytes`).
    input_limit: Option<u64>,
}

impl CpuExecutor {
    /// An executor with no plans loaded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Caps the scratch of a convolution for later `load`s, so tests can exercise the
    /// chunked path (images split over several products) with small data.
    #[doc(hidden)]
    pub fn limit_conv_scratch(&mut self, words: usize) {
        self.conv_budget = Some(words.max(1));
    }

    /// Reports `bytes` as its largest input (`Executor::largest_input_bytes`), so tests
    /// can exercise the streamed training tables on the CPU backend with small data.
    #[doc(hidden)]
    pub fn limit_input_bytes(&mut self, bytes: u64) {
        self.input_limit = Some(bytes);
    }

    fn conv_budget(&self) -> usize {
        self.conv_budget.unwrap_or(conv::DEFAULT_CHUNK_WORDS)
    }

    fn buffer<'a>(&'a self, plan: &'a LoadedPlan, storage: Storage) -> &'a [f32] {
        match storage {
            Storage::Slot(s) => &plan.slots[s],
            Storage::Input(i) => self.named.get(plan.inputs[i]),
            Storage::State(i) => self.named.get(plan.states[i]),
            Storage::Params => &self.params,
            Storage::Grads => &self.grads,
        }
    }

    fn view<'a>(&'a self, plan: &'a LoadedPlan, t: TensorRef) -> &'a [f32] {
        &self.buffer(plan, t.storage)[t.offset..t.offset + t.len]
    }

    fn take_buffer(&mut self, plan: &mut LoadedPlan, storage: Storage) -> Vec<f32> {
        std::mem::take(match storage {
            Storage::Slot(s) => &mut plan.slots[s],
            Storage::Input(i) => self.named.get_mut(plan.inputs[i]),
            Storage::State(i) => self.named.get_mut(plan.states[i]),
            Storage::Params => &mut self.params,
            Storage::Grads => &mut self.grads,
        })
    }

    fn put_buffer(&mut self, plan: &mut LoadedPlan, storage: Storage, buf: Vec<f32>) {
        *match storage {
            Storage::Slot(s) => &mut plan.slots[s],
            Storage::Input(i) => self.named.get_mut(plan.inputs[i]),
            Storage::State(i) => self.named.get_mut(plan.states[i]),
            Storage::Params => &mut self.params,
            Storage::Grads => &mut self.grads,
        } = buf;
    }

    /// Runs launches `i` and `i + 1`, two independent matmuls, on two lanes.
    fn run_pair(&mut self, lp: &mut LoadedPlan, i: usize) {
        let (
            Kernel::MatMul(MatMulKernel {
                a: a1,
                b: b1,
                bias: c1,
                out: o1,
                m: m1,
                n: n1,
                k: k1,
                trans_a: ta1,
                trans_b: tb1,
                act: f1,
            }),
            Kernel::MatMul(MatMulKernel {
                a: a2,
                b: b2,
                bias: c2,
                out: o2,
                m: m2,
                n: n2,
                k: k2,
                trans_a: ta2,
                trans_b: tb2,
                act: f2,
            }),
        ) = (lp.plan.launches[i].kernel, lp.plan.launches[i + 1].kernel)
        else {
            unreachable!("pairs are matmuls")
        };
        let mut buf1 = self.take_buffer(lp, o1.storage);
        let mut buf2 = self.take_buffer(lp, o2.storage);
        {
            let (d1, d2) = (
                &mut buf1[o1.offset..o1.offset + o1.len],
                &mut buf2[o2.offset..o2.offset + o2.len],
            );
            let v = |t: TensorRef| self.view(lp, t);
            self.lanes.both(
                || kernels::matmul_on(v(a1), v(b1), c1.map(v), d1, m1, n1, k1, ta1, tb1, f1, false),
                || kernels::matmul_on(v(a2), v(b2), c2.map(v), d2, m2, n2, k2, ta2, tb2, f2, false),
            );
        }
        self.put_buffer(lp, o2.storage, buf2);
        self.put_buffer(lp, o1.storage, buf1);
    }

    /// Runs one launch of `lp` (or of its split plan, whose slots are then `lp`'s).
    fn run_launch(
        &mut self,
        lp: &mut LoadedPlan,
        kernel: Kernel,
        step: usize,
        scratch: &mut [f32],
        budget: usize,
    ) {
        if let Kernel::Optimize {
            optimizer,
            len,
            step: counters,
        } = kernel
        {
            let t = self.view(lp, counters)[1].to_bits() + 1;
            kernels::optimize(
                optimizer,
                &mut self.params[..len],
                &self.grads[..len],
                &mut self.opt_state,
                t,
                Some(&self.lanes),
            );
            return;
        }
        let out = kernel.output();
        // The output buffer is moved out while the kernel runs, so the inputs can be
        // borrowed beside it; the plan never reads and writes one buffer in a launch.
        let mut buf = self.take_buffer(lp, out.storage);
        let dst = &mut buf[out.offset..out.offset + out.len];
        let v = |t: TensorRef| self.view(lp, t);
        match kernel {
            Kernel::Fill { value, .. } => dst.fill(value),
            Kernel::MatMul(k) => k.run_cpu(v, dst, &self.lanes),
            Kernel::Elementwise(k) => k.run_cpu(v, dst, &self.lanes),
            Kernel::Broadcast(k) => k.run_cpu(v, dst),
            Kernel::Loss(k) => k.run_cpu(v, dst),
            Kernel::Gather(k) => k.run_cpu(v, dst, step),
            Kernel::CopyCols {
                x,
                rows,
                cols,
                src_cols,
                src_start,
                dst_cols,
                dst_start,
                ..
            } => kernels::copy_cols(
                v(x),
                dst,
                rows,
                cols,
                src_cols,
                src_start,
                dst_cols,
                dst_start,
            ),
            Kernel::Accumulate { x, .. } => dst[0] += v(x)[0],
            Kernel::Collect { x, .. } => {
                let n = x.len;
                dst[step * n..(step + 1) * n].copy_from_slice(v(x))
            }
            Kernel::AdvanceStep { counters, .. } => {
                for c in &mut dst[..counters as usize] {
                    *c = f32::from_bits(c.to_bits().wrapping_add(1));
                }
            }
            Kernel::Rnn(k) => k.run_cpu(v, dst, &self.lanes),
            Kernel::Optimize { .. } => unreachable!("handled above"),
            Kernel::Conv(k) => k.run_cpu(v, dst, scratch, budget),
            Kernel::Pool(k) => k.run_cpu(v, dst),
            Kernel::Dropout(k) => k.run_cpu(v, dst),
        }
        self.put_buffer(lp, out.storage, buf);
    }

    /// Runs one step with its batch rows split across the lanes (`step_split`): the
    /// launches before the rows, then each lane's rows through every row launch, then,
    /// after one join, the rest.
    fn run_split_step(&mut self, lp: &mut LoadedPlan, step: usize) {
        let mut split = lp.split.take().expect("a split plan");
        std::mem::swap(&mut lp.slots, &mut split.slots);
        let mut scratch = std::mem::take(&mut self.scratch);
        let budget = self.conv_budget();
        let plan = &split.step;
        for &i in &plan.before {
            self.run_launch(lp, plan.launches[i], step, &mut scratch, budget);
        }
        let lanes = self.lanes.clone();
        // Blocks of rows as a split product takes them (none thinner than 16 rows).
        let row_blocks = kernels::blocks(plan.batch, lanes.count());
        // Two lanes take the rows in the halves the CPU sums rows in
        // (`kernels::sum_halves`): then each lane also sums its own rows for the sums
        // taken in halves, and no sum reads rows another core wrote (which would move
        // them to that core's cache, for the writer to fetch back the next step).
        let by_halves = row_blocks.1 == 2 && row_blocks == kernels::blocks(plan.batch, 2);
        // The update, where it runs with the sums, and its count (as `run_launch` reads it).
        let update = plan.update_at.map(|at| {
            let update = plan.launches[plan.after[at]];
            let Kernel::Optimize { step: counters, .. } = update else {
                unreachable!("`update_at` names the update")
            };
            (update, self.view(lp, counters)[1].to_bits() + 1)
        });
        let halved: Vec<bool> = split.second_halves.iter().map(|v| !v.is_empty()).collect();
        let in_halves = |together: usize| halved[together];
        let buffers = SplitStepBuffers {
            slots: lp
                .slots
                .iter_mut()
                .map(|v| (v.as_mut_ptr(), v.len()))
                .collect(),
            inputs: lp.inputs.iter().map(|&i| self.named.get(i)).collect(),
            states: lp.states.iter().map(|&i| self.named.get(i)).collect(),
            params: (self.params.as_mut_ptr(), self.params.len()),
            grads: (self.grads.as_mut_ptr(), self.grads.len()),
            opt_state: (self.opt_state.as_mut_ptr(), self.opt_state.len()),
            second_halves: split
                .second_halves
                .iter_mut()
                .map(|v| (v.as_mut_ptr(), v.len()))
                .collect(),
        };
        lanes.split(row_blocks.1, |part| {
            let rows = kernels::block_range(part, row_blocks, plan.batch);
            for &(i, width) in &plan.rows {
                let kernel = &plan.launches[i];
                // SAFETY: every row launch writes a slot of its own (`private_slots`), and
                // this lane only its rows of it; it reads those rows of row tensors,
                // which this lane wrote, and whole windows that no row launch writes
                // (`step_split::row_width`).
                let out =
                    unsafe { buffers.write(kernel.output(), rows.start * width..rows.end * width) };
                step_rows::run_rows(
                    kernel,
                    width,
                    rows.clone(),
                    step,
                    |t| unsafe { buffers.read(t) },
                    out,
                );
            }
            if !by_halves {
                return;
            }
            for (together, &i) in plan.together.iter().enumerate() {
                if !in_halves(together) {
                    continue;
                }
                let kernel = &plan.launches[i];
                // SAFETY: no row launch reads what a launch run together writes
                // (`step_split`); the first half's lane alone writes the window, the
                // second's the second half. It reads this lane's rows of row tensors
                // (`step_rows::sums_in_halves`) and windows no launch writes meanwhile.
                let out = match part {
                    0 => unsafe { buffers.write(kernel.output(), 0..kernel.output().len) },
                    _ => unsafe { buffers.second_half(together) },
                };
                step_rows::run_half(kernel, part, |t| unsafe { buffers.read(t) }, out);
            }
        });
        lanes.split(plan.together.len(), |part| {
            let kernel = &plan.launches[plan.together[part]];
            let window = kernel.output();
            // SAFETY: the launches run together are independent (`step_split`): none
            // writes what another reads or writes, and none reads the parameters, whose
            // windows the update's pieces write, each the window of its own gradients.
            let out = unsafe { buffers.write(window, 0..window.len) };
            if by_halves && in_halves(part) {
                // SAFETY: only this part touches its second half now.
                step_rows::add_halves(kernel, out, unsafe { buffers.second_half(part) });
            } else {
                step_rows::run_whole(kernel, |t| unsafe { buffers.read(t) }, out);
            }
            let span = plan
                .update_spans
                .iter()
                .find(|s| s.0 == plan.together[part]);
            if let (Some((update, t)), Some((_, span))) = (&update, span) {
                // SAFETY: the spans do not overlap, and no launch run together reads
                // the parameters or the gradients in another's span (`update_spans`).
                unsafe { buffers.update(update, span.clone(), *t) };
            }
        });
        drop(buffers);
        for (at, &i) in plan.after.iter().enumerate() {
            if plan.update_at != Some(at) {
                self.run_launch(lp, plan.launches[i], step, &mut scratch, budget);
            }
        }
        self.scratch = scratch;
        std::mem::swap(&mut lp.slots, &mut split.slots);
        lp.split = Some(split);
        lp.last_step_split = true;
    }

    /// Runs one step; with `times`, pushes each launch's seconds onto it (a pair's time
    /// split equally between its two launches).
    fn run_step(
        &mut self,
        lp: &mut LoadedPlan,
        step: usize,
        mut times: Option<&mut Vec<f64>>,
    ) -> Result<()> {
        lp.last_step_split = false;
        let mut next = 0;
        let mut scratch = std::mem::take(&mut self.scratch);
        let budget = self.conv_budget();
        // The launches since the clock was last read: 1, or 2 after a pair.
        let mut clock = (std::time::Instant::now(), 0usize);
        let mut lap = |clock: &mut (std::time::Instant, usize), launches: usize| {
            if let Some(times) = times.as_deref_mut() {
                let seconds = clock.0.elapsed().as_secs_f64() / clock.1.max(1) as f64;
                times.extend(std::iter::repeat_n(seconds, clock.1));
                *clock = (std::time::Instant::now(), launches);
            }
        };
        for i in 0..lp.plan.launches.len() {
            if i < next {
                continue; // ran as the second of a pair
            }
            // A pair fills exactly two lanes; with more, each product splits across all.
            let pair = lp.pair_with_next[i] && self.lanes.count() <= 2;
            lap(&mut clock, 1 + pair as usize);
            if pair {
                self.run_pair(lp, i);
                next = i + 2;
                continue;
            }
            self.run_launch(lp, lp.plan.launches[i].kernel, step, &mut scratch, budget);
        }
        lap(&mut clock, 0);
        self.scratch = scratch;
        Ok(())
    }

    /// The plan's step split across the lanes (`step_split`), where there are lanes.
    fn step_split_of(&self, plan: &Plan) -> Option<StepSplit> {
        if !self.lanes.available() {
            return None;
        }
        let kernels: Vec<Kernel> = plan.launches.iter().map(|l| l.kernel).collect();
        StepSplit::plan(&kernels, &plan.slots)
    }

    /// `host_bytes_to_load`, each plan's split already planned.
    fn host_bytes_with_splits(&self, plans: &[(&Plan, Option<&StepSplit>)]) -> u64 {
        let mut words: usize = 0;
        let mut holds_params = !self.plans.is_empty();
        let mut opt_state = self.opt_state.len();
        let mut scratch = self.scratch.len();
        let mut declared: Vec<&str> = Vec::new();
        for &(plan, split) in plans {
            if !holds_params {
                words = words.saturating_add(plan.layout.total.saturating_mul(2));
                holds_params = true;
            }
            if plan.opt_state_len > opt_state {
                words = words.saturating_add(plan.opt_state_len);
                opt_state = plan.opt_state_len;
            }
            for (name, len) in plan
                .inputs
                .iter()
                .map(|i| (&i.name, i.len))
                .chain(plan.states.iter().map(|s| (&s.name, s.len)))
            {
                if self.named.index(name).is_err() && !declared.contains(&name.as_str()) {
                    words = words.saturating_add(len);
                    declared.push(name);
                }
            }
            words = words.saturating_add(plan.slots.iter().fold(0, |a, &b| a.saturating_add(b)));
            if let Some(step) = split {
                words = step
                    .slots
                    .iter()
                    .chain(&second_half_words(step))
                    .fold(words, |a, &b| a.saturating_add(b));
            }
            let conv = plan_scratch_words(plan, self.conv_budget());
            if conv > scratch {
                words = words.saturating_add(conv);
                scratch = conv;
            }
        }
        (words as u64).saturating_mul(4)
    }
}

impl Executor for CpuExecutor {
    fn device_name(&self) -> String {
        format!("CPU ({})", thread_count())
    }

    fn host_bytes_to_load(&self, plans: &[&Plan]) -> u64 {
        let splits: Vec<_> = plans.iter().map(|plan| self.step_split_of(plan)).collect();
        let with_splits: Vec<_> = plans
            .iter()
            .copied()
            .zip(splits.iter().map(Option::as_ref))
            .collect();
        self.host_bytes_with_splits(&with_splits)
    }

    fn load(&mut self, plan: Plan) -> Result<usize> {
        crate::engine::exec::check_layout(&plan, self.params.len(), !self.plans.is_empty())?;
        // Planned once, for the estimate and for the load.
        let split = self.step_split_of(&plan);
        crate::engine::exec::ensure_memory_for(
            self.host_bytes_with_splits(&[(&plan, split.as_ref())]),
            crate::engine::exec::PLAN_BUFFERS,
        )?;
        if self.plans.is_empty() {
            self.params = zeroed_words(plan.layout.total, "the parameters")?;
            self.grads = zeroed_words(plan.layout.total, "the gradients")?;
        }
        if self.opt_state.len() < plan.opt_state_len {
            self.opt_state = zeroed_words(plan.opt_state_len, "the optimizer state")?;
        }
        let inputs = plan
            .inputs
            .iter()
            .map(|i| self.named.declare(&i.name, i.len))
            .collect::<Result<_>>()?;
        let states = plan
            .states
            .iter()
            .map(|s| self.named.declare(&s.name, s.len))
            .collect::<Result<_>>()?;
        let slots = zeroed_slots(&plan.slots)?;
        let pair_with_next = if self.lanes.available() {
            pairs::plan_pairs(&plan.launches)
        } else {
            vec![false; plan.launches.len()]
        };
        let scratch = plan_scratch_words(&plan, self.conv_budget());
        if self.scratch.len() < scratch {
            self.scratch = zeroed_words(scratch, "the convolution scratch space")?;
        }
        let split = match split {
            Some(step) => Some(SplitPlan {
                slots: zeroed_slots(&step.slots)?,
                second_halves: zeroed_slots(&second_half_words(&step))?,
                step,
            }),
            None => None,
        };
        self.plans.push(Some(LoadedPlan {
            plan,
            pair_with_next,
            lanes: lanes::Chooser::default(),
            split,
            last_step_split: false,
            slots,
            inputs,
            states,
        }));
        Ok(self.plans.len() - 1)
    }

    fn write(&mut self, name: &str, data: &[f32]) -> Result<()> {
        self.named.write(name, data)
    }

    fn read(&mut self, name: &str) -> Result<Vec<f32>> {
        self.named.read(name)
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        crate::engine::exec::check_len("parameters", params.len(), self.params.len())?;
        self.params.copy_from_slice(params);
        Ok(())
    }

    fn read_params(&mut self) -> Result<Vec<f32>> {
        Ok(self.params.clone())
    }

    fn read_opt_state(&mut self) -> Result<Vec<f32>> {
        Ok(self.opt_state.clone())
    }

    fn write_opt_state(&mut self, state: &[f32]) -> Result<()> {
        crate::engine::exec::check_len("optimizer state", state.len(), self.opt_state.len())?;
        self.opt_state.copy_from_slice(state);
        Ok(())
    }

    fn read_node(&mut self, plan: usize, node: crate::engine::graph::NodeId) -> Result<Vec<f32>> {
        let lp = self
            .plans
            .get(plan)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Internal(format!("no plan {plan}")))?;
        let t = lp.plan.location(node)?;
        match &lp.split {
            // A window of a slot moved to the split plan's own slot.
            Some(split) if lp.last_step_split && matches!(t.storage, Storage::Slot(_)) => {
                let moved = split.step.relocate(t).ok_or_else(|| {
                    Error::Internal(format!(
                        "node {node:?} has no window of its own after a split step"
                    ))
                })?;
                let Storage::Slot(s) = moved.storage else {
                    unreachable!("a slot window stays in a slot")
                };
                Ok(split.slots[s][moved.offset..moved.offset + moved.len].to_vec())
            }
            _ => Ok(self.view(lp, t).to_vec()),
        }
    }

    fn reads_are_free(&self) -> bool {
        true
    }

    fn largest_input_bytes(&self) -> Option<u64> {
        self.input_limit
    }

    fn run_from(&mut self, plan: usize, first_step: usize, steps: usize) -> Result<()> {
        self.with_plan(plan, first_step, steps, |this, lp| {
            if !this.lanes.available() {
                return (first_step..first_step + steps)
                    .try_for_each(|s| this.run_step(lp, s, None));
            }
            // Each step split across the lanes or not, whichever has been faster.
            let lanes = this.lanes.clone();
            let result = (first_step..first_step + steps).try_for_each(|s| {
                let split = lp.lanes.pick();
                lanes.set_splitting(split);
                let started = std::time::Instant::now();
                if split && lp.split.is_some() {
                    this.run_split_step(lp, s);
                } else {
                    this.run_step(lp, s, None)?;
                }
                lp.lanes.record(split, started.elapsed().as_secs_f64());
                Ok(())
            });
            lanes.set_splitting(false);
            result
        })
    }

    fn time_launches(&mut self, plan: usize, step: usize) -> Result<Option<Vec<(String, f64)>>> {
        let mut times = Vec::new();
        let mut names = Vec::new();
        self.with_plan(plan, step, 1, |this, lp| {
            // Split across the lanes as a normal run would be now.
            let split = this.lanes.available() && lp.lanes.pick();
            this.lanes.set_splitting(split);
            let result = this.run_step(lp, step, Some(&mut times));
            this.lanes.set_splitting(false);
            names = lp
                .plan
                .launches
                .iter()
                .map(|l| crate::engine::exec::kernel_name(&l.kernel))
                .collect();
            result
        })?;
        Ok(Some(names.into_iter().zip(times).collect()))
    }
}

impl CpuExecutor {
    /// Takes plan `plan` out for `run` (so its buffers and the executor's can be
    /// borrowed side by side), after checking that `steps` steps from `first_step` fit
    /// its index lists and setting the step counter to `first_step`; puts it back after,
    /// whatever `run` returned.
    fn with_plan(
        &mut self,
        plan: usize,
        first_step: usize,
        steps: usize,
        run: impl FnOnce(&mut Self, &mut LoadedPlan) -> Result<()>,
    ) -> Result<()> {
        let mut lp = self
            .plans
            .get_mut(plan)
            .and_then(Option::take)
            .ok_or_else(|| Error::Internal(format!("no plan {plan}")))?;
        let result = (|| {
            crate::engine::exec::check_run(&lp.plan, first_step, steps, |name| {
                self.named.read_u32_max(name)
            })?;
            let counter = lp
                .plan
                .state_index(crate::engine::plan::STEP_STATE)
                .expect("every plan counts steps");
            self.named.get_mut(lp.states[counter])[0] = f32::from_bits(first_step as u32);
            run(self, &mut lp)
        })();
        self.plans[plan] = Some(lp);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::exec::indices_as_words;
    use crate::engine::graph::{backward, Act, Graph, Optimizer};
    use crate::engine::plan::{compile, PlanRequest};
    use crate::rng::Rng;

    /// A training step over a gathered batch of 64 (two linear layers), its logits
    /// kept, on `exec`: the logits the host reads after one step, and whether that step
    /// ran split.
    fn logits_after_a_step(exec: &mut CpuExecutor) -> (Vec<f32>, bool) {
        let (rows, batch, features) = (100, 64, 6);
        let mut g = Graph::new();
        let table = g.input("table", &[rows, features]).unwrap();
        let labels = g.input("labels", &[rows, 1]).unwrap();
        let perm = g.input("perm", &[batch]).unwrap();
        let x = g.gather_rows(table, perm, batch).unwrap();
        let y = g.gather_rows(labels, perm, batch).unwrap();
        let (w0, b0) = (
            g.param("w0", &[features, 9]).unwrap(),
            g.param("b0", &[9]).unwrap(),
        );
        let (w1, b1) = (
            g.param("w1", &[9, 1]).unwrap(),
            g.param("b1", &[1]).unwrap(),
        );
        let h = g.linear(x, w0, b0, Act::Tanh).unwrap();
        let logits = g.linear(h, w1, b1, Act::Identity).unwrap();
        let loss = g.bce_with_logits(logits, y, 1.0).unwrap();
        let grads = backward(&mut g, loss, &[]).unwrap();
        let grads = (0..g.params.len())
            .map(|p| (p, grads.of(g.param_node(p)).unwrap()))
            .collect();
        let plan = compile(
            &g,
            &PlanRequest {
                keep: vec![logits],
                loss: Some(loss),
                grads,
                optimizer: Some(Optimizer::Sgd {
                    lr: 0.1,
                    momentum: 0.0,
                }),
                collect: None,
            },
        )
        .unwrap();
        let total = plan.layout.total;
        let h = exec.load(plan).unwrap();
        let mut rng = Rng::new(11);
        let table: Vec<f32> = (0..rows * features)
            .map(|_| rng.range(-1.0, 1.0) as f32)
            .collect();
        exec.write("table", &table).unwrap();
        let labels: Vec<f32> = (0..rows).map(|i| (i % 3 == 0) as u8 as f32).collect();
        exec.write("labels", &labels).unwrap();
        let perm: Vec<u32> = (0..batch).map(|_| rng.below(rows) as u32).collect();
        exec.write("perm", &indices_as_words(&perm)).unwrap();
        let params: Vec<f32> = (0..total).map(|_| rng.range(-0.5, 0.5) as f32).collect();
        exec.write_params(&params).unwrap();
        exec.run_from(h, 0, 1).unwrap();
        let split = exec.plans[h].as_ref().unwrap().last_step_split;
        (exec.read_node(h, logits).unwrap(), split)
    }

    #[test]
    fn a_node_read_after_a_split_step_is_the_one_that_step_computed() {
        let mut one = CpuExecutor::new();
        one.lanes = std::sync::Arc::new(lanes::Lanes::with_count(1));
        let (want, split) = logits_after_a_step(&mut one);
        assert!(!split);
        let mut two = CpuExecutor::new();
        two.lanes = std::sync::Arc::new(lanes::Lanes::with_count(2));
        // A plan's first step is a trial of the split way (`lanes::Chooser`).
        let (got, split) = logits_after_a_step(&mut two);
        assert!(split, "the first step ran split");
        assert_eq!(got, want);
    }
}
