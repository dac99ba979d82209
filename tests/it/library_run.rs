//! A model directory written through the library alone, as another front end would:
//! `train_network` on a prepared file, `save_network_run`, then the saved model read
//! back scores the validation rows exactly as training scored them, and the observer
//! hears the run in order; for one network and for an ensemble of members.

use crate::eval_rows::{rows, write};
use crate::lifecycle_common::temp_dir;
use riskgrad::data::{prepare, NumericEncoding, PrepareOptions, Prepared};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::gpu::DeviceChoice;
use riskgrad::engine::graph::{Act, Optimizer};
use riskgrad::metrics::evaluate;
use riskgrad::model_io::SavedModel;
use riskgrad::nn::architecture::{Architecture, NetworkKind};
use riskgrad::nn::CnnLayers;
use riskgrad::scoring::Scorer;
use riskgrad::stability::Baseline;
use riskgrad::train::defaults::Stopping;
use riskgrad::train::model_dir::{save_network_run, RunFacts, BOOTSTRAP};
use riskgrad::train::network::{
    train_network, NamedDevice, NetworkObserver, NetworkRequest, NetworkRun, PlannedNetwork,
};
use riskgrad::train::FitEvent;

/// What the observer heard, in order.
#[derive(Default)]
struct Heard(Vec<String>);

impl NetworkObserver for Heard {
    fn planned(&mut self, plan: &PlannedNetwork, prepared: &Prepared) -> riskgrad::Result<()> {
        assert_eq!(plan.model.inputs(), prepared.n_features());
        self.0
            .push(format!("planned {} epochs", plan.settings.epochs));
        Ok(())
    }
    fn started(&mut self, streamed: Option<usize>) -> riskgrad::Result<()> {
        assert_eq!(streamed, None);
        self.0.push("started".into());
        Ok(())
    }
    fn event(&mut self, event: FitEvent) {
        match event {
            FitEvent::EpochEnd(report) => self.0.push(format!("epoch {}", report.epoch)),
            FitEvent::MemberStart { member, .. } => self.0.push(format!("member {member}")),
            _ => {}
        }
    }
}

#[test]
fn the_library_trains_and_saves_a_model_that_scores_as_it_trained() {
    library_run(
        1,
        &[
            "planned 3 epochs",
            "started",
            "epoch 1",
            "epoch 2",
            "epoch 3",
        ],
    );
}

#[test]
fn the_library_trains_and_saves_an_ensemble_of_members_that_scores_as_it_trained() {
    let heard = [
        "planned 3 epochs",
        "member 0",
        "started",
        "epoch 1",
        "epoch 2",
        "epoch 3",
        "member 1",
        "epoch 1",
        "epoch 2",
        "epoch 3",
    ];
    library_run(2, &heard);
}

/// Trains `members` networks through the library, saves and reloads them, and checks
/// what the observer heard against `heard`.
fn library_run(members: usize, heard_in_order: &[&str]) {
    let dir = temp_dir(&format!("library-run-{members}"));
    let csv = dir.join("train.csv");
    let (header, body) = rows(31, 700);
    write(&csv, &header, &body);
    let options = PrepareOptions {
        val_fraction: 0.25,
        seed: 3,
        ..Default::default()
    };
    let mut prepared = prepare(&csv, &options).unwrap();
    let architecture = Architecture {
        kind: NetworkKind::Mlp,
        hidden: vec![8, 4],
        activation: Act::Silu,
        dropout: 0.0,
        cnn: CnnLayers::default(),
        dense: None,
        bidirectional: false,
        monotone: Vec::new(),
        numeric_encoding: NumericEncoding::Ple,
        sequence: Vec::new(),
        time_order: None,
    };
    let request = NetworkRequest {
        stopping: Stopping::Off,
        stop_split: 0.2,
        batch: Some(32),
        epochs: Some(3),
        optimizer: Optimizer::Adam {
            lr: 3e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        pos_weight: 1.0,
        seed: 3,
        members,
    };
    let mut heard = Heard::default();
    let trained = train_network(
        &architecture,
        &request,
        &mut prepared,
        NetworkRun {
            devices: &mut NamedDevice::new(DeviceChoice::Cpu),
            resume: None,
            checkpoint: None,
            checkpoint_every: None,
            stop: None,
            data_name: "train.csv".into(),
            val_split: 0.25,
        },
        &mut heard,
    )
    .unwrap();
    assert_eq!(heard.0, heard_in_order);
    assert_eq!(trained.probs.len(), prepared.val.rows());
    assert_eq!(trained.member_params.len(), members);
    assert_eq!(saved_members(&trained.model), members);

    let mut exec = CpuExecutor::new();
    let stability = Baseline::scored(
        &mut exec,
        &trained.model,
        &trained.params,
        &[&prepared.train.x],
        prepared.profile.clone(),
    )
    .unwrap();
    let out = dir.join("model");
    let facts = RunFacts {
        data_name: "train.csv".into(),
        dropped_by_caller: Vec::new(),
        date_range: None,
        seed: 3,
        started: std::time::Instant::now(),
    };
    let figures = save_network_run(&out, &facts, &prepared, &trained, &stability, None).unwrap();
    let expected = evaluate(&trained.probs, &prepared.val.y, None, BOOTSTRAP, 3);
    assert_eq!(figures.evaluation.auc, expected.auc);
    assert!(
        figures.challenger.validation_auc > 0.6,
        "{}",
        figures.challenger.validation_auc
    );
    for file in [
        "model.safetensors",
        "config.json",
        "metrics.json",
        "model_card.md",
        "report.html",
    ] {
        assert!(out.join(file).is_file(), "{file} missing");
    }

    let saved = SavedModel::load(&out).unwrap();
    assert_eq!(saved.training.batch, 32);
    assert_eq!(saved.training.members, members);
    assert_eq!(saved_members(&saved.model), members);
    assert_eq!(saved.model.activation(), Act::Silu);
    let mut scorer = Scorer::new(&mut exec, &saved, 64).unwrap();
    let scores = scorer.score(&prepared.val.x).unwrap();
    let bits = |v: &[f32]| v.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&scores), bits(&trained.probs));
}

/// The networks a model averages: an ensemble's members, else one.
fn saved_members(model: &riskgrad::nn::ModelSpec) -> usize {
    match model {
        riskgrad::nn::ModelSpec::Ensemble { members, .. } => *members,
        _ => 1,
    }
}
