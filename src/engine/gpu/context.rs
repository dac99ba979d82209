//! Adapter discovery and choice, device creation with the adapter's own limits, and the
//! compute pipelines, each built once per device when a plan first needs it. Headless:
//! no surface is involved.

use super::flat_width::WidthKind;
use super::shaders::{Access, Family, Layout, Pipe, PipeKey, Precision, MODULES};
use crate::error::{Error, Result, Setting};
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};

/// What `list_adapters` reports about one adapter, and what the CLI prints.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterSummary {
    /// Position in `list_adapters`, what `DeviceChoice::Index` refers to.
    pub index: usize,
    /// The adapter's name as the driver reports it.
    pub name: String,
    /// The graphics API (Vulkan, Metal, Dx12, Gl).
    pub backend: String,
    /// Discrete, integrated, virtual or CPU.
    pub device_type: String,
    /// The driver's name.
    pub driver: String,
    /// The driver's version details.
    pub driver_info: String,
    /// A CPU rasterizer (lavapipe, llvmpipe, WARP, SwiftShader): correct, but slower than
    /// the native CPU backend, so `Auto` never picks one.
    pub is_software: bool,
    /// Whether shaders may use f16 (`SHADER_F16`).
    pub f16: bool,
    /// Whether shaders may use subgroup operations.
    pub subgroups: bool,
    /// Whether GPU timestamps can be queried.
    pub timestamps: bool,
    /// Largest storage buffer one binding may see, in bytes (wgpu's limits follow).
    pub max_storage_buffer_binding_size: u64,
    /// Largest buffer, in bytes.
    pub max_buffer_size: u64,
    /// Storage buffers one shader stage may bind.
    pub max_storage_buffers_per_shader_stage: u32,
    /// Workgroup memory, in bytes.
    pub max_compute_workgroup_storage_size: u32,
    /// Threads per workgroup.
    pub max_compute_invocations_per_workgroup: u32,
    /// Workgroups per dispatch axis.
    pub max_compute_workgroups_per_dimension: u32,
}

impl fmt::Display for AdapterSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}] {} ({}, {}",
            self.index, self.name, self.backend, self.device_type
        )?;
        if self.is_software {
            write!(f, ", software")?;
        }
        write!(f, ")")
    }
}

const SOFTWARE_NAMES: [&str; 5] = [
    "llvmpipe",
    "lavapipe",
    "swiftshader",
    "warp",
    "microsoft basic render",
];

fn summarize(index: usize, adapter: &wgpu::Adapter) -> AdapterSummary {
    let info = adapter.get_info();
    let features = adapter.features();
    let limits = adapter.limits();
    let lower = info.name.to_lowercase();
    AdapterSummary {
        index,
        is_software: info.device_type == wgpu::DeviceType::Cpu
            || SOFTWARE_NAMES.iter().any(|s| lower.contains(s)),
        name: info.name,
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: info.driver,
        driver_info: info.driver_info,
        f16: features.contains(wgpu::Features::SHADER_F16),
        subgroups: features.contains(wgpu::Features::SUBGROUP),
        timestamps: features.contains(wgpu::Features::TIMESTAMP_QUERY),
        max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
        max_buffer_size: limits.max_buffer_size,
        max_storage_buffers_per_shader_stage: limits.max_storage_buffers_per_shader_stage,
        max_compute_workgroup_storage_size: limits.max_compute_workgroup_storage_size,
        max_compute_invocations_per_workgroup: limits.max_compute_invocations_per_workgroup,
        max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
    }
}

/// The adapters, enumerated once a process: creating the instance and listing its
/// adapters takes tens of milliseconds (a Vulkan loader and its drivers), and `--device
/// auto` asks more than once a run. A process that runs long (the Python package) does
/// not see an adapter attached after its first look.
static ADAPTERS: OnceLock<Vec<(wgpu::Adapter, AdapterSummary)>> = OnceLock::new();

/// The thread [`prefetch_adapters`] started, joined by [`finish_adapter_prefetch`].
static PREFETCH: Mutex<Option<std::thread::JoinHandle<()>>> = Mutex::new(None);

