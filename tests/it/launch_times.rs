//! `Executor::time_launches`, the per-launch times behind `bench train`'s breakdown: a
//! time for every launch of the plan, and the timed step computes exactly what an untimed
//! step does (on the CPU, and on lavapipe from device timestamps).

use crate::common::*;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::{kernel_name, Executor};
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::{backward, Graph, Optimizer};
use riskgrad::engine::plan::{compile, Plan, PlanRequest};
use riskgrad::nn::ModelSpec;
use riskgrad::rng::Rng;

const ROWS: usize = 37;
const FEATURES: usize = 5;

/// A training step of a small MLP (forward, loss, backward, Adam) as a plan.
fn training_plan() -> Plan {
    let mut g = Graph::new();
    let x = g.input("x", &[ROWS, FEATURES]).unwrap();
    let y = g.input("y", &[ROWS, 1]).unwrap();
    let model = ModelSpec::mlp(FEATURES, &[7, 3]).unwrap();
    let logits = model.build(&mut g, x).unwrap();
    let loss = g.bce_with_logits(logits, y, 1.5).unwrap();
    let grads = backward(&mut g, loss, &[]).unwrap();
    let grads = (0..g.params.len())
        .map(|p| (p, grads.of(g.param_node(p)).unwrap()))
        .collect();
    compile(
        &g,
        &PlanRequest {
            loss: Some(loss),
            grads,
            optimizer: Some(Optimizer::Adam {
                lr: 0.01,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            }),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Loads the plan with the same random inputs and weights; runs step 0, timed or not;
/// returns the weights after it and the times.
fn after_one_step(exec: &mut dyn Executor, timed: bool) -> (Vec<f32>, Option<Vec<(String, f64)>>) {
    let plan = training_plan();
    let total = plan.layout.total;
    let handle = exec.load(plan).unwrap();
    let mut rng = Rng::new(seed_of("launch times"));
    let x: Vec<f32> = (0..ROWS * FEATURES)
        .map(|_| rng.range(-2.0, 2.0) as f32)
        .collect();
    let y: Vec<f32> = (0..ROWS)
        .map(|_| (rng.uniform() < 0.4) as u8 as f32)
        .collect();
    let params: Vec<f32> = (0..total).map(|_| rng.range(-0.7, 0.7) as f32).collect();
    exec.write("x", &x).unwrap();
    exec.write("y", &y).unwrap();
    exec.write_params(&params).unwrap();
    let times = if timed {
        exec.time_launches(handle, 0).unwrap()
    } else {
        exec.run_from(handle, 0, 1).unwrap();
        None
    };
    (exec.read_params().unwrap(), times)
}

fn check(mut new_exec: impl FnMut() -> Box<dyn Executor>, what: &str) {
    let names: Vec<String> = training_plan()
        .launches
        .iter()
        .map(|l| riskgrad::engine::exec::kernel_name(&l.kernel))
        .collect();
    let (plain, _) = after_one_step(new_exec().as_mut(), false);
    let (timed, times) = after_one_step(new_exec().as_mut(), true);
    assert_eq!(
        timed, plain,
        "{what}: the timed step computes what a plain one does"
    );
    let times = times.unwrap_or_else(|| panic!("{what} times its launches"));
    let got: Vec<&String> = times.iter().map(|(n, _)| n).collect();
    assert_eq!(
        got,
        names.iter().collect::<Vec<_>>(),
        "{what}: a time per launch, named after its kernel"
    );
    assert!(
        times.iter().all(|(_, t)| t.is_finite() && *t >= 0.0),
        "{what}: {times:?}"
    );
    assert!(
        times.iter().map(|(_, t)| t).sum::<f64>() > 0.0,
        "{what}: {times:?}"
    );
}

#[test]
fn cpu_times_each_launch_of_an_unchanged_step() {
    check(|| Box::new(CpuExecutor::new()), "the CPU executor");
}

#[test]
fn gpu_times_each_launch_from_device_timestamps() {
    let (ctx, _turn) = crate::gpu_or_skip!();
    assert!(
        ctx.info.timestamps,
        "lavapipe offers TIMESTAMP_QUERY; this adapter does not"
    );
    check(
        || {
            let mut gpu = GpuExecutor::new(ctx.clone());
            gpu.set_poison(true);
            Box::new(gpu)
        },
        "the GPU executor",
    );
}

#[test]
fn kernel_names_are_the_kernel_variants() {
    let names: Vec<String> = training_plan()
        .launches
        .iter()
        .map(|l| kernel_name(&l.kernel))
        .collect();
    for name in ["MatMul", "BceWithLogits", "Optimize"] {
        assert!(names.iter().any(|n| n == name), "{name} in {names:?}");
    }
    assert!(
        names
            .iter()
            .all(|n| !n.is_empty() && n.chars().all(char::is_alphanumeric)),
        "{names:?}"
    );
}
