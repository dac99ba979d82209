//! The wgpu executor: adapter choice and limits (`context`), the WGSL kernels and their
//! pipelines (`shaders`), and the `Executor` that runs plans on the GPU (`executor`).

pub mod context;
pub mod executor;
pub mod shaders;

pub use context::{choose_adapter, list_adapters, AdapterSummary, DeviceChoice, GpuContext};
pub use executor::GpuExecutor;
