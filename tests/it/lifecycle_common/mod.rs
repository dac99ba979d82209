//! Shared by the lifecycle tests: a small model trained on the bundled data, saved the way
//! `riskgrad train` saves it, and temporary directories.

use riskgrad::data::{prepare_bundled, PrepareOptions, Prepared};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::model_io::{SavedModel, TrainSettings};
use riskgrad::nn::ModelSpec;
use riskgrad::train::{TrainConfig, Trainer};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The bundled data prepared once per test binary (seed 0).
pub fn bundled() -> &'static Prepared {
    static DATA: OnceLock<Prepared> = OnceLock::new();
    DATA.get_or_init(|| prepare_bundled(&PrepareOptions::bundled()).expect("bundled data"))
}

/// A model trained `epochs` epochs on the CPU, with the validation probabilities the
/// trainer computed for its final weights.
pub fn trained(hidden: &[usize], epochs: usize) -> (SavedModel, Vec<f32>) {
    let data = bundled();
    let model = ModelSpec::mlp(data.n_features(), hidden).unwrap();
    let optimizer = Optimizer::Adam {
        lr: 3e-3,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
    let config = TrainConfig {
        epochs,
        batch: 256,
        optimizer,
        seed: 0,
        pos_weight: 1.0,
    };
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model, &data.train, &data.val, config).unwrap();
    for _ in 0..epochs {
        trainer.epoch(&mut |_, _, _| {}).unwrap();
    }
    let probs = trainer.predict_validation().unwrap();
    let f = data.n_features();
    let mut baseline = vec![0.0f64; f];
    for row in data.train.x.chunks_exact(f) {
        for (b, &v) in baseline.iter_mut().zip(row) {
            *b += v as f64;
        }
    }
    let baseline = baseline
        .iter()
        .map(|b| (b / data.train.rows() as f64) as f32)
        .collect();
    let saved = SavedModel {
        model,
        preprocessing: data.preprocessor.clone(),
        feature_order: None,
        baseline,
        training: TrainSettings {
            data: "bundled".into(),
            optimizer,
            batch: 256,
            epochs,
            seed: 0,
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
        epoch: epochs,
        validation: None,
        params: trainer.params().unwrap(),
    };
    (saved, probs)
}

/// A fresh, empty temporary directory for one test, removed when it is dropped.
pub fn temp_dir(name: &str) -> crate::common::TempDir {
    crate::common::TempDir::new(name)
}

/// The bundled Taiwan file in the repository.
pub fn taiwan_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(riskgrad::data::BUNDLED_NAME)
}
