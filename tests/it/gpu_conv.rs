//! The convolution, pooling and transpose kernels on the GPU against the CPU executor
//! (itself checked against the f64 definitions in conv_gradcheck.rs), on fresh random
//! inputs at awkward sizes, with the GPU's slots, gradients and states poisoned with NaN
//! first so a kernel that fails to write shows up.
//!
//! Tolerance: |gpu − cpu| ≤ 1e-4·|cpu| + 1e-5·max(1, max|cpu| over the tensor), as in
//! gpu_kernels.rs: the products are summed in another order (tiles, parts).
//!
//! These tests need a wgpu adapter (Mesa's lavapipe is enough). Without one they fail,
//! unless RISKGRAD_SKIP_GPU_TESTS=1.

use crate::common;
use common::{assert_matches_cpu, context, rng_for, take_turn, values};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::engine::graph::{backward, Act, ConvGeom, Graph, NodeId, Op, PoolGeom};
use riskgrad::engine::plan::{compile, Plan, PlanRequest};
use riskgrad::rng::Rng;
use std::collections::HashMap;
use std::sync::Arc;

#[allow(clippy::too_many_arguments)]
/// Loads `plan` into a CPU and a poisoned GPU executor (`limit` caps workgroups per grid
/// dimension), writes the same inputs to both, runs one step and compares `keep`.
fn compare(
    ctx: &Arc<GpuContext>,
    what: &str,
    g: &Graph,
    plan: Plan,
    keep: &[NodeId],
    feed: &HashMap<String, Vec<f32>>,
    limit: Option<u32>,
    rng: &mut Rng,
) {
    let mut cpu = CpuExecutor::new();
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    if let Some(n) = limit {
        gpu.limit_workgroups_per_dimension(n);
    }
    let inputs = plan.inputs.clone();
    let total = plan.layout.total;
    let (hc, hg) = (cpu.load(plan.clone()).unwrap(), gpu.load(plan).unwrap());
    for i in inputs {
        let data = feed
            .get(&i.name)
            .cloned()
            .unwrap_or_else(|| values(rng, i.len));
        cpu.write(&i.name, &data).unwrap();
        gpu.write(&i.name, &data).unwrap();
    }
    let params = values(rng, total);
    cpu.write_params(&params).unwrap();
    gpu.write_params(&params).unwrap();
    cpu.run(hc, 1).unwrap();
    gpu.run(hg, 1).unwrap();
    for &k in keep {
        let c = cpu.read_node(hc, k).unwrap();
        let gv = gpu.read_node(hg, k).unwrap();
        assert_matches_cpu(
            &format!("{what}: node {k} ({})", g.nodes[k].op.name()),
            &gv,
            &c,
        );
    }
}

/// `out = build(g)`, a loss weighting it with a random input, and its backward pass
/// w.r.t. every input: every node computed is compared.
fn check_with_backward(
    ctx: &Arc<GpuContext>,
    what: &str,
    limit: Option<u32>,
    feed: &HashMap<String, Vec<f32>>,
    build: impl Fn(&mut Graph) -> NodeId,
) {
    let mut rng = rng_for(what);
    let mut g = Graph::new();
    let out = build(&mut g);
    let out_shape = g.shape(out).to_vec();
    let weights = g.input("loss_weights", &out_shape).unwrap();
    let weighted = g.mul(out, weights).unwrap();
    let loss = g.mean(weighted).unwrap();
    let wrt: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| matches!(&g.nodes[i].op, Op::Input { name } if name != "loss_weights"))
        .collect();
    let grads = backward(&mut g, loss, &wrt).unwrap();
    let mut keep: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| {
            !matches!(
                g.nodes[i].op,
                Op::Input { .. } | Op::Param { .. } | Op::Reshape
            )
        })
        .collect();
    keep.extend(wrt.iter().filter_map(|&i| grads.of(i)));
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
    compare(ctx, what, &g, plan, &keep, feed, limit, &mut rng);
}

