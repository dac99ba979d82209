//! Kernel and training-step benchmarks, run on any executor, and the lines that report
//! them. Nothing here asserts a speed. `riskgrad bench` (src/cmd/bench.rs) and the
//! `cargo bench` targets (benches/, which include this file by path) run the same code,
//! so this file uses only the library's public API.

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::graph::{Act, CellKind, Graph};
use riskgrad::engine::plan::{compile, PlanRequest, STEP_STATE};
use riskgrad::engine::{select_executor, WhenNoGpu};
use riskgrad::error::Result;
use riskgrad::rng::Rng;
use serde::Serialize;
use std::time::Instant;

/// Work per timed round of `riskgrad bench matmul`: about 2 s on the CPU; a round is one
/// submission on a GPU.
pub const MATMUL_BUDGET_FLOPS: f64 = 2e10;
/// Work per timed round of `riskgrad bench conv`.
pub const CONV_BUDGET_FLOPS: f64 = 2e9;
/// Bytes moved per timed round of `riskgrad bench pool`.
pub const POOL_BUDGET_BYTES: f64 = 2e8;

/// The executor for a device the user named on purpose: no fallback to the CPU.
pub fn executor_strict(choice: &DeviceChoice) -> Result<Box<dyn Executor>> {
    Ok(select_executor(choice, WhenNoGpu::Refuse)?.executor)
}

/// Runs `body` on an executor for each device listed; one that is not there is skipped
/// with a line saying so.
pub fn each_device(
    devices: &[DeviceChoice],
    mut body: impl FnMut(&mut dyn Executor) -> Result<()>,
) -> Result<()> {
    for choice in devices {
        match executor_strict(choice) {
            Ok(mut exec) => body(exec.as_mut())?,
            Err(e) => eprintln!("skipping device {choice:?}: {e}"),
        }
    }
    Ok(())
}

#[derive(Clone, Debug, Serialize)]
pub struct Measurement {
    pub name: String,
    pub device: String,
    /// Median seconds of one repetition over the timed rounds.
    pub median_seconds: f64,
    /// The figure of merit: GFLOP/s, GB/s or rows/s, named by `unit`.
    pub rate: f64,
    pub unit: &'static str,
}

/// One line per measurement: name, device, rate and unit, milliseconds per repetition.
pub fn print_measurement(m: &Measurement) {
    println!(
        "{:<44} {:<40} {:>9.2} {}  ({:.3} ms)",
        m.name,
        m.device,
        m.rate,
        m.unit,
        m.median_seconds * 1e3
    );
}

/// Median of a non-empty list.
pub fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// Times `reps` steps of a loaded plan per round (one submission on a GPU), waiting for
/// completion by reading the step counter back; returns the median seconds per step.
pub fn time_plan(exec: &mut dyn Executor, plan: usize, reps: usize, rounds: usize) -> Result<f64> {
    exec.run(plan, 1)?; // warm-up: first-use costs stay out of the figure
    exec.read(STEP_STATE)?;
    let mut times = Vec::with_capacity(rounds);
    let budget = Instant::now();
    // At least 3 rounds; past 10 s of measuring, stop there (slow adapters, big sizes).
    for round in 0..rounds {
        if round >= 3 && budget.elapsed().as_secs_f64() > 10.0 {
            break;
        }
        let start = Instant::now();
        exec.run(plan, reps)?;
        exec.read(STEP_STATE)?;
        times.push(start.elapsed().as_secs_f64() / reps as f64);
    }
    Ok(median(times))
}

