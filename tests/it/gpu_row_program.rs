//! The fused step (src/engine/gpu/row_program.rs, shaders/rows.wgsl): a step's row
//! launches run as one dispatch of the row program. Every form (the launches one by one,
//! the row program in each of its pipes) trains the same bytes, slots poisoned first, on
//! awkward sizes (a batch that is no multiple of the 16-row block, widths and inner sizes
//! that are no multiple of 4, four activations, a positive-class weight), and a node the
//! host reads after a fused step is where the plan says; the default MLP trains and
//! scores its validation rows to the same bits in every form; a table the row program cannot
//! bind whole keeps the launches; the tuner times the forms,
//! keeps its choice (a fused form only by a margin) in the cache and reads it back; `bench tune` shows the forms.
//!
//! These tests share the tuning tests' device (`common::tuning_context`): they change its
//! tuning setting.

use crate::common;
use common::{assert_matches_cpu, rng_for, take_turn, values, TempFile};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::{indices_as_words, Executor};
use riskgrad::engine::gpu::tune::{fastest_step_form, StepForm, TuneMode, Tuning};
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::engine::graph::{backward, Act, Graph, NodeId, Optimizer};
use riskgrad::engine::plan::{compile, Plan, PlanRequest, LOSS_STATE};
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

fn forced(form: StepForm) -> Tuning {
    Tuning {
        force_step_form: Some(form),
        ..Default::default()
    }
}

/// A training step over a gathered batch of 53 rows of 11 features: linear layers of 33
/// (tanh, then dropout of a third), 7 (gelu), 5 (leaky relu) and 1, binary cross-entropy
/// with positives weighted 1.7, Adam; the logits kept for the host.
fn awkward_step(rows: usize, steps: usize) -> (Plan, NodeId) {
    let (batch, features) = (53, 11);
    let mut g = Graph::new();
    let table = g.input("table", &[rows, features]).unwrap();
    let labels = g.input("labels", &[rows, 1]).unwrap();
    let perm = g.input("perm", &[steps * batch]).unwrap();
    let x = g.gather_rows(table, perm, batch).unwrap();
    let y = g.gather_rows(labels, perm, batch).unwrap();
    let mut h = x;
    let mut width = features;
    for (i, (out, act)) in [
        (33, Act::Tanh),
        (7, Act::Gelu),
        (5, Act::LeakyRelu),
        (1, Act::Identity),
    ]
    .into_iter()
    .enumerate()
    {
        let w = g.param(&format!("w{i}"), &[width, out]).unwrap();
        let b = g.param(&format!("b{i}"), &[out]).unwrap();
        h = g.linear(h, w, b, act).unwrap();
        if i == 0 {
            h = g.dropout(h, 1.0 / 3.0, 17).unwrap();
        }
        width = out;
    }
    let loss = g.bce_with_logits(h, y, 1.7).unwrap();
    let grads = backward(&mut g, loss, &[]).unwrap();
    let grads = (0..g.params.len())
        .map(|p| (p, grads.of(g.param_node(p)).unwrap()))
        .collect();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![h],
            loss: Some(loss),
            grads,
            optimizer: Some(Optimizer::Adam {
                lr: 1e-2,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            }),
            collect: None,
        },
    )
    .unwrap();
    (plan, h)
}

/// Runs `steps` steps of the awkward plan on `exec` from fresh random data and weights
/// (the same for every executor): the weights after, the kept logits, and each launch's
/// name in a timed step after that.
fn run_awkward(exec: &mut dyn Executor) -> (Vec<f32>, Vec<f32>, Vec<String>) {
    let (rows, steps) = (301, 3);
    let (plan, logits) = awkward_step(rows, steps);
    let total = plan.layout.total;
    let h = exec.load(plan).unwrap();
    let mut rng = rng_for("row program awkward");
    exec.write("table", &values(&mut rng, rows * 11)).unwrap();
    let labels: Vec<f32> = (0..rows)
        .map(|_| (rng.uniform() < 0.3) as u8 as f32)
        .collect();
    exec.write("labels", &labels).unwrap();
    let perm: Vec<u32> = (0..steps * 53).map(|_| rng.below(rows) as u32).collect();
    exec.write("perm", &indices_as_words(&perm)).unwrap();
    exec.write(LOSS_STATE, &[0.25]).unwrap();
    let params: Vec<f32> = (0..total).map(|_| rng.range(-0.6, 0.6) as f32).collect();
    exec.write_params(&params).unwrap();
    exec.run_from(h, 0, steps).unwrap();
    let weights = exec.read_params().unwrap();
    let kept = exec.read_node(h, logits).unwrap();
    let names = exec
        .time_launches(h, 0)
        .unwrap()
        .map(|t| t.into_iter().map(|(n, _)| n).collect())
        .unwrap_or_default();
    (weights, kept, names)
}

