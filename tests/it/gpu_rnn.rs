//! The fused recurrent kernels on the GPU: against the CPU executor (every node of a
//! forward and backward pass, GPU buffers poisoned with NaN first) and against the
//! textbook f64 LSTM and GRU, on fresh random inputs at hidden sizes 1, 7 and 33 and
//! sequence lengths 1 and 6, and at 8 and 32, which have pipelines of their own; and the
//! LSTM model training on the GPU.
//!
//! Tolerance: as gpu_kernels.rs, |gpu − cpu| ≤ 1e-4·|cpu| + 1e-5·max(1, max|cpu|).
//!
//! These tests need a wgpu adapter (Mesa's lavapipe is enough). Without one they fail,
//! unless RISKGRAD_SKIP_GPU_TESTS=1.

use crate::common;
use crate::rnn_common;

use common::{assert_matches_cpu, context, random_feed, run_once, seed_of, take_turn};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::engine::graph::{backward, NodeId, Op};
use riskgrad::rng::Rng;
use rnn_common::{cases, StackCase};
use std::sync::Arc;

fn assert_close_f64(what: &str, gpu: &[f32], want: &[f64]) {
    let want: Vec<f32> = want.iter().map(|&v| v as f32).collect();
    assert_matches_cpu(what, gpu, &want);
}

/// A stack with a random-weighted loss over its sequence and last state, differentiated
/// w.r.t. the input sequence, the initial states and every parameter; every node kept.
fn check_case(ctx: &Arc<GpuContext>, case: &StackCase) {
    let what = format!("{case:?}");
    let mut built = case.build();
    let g = &mut built.graph;
    let (seq_shape, last_shape) = (
        g.shape(built.sequence).to_vec(),
        g.shape(built.last).to_vec(),
    );
    let wseq = g.input("loss_weights_seq", &seq_shape).unwrap();
    let wlast = g.input("loss_weights_last", &last_shape).unwrap();
    let a = g.mul(built.sequence, wseq).unwrap();
    let b = g.mul(built.last, wlast).unwrap();
    let (a, b) = (g.mean(a).unwrap(), g.mean(b).unwrap());
    let loss = g.add(a, b).unwrap();
    let wrt: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| matches!(&g.nodes[i].op, Op::Input { name } if !name.starts_with("loss")))
        .collect();
    backward(g, loss, &wrt).unwrap();
    let keep: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| !matches!(g.nodes[i].op, Op::Input { .. } | Op::Param { .. }))
        .collect();

    let mut rng = Rng::new(seed_of(&what));
    let (inputs, params) = random_feed(g, &mut rng, 1);
    let (want_seq, want_last) = case.textbook(g, &inputs, &params);
    let mut cpu = CpuExecutor::new();
    let hc = run_once(&mut cpu, g, &keep, &inputs, &params);
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let hg = run_once(&mut gpu, g, &keep, &inputs, &params);
    for &id in &keep {
        let c = cpu.read_node(hc, id).unwrap();
        let gv = gpu.read_node(hg, id).unwrap();
        assert_matches_cpu(
            &format!("{what}: node {id} ({})", g.nodes[id].op.name()),
            &gv,
            &c,
        );
    }
    assert_close_f64(
        &format!("{what}: GPU sequence vs textbook"),
        &gpu.read_node(hg, built.sequence).unwrap(),
        &want_seq,
    );
    assert_close_f64(
        &format!("{what}: GPU last vs textbook"),
        &gpu.read_node(hg, built.last).unwrap(),
        &want_last,
    );
}

#[test]
fn cells_match_cpu_and_textbook_at_awkward_sizes() {
    let (ctx, _turn) = gpu_or_skip!();
    for case in cases(&[&[1], &[7], &[33]], &[1, 6], 5, 3) {
        check_case(&ctx, &case);
    }
}

/// Widths with pipelines of their own (the width a constant of the pipeline,
/// `ops::rnn`'s `cell_pipes!`), beside a width without (33, above): 8 and 32, in one
/// stack so each cell kernel runs at both.
#[test]
fn cells_built_for_their_width_match_cpu_and_textbook() {
    let (ctx, _turn) = gpu_or_skip!();
    for case in cases(&[&[8, 32]], &[1, 6], 5, 3) {
        check_case(&ctx, &case);
    }
}

#[test]
fn stacked_layers_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    for case in cases(&[&[7, 33, 1]], &[6], 3, 2) {
        check_case(&ctx, &case);
    }
}

/// The LSTM model on a part of the bundled data, trained on the GPU and on the CPU from
/// the same start: the GPU learns, and its losses follow the CPU's.
#[test]
fn lstm_model_trains_on_the_gpu() {
    use riskgrad::engine::graph::Optimizer;
    use riskgrad::nn::{ModelSpec, RecurrentSpec};
    use riskgrad::train::{Split, TrainConfig, Trainer};
    let (ctx, _turn) = gpu_or_skip!();
    // Static columns, then the history time-major and oldest month first (the data
    // contract's layout), for the first rows of each split.
    let (train, val) = rnn_common::peer_splits(0);
    let take = |s: &Split, rows: usize| Split {
        x: s.x[..rows * 23].to_vec(),
        y: s.y[..rows].to_vec(),
    };
    let (train, val) = (take(&train, 6144), take(&val, 2048));
    let model = ModelSpec::lstm(RecurrentSpec::new(5, 3, 6, &[16, 8], false, &[]).unwrap());
    let config = TrainConfig {
        epochs: 3,
        batch: 256,
        optimizer: Optimizer::Adam {
            lr: 5e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 3,
        pos_weight: 1.0,
    };
    let mut losses = Vec::new();
    let mut aucs = Vec::new();
    for exec in [
        &mut CpuExecutor::new() as &mut dyn Executor,
        &mut GpuExecutor::new(ctx.clone()),
    ] {
        let mut trainer = Trainer::new(exec, &model, &train, &val, config.clone()).unwrap();
        let reports: Vec<_> = (0..config.epochs)
            .map(|_| trainer.epoch(&mut |_, _, _| {}).unwrap())
            .collect();
        losses.push(reports.iter().map(|r| r.train_loss).collect::<Vec<_>>());
        aucs.push(reports.last().unwrap().validation.auc);
    }
    let (cpu, gpu) = (&losses[0], &losses[1]);
    assert!(gpu[2] < gpu[0], "the GPU's loss went down: {gpu:?}");
    for (c, g) in cpu.iter().zip(gpu) {
        assert!(
            (c - g).abs() < 2e-3 * c,
            "GPU losses {gpu:?} follow the CPU's {cpu:?}"
        );
    }
    // 72 steps of a small model: well above chance, and the GPU's scores rank the
    // validation rows as the CPU's do.
    assert!(
        aucs[1] > 0.65 && (aucs[0] - aucs[1]).abs() < 5e-3,
        "validation AUC on the CPU and the GPU: {aucs:?}"
    );
}
