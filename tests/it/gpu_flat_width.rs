//! The flat kernels' workgroup widths (`gpu::flat_width`: `WG_FLAT` for the
//! per-element kernels, `WG_SUMS` for the per-output sums): every width trains the MLP,
//! the CNN and the LSTM to the default widths' bytes (each on a device of its own,
//! buffers poisoned with NaN), the tuner's choices are cached and read back, and a
//! device keeps the widths its first pipeline was built with.
//!
//! These tests need a wgpu adapter (Mesa's lavapipe is enough). Without one they fail,
//! unless RISKGRAD_SKIP_GPU_TESTS=1.

use crate::common;
use crate::rnn_common;

use riskgrad::engine::exec::Executor;
use riskgrad::engine::gpu::flat_width::WidthKind;
use riskgrad::engine::gpu::tune::{TuneMode, Tuning};
use riskgrad::engine::gpu::{GpuContext, GpuExecutor};
use riskgrad::nn::{CnnLayers, ModelSpec, RecurrentSpec};
use riskgrad::train::{Split, Trainer};
use std::sync::Arc;

/// A device of its own (its widths are fixed once, for its life) under `tuning`;
/// `None` when GPU tests are skipped.
fn own_device(tuning: Tuning) -> Option<Arc<GpuContext>> {
    let Some(ctx) = common::own_context() else {
        eprintln!("RISKGRAD_SKIP_GPU_TESTS=1: skipped");
        return None;
    };
    ctx.set_tuning(tuning);
    Some(ctx)
}

/// Tuning that forces `widths` (in `WidthKind::ALL`'s order).
fn forced(widths: [u32; 2]) -> Tuning {
    Tuning {
        force_widths: WidthKind::ALL.into_iter().zip(widths).collect(),
        ..Default::default()
    }
}

fn defaults() -> [u32; 2] {
    WidthKind::ALL.map(|k| k.default_width())
}

/// `model` trained one epoch on `ctx`: its weights and, as bits, the epoch's training
/// loss and validation AUC.
fn trained(
    ctx: &Arc<GpuContext>,
    model: &ModelSpec,
    train: &Split,
    val: &Split,
) -> (Vec<f32>, [u64; 2]) {
    let mut exec = GpuExecutor::new(ctx.clone());
    exec.set_poison(true);
    let mut trainer =
        Trainer::new(&mut exec, model, train, val, common::adam_config(5, 1)).expect("trainer");
    let report = trainer.epoch(&mut |_, _, _| {}).expect("epoch");
    drop(trainer);
    let scores = [report.train_loss, report.validation.auc].map(f64::to_bits);
    (exec.read_params().unwrap(), scores)
}

/// The first `rows` rows of a split of the sequence models' data.
fn first_rows(s: &Split, rows: usize) -> Split {
    let width = s.x.len() / s.y.len();
    Split {
        x: s.x[..rows * width].to_vec(),
        y: s.y[..rows].to_vec(),
    }
}

#[test]
fn every_width_trains_the_mlp_cnn_and_lstm_to_the_default_widths_bytes() {
    let _turn = common::take_turn();
    let Some(ctx) = own_device(forced(defaults())) else {
        return;
    };
    // Rows that fill no whole batch of 256 at the end, nor a whole workgroup of any width.
    let (train, val) = rnn_common::peer_splits(0);
    let (train, val) = (first_rows(&train, 1_001), first_rows(&val, 333));
    let models = [
        ModelSpec::lstm(RecurrentSpec::new(5, 3, 6, &[16, 8], false, &[]).unwrap()),
        ModelSpec::cnn(5, 3, 6, CnnLayers::default()).unwrap(),
    ];
    let run = |ctx: &Arc<GpuContext>| {
        let mut exec = GpuExecutor::new(ctx.clone());
        exec.set_poison(true);
        let reports = common::train_default_mlp(&mut exec, 1, 3);
        let mlp = (
            exec.read_params().unwrap(),
            [reports[0].train_loss, reports[0].validation.auc].map(f64::to_bits),
        );
        let mut all = vec![mlp];
        all.extend(models.iter().map(|m| trained(ctx, m, &train, &val)));
        all
    };
    let base = run(&ctx);
    assert_eq!(ctx.widths(), defaults());
    // Each kind's other widths, side by side; then a sums width below the default (not
    // offered, but a grid sized for the default would leave outputs unwritten).
    let others = |k: WidthKind| k.widths()[1..].to_vec();
    let [per_element, sums] = WidthKind::ALL.map(others);
    let mut cases: Vec<[u32; 2]> = per_element
        .into_iter()
        .zip(sums)
        .map(|(e, s)| [e, s])
        .collect();
    cases.push([64, 16]);
    for widths in cases {
        let ctx = own_device(forced(widths)).unwrap();
        let got = run(&ctx);
        assert_eq!(ctx.widths(), widths, "the device took the forced widths");
        for (i, ((weights, scores), (base_weights, base_scores))) in
            got.iter().zip(&base).enumerate()
        {
            let model = ["mlp", "lstm", "cnn"][i];
            assert_eq!(
                common::first_difference(weights, base_weights),
                None,
                "{model} at widths {widths:?}: other weights"
            );
            assert_eq!(
                scores, base_scores,
                "{model} at widths {widths:?}: other loss or AUC"
            );
        }
    }
}

fn write(path: &std::path::Path, bytes: &[u8]) -> riskgrad::Result<()> {
    riskgrad::files::write_atomically(path, bytes)
}

