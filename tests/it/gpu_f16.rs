//! f16 storage (DESIGN.md, flow item 8): a context opened in `Precision::F16` stores
//! every tensor as f16 and computes in f32, keeps f32 master parameters for the update
//! and scales the loss gradient. The default MLP trained so on lavapipe stays close to
//! the CPU's f32 run (weights and validation AUC), its saved weights are the f32 master
//! copy, every step form and every matmul variant gives the same bits in f16 too, and
//! an adapter without SHADER_F16 is refused by name.

use crate::common;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::shaders::{Precision, DEFAULT_VARIANT, MATMUL_VARIANTS};
use riskgrad::engine::gpu::tune::{StepForm, Tuning};
use riskgrad::engine::gpu::{list_adapters, pick_adapter, DeviceChoice, GpuContext, GpuExecutor};
use std::sync::{Arc, OnceLock};

/// The f16 context of the tests' adapter (lavapipe has SHADER_F16).
fn f16_context() -> Arc<GpuContext> {
    static CTX: OnceLock<Arc<GpuContext>> = OnceLock::new();
    CTX.get_or_init(|| {
        let (adapter, info) = pick_adapter(&DeviceChoice::Gpu)
            .expect("the GPU tests need a wgpu adapter (Mesa's lavapipe will do)")
            .expect("an adapter");
        Arc::new(
            GpuContext::with_precision(adapter, info, Precision::F16)
                .expect("an f16 context: lavapipe has SHADER_F16"),
        )
    })
    .clone()
}

fn train(exec: &mut dyn Executor, epochs: usize) -> (Vec<f32>, f64) {
    let reports = common::train_default_mlp(exec, epochs, 1);
    let auc = reports.last().unwrap().validation.auc;
    (exec.read_params().unwrap(), auc)
}

#[test]
fn the_default_mlp_trains_in_f16_close_to_the_cpu_in_f32() {
    let _turn = common::take_turn();
    let ctx = f16_context();
    ctx.set_tuning(Tuning::default());
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let (w16, auc16) = train(&mut gpu, 3);
    let (w32, auc32) = train(&mut CpuExecutor::new(), 3);
    assert_eq!(w16.len(), w32.len());
    // f16 rounds every stored activation and gradient (2^-11 relative), so the weights
    // drift apart over 3 epochs of Adam, but not far.
    let worst = w16
        .iter()
        .zip(&w32)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(worst < 0.05, "largest weight difference {worst}");
    assert!(w16.iter().all(|w| w.is_finite()));
    // The saved weights are the f32 master copy, not f16 values: most are not
    // representable in f16.
    let off_f16 = w16
        .iter()
        .filter(|&&w| half::f16::from_f32(w).to_f32() != w)
        .count();
    assert!(off_f16 > w16.len() / 2, "{off_f16} of {}", w16.len());
    assert!(
        (auc16 - auc32).abs() < 0.01,
        "val AUC f16 {auc16}, f32 {auc32}"
    );
}

/// The weights and the validation AUC after one epoch of the default MLP on an
/// executor of `ctx` under `tuning`, its buffers poisoned with NaN.
fn one_epoch_under(ctx: &Arc<GpuContext>, tuning: Tuning) -> (Vec<f32>, f64) {
    ctx.set_tuning(tuning);
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    train(&mut gpu, 1)
}

#[test]
fn every_step_form_gives_the_same_bits_in_f16() {
    let _turn = common::take_turn();
    let ctx = f16_context();
    let weights = |form| {
        let tuning = Tuning {
            force_step_form: Some(form),
            ..Tuning::default()
        };
        one_epoch_under(&ctx, tuning)
    };
    let (base, base_auc) = weights(StepForm::Launches);
    for form in StepForm::all().skip(1) {
        let (w, auc) = weights(form);
        assert_eq!(
            common::first_difference(&w, &base),
            None,
            "{}: other weights",
            form.name()
        );
        // The validation plan runs fused too: every row scored, to the same bits.
        assert_eq!(
            auc.to_bits(),
            base_auc.to_bits(),
            "{}: other AUC",
            form.name()
        );
    }
    ctx.set_tuning(Tuning::default());
}

