//! The GPU executor: runs a `Plan` with the WGSL kernels, same semantics as
//! `cpu::CpuExecutor` (the reference in tests).
//!
//! Everything is prepared in `load`: one wgpu buffer per transient slot, named input or
//! state, and for the packed parameters, gradients and optimizer state; one uniform
//! buffer per plan holding every launch's parameters; one bind group per launch. `run`
//! then only records `steps × launches` dispatches into one command encoder and submits
//! it once; it reads nothing back. Kernels that depend on the step (gather, scatter-add,
//! collect, the optimizer's bias correction) read the `"step"` state on the GPU, so one
//! recording serves a whole epoch. A plan launch is one GPU launch, except a row gather
//! (or scatter) over a table larger than one storage binding: a launch per run of rows
//! that fits one (`Limits::row_pieces`).

use super::context::{ErrorScope, GpuContext};
use super::flat_width::WidthKind;
use super::kernel_params::{
    ElementwiseParams, GatherParams, KernelParams, OptimizerParams, RowOp, RowProgramParams,
    RP_ROWS,
};
use super::row_program::{FusedStep, Stage};
use super::shaders::{Access, Layout, Pipe, PipeKey, Precision, UNIFORM_BYTES};
use super::tune::GemmShape;
use super::tune::StepForm;
use crate::engine::exec::Executor;
use crate::engine::graph::{NodeId, Optimizer};
use crate::engine::plan::{Kernel, Plan, Storage, TensorRef, MAX_RANK, STEP_STATE};
use crate::error::{Error, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The environment variable that caps the bytes one storage binding may see, below the
/// device's own limit: for tests and benchmarks of the split row gathers on a device
/// whose binding limit is larger than the table at hand. Ignored unless a number.
pub const BINDING_LIMIT_VAR: &str = "RISKGRAD_GPU_MAX_BINDING_BYTES";

/// The environment variable that caps the bytes of one named input below the device's
/// largest buffer: a training table over it is streamed through the executor in chunks
/// (`train::Trainer`); for tests and benchmarks of streaming on a device whose memory
/// holds the table at hand. Ignored unless a number.
pub const INPUT_LIMIT_VAR: &str = "RISKGRAD_GPU_MAX_INPUT_BYTES";

/// The smallest binding cap `limit_binding_bytes` or `BINDING_LIMIT_VAR` may set: 16
/// units of the largest storage offset alignment (256 bytes), so a piece's aligned
/// window always has room for rows. Any tensor other than a gathered table or a
/// scattered table gradient must still fit the cap whole.
pub const MIN_BINDING_BYTES: u64 = 4096;

/// What one element of a buffer is (DESIGN.md, flow item 8).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Elem {
    /// A tensor's element, `Store` in the context's precision: slots, the parameters
    /// and gradients, inputs other than index lists.
    Store,
    /// A 32-bit word: index lists and counters (u32), the f32 state the host reads (the
    /// loss sum, collected outputs), the optimizer state and master parameters, the row
    /// program's operations.
    Word,
}

/// The loss scale of f16 training: the loss gradient is multiplied by it and every
/// gradient divided by it in the update, so that a batch's mean-loss gradients
/// (1e-5 to 1e-2) sit inside f16's normal range (from 6.1e-5) without overflowing
/// (a first-layer weight gradient of a standardized table stays far below 65,504 /
/// 256). A power of two, so the scaling itself rounds nothing.
pub const F16_LOSS_SCALE: f32 = 256.0;

/// A host-named buffer (input or state), shared by every plan that names it.
struct Named {
    name: String,
    len: usize,
    elem: Elem,
    buffer: wgpu::Buffer,
    /// The largest word written from the host, as u32 (to check index lists).
    max_u32: Option<u32>,
}

/// A buffer a launch binds: one of the plan's storages, or the optimizer state (which
/// plans only reach through `Kernel::Optimize`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Target {
    Plan(Storage),
    OptState,
    /// The row program's operations (`row_program`).
    Program,
    /// The f32 master copy of the parameters (f16 only).
    Master,
}

/// A run of words of one buffer bound to a shader: from `start` (aligned to the
/// adapter's storage offset alignment) for `words`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Window {
    target: Target,
    start: usize,
    words: usize,
}

/// The storage bindings of a launch: binding number and window (`None`: unused).
pub(crate) type Bindings = Vec<(u32, Option<Window>)>;

/// A launch's uniform record, bindings and grid.
pub(crate) type Encoded = (Vec<u8>, Bindings, [u32; 3]);

/// One launch as the GPU runs it, before any wgpu object exists.
#[derive(Clone, Debug)]
struct Lowered {
    pipe: PipeKey,
    /// The launch's uniform record (a `KernelParams` struct's bytes).
    params: Vec<u8>,
    /// The window at each storage binding of the pipeline's layout; `None` binds a
    /// small dummy buffer (the binding is not used by that entry point).
    bindings: Bindings,
    groups: [u32; 3],
}

struct LoadedPlan {
    plan: Plan,
    /// The plan's step with its row launches fused, where the tuner chose that form:
    /// then `slots` are its slots, and a node's window moves (`FusedStep::relocate`).
    fused: Option<FusedStep>,
    slots: Vec<wgpu::Buffer>,
    /// The row program's operations, in the fused form.
    program: Option<wgpu::Buffer>,
    /// Index into `GpuExecutor::named` of each plan input and state.
    inputs: Vec<usize>,
    states: Vec<usize>,
    step: usize,
    launches: Vec<Lowered>,
    /// What each launch is timed as: its kernel's name (`exec::kernel_name`), the row
    /// program's `RowProgram`.
    labels: Vec<String>,
    /// The label each launch comes from (a split row gather is several launches).
    origins: Vec<usize>,
    uniforms: wgpu::Buffer,
    bind_groups: Vec<wgpu::BindGroup>,
}

impl LoadedPlan {
    /// The row program's launch, in the fused form.
    fn row_program_launch(&self) -> Option<usize> {
        let stage = self.labels.iter().position(|l| l == ROW_PROGRAM_LABEL)?;
        self.origins.iter().position(|&o| o == stage)
    }
}

/// What the row program's launch is timed as (`Executor::time_launches`).
const ROW_PROGRAM_LABEL: &str = "RowProgram";

/// Runs plans on one wgpu device. Plans loaded into one executor share the packed
/// parameters, gradients, optimizer state and named inputs and states.
pub struct GpuExecutor {
    ctx: Arc<GpuContext>,
    plans: Vec<LoadedPlan>,
    params: Option<wgpu::Buffer>,
    grads: Option<wgpu::Buffer>,
    param_len: usize,
    opt: Option<wgpu::Buffer>,
    opt_len: usize,
    /// The f32 master parameters the update runs on, in f16 (made with `params`).
    master: Option<wgpu::Buffer>,
    named: Vec<Named>,
    dummy: wgpu::Buffer,
    poison: bool,
    max_groups: u32,
    max_binding_bytes: u64,
    /// The largest named input it reports (`Executor::largest_input_bytes`).
    max_input_bytes: u64,
    host_time: Duration,
    last_steps: usize,
}