fn conv_geom(stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> ConvGeom {
    ConvGeom {
        stride,
        padding,
        dilation,
    }
}

#[test]
fn conv2d_forward_and_both_gradients_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    type Case = (&'static str, [usize; 4], [usize; 4], ConvGeom, Act);
    let cases: [Case; 10] = [
        (
            "3x3 same",
            [2, 3, 5, 7],
            [4, 3, 3, 3],
            conv_geom([1, 1], [1, 1], [1, 1]),
            Act::Identity,
        ),
        (
            "stride 2",
            [2, 3, 7, 8],
            [3, 3, 2, 3],
            conv_geom([2, 2], [0, 0], [1, 1]),
            Act::Relu,
        ),
        (
            "stride 3 dilation 2 padding 2",
            [1, 2, 9, 11],
            [2, 2, 3, 3],
            conv_geom([3, 3], [2, 2], [2, 2]),
            Act::Tanh,
        ),
        (
            "dilation 2 stride 1",
            [2, 3, 9, 9],
            [5, 3, 3, 3],
            conv_geom([1, 1], [2, 2], [2, 2]),
            Act::Sigmoid,
        ),
        (
            "per-axis geometry",
            [2, 1, 6, 9],
            [3, 1, 2, 3],
            conv_geom([1, 2], [1, 0], [2, 1]),
            Act::Identity,
        ),
        (
            "batch 1 channel 1",
            [1, 1, 5, 5],
            [1, 1, 3, 3],
            conv_geom([1, 1], [1, 1], [1, 1]),
            Act::Relu,
        ),
        (
            "kernel wider than the input, padded",
            [2, 3, 1, 2],
            [2, 3, 1, 5],
            conv_geom([1, 1], [0, 2], [1, 1]),
            Act::Identity,
        ),
        (
            "kernel larger than the input both ways",
            [1, 2, 2, 3],
            [3, 2, 4, 5],
            conv_geom([1, 2], [2, 2], [1, 1]),
            Act::Identity,
        ),
        // Several 64x64 tiles along rows and columns of every product.
        (
            "many tiles",
            [3, 5, 9, 9],
            [70, 5, 3, 3],
            conv_geom([1, 1], [1, 1], [1, 1]),
            Act::Tanh,
        ),
        (
            "odd sizes stride 3",
            [3, 3, 13, 11],
            [7, 3, 3, 2],
            conv_geom([3, 3], [1, 1], [1, 1]),
            Act::Identity,
        ),
    ];
    for (name, xs, ws, geom, act) in cases {
        for bias in [true, false] {
            check_with_backward(
                &ctx,
                &format!("conv2d {name} bias={bias}"),
                None,
                &HashMap::new(),
                |g| {
                    let x = g.input("x", &xs).unwrap();
                    let w = g.input("w", &ws).unwrap();
                    let b = bias.then(|| g.input("b", &[ws[0]]).unwrap());
                    g.conv2d(x, w, b, geom, act).unwrap()
                },
            );
        }
    }
}

#[test]
fn conv1d_shapes_of_the_cnn_and_edge_cases_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    // (n, c, l), (o, k), (stride, padding, dilation)
    let cases = [
        ((33, 3, 6), (32, 3), (1, 1, 1)),
        ((33, 32, 3), (64, 3), (1, 1, 1)),
        ((1, 1, 7), (3, 3), (2, 1, 1)),
        ((2, 3, 9), (4, 3), (3, 0, 1)),
        ((2, 3, 13), (4, 3), (1, 2, 2)),
        ((3, 3, 2), (5, 5), (1, 2, 1)),
        // 8 images of 256 outputs: the weight gradient comes in 2 parts.
        ((8, 1, 256), (2, 3), (1, 1, 1)),
    ];
    for ((n, c, l), (o, k), (stride, padding, dilation)) in cases {
        let what =
            format!("conv1d x [{n},{c},{l}] w [{o},{c},{k}] s{stride} p{padding} d{dilation}");
        check_with_backward(&ctx, &what, None, &HashMap::new(), |g| {
            let x = g.input("x", &[n, c, l]).unwrap();
            let w = g.input("w", &[o, c, k]).unwrap();
            let b = g.input("b", &[o]).unwrap();
            g.conv1d(x, w, Some(b), stride, padding, dilation, Act::Relu)
                .unwrap()
        });
    }
}

