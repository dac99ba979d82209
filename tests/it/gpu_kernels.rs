//! Every GPU kernel against the CPU executor (the reference), on fresh random inputs,
//! with the GPU's slots, gradients and states poisoned with NaN first so a kernel that
//! fails to write shows up.
//!
//! Tolerance: |gpu − cpu| ≤ 1e-4·|cpu| + 1e-5·max(1, max|cpu| over the tensor). The
//! relative part covers f32 sums taken in another order (matmul tiles, tree
//! reductions) and the shaders' own exp/log; the absolute floor, scaled to the tensor,
//! covers values that cancel to near zero.
//!
//! These tests need a wgpu adapter (Mesa's lavapipe is enough: `apt-get install
//! mesa-vulkan-drivers`). Without one they fail, unless RISKGRAD_SKIP_GPU_TESTS=1.
//! They share one device and take turns on it (see `take_turn`); tests that open more
//! devices live in gpu_adapters.rs.

use crate::common;
use common::{assert_matches_cpu, context, rng_for, take_turn, values};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::{indices_as_words, Executor};
use riskgrad::engine::gpu::shaders::Pipe;
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::engine::graph::{backward, Act, BinaryOp, Graph, NodeId, Optimizer};
use riskgrad::engine::ops::dropout::DropoutKernel;
use riskgrad::engine::ops::elementwise::ElementwiseKernel;
use riskgrad::engine::ops::gather::GatherKernel;
use riskgrad::engine::plan::{
    compile, InputInfo, Kernel, Launch, ParamLayout, Plan, PlanRequest, StateInfo, Storage,
    TensorRef, STEP_STATE,
};
use riskgrad::rng::Rng;
use std::collections::HashMap;
use std::sync::Arc;

const ACTS: [Act; 4] = [Act::Identity, Act::Relu, Act::Sigmoid, Act::Tanh];
const OPS: [BinaryOp; 4] = [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div];

/// A CPU and a poisoned GPU executor with the same plans loaded; `limit` caps the
/// workgroups per grid dimension to force 2-D grids.
struct Pair {
    cpu: CpuExecutor,
    gpu: GpuExecutor,
    handles: Vec<usize>,
}

impl Pair {
    fn new(ctx: &Arc<GpuContext>, plans: Vec<Plan>, limit: Option<u32>) -> Pair {
        let mut cpu = CpuExecutor::new();
        let mut gpu = GpuExecutor::new(ctx.clone());
        gpu.set_poison(true);
        if let Some(n) = limit {
            gpu.limit_workgroups_per_dimension(n);
        }
        let mut handles = Vec::new();
        for plan in plans {
            let h = cpu.load(plan.clone()).unwrap();
            assert_eq!(gpu.load(plan).unwrap(), h);
            handles.push(h);
        }
        Pair { cpu, gpu, handles }
    }
    fn write(&mut self, name: &str, data: &[f32]) {
        self.cpu.write(name, data).unwrap();
        self.gpu.write(name, data).unwrap();
    }
    fn write_params(&mut self, data: &[f32]) {
        self.cpu.write_params(data).unwrap();
        self.gpu.write_params(data).unwrap();
    }
    fn run_from(&mut self, plan: usize, first: usize, steps: usize) {
        self.cpu.run_from(self.handles[plan], first, steps).unwrap();
        self.gpu.run_from(self.handles[plan], first, steps).unwrap();
    }
    fn check_node(&mut self, what: &str, plan: usize, node: NodeId) {
        let c = self.cpu.read_node(self.handles[plan], node).unwrap();
        let g = self.gpu.read_node(self.handles[plan], node).unwrap();
        assert_matches_cpu(what, &g, &c);
    }
    fn check_named(&mut self, what: &str, name: &str) {
        let c = self.cpu.read(name).unwrap();
        let g = self.gpu.read(name).unwrap();
        assert_matches_cpu(&format!("{what}: {name}"), &g, &c);
    }
}

/// Compiles `g` keeping `keep`, runs one step on both executors with random inputs
/// (from `feed` where given) and compares the kept nodes.
fn check_graph(
    ctx: &Arc<GpuContext>,
    what: &str,
    g: &Graph,
    keep: &[NodeId],
    feed: &HashMap<String, Vec<f32>>,
    rng: &mut Rng,
) {
    let plan = compile(
        g,
        &PlanRequest {
            keep: keep.to_vec(),
            ..Default::default()
        },
    )
    .unwrap();
    let inputs = plan.inputs.clone();
    let mut pair = Pair::new(ctx, vec![plan], None);
    for i in inputs {
        let data = feed
            .get(&i.name)
            .cloned()
            .unwrap_or_else(|| values(rng, i.len));
        pair.write(&i.name, &data);
    }
    pair.run_from(0, 0, 1);
    for &k in keep {
        pair.check_node(&format!("{what} node {k}"), 0, k);
    }
}

