//! Launches on buffers of their own, outside any plan: what the tuner's timings share
//! (a GEMM shape's variants, `tune`; the flat kernels' widths, `flat_width`). Each
//! caller holds its own error scope around the buffers it makes.

use super::context::{ErrorScope, GpuContext};
use super::shaders::{Layout, UNIFORM_BYTES};
use crate::error::Result;

/// A storage buffer holding `data` as the device's `Store` elements (padded to 16
/// bytes, so a vec4 binding holds it whole), readable back.
pub(super) fn storage_buffer(ctx: &GpuContext, label: &str, data: &[f32]) -> wgpu::Buffer {
    let bytes = ctx.precision.encode_padded(data, 16);
    let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.len() as u64,
        usage: wgpu::BufferUsages::STORAGE
            | wgpu::BufferUsages::COPY_DST
            | wgpu::BufferUsages::COPY_SRC,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&buffer, 0, &bytes);
    buffer
}

/// A bind group of `layout`: a uniform buffer holding `record` at binding 0, then
/// `buffers` at bindings 1, 2, ...
pub(super) fn bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: Layout,
    record: &[u8],
    buffers: &[&wgpu::Buffer],
) -> wgpu::BindGroup {
    let uniform = ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: UNIFORM_BYTES,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    ctx.queue.write_buffer(&uniform, 0, record);
    let entries: Vec<wgpu::BindGroupEntry> = [&uniform]
        .into_iter()
        .chain(buffers.iter().copied())
        .enumerate()
        .map(|(binding, buffer)| wgpu::BindGroupEntry {
            binding: binding as u32,
            resource: buffer.as_entire_binding(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout: ctx.bind_group_layout(layout),
        entries: &entries,
    })
}

/// Runs `pipeline` on `group` over `grid`, `times` times in one submission, and waits
/// for it.
pub(super) fn run_repeated(
    ctx: &GpuContext,
    label: &str,
    pipeline: &wgpu::ComputePipeline,
    group: &wgpu::BindGroup,
    grid: [u32; 3],
    times: usize,
) -> Result<()> {
    let scope = ErrorScope::push(&ctx.device);
    let mut encoder = ctx
        .device
        .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) });
    {
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some(label),
            timestamp_writes: None,
        });
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, group, &[]);
        for _ in 0..times {
            pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        }
    }
    ctx.queue.submit([encoder.finish()]);
    scope.pop(&format!("running {label}"))?;
    ctx.wait()?;
    ctx.take_error()
}
