//! The GEMM kernels' variants (matmul and convolution) and their autotuner
//! (src/engine/gpu/tune.rs): every variant against the CPU kernel (and bit for bit
//! against the default variant) at awkward sizes, outputs poisoned first; convolution
//! products tuned and cached beside the matmuls, and a CNN trained to the same bytes
//! whichever convolution variant runs; a deliberately wrong variant dropped and never chosen;
//! the choice cache read, rewritten when corrupt, and survived when unwritable; a
//! budget that stops a shape part-way and a later run that completes it; and the
//! same training bytes with tuning off and with every shape re-tuned.
//!
//! These tests open a device of their own (they change its tuning setting, which the
//! shared one of `common::context` must not see), one test at a time (`take_turn`).

use crate::common;
use common::{assert_matches_cpu, rng_for, take_turn, values, TempFile};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::shaders::{CONV_VARIANTS, DEFAULT_VARIANT, MATMUL_VARIANTS};
use riskgrad::engine::gpu::tune::{GemmShape, TuneMode, Tuning, CONFIRM_WITHIN};
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::engine::graph::{backward, Act, ConvGeom, Graph, NodeId, Op};
use riskgrad::engine::plan::{compile, Plan, PlanRequest};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

macro_rules! device_or_skip {
    () => {{
        let turn = take_turn();
        match common::tuning_context() {
            Some(ctx) => (ctx, turn),
            None => {
                eprintln!("RISKGRAD_SKIP_GPU_TESTS=1: skipped");
                return;
            }
        }
    }};
}

/// A matmul plan with random inputs: `out = act(op(a) op(b) + bias)`.
struct Case {
    plan: Plan,
    out: riskgrad::engine::graph::NodeId,
    inputs: Vec<(String, Vec<f32>)>,
    what: String,
}

/// `bias`: 0 none, 1 a row, 2 a matrix.
fn case(
    (m, n, k): (usize, usize, usize),
    (ta, tb): (bool, bool),
    bias: u8,
    act: Act,
    seed: &str,
) -> Case {
    case_at((m, n, k), (ta, tb), bias, act, seed, 0)
}

/// `case` with a and b views starting `offset` words into inputs that long more.
fn case_at(
    (m, n, k): (usize, usize, usize),
    (ta, tb): (bool, bool),
    bias: u8,
    act: Act,
    seed: &str,
    offset: usize,
) -> Case {
    let mut rng = rng_for(seed);
    let mut g = Graph::new();
    let mut operand = |name: &str, shape: [usize; 2]| {
        let whole = g.input(name, &[offset + shape[0] * shape[1]]).unwrap();
        g.view(whole, offset, &shape).unwrap()
    };
    let a = operand("a", if ta { [k, m] } else { [m, k] });
    let b = operand("b", if tb { [n, k] } else { [k, n] });
    let bias_shape = match bias {
        0 => None,
        1 => Some(vec![n]),
        _ => Some(vec![m, n]),
    };
    let bias_node = bias_shape.as_ref().map(|s| g.input("bias", s).unwrap());
    let out = g.matmul_ex(a, b, bias_node, ta, tb, act).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![out],
            ..Default::default()
        },
    )
    .unwrap();
    let inputs = plan
        .inputs
        .iter()
        .map(|i| (i.name.clone(), values(&mut rng, i.len)))
        .collect();
    Case {
        plan,
        out,
        inputs,
        what: format!(
            "m={m} n={n} k={k} ta={ta} tb={tb} {act:?} bias {bias_shape:?} operands at word {offset}"
        ),
    }
}

/// Runs `c` on a fresh poisoned executor of `ctx` (under its current tuning).
fn run_gpu(ctx: &Arc<GpuContext>, c: &Case) -> Vec<f32> {
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let h = gpu.load(c.plan.clone()).unwrap();
    for (name, data) in &c.inputs {
        gpu.write(name, data).unwrap();
    }
    gpu.run_from(h, 0, 1).unwrap();
    gpu.read_node(h, c.out).unwrap()
}

fn run_cpu(c: &Case) -> Vec<f32> {
    let mut cpu = CpuExecutor::new();
    let h = cpu.load(c.plan.clone()).unwrap();
    for (name, data) in &c.inputs {
        cpu.write(name, data).unwrap();
    }
    cpu.run_from(h, 0, 1).unwrap();
    cpu.read_node(h, c.out).unwrap()
}

fn forced(variant: usize) -> Tuning {
    Tuning {
        force_variant: Some(variant),
        ..Default::default()
    }
}