#[test]
fn matmul_matches_cpu_for_odd_shapes_transposes_bias_and_activations() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("matmul");
    let shapes = [
        (1, 1, 1),
        (7, 33, 65),
        (33, 7, 257),
        (65, 257, 7),
        (257, 65, 33),
        (1, 257, 33),
        (257, 1, 65),
        (33, 65, 1),
        (7, 7, 7),
        (65, 65, 65),
    ];
    let mut case = 0;
    for &(m, n, k) in &shapes {
        for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
            // Every activation meets every transpose pair, with no bias, a bias row and
            // a whole added matrix.
            let act = ACTS[case % 4];
            let bias_shape: Option<Vec<usize>> = match (case / 4) % 3 {
                0 => Some(vec![n]),
                1 => None,
                _ => Some(vec![m, n]),
            };
            case += 1;
            let mut g = Graph::new();
            let a = g.input("a", &if ta { [k, m] } else { [m, k] }).unwrap();
            let b = g.input("b", &if tb { [n, k] } else { [k, n] }).unwrap();
            let bias = bias_shape.as_ref().map(|s| g.input("bias", s).unwrap());
            let y = g.matmul_ex(a, b, bias, ta, tb, act).unwrap();
            let what =
                format!("matmul m={m} n={n} k={k} ta={ta} tb={tb} {act:?} bias {bias_shape:?}");
            check_graph(&ctx, &what, &g, &[y], &HashMap::new(), &mut rng);
        }
    }
}

#[test]
fn matmul_257_cube_all_transposes() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("matmul_257");
    for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
        let mut g = Graph::new();
        let a = g.input("a", &[257, 257]).unwrap();
        let b = g.input("b", &[257, 257]).unwrap();
        let bias = g.input("bias", &[257]).unwrap();
        let y = g.matmul_ex(a, b, Some(bias), ta, tb, Act::Tanh).unwrap();
        check_graph(
            &ctx,
            &format!("matmul 257³ ta={ta} tb={tb}"),
            &g,
            &[y],
            &HashMap::new(),
            &mut rng,
        );
    }
}

#[test]
fn binary_ops_broadcast_like_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("binary");
    let shapes: [(&[usize], &[usize]); 7] = [
        (&[257], &[257]),
        (&[7, 33], &[33]),
        (&[33, 1], &[1, 7]),
        (&[2, 3, 4, 5], &[3, 1, 5]),
        (&[1], &[7, 33]),
        (&[2, 1, 4, 1], &[2, 3, 1, 5]),
        (&[1], &[1]),
    ];
    for (sa, sb) in shapes {
        for op in OPS {
            let mut g = Graph::new();
            let a = g.input("a", sa).unwrap();
            let b = g.input("b", sb).unwrap();
            let y = g.binary(op, a, b).unwrap();
            check_graph(
                &ctx,
                &format!("{op:?} {sa:?} {sb:?}"),
                &g,
                &[y],
                &HashMap::new(),
                &mut rng,
            );
        }
    }
}

/// A plan built by hand around `kernels`: inputs and states (the step counter comes
/// first), slots, and the windows to read back under fake node ids 0, 1, ...
fn hand_plan(
    inputs: &[(&str, usize)],
    states: &[(&str, usize)],
    slots: &[usize],
    kernels: Vec<Kernel>,
    keep: &[TensorRef],
) -> Plan {
    let step = TensorRef {
        storage: Storage::State(0),
        offset: 0,
        len: 2,
    };
    let mut launches: Vec<Launch> = kernels
        .into_iter()
        .map(|kernel| Launch { node: None, kernel })
        .collect();
    launches.push(Launch {
        node: None,
        kernel: Kernel::AdvanceStep { step, counters: 2 },
    });
    let mut all_states = vec![StateInfo {
        name: STEP_STATE.into(),
        len: 2,
    }];
    all_states.extend(states.iter().map(|&(n, len)| StateInfo {
        name: n.into(),
        len,
    }));
    Plan {
        launches,
        slots: slots.to_vec(),
        inputs: inputs
            .iter()
            .map(|&(n, len)| InputInfo {
                name: n.into(),
                len,
            })
            .collect(),
        states: all_states,
        layout: ParamLayout {
            offsets: vec![],
            lens: vec![],
            total: 64,
        },
        opt_state_len: 0,
        locations: keep.iter().copied().enumerate().collect(),
    }
}