impl GpuExecutor {
    /// An executor on `ctx`'s device, with no plans loaded.
    pub fn new(ctx: Arc<GpuContext>) -> Self {
        let dummy = ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("unused binding"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        let max_groups = ctx.limits.max_compute_workgroups_per_dimension;
        let device_binding = ctx.limits.max_storage_buffer_binding_size;
        let max_binding_bytes = match std::env::var(BINDING_LIMIT_VAR) {
            Ok(v) => v.trim().parse::<u64>().map_or(device_binding, |b| {
                b.clamp(MIN_BINDING_BYTES, device_binding)
            }),
            Err(_) => device_binding,
        };
        let max_input_bytes = std::env::var(INPUT_LIMIT_VAR)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map_or(ctx.limits.max_buffer_size, |b| {
                b.min(ctx.limits.max_buffer_size)
            });
        GpuExecutor {
            ctx,
            max_input_bytes,
            plans: Vec::new(),
            params: None,
            grads: None,
            param_len: 0,
            opt: None,
            opt_len: 0,
            master: None,
            named: Vec::new(),
            dummy,
            poison: false,
            max_groups,
            max_binding_bytes,
            host_time: Duration::ZERO,
            last_steps: 0,
        }
    }

    /// The device it runs on.
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// When on, buffers created by later `load`s start as NaN words instead of zeros:
    /// transient slots, every parameter's gradient window, and named states other than
    /// the step counter (which the executor itself keeps, as the CPU one does). A kernel
    /// that fails to write its output then shows up as NaN. For tests.
    pub fn set_poison(&mut self, on: bool) {
        self.poison = on;
    }

    /// CPU time spent recording and submitting the last `run`.
    pub fn host_time_of_last_run(&self) -> Duration {
        self.host_time
    }

    /// Caps workgroups per grid dimension for later `load`s, so tests can exercise the
    /// 2-D grids that large launches need with small data.
    #[doc(hidden)]
    pub fn limit_workgroups_per_dimension(&mut self, n: u32) {
        self.max_groups = n.clamp(1, self.ctx.limits.max_compute_workgroups_per_dimension);
    }

    /// Caps the bytes one storage binding may see for later `load`s (at least
    /// `MIN_BINDING_BYTES`, at most the device's limit), so tests can exercise the
    /// split row gathers of tables larger than a binding with small data.
    #[doc(hidden)]
    pub fn limit_binding_bytes(&mut self, bytes: u64) {
        self.max_binding_bytes = bytes.clamp(
            MIN_BINDING_BYTES,
            self.ctx.limits.max_storage_buffer_binding_size,
        );
    }

    /// Reports at most `bytes` as its largest input for later trainers (see
    /// `INPUT_LIMIT_VAR`), so tests can exercise streamed training tables.
    #[doc(hidden)]
    pub fn limit_input_bytes(&mut self, bytes: u64) {
        self.max_input_bytes = bytes.min(self.ctx.limits.max_buffer_size);
    }

    /// Bytes of one `elem`.
    fn bytes(&self, elem: Elem) -> u64 {
        match elem {
            Elem::Store => self.ctx.precision.store_bytes() as u64,
            Elem::Word => 4,
        }
    }

    fn create_buffer(
        &self,
        label: &str,
        len: usize,
        elem: Elem,
        usage: wgpu::BufferUsages,
    ) -> Result<wgpu::Buffer> {
        let bytes = (len.max(4) as u64 * self.bytes(elem)).next_multiple_of(16);
        if bytes > self.ctx.limits.max_buffer_size {
            return Err(Error::Gpu(format!(
                "{label} needs {bytes} bytes, over {}'s largest buffer of {} bytes",
                self.ctx.info.name, self.ctx.limits.max_buffer_size
            )));
        }
        Ok(self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size: bytes,
            usage,
            mapped_at_creation: false,
        }))
    }

    /// An error, before anything is tuned or allocated, when one of the plan's tensors
    /// (the packed parameters, the optimizer state, an intermediate) is larger than the
    /// adapter can bind: a model sized beyond the device by its flags, a usage error.
    /// Inputs are not among them: a table over a binding is split or streamed.
    fn refuse_tensors_over_a_binding(&self, plan: &Plan) -> Result<()> {
        let largest =
            (self.ctx.limits.max_storage_buffer_binding_size).min(self.ctx.limits.max_buffer_size);
        let store = self.bytes(Elem::Store);
        let tensors = plan
            .slots
            .iter()
            .chain([&plan.layout.total])
            .map(|&w| w as u64 * store);
        let biggest = tensors
            .chain([4 * plan.opt_state_len as u64])
            .max()
            .unwrap_or(0);
        if biggest > largest {
            return Err(Error::OverBinding {
                device: self.ctx.info.name.clone(),
                bytes: biggest,
                limit: largest,
            });
        }
        Ok(())
    }

    fn storage_buffer(&self, label: &str, len: usize, elem: Elem) -> Result<wgpu::Buffer> {
        use wgpu::BufferUsages as U;
        self.create_buffer(label, len, elem, U::STORAGE | U::COPY_DST | U::COPY_SRC)
    }

    /// `data` as `elem`s' bytes, padded to the 4 bytes a buffer write needs; 32-bit
    /// elements as they are, without a copy (a resident table can be 200 MB).
    fn encode<'d>(&self, data: &'d [f32], elem: Elem) -> std::borrow::Cow<'d, [u8]> {
        if self.bytes(elem) == 4 {
            return std::borrow::Cow::Borrowed(bytemuck::cast_slice(data));
        }
        std::borrow::Cow::Owned(self.ctx.precision.encode_padded(data, 4))
    }

    /// Writes NaN over `len` elements at `offset` (f16: from an even offset; an odd
    /// length also writes the 0 of the element after, which is padding).
    fn fill_nan(&self, buffer: &wgpu::Buffer, offset: usize, len: usize, elem: Elem) {
        let nans = vec![f32::NAN; len];
        let nan = self.encode(&nans, elem);
        self.ctx
            .queue
            .write_buffer(buffer, offset as u64 * self.bytes(elem), &nan);
    }

    fn buffer<'a>(&'a self, lp: &'a LoadedPlan, storage: Storage) -> &'a wgpu::Buffer {
        match storage {
            Storage::Slot(s) => &lp.slots[s],
            Storage::Input(i) => &self.named[lp.inputs[i]].buffer,
            Storage::State(i) => &self.named[lp.states[i]].buffer,
            Storage::Params => self.params.as_ref().expect("created by the first load"),
            Storage::Grads => self.grads.as_ref().expect("created by the first load"),
        }
    }

    fn bind_groups(&self, lp: &LoadedPlan) -> Vec<wgpu::BindGroup> {
        self.bind_groups_of(lp, &lp.launches, &lp.uniforms)
    }

    /// A bind group for each of `launches` of `lp`, whose records are in `uniforms`.
    fn bind_groups_of(
        &self,
        lp: &LoadedPlan,
        launches: &[Lowered],
        uniforms: &wgpu::Buffer,
    ) -> Vec<wgpu::BindGroup> {
        let stride = self.uniform_stride();
        launches
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut entries = vec![wgpu::BindGroupEntry {
                    binding: 0,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer: uniforms,
                        offset: i as u64 * stride,
                        size: wgpu::BufferSize::new(UNIFORM_BYTES),
                    }),
                }];
                for &(binding, window) in &l.bindings {
                    let (buffer, offset, size) = match window {
                        Some(w) => {
                            let buffer = match w.target {
                                Target::Plan(storage) => self.buffer(lp, storage),
                                Target::OptState => self.opt.as_ref().expect("sized at load"),
                                Target::Program => {
                                    lp.program.as_ref().expect("made with the fused form")
                                }
                                Target::Master => {
                                    self.master.as_ref().expect("made with the parameters")
                                }
                            };
                            let bytes = self.bytes(self.elem_of(lp, w.target));
                            // A binding holds whole vec4s, for the matmul variants that
                            // read their operands as vec4 (matmul_operands_vec4.wgsl):
                            // its size rounds up to 16 bytes, which the buffer (padded to
                            // 16) always holds past an offset aligned to 16 (the vec4
                            // variants run only where storage offsets are).
                            let offset = w.start as u64 * bytes;
                            let size = (w.words as u64 * bytes)
                                .next_multiple_of(16)
                                .min(buffer.size() - offset);
                            (buffer, offset, size)
                        }
                        None => (&self.dummy, 0, 16),
                    };
                    entries.push(wgpu::BindGroupEntry {
                        binding,
                        resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                            buffer,
                            offset,
                            size: wgpu::BufferSize::new(size),
                        }),
                    });
                }
                let layout = self.ctx.bind_group_layout(l.pipe.pipe.spec().layout);
                self.ctx
                    .device
                    .create_bind_group(&wgpu::BindGroupDescriptor {
                        label: Some(l.pipe.pipe.spec().entry),
                        layout,
                        entries: &entries,
                    })
            })
            .collect()
    }

    fn uniform_stride(&self) -> u64 {
        UNIFORM_BYTES.next_multiple_of(self.ctx.limits.min_uniform_buffer_offset_alignment as u64)
    }

    /// What an element of `target`'s buffer is.
    fn elem_of(&self, lp: &LoadedPlan, target: Target) -> Elem {
        match target {
            Target::Plan(Storage::Input(i)) => self.named[lp.inputs[i]].elem,
            Target::Plan(Storage::State(i)) => self.named[lp.states[i]].elem,
            Target::Plan(_) => Elem::Store,
            Target::OptState | Target::Program | Target::Master => Elem::Word,
        }
    }

    fn upload(&self, buffer: &wgpu::Buffer, data: &[f32], elem: Elem) -> Result<()> {
        let scope = ErrorScope::push(&self.ctx.device);
        self.ctx
            .queue
            .write_buffer(buffer, 0, &self.encode(data, elem));
        scope.pop("writing to the GPU")?;
        self.ctx.take_error()
    }

    fn named_index(&self, name: &str) -> Result<usize> {
        self.named
            .iter()
            .position(|n| n.name == name)
            .ok_or_else(|| Error::Internal(format!("no plan has an input or state named {name:?}")))
    }

    /// The named buffer for `name`, created (zeroed, or poisoned if asked) when new; a
    /// second declaration must agree on the size.
    fn declare(&mut self, name: &str, len: usize, poison: bool, elem: Elem) -> Result<usize> {
        if let Some(i) = self.named.iter().position(|n| n.name == name) {
            crate::engine::exec::check_len(name, len, self.named[i].len)?;
            return Ok(i);
        }
        let buffer = self.storage_buffer(name, len, elem)?;
        if poison {
            self.fill_nan(&buffer, 0, len, elem);
        }
        self.named.push(Named {
            name: name.to_string(),
            len,
            elem,
            buffer,
            max_u32: None,
        });
        Ok(self.named.len() - 1)
    }

    fn tuner(&self) -> std::sync::MutexGuard<'_, super::tune::Tuner> {
        self.ctx.tuner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What lowering needs to know of this device.
    fn limits(&self) -> Limits {
        let f16 = self.ctx.precision == Precision::F16;
        Limits {
            // In elements of the narrowest kind, so that every window starts aligned.
            align_words: (self.ctx.limits.min_storage_buffer_offset_alignment as usize
                / self.ctx.precision.store_bytes())
            .max(1),
            max_binding_bytes: self.max_binding_bytes,
            max_groups: self.max_groups,
            loss_scale: if f16 { F16_LOSS_SCALE } else { 1.0 },
            master: f16,
            flat_width: self.ctx.width(WidthKind::PerElement),
            sums_width: self.ctx.width(WidthKind::Sums),
        }
    }

    fn add(&mut self, lp: LoadedPlan) -> Result<usize> {
        self.plans.push(lp);
        Ok(self.plans.len() - 1)
    }

    /// The GEMM variant of each of `kernels` (0 for the others): the autotuner's choice
    /// for its shape, tuning the shapes this device has not met yet unless tuning is off.
    fn gemm_variants_of(&self, kernels: &[Kernel]) -> Result<Vec<usize>> {
        let gemm: Vec<Option<GemmShape>> = kernels.iter().map(gemm_shape).collect();
        let shapes: Vec<GemmShape> = gemm.iter().flatten().copied().collect();
        let mut chosen = self.tuner().choose(&self.ctx, &shapes)?.into_iter();
        Ok(gemm
            .iter()
            .map(|g| match g {
                Some(_) => chosen.next().expect("one choice per GEMM launch"),
                None => 0,
            })
            .collect())
    }

    /// The plan's launches as the GPU runs them, each with the index of its label: the
    /// plan's own launches, or the fused form's stages.
    #[allow(clippy::type_complexity)]
    fn lower_form(
        &self,
        plan: &Plan,
        fused: Option<&(FusedStep, usize)>,
        lim: &Limits,
    ) -> Result<(Vec<Lowered>, Vec<usize>, Vec<String>, Option<Vec<RowOp>>)> {
        let (fused, pipe) = match fused {
            Some((f, pipe)) => (Some(f), Pipe::ROW_PROGRAMS[*pipe]),
            None => (None, Pipe::ROW_PROGRAMS[0]),
        };
        let kernels: Vec<Kernel> = match fused {
            Some(f) => f.launches.clone(),
            None => plan.launches.iter().map(|l| l.kernel).collect(),
        };
        let variants = self.gemm_variants_of(&kernels)?;
        let stages: Vec<Stage> = match fused {
            Some(f) => f.stages.clone(),
            None => (0..kernels.len()).map(Stage::Launch).collect(),
        };
        let (mut launches, mut origins, mut labels, mut ops) =
            (Vec::new(), Vec::new(), Vec::new(), None);
        for (label, stage) in stages.into_iter().enumerate() {
            match stage {
                Stage::Launch(i) => {
                    labels.push(crate::engine::exec::kernel_name(&kernels[i]));
                    for lowered in lower(&kernels[i], plan, lim, variants[i])? {
                        launches.push(lowered);
                        origins.push(label);
                    }
                }
                Stage::Rows => {
                    let f = fused.expect("only the fused form has the row stage");
                    let (program, lowered) = lower_row_program(f, pipe, plan, lim)?;
                    labels.push(ROW_PROGRAM_LABEL.to_string());
                    launches.push(lowered);
                    origins.push(label);
                    ops = Some(program);
                }
            }
        }
        Ok((launches, origins, labels, ops))
    }

    /// A uniform buffer holding each launch's record at the device's uniform stride.
    fn uniform_records(&self, launches: &[Lowered]) -> Result<wgpu::Buffer> {
        let stride = self.uniform_stride() as usize;
        let mut records = vec![0u8; stride * launches.len().max(1)];
        for (i, l) in launches.iter().enumerate() {
            records[i * stride..i * stride + l.params.len()].copy_from_slice(&l.params);
        }
        let uniforms = self.create_buffer(
            "launch parameters",
            records.len() / 4,
            Elem::Word,
            wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        )?;
        self.ctx.queue.write_buffer(&uniforms, 0, &records);
        Ok(uniforms)
    }

    /// Everything a plan needs to run in one form (its own launches, or `fused` with its
    /// row program as `Pipe::ROW_PROGRAMS[i]`), made
    /// and checked; the executor's shared buffers are made or grown here too, but the
    /// plan is not added (`add`).
    fn build(
        &mut self,
        plan: Plan,
        fused: Option<(FusedStep, usize)>,
        limits: &Limits,
    ) -> Result<LoadedPlan> {
        // Everything that can be refused is checked before a buffer is made.
        let (launches, origins, labels, ops) = self.lower_form(&plan, fused.as_ref(), limits)?;
        let fused = fused.map(|(f, _)| f);
        self.ctx
            .prepare(launches.iter().map(|l: &Lowered| l.pipe))?;
        for info in plan
            .inputs
            .iter()
            .map(|i| (&i.name, i.len))
            .chain(plan.states.iter().map(|s| (&s.name, s.len)))
        {
            if let Some(n) = self.named.iter().find(|n| &n.name == info.0) {
                crate::engine::exec::check_len(info.0, info.1, n.len)?;
            }
        }
        let step_state = plan
            .state_index(STEP_STATE)
            .ok_or_else(|| Error::Gpu("the plan has no step counter".into()))?;

        let scope = ErrorScope::push(&self.ctx.device);
        // The plan's own buffers first: if one is refused, the executor is unchanged.
        let poison = self.poison;
        let slot_words = match &fused {
            Some(f) => f.slots.clone(),
            None => plan.slots.clone(),
        };
        let slots = slot_words
            .iter()
            .enumerate()
            .map(|(i, &len)| {
                let b = self.storage_buffer(&format!("slot {i}"), len, Elem::Store)?;
                if poison {
                    self.fill_nan(&b, 0, len, Elem::Store);
                }
                Ok(b)
            })
            .collect::<Result<Vec<_>>>()?;
        let program = match &ops {
            Some(ops) => {
                let words: &[u32] = bytemuck::cast_slice(ops);
                let b = self.storage_buffer("row program", words.len(), Elem::Word)?;
                self.ctx
                    .queue
                    .write_buffer(&b, 0, bytemuck::cast_slice(words));
                Some(b)
            }
            None => None,
        };
        let uniforms = self.uniform_records(&launches)?;
        // Made by the first plan built (a plan measured in both forms is built twice).
        let shared = if self.params.is_none() {
            let total = plan.layout.total;
            let params = self.storage_buffer("parameters", total, Elem::Store)?;
            let grads = self.storage_buffer("gradients", total, Elem::Store)?;
            let master = match limits.master {
                true => Some(self.storage_buffer("master parameters", total, Elem::Word)?),
                false => None,
            };
            if poison {
                // Only each parameter's own words: the padding between them is never
                // written by a kernel and stays 0, as on the CPU, where the optimizer
                // reads it.
                for (&offset, &len) in plan.layout.offsets.iter().zip(&plan.layout.lens) {
                    self.fill_nan(&grads, offset, len, Elem::Store);
                }
            }
            Some((params, grads, master))
        } else {
            None
        };
        let grew_opt = self.opt_len < plan.opt_state_len;
        let opt = if grew_opt {
            Some(self.storage_buffer("optimizer state", plan.opt_state_len, Elem::Word)?)
        } else {
            None
        };
        let index_lists = crate::engine::exec::index_lists(&plan);
        let inputs = plan
            .inputs
            .iter()
            .enumerate()
            .map(|(k, i)| {
                let elem = match index_lists.contains(&k) {
                    true => Elem::Word,
                    false => Elem::Store,
                };
                self.declare(&i.name, i.len, false, elem)
            })
            .collect::<Result<Vec<_>>>()?;
        let states = plan
            .states
            .iter()
            .map(|s| self.declare(&s.name, s.len, poison && s.name != STEP_STATE, Elem::Word))
            .collect::<Result<Vec<_>>>()?;
        if let Some((params, grads, master)) = shared {
            (self.params, self.grads, self.master, self.param_len) =
                (Some(params), Some(grads), master, plan.layout.total);
        }
        if let Some(opt) = opt {
            (self.opt, self.opt_len) = (Some(opt), plan.opt_state_len);
        }
        let step = states[step_state];
        let mut lp = LoadedPlan {
            plan,
            fused,
            slots,
            program,
            inputs,
            states,
            step,
            launches,
            labels,
            origins,
            uniforms,
            bind_groups: Vec::new(),
        };
        if grew_opt {
            // Bind groups of earlier plans point at the old optimizer state.
            for i in 0..self.plans.len() {
                let groups = self.bind_groups(&self.plans[i]);
                self.plans[i].bind_groups = groups;
            }
        }
        lp.bind_groups = self.bind_groups(&lp);
        scope.pop("preparing the plan")?;
        self.ctx.take_error()?;
        Ok(lp)
    }

    /// Median seconds of a step's row stage in each form: as the row program in each of
    /// its pipes (`fused`, the plan in its fused form), and as the row launches one by
    /// one (`plain`, the same plan in its own form), each on its own buffers: the row
    /// launches write only row tensors, so the weights, the optimizer state and the
    /// counters are untouched. The forms take turns, round after round.
    fn time_step_forms(
        &self,
        fused: &LoadedPlan,
        plain: &LoadedPlan,
    ) -> Result<Vec<(StepForm, f64)>> {
        let f = fused.fused.as_ref().expect("a fused plan");
        let at = fused
            .row_program_launch()
            .expect("the fused form has the row stage");
        self.ctx.prepare(Pipe::ROW_PROGRAMS.map(PipeKey::from))?;
        // The split plan's launches are the plan's, one for one (`StepSplit::plan`).
        let row_launches: (Vec<Lowered>, Vec<wgpu::BindGroup>) = plain
            .origins
            .iter()
            .enumerate()
            .filter(|&(_, o)| f.rows.contains(o))
            .map(|(i, _)| (plain.launches[i].clone(), plain.bind_groups[i].clone()))
            .unzip();
        let forms: Vec<(StepForm, Vec<Lowered>, Vec<wgpu::BindGroup>)> = StepForm::all()
            .map(|form| match form {
                StepForm::Launches => (form, row_launches.0.clone(), row_launches.1.clone()),
                StepForm::RowProgram(pipe) => {
                    let mut program = fused.launches[at].clone();
                    program.pipe = Pipe::ROW_PROGRAMS[pipe].into();
                    (form, vec![program], vec![fused.bind_groups[at].clone()])
                }
            })
            .collect();
        const ROUNDS: usize = 5;
        let mut times = vec![Vec::new(); forms.len()];
        for round in 0..=ROUNDS {
            for (i, (_, launches, groups)) in forms.iter().enumerate() {
                let t = self.time_launch_list(launches, groups)?;
                // The first round warms each up.
                if round > 0 {
                    times[i].push(t);
                }
            }
        }
        Ok(forms
            .iter()
            .zip(times)
            .map(|((form, ..), mut t)| {
                t.sort_by(f64::total_cmp);
                (*form, t[t.len() / 2])
            })
            .collect())
    }

    /// Records `launches` (each with its bind group) into `pass`, in order.
    fn dispatch(
        &self,
        pass: &mut wgpu::ComputePass,
        launches: &[Lowered],
        groups: &[wgpu::BindGroup],
    ) -> Result<()> {
        for (l, group) in launches.iter().zip(groups) {
            pass.set_pipeline(self.ctx.pipeline(l.pipe)?);
            pass.set_bind_group(0, group, &[]);
            pass.dispatch_workgroups(l.groups[0], l.groups[1], l.groups[2]);
        }
        Ok(())
    }

    /// Wall seconds to run `launches` once, to completion.
    fn time_launch_list(&self, launches: &[Lowered], groups: &[wgpu::BindGroup]) -> Result<f64> {
        let start = Instant::now();
        let scope = ErrorScope::push(&self.ctx.device);
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("timing a step's row stage"),
            });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("row stage"),
                timestamp_writes: None,
            });
            self.dispatch(&mut pass, launches, groups)?;
        }
        self.ctx.queue.submit([encoder.finish()]);
        scope.pop("timing a step's row stage")?;
        self.ctx.wait()?;
        self.ctx.take_error()?;
        Ok(start.elapsed().as_secs_f64())
    }
}

