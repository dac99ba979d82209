//! Helpers shared by the integration tests: fresh random inputs and comparisons.

use riskgrad::engine::gpu::{choose_adapter, DeviceChoice, GpuContext};
use riskgrad::engine::graph::{Graph, NodeId, Op};
use riskgrad::rng::Rng;
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

/// A file under tests/fixtures.
pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A fresh file in the temp dir, removed on drop.
pub struct TempFile(pub std::path::PathBuf);

impl TempFile {
    pub fn new(name: &str, bytes: &[u8]) -> Self {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("riskgrad-test-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A fresh directory in the temp dir, removed with everything in it when dropped (a test
/// run leaves nothing behind). It reads as its path: `dir.join(..)`, `&dir`.
pub struct TempDir {
    _root: tempfile::TempDir,
    path: std::path::PathBuf,
}

impl TempDir {
    /// A fresh, empty directory.
    pub fn new(name: &str) -> Self {
        let root = Self::root(name);
        TempDir {
            path: root.path().to_path_buf(),
            _root: root,
        }
    }

    /// A path where nothing exists yet, inside a fresh directory: for commands that must
    /// create their output directory themselves.
    pub fn unmade(name: &str) -> Self {
        let root = Self::root(name);
        TempDir {
            path: root.path().join(name),
            _root: root,
        }
    }

    fn root(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("riskgrad-{name}-"))
            .tempdir()
            .expect("a temporary directory")
    }
}

/// A directory for a fixture made once per test run and kept in a static (statics are
/// never dropped): under cargo's `target/tmp`, emptied first, so runs reuse one place
/// instead of leaving a directory each in the temp dir.
pub fn once_dir(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

impl std::ops::Deref for TempDir {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        &self.path
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.path
    }
}

/// A seed from the test's name, so each test draws its own inputs.
pub fn seed_of(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

/// Values in ±[0.1, 1.1): random signs, bounded away from zero (never test on zeros, and
/// keep ReLU kinks out of finite differences).
pub fn random_values(rng: &mut Rng, len: usize) -> Vec<f64> {
    (0..len)
        .map(|_| {
            let v = rng.range(0.1, 1.1);
            if rng.uniform() < 0.5 {
                -v
            } else {
                v
            }
        })
        .collect()
}

/// A generator seeded from the test's name.
pub fn rng_for(test: &str) -> Rng {
    Rng::new(seed_of(test))
}

/// `random_values` in f32, for feeding executors directly.
pub fn values(rng: &mut Rng, len: usize) -> Vec<f32> {
    to_f32(&random_values(rng, len))
}

/// The first index where `a` and `b` hold other bits (same lengths asserted), or `None`
/// where every value is bit-for-bit the same.
pub fn first_difference(a: &[f32], b: &[f32]) -> Option<usize> {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .position(|(x, y)| x.to_bits() != y.to_bits())
}

/// Asserts a GPU result matches the CPU's: each element within 1e-4 of the CPU value
/// plus 1e-5 of the largest CPU magnitude (at least 1). A NaN on either side fails.
pub fn assert_matches_cpu(what: &str, gpu: &[f32], cpu: &[f32]) {
    const RTOL: f32 = 1e-4;
    const ATOL: f32 = 1e-5;
    assert_eq!(gpu.len(), cpu.len(), "{what}: lengths differ");
    let scale = cpu.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    let within = |g: f32, c: f32| (g - c).abs() <= RTOL * c.abs() + ATOL * scale;
    let bad: Vec<String> = gpu
        .iter()
        .zip(cpu)
        .enumerate()
        .filter(|(_, (&g, &c))| !within(g, c))
        .take(5)
        .map(|(i, (g, c))| format!("[{i}] gpu {g} cpu {c}"))
        .collect();
    assert!(
        bad.is_empty(),
        "{what}: GPU differs from CPU at {}",
        bad.join(", ")
    );
}

/// Random values for every input and parameter of `g`. Inputs whose name starts with
/// `perm` get row indices `< rows` (the table's row count), targets get 0/1, inputs named
/// `denominator` stay positive.
pub fn random_feed(
    g: &Graph,
    rng: &mut Rng,
    rows: usize,
) -> (HashMap<String, Vec<f64>>, Vec<Vec<f64>>) {
    let mut inputs = HashMap::new();
    for node in &g.nodes {
        if let Op::Input { name } = &node.op {
            let n = node.numel();
            let v = if name.starts_with("perm") {
                (0..n).map(|_| rng.below(rows) as f64).collect()
            } else if name.starts_with("target") {
                (0..n).map(|_| (rng.uniform() < 0.4) as u8 as f64).collect()
            } else if name.starts_with("denominator") {
                (0..n).map(|_| rng.range(0.5, 2.0)).collect()
            } else {
                random_values(rng, n)
            };
            inputs.insert(name.clone(), v);
        }
    }
    let params = g
        .params
        .iter()
        .map(|p| random_values(rng, p.shape.iter().product()))
        .collect();
    (inputs, params)
}

pub fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// Asserts `got` is within `rel * max(1, |want|)`-ish of `want`, element by element.
pub fn assert_close(what: &str, got: &[f32], want: &[f64], rel: f64, abs: f64) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tol = abs + rel * w.abs();
        assert!(
            g.is_finite() && ((g as f64) - w).abs() <= tol,
            "{what}[{i}]: got {g}, want {w} (tol {tol:e})"
        );
    }
}

/// Loads `g` into an executor with all of `keep` readable, writes the feed, runs one step.
pub fn run_once(
    ex: &mut dyn riskgrad::engine::exec::Executor,
    g: &Graph,
    keep: &[NodeId],
    inputs: &HashMap<String, Vec<f64>>,
    params: &[Vec<f64>],
) -> usize {
    let plan = riskgrad::engine::plan::compile(
        g,
        &riskgrad::engine::plan::PlanRequest {
            keep: keep.to_vec(),
            ..Default::default()
        },
    )
    .expect("compile");
    let layout = plan.layout.clone();
    let h = ex.load(plan).expect("load");
    for node in &g.nodes {
        if let Op::Input { name } = &node.op {
            let v = &inputs[name];
            let words: Vec<f32> = if name.starts_with("perm") {
                riskgrad::engine::exec::indices_as_words(
                    &v.iter().map(|&x| x as u32).collect::<Vec<_>>(),
                )
            } else {
                to_f32(v)
            };
            ex.write(name, &words).expect("write input");
        }
    }
    let mut flat = vec![0.0f32; layout.total];
    for (i, p) in params.iter().enumerate() {
        flat[layout.offsets[i]..layout.offsets[i] + p.len()].copy_from_slice(&to_f32(p));
    }
    ex.write_params(&flat).expect("params");
    ex.run(h, 1).expect("run");
    h
}

/// One GPU device per test binary (pipelines are built once). Panics when no adapter
/// is found: in CI a GPU test fails rather than skips; RISKGRAD_SKIP_GPU_TESTS=1 skips.
pub fn context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(|| {
        if std::env::var("RISKGRAD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
            return None;
        }
        match choose_adapter(&DeviceChoice::Gpu) {
            // Every pipeline built up front, so a test run compiles each one on the
            // adapter even where no test's plan uses it.
            Ok(Some(ctx)) => {
                ctx.prepare_all().expect("every pipeline builds");
                Some(Arc::new(ctx))
            }
            Ok(None) => panic!("choose_adapter(Gpu) gave no device"),
            Err(e) => panic!(
                "the GPU tests need a wgpu adapter and found none: {e}\n\
                 install Mesa's lavapipe (apt-get install mesa-vulkan-drivers), or set RISKGRAD_SKIP_GPU_TESTS=1 to skip them"
            ),
        }
    })
    .clone()
}

