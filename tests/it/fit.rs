//! The library training loop `train::fit`: events in order, early stopping keeps the best
//! epoch's weights, a resumed fit continues bit for bit, and divergence names only a
//! checkpoint this run wrote.

use crate::common::{fixture, rng_for};
use riskgrad::checkpoint::Checkpoint;
use riskgrad::data::{prepare, PrepareOptions};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::model_io::TrainSettings;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{fit, CheckpointTarget, FitEvent, FitOptions, Split, TrainConfig, Trainer};
use riskgrad::Error;

const FEATURES: usize = 5;

/// Rows whose default odds follow a known logistic rule of the first three features,
/// with noise, so a model learns but not perfectly.
fn table(test: &str, rows: usize) -> Split {
    let mut rng = rng_for(test);
    let mut split = Split::default();
    for _ in 0..rows {
        let x: Vec<f32> = (0..FEATURES).map(|_| rng.normal() as f32).collect();
        let logit = 1.5 * x[0] - x[1] + 0.5 * x[2] * x[0];
        let p = 1.0 / (1.0 + (-logit as f64).exp());
        split.y.push((rng.uniform() < p) as u8 as f32);
        split.x.extend(x);
    }
    split
}

fn config(lr: f32) -> TrainConfig {
    TrainConfig {
        epochs: 0,
        batch: 32,
        optimizer: Optimizer::Adam {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 3,
        pos_weight: 1.0,
    }
}

fn model() -> ModelSpec {
    ModelSpec::mlp(FEATURES, &[7, 5]).unwrap()
}

#[test]
fn events_come_in_order_and_early_stopping_keeps_the_best_epoch() {
    let (train, val) = (table("fit_train", 403), table("fit_val", 157));
    let mut exec = CpuExecutor::new();
    // A high learning rate makes the validation AUC wander, so the best epoch is rarely
    // the last; patience 2 stops the run after two epochs without a better one.
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.05)).unwrap();
    let options = FitOptions {
        epochs: 12,
        early_stop: Some(2),
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let mut log = Vec::new();
    let outcome = fit(&mut trainer, &options, None, &mut |e| {
        log.push(match e {
            FitEvent::EpochStart { epoch, .. } => format!("start {epoch}"),
            FitEvent::Steps { done, total, .. } => {
                assert!(done <= total && done > 0);
                "steps".to_string()
            }
            FitEvent::EpochEnd(r) => format!("end {}", r.epoch),
            FitEvent::EarlyStop { best_epoch, .. } => format!("stop {best_epoch}"),
            FitEvent::Warning(w) => panic!("no warning expected: {w}"),
            FitEvent::Checkpointed { .. } => panic!("no checkpoint inside an epoch asked for"),
            FitEvent::MemberStart { .. } => panic!("fit trains one network"),
        })
    })
    .unwrap();
    let aucs: Vec<f64> = outcome.history.iter().map(|r| r.validation.auc).collect();
    let best = 1
        + (0..aucs.len())
            .max_by(|&a, &b| aucs[a].total_cmp(&aucs[b]).then(b.cmp(&a)))
            .unwrap();
    assert_eq!(outcome.kept_epoch, best, "AUCs {aucs:?}");
    assert_eq!(outcome.epochs_run, outcome.history.len());
    let ends: Vec<&String> = log.iter().filter(|l| l.starts_with("end")).collect();
    assert_eq!(ends.len(), outcome.epochs_run);
    for epoch in 1..=outcome.epochs_run {
        let start = log
            .iter()
            .position(|l| *l == format!("start {epoch}"))
            .unwrap();
        let end = log
            .iter()
            .position(|l| *l == format!("end {epoch}"))
            .unwrap();
        assert!(start < end && log[start + 1] == "steps", "{log:?}");
    }
    if outcome.epochs_run < 12 {
        assert_eq!(log.last().unwrap(), &format!("stop {best}"), "{log:?}");
    }
    // The trainer holds the kept epoch's weights: scoring them gives that epoch's AUC.
    let probs = trainer.predict_validation().unwrap();
    let auc = riskgrad::metrics::summary(&probs, trainer.validation_labels()).auc;
    assert_eq!(auc, aucs[best - 1]);
}

