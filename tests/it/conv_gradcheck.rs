//! Convolution, pooling and transpose: finite-difference checks of every vector-Jacobian
//! rule in f64 on the reference interpreter (whose conv is the definition written as
//! loops), and the CPU executor's kernels (forward and backward, whole images per
//! product and one image per product) against it.

use crate::common;

use crate::reference::evaluate;
use common::*;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::graph::{backward, Act, ConvGeom, Graph, NodeId, Op, PoolGeom};
use riskgrad::rng::Rng;

/// `check_op_gradients` of one output, on the CPU with the default convolution scratch
/// and with one image per product.
fn check(name: &str, build: impl Fn(&mut Graph) -> NodeId) {
    check_op_gradients(name, 1, |g| vec![build(g)], &[None, Some(1)]);
}

fn geom(stride: [usize; 2], padding: [usize; 2], dilation: [usize; 2]) -> ConvGeom {
    ConvGeom {
        stride,
        padding,
        dilation,
    }
}

/// x `[n,c,h,w]`, w `[o,c,kh,kw]`, an optional bias, one activation.
fn conv_case(name: &str, xs: [usize; 4], ws: [usize; 4], gm: ConvGeom, bias: bool, act: Act) {
    check(name, |g| {
        let x = g.input("x", &xs).unwrap();
        let w = g.param("conv.weight", &ws).unwrap();
        let b = bias.then(|| g.param("conv.bias", &[ws[0]]).unwrap());
        g.conv2d(x, w, b, gm, act).unwrap()
    });
}

#[test]
fn conv2d_input_weight_and_bias_gradients() {
    conv_case(
        "3x3 same padding",
        [2, 3, 5, 7],
        [4, 3, 3, 3],
        geom([1, 1], [1, 1], [1, 1]),
        true,
        Act::Identity,
    );
    conv_case(
        "2x3 stride 2 no padding, tanh",
        [2, 3, 7, 8],
        [3, 3, 2, 3],
        geom([2, 2], [0, 0], [1, 1]),
        true,
        Act::Tanh,
    );
    conv_case(
        "stride 3 dilation 2 padding 2",
        [1, 2, 9, 11],
        [2, 2, 3, 3],
        geom([3, 3], [2, 2], [2, 2]),
        false,
        Act::Identity,
    );
    conv_case(
        "mixed strides and dilations per axis",
        [2, 1, 6, 9],
        [3, 1, 2, 3],
        geom([1, 2], [1, 0], [2, 1]),
        true,
        Act::Sigmoid,
    );
    conv_case(
        "batch 1 channel 1 relu",
        [1, 1, 5, 5],
        [1, 1, 3, 3],
        geom([1, 1], [1, 1], [1, 1]),
        true,
        Act::Relu,
    );
    conv_case(
        "kernel wider than the input, padded",
        [2, 3, 1, 2],
        [2, 3, 1, 5],
        geom([1, 1], [0, 2], [1, 1]),
        true,
        Act::Identity,
    );
    conv_case(
        "kernel taller and wider than the input",
        [1, 2, 2, 3],
        [3, 2, 4, 5],
        geom([1, 2], [2, 2], [1, 1]),
        true,
        Act::Identity,
    );
    conv_case(
        "1x1 kernel stride 2",
        [3, 4, 5, 5],
        [2, 4, 1, 1],
        geom([2, 2], [0, 0], [1, 1]),
        true,
        Act::Identity,
    );
}