/// A max pool's argmax is stored as a tensor element, and f16 holds every integer only
/// up to 2048: a larger pooled plane would route gradients to the wrong positions.
fn refuse_positions_f16_cannot_hold(plan: &Plan) -> Result<()> {
    const F16_EXACT_INTEGERS: usize = 2048;
    for launch in &plan.launches {
        if let Kernel::Pool(crate::engine::ops::pool::PoolKernel::MaxPoolArgmax { shape, .. }) =
            &launch.kernel
        {
            let positions = shape.h * shape.w;
            if positions > F16_EXACT_INTEGERS {
                return Err(Error::flag(
                    "--precision",
                    format!("f16 cannot hold the positions of a max pool over {positions} positions (at most {F16_EXACT_INTEGERS}); train this model in f32"),
                ));
            }
        }
    }
    Ok(())
}

impl Executor for GpuExecutor {
    fn device_name(&self) -> String {
        match self.ctx.precision {
            Precision::F32 => format!("{} ({})", self.ctx.info.name, self.ctx.info.backend),
            Precision::F16 => format!("{} ({}, f16)", self.ctx.info.name, self.ctx.info.backend),
        }
    }

    fn gemm_variants(&self, plan: usize) -> Vec<&'static str> {
        let Some(p) = self.plans.get(plan) else {
            return Vec::new();
        };
        p.launches
            .iter()
            .filter_map(|l| l.pipe.variant_name())
            .collect()
    }

    fn host_bytes_to_load(&self, plans: &[&Plan]) -> u64 {
        // A software adapter's (lavapipe's) device memory is the host's.
        if !self.ctx.info.is_software {
            return 0;
        }
        let store = self.bytes(Elem::Store);
        let mut holds_params = !self.plans.is_empty();
        let mut bytes: u64 = 0;
        for plan in plans {
            if !holds_params {
                // Parameters and gradients, and the f32 master weights of f16 storage.
                let master = if store == 4 { 0 } else { 4 };
                bytes = bytes.saturating_add(plan.layout.total as u64 * (2 * store + master));
                holds_params = true;
            }
            let slots = plan
                .slots
                .iter()
                .fold(0u64, |a, &w| a.saturating_add(w as u64));
            bytes = bytes
                .saturating_add(slots.saturating_mul(store))
                .saturating_add(4 * plan.opt_state_len.saturating_sub(self.opt_len) as u64);
        }
        bytes
    }

    fn load(&mut self, plan: Plan) -> Result<usize> {
        crate::engine::exec::check_layout(&plan, self.param_len, !self.plans.is_empty())?;
        self.refuse_tensors_over_a_binding(&plan)?;
        if self.ctx.precision == Precision::F16 {
            refuse_positions_f16_cannot_hold(&plan)?;
        }
        // The flat kernels' widths, before the first pipeline fixes them.
        super::flat_width::decide(&self.ctx)?;
        let limits = self.limits();
        // The step with its row launches fused, where it can be and the tuner takes it
        // (timing both forms the first time it meets the step on this device).
        let fused = match self.ctx.fits(Layout::RowProgram) {
            true => FusedStep::of(
                &plan.launches.iter().map(|l| l.kernel).collect::<Vec<_>>(),
                &plan.slots,
                limits.align_words,
            ),
            false => None,
        };
        let Some(fused) = fused else {
            let lp = self.build(plan, None, &limits)?;
            return self.add(lp);
        };
        let key = fused.key();
        let decided = self.tuner().step_form_decision(&self.ctx, &key);
        let lp = match decided {
            Some(StepForm::Launches) => self.build(plan, None, &limits)?,
            // A fused form the device refuses (a binding the row program cannot take)
            // runs as the plan's own launches.
            Some(StepForm::RowProgram(pipe)) => {
                match self.build(plan.clone(), Some((fused, pipe)), &limits) {
                    Ok(lp) => lp,
                    Err(_) => self.build(plan, None, &limits)?,
                }
            }
            None => {
                // The plan's own form first: it tunes the GEMM shapes, and whether
                // there is time left to time the forms depends on what that cost.
                let plain = self.build(plan.clone(), None, &limits)?;
                if !self.tuner().may_time_step_forms() {
                    return self.add(plain);
                }
                let start = Instant::now();
                let Ok(mut lp) = self.build(plan, Some((fused, 0)), &limits) else {
                    return self.add(plain);
                };
                let times = self.time_step_forms(&lp, &plain)?;
                let seconds = start.elapsed().as_secs_f64();
                let form = self
                    .tuner()
                    .record_step_form(&self.ctx, &key, times, seconds);
                match form {
                    StepForm::Launches => plain,
                    StepForm::RowProgram(pipe) => {
                        let at = lp.row_program_launch().expect("the fused form");
                        lp.launches[at].pipe = Pipe::ROW_PROGRAMS[pipe].into();
                        lp
                    }
                }
            }
        };
        self.add(lp)
    }

    fn write(&mut self, name: &str, data: &[f32]) -> Result<()> {
        let i = self.named_index(name)?;
        crate::engine::exec::check_len(name, data.len(), self.named[i].len)?;
        self.upload(&self.named[i].buffer, data, self.named[i].elem)?;
        self.named[i].max_u32 = data.iter().map(|v| v.to_bits()).max();
        Ok(())
    }

    fn read(&mut self, name: &str) -> Result<Vec<f32>> {
        let n = &self.named[self.named_index(name)?];
        match n.elem {
            Elem::Store => self.ctx.read_store(&n.buffer, 0, n.len),
            Elem::Word => self.ctx.read_words(&n.buffer, 0, n.len),
        }
    }

    fn write_params(&mut self, params: &[f32]) -> Result<()> {
        crate::engine::exec::check_len("parameters", params.len(), self.param_len)?;
        if let Some(master) = &self.master {
            self.upload(master, params, Elem::Word)?;
        }
        match &self.params {
            Some(b) => self.upload(b, params, Elem::Store),
            None => Ok(()),
        }
    }

    /// The parameters as the update keeps them: the f32 master copy in f16, so that a
    /// saved model or checkpoint holds f32 weights.
    fn read_params(&mut self) -> Result<Vec<f32>> {
        match (&self.master, &self.params) {
            (Some(master), _) => self.ctx.read_words(master, 0, self.param_len),
            (None, Some(b)) => self.ctx.read_store(b, 0, self.param_len),
            (None, None) => Ok(Vec::new()),
        }
    }

    fn read_opt_state(&mut self) -> Result<Vec<f32>> {
        match &self.opt {
            Some(b) => self.ctx.read_words(b, 0, self.opt_len),
            None => Ok(Vec::new()),
        }
    }

    fn write_opt_state(&mut self, state: &[f32]) -> Result<()> {
        crate::engine::exec::check_len("optimizer state", state.len(), self.opt_len)?;
        match &self.opt {
            Some(b) => self.upload(b, state, Elem::Word),
            None => Ok(()),
        }
    }

    fn read_node(&mut self, plan: usize, node: NodeId) -> Result<Vec<f32>> {
        let lp = self
            .plans
            .get(plan)
            .ok_or_else(|| Error::Internal(format!("no plan {plan}")))?;
        let mut t = lp.plan.location(node)?;
        if let Some(f) = &lp.fused {
            t = f.relocate(t).ok_or_else(|| {
                Error::Internal(format!(
                    "node {node:?} has no window of its own after a fused step"
                ))
            })?;
        }
        let buffer = self.buffer(lp, t.storage);
        match self.elem_of(lp, Target::Plan(t.storage)) {
            Elem::Store => self.ctx.read_store(buffer, t.offset, t.len),
            Elem::Word => self.ctx.read_words(buffer, t.offset, t.len),
        }
    }

    fn largest_input_bytes(&self) -> Option<u64> {
        Some(self.max_input_bytes)
    }

    fn host_seconds_per_step(&self) -> Option<f64> {
        (self.last_steps > 0).then(|| self.host_time.as_secs_f64() / self.last_steps as f64)
    }

    fn run_from(&mut self, plan: usize, first_step: usize, steps: usize) -> Result<()> {
        let lp = self
            .plans
            .get(plan)
            .ok_or_else(|| Error::Internal(format!("no plan {plan}")))?;
        crate::engine::exec::check_run(&lp.plan, first_step, steps, |name| {
            self.named
                .iter()
                .find(|n| n.name == name)
                .and_then(|n| n.max_u32)
        })?;
        if u32::try_from(first_step + steps).is_err() {
            return Err(Error::Internal(format!(
                "{steps} steps from step {first_step} overflow the step counter"
            )));
        }
        let first = first_step as u32;

        let start = Instant::now();
        let scope = ErrorScope::push(&self.ctx.device);
        self.ctx
            .queue
            .write_buffer(&self.named[lp.step].buffer, 0, bytemuck::bytes_of(&first));
        let mut encoder = self
            .ctx
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("run") });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("steps"),
                timestamp_writes: None,
            });
            for _ in 0..steps {
                self.dispatch(&mut pass, &lp.launches, &lp.bind_groups)?;
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        let result = scope.pop("running the plan");
        self.host_time = start.elapsed();
        self.last_steps = steps;
        result?;
        self.ctx.take_error()
    }

    fn time_launches(&mut self, plan: usize, step: usize) -> Result<Option<Vec<(String, f64)>>> {
        if !self
            .ctx
            .device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY)
        {
            return Ok(None);
        }
        let lp = self
            .plans
            .get(plan)
            .ok_or_else(|| Error::Internal(format!("no plan {plan}")))?;
        crate::engine::exec::check_run(&lp.plan, step, 1, |name| {
            self.named
                .iter()
                .find(|n| n.name == name)
                .and_then(|n| n.max_u32)
        })?;
        let step = u32::try_from(step)
            .map_err(|_| Error::Internal(format!("step {step} overflows the step counter")))?;
        let n = lp.launches.len();
        // A query set holds at most 4096 queries (wgpu's limit): a set per 2048 launches,
        // each resolved at a multiple of 256 bytes (2048 × 16) as resolving requires.
        const PER_SET: usize = 2048;
        let device = &self.ctx.device;
        let scope = ErrorScope::push(device);
        self.ctx
            .queue
            .write_buffer(&self.named[lp.step].buffer, 0, bytemuck::bytes_of(&step));
        let sets: Vec<(wgpu::QuerySet, u32)> = (0..n.div_ceil(PER_SET))
            .map(|k| {
                let count = (2 * (n - k * PER_SET).min(PER_SET)) as u32;
                let set = device.create_query_set(&wgpu::QuerySetDescriptor {
                    label: Some("launch timestamps"),
                    ty: wgpu::QueryType::Timestamp,
                    count,
                });
                (set, count)
            })
            .collect();
        use wgpu::BufferUsages as U;
        let resolved = self.create_buffer(
            "launch timestamps",
            4 * n,
            Elem::Word,
            U::QUERY_RESOLVE | U::COPY_SRC,
        )?;
        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("timed step"),
        });
        for (i, (l, group)) in lp.launches.iter().zip(&lp.bind_groups).enumerate() {
            let at = (2 * (i % PER_SET)) as u32;
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
                label: Some("timed launch"),
                timestamp_writes: Some(wgpu::ComputePassTimestampWrites {
                    query_set: &sets[i / PER_SET].0,
                    beginning_of_pass_write_index: Some(at),
                    end_of_pass_write_index: Some(at + 1),
                }),
            });
            self.dispatch(
                &mut pass,
                std::slice::from_ref(l),
                std::slice::from_ref(group),
            )?;
        }
        for (k, (set, count)) in sets.iter().enumerate() {
            encoder.resolve_query_set(set, 0..*count, &resolved, (k * PER_SET * 16) as u64);
        }
        self.ctx.queue.submit([encoder.finish()]);
        scope.pop("timing each launch")?;
        self.ctx.take_error()?;
        let words = self.ctx.read_words(&resolved, 0, 4 * n)?;
        // Each timestamp is a u64 in two little-endian words.
        let tick =
            |q: usize| words[2 * q].to_bits() as u64 | (words[2 * q + 1].to_bits() as u64) << 32;
        let seconds_per_tick = self.ctx.queue.get_timestamp_period() as f64 * 1e-9;
        // A plan launch lowered into several (a split row gather) reports their sum.
        let mut seconds: Vec<(String, f64)> = lp.labels.iter().map(|l| (l.clone(), 0.0)).collect();
        for (i, &origin) in lp.origins.iter().enumerate() {
            seconds[origin].1 +=
                tick(2 * i + 1).saturating_sub(tick(2 * i)) as f64 * seconds_per_tick;
        }
        Ok(Some(seconds))
    }
}