fn checkpoint_target(path: std::path::PathBuf, train: &Split) -> CheckpointTarget {
    CheckpointTarget {
        path,
        settings: TrainSettings {
            data: "synthetic".into(),
            optimizer: config(0.01).optimizer,
            batch: 32,
            epochs: 4,
            seed: 3,
            pos_weight: 1.0,
            val_split: 0.2,
            early_stop: None,
            stop_split: None,
            members: 1,
            cv_folds: None,
            device: "cpu".into(),
            device_choice: None,
            solver: None,
            val_rows: None,
        },
        model: model(),
        // Any fitted preprocessing will do: the checkpoint only records it.
        preprocessing: prepare(&fixture("small.csv"), &PrepareOptions::default())
            .unwrap()
            .preprocessor,
        baseline: vec![0.0; train.x.len() / train.rows()],
        finished_members: Vec::new(),
    }
}

#[test]
fn a_resumed_fit_continues_bit_for_bit() {
    let (train, val) = (table("fit_resume_train", 301), table("fit_resume_val", 99));
    let dir = crate::common::TempDir::new("fit");
    let path = dir.join("checkpoint.safetensors");
    let run = |epochs: usize, resume: Option<&Checkpoint>| {
        let mut exec = CpuExecutor::new();
        let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
        let options = FitOptions {
            epochs,
            early_stop: None,
            checkpoint: Some(checkpoint_target(path.clone(), &train)),
            stop: None,
            checkpoint_every: None,
        };
        let outcome = fit(&mut trainer, &options, resume, &mut |_| {}).unwrap();
        (outcome, trainer.params().unwrap())
    };
    let (whole, whole_params) = run(4, None);
    let (first, _) = run(2, None);
    assert_eq!(first.epochs_run, 2);
    let ck = Checkpoint::load(&path).unwrap();
    let (rest, rest_params) = run(4, Some(&ck));
    assert_eq!(rest.epochs_run, 2);
    assert_eq!(rest.history.len(), 4);
    assert_eq!(rest_params, whole_params);
    let losses = |o: &riskgrad::train::FitOutcome| -> Vec<f64> {
        o.history.iter().map(|r| r.train_loss).collect()
    };
    assert_eq!(losses(&rest), losses(&whole));
    // Nothing left to run is a refused setting, not a silent success.
    let ck = Checkpoint::load(&path).unwrap();
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
    let options = FitOptions {
        epochs: 3,
        early_stop: None,
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let e = fit(&mut trainer, &options, Some(&ck), &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Invalid { .. }), "{e:?}");
}

#[test]
fn divergence_names_only_a_checkpoint_this_run_wrote() {
    let (train, val) = (
        table("fit_diverge_train", 257),
        table("fit_diverge_val", 64),
    );
    let mut exec = CpuExecutor::new();
    let mut sgd = config(0.0);
    sgd.optimizer = Optimizer::Sgd {
        lr: 1e30,
        momentum: 0.9,
    };
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, sgd).unwrap();
    let options = FitOptions {
        epochs: 5,
        early_stop: None,
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let e = fit(&mut trainer, &options, None, &mut |_| {}).unwrap_err();
    match &e {
        Error::Diverged { kept, .. } => assert_eq!(*kept, None),
        other => panic!("expected divergence, got {other:?}"),
    }
    assert!(e.to_string().contains("no epoch finished"), "{e}");
}