/// `C = A·B + bias` for square `size`, with random operands.
pub fn matmul(exec: &mut dyn Executor, size: usize, budget_flops: f64) -> Result<Measurement> {
    let mut g = Graph::new();
    // Names carry the size: one executor serves every size, and named inputs are shared.
    let (name_a, name_b) = (format!("bench_a_{size}"), format!("bench_b_{size}"));
    let a = g.input(&name_a, &[size, size])?;
    let b = g.input(&name_b, &[size, size])?;
    let c = g.matmul_ex(a, b, None, false, false, Act::Identity)?;
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![c],
            ..Default::default()
        },
    )?;
    let h = exec.load(plan)?;
    let mut rng = Rng::new(size as u64);
    let data: Vec<f32> = (0..size * size)
        .map(|_| rng.range(-1.0, 1.0) as f32)
        .collect();
    exec.write(&name_a, &data)?;
    exec.write(&name_b, &data)?;
    let flops = 2.0 * (size as f64).powi(3);
    let reps = ((budget_flops / flops) as usize).clamp(1, 200);
    let seconds = time_plan(exec, h, reps, 5)?;
    Ok(Measurement {
        name: format!("matmul {size}x{size}x{size}"),
        device: exec.device_name(),
        median_seconds: seconds,
        rate: flops / seconds / 1e9,
        unit: "GFLOP/s",
    })
}

/// Peak resident memory of this process so far, in MiB (Linux; `None` elsewhere).
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[derive(Clone, Debug, Serialize)]
pub struct TrainBench {
    pub device: String,
    pub features: usize,
    /// Median over epochs of training rows per second (validation excluded).
    pub rows_per_second: f64,
    pub epochs: usize,
    /// Seconds from `since` (process start) to: the data prepared, the plans loaded
    /// (buffers, bind groups, data uploaded), and the end of the first training step.
    pub data_ready_seconds: f64,
    pub plans_loaded_seconds: f64,
    pub first_step_seconds: f64,
    pub val_auc: f64,
    pub peak_rss_mib: Option<f64>,
}

/// Prints a training benchmark; `exec` is the executor it ran on (for its host time per
/// step, where it keeps one).
pub fn print_train(b: &TrainBench, exec: &dyn Executor) {
    println!("device: {}; {} input features", b.device, b.features);
    println!(
        "training throughput: {:.0} rows/s (median of {} epochs)",
        b.rows_per_second, b.epochs
    );
    println!(
        "process start to end of first training step: {:.3} s (data prepared {:.3} s, device ready and plans loaded {:.3} s)",
        b.first_step_seconds, b.data_ready_seconds, b.plans_loaded_seconds
    );
    println!("validation AUC after {} epochs: {:.4}", b.epochs, b.val_auc);
    if let Some(host) = exec.host_seconds_per_step() {
        println!(
            "host time per training step (recording + submitting): {:.1} µs",
            host * 1e6
        );
    }
    if let Some(rss) = b.peak_rss_mib {
        println!("peak resident memory: {rss:.1} MiB");
    }
}