/// A run of rows of a table and the window that binds them.
pub(crate) struct RowPiece {
    pub(crate) rows: std::ops::Range<usize>,
    pub(crate) window: Window,
    /// Where row `rows.start` begins inside `window`, in words.
    pub(crate) offset: u32,
}

/// What lowering needs to know of the device.
pub(crate) struct Limits {
    align_words: usize,
    max_binding_bytes: u64,
    max_groups: u32,
    /// The loss gradient's factor (`F16_LOSS_SCALE` in f16, else 1); the update divides
    /// by it.
    pub(crate) loss_scale: f32,
    /// Whether the update runs on the f32 master parameters (f16).
    master: bool,
    /// The per-element kernels' workgroup width (`WG_FLAT`, `GpuContext::width`).
    flat_width: u32,
    /// The per-output sums' workgroup width (`WG_SUMS`).
    sums_width: u32,
}

/// A grid of `groups` workgroups, wrapped into y past `max_groups` a dimension.
pub(super) fn grid(groups: usize, max_groups: u32) -> Result<[u32; 3]> {
    let max = max_groups as usize;
    let groups = groups.max(1);
    let x = groups.min(max);
    let y = groups.div_ceil(x);
    if y > max {
        return Err(Error::Gpu(format!(
            "a launch of {groups} workgroups is over the device's {max}×{max} grid"
        )));
    }
    Ok([x as u32, y as u32, 1])
}