#[test]
fn a_finite_blow_up_is_caught_against_the_constant_prediction() {
    // Hand-computed reference: 1 positive in 4 rows, positive weight 2. Predicting the
    // rate 1/4: -(2·ln(1/4) + 3·ln(3/4))/4 = 0.908909; predicting 0.5: (2 + 3)·ln 2/4 =
    // 0.86643. The reference is the larger.
    let r = riskgrad::train::reference_loss(&[0.0, 1.0, 0.0, 0.0], 2.0);
    assert!((r - 0.908_909).abs() < 1e-5, "{r}");
    // Adam moves every weight by about the learning rate each step: with 1e10 the
    // scores saturate and the loss is huge but finite.
    let (train, val) = (table("fit_blowup_train", 256), table("fit_blowup_val", 64));
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(1e10)).unwrap();
    let options = FitOptions {
        epochs: 3,
        early_stop: None,
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let e = fit(&mut trainer, &options, None, &mut |_| {}).unwrap_err();
    assert!(matches!(e, Error::Diverged { epoch: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("times"), "{e}");
}

#[test]
fn validation_rows_of_one_class_warn_and_refuse_early_stopping() {
    let train = table("fit_one_class_train", 128);
    let mut val = table("fit_one_class_val", 40);
    val.y.iter_mut().for_each(|y| *y = 0.0);
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
    let mut options = FitOptions {
        epochs: 1,
        early_stop: Some(2),
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let e = fit(&mut trainer, &options, None, &mut |_| {}).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                setting: riskgrad::Setting::EarlyStop,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("all non-defaults"), "{e}");
    options.early_stop = None;
    let mut warnings = Vec::new();
    fit(&mut trainer, &options, None, &mut |e| {
        if let FitEvent::Warning(w) = e {
            warnings.push(w)
        }
    })
    .unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].contains("NaN"), "{warnings:?}");
}

/// A stop request in the middle of an epoch (what SIGTERM sets) ends `fit` with a
/// checkpoint of that very step; resuming from it, twice over, gives the weights and
/// losses of a run that never stopped, bit for bit.
#[test]
fn a_fit_stopped_mid_epoch_resumes_bit_for_bit() {
    use riskgrad::train::{FitEvent, StopRequest};
    use std::sync::atomic::{AtomicBool, Ordering};
    let (train, val) = (table("fit_stop_train", 301), table("fit_stop_val", 99));
    let dir = crate::common::TempDir::new("fit-stop");
    let path = dir.join("checkpoint.safetensors");
    // Stops once `at` (epoch, step) is reached, if given.
    let run = |at: Option<(usize, usize)>, resume: Option<&Checkpoint>| {
        let mut exec = CpuExecutor::new();
        let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
        let stop: StopRequest = std::sync::Arc::new(AtomicBool::new(false));
        let options = FitOptions {
            epochs: 4,
            early_stop: None,
            checkpoint: Some(checkpoint_target(path.clone(), &train)),
            stop: Some(stop.clone()),
            checkpoint_every: None,
        };
        let mut epoch = 0;
        let result = fit(&mut trainer, &options, resume, &mut |e| match e {
            FitEvent::EpochStart { epoch: n, .. } => epoch = n,
            FitEvent::Steps { done, .. } if at.is_some_and(|a| a <= (epoch, done)) => {
                stop.store(true, Ordering::SeqCst)
            }
            _ => {}
        });
        (result, trainer.params().unwrap())
    };
    let (whole, whole_params) = run(None, None);
    let whole = whole.unwrap();

    let (stopped, _) = run(Some((2, 3)), None);
    match stopped.unwrap_err() {
        Error::Interrupted {
            epoch,
            step,
            steps,
            checkpoint,
        } => {
            assert_eq!((epoch, step), (2, 3));
            assert_eq!(steps, 301 / 32);
            assert_eq!(checkpoint.as_deref(), Some(path.as_path()));
        }
        e => panic!("{e:?}"),
    }
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.state.epoch, 1);
    assert_eq!(ck.state.within_epoch.unwrap().steps_done, 3);
    assert_eq!(ck.history.len(), 1);
    // Stopped again, in the next epoch, from the resumed run.
    let (again, _) = run(Some((3, 5)), Some(&ck));
    assert!(matches!(
        again.unwrap_err(),
        Error::Interrupted {
            epoch: 3,
            step: 5,
            ..
        }
    ));
    let ck = Checkpoint::load(&path).unwrap();
    let (rest, rest_params) = run(None, Some(&ck));
    let rest = rest.unwrap();
    assert_eq!(rest_params, whole_params);
    assert_eq!(loss_bits(&rest), loss_bits(&whole));
}

/// Every epoch's training loss, as bits (to compare runs exactly).
fn loss_bits(outcome: &riskgrad::train::FitOutcome) -> Vec<u64> {
    outcome
        .history
        .iter()
        .map(|r| r.train_loss.to_bits())
        .collect()
}