fn input(i: usize, len: usize) -> TensorRef {
    TensorRef {
        storage: Storage::Input(i),
        offset: 0,
        len,
    }
}
fn slot(i: usize, len: usize) -> TensorRef {
    TensorRef {
        storage: Storage::Slot(i),
        offset: 0,
        len,
    }
}

#[test]
fn unary_and_act_grad_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("unary");
    for n in [1, 7, 33, 257, 1000] {
        for act in ACTS {
            // Unary over wide inputs (tanh and sigmoid saturate, relu has both signs);
            // ActGrad at offsets that are not aligned to anything.
            let (x, dy, y) = (
                input(0, n),
                input(1, n),
                TensorRef {
                    storage: Storage::Input(2),
                    offset: 3,
                    len: n,
                },
            );
            let kernels = vec![
                Kernel::Elementwise(ElementwiseKernel::Unary {
                    act,
                    x,
                    out: slot(0, n),
                }),
                Kernel::Elementwise(ElementwiseKernel::ActGrad {
                    act,
                    dy,
                    y,
                    out: TensorRef {
                        storage: Storage::Slot(1),
                        offset: 5,
                        len: n,
                    },
                }),
            ];
            let keep = [
                slot(0, n),
                TensorRef {
                    storage: Storage::Slot(1),
                    offset: 5,
                    len: n,
                },
            ];
            let plan = hand_plan(
                &[("x", n), ("dy", n), ("y", n + 3)],
                &[],
                &[n, n + 5],
                kernels,
                &keep,
            );
            let mut pair = Pair::new(&ctx, vec![plan], None);
            // From ±1e-3 (tanh's polynomial range) to ±60 (saturation, exp overflow).
            let wide: Vec<f32> = values(&mut rng, n)
                .iter()
                .map(|v| v * 10f32.powf(rng.range(-3.0, 1.8) as f32))
                .collect();
            pair.write("x", &wide);
            pair.write("dy", &values(&mut rng, n));
            let ys: Vec<f32> = values(&mut rng, n + 3).iter().map(|v| v * 0.9).collect();
            pair.write("y", &ys);
            pair.run_from(0, 0, 1);
            pair.check_node(&format!("unary {act:?} n={n}"), 0, 0);
            pair.check_node(&format!("act_grad {act:?} n={n}"), 0, 1);
        }
    }
}

#[test]
fn fill_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    for n in [1, 7, 33, 257, 70_000] {
        let plan = hand_plan(
            &[],
            &[],
            &[n + 2],
            vec![Kernel::Fill {
                out: TensorRef {
                    storage: Storage::Slot(0),
                    offset: 2,
                    len: n,
                },
                value: -2.75,
            }],
            &[TensorRef {
                storage: Storage::Slot(0),
                offset: 2,
                len: n,
            }],
        );
        let mut pair = Pair::new(&ctx, vec![plan], None);
        pair.run_from(0, 0, 1);
        pair.check_node(&format!("fill n={n}"), 0, 0);
    }
}

#[test]
fn reduce_matches_cpu_on_every_path() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("reduce");
    // Each of the three sums (short ones in index order, then the tree's association in
    // one invocation per output, then in a workgroup per output above 2,047 summands),
    // each along one axis (a bias gradient's `ONE_AXIS` pipeline) and along several.
    let cases: [(&[usize], &[usize]); 13] = [
        (&[7, 33], &[1, 33]),
        (&[7, 33], &[7, 1]),
        (&[2, 3, 4, 5], &[1, 3, 1, 5]),
        (&[2, 3, 4, 5], &[2, 1, 4, 1]),
        (&[4100, 3], &[4100, 1]),
        (&[1], &[1]),
        (&[300, 2], &[1, 2]),
        (&[1000, 257], &[1, 257]),
        (&[3, 100, 5], &[1, 1, 5]),
        (&[3001, 2], &[1, 2]),
        (&[257, 33], &[1]),
        (&[5, 450, 3], &[1, 1, 3]),
        (&[2, 1100, 2], &[1, 1100, 1]),
    ];
    for (from, to) in cases {
        let mut g = Graph::new();
        let x = g.input("x", from).unwrap();
        let r = g.reduce_to(x, to, 0.37).unwrap();
        check_graph(
            &ctx,
            &format!("reduce {from:?} -> {to:?}"),
            &g,
            &[r],
            &HashMap::new(),
            &mut rng,
        );
    }
}