impl Limits {
    /// A grid of `groups` workgroups on this device.
    pub(crate) fn grid(&self, groups: usize) -> Result<[u32; 3]> {
        grid(groups, self.max_groups)
    }

    /// A grid of one invocation per `invocations`, in the per-element kernels'
    /// workgroups (`WG_FLAT`).
    pub(crate) fn grid_1d(&self, invocations: usize) -> Result<[u32; 3]> {
        self.grid(invocations.div_ceil(self.flat_width as usize))
    }

    /// A grid of one invocation per output of a sum, in the sums' workgroups
    /// (`WG_SUMS`).
    pub(crate) fn grid_sums(&self, outputs: usize) -> Result<[u32; 3]> {
        self.grid(outputs.div_ceil(self.sums_width as usize))
    }

    /// A row-major table `t` of `cols` words a row, in runs of whole rows that each fit
    /// one storage binding: the whole table in one piece where it fits (the window
    /// `window` would give), else as many rows a piece as an aligned window can hold.
    pub(crate) fn row_pieces(&self, t: TensorRef, cols: usize) -> Result<Vec<RowPiece>> {
        let rows = t.len / cols.max(1);
        if let Ok((window, offset)) = self.window(t) {
            return Ok(vec![RowPiece {
                rows: 0..rows,
                window,
                offset,
            }]);
        }
        let max_words = (self.max_binding_bytes / 4) as usize;
        let mut pieces = Vec::new();
        let mut first = 0;
        while first < rows {
            let from = t.offset + first * cols;
            let start = from / self.align_words * self.align_words;
            let fit = max_words.saturating_sub(from - start) / cols;
            if fit == 0 {
                return Err(Error::Gpu(format!(
                    "a table row of {} bytes is over the device's storage binding limit of {} bytes",
                    cols * 4,
                    self.max_binding_bytes
                )));
            }
            let end = rows.min(first + fit);
            pieces.push(RowPiece {
                rows: first..end,
                window: Window {
                    target: Target::Plan(t.storage),
                    start,
                    words: t.offset + end * cols - start,
                },
                offset: u32c(from - start)?,
            });
            first = end;
        }
        Ok(pieces)
    }

