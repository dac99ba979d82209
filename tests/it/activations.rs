//! Every activation (`Act::ALL`), so a new one is tested by adding it there: its formula
//! against published values, the CPU kernels against the f64 reference on inputs with
//! negative, near-zero and large values, its gradient (alone and fused into a matmul or a
//! convolution) against finite differences, the GPU against the CPU, and
//! `riskgrad train --activation` through to `predict`.

use crate::common;
use crate::common::{predict_cpu, riskgrad, stderr};
use crate::lifecycle_common::temp_dir;

use crate::reference::evaluate;
use common::*;
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::GpuExecutor;
use riskgrad::engine::graph::{
    backward, Act, ConvGeom, ElementwiseOp, Graph, MatMulOp, NodeId, Op, SlopeFrom,
};
use riskgrad::engine::plan::{compile, PlanRequest};
use riskgrad::model_io::SavedModel;
use riskgrad::rng::Rng;
use std::collections::HashMap;

/// Values from Python's `math` (independent of the crate's formulas): GELU's tanh form,
/// `x / (1 + exp(-x))`, and the rest by definition.
#[test]
fn formulas_match_published_values() {
    let table: [(Act, f64, f64); 18] = [
        (Act::Gelu, -3.0, -0.0036373920817729943),
        (Act::Gelu, -0.5, -0.15428599017485606),
        (Act::Gelu, 1.0, 0.8411919906082768),
        (Act::Gelu, 3.0, 2.996362607918227),
        (Act::Silu, -3.0, -0.14227761953270035),
        (Act::Silu, -1.0, -0.2689414213699951),
        (Act::Silu, 0.5, 0.3112296656009273),
        (Act::Silu, 1.0, 0.7310585786300049),
        (Act::LeakyRelu, -2.0, -0.02),
        (Act::LeakyRelu, 0.75, 0.75),
        (Act::Relu, -2.0, 0.0),
        (Act::Relu, 0.75, 0.75),
        (Act::Sigmoid, 0.0, 0.5),
        (Act::Sigmoid, -1.0, 0.2689414213699951),
        (Act::Tanh, 0.5, 0.46211715726000974),
        (Act::Identity, -1.25, -1.25),
        (Act::Sin, 1.0, 0.8414709848078965),
        (Act::Sin, -2.5, -0.5984721441039564),
    ];
    for (act, x, want) in table {
        let got = act.eval(x);
        assert!(
            (got - want).abs() < 1e-15,
            "{act}({x}) = {got}, want {want}"
        );
        let got32 = act.eval(x as f32) as f64;
        assert!(
            (got32 - want).abs() < 1e-6,
            "f32 {act}({x}) = {got32}, want {want}"
        );
    }
}

/// `Act::slope` is the derivative of `Act::eval`, from the value `slope_from` names.
#[test]
fn slopes_are_the_derivatives_of_the_formulas() {
    let mut rng = rng_for("slopes");
    for act in Act::ALL {
        for x in random_values(&mut rng, 200) {
            let x = x * 4.0;
            let h = 1e-6;
            let numeric = (act.eval(x + h) - act.eval(x - h)) / (2.0 * h);
            let v = match act.slope_from() {
                SlopeFrom::Output => act.eval(x),
                SlopeFrom::Input => x,
            };
            let slope = act.slope(v);
            assert!(
                (slope - numeric).abs() < 1e-7 + 1e-6 * numeric.abs(),
                "{act}'({x}) = {slope}, finite differences {numeric}"
            );
        }
    }
}

#[test]
fn names_parse_and_save_as_themselves() {
    for act in Act::ALL {
        assert_eq!(act.name().parse::<Act>(), Ok(act));
        assert_eq!(act.to_string(), act.name());
        let json = serde_json::to_string(&act).unwrap();
        assert_eq!(json, format!("\"{}\"", act.name()));
        assert_eq!(serde_json::from_str::<Act>(&json).unwrap(), act);
    }
    let codes: std::collections::HashSet<u32> = Act::ALL.iter().map(|a| a.code()).collect();
    assert_eq!(codes.len(), Act::ALL.len(), "one WGSL code each");
    let err = "swish".parse::<Act>().unwrap_err();
    assert!(err.contains("swish") && err.contains("leaky_relu"), "{err}");
    assert!(serde_json::from_str::<Act>("\"swish\"").is_err());
}