/// A column sum of `count` rows as `reduce_to_tree` associates it, in f32: invocation t
/// of 256 sums rows t, t+256, ... in order, then strides 128, 64, ..., 1 add pairwise.
fn tree_sum(column: impl Fn(usize) -> f32, count: usize, scale: f32) -> f32 {
    const WG: usize = 256;
    let mut partial = [0.0f32; WG];
    for (t, p) in partial.iter_mut().enumerate() {
        for r in (t..count).step_by(WG) {
            *p += column(r);
        }
    }
    let mut stride = WG / 2;
    while stride > 0 {
        for i in 0..stride {
            partial[i] += partial[i + stride];
        }
        stride /= 2;
    }
    partial[0] * scale
}

/// Column sums long enough for a tree, on either of its kernels (one invocation per
/// output in the tree's association below 2,048 rows, a workgroup per output above),
/// give the workgroup tree's bits exactly: the choice between them never changes a
/// weight.
#[test]
fn both_tree_reductions_give_the_trees_bits() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("tree bits");
    for count in [256, 300, 1000, 2047, 2048, 3001] {
        let cols = 5;
        let mut g = Graph::new();
        let x = g.input("x", &[count, cols]).unwrap();
        let r = g.reduce_to(x, &[1, cols], 0.37).unwrap();
        let column_values = values(&mut rng, count * cols);
        let mut gpu = GpuExecutor::new(ctx.clone());
        gpu.set_poison(true);
        let inputs = HashMap::from([(
            "x".to_string(),
            column_values.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        )]);
        let h = crate::common::run_once(&mut gpu, &g, &[r], &inputs, &[]);
        let got = gpu.read_node(h, r).unwrap();
        for (c, &got) in got.iter().enumerate() {
            let want = tree_sum(|row| column_values[row * cols + c], count, 0.37);
            assert_eq!(
                got.to_bits(),
                want.to_bits(),
                "{count} rows, column {c}: {got} against the tree's {want}"
            );
        }
    }
}

#[test]
fn expand_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("expand");
    let cases: [(&[usize], &[usize]); 5] = [
        (&[33], &[7, 33]),
        (&[7, 1], &[7, 33]),
        (&[1, 3, 1, 5], &[2, 3, 4, 5]),
        (&[1], &[257]),
        (&[1], &[1]),
    ];
    for (from, to) in cases {
        let mut g = Graph::new();
        let x = g.input("x", from).unwrap();
        let e = g.expand_to(x, to, -1.5).unwrap();
        check_graph(
            &ctx,
            &format!("expand {from:?} -> {to:?}"),
            &g,
            &[e],
            &HashMap::new(),
            &mut rng,
        );
    }
}

#[test]
fn bce_loss_and_gradient_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("bce");
    for batch in [1, 7, 33, 257, 1000] {
        let mut g = Graph::new();
        let logits = g.input("logits", &[batch, 1]).unwrap();
        let targets = g.input("targets", &[batch, 1]).unwrap();
        let loss = g.bce_with_logits(logits, targets, 2.5).unwrap();
        let grads = backward(&mut g, loss, &[logits]).unwrap();
        let dlogits = grads.of(logits).unwrap();
        let mut feed = HashMap::new();
        // Logits from -40 to 40: softplus and sigmoid must not overflow.
        feed.insert(
            "logits".to_string(),
            (0..batch)
                .map(|_| {
                    (rng.normal() * 4.0) as f32 + if rng.uniform() < 0.05 { 35.0 } else { 0.0 }
                })
                .collect(),
        );
        feed.insert(
            "targets".to_string(),
            (0..batch)
                .map(|_| (rng.uniform() < 0.4) as u8 as f32)
                .collect(),
        );
        check_graph(
            &ctx,
            &format!("bce batch={batch}"),
            &g,
            &[loss, dlogits],
            &feed,
            &mut rng,
        );
    }
}

#[test]
fn gather_scatter_add_and_collect_follow_the_step_counter() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("gather");
    for (rows, cols, batch) in [(33, 7, 7), (7, 1, 257), (1, 33, 1), (257, 3, 33)] {
        let steps = 3;
        let n = batch * cols;
        let kernels = vec![
            Kernel::Gather(GatherKernel::GatherRows {
                table: input(0, rows * cols),
                perm: input(1, steps * batch),
                out: slot(0, n),
                batch,
                cols,
            }),
            Kernel::Gather(GatherKernel::ScatterAddRows {
                dy: input(2, n),
                perm: input(1, steps * batch),
                out: slot(1, rows * cols),
                batch,
                cols,
            }),
            Kernel::Collect {
                x: slot(0, n),
                out: TensorRef {
                    storage: Storage::State(1),
                    offset: 0,
                    len: steps * n,
                },
            },
        ];
        let plan = hand_plan(
            &[("table", rows * cols), ("perm", steps * batch), ("dy", n)],
            &[("collected", steps * n)],
            &[n, rows * cols],
            kernels,
            &[slot(0, n), slot(1, rows * cols)],
        );
        let what = format!("rows={rows} cols={cols} batch={batch}");
        // Repeated indices: a handful of rows drawn many times.
        let mut perm: Vec<u32> = (0..steps * batch)
            .map(|_| rng.below(rows.min(5)) as u32)
            .collect();
        perm.iter_mut()
            .step_by(3)
            .for_each(|p| *p = (rows - 1) as u32);
        for first in [0, 1] {
            let mut pair = Pair::new(&ctx, vec![plan.clone()], None);
            pair.write("table", &values(&mut rng, rows * cols));
            pair.write("perm", &indices_as_words(&perm));
            pair.write("dy", &values(&mut rng, n));
            pair.write("collected", &values(&mut rng, steps * n));
            pair.run_from(0, first, steps - first);
            pair.check_node(&format!("gather {what} from step {first}"), 0, 0);
            pair.check_node(&format!("scatter_add {what} from step {first}"), 0, 1);
            pair.check_named(&format!("collect {what} from step {first}"), "collected");
            pair.check_named(&format!("step counter {what}"), STEP_STATE);
        }
    }
}