    /// The window binding `t` and `t`'s offset inside it, for an optional operand
    /// (`None` binds the dummy buffer, at offset 0).
    pub(crate) fn window_opt(&self, t: Option<TensorRef>) -> Result<(Option<Window>, u32)> {
        Ok(match t {
            Some(t) => {
                let (window, offset) = self.window(t)?;
                (Some(window), offset)
            }
            None => (None, 0),
        })
    }

    /// The window binding `t`, and `t`'s offset inside it in words.
    pub(crate) fn window(&self, t: TensorRef) -> Result<(Window, u32)> {
        let start = t.offset / self.align_words * self.align_words;
        let words = t.offset + t.len - start;
        if words as u64 * 4 > self.max_binding_bytes {
            return Err(Error::Gpu(format!(
                "a tensor of {} bytes is over the device's storage binding limit of {} bytes",
                t.len * 4,
                self.max_binding_bytes
            )));
        }
        Ok((
            Window {
                target: Target::Plan(t.storage),
                start,
                words,
            },
            u32c(t.offset - start)?,
        ))
    }
}

/// `v` as a kernel's 32-bit index or size, or an error when it does not fit.
pub(crate) fn u32c(v: usize) -> Result<u32> {
    u32::try_from(v).map_err(|_| Error::Gpu(format!("{v} is too large for a 32-bit kernel index")))
}