/// Random values with every kind the kernels must survive: ±[0.1, 1.1), near zero
/// (±1e-6 to ±1e-3, and exact zeros), large (±[10, 100)).
fn awkward_values(rng: &mut Rng, len: usize) -> Vec<f64> {
    let sign = |rng: &mut Rng| if rng.uniform() < 0.5 { -1.0 } else { 1.0 };
    (0..len)
        .map(|i| match i % 5 {
            0 | 1 => sign(rng) * rng.range(0.1, 1.1),
            2 => sign(rng) * rng.range(1e-6, 1e-3),
            3 => sign(rng) * rng.range(10.0, 100.0),
            _ if rng.uniform() < 0.1 => 0.0,
            _ => sign(rng) * rng.range(0.0, 5.0),
        })
        .collect()
}

/// Sizes around the vector width and past the threshold for threaded elementwise work.
const SIZES: [usize; 5] = [1, 7, 33, 1031, 70_001];

/// `y = act(x)` and its gradient `dx` for a random `dy` (node ids `(y, dx)`).
fn unary_graph(act: Act, n: usize) -> (Graph, NodeId, NodeId) {
    let mut g = Graph::new();
    let x = g.input("x", &[n]).unwrap();
    let dy = g.input("dy", &[n]).unwrap();
    let y = g.unary(act, x).unwrap();
    let weighted = g.mul(y, dy).unwrap();
    let loss = g.mean(weighted).unwrap();
    let grads = backward(&mut g, loss, &[x]).unwrap();
    let dx = grads.of(x).expect("x has a gradient");
    (g, y, dx)
}

/// The CPU executor's `Unary` and `ActGrad` against the f64 reference, element by
/// element, within the f32 rounding of the formulas (which grows with |x|: GELU's
/// `1 + tanh` cancels for negative x, its slope carries an x² factor).
#[test]
fn cpu_kernels_match_the_f64_reference() {
    for act in Act::ALL {
        for n in SIZES {
            let name = format!("{act} cpu vs reference n={n}");
            let mut rng = rng_for(&name);
            let (g, y, dx) = unary_graph(act, n);
            let x = awkward_values(&mut rng, n);
            let dy = random_values(&mut rng, n);
            let inputs = HashMap::from([("x".to_string(), x.clone()), ("dy".to_string(), dy)]);
            let want = evaluate(&g, &inputs, &[], 0);
            let mut ex = CpuExecutor::new();
            let h = run_once(&mut ex, &g, &[y, dx], &inputs, &[]);
            for (what, id) in [("forward", y), ("gradient", dx)] {
                let got = ex.read_node(h, id).unwrap();
                for i in 0..n {
                    let (got, want) = (got[i] as f64, want[id][i]);
                    let tol = 1e-5 * want.abs() + 2e-6 * x[i].abs().max(1.0).powi(2);
                    assert!(
                        (got - want).abs() <= tol,
                        "{name} {what}[{i}] at x = {}: got {got}, want {want}",
                        x[i]
                    );
                }
            }
        }
    }
}

/// GELU and SiLU read the pre-activation in their gradient, so a product with them is
/// built as the product and a `Unary`; the others stay fused in the product's epilogue.
#[test]
fn only_output_slope_activations_are_fused() {
    for act in Act::ALL {
        let mut g = Graph::new();
        let a = g.input("a", &[3, 4]).unwrap();
        let b = g.input("b", &[4, 2]).unwrap();
        let y = g.matmul_ex(a, b, None, false, false, act).unwrap();
        let fused = match act.slope_from() {
            SlopeFrom::Output => {
                matches!(g.node(y).op, Op::MatMul(MatMulOp { act: fused, .. }) if fused == act)
            }
            SlopeFrom::Input => {
                let z = g.node(y).inputs[0];
                g.node(y).op == Op::Elementwise(ElementwiseOp::Unary(act))
                    && matches!(
                        g.node(z).op,
                        Op::MatMul(MatMulOp {
                            act: Act::Identity,
                            ..
                        })
                    )
            }
        };
        assert!(fused, "{act}: {:?}", g.nodes);
    }
}

