//! `riskgrad devices`

use riskgrad::engine::gpu::list_adapters;
use riskgrad::Result;

pub fn run() -> Result<()> {
    let adapters = list_adapters();
    if adapters.is_empty() {
        println!("no wgpu adapters found (no Vulkan, Metal, DX12 or GL driver)");
    }
    for a in &adapters {
        println!(
            "[{}] {} ({}, {}{})",
            a.index,
            a.name,
            a.backend,
            a.device_type,
            if a.is_software { ", software" } else { "" }
        );
        println!("    driver: {} {}", a.driver, a.driver_info);
        println!(
            "    max storage binding {} MiB, max buffer {} MiB, {} storage buffers/stage, {} KiB workgroup memory, {} invocations/workgroup, {} workgroups/dim",
            a.max_storage_buffer_binding_size >> 20,
            a.max_buffer_size >> 20,
            a.max_storage_buffers_per_shader_stage,
            a.max_compute_workgroup_storage_size >> 10,
            a.max_compute_invocations_per_workgroup,
            a.max_compute_workgroups_per_dimension
        );
        println!(
            "    f16: {}, subgroups: {}, timestamps: {}",
            yes(a.f16),
            yes(a.subgroups),
            yes(a.timestamps)
        );
    }
    println!(
        "[cpu] native CPU backend ({})",
        riskgrad::engine::cpu::thread_count()
    );
    println!();
    println!("--device auto picks a discrete GPU, then an integrated one, else the CPU backend;");
    println!("software adapters (llvmpipe, lavapipe, WARP) only when named: --device gpu, an index or a name.");
    Ok(())
}

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