pub(crate) fn vec4(v: &[usize; MAX_RANK]) -> Result<[u32; 4]> {
    Ok([u32c(v[0])?, u32c(v[1])?, u32c(v[2])?, u32c(v[3])?])
}

/// A launch's uniform record: the bytes of its kernel's params struct.
pub(crate) fn record<P: KernelParams>(params: P) -> Vec<u8> {
    bytemuck::bytes_of(&params).to_vec()
}

/// How the GPU runs `kernel` of `plan`: pipeline, parameters, bindings, grid of each
/// launch. One launch, except for a row gather or scatter over a table larger than one
/// storage binding: a launch per piece of the table (`Limits::row_pieces`).
fn lower(kernel: &Kernel, plan: &Plan, lim: &Limits, variant: usize) -> Result<Vec<Lowered>> {
    let key = PipeKey::of(kernel, variant);
    let pipe = key.pipe;
    let encoded = match kernel {
        Kernel::Gather(ref k) => k.encode(lim, step_ref(plan)?)?,
        _ => vec![lower_one(kernel, plan, lim, key.variant)?],
    };
    encoded
        .into_iter()
        .map(|(params, bindings, groups)| {
            check_bindings(pipe, &bindings, plan)?;
            Ok(Lowered {
                pipe: key,
                params,
                bindings,
                groups,
            })
        })
        .collect()
}

/// How the GPU runs a fused step's row stage: the row program's operations (for its own
/// buffer, bound at 1) and its one launch.
fn lower_row_program(
    f: &FusedStep,
    pipe: Pipe,
    plan: &Plan,
    lim: &Limits,
) -> Result<(Vec<RowOp>, Lowered)> {
    let params = TensorRef {
        storage: Storage::Params,
        offset: 0,
        len: plan.layout.total,
    };
    let (ops, mut bindings, off_step) = f.encode(lim, params, step_ref(plan)?)?;
    let program = Window {
        target: Target::Program,
        start: 0,
        words: std::mem::size_of_val(&ops[..]) / 4,
    };
    bindings.insert(0, (1, Some(program)));
    let pipe = PipeKey::from(pipe);
    check_bindings(pipe.pipe, &bindings, plan)?;
    let params = record(RowProgramParams {
        ops: u32c(ops.len())?,
        rows: u32c(f.batch)?,
        off_step,
        loss_scale: lim.loss_scale,
    });
    let groups = lim.grid(f.batch.div_ceil(RP_ROWS as usize))?;
    Ok((
        ops,
        Lowered {
            pipe,
            params,
            bindings,
            groups,
        },
    ))
}

/// The step counters' window: the kernels of gather.wgsl read the step there.
fn step_ref(plan: &Plan) -> Result<TensorRef> {
    let i = plan
        .state_index(STEP_STATE)
        .ok_or_else(|| Error::Gpu("the plan has no step counter".into()))?;
    Ok(TensorRef {
        storage: Storage::State(i),
        offset: 0,
        len: plan.states[i].len,
    })
}