#[test]
fn unary_gradients_match_finite_differences() {
    for act in Act::ALL {
        for n in [1, 7, 33] {
            let name = format!("unary {act} n={n}");
            check_op_gradients(
                &name,
                1,
                |g| {
                    let x = g.input("x", &[n]).unwrap();
                    vec![g.unary(act, x).unwrap()]
                },
                &[None],
            );
        }
    }
}

#[test]
fn fused_matmul_gradients_match_finite_differences() {
    for act in Act::ALL {
        for (m, n, k) in [(1, 1, 1), (7, 5, 3), (3, 9, 33)] {
            for (ta, tb) in [(false, false), (true, true)] {
                let name = format!("matmul {m}x{n}x{k} ta={ta} tb={tb} {act}");
                check_op_gradients(
                    &name,
                    1,
                    |g| {
                        let a = g.input("a", &if ta { [k, m] } else { [m, k] }).unwrap();
                        let b = g.input("b", &if tb { [n, k] } else { [k, n] }).unwrap();
                        let bias = g.input("bias", &[n]).unwrap();
                        vec![g.matmul_ex(a, b, Some(bias), ta, tb, act).unwrap()]
                    },
                    &[None],
                );
            }
        }
    }
}

const GEOM: ConvGeom = ConvGeom {
    stride: [1, 2],
    padding: [1, 0],
    dilation: [1, 1],
};

#[test]
fn fused_conv_gradients_match_finite_differences() {
    for act in Act::ALL {
        let name = format!("conv2d {act}");
        check_op_gradients(
            &name,
            1,
            |g| {
                let x = g.input("x", &[2, 3, 4, 7]).unwrap();
                let w = g.input("w", &[5, 3, 3, 2]).unwrap();
                let b = g.input("bias", &[5]).unwrap();
                vec![g.conv2d(x, w, Some(b), GEOM, act).unwrap()]
            },
            &[None, Some(1)],
        );
    }
}

/// Compiles `g` keeping every computed node, runs it once on the CPU and on a GPU whose
/// slots are poisoned with NaN, and compares every kept node.
fn gpu_matches_cpu(
    ctx: &std::sync::Arc<riskgrad::engine::gpu::GpuContext>,
    name: &str,
    g: &Graph,
    feed: &HashMap<String, Vec<f32>>,
) {
    let keep: Vec<NodeId> = (0..g.nodes.len())
        .filter(|&i| !matches!(g.nodes[i].op, Op::Input { .. }))
        .collect();
    let plan = compile(
        g,
        &PlanRequest {
            keep: keep.clone(),
            ..Default::default()
        },
    )
    .unwrap();
    let mut cpu = CpuExecutor::new();
    let mut gpu = GpuExecutor::new(ctx.clone());
    gpu.set_poison(true);
    let h = cpu.load(plan.clone()).unwrap();
    assert_eq!(gpu.load(plan).unwrap(), h);
    for (input, data) in feed {
        cpu.write(input, data).unwrap();
        gpu.write(input, data).unwrap();
    }
    cpu.run(h, 1).unwrap();
    gpu.run(h, 1).unwrap();
    for id in keep {
        let c = cpu.read_node(h, id).unwrap();
        let gv = gpu.read_node(h, id).unwrap();
        assert_matches_cpu(
            &format!("{name}: node {id} ({})", g.nodes[id].op.name()),
            &gv,
            &c,
        );
    }
}