#[test]
fn every_matmul_variant_trains_the_default_bits_in_f16() {
    // The vec4 variants read f16 operands as vec4<f16> (8-byte elements): each gives
    // the default variant's bits in f16 as in f32; split-K, another order of the sum,
    // close weights.
    let _turn = common::take_turn();
    let ctx = f16_context();
    let weights = |variant| {
        let tuning = Tuning {
            force_variant: Some(variant),
            ..Tuning::default()
        };
        one_epoch_under(&ctx, tuning).0
    };
    let base = weights(DEFAULT_VARIANT);
    for (v, variant) in MATMUL_VARIANTS.iter().enumerate() {
        if variant.test_only || v == DEFAULT_VARIANT {
            continue;
        }
        let got = weights(v);
        if variant.split_k {
            let worst = got
                .iter()
                .zip(&base)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(worst < 0.01, "{}: weights off by {worst}", variant.name);
            continue;
        }
        assert_eq!(
            common::first_difference(&got, &base),
            None,
            "{}: not the default variant's bits",
            variant.name
        );
    }
    ctx.set_tuning(Tuning::default());
}

#[test]
fn an_adapter_without_shader_f16_is_refused_by_name() {
    let _turn = common::take_turn();
    // Mesa's llvmpipe under GL has no SHADER_F16 (`riskgrad devices`); where every
    // adapter has it there is nothing to refuse.
    let Some(plain) = list_adapters().into_iter().find(|a| !a.f16) else {
        return;
    };
    let (adapter, info) = pick_adapter(&DeviceChoice::Index(plain.index))
        .unwrap()
        .unwrap();
    let err = GpuContext::with_precision(adapter, info.clone(), Precision::F16).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("--precision") && text.contains(&info.name),
        "{text}"
    );
}

/// `train --precision f16` on a named GPU writes an f32 model; on the CPU backend or
/// `auto` it is refused before any training, naming the flag.
#[test]
fn train_precision_f16_runs_on_a_named_gpu_and_is_refused_elsewhere() {
    let dir = common::TempDir::unmade("f16-model");
    let out = common::riskgrad(&[
        "train",
        "--device",
        "gpu",
        "--precision",
        "f16",
        "--epochs",
        "1",
        "--members",
        "1",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", common::stderr(&out));
    assert!(dir.join("model.safetensors").exists());
    for device in ["cpu", "auto"] {
        let out = common::riskgrad(&["train", "--device", device, "--precision", "f16"]);
        assert_eq!(out.status.code(), Some(2), "{}", common::stderr(&out));
        let err = common::stderr(&out);
        assert!(
            err.contains("--precision") && err.contains("--device"),
            "{err}"
        );
        assert!(
            !err.contains("training on"),
            "refused before training: {err}"
        );
    }
    let out = common::riskgrad(&["train", "--precision", "f8"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(common::stderr(&out).contains("--precision"));
}

/// A plan with one 2x2 max pool over a `[1, 1, h, w]` input, keeping the argmax.
fn max_pool_plan(h: usize, w: usize) -> (riskgrad::engine::plan::Plan, usize) {
    use riskgrad::engine::graph::Graph;
    use riskgrad::engine::ops::pool::PoolGeom;
    let mut g = Graph::new();
    let x = g.input("x", &[1, 1, h, w]).unwrap();
    let geom = PoolGeom {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
    };
    let y = g.max_pool2d(x, geom).unwrap();
    let idx = g.nodes[y].inputs[1];
    let request = riskgrad::engine::plan::PlanRequest {
        keep: vec![y, idx],
        ..Default::default()
    };
    (riskgrad::engine::plan::compile(&g, &request).unwrap(), idx)
}

#[test]
fn a_max_pool_over_more_positions_than_f16_counts_is_refused() {
    let _turn = common::take_turn();
    let mut gpu = GpuExecutor::new(f16_context());
    gpu.set_poison(true);
    // 2112 positions: the argmax, stored as f16, could not name them all.
    let err = gpu.load(max_pool_plan(64, 33).0).unwrap_err().to_string();
    assert!(err.contains("--precision") && err.contains("2112"), "{err}");
    // 2048 positions: every one is an f16 integer, and the argmax is the CPU's.
    let (plan, idx) = max_pool_plan(64, 32);
    let mut rng = common::rng_for("f16 max pool");
    // Integers below 2048 are exact in f16, so both devices compare the same values
    // (ties included: the first maximum wins on both).
    let x: Vec<f32> = (0..2048).map(|_| rng.below(2000) as f32 - 1000.0).collect();
    let mut argmax = Vec::new();
    for exec in [&mut gpu as &mut dyn Executor, &mut CpuExecutor::new()] {
        let h = exec.load(plan.clone()).unwrap();
        exec.write("x", &x).unwrap();
        exec.run(h, 1).unwrap();
        argmax.push(exec.read_node(h, idx).unwrap());
    }
    assert_eq!(argmax[0], argmax[1]);
    assert!(
        argmax[0].iter().any(|&p| p > 1024.0),
        "positions past f16's 1024"
    );
}