/// The shape the autotuner decides a GEMM launch's variant by; `None` for other kernels.
fn gemm_shape(kernel: &Kernel) -> Option<GemmShape> {
    match kernel {
        Kernel::MatMul(k) => Some(GemmShape::MatMul(k.shape())),
        Kernel::Conv(k) => k.gemm_shape().map(GemmShape::Conv),
        _ => None,
    }
}

/// How the GPU runs a kernel that is one launch with whole-tensor windows.
fn lower_one(kernel: &Kernel, plan: &Plan, lim: &Limits, variant: usize) -> Result<Encoded> {
    let step_ref = || step_ref(plan);
    let w = |t: TensorRef| lim.window(t);
    Ok(match *kernel {
        Kernel::MatMul(ref k) => k.encode(lim, variant)?,
        Kernel::Fill { out, value } => {
            let (wo, oo) = w(out)?;
            let r = record(ElementwiseParams {
                shape: [1; 4],
                n: u32c(out.len)?,
                off_out: oo,
                value,
                ..Default::default()
            });
            (
                r,
                vec![(1, None), (2, None), (3, Some(wo))],
                lim.grid_1d(out.len)?,
            )
        }
        Kernel::Elementwise(ref k) => k.encode(lim)?,
        Kernel::CopyCols {
            x,
            out,
            rows,
            cols,
            src_cols,
            src_start,
            dst_cols,
            dst_start,
        } => {
            let ((wx, ox), (wo, oo)) = (w(x)?, w(out)?);
            let r = record(ElementwiseParams {
                shape: [1; 4],
                n: u32c(rows * cols)?,
                off_x: ox,
                off_out: oo,
                rows: u32c(rows)?,
                cols: u32c(cols)?,
                src_cols: u32c(src_cols)?,
                src_start: u32c(src_start)?,
                dst_cols: u32c(dst_cols)?,
                dst_start: u32c(dst_start)?,
                ..Default::default()
            });
            if Pipe::of(kernel) == Pipe::COPY_COLS_VEC4 {
                (
                    r,
                    vec![(1, Some(wx)), (2, Some(wo))],
                    lim.grid_1d(rows * cols / 4)?,
                )
            } else {
                (
                    r,
                    vec![(1, Some(wx)), (2, None), (3, Some(wo))],
                    lim.grid_1d(rows * cols)?,
                )
            }
        }
        Kernel::Broadcast(ref k) => k.encode(lim)?,
        Kernel::Loss(ref k) => k.encode(lim)?,
        Kernel::Accumulate { x, acc } => {
            let ((wx, ox), (wa, oa)) = (w(x)?, w(acc)?);
            let r = record(GatherParams {
                n: 1,
                off_src: ox,
                off_out: oa,
                ..Default::default()
            });
            (
                r,
                vec![(1, Some(wx)), (2, None), (3, None), (4, Some(wa))],
                [1, 1, 1],
            )
        }
        Kernel::Collect { x, out } => {
            let ((wx, ox), (ws, os), (wo, oo)) = (w(x)?, w(step_ref()?)?, w(out)?);
            let r = record(GatherParams {
                n: u32c(x.len)?,
                off_src: ox,
                off_step: os,
                off_out: oo,
                ..Default::default()
            });
            (
                r,
                vec![(1, Some(wx)), (2, None), (3, Some(ws)), (4, Some(wo))],
                lim.grid_1d(x.len)?,
            )
        }
        Kernel::Dropout(ref k) => k.encode(lim)?,
        Kernel::Optimize {
            optimizer,
            len,
            step,
        } => {
            let (ws, os) = w(step)?;
            let whole = |storage| {
                w(TensorRef {
                    storage,
                    offset: 0,
                    len,
                })
                .map(|(win, _)| win)
            };
            let (wp, wg) = (whole(Storage::Params)?, whole(Storage::Grads)?);
            // Same size check as a plan storage's, then retargeted.
            let (wstate, _) = w(TensorRef {
                storage: Storage::Params,
                offset: 0,
                len: len * optimizer.state_per_param(),
            })?;
            let wstate = Window {
                target: Target::OptState,
                ..wstate
            };
            let base = OptimizerParams {
                len: u32c(len)?,
                off_step: os,
                master: lim.master.into(),
                grad_scale: 1.0 / lim.loss_scale,
                ..Default::default()
            };
            let master = lim.master.then_some(Window {
                target: Target::Master,
                start: 0,
                words: len,
            });
            let params = match optimizer {
                Optimizer::Sgd { lr, momentum } => OptimizerParams {
                    lr,
                    beta1: momentum,
                    ..base
                },
                Optimizer::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } => OptimizerParams {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    ..base
                },
                Optimizer::AdamW {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                } => OptimizerParams {
                    lr,
                    beta1,
                    beta2,
                    eps,
                    weight_decay,
                    ..base
                },
            };
            (
                record(params),
                vec![
                    (1, Some(wp)),
                    (2, Some(wg)),
                    (3, Some(wstate)),
                    (4, Some(ws)),
                    (6, master),
                ],
                lim.grid_1d(len)?,
            )
        }
        Kernel::AdvanceStep { step, counters } => {
            let (ws, os) = w(step)?;
            let r = record(OptimizerParams {
                off_step: os,
                len: counters,
                ..Default::default()
            });
            (r, vec![(5, Some(ws))], [1, 1, 1])
        }
        Kernel::Rnn(ref k) => k.encode(lim)?,
        Kernel::Conv(ref k) => k.encode(lim, variant)?,
        Kernel::Pool(ref k) => k.encode(lim)?,
        Kernel::Gather(_) => unreachable!("lowered by GatherKernel::encode"),
    })
}

/// Which buffer a target resolves to: two plan storages that name the same input or
/// state are one buffer.
fn buffer_key(plan: &Plan, target: Target) -> String {
    match target {
        Target::Plan(Storage::Slot(s)) => format!("slot {s}"),
        Target::Plan(Storage::Input(i)) => format!("{:?}", plan.inputs[i].name),
        Target::Plan(Storage::State(i)) => format!("{:?}", plan.states[i].name),
        Target::Plan(Storage::Params) => "the parameters".into(),
        Target::Plan(Storage::Grads) => "the gradients".into(),
        Target::OptState => "the optimizer state".into(),
        Target::Program => "the row program".into(),
        Target::Master => "the master parameters".into(),
    }
}

/// wgpu refuses a dispatch that binds one buffer both writable and read: the plan never
/// asks for that, and if it did the error says which launch.
fn check_bindings(pipe: Pipe, bindings: &[(u32, Option<Window>)], plan: &Plan) -> Result<()> {
    let access = pipe.spec().layout.storage_bindings();
    for &(bw, ww) in bindings {
        let Some(ww) = ww else { continue };
        if access.iter().find(|a| a.0 == bw).map(|a| a.1) != Some(Access::ReadWrite) {
            continue;
        }
        for &(br, wr) in bindings {
            let Some(wr) = wr else { continue };
            if br != bw && buffer_key(plan, wr.target) == buffer_key(plan, ww.target) {
                return Err(Error::Gpu(format!(
                    "the {} launch reads and writes {} (bindings {br} and {bw}); the plan must not",
                    pipe.spec().entry,
                    buffer_key(plan, ww.target)
                )));
            }
        }
    }
    Ok(())
}