/// Dropout at sizes that fill no workgroup evenly, from unaligned windows, at optimizer
/// counts from 0 to near the top of u32: the GPU's mask (common.wgsl's `dropout_hash`)
/// and its kept values equal the CPU's bit for bit.
#[test]
fn dropout_matches_cpu_bit_for_bit() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("dropout");
    for (n, p) in [(1, 0.5), (7, 0.1), (33, 0.3), (257, 0.5), (70_001, 0.9)] {
        let x = TensorRef {
            storage: Storage::Input(0),
            offset: 3,
            len: n,
        };
        let out = TensorRef {
            storage: Storage::Slot(0),
            offset: 5,
            len: n,
        };
        let step = TensorRef {
            storage: Storage::State(0),
            offset: 0,
            len: 2,
        };
        let kernels = vec![Kernel::Dropout(DropoutKernel {
            x,
            out,
            step,
            seed: rng.next_u64() as u32,
            threshold: riskgrad::engine::graph::dropout_threshold(p),
            scale: (1.0 / (1.0 - p as f64)) as f32,
        })];
        let plan = hand_plan(&[("x", n + 3)], &[], &[n + 5], kernels, &[out]);
        for count in [0u32, 1, 0x9e37_79b9, u32::MAX - 1] {
            let mut pair = Pair::new(&ctx, vec![plan.clone()], None);
            pair.write("x", &values(&mut rng, n + 3));
            pair.write(STEP_STATE, &[f32::from_bits(0), f32::from_bits(count)]);
            pair.run_from(0, 0, 1);
            let c = pair.cpu.read_node(pair.handles[0], 0).unwrap();
            let g = pair.gpu.read_node(pair.handles[0], 0).unwrap();
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&g), bits(&c), "dropout n={n} p={p} count={count}");
            let kept = c.iter().filter(|&&v| v != 0.0).count();
            if n > 1000 {
                assert!((kept as f64 / n as f64 - (1.0 - p as f64)).abs() < 0.01);
            }
            // The counters as words (near the top of u32 they are NaN as floats).
            let (cs, gs) = (pair.cpu.read(STEP_STATE), pair.gpu.read(STEP_STATE));
            assert_eq!(bits(&gs.unwrap()), bits(&cs.unwrap()), "step counters");
        }
    }
}