/// Starts enumerating the adapters on a thread of its own, so that the caller's work in
/// the meantime (reading and preparing its data) hides the cost; the first use waits for
/// it. The caller must call [`finish_adapter_prefetch`] before the process exits, so
/// that no thread is inside a driver while the process is torn down.
pub fn prefetch_adapters() {
    let mut slot = PREFETCH.lock().unwrap_or_else(|p| p.into_inner());
    if slot.is_none() && ADAPTERS.get().is_none() {
        let spawned = std::thread::Builder::new()
            .name("adapters".into())
            .spawn(|| {
                ADAPTERS.get_or_init(enumerate_now);
            });
        // A thread that cannot start costs nothing: the first use enumerates itself.
        *slot = spawned.ok();
    }
}

/// Waits for the enumeration [`prefetch_adapters`] started, if any.
pub fn finish_adapter_prefetch() {
    let handle = PREFETCH.lock().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(handle) = handle {
        let _ = handle.join();
    }
}

/// All adapters of an instance built from the environment (`WGPU_BACKEND` etc.), in a
/// stable order, with their summaries (enumerated once a process: [`ADAPTERS`]).
fn enumerate() -> Vec<(wgpu::Adapter, AdapterSummary)> {
    ADAPTERS.get_or_init(enumerate_now).clone()
}

fn enumerate_now() -> Vec<(wgpu::Adapter, AdapterSummary)> {
    let instance =
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle().with_env());
    let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    adapters
        .into_iter()
        .enumerate()
        .map(|(i, a)| {
            let s = summarize(i, &a);
            (a, s)
        })
        .collect()
}

/// Whether the adapter runs compute shaders at all (some GL ES drivers do not).
fn can_compute(adapter: &wgpu::Adapter) -> bool {
    adapter
        .get_downlevel_capabilities()
        .flags
        .contains(wgpu::DownlevelFlags::COMPUTE_SHADERS)
}

/// Every adapter wgpu can see. Empty when there is none (no Vulkan, Metal, DX12 or GL).
pub fn list_adapters() -> Vec<AdapterSummary> {
    enumerate().into_iter().map(|(_, s)| s).collect()
}

/// Which device to run on, as the CLI's `--device` flag spells it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeviceChoice {
    /// A hardware GPU if there is one, else the CPU backend.
    Auto,
    /// The native CPU backend.
    Cpu,
    /// The best adapter of any kind, software rasterizers included; an error if none.
    Gpu,
    /// The adapter at this position of `list_adapters`.
    Index(usize),
    /// The first adapter whose name contains this, ignoring case.
    Name(String),
}

impl FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let t = s.trim();
        Ok(match t.to_ascii_lowercase().as_str() {
            "" => {
                return Err(Error::invalid(
                    Setting::Device,
                    "empty; use auto, cpu, gpu, an adapter index or part of its name",
                ))
            }
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "gpu" => DeviceChoice::Gpu,
            d if d.bytes().all(|b| b.is_ascii_digit()) => {
                DeviceChoice::Index(d.parse().map_err(|_| {
                    Error::invalid(Setting::Device, format!("{t:?} is not an adapter index"))
                })?)
            }
            _ => DeviceChoice::Name(t.to_string()),
        })
    }
}

/// Lower is better: hardware kinds first, then by backend (native APIs before GL).
fn rank(s: &AdapterSummary) -> (u8, u8) {
    let kind = match (s.is_software, s.device_type.as_str()) {
        (true, _) => 4,
        (false, "DiscreteGpu") => 0,
        (false, "IntegratedGpu") => 1,
        (false, "VirtualGpu") => 2,
        _ => 3,
    };
    let backend = match s.backend.as_str() {
        "Vulkan" | "Metal" | "Dx12" => 0,
        "Gl" => 1,
        _ => 2,
    };
    (kind, backend)
}

fn listing(all: &[AdapterSummary]) -> String {
    if all.is_empty() {
        return "wgpu found no adapter (no Vulkan, Metal, DX12 or GL driver; check WGPU_BACKEND)"
            .into();
    }
    let lines: Vec<String> = all.iter().map(|s| format!("  {s}")).collect();
    format!("adapters:\n{}", lines.join("\n"))
}

/// Picks an adapter and sets it up. `Cpu`, and `Auto` without a hardware GPU, give
/// `Ok(None)`: the caller runs on the CPU backend.
pub fn choose_adapter(choice: &DeviceChoice) -> Result<Option<GpuContext>> {
    choose_adapter_for(choice, Precision::F32)
}