/// A second device, for the tests that change its tuning setting (gpu_gemm_tune.rs,
/// gpu_row_program.rs), which the shared one of [`context`] must not see; `None` when
/// GPU tests are skipped. They take turns on it as on the other (`take_turn`).
pub fn tuning_context() -> Option<Arc<GpuContext>> {
    static CTX: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    CTX.get_or_init(own_context).clone()
}

/// A device of the caller's own, opened afresh (for a test of what a device fixes
/// once for its life, as its flat kernels' widths); `None` when GPU tests are skipped.
pub fn own_context() -> Option<Arc<GpuContext>> {
    if std::env::var("RISKGRAD_SKIP_GPU_TESTS").as_deref() == Ok("1") {
        return None;
    }
    let ctx = choose_adapter(&DeviceChoice::Gpu)
        .expect("the GPU tests need a wgpu adapter (Mesa's lavapipe will do)")
        .expect("an adapter");
    Some(Arc::new(ctx))
}

/// GPU tests take turns on the shared device. Under wgpu's GL backend one submission
/// holds the GL context while llvmpipe compiles each pipeline on its first dispatch
/// (seconds with a cold shader cache), and other threads waiting over a second for the
/// context panic inside wgpu. The whole file runs in about a second either way.
pub fn take_turn() -> std::sync::MutexGuard<'static, ()> {
    static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());
    TURN.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The shared context and this test's turn on it, or a return when GPU tests are