#[test]
fn conv1d_through_the_2d_kernels() {
    for (name, (n, c, l), (o, k), (stride, padding, dilation)) in [
        ("conv1d peer layer", (3, 3, 6), (5, 3), (1, 1, 1)),
        ("conv1d stride 2 odd length", (2, 3, 9), (4, 3), (2, 1, 1)),
        ("conv1d stride 3 dilation 2", (2, 1, 13), (3, 2), (3, 0, 2)),
        (
            "conv1d kernel wider than input",
            (1, 3, 3),
            (2, 5),
            (1, 2, 1),
        ),
    ] {
        check(name, |g| {
            let x = g.input("x", &[n, c, l]).unwrap();
            let w = g.param("conv.weight", &[o, c, k]).unwrap();
            let b = g.param("conv.bias", &[o]).unwrap();
            g.conv1d(x, w, Some(b), stride, padding, dilation, Act::Tanh)
                .unwrap()
        });
    }
}

#[test]
fn conv_weight_gradient_summed_in_parts() {
    // 8 images of 256 outputs: the weight gradient is computed in 2 parts.
    assert_eq!(riskgrad::engine::graph::weight_grad_splits(8, 256, 2, 3), 2);
    check("conv1d weight gradient in parts", |g| {
        let x = g.input("x", &[8, 1, 256]).unwrap();
        let w = g.param("conv.weight", &[2, 1, 3]).unwrap();
        g.conv1d(x, w, None, 1, 1, 1, Act::Identity).unwrap()
    });
}

#[test]
fn max_pooling_routes_the_gradient_through_the_argmax() {
    let cases: [(&str, [usize; 4], PoolGeom); 6] = [
        (
            "max 2x2 stride 2",
            [2, 3, 4, 6],
            PoolGeom {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        ),
        // Planes of 16 or more columns take the CPU's row sweep.
        (
            "max wide plane 2x3 padded",
            [1, 2, 3, 20],
            PoolGeom {
                kernel: [2, 3],
                stride: [1, 2],
                padding: [1, 1],
            },
        ),
        (
            "max wide plane 3x3 stride 1",
            [1, 1, 4, 17],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 1],
                padding: [1, 1],
            },
        ),
        (
            "max 2x3 overlapping windows, padded",
            [2, 2, 5, 7],
            PoolGeom {
                kernel: [2, 3],
                stride: [2, 1],
                padding: [1, 1],
            },
        ),
        (
            "max 3x3 stride 3 odd sizes",
            [1, 1, 7, 8],
            PoolGeom {
                kernel: [3, 3],
                stride: [3, 3],
                padding: [1, 0],
            },
        ),
        (
            "max window as large as the input",
            [2, 1, 3, 3],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 1],
                padding: [0, 0],
            },
        ),
    ];
    for (name, xs, gm) in cases {
        check(name, |g| {
            let x = g.input("x", &xs).unwrap();
            g.max_pool2d(x, gm).unwrap()
        });
    }
    for (name, (kernel, stride, padding)) in [
        ("max1d 2/2 (the CNN's)", (2, 2, 0)),
        ("max1d 3/2 overlapping, unpadded", (3, 2, 0)),
        ("max1d 3/2 padded", (3, 2, 1)),
        ("max1d 3/1", (3, 1, 1)),
    ] {
        check(name, |g| {
            let x = g.input("x", &[3, 2, 7]).unwrap();
            g.max_pool1d(x, kernel, stride, padding).unwrap()
        });
    }
}

