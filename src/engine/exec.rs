//! What both executors offer, and the checks they share.

use crate::engine::graph::NodeId;
use crate::engine::plan::{Kernel, Plan};
use crate::error::{Error, Result};

/// Runs compiled plans. Plans loaded into one executor share the packed parameters,
/// gradients and optimizer state, and their named inputs and states: a dataset written
/// once serves both the training plan and the validation plan. An executor can move to
/// another thread (a Python model keeps its executor across calls made from any thread).
pub trait Executor: Send {
    /// What the user sees in logs, e.g. the adapter name.
    fn device_name(&self) -> String;
    /// Prepares a plan (buffers, pipelines) and returns its handle.
    fn load(&mut self, plan: Plan) -> Result<usize>;
    /// Bytes of host memory that loading `plans`, in this order, would allocate: the CPU
    /// executor's parameters, gradients, optimizer state, inputs and intermediate tensors
    /// (a GPU executor's buffers are on the device). A caller about to load several plans
    /// and fill them checks their sum with `ensure_memory_for` before the first, so a
    /// model the machine cannot hold is refused before any of it is touched.
    fn host_bytes_to_load(&self, plans: &[&Plan]) -> u64 {
        let _ = plans;
        0
    }
    /// Writes a named input or state. Index lists are u32 values as f32 bit patterns
    /// (see `indices_as_words`).
    fn write(&mut self, name: &str, data: &[f32]) -> Result<()>;
    /// Reads a named input or state back to the host.
    fn read(&mut self, name: &str) -> Result<Vec<f32>>;
    /// Overwrites the packed parameters (the plans' `ParamLayout`, padding included).
    fn write_params(&mut self, params: &[f32]) -> Result<()>;
    /// Reads the packed parameters back.
    fn read_params(&mut self) -> Result<Vec<f32>>;
    /// Reads the optimizer state back (momentum or Adam moments, packed like the
    /// parameters).
    fn read_opt_state(&mut self) -> Result<Vec<f32>>;
    /// Overwrites the optimizer state, as `read_opt_state` returned it.
    fn write_opt_state(&mut self, state: &[f32]) -> Result<()>;
    /// The value of a node that the plan was asked to keep, after a run.
    fn read_node(&mut self, plan: usize, node: NodeId) -> Result<Vec<f32>>;
    /// Runs `steps` steps of a plan with the step counter (`"step"` state, element 0)
    /// starting at `first_step`, so a long run can be split into parts that each gather
    /// the right window of the index list. Element 1 (the optimizer's count) is kept.
    fn run_from(&mut self, plan: usize, first_step: usize, steps: usize) -> Result<()>;
    /// Runs `steps` steps from step 0.
    fn run(&mut self, plan: usize, steps: usize) -> Result<()> {
        self.run_from(plan, 0, steps)
    }
    /// Host (CPU) seconds per step spent recording and submitting the last run, where
    /// that is separate from the device's work (GPU executors).
    fn host_seconds_per_step(&self) -> Option<f64> {
        None
    }
    /// Whether `read` costs nothing (host memory), so progress can show running values.
    fn reads_are_free(&self) -> bool {
        false
    }
    /// The largest named input this executor can hold, in bytes, where it has a limit (a
    /// GPU's largest buffer): a training table over it is streamed through an input of
    /// this size instead of held whole (`train::Trainer`).
    fn largest_input_bytes(&self) -> Option<u64> {
        None
    }
    /// Runs step `step` of a plan as `run_from(plan, step, 1)` does, timing each launch
    /// on its own: each launch's name (its kernel's, `kernel_name`; a GPU's fused row
    /// stage `RowProgram`) and seconds, in the order they run. The GPU executor reads device
    /// timestamps around each launch (then each gets its own compute pass, so the sum can
    /// exceed a normal step's time); the CPU executor reads the host clock, and two
    /// launches it runs side by side share their time equally. `None` where launches
    /// cannot be timed (an adapter without TIMESTAMP_QUERY).
    fn time_launches(&mut self, plan: usize, step: usize) -> Result<Option<Vec<(String, f64)>>> {
        let _ = (plan, step);
        Ok(None)
    }
    /// The kernel variant each GEMM launch (matmul, convolution) of a loaded plan runs,
    /// in the plan's order (a GPU's, chosen by its autotuner at the load: `gpu::tune`);
    /// empty where the executor has no variants.
    fn gemm_variants(&self, plan: usize) -> Vec<&'static str> {
        let _ = plan;
        Vec::new()
    }
}