/// Checkpoints inside epochs (`checkpoint_every`) pause and go on: they fall where
/// asked, and the result is the same as without them, bit for bit. (That a mid-epoch
/// checkpoint resumes to the same result is `a_fit_stopped_mid_epoch_resumes_bit_for_bit`.)
#[test]
fn checkpoints_every_few_steps_change_nothing() {
    use riskgrad::train::{CheckpointEvery, FitEvent};
    let (train, val) = (table("fit_every_train", 301), table("fit_every_val", 99));
    let dir = crate::common::TempDir::new("fit-every");
    let path = dir.join("checkpoint.safetensors");
    let run = |every: Option<CheckpointEvery>| {
        let mut exec = CpuExecutor::new();
        let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
        let options = FitOptions {
            epochs: 3,
            early_stop: None,
            checkpoint: Some(checkpoint_target(path.clone(), &train)),
            stop: None,
            checkpoint_every: every,
        };
        let mut inside = Vec::new();
        let mut starts = 0;
        let outcome = fit(&mut trainer, &options, None, &mut |e| match e {
            FitEvent::Checkpointed { epoch, step } => inside.push((epoch, step)),
            FitEvent::EpochStart { .. } => starts += 1,
            _ => {}
        })
        .unwrap();
        (outcome, trainer.params().unwrap(), inside, starts)
    };
    let (plain, plain_params, none, _) = run(None);
    assert!(none.is_empty());
    // 9 steps an epoch: a checkpoint after steps 4 and 8 of each (the epoch's end
    // writes its own and restarts the count).
    let (every, every_params, inside, starts) = run(Some(CheckpointEvery::Steps(4)));
    assert_eq!(inside, [(1, 4), (1, 8), (2, 4), (2, 8), (3, 4), (3, 8)]);
    assert_eq!(starts, 3, "a pause is not a new epoch");
    assert_eq!(every_params, plain_params);
    assert_eq!(loss_bits(&every), loss_bits(&plain));
}

/// The validation pass shares the step counters with training but updates nothing: the
/// optimizer's step count (Adam's bias correction, dropout's masks) counts training
/// steps only. It used to grow by the validation steps every epoch too.
#[test]
fn validation_passes_leave_the_optimizer_step_count_alone() {
    let (train, val) = (table("count_train", 301), table("count_val", 99));
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model(), &train, &val, config(0.01)).unwrap();
    for _ in 0..3 {
        trainer.epoch(&mut |_, _, _| {}).unwrap();
    }
    let state = trainer.export_state().unwrap();
    assert_eq!(state.step[1] as usize, 3 * trainer.steps_per_epoch());
}