#[test]
fn every_step_form_computes_the_same_bits_on_awkward_sizes() {
    let (ctx, _turn) = device_or_skip!();
    let mut cpu = CpuExecutor::new();
    let (cpu_weights, cpu_logits, _) = run_awkward(&mut cpu);
    let mut runs = Vec::new();
    for form in StepForm::all() {
        ctx.set_tuning(forced(form));
        let mut gpu = GpuExecutor::new(ctx.clone());
        gpu.set_poison(true);
        let (weights, logits, names) = run_awkward(&mut gpu);
        let fused = names.iter().filter(|n| *n == "RowProgram").count();
        match form {
            StepForm::Launches => assert_eq!(fused, 0, "{names:?}"),
            StepForm::RowProgram(_) => {
                assert_eq!(fused, 1, "{}: {names:?}", form.name());
                // The gathers, the four forward products, the dropout and its gradient,
                // the loss gradient, three activation gradients and three input
                // gradients: one launch now.
                assert!(!names
                    .iter()
                    .any(|n| n == "GatherRows" || n == "ActGrad" || n == "Dropout"));
            }
        }
        runs.push((form, weights, logits));
    }
    // A table over one storage binding is gathered in pieces, which the row program does
    // not do: that step keeps its launches, with the same weights.
    ctx.set_tuning(forced(StepForm::RowProgram(0)));
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.limit_binding_bytes(8192);
    let (weights, _, names) = run_awkward(&mut gpu);
    assert!(!names.iter().any(|n| n == "RowProgram"), "{names:?}");
    assert_eq!(common::first_difference(&weights, &runs[0].1), None);
    let (_, base_weights, base_logits) = &runs[0];
    assert_matches_cpu("weights, launches one by one", base_weights, &cpu_weights);
    assert_matches_cpu("kept logits, launches one by one", base_logits, &cpu_logits);
    for (form, weights, logits) in &runs[1..] {
        assert_eq!(
            common::first_difference(weights, base_weights),
            None,
            "{}: other weights",
            form.name()
        );
        assert_eq!(
            common::first_difference(logits, base_logits),
            None,
            "{}: other kept logits",
            form.name()
        );
    }
    ctx.set_tuning(Tuning::default());
}

/// The default MLP (64-32) on the bundled data, one epoch under `tuning`, slots
/// poisoned first: its weights, and as bits the epoch's training loss (the loss sum the
/// step accumulates) and its validation scores' AUC, KS and log loss (the validation
/// plan runs fused too, and each form must score every row).
fn default_mlp_trained(ctx: &Arc<GpuContext>, tuning: Tuning) -> (Vec<f32>, [u64; 4]) {
    ctx.set_tuning(tuning);
    let mut exec = GpuExecutor::new(ctx.clone());
    exec.set_poison(true);
    let reports = common::train_default_mlp(&mut exec, 1, 3);
    let v = &reports[0].validation;
    let scores = [reports[0].train_loss, v.auc, v.ks, v.log_loss].map(f64::to_bits);
    (exec.read_params().unwrap(), scores)
}