/// [`choose_adapter`], its kernels storing tensors in `precision`
/// ([`GpuContext::with_precision`]).
pub fn choose_adapter_for(
    choice: &DeviceChoice,
    precision: Precision,
) -> Result<Option<GpuContext>> {
    match pick_adapter(choice)? {
        Some((adapter, info)) => GpuContext::with_precision(adapter, info, precision).map(Some),
        None => Ok(None),
    }
}

/// The adapter `choose_adapter` would set up, without opening a device on it (for code
/// that builds its own pipelines, as `riskgrad bench peak` does).
pub fn pick_adapter(choice: &DeviceChoice) -> Result<Option<(wgpu::Adapter, AdapterSummary)>> {
    if *choice == DeviceChoice::Cpu {
        return Ok(None);
    }
    let mut found = enumerate();
    let summaries: Vec<AdapterSummary> = found.iter().map(|(_, s)| s.clone()).collect();
    let pick = match choice {
        DeviceChoice::Cpu => unreachable!("handled above"),
        DeviceChoice::Auto => summaries
            .iter()
            .filter(|s| rank(s).0 <= 2 && can_compute(&found[s.index].0))
            .min_by_key(|s| rank(s)),
        DeviceChoice::Gpu => {
            let best = summaries
                .iter()
                .filter(|s| can_compute(&found[s.index].0))
                .min_by_key(|s| rank(s));
            Some(best.ok_or_else(|| Error::Gpu(listing(&summaries)))?)
        }
        DeviceChoice::Index(i) => Some(summaries.get(*i).ok_or_else(|| {
            Error::invalid(
                Setting::Device,
                format!("there is no adapter {i}; {}", listing(&summaries)),
            )
        })?),
        DeviceChoice::Name(name) => {
            let lower = name.to_lowercase();
            Some(
                summaries
                    .iter()
                    .find(|s| s.name.to_lowercase().contains(&lower))
                    .ok_or_else(|| {
                        Error::invalid(
                            Setting::Device,
                            format!(
                                "no adapter's name contains {name:?}; {}",
                                listing(&summaries)
                            ),
                        )
                    })?,
            )
        }
    };
    let Some(index) = pick.map(|s| s.index) else {
        return Ok(None);
    };
    Ok(Some(found.swap_remove(index)))
}

/// Compiles a kernel module with `checks`.
fn compile_module(
    device: &wgpu::Device,
    label: Option<&str>,
    wgsl: String,
    checks: wgpu::ShaderRuntimeChecks,
) -> wgpu::ShaderModule {
    let desc = wgpu::ShaderModuleDescriptor {
        label,
        source: wgpu::ShaderSource::Wgsl(wgsl.into()),
    };
    // SAFETY: `checks` turns naga's checks off only on Vulkan (`runtime_checks`), where
    // the driver's robust buffer access bounds every storage access to its binding, so a
    // wrong index reads zero or writes nothing, as with naga's checks. What naga would
    // also have clamped are the kernels' private and workgroup arrays, which every kernel
    // indexes by constants or by values bounded by its own workgroup size.
    unsafe { device.create_shader_module_trusted(desc, checks) }
}

/// The runtime checks naga compiles into the kernels on `backend`. On Vulkan, none:
/// robustBufferAccess is a feature every Vulkan driver has and wgpu enables, so naga's
/// clamps repeat the driver's, and on lavapipe the kernels ran 10–18 % faster without
/// them (BENCHMARKS.md, "Kernels without naga's runtime checks"). Elsewhere (Metal,
/// DX12, GL) naga's checks are what keeps an access inside its buffer, so they stay.
fn runtime_checks(backend: wgpu::Backend) -> wgpu::ShaderRuntimeChecks {
    match unchecked_on(backend) {
        true => wgpu::ShaderRuntimeChecks::unchecked(),
        false => wgpu::ShaderRuntimeChecks::checked(),
    }
}

fn unchecked_on(backend: wgpu::Backend) -> bool {
    backend == wgpu::Backend::Vulkan
}

/// What the kernels need of a device (WebGPU's default limits give more; some downlevel
/// GL adapters less). Six: the recurrent cells' backward kernel reads five tensors.
const NEED_STORAGE_BUFFERS: u32 = 6;
const NEED_INVOCATIONS: u32 = 256;
/// The workgroup memory a device must offer: 12 KiB, what the `wide128x64` matmul
/// stages for 16 steps of k (every Vulkan, Metal and DX12 device, and GLES 3.1, has 16).
/// tests/it/shaders_validate.rs checks that every kernel fits in it.
pub const NEED_WORKGROUP_BYTES: u32 = 12288;