/// Trains the default MLP (64-32, batch 256, Adam 1e-3, seed 0) on the bundled Taiwan
/// data and measures throughput; `since` is when the process started. With
/// `peer_features` the data is prepared as the peer programs do (the 23 columns as
/// numbers, standardized) instead of riskgrad's defaults (58 features after one-hot).
pub fn train_default_mlp(
    exec: &mut dyn Executor,
    epochs: usize,
    peer_features: bool,
    since: Instant,
) -> Result<TrainBench> {
    use riskgrad::data::{prepare_bundled, PrepareOptions};
    use riskgrad::engine::graph::Optimizer;
    use riskgrad::train::{TrainConfig, Trainer};
    let mut opts = PrepareOptions::bundled();
    if peer_features {
        opts.categorical.clear();
        opts.signed_log = riskgrad::data::SignedLog::Off;
    }
    let data = prepare_bundled(&opts)?;
    let (train, val) = (&data.train, &data.val);
    let data_ready_seconds = since.elapsed().as_secs_f64();
    let model = riskgrad::nn::ModelSpec::mlp(data.n_features(), &[64, 32])?;
    let optimizer = Optimizer::Adam {
        lr: 1e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let device = exec.device_name();
    let mut trainer = Trainer::new(
        exec,
        &model,
        train,
        val,
        TrainConfig {
            epochs,
            batch: 256,
            optimizer,
            seed: 0,
            pos_weight: 1.0,
        },
    )?;
    let plans_loaded_seconds = since.elapsed().as_secs_f64();
    trainer.step_once()?;
    let first_step_seconds = since.elapsed().as_secs_f64();
    let mut rates = Vec::new();
    let mut val_auc = f64::NAN;
    for _ in 0..epochs {
        let report = trainer.epoch(&mut |_, _, _| {})?;
        rates.push(report.rows_per_second);
        val_auc = report.validation.auc;
    }
    Ok(TrainBench {
        device,
        features: data.n_features(),
        rows_per_second: median(rates),
        epochs,
        data_ready_seconds,
        plans_loaded_seconds,
        first_step_seconds,
        val_auc,
        peak_rss_mib: peak_rss_mib(),
    })
}

/// A convolution to time: x `[n, c, h, w]`, `o` filters of `kh × kw`, one stride and
/// one padding on both axes, no dilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ConvCase {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvCase {
    /// The peer CNN's two layers at batch 256 (conv1d as `h = 1`), and an image-like
    /// layer (32 images of 64×56×56, 64 filters of 3×3).
    pub fn representative() -> Vec<ConvCase> {
        vec![
            ConvCase {
                n: 256,
                c: 3,
                h: 1,
                w: 6,
                o: 32,
                kh: 1,
                kw: 3,
                stride: 1,
                padding: 1,
            },
            ConvCase {
                n: 256,
                c: 32,
                h: 1,
                w: 3,
                o: 64,
                kh: 1,
                kw: 3,
                stride: 1,
                padding: 1,
            },
            ConvCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                o: 64,
                kh: 3,
                kw: 3,
                stride: 1,
                padding: 1,
            },
        ]
    }

    fn geom(&self) -> riskgrad::engine::graph::ConvGeom {
        let pad_h = if self.h == 1 { 0 } else { self.padding };
        let stride_h = if self.h == 1 { 1 } else { self.stride };
        riskgrad::engine::graph::ConvGeom {
            stride: [stride_h, self.stride],
            padding: [pad_h, self.padding],
            dilation: [1, 1],
        }
    }

    fn label(&self) -> String {
        format!(
            "{}x{}x{}x{} * {}x{}x{}x{} s{} p{}",
            self.n,
            self.c,
            self.h,
            self.w,
            self.o,
            self.c,
            self.kh,
            self.kw,
            self.stride,
            self.padding
        )
    }
}

/// Which product of a convolution to time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ConvPass {
    Forward,
    GradInput,
    GradWeight,
}

/// Loads `plan` and writes random values in ±1 to each of its inputs.
fn load_with_random_inputs(
    exec: &mut dyn Executor,
    plan: riskgrad::engine::plan::Plan,
    seed: u64,
) -> Result<usize> {
    let inputs = plan.inputs.clone();
    let h = exec.load(plan)?;
    let mut rng = Rng::new(seed);
    for i in inputs {
        let data: Vec<f32> = (0..i.len).map(|_| rng.range(-1.0, 1.0) as f32).collect();
        exec.write(&i.name, &data)?;
    }
    Ok(h)
}