#[test]
fn the_default_mlp_trains_and_scores_the_same_bytes_fused_and_not() {
    let (ctx, _turn) = device_or_skip!();
    let (base, base_scores) = default_mlp_trained(&ctx, forced(StepForm::Launches));
    for pipe in 0..riskgrad::engine::gpu::shaders::Pipe::ROW_PROGRAMS.len() {
        let form = StepForm::RowProgram(pipe);
        let (fused, scores) = default_mlp_trained(&ctx, forced(form));
        assert_eq!(
            common::first_difference(&fused, &base),
            None,
            "{}: other weights",
            form.name()
        );
        assert_eq!(
            scores,
            base_scores,
            "{}: other loss or validation scores",
            form.name()
        );
    }
    ctx.set_tuning(Tuning::default());
}

fn write(path: &std::path::Path, bytes: &[u8]) -> riskgrad::Result<()> {
    riskgrad::files::write_atomically(path, bytes)
}

#[test]
fn the_tuner_times_every_form_and_caches_its_choice() {
    let (ctx, _turn) = device_or_skip!();
    let file = TempFile::new("gpu-tune.json", b"");
    std::fs::remove_file(&file.0).unwrap();
    let cached = || Tuning {
        budget_seconds: None,
        ..Tuning::new(TuneMode::Cached, Some(file.0.clone()), Some(write), None)
    };
    // A run that tunes GEMM shapes within the default budget leaves the steps for a
    // later run (timing them would overrun the budget by a pipeline build or two).
    let budgeted = Tuning::new(TuneMode::Cached, Some(file.0.clone()), Some(write), None);
    default_mlp_trained(&ctx, budgeted);
    assert!(!ctx.tune_choices().is_empty(), "shapes were tuned");
    assert!(
        ctx.step_form_choices().is_empty(),
        "{:?}",
        ctx.step_form_choices()
    );
    let first = default_mlp_trained(&ctx, cached());
    let measured = ctx.step_form_choices();
    // The training step and the scoring step both fuse.
    assert_eq!(measured.len(), 2, "{measured:?}");
    for c in &measured {
        let forms: Vec<StepForm> = c.times.iter().map(|t| t.0).collect();
        assert_eq!(forms, StepForm::all().collect::<Vec<_>>(), "{c:?}");
        assert_eq!(c.form, fastest_step_form(&c.times), "{c:?}");
    }
    let text = std::fs::read_to_string(&file.0).unwrap();
    for c in &measured {
        assert!(text.contains(&c.key), "{text}");
    }
    // A second run reads the forms from the file and trains the same bytes.
    let second = default_mlp_trained(&ctx, cached());
    let read = ctx.step_form_choices();
    assert_eq!(read.len(), 2);
    for c in &read {
        assert!(c.times.is_empty(), "read, not measured: {c:?}");
        let before = measured.iter().find(|m| m.key == c.key).unwrap();
        assert_eq!(c.form, before.form);
    }
    assert_eq!(common::first_difference(&first.0, &second.0), None);
    assert_eq!(first.1, second.1, "the same validation scores");
    // A form the file names that no longer exists is measured again.
    std::fs::write(
        &file.0,
        text.replace("\"launches\"", "\"row_program_w4096\"")
            .replace("\"row_program_w8\"", "\"row_program_w4096\"")
            .replace("\"row_program_w64\"", "\"row_program_w4096\""),
    )
    .unwrap();
    default_mlp_trained(&ctx, cached());
    assert!(ctx.step_form_choices().iter().all(|c| !c.times.is_empty()));
    // With tuning off every step runs its launches one by one.
    default_mlp_trained(&ctx, Tuning::default());
    assert!(ctx.step_form_choices().is_empty());
    ctx.set_tuning(Tuning::default());
}

#[test]
fn bench_tune_shows_each_step_form() {
    let (_ctx, _turn) = device_or_skip!();
    let o = common::riskgrad(&[
        "bench", "tune", "--device", "gpu", "--sizes", "8", "--models", "mlp",
    ]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", common::stderr(&o));
    assert!(out.contains("step forms"), "{out}");
    for form in StepForm::all() {
        assert!(out.contains(form.name()), "no {}: {out}", form.name());
    }
    assert!(out.contains("b256") && out.contains("gather"), "{out}");
}