/// A kernel's family name, the `Kernel` variant's own (`MatMul`, `ReduceTo`, ...): what
/// a per-launch time is reported under. Read from the derived `Debug` so that adding a
/// kernel needs no name table here.
pub fn kernel_name(kernel: &Kernel) -> String {
    let text = format!("{kernel:?}");
    let ident = |t: &str| t[..t.find([' ', '{', '(']).unwrap_or(t.len())].to_string();
    let outer = ident(&text);
    // An op family's launch (`Pool(AvgPool { .. })`) goes by its own variant's name; a
    // family of one op (`Dropout(DropoutKernel { .. })`) by the family's.
    match text[outer.len()..].strip_prefix('(').map(ident) {
        Some(inner) if !inner.ends_with("Kernel") => inner,
        _ => outer,
    }
}

/// `len` zero words, or an error naming `what` when the memory cannot be had: a plan
/// sized beyond the machine is refused, never an abort.
pub fn zeroed_words(len: usize, what: &str) -> Result<Vec<f32>> {
    let bytes = len as u64 * 4;
    ensure_memory_for(bytes, what)?;
    let mut words = Vec::new();
    words
        .try_reserve_exact(len)
        .map_err(|_| Error::OutOfMemory {
            what: what.to_string(),
            bytes,
        })?;
    words.resize(len, 0.0);
    Ok(words)
}

/// An error naming `what` when `bytes` more would leave the system less than
/// `MEMORY_RESERVE` of available memory.
///
/// Linux overcommits: an allocation far beyond what is free succeeds, and the kernel
/// kills the process when the zeroing touches its pages (`--hidden 100000000` was
/// killed so). So where the system says how much memory is available, the request is
/// refused first. Memory already zeroed is resident, so the check sees it; a caller
/// about to make several allocations asks for their sum before the first, so that a
/// model far too large is refused before the machine is filled.
pub fn ensure_memory_for(bytes: u64, what: &str) -> Result<()> {
    match available_memory() {
        Some(free) if bytes.saturating_add(MEMORY_RESERVE) > free => Err(Error::OutOfMemory {
            what: what.to_string(),
            bytes,
        }),
        _ => Ok(()),
    }
}

/// What an executor's up-front memory check names: everything a loaded plan holds.
pub const PLAN_BUFFERS: &str =
    "the parameters, their gradients, the optimizer state and the intermediate tensors";

/// Memory `ensure_memory_for` leaves to the rest of the process (its data, its buffers).
const MEMORY_RESERVE: u64 = 256 << 20;

/// Bytes of memory the system can still give without swapping (Linux's `MemAvailable`),
/// or `None` where it does not say.
fn available_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// u32 indices carried in f32 words bit for bit, as the kernels read them.
pub fn indices_as_words(indices: &[u32]) -> Vec<f32> {
    indices.iter().map(|&i| f32::from_bits(i)).collect()
}

/// An error unless `got == want` (a buffer of the wrong size for `what`).
pub fn check_len(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(Error::size_mismatch(what, got, want));
    }
    Ok(())
}

/// Plans in one executor must share one parameter layout.
pub fn check_layout(plan: &Plan, current: usize, have_plans: bool) -> Result<()> {
    if have_plans && plan.layout.total != current {
        return Err(Error::Internal(format!(
            "plan has {} parameter words, the executor's other plans {current}: they must come from the same model",
            plan.layout.total
        )));
    }
    Ok(())
}

