//! The wgpu executor: adapter choice and limits (`context`), the WGSL kernels and their
//! pipelines (`shaders`), the GEMM autotuner (`tune`) and the flat kernels' workgroup
//! widths it also decides (`flat_width`), with their timed launches on buffers of their
//! own (`probe`), the host's mirror of their parameter structs and shared constants
//! (`kernel_params`), and the `Executor` that runs plans on the GPU (`executor`).

pub mod context;
pub mod executor;
pub mod flat_width;
pub mod kernel_params;
mod probe;
mod row_program;
pub mod shaders;
pub mod tune;

pub use context::{
    choose_adapter, choose_adapter_for, finish_adapter_prefetch, list_adapters, pick_adapter,
    prefetch_adapters, AdapterSummary, DeviceChoice, GpuContext,
};
pub use executor::GpuExecutor;