/// Times one pass of a convolution (forward with bias and ReLU; or the input or weight
/// gradient, the latter with its parts summed). GFLOP/s counts 2 flops per
/// multiply-add of the definition (`n·o·oh·ow·c·kh·kw` of them), whatever the kernel
/// does.
pub fn conv(
    exec: &mut dyn Executor,
    case: &ConvCase,
    pass: ConvPass,
    budget_flops: f64,
) -> Result<Measurement> {
    let mut g = Graph::new();
    let geom = case.geom();
    // Input names per case and pass: an executor keeps every named input.
    let tag = format!("{} {pass:?}", case.label());
    let x = g.input(&format!("bench_x {tag}"), &[case.n, case.c, case.h, case.w])?;
    let w = g.input(
        &format!("bench_w {tag}"),
        &[case.o, case.c, case.kh, case.kw],
    )?;
    let b = g.input(&format!("bench_b {tag}"), &[case.o])?;
    let y = g.conv2d(x, w, Some(b), geom, Act::Relu)?;
    let macs = g.nodes[y].numel() * case.c * case.kh * case.kw;
    // The gradients read a random dz; the forward node is then left out of the plan.
    let y_shape = g.shape(y).to_vec();
    let out = match pass {
        ConvPass::Forward => y,
        ConvPass::GradInput => {
            let dz = g.input(&format!("bench_dz {tag}"), &y_shape)?;
            g.conv2d_grad_input(dz, w, &[case.n, case.c, case.h, case.w], geom)?
        }
        ConvPass::GradWeight => {
            let dz = g.input(&format!("bench_dz {tag}"), &y_shape)?;
            g.conv2d_grad_weight(dz, x, &[case.o, case.c, case.kh, case.kw], geom)?
        }
    };
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![out],
            ..Default::default()
        },
    )?;
    let h = load_with_random_inputs(exec, plan, macs as u64)?;
    let flops = 2.0 * macs as f64;
    let reps = ((budget_flops / flops) as usize).clamp(1, 500);
    let seconds = time_plan(exec, h, reps, 5)?;
    let what = match pass {
        ConvPass::Forward => "conv forward",
        ConvPass::GradInput => "conv grad input",
        ConvPass::GradWeight => "conv grad weight",
    };
    Ok(Measurement {
        name: format!("{what} {}", case.label()),
        device: exec.device_name(),
        median_seconds: seconds,
        rate: flops / seconds / 1e9,
        unit: "GFLOP/s",
    })
}

/// A pooling op to time: x `[n, c, h, w]`, a `kh × kw` window, one stride and one
/// padding on both axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PoolCase {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: usize,
    pub padding: usize,
    pub max: bool,
}

impl PoolCase {
    /// The peer CNN's max pool at batch 256, and 2×2 / 3×3 pools over image-like maps.
    pub fn representative() -> Vec<PoolCase> {
        vec![
            PoolCase {
                n: 256,
                c: 32,
                h: 1,
                w: 6,
                kh: 1,
                kw: 2,
                stride: 2,
                padding: 0,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 2,
                kw: 2,
                stride: 2,
                padding: 0,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 3,
                kw: 3,
                stride: 2,
                padding: 1,
                max: true,
            },
            PoolCase {
                n: 32,
                c: 64,
                h: 56,
                w: 56,
                kh: 2,
                kw: 2,
                stride: 2,
                padding: 0,
                max: false,
            },
        ]
    }

    fn geom(&self) -> riskgrad::engine::graph::PoolGeom {
        let (stride_h, pad_h) = if self.h == 1 {
            (1, 0)
        } else {
            (self.stride, self.padding)
        };
        riskgrad::engine::graph::PoolGeom {
            kernel: [self.kh, self.kw],
            stride: [stride_h, self.stride],
            padding: [pad_h, self.padding],
        }
    }
}

