//! Measurements, not pass/fail checks: run with
//! `cargo test --test gpu_bench -- --ignored --nocapture`. Timing never fails a test.

use riskgrad::cpu::CpuExecutor;
use riskgrad::exec::{indices_as_words, Executor};
use riskgrad::gpu::{choose_adapter, DeviceChoice, GpuExecutor};
use riskgrad::graph::{backward, Act, Graph, Optimizer};
use riskgrad::plan::{compile, PlanRequest};
use std::sync::Arc;
use std::time::Instant;

fn fill(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = riskgrad::rng::Rng::new(seed);
    (0..n).map(|_| rng.range(-1.0, 1.0) as f32).collect()
}

/// Seconds per step of `steps` steps (after one warm-up step), the GPU synchronized by a
/// readback of the output.
fn time_steps(ex: &mut dyn Executor, h: usize, node: usize, steps: usize) -> f64 {
    ex.run(h, 1).unwrap();
    ex.read_node(h, node).unwrap();
    let t = Instant::now();
    ex.run(h, steps).unwrap();
    ex.read_node(h, node).unwrap();
    t.elapsed().as_secs_f64() / steps as f64
}

#[test]
#[ignore = "benchmark"]
fn matmul_gflops() {
    let ctx = Arc::new(choose_adapter(&DeviceChoice::Gpu).unwrap().expect("an adapter"));
    println!("device: {}", ctx.info);
    for (size, steps) in [(256, 20), (512, 10), (1024, 3)] {
        let mut g = Graph::new();
        let a = g.input("a", &[size, size]).unwrap();
        let b = g.input("b", &[size, size]).unwrap();
        let bias = g.input("bias", &[size]).unwrap();
        let y = g.matmul_ex(a, b, Some(bias), false, false, Act::Relu).unwrap();
        let plan = compile(&g, &PlanRequest { keep: vec![y], ..Default::default() }).unwrap();
        let flop = 2.0 * (size * size * size) as f64;
        let mut gpu = GpuExecutor::new(ctx.clone());
        let mut cpu = CpuExecutor::new();
        let mut line = format!("matmul {size}³ + bias + relu:");
        for (name, ex) in [("gpu", &mut gpu as &mut dyn Executor), ("cpu", &mut cpu as &mut dyn Executor)] {
            let h = ex.load(plan.clone()).unwrap();
            ex.write("a", &fill(size * size, 1)).unwrap();
            ex.write("b", &fill(size * size, 2)).unwrap();
            ex.write("bias", &fill(size, 3)).unwrap();
            let s = time_steps(ex, h, y, steps);
            line += &format!("  {name} {:.1} GFLOP/s ({:.2} ms)", flop / s / 1e9, s * 1e3);
        }
        println!("{line}");
    }
}

#[test]
#[ignore = "benchmark"]
fn training_step_host_overhead() {
    let ctx = Arc::new(choose_adapter(&DeviceChoice::Gpu).unwrap().expect("an adapter"));
    let (rows, features, batch, steps) = (4096, 16, 64, 64);
    let mut g = Graph::new();
    let table = g.input("table", &[rows, features]).unwrap();
    let labels = g.input("labels", &[rows, 1]).unwrap();
    let perm = g.input("perm", &[steps * batch]).unwrap();
    let x = g.gather_rows(table, perm, batch).unwrap();
    let y = g.gather_rows(labels, perm, batch).unwrap();
    let mut h = x;
    let mut width = features;
    for (i, &next) in [64, 32, 1].iter().enumerate() {
        let w = g.param(&format!("w{i}"), &[width, next]).unwrap();
        let b = g.param(&format!("b{i}"), &[next]).unwrap();
        h = g.linear(h, w, b, if next == 1 { Act::Identity } else { Act::Relu }).unwrap();
        width = next;
    }
    let loss = g.bce_with_logits(h, y, 1.0).unwrap();
    let grads = backward(&mut g, loss, &[]).unwrap();
    let grads = (0..g.params.len()).map(|p| (p, grads.of(g.param_node(p)).unwrap())).collect();
    let opt = Optimizer::Adam { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    let plan = compile(&g, &PlanRequest { keep: vec![h], loss: Some(loss), grads, optimizer: Some(opt), ..Default::default() }).unwrap();
    let launches = plan.launches.len();
    let mut gpu = GpuExecutor::new(ctx.clone());
    let hp = gpu.load(plan.clone()).unwrap();
    gpu.write("table", &fill(rows * features, 4)).unwrap();
    gpu.write("labels", &fill(rows, 5).iter().map(|v| (*v > 0.0) as u8 as f32).collect::<Vec<_>>()).unwrap();
    gpu.write("perm", &indices_as_words(&(0..(steps * batch) as u32).map(|i| i % rows as u32).collect::<Vec<_>>())).unwrap();
    gpu.write_params(&fill(plan.layout.total, 6).iter().map(|v| v * 0.1).collect::<Vec<_>>()).unwrap();
    let s = time_steps(&mut gpu, hp, h, steps);
    let host = gpu.host_time_of_last_run();
    println!(
        "training step (MLP {features}-64-32-1, batch {batch}, {launches} launches) on {}: {:.3} ms/step; recording+submit {:.1} µs/step = {:.2} µs/launch",
        ctx.info.name,
        s * 1e3,
        host.as_secs_f64() * 1e6 / steps as f64,
        host.as_secs_f64() * 1e6 / (steps * launches) as f64
    );
}