/// `train::network`: the plan carves the stopping rows from the training split (none
/// with early stopping off), refuses a split that leaves one class to fit on as a typed
/// setting error, and the run's validation scores are the kept weights' on rows the
/// trainer never saw.
#[test]
fn a_network_plan_carves_its_stopping_rows_and_scores_the_kept_weights() {
    use riskgrad::train::defaults::Stopping;
    use riskgrad::train::network::{NetworkPlan, NetworkRequest};
    let (train, val) = (table("plan_train", 401), table("plan_val", 151));
    let request = NetworkRequest {
        stopping: Stopping::Patience(2),
        stop_split: 0.25,
        batch: Some(32),
        epochs: Some(6),
        optimizer: config(0.01).optimizer,
        pos_weight: 1.0,
        seed: 7,
        members: 1,
    };
    let plan = NetworkPlan::new(&train, &request).unwrap();
    let (fit_rows, stop_rows) = plan.rows(&train, &val);
    assert!(plan.carves());
    assert_eq!(fit_rows.rows() + stop_rows.rows(), train.rows());
    assert_eq!(plan.stopping_rows(), stop_rows.rows());
    assert!((stop_rows.rows() as f64 - 0.25 * 401.0).abs() <= 2.0);
    assert_eq!((plan.schedule.batch, plan.schedule.epochs), (32, 6));

    let off = NetworkRequest {
        stopping: Stopping::Off,
        ..request
    };
    let plan_off = NetworkPlan::new(&train, &off).unwrap();
    assert!(!plan_off.carves() && plan_off.stopping_rows() == 0);
    assert_eq!(plan_off.rows(&train, &val).0.rows(), train.rows());

    let greedy = NetworkRequest {
        stop_split: 0.999,
        ..request
    };
    match NetworkPlan::new(&train, &greedy) {
        Err(Error::Invalid { setting, .. }) => {
            assert_eq!(setting, riskgrad::Setting::StopSplit)
        }
        Err(other) => panic!("the wrong error: {other}"),
        Ok(_) => panic!("a split leaving one class to fit on was accepted"),
    }

    let options = FitOptions {
        epochs: plan.schedule.epochs,
        early_stop: plan.schedule.patience,
        checkpoint: None,
        stop: None,
        checkpoint_every: None,
    };
    let mut exec = CpuExecutor::new();
    let mut started = 0;
    let trained = plan
        .train(
            &mut exec,
            &model(),
            (&train, &val),
            &options,
            None,
            &mut |streamed| {
                assert_eq!(streamed, None, "a small table is resident");
                started += 1;
                Ok(())
            },
            &mut |_| {},
        )
        .unwrap();
    assert_eq!(started, 1);
    let probs = trained.probs.expect("one network's scores");
    assert_eq!(probs.len(), val.rows());
    let scored =
        riskgrad::scoring::Scorer::for_weights(&mut exec, &model(), &trained.member_params[0], 64)
            .unwrap()
            .score(&val.x)
            .unwrap();
    assert_eq!(scored, probs, "the kept weights score the validation rows");

    for members in [0, riskgrad::train::defaults::MAX_MEMBERS + 1] {
        match NetworkPlan::new(&train, &NetworkRequest { members, ..request }) {
            Err(Error::Invalid { setting, .. }) => {
                assert_eq!(setting, riskgrad::Setting::Members)
            }
            Err(other) => panic!("the wrong error for {members} members: {other}"),
            Ok(_) => panic!("{members} members were accepted"),
        }
    }
}

/// A run of `members` networks: early stopping at patience 2, six epochs at most.
fn members_request(members: usize) -> riskgrad::train::network::NetworkRequest {
    riskgrad::train::network::NetworkRequest {
        stopping: riskgrad::train::defaults::Stopping::Patience(2),
        stop_split: 0.25,
        batch: Some(32),
        epochs: Some(6),
        optimizer: config(0.03).optimizer,
        pos_weight: 1.0,
        seed: 11,
        members,
    }
}

/// The plan and options of a run of three members on `train`, checkpointing to
/// `checkpoint` when given.
fn three_members(
    train: &Split,
    checkpoint: Option<std::path::PathBuf>,
) -> (riskgrad::train::network::NetworkPlan, FitOptions) {
    let plan = riskgrad::train::network::NetworkPlan::new(train, &members_request(3)).unwrap();
    let options = FitOptions {
        epochs: 6,
        early_stop: Some(2),
        checkpoint: checkpoint.map(|path| checkpoint_target(path, train)),
        stop: None,
        checkpoint_every: None,
    };
    (plan, options)
}

/// Trains `plan` on a fresh CPU executor; `on_event` hears it.
fn train_plan(
    plan: &riskgrad::train::network::NetworkPlan,
    rows: (&Split, &Split),
    options: &FitOptions,
    resume: Option<&Checkpoint>,
    on_event: &mut dyn FnMut(FitEvent),
) -> riskgrad::Result<riskgrad::train::network::TrainedWeights> {
    let mut exec = CpuExecutor::new();
    plan.train(
        &mut exec,
        &model(),
        rows,
        options,
        resume,
        &mut |_| Ok(()),
        on_event,
    )
}