/// skipped.
#[macro_export]
macro_rules! gpu_or_skip {
    () => {{
        let turn = take_turn();
        match context() {
            Some(ctx) => (ctx, turn),
            None => {
                eprintln!("RISKGRAD_SKIP_GPU_TESTS=1: skipped");
                return;
            }
        }
    }};
}

/// Batches of 256 and Adam 1e-3 (betas 0.9, 0.999): the settings the tests' runs of the
/// default models share.
pub fn adam_config(seed: u64, epochs: usize) -> riskgrad::train::TrainConfig {
    riskgrad::train::TrainConfig {
        epochs,
        batch: 256,
        optimizer: riskgrad::engine::graph::Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed,
        pos_weight: 1.0,
    }
}

/// The bundled data prepared for a sequence model (`seed` its split) and put in the
/// sequence layout, and the default CNN over it: training rows, validation rows, model.
pub fn bundled_cnn(
    seed: u64,
) -> (
    riskgrad::train::Split,
    riskgrad::train::Split,
    riskgrad::nn::ModelSpec,
) {
    use riskgrad::data::sequence::{self, SequenceLayout};
    use riskgrad::data::{prepare_bundled, PrepareOptions};
    let opts = PrepareOptions {
        seed,
        ..sequence::prepare_options(PrepareOptions::bundled(), &[], true).unwrap()
    };
    let mut data = prepare_bundled(&opts).expect("bundled data");
    let layout =
        SequenceLayout::from_flags(&data.feature_names, &[], None).expect("default layout");
    layout.apply(&mut data).unwrap();
    let model = riskgrad::nn::ModelSpec::cnn(
        layout.statics(),
        layout.channels(),
        layout.steps(),
        riskgrad::nn::CnnLayers::default(),
    )
    .unwrap();
    (data.train, data.val, model)
}

/// Trains the default MLP (64-32, batch 256, Adam 1e-3) on the bundled Taiwan data with
/// the bundled preprocessing defaults, as `riskgrad train` does with no flags.
pub fn train_default_mlp(
    exec: &mut dyn riskgrad::engine::exec::Executor,
    epochs: usize,
    seed: u64,
) -> Vec<riskgrad::train::EpochReport> {
    use riskgrad::data::{prepare_bundled, PrepareOptions};
    let data = prepare_bundled(&PrepareOptions {
        seed,
        ..PrepareOptions::bundled()
    })
    .expect("bundled data");
    let model = riskgrad::nn::ModelSpec::mlp(data.n_features(), &[64, 32]).unwrap();
    let config = adam_config(seed, epochs);
    let mut trainer = riskgrad::train::Trainer::new(exec, &model, &data.train, &data.val, config)
        .expect("trainer");
    (0..epochs)
        .map(|_| trainer.epoch(&mut |_, _, _| {}).expect("epoch"))
        .collect()
}