/// Random f32 values for every input of `g`, the one named `awkward` from
/// `awkward_values`.
fn feed_for(g: &Graph, rng: &mut Rng, awkward: &str) -> HashMap<String, Vec<f32>> {
    g.nodes
        .iter()
        .filter_map(|node| match &node.op {
            Op::Input { name } => {
                let v = if name == awkward {
                    to_f32(&awkward_values(rng, node.numel()))
                } else {
                    values(rng, node.numel())
                };
                Some((name.clone(), v))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn gpu_unary_and_act_grad_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    for act in Act::ALL {
        for n in [1, 255, 1031] {
            let name = format!("gpu unary {act} n={n}");
            let mut rng = rng_for(&name);
            let (g, _, _) = unary_graph(act, n);
            let feed = feed_for(&g, &mut rng, "x");
            gpu_matches_cpu(&ctx, &name, &g, &feed);
        }
    }
}

#[test]
fn gpu_fused_matmul_and_conv_match_cpu() {
    let (ctx, _turn) = gpu_or_skip!();
    for act in Act::ALL {
        let name = format!("gpu matmul {act}");
        let mut rng = rng_for(&name);
        let mut g = Graph::new();
        let a = g.input("a", &[33, 19]).unwrap();
        let b = g.input("b", &[19, 7]).unwrap();
        let bias = g.input("bias", &[7]).unwrap();
        let y = g.matmul_ex(a, b, Some(bias), false, false, act).unwrap();
        let loss = g.mean(y).unwrap();
        backward(&mut g, loss, &[a, b, bias]).unwrap();
        let feed = feed_for(&g, &mut rng, "bias");
        gpu_matches_cpu(&ctx, &name, &g, &feed);

        let name = format!("gpu conv2d {act}");
        let mut g = Graph::new();
        let x = g.input("x", &[3, 2, 5, 9]).unwrap();
        let w = g.input("w", &[4, 2, 3, 3]).unwrap();
        let bias = g.input("bias", &[4]).unwrap();
        let y = g.conv2d(x, w, Some(bias), GEOM, act).unwrap();
        let loss = g.mean(y).unwrap();
        backward(&mut g, loss, &[x, w, bias]).unwrap();
        let feed = feed_for(&g, &mut rng, "bias");
        gpu_matches_cpu(&ctx, &name, &g, &feed);
    }
}

/// `train --activation gelu` saves the activation and `predict` uses it: the scores
/// change when config.json is edited to relu, and a config.json without the field (as
/// written before the flag existed) loads as relu.
#[test]
fn train_with_gelu_then_predict() {
    let dir = temp_dir("activation-gelu");
    let data = fixture("credit_mixed.csv");
    let data = data.to_str().unwrap();
    let o = riskgrad(&[
        "train",
        "--data",
        data,
        "--device",
        "cpu",
        "--hidden",
        "8",
        "--activation",
        "gelu",
        "--epochs",
        "1",
        "--batch",
        "8",
        "--out",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "train: {}", stderr(&o));
    let saved = SavedModel::load(&dir).unwrap();
    assert_eq!(saved.model.activation(), Act::Gelu);
    let gelu = predict_cpu(&dir, data, &dir.join("gelu.csv"));
    assert_eq!(gelu.lines().count(), 41, "a header and a line per row");

    let config = dir.join("config.json");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("\"gelu\""), "{text}");
    std::fs::write(&config, text.replace("\"gelu\"", "\"relu\"")).unwrap();
    let relu = predict_cpu(&dir, data, &dir.join("relu.csv"));
    assert_ne!(gelu, relu, "predict uses the saved activation");

    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let removed = remove_key(&mut json, "activation");
    assert!(removed, "config.json records the activation: {text}");
    std::fs::write(&config, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    assert_eq!(
        SavedModel::load(&dir).unwrap().model.activation(),
        Act::Relu
    );
    assert_eq!(predict_cpu(&dir, data, &dir.join("old.csv")), relu);
}

/// Removes every `key` field in `v`; whether there was one.
fn remove_key(v: &mut serde_json::Value, key: &str) -> bool {
    let (here, children): (bool, Vec<&mut serde_json::Value>) = match v {
        serde_json::Value::Object(map) => (map.remove(key).is_some(), map.values_mut().collect()),
        serde_json::Value::Array(items) => (false, items.iter_mut().collect()),
        _ => return false,
    };
    // Every child is visited (no short-circuit): all the fields go.
    let below = children
        .into_iter()
        .filter_map(|c| remove_key(c, key).then_some(()))
        .count();
    here || below > 0
}

#[test]
fn an_unknown_activation_is_named_with_the_choices() {
    let o = riskgrad(&["train", "--device", "cpu", "--activation", "foo"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("--activation") && err.contains("foo"), "{err}");
    for act in Act::ALL.into_iter().filter(|&a| a != Act::Identity) {
        let offered = err.contains(&format!("{act},")) || err.contains(&format!("{act}]"));
        assert_eq!(offered, act != Act::Sin, "{err}: {act} offered or not");
    }
    assert!(!err.contains("panicked"), "{err}");
    let help = String::from_utf8_lossy(&riskgrad(&["train", "--help"]).stdout).into_owned();
    assert!(
        help.contains("--activation") && help.contains("gelu"),
        "{help}"
    );
}
