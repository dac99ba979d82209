//! The compute engine: static graphs with autodiff, the planner, and the two executors
//! (native CPU kernels, WGSL kernels on wgpu). It knows nothing of credit data, files or
//! command-line flags; everything above it (`nn`, `data`, `train`, the CLI) builds on it.

pub mod cpu;
pub mod exec;
pub mod gpu;
pub mod graph;
pub mod ops;
pub mod plan;
pub mod step_split;

use crate::error::{Error, Result};
use cpu::CpuExecutor;
use exec::Executor;
use gpu::shaders::Precision;
use gpu::tune::Tuning;
use gpu::{choose_adapter_for, DeviceChoice, GpuExecutor};

/// What [`select_executor`] does when the choice finds no GPU adapter to run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhenNoGpu {
    /// Run on the native CPU backend (training and scoring: a result either way).
    UseCpu,
    /// Fail (benchmarks: the user named a device on purpose).
    Refuse,
}

/// The executor a device choice selects.
pub struct Selected {
    /// The executor to run plans on.
    pub executor: Box<dyn Executor>,
    /// True when a GPU was asked for (or `auto` looked for one) and none qualified, so
    /// the CPU backend stands in: the caller should say so.
    pub fell_back_to_cpu: bool,
    /// The adapter's name when it is a software rasterizer (lavapipe, llvmpipe,
    /// SwiftShader, WARP): it runs on the CPU, far slower than a GPU, and is chosen only
    /// when named or when no hardware adapter is there. The caller should say so
    /// ([`software_adapter_note`]).
    pub software_adapter: Option<String>,
}

/// One line for a run on the software adapter `name`: what it is, and the usual fix (the
/// GPU's Vulkan driver, or in a container the `graphics` capability that makes the NVIDIA
/// container runtime mount its Vulkan ICD).
pub fn software_adapter_note(name: &str) -> String {
    format!(
        "note: {name} is a software Vulkan adapter that runs on the CPU, far slower than a GPU: \
         install the GPU's Vulkan driver, or in a container add `graphics` to \
         NVIDIA_DRIVER_CAPABILITIES (docker run --gpus all -e \
         NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics)"
    )
}

/// The one place that turns a device choice into an executor: `cpu` is the native
/// backend; `auto` a hardware GPU when one qualifies; `gpu`, an index or a name that
/// adapter. With no adapter, `when_no_gpu` decides. A GPU runs its default matmul
/// kernels (no tuning: see [`select_executor_tuned`]).
pub fn select_executor(choice: &DeviceChoice, when_no_gpu: WhenNoGpu) -> Result<Selected> {
    select_executor_tuned(choice, when_no_gpu, Tuning::default(), Precision::F32)
}

/// As [`select_executor`], with a GPU's matmuls choosing their variants as `tuning`
/// says (`gpu::tune`) and its kernels storing tensors in `precision` (f16 needs an
/// adapter with SHADER_F16; the CPU backend is f32).
pub fn select_executor_tuned(
    choice: &DeviceChoice,
    when_no_gpu: WhenNoGpu,
    tuning: Tuning,
    precision: Precision,
) -> Result<Selected> {
    if *choice == DeviceChoice::Cpu {
        return Ok(Selected {
            executor: Box::new(CpuExecutor::new()),
            fell_back_to_cpu: false,
            software_adapter: None,
        });
    }
    match (choose_adapter_for(choice, precision)?, when_no_gpu) {
        (Some(ctx), _) => {
            ctx.set_tuning(tuning);
            Ok(Selected {
                software_adapter: ctx.info.is_software.then(|| ctx.info.name.clone()),
                executor: Box::new(GpuExecutor::new(std::sync::Arc::new(ctx))),
                fell_back_to_cpu: false,
            })
        }
        (None, WhenNoGpu::UseCpu) => Ok(Selected {
            executor: Box::new(CpuExecutor::new()),
            fell_back_to_cpu: true,
            software_adapter: None,
        }),
        (None, WhenNoGpu::Refuse) => Err(Error::Gpu(format!("no adapter matches {choice:?}"))),
    }
}