#[test]
fn average_pooling_and_global_average() {
    check("avg 2x2 stride 2", |g| {
        let x = g.input("x", &[2, 3, 4, 6]).unwrap();
        g.avg_pool2d(
            x,
            PoolGeom {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        )
        .unwrap()
    });
    check("avg 3x2 overlapping, padded", |g| {
        let x = g.input("x", &[2, 2, 5, 7]).unwrap();
        g.avg_pool2d(
            x,
            PoolGeom {
                kernel: [3, 2],
                stride: [1, 2],
                padding: [1, 1],
            },
        )
        .unwrap()
    });
    check("avg wide plane 3x3 padded", |g| {
        let x = g.input("x", &[1, 2, 3, 21]).unwrap();
        g.avg_pool2d(
            x,
            PoolGeom {
                kernel: [3, 3],
                stride: [2, 2],
                padding: [1, 1],
            },
        )
        .unwrap()
    });
    check("avg1d 3/2 padded", |g| {
        let x = g.input("x", &[3, 2, 7]).unwrap();
        g.avg_pool1d(x, 3, 2, 1).unwrap()
    });
    check("global average 2d", |g| {
        let x = g.input("x", &[2, 3, 4, 5]).unwrap();
        g.global_avg_pool(x).unwrap()
    });
    check("global average 1d", |g| {
        let x = g.input("x", &[3, 4, 7]).unwrap();
        g.global_avg_pool(x).unwrap()
    });
}

#[test]
fn transpose_of_the_last_two_axes() {
    check("transpose [2,3,5]", |g| {
        let x = g.input("x", &[2, 3, 5]).unwrap();
        let t = g.transpose_last(x).unwrap();
        g.tanh(t).unwrap()
    });
    check("transpose [11,9]", |g| {
        let x = g.input("x", &[11, 9]).unwrap();
        g.transpose_last(x).unwrap()
    });
}

#[test]
fn a_small_cnn_end_to_end() {
    // The peer CNN's shape in miniature: time-major history, transpose, conv, pool,
    // conv, flatten, concat statics, dense.
    check("small cnn", |g| {
        let (batch, steps, channels) = (3, 6, 2);
        let hist = g.input("hist", &[batch, steps, channels]).unwrap();
        let stat = g.input("static", &[batch, 2]).unwrap();
        let x = g.transpose_last(hist).unwrap();
        let w1 = g.param("c1.weight", &[4, channels, 3]).unwrap();
        let b1 = g.param("c1.bias", &[4]).unwrap();
        let h = g.conv1d(x, w1, Some(b1), 1, 1, 1, Act::Tanh).unwrap();
        let h = g.max_pool1d(h, 2, 2, 0).unwrap();
        let w2 = g.param("c2.weight", &[3, 4, 3]).unwrap();
        let b2 = g.param("c2.bias", &[3]).unwrap();
        let h = g.conv1d(h, w2, Some(b2), 1, 1, 1, Act::Sigmoid).unwrap();
        let flat = g.reshape(h, &[batch, 9]).unwrap();
        let cat = g.concat(&[flat, stat]).unwrap();
        let w3 = g.param("d.weight", &[11, 1]).unwrap();
        let b3 = g.param("d.bias", &[1]).unwrap();
        g.linear(cat, w3, b3, Act::Identity).unwrap()
    });
}

#[test]
fn max_pool_ties_go_to_the_first_position_in_the_window() {
    // Windows of 2x2 (stride 2) and of 3 with stride 1 over values full of ties; the
    // winner is the first maximum in row-major order within the window.
    let mut g = Graph::new();
    let x = g.input("x", &[1, 1, 2, 4]).unwrap();
    let y = g
        .max_pool2d(
            x,
            PoolGeom {
                kernel: [2, 2],
                stride: [2, 2],
                padding: [0, 0],
            },
        )
        .unwrap();
    let idx = g.nodes[y].inputs[1];
    let xv = vec![1.0, 1.0, 2.0, 0.5, 1.0, 0.5, 2.0, 2.0];
    let mut ex = CpuExecutor::new();
    let plan = riskgrad::engine::plan::compile(
        &g,
        &riskgrad::engine::plan::PlanRequest {
            keep: vec![y, idx],
            ..Default::default()
        },
    )
    .unwrap();
    let h = ex.load(plan).unwrap();
    ex.write("x", &xv).unwrap();
    ex.run(h, 1).unwrap();
    assert_eq!(
        ex.read_node(h, idx).unwrap(),
        vec![0.0, 2.0],
        "window 1: four 1s and a 0.5 → (0,0); window 2: 2 at (0,2), (1,2), (1,3) → (0,2)"
    );
    assert_eq!(ex.read_node(h, y).unwrap(), vec![1.0, 2.0]);
    let reference = evaluate(
        &g,
        &[("x".to_string(), xv.iter().map(|&v| v as f64).collect())].into(),
        &[],
        0,
    );
    assert_eq!(reference[idx], vec![0.0, 2.0]);

    // Padding never wins, even over negative values.
    let mut g = Graph::new();
    let x = g.input("x", &[1, 1, 5]).unwrap();
    let y = g.max_pool1d(x, 3, 2, 1).unwrap();
    let reference = evaluate(
        &g,
        &[("x".to_string(), vec![-3.0, -3.0, -1.0, -1.0, -2.0])].into(),
        &[],
        0,
    );
    assert_eq!(reference[y], vec![-3.0, -1.0, -1.0]);
    assert_eq!(
        reference[g.nodes[g.nodes[y].inputs[0]].inputs[1]],
        vec![0.0, 2.0, 3.0]
    );
}

#[test]
fn bad_geometry_is_a_clear_error() {
    let mut g = Graph::new();
    let x = g.input("x", &[2, 3, 4]).unwrap();
    let w = g.input("w", &[5, 3, 7]).unwrap();
    let e = g
        .conv1d(x, w, None, 1, 0, 1, Act::Identity)
        .unwrap_err()
        .to_string();
    assert!(e.contains("conv1d") && e.contains("does not fit"), "{e}");
    let w2 = g.input("w2", &[5, 2, 3]).unwrap();
    let e = g
        .conv1d(x, w2, None, 1, 1, 1, Act::Identity)
        .unwrap_err()
        .to_string();
    assert!(e.contains("channels"), "{e}");
    let w3 = g.input("w3", &[5, 3, 3]).unwrap();
    assert!(
        g.conv1d(x, w3, None, 0, 1, 1, Act::Identity).is_err(),
        "stride 0"
    );
    assert!(
        g.conv1d(x, w3, None, 1, 1, 0, Act::Identity).is_err(),
        "dilation 0"
    );
    let bad_bias = g.input("b", &[4]).unwrap();
    assert!(g
        .conv1d(x, w3, Some(bad_bias), 1, 1, 1, Act::Identity)
        .is_err());
    let e = g.max_pool1d(x, 2, 2, 2).unwrap_err().to_string();
    assert!(e.contains("max_pool1d") && e.contains("padding"), "{e}");
    assert!(
        g.max_pool1d(x, 5, 1, 0).is_err(),
        "window longer than the input"
    );
    assert!(g.avg_pool1d(x, 2, 0, 0).is_err(), "stride 0");
    let flat = g.input("flat", &[6]).unwrap();
    assert!(g.transpose_last(flat).is_err());
    assert!(g.global_avg_pool(flat).is_err());
}

/// Shapes large enough for the CPU's parallel paths (convolutions split into lanes,
/// pooling split over planes), with one, a few and all images per product: every node,
/// forward and backward, against the f64 reference.
#[test]
fn cpu_lanes_and_chunks_match_the_reference() {
    let cases: [(&str, [usize; 4], [usize; 4], ConvGeom); 3] = [
        // Over 2^20 multiply-adds: split into lanes (6 and 7 images over 4 lanes).
        (
            "conv1d lanes",
            [7, 16, 1, 128],
            [32, 16, 1, 3],
            geom([1, 1], [0, 1], [1, 1]),
        ),
        (
            "conv2d lanes strided",
            [6, 8, 19, 17],
            [24, 8, 3, 3],
            geom([2, 1], [1, 1], [1, 2]),
        ),
        // Weight gradient in parts; pooling over 147,456 values, split over planes.
        (
            "conv2d in parts",
            [9, 2, 64, 64],
            [4, 2, 3, 3],
            geom([1, 1], [1, 1], [1, 1]),
        ),
    ];
    for (name, xs, ws, gm) in cases {
        let mut rng = Rng::new(seed_of(name));
        let mut g = Graph::new();
        let x = g.input("x", &xs).unwrap();
        let w = g.input("w", &ws).unwrap();
        let b = g.input("b", &[ws[0]]).unwrap();
        let y = g.conv2d(x, w, Some(b), gm, Act::Relu).unwrap();
        let pooled = g
            .max_pool2d(
                y,
                PoolGeom {
                    kernel: [1, 2],
                    stride: [1, 2],
                    padding: [0, 1],
                },
            )
            .unwrap();
        let avg = g
            .avg_pool2d(
                y,
                PoolGeom {
                    kernel: [1, 3],
                    stride: [1, 1],
                    padding: [0, 1],
                },
            )
            .unwrap();
        let a = g.mean(pooled).unwrap();
        let c = g.mean(avg).unwrap();
        let loss = g.add(a, c).unwrap();
        let grads = backward(&mut g, loss, &[x, w, b]).unwrap();
        let (inputs, params) = random_feed(&g, &mut rng, 1);
        let values = evaluate(&g, &inputs, &params, 0);
        let keep: Vec<NodeId> = (0..g.nodes.len())
            .filter(|&i| !matches!(g.nodes[i].op, Op::Input { .. }))
            .collect();
        for budget in [None, Some(1), Some(40_000)] {
            let mut ex = CpuExecutor::new();
            if let Some(words) = budget {
                ex.limit_conv_scratch(words);
            }
            let h = run_once(&mut ex, &g, &keep, &inputs, &params);
            for &id in &keep {
                let got = ex.read_node(h, id).unwrap();
                assert_close(
                    &format!(
                        "{name} budget {budget:?}: node {id} ({})",
                        g.nodes[id].op.name()
                    ),
                    &got,
                    &values[id],
                    1e-4,
                    1e-5,
                );
            }
        }
        assert!(grads.of(w).is_some());
    }
}

#[test]
fn max_pool_ties_match_the_reference_on_every_cpu_path() {
    // Three distinct values: nearly every window has tied maxima. Narrow planes take the
    // CPU's plane blocks, wide ones its row sweep, unpadded 1-D windows its runs.
    let mut rng = Rng::new(seed_of("ties both paths"));
    for (xs, gm) in [
        (
            [3usize, 4, 6, 7],
            PoolGeom {
                kernel: [3, 3],
                stride: [1, 2],
                padding: [1, 1],
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
            [2, 2, 1, 40],
            PoolGeom {
                kernel: [1, 4],
                stride: [1, 3],
                padding: [0, 2],
            },
        ),
        // 1-D without padding: each window a contiguous run.
        (
            [3, 2, 1, 13],
            PoolGeom {
                kernel: [1, 3],
                stride: [1, 2],
                padding: [0, 0],
            },
        ),
        (
            [4, 3, 1, 12],
            PoolGeom {
                kernel: [1, 4],
                stride: [1, 4],
                padding: [0, 0],
            },
        ),
    ] {
        let mut g = Graph::new();
        let x = g.input("x", &xs).unwrap();
        let y = g.max_pool2d(x, gm).unwrap();
        let idx = g.nodes[y].inputs[1];
        let n: usize = xs.iter().product();
        let xv: Vec<f64> = (0..n).map(|_| [-0.5, 0.25, 0.75][rng.below(3)]).collect();
        let inputs = [("x".to_string(), xv)].into();
        let want = evaluate(&g, &inputs, &[], 0);
        let mut ex = CpuExecutor::new();
        let h = run_once(&mut ex, &g, &[idx, y], &inputs, &[]);
        assert_eq!(
            ex.read_node(h, idx).unwrap(),
            to_f32(&want[idx]),
            "{xs:?}: argmax"
        );
        assert_eq!(
            ex.read_node(h, y).unwrap(),
            to_f32(&want[y]),
            "{xs:?}: values"
        );
    }
}
