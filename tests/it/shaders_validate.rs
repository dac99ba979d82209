//! Every WGSL module in shaders/ parses and validates with naga, translates to SPIR-V,
//! MSL and HLSL for each pipeline the executor builds (override constants resolved as
//! the pipeline resolves them), in both storage precisions (`Precision`: the `Store`
//! alias f32, and f16), and stays within WebGPU's default limits: at most 8
//! storage buffers and 16 KiB of workgroup memory per entry point.

use naga::back::PipelineConstants;
use naga::valid::{Capabilities, ValidationFlags, Validator};
use riskgrad::engine::gpu::context::NEED_WORKGROUP_BYTES;
use riskgrad::engine::gpu::shaders::{
    gemm_variant_modules, Pipe, PipeKey, PipelineSpec, Precision, ShaderModule, BENCH_MODULES,
    COMMON, CONV_VARIANTS, MATMUL_VARIANTS, MODULES,
};

const MAX_STORAGE_BUFFERS: usize = 8;
const MAX_WORKGROUP_BYTES: u32 = 16384;

/// An engine module as the executor compiles it in `precision` (f16 with the
/// capability it needs).
fn parse(m: &ShaderModule, precision: Precision) -> (naga::Module, naga::valid::ModuleInfo) {
    let mut caps = match precision {
        Precision::F32 => Capabilities::default(),
        Precision::F16 => Capabilities::SHADER_FLOAT16,
    };
    if m.needs_subgroups {
        caps |= Capabilities::SUBGROUP;
    }
    parse_text(m.file, &m.wgsl(precision), caps)
}

/// A module that uses subgroup operations says so (`needs_subgroups`, so that it is
/// offered only on devices that have them), and one that does not, does not: naga
/// refuses a module that uses them without the capability.
#[test]
fn a_module_uses_subgroups_exactly_when_it_says_so() {
    let mut said = 0;
    for m in MODULES.iter().chain(gemm_variant_modules()) {
        let text = m.wgsl(Precision::F32);
        let module = naga::front::wgsl::parse_str(&text)
            .unwrap_or_else(|e| panic!("{}: {}", m.file, e.emit_to_string(&text)));
        let without = Validator::new(ValidationFlags::all(), Capabilities::default())
            .validate(&module)
            .is_ok();
        assert_eq!(without, !m.needs_subgroups, "{}", m.file);
        said += m.needs_subgroups as usize;
    }
    assert!(said > 0, "a variant uses subgroups");
}

fn parse_text(
    file: &str,
    text: &str,
    caps: Capabilities,
) -> (naga::Module, naga::valid::ModuleInfo) {
    let module = naga::front::wgsl::parse_str(text)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(text)));
    let info = Validator::new(ValidationFlags::all(), caps)
        .validate(&module)
        .unwrap_or_else(|e| panic!("{file}: {}", e.emit_to_string(text)));
    (module, info)
}