/// The plan inputs that are index lists (a row gather's `perm`), by index into
/// `Plan::inputs`: their words are u32, whatever a tensor is stored as.
pub fn index_lists(plan: &Plan) -> Vec<usize> {
    plan.launches
        .iter()
        .filter_map(|l| match l.kernel {
            Kernel::Gather(ref k) => match k.indices().0.storage {
                crate::engine::plan::Storage::Input(i) => Some(i),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Checks, before a run, that every gather's window stays inside its index list and
/// every index inside its table (`max_index` gives the largest value written to an
/// index input), and that collected outputs fit.
pub fn check_run(
    plan: &Plan,
    first_step: usize,
    steps: usize,
    max_index: impl Fn(&str) -> Option<u32>,
) -> Result<()> {
    let steps = first_step + steps; // the windows used reach this far
    for launch in &plan.launches {
        let (perm, batch, rows) = match launch.kernel {
            Kernel::Gather(ref k) => k.indices(),
            Kernel::Collect { x, out } => {
                if steps * x.len > out.len {
                    return Err(Error::Internal(format!(
                        "{steps} steps collect more than the {} values planned",
                        out.len
                    )));
                }
                continue;
            }
            _ => continue,
        };
        let crate::engine::plan::Storage::Input(i) = perm.storage else {
            continue;
        };
        let name = &plan.inputs[i].name;
        if steps * batch > perm.len {
            return Err(Error::Internal(format!(
                "{steps} steps of {batch} rows need {} indices, {name:?} has {}",
                steps * batch,
                perm.len
            )));
        }
        match max_index(name) {
            Some(m) if (m as usize) < rows => {}
            Some(m) => {
                return Err(Error::Internal(format!(
                    "index {m} in {name:?} is past the table's {rows} rows"
                )))
            }
            None => return Err(Error::Internal(format!("input {name:?} was not written"))),
        }
    }
    Ok(())
}

/// Named host-side buffers of 32-bit words, with the largest value each holds as a u32
/// (to check index lists without rescanning them).
#[derive(Default)]
pub struct Words {
    names: Vec<String>,
    data: Vec<Vec<f32>>,
    max_u32: Vec<Option<u32>>,
}

impl Words {
    /// The slot for `name`, created zeroed; a second declaration must agree on the size.
    pub fn declare(&mut self, name: &str, len: usize) -> Result<usize> {
        if let Some(i) = self.names.iter().position(|n| n == name) {
            check_len(name, len, self.data[i].len())?;
            return Ok(i);
        }
        let words = zeroed_words(len, name)?;
        self.names.push(name.to_string());
        self.data.push(words);
        self.max_u32.push(None);
        Ok(self.names.len() - 1)
    }

    /// The slot of `name`; an error naming it when no plan declared it.
    pub fn index(&self, name: &str) -> Result<usize> {
        self.names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| Error::Internal(format!("no plan has an input or state named {name:?}")))
    }

    /// The words of slot `i`.
    pub fn get(&self, i: usize) -> &[f32] {
        &self.data[i]
    }

    /// The words of slot `i`, to overwrite (forgets its recorded maximum).
    pub fn get_mut(&mut self, i: usize) -> &mut Vec<f32> {
        self.max_u32[i] = None;
        &mut self.data[i]
    }

    /// Overwrites `name`'s words with `values` (same length) and records their maximum.
    pub fn write(&mut self, name: &str, values: &[f32]) -> Result<()> {
        let i = self.index(name)?;
        check_len(name, values.len(), self.data[i].len())?;
        self.data[i].copy_from_slice(values);
        self.max_u32[i] = values.iter().map(|v| v.to_bits()).max();
        Ok(())
    }

    /// A copy of `name`'s words.
    pub fn read(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.data[self.index(name)?].clone())
    }

    /// The largest value written into `name` as a u32 bit pattern (`None` when unknown).
    pub fn read_u32_max(&self, name: &str) -> Option<u32> {
        self.max_u32[self.index(name).ok()?]
    }
}