/// A run of several members trains each in turn on its own carve of the stopping rows
/// and from its own weights: their kept weights differ, the first member is the run of
/// one network with the same seed, and the ensemble of their weights is what a caller
/// saves.
#[test]
fn members_train_in_turn_each_on_its_own_stopping_rows() {
    use riskgrad::train::network::{ensemble_of, score_ensemble};
    let (train, val) = (table("members_train", 389), table("members_val", 131));
    let (plan, options) = three_members(&train, None);
    let mut heard = Vec::new();
    let trained = train_plan(&plan, (&train, &val), &options, None, &mut |event| {
        if let FitEvent::MemberStart { member, members } = event {
            heard.push((member, members));
        }
    })
    .unwrap();
    assert_eq!(heard, [(0, 3), (1, 3), (2, 3)]);
    assert_eq!(trained.outcomes.len(), 3);
    assert!(
        trained.probs.is_none(),
        "an ensemble is scored by its caller"
    );
    let params = &trained.member_params;
    assert!(params[0] != params[1] && params[1] != params[2] && params[0] != params[2]);
    // Each member stopped on its own rows: their first epochs' stopping AUCs differ
    // even where the weights would agree.
    let first_aucs: Vec<f64> = (trained.outcomes.iter())
        .map(|o| o.history[0].validation.auc)
        .collect();
    assert!(first_aucs[0] != first_aucs[1] && first_aucs[1] != first_aucs[2]);

    // Member 0 is the single network of the same request.
    let single = riskgrad::train::network::NetworkPlan::new(&train, &members_request(1)).unwrap();
    let alone = train_plan(&single, (&train, &val), &options, None, &mut |_| {}).unwrap();
    assert_eq!(alone.member_params[0], params[0]);

    // The ensemble scores the mean of its members' probabilities.
    let (ensemble, packed) = ensemble_of(&model(), params).unwrap();
    let scores = score_ensemble(&mut CpuExecutor::new(), &ensemble, &packed, &val.x).unwrap();
    let mut mean = vec![0.0f64; val.rows()];
    let mut exec = CpuExecutor::new();
    for member in params {
        let p = riskgrad::scoring::Scorer::for_weights(&mut exec, &model(), member, 64)
            .unwrap()
            .score(&val.x)
            .unwrap();
        for (m, p) in mean.iter_mut().zip(p) {
            *m += p as f64 / 3.0;
        }
    }
    for (s, m) in scores.iter().zip(&mean) {
        assert!((*s as f64 - m).abs() < 1e-6, "{s} against {m}");
    }
}

/// A run of members stopped inside the second member resumes from its checkpoint (the
/// first member's weights in it) to the same weights as a run that never stopped; so
/// does one killed after the first member's last checkpoint, before the second's first.
#[test]
fn a_run_of_members_resumes_bit_for_bit() {
    let (train, val) = (
        table("members_resume_train", 347),
        table("members_resume_val", 113),
    );
    let dir = crate::common::TempDir::new("members-resume");
    let uninterrupted = {
        let (plan, options) = three_members(&train, Some(dir.join("whole.safetensors")));
        train_plan(&plan, (&train, &val), &options, None, &mut |_| {}).unwrap()
    };
    let path = dir.join("stopped.safetensors");
    let between = dir.join("between.safetensors");
    let (plan, mut options) = three_members(&train, Some(path.clone()));
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    options.stop = Some(stop.clone());
    let stopped = train_plan(&plan, (&train, &val), &options, None, &mut |event| {
        match event {
            // The file now holds the first member's last checkpoint: a kill here
            // leaves it.
            FitEvent::MemberStart { member: 1, .. } => {
                std::fs::copy(&path, &between).unwrap();
            }
            FitEvent::EpochEnd(report) if report.epoch == 2 && between.exists() => {
                stop.store(true, std::sync::atomic::Ordering::SeqCst)
            }
            _ => {}
        }
    });
    assert!(
        matches!(stopped, Err(Error::Interrupted { .. })),
        "{:?}",
        stopped.err()
    );
    for (file, finished) in [(&path, 1), (&between, 0)] {
        let ck = Checkpoint::load(file).unwrap();
        assert_eq!(ck.finished_members.len(), finished, "{}", file.display());
        options.stop = None;
        let resumed = train_plan(&plan, (&train, &val), &options, Some(&ck), &mut |_| {}).unwrap();
        assert_eq!(
            resumed.member_params,
            uninterrupted.member_params,
            "resumed from {}",
            file.display()
        );
        let kept = |t: &riskgrad::train::network::TrainedWeights| -> Vec<usize> {
            t.outcomes.iter().map(|o| o.kept_epoch).collect()
        };
        assert_eq!(kept(&resumed), kept(&uninterrupted));
    }
}