#[test]
fn conv_launches_wrap_into_a_second_grid_dimension() {
    let (ctx, _turn) = gpu_or_skip!();
    // At most 17×17 workgroups: the elementwise launches over the 71,874 outputs fit, and
    // the conv products (36 and 20 tiles) and pooling launches (281 groups) wrap.
    check_with_backward(
        &ctx,
        "conv on a wrapped grid",
        Some(17),
        &HashMap::new(),
        |g| {
            let x = g.input("x", &[1, 3, 35, 35]).unwrap();
            let w = g.input("w", &[66, 3, 3, 3]).unwrap();
            let b = g.input("b", &[66]).unwrap();
            let h = g
                .conv2d(x, w, Some(b), conv_geom([1, 1], [0, 0], [1, 1]), Act::Relu)
                .unwrap();
            g.max_pool2d(
                h,
                PoolGeom {
                    kernel: [3, 3],
                    stride: [1, 1],
                    padding: [1, 1],
                },
            )
            .unwrap()
        },
    );
}

#[test]
fn pooling_forward_and_backward_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let cases: [([usize; 4], PoolGeom); 7] = [
        (
            [2, 3, 4, 6],
            PoolGeom {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        ),
        (
            [2, 3, 5, 37],
            PoolGeom {
                kernel: [3, 3],
                stride: [2, 2],
                padding: [1, 1],
            },
        ),
        (
            [2, 2, 5, 7],
            PoolGeom {
                kernel: [2, 3],
                stride: [2, 1],
                padding: [1, 1],
            },
        ),
        (
            [1, 1, 7, 8],
            PoolGeom {
                kernel: [3, 3],
                stride: [3, 3],
                padding: [1, 0],
            },
        ),
        (
            [3, 2, 1, 9],
            PoolGeom {
                kernel: [1, 3],
                stride: [1, 2],
                padding: [0, 1],
            },
        ),
        (
            [33, 32, 1, 6],
            PoolGeom {
                kernel: [1, 2],
                stride: [1, 2],
                padding: [0, 0],
            },
        ),
        (
            [2, 3, 3, 3],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
            },
        ),
    ];
    for (xs, geom) in cases {
        check_with_backward(
            &ctx,
            &format!("max pool {xs:?} {geom:?}"),
            None,
            &HashMap::new(),
            |g| {
                let x = g.input("x", &xs).unwrap();
                g.max_pool2d(x, geom).unwrap()
            },
        );
        check_with_backward(
            &ctx,
            &format!("avg pool {xs:?} {geom:?}"),
            None,
            &HashMap::new(),
            |g| {
                let x = g.input("x", &xs).unwrap();
                g.avg_pool2d(x, geom).unwrap()
            },
        );
    }
    for xs in [[2usize, 3, 4, 5], [5, 7, 1, 9]] {
        check_with_backward(
            &ctx,
            &format!("global average {xs:?}"),
            None,
            &HashMap::new(),
            |g| {
                let x = g.input("x", &xs).unwrap();
                g.global_avg_pool(x).unwrap()
            },
        );
    }
}

#[test]
fn max_pool_ties_pick_the_same_index_as_the_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    let mut rng = rng_for("ties");
    for (xs, geom) in [
        (
            [3, 4, 6, 7],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 2],
                padding: [1, 1],
            },
        ),
        (
            [5, 3, 1, 12],
            PoolGeom {
                kernel: [1, 4],
                stride: [1, 3],
                padding: [0, 2],
            },
        ),
        (
            [2, 3, 5, 19],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 2],
                padding: [1, 1],
            },
        ),
        (
            [3, 2, 1, 13],
            PoolGeom {
                kernel: [1, 3],
                stride: [1, 2],
                padding: [0, 0],
            },
        ),
    ] {
        // Three distinct values: nearly every window holds ties for its maximum.
        let n: usize = xs.iter().product();
        let x: Vec<f32> = (0..n)
            .map(|_| [-0.5f32, 0.25, 0.75][rng.below(3)])
            .collect();
        let feed: HashMap<String, Vec<f32>> = [("x".to_string(), x)].into();
        check_with_backward(&ctx, &format!("ties {xs:?}"), None, &feed, |g| {
            let x = g.input("x", &xs).unwrap();
            g.max_pool2d(x, geom).unwrap()
        });
    }
}

#[test]
fn transpose_matches_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    for shape in [
        vec![2usize, 3, 5],
        vec![33, 6, 3],
        vec![1, 1],
        vec![65, 257],
        vec![2, 2, 7, 9],
    ] {
        check_with_backward(
            &ctx,
            &format!("transpose {shape:?}"),
            None,
            &HashMap::new(),
            |g| {
                let x = g.input("x", &shape).unwrap();
                g.transpose_last(x).unwrap()
            },
        );
    }
}