#[test]
fn every_variant_matches_the_cpu_and_the_default_bit_for_bit() {
    let (ctx, _turn) = device_or_skip!();
    // m, n, k not multiples of any tile; a single row and column; k past one BK step;
    // then multiples of 4 with whole 128 x 64 tiles and 16 steps of k and a ragged edge
    // after them (the wide kernels' vec4 staging inside, one value at a time at the
    // edge), operands at a word not on a vec4, and m not a multiple of 4.
    let shapes = [
        (1, 1, 1, 0),
        (7, 33, 65, 0),
        (33, 7, 17, 0),
        (65, 37, 7, 0),
        (70, 1, 33, 0),
        (1, 70, 58, 0),
        (132, 68, 36, 0),
        (132, 68, 36, 1),
        (130, 72, 20, 0),
        (9, 13, 301, 0),
    ];
    let acts = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];
    let mut i = 0;
    for &(m, n, k, offset) in &shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            let c = case_at(
                (m, n, k),
                (ta, tb),
                (i % 3) as u8,
                acts[i % 4],
                "variants",
                offset,
            );
            i += 1;
            let cpu = run_cpu(&c);
            ctx.set_tuning(forced(DEFAULT_VARIANT));
            let default = run_gpu(&ctx, &c);
            assert_matches_cpu(&format!("default variant {}", c.what), &default, &cpu);
            for (v, variant) in MATMUL_VARIANTS.iter().enumerate() {
                if variant.test_only || v == DEFAULT_VARIANT {
                    continue;
                }
                ctx.set_tuning(forced(v));
                let got = run_gpu(&ctx, &c);
                let what = format!("variant {} {}", variant.name, c.what);
                assert_matches_cpu(&what, &got, &cpu);
                if variant.split_k {
                    continue; // another order of the sum: the CPU's values, not the default's bits
                }
                // Each other sums over k in the default's order: the same bits.
                assert_eq!(
                    common::first_difference(&got, &default),
                    None,
                    "{what}: not the default variant's bits"
                );
            }
        }
    }
    ctx.set_tuning(Tuning::default());
}

/// The subgroup variant runs where the device has subgroup operations (lavapipe does:
/// the device asks for them wherever the adapter has them), summing in another order
/// than the default, so to other bits on a long sum; where it has none, a launch forced
/// to it runs the default, to the default's bits.
#[test]
fn the_subgroup_variant_runs_where_subgroups_are_and_the_default_elsewhere() {
    let (ctx, _turn) = device_or_skip!();
    let has = ctx.device.features().contains(wgpu::Features::SUBGROUP);
    assert_eq!(
        has, ctx.info.subgroups,
        "the device has what its adapter offers"
    );
    let subgroup = MATMUL_VARIANTS
        .iter()
        .position(|v| v.needs_subgroups())
        .unwrap();
    // A weight gradient's shape: a long sum (the batch) into few outputs.
    let c = case((37, 21, 517), (true, false), 0, Act::Identity, "subgroups");
    let cpu = run_cpu(&c);
    ctx.set_tuning(forced(DEFAULT_VARIANT));
    let default = run_gpu(&ctx, &c);
    ctx.set_tuning(forced(subgroup));
    let got = run_gpu(&ctx, &c);
    ctx.set_tuning(Tuning::default());
    assert_matches_cpu("the subgroup variant", &got, &cpu);
    let same_bits = common::first_difference(&got, &default).is_none();
    assert_eq!(
        same_bits, !has,
        "with subgroups {has}: the subgroup variant's bits are the default's: {same_bits}"
    );
}

/// A convolution (`x [n,c,h,w]`, `w [o,c,kh,kw]`, bias, `act`), a loss weighting its
/// output with a random input, and the gradients w.r.t. x and w: a plan keeping the
/// three products' outputs.
fn conv_case(
    x: [usize; 4],
    w: [usize; 4],
    geom: ([usize; 2], [usize; 2], [usize; 2]),
    act: Act,
    seed: &str,
) -> (Case, Vec<NodeId>) {
    let mut rng = rng_for(seed);
    let mut g = Graph::new();
    let xn = g.input("x", &x).unwrap();
    let wn = g.input("w", &w).unwrap();
    let bias = g.input("bias", &[w[0]]).unwrap();
    let (stride, padding, dilation) = geom;
    let geom = ConvGeom {
        stride,
        padding,
        dilation,
    };
    let out = g.conv2d(xn, wn, Some(bias), geom, act).unwrap();
    let shape = g.shape(out).to_vec();
    let weights = g.input("loss_weights", &shape).unwrap();
    let weighted = g.mul(out, weights).unwrap();
    let loss = g.mean(weighted).unwrap();
    let grads = backward(&mut g, loss, &[xn, wn]).unwrap();
    let mut keep = vec![out, grads.of(xn).unwrap(), grads.of(wn).unwrap()];
    // The weight gradient's parts, where it is summed in several.
    keep.extend(
        (0..g.nodes.len()).filter(
            |&i| matches!(g.nodes[i].op, Op::Conv(op) if op.name() == "conv2d_grad_weight"),
        ),
    );
    keep.sort();
    keep.dedup();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: keep.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let inputs = plan
        .inputs
        .iter()
        .map(|i| (i.name.clone(), values(&mut rng, i.len)))
        .collect();
    let what = format!("conv x {x:?} w {w:?} {geom:?} {act:?}");
    (
        Case {
            plan,
            out,
            inputs,
            what,
        },
        keep,
    )
}