/// The op tests' gradient check. Weights each output of `build` by fixed random values
/// into a scalar loss (the sum of the weighted outputs' means) and checks d loss / d
/// (every input and parameter) against central differences in f64 on the reference
/// interpreter (see `check_finite_differences`). Inputs named `perm…` (row indices) and
/// `target…` (labels) are data, not differentiated. Then runs every node, forward and
/// backward, on a CPU executor against the f64 values: once per entry of
/// `conv_scratch` (`None`: the default scratch; `Some(words)`: convolutions capped to
/// that much, to take their chunked path). `rows` is the row count of gathered tables.
pub fn check_op_gradients(
    name: &str,
    rows: usize,
    build: impl FnOnce(&mut Graph) -> Vec<NodeId>,
    conv_scratch: &[Option<usize>],
) {
    use crate::reference::evaluate;
    use riskgrad::engine::graph::backward;
    let mut rng = Rng::new(seed_of(name));
    let mut g = Graph::new();
    let outs = build(&mut g);
    let mut loss = None;
    for (k, &out) in outs.iter().enumerate() {
        let shape = g.shape(out).to_vec();
        let weights = g.input(&format!("loss_weights{k}"), &shape).unwrap();
        let weighted = g.mul(out, weights).unwrap();
        let term = g.mean(weighted).unwrap();
        loss = Some(match loss {
            None => term,
            Some(sum) => g.add(sum, term).unwrap(),
        });
    }
    let loss = loss.expect("at least one output");
    let data =
        |n: &str| n.starts_with("perm") || n.starts_with("target") || n.starts_with("loss_weights");
    let wrt: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| matches!(&g.nodes[i].op, Op::Input { name } if !data(name)))
        .collect();
    let forward_len = g.nodes.len();
    let grads = backward(&mut g, loss, &wrt).unwrap();
    let (mut inputs, mut params) = random_feed(&g, &mut rng, rows);
    let values = evaluate(&g, &inputs, &params, 0);

    check_finite_differences(
        name,
        &g,
        loss,
        &wrt,
        &grads,
        &values,
        &mut inputs,
        &mut params,
    );

    let keep: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| !matches!(g.nodes[i].op, Op::Input { .. } | Op::Param { .. }))
        .collect();
    for &scratch in conv_scratch {
        let mut ex = riskgrad::engine::cpu::CpuExecutor::new();
        if let Some(words) = scratch {
            ex.limit_conv_scratch(words);
        }
        let h = run_once(&mut ex, &g, &keep, &inputs, &params);
        for &id in &keep {
            let got = riskgrad::engine::exec::Executor::read_node(&mut ex, h, id).unwrap();
            let role = if id < forward_len {
                "forward"
            } else {
                "backward"
            };
            let label = scratch.map_or("CPU".to_string(), |w| {
                format!("CPU, convolution scratch {w} words")
            });
            assert_close(
                &format!(
                    "{name}: {label} {role} node {id} ({})",
                    g.nodes[id].op.name()
                ),
                &got,
                &values[id],
                1e-4,
                1e-5,
            );
        }
    }
}