/// Loads a small plan on `ctx` (its first: the width is decided there).
fn load_a_plan(ctx: &Arc<GpuContext>) {
    use riskgrad::engine::graph::{Act, Graph};
    use riskgrad::engine::plan::{compile, PlanRequest};
    let mut g = Graph::new();
    let a = g.input("a", &[37, 5]).unwrap();
    let y = g.unary(Act::Tanh, a).unwrap();
    let plan = compile(
        &g,
        &PlanRequest {
            keep: vec![y],
            ..Default::default()
        },
    )
    .unwrap();
    GpuExecutor::new(ctx.clone()).load(plan).unwrap();
}

/// The cache entry of `kind`'s width in `file`, if any.
fn cached_width(file: &std::path::Path, kind: WidthKind) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(file).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["entries"]
        .as_array()?
        .iter()
        .find(|e| is_width_entry(e, kind))
        .map(|e| e["variant"].clone())
}

/// Whether a cache entry is `kind`'s width's (as the tuner keys it).
fn is_width_entry(entry: &serde_json::Value, kind: WidthKind) -> bool {
    let suffix = match kind {
        WidthKind::PerElement => "| flat workgroup width",
        WidthKind::Sums => "| sum workgroup width",
    };
    entry["key"].as_str().is_some_and(|k| k.ends_with(suffix))
}

/// Sets `kind`'s width's cache entry in `file` to `width`.
fn set_cached_width(file: &std::path::Path, kind: WidthKind, width: &str) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    let entry = json["entries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|e| is_width_entry(e, kind))
        .expect("the width's entry");
    entry["variant"] = serde_json::json!(width);
    std::fs::write(file, serde_json::to_vec(&json).unwrap()).unwrap();
}

#[test]
fn the_widths_are_measured_once_cached_and_read_back() {
    let _turn = common::take_turn();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("gpu-tune.json");
    let tuning = |mode| Tuning {
        budget_seconds: None,
        ..Tuning::new(mode, Some(file.clone()), Some(write), None)
    };
    let cached = || tuning(TuneMode::Cached);
    // An adapter's first run (nothing of it in the cache) does not time the widths in
    // `cached`: its cold start is for the GEMM shapes.
    let Some(newcomer) = own_device(cached()) else {
        return;
    };
    load_a_plan(&newcomer);
    assert_eq!(newcomer.widths(), defaults());
    assert!(WidthKind::ALL
        .iter()
        .all(|&k| newcomer.width_choice(k).is_none()));
    // `full` times them.
    let first = own_device(tuning(TuneMode::Full)).unwrap();
    load_a_plan(&first);
    for kind in WidthKind::ALL {
        let choice = first.width_choice(kind).expect("the width was decided");
        assert_eq!(choice.width, first.width(kind));
        let timed: Vec<u32> = choice
            .times
            .iter()
            .filter(|(_, t)| {
                t.as_ref()
                    .is_ok_and(|per_probe| per_probe.iter().all(|&s| s > 0.0))
            })
            .map(|(w, _)| *w)
            .collect();
        assert_eq!(
            timed,
            kind.widths(),
            "every width timed, none dropped: {choice:?}"
        );
        assert_eq!(
            cached_width(&file, kind),
            Some(serde_json::json!(first.width(kind).to_string())),
            "{kind:?}: the choice is in the cache file"
        );
    }

    // A later device reads the cache's widths (here edited to the last offered)
    // without timing.
    let last = WidthKind::ALL.map(|k| *k.widths().last().unwrap());
    for kind in WidthKind::ALL {
        set_cached_width(&file, kind, &last[kind as usize].to_string());
    }
    let second = own_device(cached()).unwrap();
    load_a_plan(&second);
    assert_eq!(second.widths(), last);
    for kind in WidthKind::ALL {
        let choice = second.width_choice(kind).unwrap();
        assert!(choice.times.is_empty(), "{kind:?}: read, not timed");
    }

    // A width the engine does not offer is measured again, and the entry rewritten.
    set_cached_width(&file, WidthKind::Sums, "1000");
    let third = own_device(cached()).unwrap();
    load_a_plan(&third);
    let sums = third.width(WidthKind::Sums);
    assert!(WidthKind::Sums.widths().contains(&sums));
    assert!(
        !third
            .width_choice(WidthKind::Sums)
            .unwrap()
            .times
            .is_empty(),
        "timed again"
    );
    assert_eq!(
        cached_width(&file, WidthKind::Sums),
        Some(serde_json::json!(sums.to_string()))
    );
    assert_eq!(
        third.width(WidthKind::PerElement),
        last[0],
        "the other still read"
    );

    // Tuning off: the defaults, nothing timed.
    let off = own_device(Tuning::default()).unwrap();
    load_a_plan(&off);
    assert_eq!(off.widths(), defaults());
    assert!(WidthKind::ALL
        .iter()
        .all(|&k| off.width_choice(k).is_none()));
}

#[test]
fn a_device_keeps_the_widths_its_first_pipeline_was_built_with() {
    let _turn = common::take_turn();
    let Some(ctx) = own_device(Tuning::default()) else {
        return;
    };
    ctx.prepare([riskgrad::engine::gpu::shaders::Pipe::FILL])
        .unwrap();
    ctx.set_tuning(forced([64, 128]));
    load_a_plan(&ctx);
    assert_eq!(ctx.widths(), defaults());
}