/// Runs a convolution case on a fresh poisoned executor of `ctx`: every kept node.
fn run_conv(ctx: Option<&Arc<GpuContext>>, c: &Case, keep: &[NodeId]) -> Vec<Vec<f32>> {
    let mut exec: Box<dyn Executor> = match ctx {
        Some(ctx) => {
            let mut gpu = GpuExecutor::new(ctx.clone());
            gpu.set_poison(true);
            Box::new(gpu)
        }
        None => Box::new(CpuExecutor::new()),
    };
    let h = exec.load(c.plan.clone()).unwrap();
    for (name, data) in &c.inputs {
        exec.write(name, data).unwrap();
    }
    exec.run_from(h, 0, 1).unwrap();
    keep.iter()
        .map(|&k| exec.read_node(h, k).unwrap())
        .collect()
}

#[test]
fn every_convolution_variant_matches_the_cpu_and_the_default_bit_for_bit() {
    let (ctx, _turn) = device_or_skip!();
    let cases = [
        // A credit CNN's first layer: 1-D over 6 steps, padding 1.
        conv_case(
            [9, 3, 1, 6],
            [32, 3, 1, 3],
            ([1, 1], [0, 1], [1, 1]),
            Act::Relu,
            "conv a",
        ),
        // Channels and columns not multiples of any tile; stride, dilation, padding.
        conv_case(
            [2, 5, 9, 11],
            [17, 5, 3, 2],
            ([2, 1], [2, 1], [2, 3]),
            Act::Tanh,
            "conv b",
        ),
        // Enough images and positions that the weight gradient is summed in parts.
        conv_case(
            [7, 2, 13, 23],
            [3, 2, 3, 3],
            ([1, 1], [1, 1], [1, 1]),
            Act::Identity,
            "conv c",
        ),
    ];
    let mut split_parts = false;
    for (c, keep) in &cases {
        let cpu = run_conv(None, c, keep);
        ctx.set_tuning(forced(DEFAULT_VARIANT));
        let default = run_conv(Some(&ctx), c, keep);
        for (i, (got, want)) in default.iter().zip(&cpu).enumerate() {
            assert_matches_cpu(&format!("default variant {} node {i}", c.what), got, want);
        }
        split_parts |= keep.len() > 3;
        for (v, variant) in CONV_VARIANTS.iter().enumerate().skip(1) {
            ctx.set_tuning(forced(v));
            let got = run_conv(Some(&ctx), c, keep);
            for (i, (got, default)) in got.iter().zip(&default).enumerate() {
                let what = format!("variant {} {} node {i}", variant.name, c.what);
                assert_matches_cpu(&what, got, &cpu[i]);
                assert_eq!(
                    common::first_difference(got, default),
                    None,
                    "{what}: not the default variant's bits"
                );
            }
        }
    }
    assert!(split_parts, "no case summed its weight gradient in parts");
    ctx.set_tuning(Tuning::default());
}

#[test]
fn convolutions_are_tuned_and_cached_beside_the_matmuls() {
    let (ctx, _turn) = device_or_skip!();
    let file = TempFile::new("gpu-tune.json", b"");
    std::fs::remove_file(&file.0).unwrap();
    let (c, keep) = conv_case(
        [4, 3, 1, 6],
        [8, 3, 1, 3],
        ([1, 1], [0, 1], [1, 1]),
        Act::Relu,
        "conv tuned",
    );
    let cpu = run_conv(None, &c, &keep);
    ctx.set_tuning(unlimited(&file.0));
    for (got, want) in run_conv(Some(&ctx), &c, &keep).iter().zip(&cpu) {
        assert_matches_cpu("tuned convolution", got, want);
    }
    let convs: Vec<_> = ctx
        .tune_choices()
        .into_iter()
        .filter(|c| matches!(c.shape, GemmShape::Conv(_)))
        .collect();
    // Forward, input gradient, weight gradient: each measured with every variant.
    assert_eq!(convs.len(), 3, "{convs:?}");
    for choice in &convs {
        assert_eq!(choice.times.len(), CONV_VARIANTS.len(), "{choice:?}");
        assert!(
            choice.times.iter().all(|t| t.exact && t.dropped.is_none()),
            "{choice:?}"
        );
    }
    let text = std::fs::read_to_string(&file.0).unwrap();
    for choice in &convs {
        assert!(text.contains(&choice.shape.key()), "{text}");
    }
    // A second process reads them.
    ctx.set_tuning(unlimited(&file.0));
    run_conv(Some(&ctx), &c, &keep);
    assert!(
        ctx.tune_choices().iter().all(|c| c.times.is_empty()),
        "read from the cache"
    );
    ctx.set_tuning(Tuning::default());
}