/// A device, its shader modules, and its compute pipelines, each built the first time a
/// plan needs it (`prepare`): a model uses about half of them, and building one is where
/// a driver compiles the shader. Shared (in an `Arc`) by executors.
pub struct GpuContext {
    /// The logical device.
    pub device: wgpu::Device,
    /// Its submission queue.
    pub queue: wgpu::Queue,
    /// The adapter it was opened on.
    pub info: AdapterSummary,
    /// The limits the device was created with.
    pub limits: wgpu::Limits,
    /// The adapter the device was opened on (a benchmark opens its own device there).
    pub adapter: wgpu::Adapter,
    /// The type its kernels store tensors in (DESIGN.md, flow item 8).
    pub precision: Precision,
    layouts: Vec<Option<wgpu::BindGroupLayout>>,
    modules: Vec<wgpu::ShaderModule>,
    pipeline_layouts: Vec<Option<wgpu::PipelineLayout>>,
    /// Every pipeline of every variant (`PipeKey`); each built by `prepare`.
    pipelines: HashMap<PipeKey, OnceLock<wgpu::ComputePipeline>>,
    /// The GEMM kernels' variants other than the default (`Pipe::variants`): their
    /// modules, by family and variant, each made when first needed.
    variant_modules: HashMap<(Family, usize), OnceLock<wgpu::ShaderModule>>,
    /// The autotuner's choices on this device (shared by its executors).
    pub(crate) tuner: Mutex<super::tune::Tuner>,
    /// The flat kernels' workgroup widths (`WG_FLAT`, `WG_SUMS`), by `WidthKind`, each
    /// fixed for the device's life once its first pipeline is built or its first plan
    /// loaded ([`GpuContext::width`], `flat_width::decide`).
    widths: [OnceLock<u32>; 2],
    uncaptured: Arc<Mutex<Option<String>>>,
}

impl fmt::Debug for GpuContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuContext")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

impl GpuContext {
    /// Opens a device on `adapter`, asking for the adapter's own limits (so large
    /// datasets bind as far as the hardware allows), and checks its shader modules.
    pub fn new(adapter: wgpu::Adapter, info: AdapterSummary) -> Result<Self> {
        Self::with_precision(adapter, info, Precision::F32)
    }