#[test]
fn every_shader_file_is_compiled() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/shaders");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .expect("shaders/ exists")
        .map(|e| {
            e.expect("readable entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    files.sort();
    assert!(!files.is_empty());
    let modules: Vec<&ShaderModule> = MODULES
        .iter()
        .chain(&BENCH_MODULES)
        .chain(gemm_variant_modules())
        .collect();
    for f in &files {
        assert!(f.ends_with(".wgsl"), "unexpected file in shaders/: {f}");
        let on_disk = std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
        match modules.iter().find(|m| m.file == f) {
            // A module's own file ends its source.
            Some(m) => assert!(
                m.source.ends_with(on_disk.as_str()),
                "{f}: the compiled source is not the file's text"
            ),
            // A shared part (common.wgsl, matmul_common.wgsl) is inside some module.
            None => assert!(
                modules.iter().any(|m| m.source.contains(on_disk.as_str())),
                "shaders/{f} is in no module of riskgrad::engine::gpu::shaders (MODULES, BENCH_MODULES, the GEMM variants), so it is never compiled"
            ),
        }
    }
    // The helpers alone are valid WGSL too.
    parse(&COMMON, Precision::F32);
}

/// Every pipeline the executor can build: each table entry, a GEMM kernel's in every
/// variant.
fn every_pipeline() -> Vec<(&'static PipelineSpec, PipeKey)> {
    PipeKey::all().map(|key| (key.pipe.spec(), key)).collect()
}

#[test]
fn pipe_names_are_unique() {
    let mut names: Vec<_> = Pipe::all().iter().map(|p| p.name()).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "two pipes share a name: {names:?}");
}

#[test]
fn every_pipeline_validates_translates_and_fits_default_limits() {
    let all = every_pipeline();
    assert_eq!(
        all.len(),
        Pipe::all().len() + 4 * (MATMUL_VARIANTS.len() - 1) + 3 * (CONV_VARIANTS.len() - 1)
    );
    for ((spec, key), precision) in all
        .into_iter()
        .flat_map(|p| [Precision::F32, Precision::F16].map(|precision| (p, precision)))
    {
        let m = key.module();
        let (module, info) = parse(&m, precision);
        let what = format!(
            "{}:{} variant {} {:?} {precision:?}",
            m.file, spec.entry, key.variant, spec.constants
        );
        let mut constants = PipelineConstants::default();
        for &(k, v) in spec.constants {
            constants.insert(k.to_string(), v);
        }
        let stage = naga::ShaderStage::Compute;
        let (module, info) = naga::back::pipeline_constants::process_overrides(
            &module,
            &info,
            Some((stage, spec.entry)),
            &constants,
        )
        .unwrap_or_else(|e| panic!("{what}: overrides: {e}"));
        let (module, info) = (module.into_owned(), info.into_owned());

        let ep = module
            .entry_points
            .iter()
            .position(|e| e.name == spec.entry)
            .unwrap_or_else(|| panic!("{what}: no such entry point"));
        let uses = info.get_entry_point(ep);
        let mut storage = 0;
        let mut workgroup_bytes = 0;
        for (handle, var) in module.global_variables.iter() {
            if uses[handle].is_empty() {
                continue;
            }
            match var.space {
                naga::AddressSpace::Storage { .. } => storage += 1,
                naga::AddressSpace::WorkGroup => {
                    workgroup_bytes += module.types[var.ty].inner.size(module.to_ctx())
                }
                _ => {}
            }
            // The executor's bind group layout must agree with the shader's bindings.
            if let (Some(b), naga::AddressSpace::Storage { access }) = (&var.binding, var.space) {
                let declared = spec
                    .layout
                    .storage_bindings()
                    .iter()
                    .find(|&&(n, _)| n == b.binding);
                let writes = access.contains(naga::StorageAccess::STORE);
                let want = if writes {
                    riskgrad::engine::gpu::shaders::Access::ReadWrite
                } else {
                    riskgrad::engine::gpu::shaders::Access::Read
                };
                assert_eq!(
                    declared.map(|d| d.1),
                    Some(want),
                    "{what}: binding {} vs layout {:?}",
                    b.binding,
                    spec.layout
                );
            }
        }
        assert!(
            storage <= MAX_STORAGE_BUFFERS,
            "{what}: {storage} storage buffers"
        );
        let wg = module.entry_points[ep].workgroup_size;
        // The one variant made not to build on any device (the tuner's test of a
        // variant the driver refuses): its workgroup is past every device's limit.
        if key.variant_name() == Some("unbuildable-for-tests") {
            assert!(
                wg.iter().product::<u32>() > 1024,
                "{what}: workgroup size {wg:?}"
            );
        } else {
            assert!(
                workgroup_bytes <= MAX_WORKGROUP_BYTES,
                "{what}: {workgroup_bytes} bytes of workgroup memory"
            );
            // What a device is required to offer covers every kernel.
            assert!(
                workgroup_bytes <= NEED_WORKGROUP_BYTES,
                "{what}: {workgroup_bytes} bytes of workgroup memory, over the \
                 {NEED_WORKGROUP_BYTES} a device is required to offer"
            );
            assert!(
                wg.iter().product::<u32>() <= 256 && wg[0] <= 256 && wg[1] <= 256 && wg[2] <= 64,
                "{what}: workgroup size {wg:?}"
            );
        }

        let spv_opts = naga::back::spv::Options::default();
        let spv_pipe = naga::back::spv::PipelineOptions {
            shader_stage: stage,
            entry_point: spec.entry.to_string(),
        };
        naga::back::spv::write_vec(&module, &info, &spv_opts, Some(&spv_pipe))
            .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));

        let msl_opts = naga::back::msl::Options {
            lang_version: (2, 0),
            ..Default::default()
        };
        let msl_pipe = naga::back::msl::PipelineOptions {
            entry_point: Some((stage, spec.entry.to_string())),
            ..Default::default()
        };
        naga::back::msl::write_string(&module, &info, &msl_opts, &msl_pipe)
            .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));

        // f16 needs shader model 6.2.
        let hlsl_opts = naga::back::hlsl::Options {
            shader_model: naga::back::hlsl::ShaderModel::V6_2,
            ..Default::default()
        };
        let hlsl_pipe = naga::back::hlsl::PipelineOptions {
            entry_point: Some((stage, spec.entry.to_string())),
        };
        let mut hlsl = String::new();
        naga::back::hlsl::Writer::new(&mut hlsl, &hlsl_opts, &hlsl_pipe)
            .write(&module, &info, None)
            .unwrap_or_else(|e| panic!("{what}: HLSL: {e}"));
    }
}

/// The bench's peak kernels (built outside the engine's pipeline table) validate and
/// translate for every backend too; the f16 module with the f16 capability it needs.
#[test]
fn the_peak_kernels_validate_and_translate() {
    for (m, entries) in BENCH_MODULES.iter().zip([
        &["fma_f32", "copy_words", "read_words"][..],
        &["fma_f16"][..],
    ]) {
        let (module, info) = parse_text(m.file, m.source, Capabilities::SHADER_FLOAT16);
        for &entry in entries {
            let what = format!("{}:{entry}", m.file);
            assert!(
                module.entry_points.iter().any(|e| e.name == entry),
                "{what}: no such entry point"
            );
            let stage = naga::ShaderStage::Compute;
            naga::back::spv::write_vec(
                &module,
                &info,
                &naga::back::spv::Options::default(),
                Some(&naga::back::spv::PipelineOptions {
                    shader_stage: stage,
                    entry_point: entry.to_string(),
                }),
            )
            .unwrap_or_else(|e| panic!("{what}: SPIR-V: {e}"));
            let msl_opts = naga::back::msl::Options {
                lang_version: (2, 1),
                ..Default::default()
            };
            let msl_pipe = naga::back::msl::PipelineOptions {
                entry_point: Some((stage, entry.to_string())),
                ..Default::default()
            };
            naga::back::msl::write_string(&module, &info, &msl_opts, &msl_pipe)
                .unwrap_or_else(|e| panic!("{what}: MSL: {e}"));
        }
    }
    // The f32 module needs no capability beyond the defaults.
    let f32_module = &BENCH_MODULES[0];
    parse_text(f32_module.file, f32_module.source, Capabilities::default());
}