/// Times a pooling op forward (for max: the argmax and the gather) or backward (for
/// max: from a recorded argmax). GB/s counts the bytes a pass must move at least: x
/// read and y written forward; dy (and the argmax) read and dx written backward.
pub fn pool(
    exec: &mut dyn Executor,
    case: &PoolCase,
    backward: bool,
    budget_bytes: f64,
) -> Result<Measurement> {
    let xs = [case.n, case.c, case.h, case.w];
    let tag = format!("{case:?} {backward}");
    let mut g = Graph::new();
    let x = g.input(&format!("bench_x {tag}"), &xs)?;
    let y = if case.max {
        g.max_pool2d(x, case.geom())?
    } else {
        g.avg_pool2d(x, case.geom())?
    };
    let (x_len, y_len) = (riskgrad::engine::graph::numel(&xs), g.nodes[y].numel());
    let mut argmax = None;
    if backward && case.max {
        // The gradient reads the argmax the forward pass recorded: record it once, then
        // time the gradient alone with it as an input.
        let idx = g.nodes[y].inputs[1];
        let h = load_with_random_inputs(
            exec,
            compile(
                &g,
                &PlanRequest {
                    keep: vec![idx],
                    ..Default::default()
                },
            )?,
            x_len as u64,
        )?;
        exec.run(h, 1)?;
        argmax = Some(exec.read_node(h, idx)?);
    }
    let (plan, bytes) = if backward {
        let mut gb = Graph::new();
        let dy = gb.input(&format!("bench_dy {tag}"), g.shape(y))?;
        let dx = match &argmax {
            Some(_) => {
                let idx = gb.input(&format!("bench_idx {tag}"), g.shape(y))?;
                gb.max_pool_grad(dy, idx, &xs, case.geom())?
            }
            None => gb.avg_pool_grad(dy, &xs, case.geom())?,
        };
        let idx_bytes = if argmax.is_some() { 4 * y_len } else { 0 };
        (
            compile(
                &gb,
                &PlanRequest {
                    keep: vec![dx],
                    ..Default::default()
                },
            )?,
            4 * (y_len + x_len) + idx_bytes,
        )
    } else {
        (
            compile(
                &g,
                &PlanRequest {
                    keep: vec![y],
                    ..Default::default()
                },
            )?,
            4 * (x_len + y_len),
        )
    };
    let h = load_with_random_inputs(exec, plan, y_len as u64)?;
    if let Some(idx) = argmax {
        exec.write(&format!("bench_idx {tag}"), &idx)?;
    }
    let reps = ((budget_bytes / bytes as f64) as usize).clamp(1, 500);
    let seconds = time_plan(exec, h, reps, 5)?;
    let kind = if case.max { "max" } else { "avg" };
    let dir = if backward { "backward" } else { "forward" };
    let name = format!(
        "{kind} pool {dir} {}x{}x{}x{} window {}x{} s{} p{}",
        case.n, case.c, case.h, case.w, case.kh, case.kw, case.stride, case.padding
    );
    Ok(Measurement {
        name,
        device: exec.device_name(),
        median_seconds: seconds,
        rate: bytes as f64 / seconds / 1e9,
        unit: "GB/s",
    })
}

/// `riskgrad bench matmul`: each square size in turn, a line printed as each is measured
/// (the large sizes take a while).
pub fn matmul_suite(exec: &mut dyn Executor, sizes: &[usize], budget_flops: f64) -> Result<()> {
    for &size in sizes {
        print_measurement(&matmul(exec, size, budget_flops)?);
    }
    Ok(())
}

/// `riskgrad bench conv`: every representative convolution, each pass.
pub fn conv_suite(exec: &mut dyn Executor, budget_flops: f64) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for case in ConvCase::representative() {
        for pass in [ConvPass::Forward, ConvPass::GradInput, ConvPass::GradWeight] {
            out.push(conv(exec, &case, pass, budget_flops)?);
        }
    }
    Ok(out)
}

/// `riskgrad bench pool`: every representative pooling op, forward and backward.
pub fn pool_suite(exec: &mut dyn Executor, budget_bytes: f64) -> Result<Vec<Measurement>> {
    let mut out = Vec::new();
    for case in PoolCase::representative() {
        for backward in [false, true] {
            out.push(pool(exec, &case, backward, budget_bytes)?);
        }
    }
    Ok(out)
}

/// One recurrent training step measured three ways (see `recurrent`).
#[derive(Clone, Debug, Serialize)]
pub struct RnnBench {
    pub name: String,
    pub device: String,
    pub batch: usize,
    pub input: usize,
    pub hidden: usize,
    pub steps: usize,
    /// Median seconds of one step, forward and backward through time: every launch.
    pub step_seconds: f64,
    /// The same step's matmul launches alone (same shapes and buffers).
    pub matmul_seconds: f64,
    /// Its fused cell launches alone (forward and backward).
    pub cell_seconds: f64,
    /// Kernel launches per step, and how many of them are matmuls and cells.
    pub launches: usize,
    pub matmul_launches: usize,
    pub cell_launches: usize,
}