#[test]
fn a_cnn_trains_to_the_same_bytes_whichever_convolution_variant_runs() {
    let (ctx, _turn) = device_or_skip!();
    let (train, val, model) = common::bundled_cnn(0);
    let mut trained = Vec::new();
    for (v, variant) in CONV_VARIANTS.iter().enumerate() {
        ctx.set_tuning(forced(v));
        let mut exec = GpuExecutor::new(ctx.clone());
        let config = common::adam_config(5, 1);
        let mut trainer =
            riskgrad::train::Trainer::new(&mut exec, &model, &train, &val, config).unwrap();
        trainer.step_once().unwrap();
        trainer.time_steps(12).unwrap();
        let variants = exec.gemm_variants(0);
        assert!(
            variants.contains(&variant.name),
            "{} did not run: {variants:?}",
            variant.name
        );
        trained.push(exec.read_params().unwrap());
    }
    for (v, params) in trained.iter().enumerate().skip(1) {
        assert_eq!(
            common::first_difference(params, &trained[0]),
            None,
            "{}: other weights",
            CONV_VARIANTS[v].name
        );
    }
    ctx.set_tuning(Tuning::default());
}

#[test]
fn bench_tune_shows_the_convolution_variants_of_the_models_asked_for() {
    let (_ctx, _turn) = device_or_skip!();
    let o = common::riskgrad(&[
        "bench", "tune", "--device", "gpu", "--sizes", "8", "--models", "cnn",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(out.contains("convolution product"), "{out}");
    for product in ["conv2d n256", "conv2d_grad_input", "conv2d_grad_weight"] {
        assert!(out.contains(product), "no {product}: {out}");
    }
    for variant in CONV_VARIANTS
        .iter()
        .chain(&MATMUL_VARIANTS)
        .filter(|v| !v.test_only)
    {
        assert!(out.contains(variant.name), "no {}: {out}", variant.name);
    }
    assert!(out.contains("8x8x8 NN"), "the square size: {out}");
    assert!(
        out.contains("of the cnn tuned") && !out.contains("mlp"),
        "{out}"
    );
    let bad = common::riskgrad(&["bench", "tune", "--models", "xgboost"]);
    assert_eq!(bad.status.code(), Some(2), "{}", common::stderr(&bad));
    assert!(
        common::stderr(&bad).contains("--models"),
        "{}",
        common::stderr(&bad)
    );
}

/// The test-only variants: one that disagrees, one no device builds.
fn test_variants() -> [usize; 2] {
    ["broken-for-tests", "unbuildable-for-tests"].map(|name| {
        let v = MATMUL_VARIANTS.iter().position(|v| v.name == name).unwrap();
        assert!(MATMUL_VARIANTS[v].test_only);
        v
    })
}

#[test]
fn the_tuner_drops_a_wrong_or_unbuildable_variant_and_never_chooses_it() {
    let (ctx, _turn) = device_or_skip!();
    static NOTES: AtomicUsize = AtomicUsize::new(0);
    fn note(line: &str) {
        // Each is named, with why: its output, or the driver's refusal.
        let wrong = line.contains("variant broken-for-tests dropped")
            && line.contains("the default variant's is");
        let unbuildable = line.contains("variant unbuildable-for-tests dropped")
            && line.contains("it does not build or run");
        assert!(wrong || unbuildable, "{line}");
        NOTES.fetch_add(1, Ordering::Relaxed);
    }
    ctx.set_tuning(Tuning {
        mode: TuneMode::Full,
        note: Some(note),
        include_test_variants: true,
        ..Default::default()
    });
    let bad = test_variants();
    let cases = [
        case((37, 70, 19), (false, true), 1, Act::Relu, "tuner a"),
        // Skinny (k 166 into 45 outputs): split-K is a candidate too.
        case((5, 9, 166), (true, false), 0, Act::Identity, "tuner b"),
    ];
    for c in &cases {
        let got = run_gpu(&ctx, c);
        assert_matches_cpu(&format!("tuned {}", c.what), &got, &run_cpu(c));
    }
    let choices = ctx.tune_choices();
    assert_eq!(choices.len(), cases.len());
    for c in &choices {
        for broken in bad {
            assert_ne!(c.variant, broken, "{}", c.shape.key());
            let t = c.times.iter().find(|t| t.variant == broken).unwrap();
            assert!(t.dropped.is_some() && t.seconds.is_none(), "{t:?}");
        }
        // Every other candidate agreed and was timed, split-K on the skinny one alone.
        let timed: Vec<usize> = c
            .times
            .iter()
            .filter(|t| t.seconds.is_some())
            .map(|t| t.variant)
            .collect();
        let want = candidates(&c.shape);
        let mut got = timed.clone();
        got.sort();
        assert_eq!(got, want, "{}", c.shape.key());
        let split_k_timed = timed.iter().any(|&v| MATMUL_VARIANTS[v].split_k);
        assert_eq!(split_k_timed, c.shape.skinny(), "{}", c.shape.key());
        // The confirmation round times two or three close ones again, or none where
        // no other came close to the fastest.
        let confirmed = c.times.iter().filter(|t| t.confirmed).count();
        assert!(matches!(confirmed, 0 | 2 | 3), "{c:?}");
        if confirmed == 0 {
            let mut seconds: Vec<f64> = c.times.iter().filter_map(|t| t.seconds).collect();
            seconds.sort_by(f64::total_cmp);
            assert!(seconds[1] > seconds[0] * CONFIRM_WITHIN, "{c:?}");
        }
    }
    assert_eq!(NOTES.load(Ordering::Relaxed), bad.len() * cases.len());
    ctx.set_tuning(Tuning::default());
}

fn write(path: &std::path::Path, bytes: &[u8]) -> riskgrad::Result<()> {
    riskgrad::files::write_atomically(path, bytes)
}

fn cached(path: &std::path::Path, note: Option<fn(&str)>) -> Tuning {
    Tuning::new(
        TuneMode::Cached,
        Some(path.to_path_buf()),
        Some(write),
        note,
    )
}

#[test]
fn choices_are_cached_on_disk_and_a_corrupt_cache_is_measured_again() {
    let (ctx, _turn) = device_or_skip!();
    let file = TempFile::new("gpu-tune.json", b"");
    std::fs::remove_file(&file.0).unwrap();
    let c = case((19, 23, 41), (false, false), 1, Act::Tanh, "cache");
    let cpu = run_cpu(&c);

    ctx.set_tuning(unlimited(&file.0));
    assert_matches_cpu("first run", &run_gpu(&ctx, &c), &cpu);
    let first = ctx.tune_choices();
    assert_eq!(first.len(), 1);
    assert!(!first[0].times.is_empty(), "the first run measures");
    let text = std::fs::read_to_string(&file.0).unwrap();
    assert!(text.contains(&first[0].shape.key()), "{text}");
    assert!(text.contains(&ctx.info.name), "keyed by adapter: {text}");

    // A second run (a fresh setting forgets the process's choices) reads the file.
    ctx.set_tuning(unlimited(&file.0));
    assert_matches_cpu("second run", &run_gpu(&ctx, &c), &cpu);
    let second = ctx.tune_choices();
    assert!(
        second[0].times.is_empty(),
        "read from the cache, not measured"
    );
    assert_eq!(second[0].variant, first[0].variant);

    // `full` ignores the cache.
    ctx.set_tuning(Tuning::new(
        TuneMode::Full,
        Some(file.0.clone()),
        Some(write),
        None,
    ));
    run_gpu(&ctx, &c);
    assert!(!ctx.tune_choices()[0].times.is_empty(), "full re-measures");

    // A corrupt file is no hit: measured again, and the file rewritten whole.
    std::fs::write(&file.0, b"{ not json").unwrap();
    ctx.set_tuning(unlimited(&file.0));
    assert_matches_cpu("after corruption", &run_gpu(&ctx, &c), &cpu);
    assert!(!ctx.tune_choices()[0].times.is_empty());
    let text = std::fs::read_to_string(&file.0).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        "{text}"
    );
    ctx.set_tuning(Tuning::default());
}

/// `cached` with no budget limit.
fn unlimited(path: &std::path::Path) -> Tuning {
    Tuning {
        budget_seconds: None,
        ..cached(path, None)
    }
}

/// The GEMM shapes' entries of the cache file at `path` (not the flat kernels' widths,
/// which a device that decides them in `Full` or `Cached` stores beside them).
fn cache_entries(path: &std::path::Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let entries = file["entries"].as_array().unwrap().iter();
    let is_width = |e: &serde_json::Value| {
        let key = e["key"].as_str().unwrap();
        key.ends_with("| flat workgroup width") || key.ends_with("| sum workgroup width")
    };
    entries.filter(|e| !is_width(e)).cloned().collect()
}

/// The variants the tuner measures on `shape`: all but the test-only one, and split-K
/// only on a skinny product.
fn candidates(shape: &GemmShape) -> Vec<usize> {
    (0..MATMUL_VARIANTS.len())
        .filter(|&v| !MATMUL_VARIANTS[v].test_only)
        .filter(|&v| !MATMUL_VARIANTS[v].split_k || shape.skinny())
        .collect()
}

#[test]
fn a_spent_budget_stops_a_shape_after_the_default_and_a_later_run_completes_it() {
    let (ctx, _turn) = device_or_skip!();
    let file = TempFile::new("gpu-tune.json", b"");
    std::fs::remove_file(&file.0).unwrap();
    let c = case((21, 18, 37), (true, false), 1, Act::Relu, "partial");
    let other = case(
        (12, 29, 11),
        (false, false),
        0,
        Act::Identity,
        "partial other",
    );

    // A budget of 0 is spent as soon as the first shape's default (the reference,
    // always run) has run: that shape keeps the default, untimed, marked partial, and
    // the next shape is not begun.
    ctx.set_tuning(Tuning {
        budget_seconds: Some(0.0),
        ..cached(&file.0, None)
    });
    assert_matches_cpu("partial", &run_gpu(&ctx, &c), &run_cpu(&c));
    assert_matches_cpu("not begun", &run_gpu(&ctx, &other), &run_cpu(&other));
    let first = ctx.tune_choices();
    assert_eq!(first.len(), 1, "only the first shape was begun");
    let measured: Vec<usize> = first[0].times.iter().map(|t| t.variant).collect();
    assert_eq!(measured, [DEFAULT_VARIANT], "the default alone");
    assert_eq!(
        first[0].times[0].seconds, None,
        "nothing to compare it with"
    );
    assert_eq!(first[0].variant, DEFAULT_VARIANT);
    assert!(!first[0].complete);
    let entries = cache_entries(&file.0);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let default_name = MATMUL_VARIANTS[DEFAULT_VARIANT].name;
    assert_eq!(entries[0]["measured"], serde_json::json!([default_name]));

    // A later run with budget measures the rest (the default again, as the reference)
    // and completes the entry.
    ctx.set_tuning(unlimited(&file.0));
    assert_matches_cpu("completed", &run_gpu(&ctx, &c), &run_cpu(&c));
    let second = ctx.tune_choices();
    let mut measured: Vec<usize> = second[0].times.iter().map(|t| t.variant).collect();
    assert_eq!(measured[0], DEFAULT_VARIANT, "the reference first");
    measured.sort();
    assert_eq!(measured, candidates(&second[0].shape), "each variant once");
    assert!(second[0].complete);
    let entries = cache_entries(&file.0);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(entries[0].get("measured").is_none(), "{entries:?}");
    assert_eq!(
        entries[0]["variant"],
        MATMUL_VARIANTS[second[0].variant].name
    );

    // A complete entry is read, never measured again.
    ctx.set_tuning(unlimited(&file.0));
    run_gpu(&ctx, &c);
    let third = ctx.tune_choices();
    assert!(third[0].times.is_empty() && third[0].complete, "{third:?}");
    assert_eq!(third[0].variant, second[0].variant);
    ctx.set_tuning(Tuning::default());
}

#[test]
fn a_cache_file_without_partial_entries_loads_as_complete() {
    let (ctx, _turn) = device_or_skip!();
    let file = TempFile::new("gpu-tune.json", b"");
    let c = case((17, 26, 9), (false, true), 2, Act::Tanh, "old format");
    // The shape's key as the tuner writes it.
    ctx.set_tuning(Tuning::new(
        TuneMode::Full,
        Some(file.0.clone()),
        Some(write),
        None,
    ));
    run_gpu(&ctx, &c);
    let key = cache_entries(&file.0)[0]["key"].clone();
    // The format before entries could be partial: a key and a variant, nothing else.
    // Name a variant the tuner would not pick on its own often, to see it read.
    let variant = MATMUL_VARIANTS.iter().rposition(|v| !v.test_only).unwrap();
    assert!(variant != DEFAULT_VARIANT);
    let old = serde_json::json!({
        "version": 1,
        "entries": [{ "key": key, "variant": MATMUL_VARIANTS[variant].name }],
    });
    std::fs::write(&file.0, old.to_string()).unwrap();
    ctx.set_tuning(unlimited(&file.0));
    assert_matches_cpu("old format", &run_gpu(&ctx, &c), &run_cpu(&c));
    let choices = ctx.tune_choices();
    assert_eq!(choices.len(), 1);
    assert!(
        choices[0].times.is_empty(),
        "read, not measured: {choices:?}"
    );
    assert!(choices[0].complete);
    assert_eq!(choices[0].variant, variant);
    ctx.set_tuning(Tuning::default());
}

#[test]
fn an_unwritable_cache_is_one_note_and_work_goes_on() {
    let (ctx, _turn) = device_or_skip!();
    static NOTES: AtomicUsize = AtomicUsize::new(0);
    fn note(line: &str) {
        assert!(line.contains("cannot be written"), "{line}");
        NOTES.fetch_add(1, Ordering::Relaxed);
    }
    // A directory under a plain file cannot be made.
    let blocker = TempFile::new("not-a-dir", b"x");
    let path = blocker.0.join("gpu-tune.json");
    ctx.set_tuning(Tuning {
        budget_seconds: None,
        ..cached(&path, Some(note))
    });
    for (i, seed) in ["unwritable a", "unwritable b"].iter().enumerate() {
        let c = case((9 + i, 13, 29), (false, true), 2, Act::Sigmoid, seed);
        assert_matches_cpu(&c.what, &run_gpu(&ctx, &c), &run_cpu(&c));
    }
    assert_eq!(ctx.tune_choices().len(), 2);
    assert_eq!(NOTES.load(Ordering::Relaxed), 1, "one note per process");
    ctx.set_tuning(Tuning::default());
}

#[test]
fn training_gives_the_same_bytes_with_tuning_off_and_full() {
    let (ctx, _turn) = device_or_skip!();
    let train = |tuning: Tuning| {
        ctx.set_tuning(tuning);
        let mut exec = GpuExecutor::new(ctx.clone());
        let reports = common::train_default_mlp(&mut exec, 1, 7);
        (exec.read_params().unwrap(), reports[0].train_loss)
    };
    let (off, off_loss) = train(Tuning::default());
    let (full, full_loss) = train(Tuning {
        mode: TuneMode::Full,
        ..Default::default()
    });
    let choices = ctx.tune_choices();
    assert!(!choices.is_empty(), "the default MLP was tuned");
    // A split-K variant sums in another order, so it is taken only by a clear margin
    // (`SPLIT_K_MARGIN`), which a loaded machine's timings can give it: then the run is
    // the same to rounding (its loss within 1e-3, as the GPU's against the CPU's in
    // gpu_train), and with every other variant the same to the byte.
    let split_k = choices
        .iter()
        .any(|c| c.shape.variants()[c.variant].split_k);
    if split_k {
        assert!(
            (off_loss - full_loss).abs() < 1e-3 * off_loss.abs(),
            "training loss {off_loss} with --tune off, {full_loss} with full (split-K chosen)"
        );
    } else {
        assert_eq!(
            common::first_difference(&off, &full),
            None,
            "trained parameters differ between --tune off and full"
        );
    }
    ctx.set_tuning(Tuning::default());
}

#[test]
fn a_bad_tune_mode_names_the_flag_and_its_values() {
    let out = common::riskgrad(&["train", "--tune", "fast"]);
    assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
    let err = common::stderr(&out);
    assert!(
        err.contains("--tune") && err.contains("off, cached or full"),
        "{err}"
    );
}

#[test]
fn every_command_that_runs_a_gpu_takes_tune() {
    for command in ["train", "predict", "eval", "explain", "monitor", "bench"] {
        // `--help` after the flag: clap has parsed (and checked) `--tune` by then.
        let ok = common::riskgrad(&[command, "--tune", "off", "--help"]);
        let out = String::from_utf8_lossy(&ok.stdout);
        assert_eq!(
            ok.status.code(),
            Some(0),
            "{command}: {}",
            common::stderr(&ok)
        );
        assert!(
            out.contains("--tune")
                && out.contains("how a GPU picks among its matmul and convolution kernel"),
            "{command} --help: {out}"
        );
        let bad = common::riskgrad(&[command, "--tune", "bogus", "--help"]);
        let err = common::stderr(&bad);
        assert_eq!(bad.status.code(), Some(2), "{command}: {err}");
        assert!(
            err.contains("--tune") && err.contains("off, cached or full"),
            "{command}: {err}"
        );
    }
}

/// `riskgrad ARGS` with riskgrad's cache directory at `cache`.
fn riskgrad_cached_in(cache: &std::path::Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .env("RISKGRAD_CACHE_DIR", cache)
        .output()
        .unwrap()
}

#[test]
fn bench_matmul_names_the_variant_that_ran() {
    let (_ctx, _turn) = device_or_skip!();
    let cache = common::TempDir::new("bench-variant");
    for mode in ["off", "full"] {
        let out = cache.join(format!("bench-{mode}.json"));
        let o = riskgrad_cached_in(
            &cache,
            &[
                "bench",
                "--tune",
                mode,
                "matmul",
                "--sizes",
                "40",
                "--devices",
                "gpu",
                "--budget",
                "0.01",
                "--no-peak",
                "--json",
                out.to_str().unwrap(),
            ],
        );
        assert!(o.status.success(), "{}", common::stderr(&o));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        let label = doc["cases"][0]["variant"].clone();
        let want = match mode {
            "off" => MATMUL_VARIANTS[DEFAULT_VARIANT].name.to_string(),
            // What the tuner chose for the shape, as it stored it.
            _ => {
                let entries = cache_entries(&cache.join("gpu-tune.json"));
                let entry = entries
                    .iter()
                    .find(|e| e["key"].as_str().unwrap().contains("40x40x40 NN"))
                    .unwrap_or_else(|| panic!("{entries:?}"));
                entry["variant"].as_str().unwrap().to_string()
            }
        };
        assert_eq!(label, serde_json::json!(want), "--tune {mode}");
    }
}

#[test]
fn each_variant_runs_its_own_shader_module() {
    let (ctx, _turn) = device_or_skip!();
    // The test-only variant differs from the default only in its module (it adds 1 to
    // every output, after the activation): built from any other module, it would agree.
    let broken = test_variants()[0];
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let c = case((11, 14, 23), (ta, tb), 1, Act::Identity, "own module");
        let cpu = run_cpu(&c);
        ctx.set_tuning(forced(broken));
        let got = run_gpu(&ctx, &c);
        let want: Vec<f32> = cpu.iter().map(|x| x + 1.0).collect();
        assert_matches_cpu(&format!("broken variant {}", c.what), &got, &want);
    }
    ctx.set_tuning(Tuning::default());
}