/// Column copies, a value at a time and (every column count, start and offset a
/// multiple of 4) in vec4s: a concatenation, and copies into part of a wider matrix.
#[test]
fn copy_cols_concat_and_slice_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("copy_cols");
    for widths in [[3, 1, 33], [4, 8, 12]] {
        let mut g = Graph::new();
        let parts: Vec<NodeId> = widths
            .iter()
            .enumerate()
            .map(|(i, &c)| g.input(&format!("p{i}"), &[7, c]).unwrap())
            .collect();
        let cat = g.concat(&parts).unwrap();
        check_graph(
            &ctx,
            &format!("concat {widths:?}"),
            &g,
            &[cat],
            &HashMap::new(),
            &mut rng,
        );
    }

    // (rows, source columns, first column, columns, destination's first column, output
    // offset, in vec4s): the destination's columns before `dst_start` are filled from
    // the source's first ones by a second copy (of the same kind), so every output is
    // written.
    let cases = [
        (33, 9, 2, 4, 0, 1, false),
        (33, 12, 4, 8, 8, 4, true),
        (5, 12, 4, 8, 8, 2, false),
        (3, 8, 0, 8, 4, 0, true),
    ];
    for (rows, src_cols, src_start, cols, dst_start, offset, vec4) in cases {
        let dst_cols = dst_start + cols;
        let what = format!("{cols} of {src_cols} columns from {src_start} into {dst_cols} at {dst_start}, offset {offset}");
        let x = input(0, rows * src_cols);
        let out = TensorRef {
            storage: Storage::Slot(0),
            offset,
            len: rows * dst_cols,
        };
        let copy = Kernel::CopyCols {
            x,
            out,
            rows,
            cols,
            src_cols,
            src_start,
            dst_cols,
            dst_start,
        };
        let head = Kernel::CopyCols {
            x,
            out,
            rows,
            cols: dst_start,
            src_cols,
            src_start: 0,
            dst_cols,
            dst_start: 0,
        };
        let copies = if dst_start == 0 {
            vec![copy]
        } else {
            vec![head, copy]
        };
        for c in &copies {
            assert_eq!(Pipe::of(c) == Pipe::COPY_COLS_VEC4, vec4, "{what}");
        }
        let plan = hand_plan(
            &[("x", rows * src_cols)],
            &[],
            &[offset + rows * dst_cols],
            copies,
            &[out],
        );
        let mut pair = Pair::new(&ctx, vec![plan], None);
        pair.write("x", &values(&mut rng, rows * src_cols));
        pair.run_from(0, 0, 1);
        pair.check_node(&what, 0, 0);
    }
}

/// A small MLP trained on gathered minibatches: every kernel the training step uses,
/// the loss accumulator and the optimizer. A second, forward-only plan in the same
/// executors collects probabilities with the trained (shared) parameters.
fn check_training(ctx: &Arc<GpuContext>, optimizer: Optimizer, limit: Option<u32>, test: &str) {
    let mut rng = rng_for(test);
    let (rows, features, batch, steps) = (65, 5, 7, 4);
    // Training drops a third of the first layer's units (a fresh mask each step).
    let model = |g: &mut Graph, x: NodeId, training: bool| -> NodeId {
        let w1 = g.param("w1", &[features, 33]).unwrap();
        let b1 = g.param("b1", &[33]).unwrap();
        let w2 = g.param("w2", &[33, 7]).unwrap();
        let b2 = g.param("b2", &[7]).unwrap();
        let w3 = g.param("w3", &[7, 1]).unwrap();
        let b3 = g.param("b3", &[1]).unwrap();
        let h = g.linear(x, w1, b1, Act::Tanh).unwrap();
        let p = if training { 1.0 / 3.0 } else { 0.0 };
        let h = g.dropout(h, p, 17).unwrap();
        let h = g.linear(h, w2, b2, Act::Relu).unwrap();
        let h = g
            .matmul_ex(h, w3, None, false, false, Act::Identity)
            .unwrap();
        let b3 = g.reshape(b3, &[1, 1]).unwrap();
        g.add(h, b3).unwrap()
    };

    let mut g = Graph::new();
    let table = g.input("table", &[rows, features]).unwrap();
    let labels = g.input("labels", &[rows, 1]).unwrap();
    let perm = g.input("perm", &[steps * batch]).unwrap();
    let x = g.gather_rows(table, perm, batch).unwrap();
    let y = g.gather_rows(labels, perm, batch).unwrap();
    let logits = model(&mut g, x, true);
    let loss = g.bce_with_logits(logits, y, 1.7).unwrap();
    let grads = backward(&mut g, loss, &[table]).unwrap();
    let dtable = grads.of(table).unwrap();
    let grads = (0..g.params.len())
        .map(|p| (p, grads.of(g.param_node(p)).unwrap()))
        .collect();
    let train = compile(
        &g,
        &PlanRequest {
            keep: vec![logits, dtable],
            loss: Some(loss),
            grads,
            optimizer: Some(optimizer),
            collect: None,
        },
    )
    .unwrap();

    let mut e = Graph::new();
    let table_e = e.input("table", &[rows, features]).unwrap();
    let perm_e = e.input("perm_eval", &[rows]).unwrap();
    let xe = e.gather_rows(table_e, perm_e, 13).unwrap();
    let le = model(&mut e, xe, false);
    let pe = e.sigmoid(le).unwrap();
    let eval = compile(
        &e,
        &PlanRequest {
            collect: Some((pe, 5)),
            ..Default::default()
        },
    )
    .unwrap();

    let params_len = train.layout.total;
    let mut pair = Pair::new(ctx, vec![train, eval], limit);
    pair.write("table", &values(&mut rng, rows * features));
    pair.write(
        "labels",
        &(0..rows)
            .map(|_| (rng.uniform() < 0.3) as u8 as f32)
            .collect::<Vec<_>>(),
    );
    pair.write(
        "perm",
        &indices_as_words(
            &(0..steps * batch)
                .map(|_| rng.below(rows) as u32)
                .collect::<Vec<_>>(),
        ),
    );
    let mut order: Vec<u32> = (0..rows as u32).collect();
    rng.shuffle(&mut order);
    pair.write("perm_eval", &indices_as_words(&order));
    pair.write(riskgrad::engine::plan::LOSS_STATE, &[0.25]);
    pair.write(
        riskgrad::engine::plan::COLLECT_STATE,
        &values(&mut rng, 5 * 13),
    );
    let params: Vec<f32> = values(&mut rng, params_len)
        .iter()
        .map(|v| v * 0.5)
        .collect();
    pair.write_params(&params);

    let what = format!("{optimizer:?} limit={limit:?}");
    // Two runs: the optimizer's step count carries over, the window restarts.
    pair.run_from(0, 0, steps);
    pair.check_node(&format!("{what}: logits"), 0, logits);
    pair.check_node(&format!("{what}: table gradient"), 0, dtable);
    pair.run_from(0, 1, steps - 1);
    assert!(pair.gpu.host_time_of_last_run() > std::time::Duration::ZERO);
    assert!(pair.gpu.host_seconds_per_step().is_some_and(|s| s > 0.0));
    let (c, g_) = (
        pair.cpu.read_params().unwrap(),
        pair.gpu.read_params().unwrap(),
    );
    assert_matches_cpu(&format!("{what}: parameters"), &g_, &c);
    let (c, g_) = (
        pair.cpu.read_opt_state().unwrap(),
        pair.gpu.read_opt_state().unwrap(),
    );
    assert_matches_cpu(&format!("{what}: optimizer state"), &g_, &c);
    pair.check_named(&what, riskgrad::engine::plan::LOSS_STATE);
    pair.check_named(&what, STEP_STATE);

    pair.run_from(1, 0, 5);
    pair.check_named(&what, riskgrad::engine::plan::COLLECT_STATE);
}