/// `recurrent` on each device listed, a line for each.
pub fn recurrent_on_devices(
    kind: CellKind,
    devices: &[DeviceChoice],
    batch: usize,
    input: usize,
    hidden: usize,
    steps: usize,
) -> Result<()> {
    each_device(devices, |exec| {
        let b = recurrent(exec, kind, batch, input, hidden, steps)?;
        println!(
            "{} on {}: step {:.3} ms (forward + backward through time); its {} matmul launches alone {:.3} ms, its {} fused cell launches alone {:.3} ms; {} launches per step",
            b.name, b.device, b.step_seconds * 1e3, b.matmul_launches, b.matmul_seconds * 1e3, b.cell_launches, b.cell_seconds * 1e3, b.launches
        );
        Ok(())
    })
}

/// A recurrent layer of `kind` (LSTM or GRU; `batch` rows, `steps` steps of `input`
/// features, `hidden` units) stepped forward and backward through time, its whole
/// sequence read out linearly into a mean: gradients of every weight and of the input, no
/// optimizer. Also times the step's matmuls alone and its fused cells alone (the same
/// launches, filtered out of the compiled plan), and counts launches.
pub fn recurrent(
    exec: &mut dyn Executor,
    kind: CellKind,
    batch: usize,
    input: usize,
    hidden: usize,
    steps: usize,
) -> Result<RnnBench> {
    use riskgrad::engine::plan::Kernel;
    if batch == 0 || input == 0 || hidden == 0 || steps == 0 {
        return Err(riskgrad::Error::Other(format!(
            "bench {}: sizes must be positive",
            kind.name()
        )));
    }
    let mut g = Graph::new();
    let x = g.input("bench_seq", &[batch, steps * input])?;
    let out =
        riskgrad::nn::rnn::rnn_layer(&mut g, kind, "bench", x, steps, hidden, false, &[], true)?;
    // A scalar of every step's state (a linear read-out, as a next layer's input product
    // would be), so the gradient enters at every step as in a stack.
    let seq = out.sequence.expect("asked for the sequence");
    let readout = g.param("bench.readout", &[steps * hidden, 1])?;
    let score = g.matmul(seq, readout)?;
    let loss = g.mean(score)?;
    let grads = riskgrad::engine::graph::backward(&mut g, loss, &[x])?;
    let mut keep = vec![grads.of(x).expect("the input reaches the loss")];
    keep.extend((0..g.params.len()).filter_map(|p| grads.of(g.param_node(p))));
    let plan = compile(
        &g,
        &PlanRequest {
            keep,
            ..Default::default()
        },
    )?;
    let only = |pick: &dyn Fn(&Kernel) -> bool| {
        let mut p = plan.clone();
        p.launches
            .retain(|l| pick(&l.kernel) || matches!(l.kernel, Kernel::AdvanceStep { .. }));
        p
    };
    let matmuls = only(&|k| matches!(k, Kernel::MatMul { .. }));
    let cells = only(&|k| matches!(k, Kernel::RnnCell { .. } | Kernel::RnnCellGrad { .. }));
    // Per step, without the step counter's own launch.
    let count = |p: &riskgrad::engine::plan::Plan| p.launches.len() - 1;
    let (launches, matmul_launches, cell_launches) = (count(&plan), count(&matmuls), count(&cells));
    let layout = plan.layout.clone();
    let full = exec.load(plan)?;
    let mm = exec.load(matmuls)?;
    let cl = exec.load(cells)?;
    let mut rng = Rng::new(0xBE7C);
    let data: Vec<f32> = (0..batch * steps * input)
        .map(|_| rng.range(-1.0, 1.0) as f32)
        .collect();
    exec.write("bench_seq", &data)?;
    let bound = 1.0 / (hidden as f64).sqrt();
    let params: Vec<f32> = (0..layout.total)
        .map(|_| rng.range(-bound, bound) as f32)
        .collect();
    exec.write_params(&params)?;
    let (reps, rounds) = (20, 7);
    Ok(RnnBench {
        name: format!("{} step", kind.name()),
        device: exec.device_name(),
        batch,
        input,
        hidden,
        steps,
        step_seconds: time_plan(exec, full, reps, rounds)?,
        matmul_seconds: time_plan(exec, mm, reps, rounds)?,
        cell_seconds: time_plan(exec, cl, reps, rounds)?,
        launches,
        matmul_launches,
        cell_launches,
    })
}
