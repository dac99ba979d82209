//! The wgpu executor: adapter choice and limits (`context`), the WGSL kernels and their
//! pipelines (`shaders`), and the `Executor` that runs plans on the GPU (`executor`).

pub mod shaders;