/// `riskgrad train` of a small network on the GPU with `--tune mode`, riskgrad's cache
/// directory at `cache`: the saved weights' bytes and standard error.
fn train_on_gpu(cache: &std::path::Path, out: &std::path::Path, mode: &str) -> (Vec<u8>, String) {
    let data = common::fixture("credit_mixed.csv");
    let o = riskgrad_cached_in(
        cache,
        &[
            "train",
            "--data",
            data.to_str().unwrap(),
            "--device",
            "gpu",
            "--hidden",
            "5",
            "--epochs",
            "2",
            "--early-stop",
            "off",
            "--seed",
            "3",
            "--tune",
            mode,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let err = common::stderr(&o);
    assert!(o.status.success(), "--tune {mode}: {err}");
    (std::fs::read(out.join("model.safetensors")).unwrap(), err)
}

#[test]
fn a_hostile_tune_cache_never_fails_a_training_or_changes_its_weights() {
    let (_ctx, _turn) = device_or_skip!();
    let dir = common::TempDir::new("hostile-tune-cache");
    let (off, _) = train_on_gpu(&dir.join("cache-off"), &dir.join("model-off"), "off");
    // A cache file as the tuner writes it, then cut in half.
    let good = dir.join("cache-good");
    let (full, _) = train_on_gpu(&good, &dir.join("model-full"), "full");
    assert_eq!(full, off, "--tune full changed the weights");
    let written = std::fs::read(good.join("gpu-tune.json")).unwrap();

    let truncated = dir.join("cache-truncated");
    std::fs::create_dir_all(&truncated).unwrap();
    std::fs::write(
        truncated.join("gpu-tune.json"),
        &written[..written.len() / 2],
    )
    .unwrap();
    // gpu-tune.json a directory: unreadable, and cannot be replaced.
    let directory = dir.join("cache-directory");
    std::fs::create_dir_all(directory.join("gpu-tune.json")).unwrap();
    // The cache directory a plain file: nothing under it can be written (a read-only
    // directory would not stop root, whom the tests may run as).
    let blocked = dir.join("cache-blocked");
    std::fs::write(&blocked, b"not a directory").unwrap();

    for (what, cache, notes) in [
        ("truncated", &truncated, 0),
        ("a directory", &directory, 1),
        ("unwritable", &blocked, 1),
    ] {
        let (weights, err) = train_on_gpu(cache, &dir.join(format!("model {what}")), "cached");
        assert_eq!(weights, off, "a cache file {what} changed the weights");
        let said = err.matches("tuning cache").count();
        assert_eq!(said, notes, "a cache file {what}: {err}");
    }
    // The truncated file was rewritten whole; the directory is left as it was.
    let text = std::fs::read_to_string(truncated.join("gpu-tune.json")).unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&text).is_ok(),
        "{text}"
    );
    assert!(directory.join("gpu-tune.json").is_dir());
    let left: Vec<_> = std::fs::read_dir(&directory)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 1, "nothing left beside it: {left:?}");
}