    /// `new`, its kernels storing tensors in `precision`: f16 needs an adapter with
    /// `SHADER_F16` (an error naming the adapter otherwise).
    pub fn with_precision(
        adapter: wgpu::Adapter,
        info: AdapterSummary,
        precision: Precision,
    ) -> Result<Self> {
        let f16 = wgpu::Features::SHADER_F16;
        if precision == Precision::F16 && !adapter.features().contains(f16) {
            return Err(Error::flag(
                "--precision",
                format!(
                    "f16 needs an adapter with SHADER_F16, and {} has none (`riskgrad devices` lists each adapter's)",
                    info.name
                ),
            ));
        }
        if !can_compute(&adapter) {
            return Err(Error::Gpu(format!(
                "{} cannot run compute shaders",
                info.name
            )));
        }
        let limits = adapter.limits();
        let short = |what: &str, have: u32, need: u32| {
            Error::Gpu(format!(
                "{} offers {have} {what}; the kernels need {need}",
                info.name
            ))
        };
        if limits.max_storage_buffers_per_shader_stage < NEED_STORAGE_BUFFERS {
            return Err(short(
                "storage buffers per shader stage",
                limits.max_storage_buffers_per_shader_stage,
                NEED_STORAGE_BUFFERS,
            ));
        }
        if limits.max_compute_invocations_per_workgroup < NEED_INVOCATIONS
            || limits.max_compute_workgroup_size_x < NEED_INVOCATIONS
        {
            return Err(short(
                "invocations per workgroup",
                limits.max_compute_invocations_per_workgroup,
                NEED_INVOCATIONS,
            ));
        }
        if limits.max_compute_workgroup_storage_size < NEED_WORKGROUP_BYTES {
            return Err(short(
                "bytes of workgroup memory",
                limits.max_compute_workgroup_storage_size,
                NEED_WORKGROUP_BYTES,
            ));
        }
        let desc = wgpu::DeviceDescriptor {
            label: Some("riskgrad"),
            required_limits: limits.clone(),
            // Device timestamps time each launch (`Executor::time_launches`) and
            // subgroup operations are offered to the tuner (`splitk8x8-subgroup`) where
            // the adapter has them; f16 storage needs SHADER_F16.
            required_features: adapter.features()
                & (wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::SUBGROUP)
                | match precision {
                    Precision::F16 => f16,
                    Precision::F32 => wgpu::Features::empty(),
                },
            ..Default::default()
        };
        let (device, queue) = pollster::block_on(adapter.request_device(&desc))
            .map_err(|e| Error::Gpu(format!("cannot open {}: {e}", info.name)))?;
        // Errors outside an error scope would reach wgpu's default handler, which panics;
        // keep the first one instead, for `take_error`.
        let uncaptured: Arc<Mutex<Option<String>>> = Arc::default();
        let sink = uncaptured.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut slot = sink.lock().unwrap_or_else(|p| p.into_inner());
            slot.get_or_insert_with(|| e.to_string());
        }));

        let scope = ErrorScope::push(&device);
        // A layout with more storage bindings than the device has is not built (the row
        // program's seven: `GpuContext::fits`); everything else needs at most six.
        let fits = |l: Layout| {
            l.storage_bindings().len() as u32 <= limits.max_storage_buffers_per_shader_stage
        };
        let layouts: Vec<Option<wgpu::BindGroupLayout>> = Layout::ALL
            .iter()
            .map(|&l| fits(l).then(|| bind_group_layout(&device, l)))
            .collect();
        let checks = runtime_checks(adapter.get_info().backend);
        let modules: Vec<wgpu::ShaderModule> = MODULES
            .iter()
            .map(|m| compile_module(&device, Some(m.file), m.wgsl(precision), checks))
            .collect();
        let pipeline_layouts: Vec<Option<wgpu::PipelineLayout>> = layouts
            .iter()
            .map(|l| {
                l.as_ref().map(|l| {
                    device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
                        label: None,
                        bind_group_layouts: &[Some(l)],
                        immediate_size: 0,
                    })
                })
            })
            .collect();
        scope.pop("loading the shader modules")?;
        Ok(GpuContext {
            device,
            queue,
            info,
            limits,
            adapter,
            precision,
            layouts,
            modules,
            pipeline_layouts,
            pipelines: PipeKey::all()
                .map(|key| (key, Default::default()))
                .collect(),
            variant_modules: PipeKey::all()
                .filter(|key| key.variant != 0)
                .map(|key| ((key.pipe.spec().family, key.variant), Default::default()))
                .collect(),
            tuner: Mutex::default(),
            widths: Default::default(),
            uncaptured,
        })
    }

    /// Blocks until the work submitted to the queue is done (the tuner's and the step
    /// forms' timings, a readback).
    pub fn wait(&self) -> Result<()> {
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(|e| Error::Gpu(format!("waiting for the GPU: {e}")))
    }

    /// Copies `len` words at `offset` of `buffer` to the host (f32 state, timestamps).
    pub fn read_words(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        self.read_elements(buffer, offset, len, Precision::F32)
    }

    /// Copies `len` tensor elements (`Store`, in this context's precision) at `offset`
    /// of `buffer` to the host as f32 (the executor's reads and the autotuner's output
    /// checks).
    pub fn read_store(&self, buffer: &wgpu::Buffer, offset: usize, len: usize) -> Result<Vec<f32>> {
        self.read_elements(buffer, offset, len, self.precision)
    }

    fn read_elements(
        &self,
        buffer: &wgpu::Buffer,
        offset: usize,
        len: usize,
        elements: Precision,
    ) -> Result<Vec<f32>> {
        if len == 0 {
            return Ok(Vec::new());
        }
        // A copy starts and ends on 4 bytes: an f16 run is widened to them, then cut.
        let size = elements.store_bytes() as u64;
        let (first, end) = (offset as u64 * size, (offset + len) as u64 * size);
        let from = first / 4 * 4;
        let bytes = end.next_multiple_of(4) - from;
        let scope = ErrorScope::push(&self.device);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: bytes.next_multiple_of(16),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor {
                label: Some("readback"),
            });
        encoder.copy_buffer_to_buffer(buffer, from, &staging, 0, bytes);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, 0..bytes, move |r| {
            let _ = tx.send(r);
        });
        scope.pop("reading back")?;
        self.take_error()?;
        self.wait()?;
        rx.recv()
            .map_err(|_| Error::Gpu("the readback was dropped".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback: {e}")))?;
        let view = staging
            .get_mapped_range(0..bytes)
            .map_err(|e| Error::Gpu(format!("mapping the readback: {e}")))?;
        let skip = (first - from) as usize;
        let out = elements.decode(&view[skip..skip + (end - first) as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// An error the device reported outside any error scope (a lost device, say), once.
    pub fn take_error(&self) -> Result<()> {
        match self
            .uncaptured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            Some(e) => Err(Error::Gpu(e)),
            None => Ok(()),
        }
    }

    /// Builds each of `pipes` not built yet (a plan's, as it is loaded).
    pub fn prepare<P: Into<PipeKey>>(&self, pipes: impl IntoIterator<Item = P>) -> Result<()> {
        for key in pipes {
            let key: PipeKey = key.into();
            let slot = self.slot(key);
            if slot.get().is_some() {
                continue;
            }
            let built = self.build_pipeline(key, self.widths())?;
            // Another executor on this device may have built it meanwhile: either will do.
            let _ = slot.set(built);
        }
        Ok(())
    }

    /// The workgroup width of `kind`'s kernels on this device: the one decided
    /// (`set_width`), else from now on the default.
    pub fn width(&self, kind: WidthKind) -> u32 {
        *self.widths[kind as usize].get_or_init(|| kind.default_width())
    }

    /// Both kinds' widths, in `WidthKind::ALL`'s order.
    pub fn widths(&self) -> [u32; 2] {
        WidthKind::ALL.map(|kind| self.width(kind))
    }

    /// Fixes `kind`'s width at `width`, unless a pipeline was built or the width fixed
    /// already (then that one stays, and is returned).
    pub(crate) fn set_width(&self, kind: WidthKind, width: u32) -> u32 {
        *self.widths[kind as usize].get_or_init(|| width)
    }

    /// `kind`'s width, if fixed already.
    pub(crate) fn fixed_width(&self, kind: WidthKind) -> Option<u32> {
        self.widths[kind as usize].get().copied()
    }

    /// `key`'s pipeline with its flat kernels' workgroups `widths` wide (by
    /// `WidthKind`, set through their WGSL overrides, which common.wgsl declares in
    /// every module): the table's pipelines take the device's widths, the tuner times
    /// others.
    pub(crate) fn build_pipeline(
        &self,
        key: PipeKey,
        widths: [u32; 2],
    ) -> Result<wgpu::ComputePipeline> {
        let spec = key.pipe.spec();
        let constants: Vec<(&str, f64)> = spec
            .constants
            .iter()
            .copied()
            .chain(WidthKind::ALL.map(|kind| (kind.constant(), widths[kind as usize] as f64)))
            .collect();
        let scope = ErrorScope::push(&self.device);
        let module = self.compiled(key);
        let built = self
            .device
            .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(spec.entry),
                layout: Some(
                    self.pipeline_layouts[layout_index(spec.layout)]
                        .as_ref()
                        .ok_or_else(|| {
                            Error::Gpu(format!(
                                "{} has too few storage buffers per shader stage for the {} kernel",
                                self.info.name, spec.name
                            ))
                        })?,
                ),
                module,
                entry_point: Some(spec.entry),
                compilation_options: wgpu::PipelineCompilationOptions {
                    constants: &constants,
                    ..Default::default()
                },
                cache: None,
            });
        scope.pop(&format!("building the {key:?} pipeline"))?;
        Ok(built)
    }

    /// Whether the kernels are compiled without naga's runtime checks
    /// (`runtime_checks`): their speed differs, so the tuner keeps their choices apart.
    pub fn kernels_unchecked(&self) -> bool {
        unchecked_on(self.adapter.get_info().backend)
    }

    /// The device's compilation of `key`'s module (`PipeKey::module`): its family's,
    /// made with the device (a GEMM kernel's default variant is its family's), or
    /// another variant's, made when first asked for.
    fn compiled(&self, key: PipeKey) -> &wgpu::ShaderModule {
        let family = key.pipe.spec().family;
        match key.variant {
            0 => &self.modules[family as usize],
            v => self.variant_modules[&(family, v)].get_or_init(|| {
                compile_module(
                    &self.device,
                    key.variant_name(),
                    key.module().wgsl(self.precision),
                    runtime_checks(self.adapter.get_info().backend),
                )
            }),
        }
    }

    fn slot(&self, key: PipeKey) -> &OnceLock<wgpu::ComputePipeline> {
        self.pipelines
            .get(&key)
            .expect("every pipe's variants have a slot")
    }

    /// Builds every pipeline of the default variants (what a cold start of the whole
    /// engine costs).
    pub fn prepare_all(&self) -> Result<()> {
        self.prepare(
            Pipe::all()
                .into_iter()
                .filter(|p| self.fits(p.spec().layout)),
        )
    }

    /// The pipeline `key`, which a `prepare` call built (a plan's load prepares its
    /// pipelines before anything runs).
    pub fn pipeline(&self, key: impl Into<PipeKey>) -> Result<&wgpu::ComputePipeline> {
        let key = key.into();
        self.slot(key)
            .get()
            .ok_or_else(|| Error::internal(format!("the {key:?} pipeline was never prepared")))
    }

    /// Sets how this device's executors choose their GEMM kernels' variants (see `tune`); the
    /// choices made so far are forgotten. Until called: `TuneMode::Off`.
    pub fn set_tuning(&self, tuning: super::tune::Tuning) {
        self.tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .set(tuning);
    }

    /// Every GEMM variant choice (matmul, convolution) made or read on this device so far.
    pub fn step_form_choices(&self) -> Vec<super::tune::StepFormChoice> {
        self.tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .step_form_choices()
    }

    /// `kind`'s width as this device's tuner decided or read it, with what it
    /// measured; `None` where it did not decide (tuning off, or a width fixed before its
    /// first plan).
    pub fn width_choice(&self, kind: WidthKind) -> Option<super::flat_width::WidthChoice> {
        self.tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .width_choice(kind)
            .cloned()
    }

    /// Every GEMM shape's variant chosen or read by this device's tuner so far.
    pub fn tune_choices(&self) -> Vec<super::tune::ShapeChoice> {
        self.tuner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .choices()
    }

    /// The bind group layout for `layout` (one the device [`fits`](Self::fits)).
    pub fn bind_group_layout(&self, layout: Layout) -> &wgpu::BindGroupLayout {
        self.layouts[layout_index(layout)]
            .as_ref()
            .expect("only layouts the device fits are bound")
    }

    /// Whether the device has the storage buffers `layout` binds (every layout but the
    /// row program's needs at most the six `new` checks for).
    pub fn fits(&self, layout: Layout) -> bool {
        self.layouts[layout_index(layout)].is_some()
    }
}

