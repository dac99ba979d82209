//! Adapter listing and choice. Kept apart from gpu_kernels.rs: under wgpu's GL backend,
//! opening devices while other threads use one can time out on the GL context lock, so
//! the device-opening checks run here, one after another, in one test.
//!
//! Needs a wgpu adapter (lavapipe is enough) and fails without one, unless
//! RISKGRAD_SKIP_GPU_TESTS=1.

use riskgrad::engine::gpu::{
    choose_adapter, finish_adapter_prefetch, list_adapters, prefetch_adapters, DeviceChoice,
};

#[test]
fn device_choice_parses_the_flag() {
    assert_eq!("auto".parse::<DeviceChoice>().unwrap(), DeviceChoice::Auto);
    assert_eq!("CPU".parse::<DeviceChoice>().unwrap(), DeviceChoice::Cpu);
    assert_eq!("gpu".parse::<DeviceChoice>().unwrap(), DeviceChoice::Gpu);
    assert_eq!("1".parse::<DeviceChoice>().unwrap(), DeviceChoice::Index(1));
    assert_eq!(
        " LLVMpipe ".parse::<DeviceChoice>().unwrap(),
        DeviceChoice::Name("LLVMpipe".into())
    );
    assert!("".parse::<DeviceChoice>().is_err());
    assert!(choose_adapter(&DeviceChoice::Cpu).unwrap().is_none());
}

#[test]
fn adapters_enumerated_ahead_are_the_ones_listed() {
    // Started on a thread of its own, joined, then asked for: one enumeration a process,
    // so every look sees the same adapters in the same order. A second prefetch or
    // finish does nothing.
    prefetch_adapters();
    finish_adapter_prefetch();
    finish_adapter_prefetch();
    let first = list_adapters();
    prefetch_adapters();
    finish_adapter_prefetch();
    assert_eq!(list_adapters(), first);
    if std::env::var("RISKGRAD_SKIP_GPU_TESTS").as_deref() != Ok("1") {
        assert!(!first.is_empty(), "no wgpu adapter");
    }
}

#[test]
fn adapters_are_listed_chosen_and_refused_clearly() {
    if std::env::var("RISKGRAD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        eprintln!("RISKGRAD_SKIP_GPU_TESTS=1: skipped");
        return;
    }
    let all = list_adapters();
    assert!(!all.is_empty(), "no wgpu adapter: install Mesa's lavapipe (apt-get install mesa-vulkan-drivers) or set RISKGRAD_SKIP_GPU_TESTS=1");
    for (i, a) in all.iter().enumerate() {
        assert_eq!(a.index, i);
        assert!(
            a.max_storage_buffer_binding_size > 0
                && a.max_buffer_size > 0
                && a.max_compute_workgroups_per_dimension > 0,
            "{a:?}"
        );
        if a.device_type == "Cpu" || a.name.to_lowercase().contains("llvmpipe") {
            assert!(a.is_software, "{a:?}");
        }
    }

    let best = choose_adapter(&DeviceChoice::Gpu)
        .unwrap()
        .expect("Gpu gives a device when any adapter exists");
    assert!(all.contains(&best.info), "{:?} not in {all:?}", best.info);
    // Kernels drop naga's runtime checks on Vulkan only, where the driver's robust
    // buffer access bounds every access (context.rs, `runtime_checks`).
    assert_eq!(
        best.kernels_unchecked(),
        best.info.backend == "Vulkan",
        "{:?}",
        best.info
    );
    // Hardware first: the software rasterizer only when there is nothing else.
    if best.info.is_software {
        assert!(all.iter().all(|a| a.is_software), "{all:?}");
    }
    // Auto never picks a software rasterizer: the CPU backend is faster than one.
    match choose_adapter(&DeviceChoice::Auto).unwrap() {
        Some(ctx) => assert!(!ctx.info.is_software, "{:?}", ctx.info),
        None => assert!(
            all.iter()
                .all(|a| a.is_software || a.device_type == "Other"),
            "{all:?}"
        ),
    }
    drop(best);

    let last = all.last().unwrap();
    let by_index = choose_adapter(&DeviceChoice::Index(last.index))
        .unwrap()
        .unwrap();
    assert_eq!(&by_index.info, last);
    drop(by_index);
    let by_name = choose_adapter(&DeviceChoice::Name(all[0].name.to_uppercase()))
        .unwrap()
        .unwrap();
    assert_eq!(by_name.info.name, all[0].name);
    drop(by_name);

    let err = choose_adapter(&DeviceChoice::Index(9999))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no adapter 9999") && err.contains(&all[0].name),
        "{err}"
    );
    let err = choose_adapter(&DeviceChoice::Name("no-such-adapter-xyz".into()))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no-such-adapter-xyz") && err.contains(&all[0].name),
        "{err}"
    );
}