/// Checks the autodiff gradient of `loss` w.r.t. every `wrt` input and every parameter
/// (the nodes in `grads`, evaluated in `values` by the f64 reference interpreter) against
/// central finite differences of the same interpreter (step 1e-6, tolerance
/// 1e-7 + 1e-5·|numeric|). `inputs` and `params` are restored after each nudge.
#[allow(clippy::too_many_arguments)]
pub fn check_finite_differences(
    name: &str,
    g: &Graph,
    loss: NodeId,
    wrt: &[NodeId],
    grads: &riskgrad::engine::graph::Gradients,
    values: &[Vec<f64>],
    inputs: &mut HashMap<String, Vec<f64>>,
    params: &mut [Vec<f64>],
) {
    use crate::reference::evaluate;
    let eps = 1e-6;
    let close =
        |analytic: f64, numeric: f64| (analytic - numeric).abs() <= 1e-7 + 1e-5 * numeric.abs();
    for &id in wrt {
        let Op::Input { name: input } = g.nodes[id].op.clone() else {
            panic!("{name}: node {id} is not an input")
        };
        let analytic = &values[grads
            .of(id)
            .unwrap_or_else(|| panic!("{name}: no gradient for {input}"))];
        for i in 0..inputs[&input].len() {
            let orig = inputs[&input][i];
            inputs.get_mut(&input).unwrap()[i] = orig + eps;
            let plus = evaluate(g, inputs, params, 0)[loss][0];
            inputs.get_mut(&input).unwrap()[i] = orig - eps;
            let minus = evaluate(g, inputs, params, 0)[loss][0];
            inputs.get_mut(&input).unwrap()[i] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                close(analytic[i], numeric),
                "{name}: d loss/d {input}[{i}] autodiff {} vs finite difference {numeric}",
                analytic[i]
            );
        }
    }
    for p in 0..params.len() {
        let analytic = &values[grads
            .of(g.param_node(p))
            .unwrap_or_else(|| panic!("{name}: no gradient for parameter {p}"))];
        for i in 0..params[p].len() {
            let orig = params[p][i];
            params[p][i] = orig + eps;
            let plus = evaluate(g, inputs, params, 0)[loss][0];
            params[p][i] = orig - eps;
            let minus = evaluate(g, inputs, params, 0)[loss][0];
            params[p][i] = orig;
            let numeric = (plus - minus) / (2.0 * eps);
            assert!(
                close(analytic[i], numeric),
                "{name}: d loss/d {}[{i}] autodiff {} vs finite difference {numeric}",
                g.params[p].name,
                analytic[i]
            );
        }
    }
}

/// `riskgrad train --device DEVICE --data DATA --hidden HIDDEN EXTRA… --out DIR/run`,
/// refused for its size: checks the usage exit (2) and that no output directory was
/// left, and returns stderr for the caller's checks of the message.
pub fn train_refused_for_size(
    dir: &std::path::Path,
    device: &str,
    data: &std::path::Path,
    hidden: &str,
    extra: &[&str],
) -> String {
    let out_dir = dir.join("run");
    let args = [
        &[
            "train",
            "--device",
            device,
            "--data",
            data.to_str().unwrap(),
        ][..],
        &["--hidden", hidden],
        extra,
        &["--out", out_dir.to_str().unwrap()],
    ]
    .concat();
    let out = riskgrad(&args);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!out_dir.exists(), "{} was left behind", out_dir.display());
    err
}

/// Writes `rows` rows of two random features and a 30 % default flag
/// (`income,debt,default`) to `path`: a table for runs whose data does not matter (a
/// model refused for its size).
pub fn two_feature_table(path: &std::path::Path, rows: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let mut csv = String::from("income,debt,default\n");
    for _ in 0..rows {
        let (income, debt) = (rng.normal(), rng.normal());
        let default = (rng.uniform() < 0.3) as u8;
        csv.push_str(&format!("{income:.3},{debt:.3},{default}\n"));
    }
    std::fs::write(path, csv).unwrap();
}

/// Runs the riskgrad binary with `args` (Mesa's device-select layer quiet).
pub fn riskgrad(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_riskgrad"))
        .args(args)
        .env("NODEVICE_SELECT", "1")
        .output()
        .expect("run riskgrad")
}

/// `riskgrad train` of a small network (`--hidden 4`) on the CPU backend: `data`, into
/// `out`, with `extra` flags.
pub fn train_small(
    data: &std::path::Path,
    out: &std::path::Path,
    extra: &[&str],
) -> std::process::Output {
    let (data, out) = (data.to_str().unwrap(), out.to_str().unwrap());
    let base = [
        "train", "--data", data, "--device", "cpu", "--hidden", "4", "--out", out,
    ];
    riskgrad(&[&base[..], extra].concat())
}

/// `riskgrad predict` with the model in `dir` on `data` (CPU backend), into `out`;
/// returns what it wrote.
pub fn predict_cpu(dir: &std::path::Path, data: &str, out: &std::path::Path) -> String {
    let o = riskgrad(&[
        "predict",
        "--model",
        dir.to_str().unwrap(),
        "--data",
        data,
        "--device",
        "cpu",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "predict: {}", stderr(&o));
    std::fs::read_to_string(out).unwrap()
}

/// The temporary files (`*.tmp`) in `dir`: none may be left once a command has ended.
pub fn temporary_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

/// A command's standard error as text.
pub fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