fn layout_index(layout: Layout) -> usize {
    Layout::ALL
        .iter()
        .position(|&l| l == layout)
        .expect("every layout is listed")
}

fn bind_group_layout(device: &wgpu::Device, layout: Layout) -> wgpu::BindGroupLayout {
    let buffer = |binding, ty| wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let mut entries = vec![buffer(0, wgpu::BufferBindingType::Uniform)];
    for &(binding, access) in layout.storage_bindings() {
        entries.push(buffer(
            binding,
            wgpu::BufferBindingType::Storage {
                read_only: access == Access::Read,
            },
        ));
    }
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some("riskgrad"),
        entries: &entries,
    })
}

/// Captures validation and out-of-memory errors of the calls made while it is pushed
/// (on this thread), so they come back as `Error::Gpu` instead of wgpu's default
/// handler, which panics.
pub(crate) struct ErrorScope {
    oom: wgpu::ErrorScopeGuard,
    validation: wgpu::ErrorScopeGuard,
}

impl ErrorScope {
    pub(crate) fn push(device: &wgpu::Device) -> Self {
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        ErrorScope { oom, validation }
    }

    pub(crate) fn pop(self, doing: &str) -> Result<()> {
        let validation = pollster::block_on(self.validation.pop());
        let oom = pollster::block_on(self.oom.pop());
        match validation.or(oom) {
            None => Ok(()),
            Some(e) => Err(Error::Gpu(format!("{doing}: {e}"))),
        }
    }
}