#[test]
fn training_with_sgd_momentum_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    check_training(
        &ctx,
        Optimizer::Sgd {
            lr: 0.1,
            momentum: 0.9,
        },
        None,
        "sgd",
    );
}

#[test]
fn training_with_adam_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    check_training(
        &ctx,
        Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        None,
        "adam",
    );
}

#[test]
fn training_with_adamw_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    check_training(
        &ctx,
        Optimizer::AdamW {
            lr: 0.01,
            beta1: 0.8,
            beta2: 0.99,
            eps: 1e-6,
            weight_decay: 0.05,
        },
        None,
        "adamw",
    );
}

#[test]
fn launches_past_the_grid_limit_wrap_into_a_second_dimension() {
    let (ctx, _turn) = gpu_or_skip!();
    // With at most 2 workgroups per dimension every multi-group launch needs y > 1.
    check_training(
        &ctx,
        Optimizer::Adam {
            lr: 0.01,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        Some(2),
        "grid",
    );
    let mut rng = rng_for("grid matmul");
    let mut g = Graph::new();
    let a = g.input("a", &[257, 33]).unwrap();
    let b = g.input("b", &[33, 129]).unwrap();
    let y = g.matmul_ex(a, b, None, false, false, Act::Sigmoid).unwrap();
    let x = g.input("x", &[4100, 3]).unwrap();
    let r = g.reduce_to(x, &[1, 3], 1.0).unwrap();
    let e = g.expand_to(r, &[4100, 3], 2.0).unwrap();
    let z = g.input("z", &[3000, 20]).unwrap();
    let rz = g.reduce_to(z, &[1, 20], 0.5).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![y, r, e, rz],
            ..Default::default()
        },
    )
    .unwrap();
    // 8 per dimension: 15 matmul tiles, 49 expand groups and 20 tree reductions all wrap.
    let mut pair = Pair::new(&ctx, vec![plan], Some(8));
    for (name, len) in [
        ("a", 257 * 33),
        ("b", 33 * 129),
        ("x", 4100 * 3),
        ("z", 3000 * 20),
    ] {
        pair.write(name, &values(&mut rng, len));
    }
    pair.run_from(0, 0, 1);
    pair.check_node("matmul on a wrapped grid", 0, y);
    pair.check_node("reduce on a wrapped grid", 0, r);
    pair.check_node("expand on a wrapped grid", 0, e);
    pair.check_node("tree reduce on a wrapped grid", 0, rz);
}

