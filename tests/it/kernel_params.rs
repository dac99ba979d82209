//! The host's kernel parameter structs and shared constants
//! (`riskgrad::engine::gpu::kernel_params`, `Act::code`, `BinaryOp::code`) against the
//! WGSL, read with naga from every module exactly as the executor compiles it. A field
//! out of order, a size that differs or a code that drifted fails here, before any GPU
//! runs.

use riskgrad::engine::gpu::kernel_params::{ALL_PARAMS, SHARED_CONSTANTS};
use riskgrad::engine::gpu::shaders::{
    gemm_variant_modules, Precision, ShaderModule, COMMON, MODULES,
};
use riskgrad::engine::graph::{Act, BinaryOp};
use std::collections::BTreeMap;

/// Every kernel module, each GEMM variant's among them.
fn every_module() -> impl Iterator<Item = &'static ShaderModule> {
    MODULES.iter().chain(gemm_variant_modules())
}

fn parse(m: &ShaderModule) -> naga::Module {
    let text = m.wgsl(Precision::F32);
    naga::front::wgsl::parse_str(&text)
        .unwrap_or_else(|e| panic!("{}: {}", m.file, e.emit_to_string(&text)))
}

/// A WGSL struct as laid out for a uniform buffer: its size and (name, offset) members.
#[derive(Debug, PartialEq)]
struct Layout {
    size: usize,
    fields: Vec<(String, usize)>,
}

/// Every named struct of a module, by name.
fn structs(module: &naga::Module) -> BTreeMap<String, Layout> {
    let mut layouter = naga::proc::Layouter::default();
    layouter
        .update(module.to_ctx())
        .expect("the module's types lay out");
    let mut out = BTreeMap::new();
    for (handle, ty) in module.types.iter() {
        let (Some(name), naga::TypeInner::Struct { members, .. }) = (&ty.name, &ty.inner) else {
            continue;
        };
        let fields = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let size = layouter[handle].size as usize;
        out.insert(name.clone(), Layout { size, fields });
    }
    out
}

/// The name of the struct a module reads as its launch parameters (binding 0).
fn uniform_struct(module: &naga::Module) -> Option<String> {
    module
        .global_variables
        .iter()
        .find(|(_, v)| v.space == naga::AddressSpace::Uniform)
        .and_then(|(_, v)| module.types[v.ty].name.clone())
}

/// Every `u32` constant of a module, by name.
fn u32_constants(module: &naga::Module) -> BTreeMap<String, u32> {
    module
        .constants
        .iter()
        .filter_map(|(_, c)| match module.global_expressions[c.init] {
            naga::Expression::Literal(naga::Literal::U32(v)) => Some((c.name.clone()?, v)),
            _ => None,
        })
        .collect()
}

#[test]
fn every_module_is_compiled_with_the_shared_definitions() {
    for m in every_module() {
        assert!(
            m.source.starts_with(COMMON.source),
            "{}: common.wgsl is not prepended",
            m.file
        );
    }
}

#[test]
fn every_params_struct_has_its_wgsl_twin_field_for_field() {
    let modules: Vec<(&str, naga::Module)> = every_module().map(|m| (m.file, parse(m))).collect();
    for rust in ALL_PARAMS {
        let rust_layout = Layout {
            size: rust.size,
            fields: rust
                .fields
                .iter()
                .map(|f| (f.name.to_string(), f.offset))
                .collect(),
        };
        let mut found = 0;
        for (file, module) in &modules {
            let Some(wgsl) = structs(module).remove(rust.wgsl_name) else {
                continue;
            };
            found += 1;
            assert_eq!(
                rust_layout, wgsl,
                "{} differs from its WGSL twin in {file} (left: Rust, right: WGSL)",
                rust.wgsl_name
            );
        }
        assert!(found > 0, "no shader declares a struct {}", rust.wgsl_name);
    }
    // And the other way round: every module's launch parameters have a Rust twin.
    for (file, module) in &modules {
        let name = uniform_struct(module).unwrap_or_else(|| panic!("{file}: no uniform"));
        assert!(
            ALL_PARAMS.iter().any(|p| p.wgsl_name == name),
            "{file}: the uniform struct {name} has no Rust twin in kernel_params"
        );
    }
}

#[test]
fn shared_constants_and_op_codes_equal_their_rust_twins() {
    let wgsl = u32_constants(&parse(&COMMON));
    let check = |name: &str, rust: u32| match wgsl.get(name) {
        Some(&v) => assert_eq!(v, rust, "{name}: common.wgsl says {v}, Rust {rust}"),
        None => panic!("common.wgsl declares no u32 constant {name}"),
    };
    for &(name, value) in SHARED_CONSTANTS {
        check(name, value);
    }
    for act in Act::ALL {
        check(&format!("ACT_{}", act.name().to_uppercase()), act.code());
    }
    for op in BinaryOp::ALL {
        check(&format!("BINARY_{}", op.name().to_uppercase()), op.code());
    }
    // A code declared in WGSL for a variant the Rust lists lack is an error too.
    for (prefix, count) in [("ACT_", Act::ALL.len()), ("BINARY_", BinaryOp::ALL.len())] {
        let declared: Vec<&String> = wgsl.keys().filter(|k| k.starts_with(prefix)).collect();
        assert_eq!(
            declared.len(),
            count,
            "common.wgsl declares {declared:?}; the Rust list has {count} variants"
        );
    }
    // Distinct codes, or a switch would take one case for another.
    assert_distinct("activation", Act::ALL.map(Act::code));
    assert_distinct("binary op", BinaryOp::ALL.map(BinaryOp::code));
}

fn assert_distinct<const N: usize>(what: &str, codes: [u32; N]) {
    let mut sorted = codes;
    sorted.sort();
    assert!(
        sorted.windows(2).all(|w| w[0] != w[1]),
        "two {what} variants share a code: {codes:?}"
    );
}