#[test]
fn poison_shows_outputs_that_were_never_written() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut g = Graph::new();
    let a = g.input("a", &[7, 7]).unwrap();
    let y = g.relu(a).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![y],
            ..Default::default()
        },
    )
    .unwrap();
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let h = gpu.load(plan.clone()).unwrap();
    assert!(
        gpu.read_node(h, y).unwrap().iter().all(|v| v.is_nan()),
        "a poisoned slot reads as NaN before any run"
    );
    gpu.write("a", &[0.5; 49]).unwrap();
    gpu.run(h, 1).unwrap();
    assert_eq!(gpu.read_node(h, y).unwrap(), vec![0.5; 49]);
    let mut plain = GpuExecutor::new(ctx.clone());
    let h = plain.load(plan).unwrap();
    assert_eq!(
        plain.read_node(h, y).unwrap(),
        vec![0.0; 49],
        "without poison buffers start at zero"
    );
}

#[test]
fn bad_requests_are_errors_not_panics() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut g = Graph::new();
    let table = g.input("table", &[4, 2]).unwrap();
    let perm = g.input("perm", &[6]).unwrap();
    let x = g.gather_rows(table, perm, 3).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![x],
            ..Default::default()
        },
    )
    .unwrap();
    let mut gpu = GpuExecutor::new(ctx.clone());
    let h = gpu.load(plan).unwrap();
    assert!(gpu.run(h, 1).is_err(), "an unwritten index list is refused");
    gpu.write("perm", &indices_as_words(&[0, 1, 2, 3, 4, 0]))
        .unwrap();
    let err = gpu.run(h, 2).unwrap_err().to_string();
    assert!(err.contains("past the table"), "{err}");
    gpu.write("perm", &indices_as_words(&[0, 1, 2, 3, 3, 0]))
        .unwrap();
    assert!(gpu.run(h, 3).is_err(), "3 steps of 3 rows need 9 indices");
    gpu.run(h, 2).unwrap();
    assert!(gpu.write("perm", &[0.0; 5]).is_err());
    assert!(gpu.write("nothing", &[0.0]).is_err());
    assert!(gpu.read("nothing").is_err());
    assert!(gpu.read_node(h, 999).is_err());
    assert!(gpu.read_node(7, x).is_err());
    assert!(gpu.run(7, 1).is_err());
    assert!(gpu.write_params(&[0.0; 3]).is_err());

    // A second plan that redeclares an input with another size.
    let mut g2 = Graph::new();
    let t2 = g2.input("table", &[5, 2]).unwrap();
    let y2 = g2.relu(t2).unwrap();
    assert!(gpu
        .load(
            compile(
                &g2,
                &PlanRequest {
                    keep: vec![y2],
                    ..Default::default()
                }
            )
            .unwrap()
        )
        .is_err());
}

#[test]
fn a_later_plan_with_more_optimizer_state_keeps_earlier_plans_working() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("opt growth");
    let plan_with = |optimizer| {
        let mut g = Graph::new();
        let x = g.input("x", &[5, 7]).unwrap();
        let w = g.param("w", &[7, 3]).unwrap();
        let y = g.matmul_ex(x, w, None, false, false, Act::Sigmoid).unwrap();
        let loss = g.mean(y).unwrap();
        let grads = backward(&mut g, loss, &[]).unwrap();
        let grads = vec![(0, grads.of(w).unwrap())];
        compile(
            &g,
            &PlanRequest {
                loss: Some(loss),
                grads,
                optimizer: Some(optimizer),
                ..Default::default()
            },
        )
        .unwrap()
    };
    let sgd = plan_with(Optimizer::Sgd {
        lr: 0.5,
        momentum: 0.5,
    });
    let adam = plan_with(Optimizer::Adam {
        lr: 0.05,
        beta1: 0.9,
        beta2: 0.99,
        eps: 1e-8,
    });
    let total = sgd.layout.total;
    // Loading the Adam plan replaces the optimizer state with a larger (zeroed) one.
    let mut pair = Pair::new(&ctx, vec![sgd, adam], None);
    pair.write("x", &values(&mut rng, 35));
    pair.write(riskgrad::engine::plan::LOSS_STATE, &[0.0]);
    pair.write_params(&values(&mut rng, total));
    pair.run_from(0, 0, 3);
    pair.run_from(1, 0, 2);
    pair.run_from(0, 0, 1);
    let (c, g) = (
        pair.cpu.read_params().unwrap(),
        pair.gpu.read_params().unwrap(),
    );
    assert_matches_cpu("parameters", &g, &c);
    let (c, g) = (
        pair.cpu.read_opt_state().unwrap(),
        pair.gpu.read_opt_state().unwrap(),
    );
    assert_eq!(c.len(), 2 * total);
    assert_matches_cpu("optimizer state", &g, &c);
    pair.check_named("loss", riskgrad::engine::plan::LOSS_STATE);
}
