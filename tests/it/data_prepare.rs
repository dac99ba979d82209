//! Preparing real-shaped credit files: text categories, missing cells, ID columns, every
//! target spelling, prediction on new rows (unseen categories, missing numbers), and the
//! ISLR file training to its AUC.

use crate::common;

use common::{fixture, TempFile};
use std::io::Write;
use std::path::{Path, PathBuf};

use riskgrad::data::{
    inspect, inspect_bundled, prepare, render_schema, ColumnKind, InputColumn, PredictReader,
    PrepareOptions, Preprocessor, RareThreshold, SignedLog, TargetSpec,
};
use riskgrad::engine::cpu::CpuExecutor;
use riskgrad::engine::graph::Optimizer;
use riskgrad::nn::ModelSpec;
use riskgrad::train::{TrainConfig, Trainer};

fn mixed_opts() -> PrepareOptions {
    PrepareOptions {
        target: "credit_risk".parse().unwrap(),
        rare: RareThreshold::Count(2),
        ..Default::default()
    }
}

#[test]
fn mixed_file_schema_and_features() {
    let p = prepare(&fixture("credit_mixed.csv"), &mixed_opts()).unwrap();
    assert_eq!(p.n_rows, 40);
    assert_eq!(p.train.rows() + p.val.rows(), 40);
    assert_eq!(p.val.rows(), 8); // round(0.2 * 11) = 2 bad + round(0.2 * 29) = 6 good
    assert_eq!(p.auto_dropped.len(), 1);
    assert_eq!(p.auto_dropped[0].name, "loan_id");
    assert!(p.auto_dropped[0].reason.contains("ID"));

    let kinds: Vec<(&str, ColumnKind)> = p
        .schema
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.kind))
        .collect();
    use ColumnKind::*;
    assert_eq!(
        kinds,
        [
            ("loan_id", Id),
            ("checking", Categorical),
            ("duration", Numeric),
            ("amount", Numeric),
            ("purpose", Categorical),
            ("savings", Categorical),
            ("age", Numeric),
            ("housing", Categorical),
            ("credit_risk", Target)
        ]
    );
    let enc = &p.preprocessor.target_encoding;
    assert_eq!(
        (enc.positive.as_str(), enc.negative.as_str()),
        ("bad", "good")
    );
    assert_eq!(p.schema.target.positives, 11);

    // Features: numbers standardised, one-hot columns, indicators only where the training
    // rows had a missing value.
    let names = &p.feature_names;
    assert_eq!(names.len(), p.n_features());
    assert_eq!(p.train.x.len(), p.train.rows() * names.len());
    assert_eq!(p.val.x.len(), p.val.rows() * names.len());
    for want in [
        "checking=A11",
        "checking=other",
        "duration",
        "purpose=car",
        "purpose=other",
        "housing=for free",
        "housing=own",
    ] {
        assert!(names.iter().any(|n| n == want), "{want} not in {names:?}");
    }
    assert!(!names.iter().any(|n| n == "duration_missing"));
    assert!(p.train.x.iter().chain(&p.val.x).all(|v| v.is_finite()));
    // Each categorical block is one-hot in every row.
    let width = names.len();
    for (i, input) in p.preprocessor.inputs.iter().enumerate() {
        if let InputColumn::Categorical(_) = input {
            let off: usize = p.preprocessor.inputs[..i].iter().map(|c| c.width()).sum();
            for row in p.train.x.chunks_exact(width) {
                let ones: f32 = row[off..off + input.width()].iter().sum();
                assert_eq!(ones, 1.0, "{}", input.name());
            }
        }
    }
    // Standardised numbers: mean 0 over the training rows.
    let j = names.iter().position(|n| n == "duration").unwrap();
    let mean: f64 = p
        .train
        .x
        .chunks_exact(width)
        .map(|r| r[j] as f64)
        .sum::<f64>()
        / p.train.rows() as f64;
    assert!(mean.abs() < 1e-5, "{mean}");
}

#[test]
fn inspect_renders_the_schema() {
    let schema = inspect(&fixture("credit_mixed.csv"), &mixed_opts()).unwrap();
    let out = render_schema(&schema);
    eprintln!("{out}");
    for want in [
        "40 rows, 9 columns",
        "loan_id",
        "unique per row, looks like an ID",
        "checking",
        "categorical",
        "A11 (",
        "amount",
        "min 409, max 12579",
        "target \"credit_risk\": positive \"bad\", negative \"good\"; 11 positives in 40 rows (27.50 %)",
    ] {
        assert!(out.contains(want), "{want:?} not in\n{out}");
    }
    let amount = schema.columns.iter().find(|c| c.name == "amount").unwrap();
    assert_eq!(amount.missing, 1);
    let bundled = render_schema(&inspect_bundled(&PrepareOptions::bundled()).unwrap());
    assert!(bundled.contains("30000 rows, 25 columns"), "{bundled}");
    assert!(
        bundled.contains("6636 positives in 30000 rows (22.12 %)"),
        "{bundled}"
    );
}

#[test]
fn every_target_spelling() {
    // (negative, positive, --positive)
    let cases: [(&str, &str, Option<&str>); 9] = [
        ("0", "1", None),
        ("0.0", "1.0", None),
        ("false", "true", None),
        ("No", "Yes", None),
        ("n", "y", None),
        ("good", "bad", None),
        ("1", "2", None),
        ("Fully Paid", "Charged Off", Some("Charged Off")),
        ("1", "0", Some("0")),
    ];
    for (neg, pos, flag) in cases {
        let mut text = String::from("x,status\n");
        // 12 rows: the positives are rows 0, 3, 6, 9.
        for i in 0..12 {
            text.push_str(&format!(
                "{},{}\n",
                i * 10,
                if i % 3 == 0 { pos } else { neg }
            ));
        }
        let tmp = TempFile::new("target.csv", text.as_bytes());
        let opts = PrepareOptions {
            positive: flag.map(str::to_string),
            val_fraction: 0.25,
            ..Default::default()
        };
        let p = prepare(&tmp.0, &opts).unwrap_or_else(|e| panic!("{neg}/{pos}: {e}"));
        let positives = p
            .train
            .y
            .iter()
            .chain(&p.val.y)
            .filter(|&&y| y == 1.0)
            .count();
        assert_eq!(positives, 4, "{neg}/{pos}");
        for (rows, y) in [(&p.train_rows, &p.train.y), (&p.val_rows, &p.val.y)] {
            for (&r, &label) in rows.iter().zip(y) {
                assert_eq!(label, (r % 3 == 0) as u8 as f32, "{neg}/{pos} row {r}");
            }
        }
    }
}

#[test]
fn target_errors_list_what_was_found() {
    let err = |text: &str, opts: &PrepareOptions| {
        let tmp = TempFile::new("t.csv", text.as_bytes());
        prepare(&tmp.0, opts).unwrap_err().to_string()
    };
    let e = err("x,y\n1,0\n2,0\n", &PrepareOptions::default());
    assert!(
        e.contains("one class") && e.contains("\"0\" (2 rows)"),
        "{e}"
    );
    let e = err("x,y\n1,0\n2,1\n3,2\n", &PrepareOptions::default());
    assert!(
        e.contains("3 distinct") && e.contains("\"2\" (1 rows)") && e.contains("\"y\""),
        "{e}"
    );
    let e = err("x,y\n1,paid\n2,late\n", &PrepareOptions::default());
    assert!(
        e.contains("positive class: ") && e.contains("\"late\"") && !e.contains("--"),
        "{e}"
    );
    let e = err(
        "x,y\n1,paid\n2,late\n",
        &PrepareOptions {
            positive: Some("default".into()),
            ..Default::default()
        },
    );
    assert!(e.contains("\"default\"") && e.contains("\"paid\""), "{e}");
}

#[test]
fn rows_without_a_target_are_left_out() {
    let tmp = TempFile::new("t.csv", b"x,y\n1,0\n2,1\n3,\n4,NA\n5,0\n6,1\n7,0\n8,1\n");
    let p = prepare(
        &tmp.0,
        &PrepareOptions {
            val_fraction: 0.25,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(p.rows_without_target, 2);
    assert_eq!(p.train.rows() + p.val.rows(), 6);
    assert!(!p.train_rows.contains(&2) && !p.val_rows.contains(&3));
}

#[test]
fn forced_categorical_and_signed_log() {
    let opts = PrepareOptions {
        categorical: vec!["duration".into()],
        signed_log: SignedLog::Columns(vec!["amount".into()]),
        ..mixed_opts()
    };
    let p = prepare(&fixture("credit_mixed.csv"), &opts).unwrap();
    assert!(
        p.feature_names.iter().any(|n| n == "duration=12"),
        "{:?}",
        p.feature_names
    );
    let amount = p
        .preprocessor
        .inputs
        .iter()
        .find(|i| i.name() == "amount")
        .unwrap();
    assert!(matches!(amount, InputColumn::Numeric(s) if s.signed_log));
    // A signed log on a text column is a refused setting.
    let opts = PrepareOptions {
        signed_log: SignedLog::Columns(vec!["purpose".into()]),
        ..mixed_opts()
    };
    let e = prepare(&fixture("credit_mixed.csv"), &opts).unwrap_err();
    assert!(
        matches!(
            e,
            riskgrad::Error::Invalid {
                setting: riskgrad::Setting::SignedLog,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("purpose"), "{e}");
}

/// Reads every row of `path` through the saved preprocessing.
fn predict_all(path: &Path, pre: &Preprocessor, batch: usize) -> (Vec<String>, Vec<f32>) {
    let mut reader = PredictReader::open(path, pre).unwrap();
    let (mut ids, mut x) = (Vec::new(), Vec::new());
    while let Some(b) = reader.next_batch(batch).unwrap() {
        assert!(b.rows() <= batch);
        assert_eq!(b.x.len(), b.rows() * pre.n_features());
        ids.extend(b.ids);
        x.extend(b.x);
    }
    (ids, x)
}

#[test]
fn prediction_stream_matches_training_features_after_json() {
    let p = prepare(&fixture("credit_mixed.csv"), &mixed_opts()).unwrap();
    let json = p.preprocessor.to_json();
    let pre = Preprocessor::from_json(&json, Path::new("model.json")).unwrap();
    assert_eq!(pre, p.preprocessor);
    let (ids, x) = predict_all(&fixture("credit_mixed.csv"), &pre, 7);
    assert_eq!(ids.len(), 40);
    assert_eq!(ids[0], "L001");
    let w = pre.n_features();
    for (rows, split) in [(&p.train_rows, &p.train), (&p.val_rows, &p.val)] {
        for (i, &r) in rows.iter().enumerate() {
            let want = &split.x[i * w..(i + 1) * w];
            let got = &x[r as usize * w..(r as usize + 1) * w];
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "row {r}"
            );
        }
    }
    // Labels for evaluation.
    let mut reader = PredictReader::open(&fixture("credit_mixed.csv"), &pre)
        .unwrap()
        .with_labels()
        .unwrap();
    let b = reader.next_batch(100).unwrap().unwrap();
    assert_eq!(b.labels.unwrap().iter().filter(|&&y| y == 1.0).count(), 11);
    assert!(reader.next_batch(100).unwrap().is_none());
}

#[test]
fn prediction_with_unseen_categories_missing_numbers_and_other_column_order() {
    let p = prepare(&fixture("credit_mixed.csv"), &mixed_opts()).unwrap();
    let pre = &p.preprocessor;
    let (ids, x) = predict_all(&fixture("predict_unseen.csv"), pre, 2);
    assert_eq!(ids, ["P1", "P2", "P3"]);
    let w = pre.n_features();
    let names = &pre.feature_names;
    let at = |row: usize, name: &str| {
        x[row * w
            + names
                .iter()
                .position(|n| n == name)
                .unwrap_or_else(|| panic!("{name}"))]
    };
    // "spaceship" and "A99" were never seen: other.
    assert_eq!(at(0, "purpose=other"), 1.0);
    assert_eq!(at(0, "purpose=car"), 0.0);
    assert_eq!(at(1, "checking=other"), 1.0);
    assert_eq!(at(1, "purpose=car"), 1.0);
    // A missing age: the training median, standardised, and the indicator.
    let InputColumn::Numeric(age) = pre.inputs.iter().find(|i| i.name() == "age").unwrap() else {
        panic!()
    };
    let mut want = [0f32; 2];
    age.encode(f32::NAN, &mut want);
    assert_eq!(at(1, "age"), want[0]);
    if age.missing_indicator {
        assert_eq!(at(1, "age_missing"), 1.0);
        assert_eq!(at(0, "age_missing"), 0.0);
    }
    // A missing amount where the training rows had one: imputed with the indicator set.
    let InputColumn::Numeric(amount) = pre.inputs.iter().find(|i| i.name() == "amount").unwrap()
    else {
        panic!()
    };
    let mut want = [0f32; 2];
    amount.encode(f32::NAN, &mut want);
    assert_eq!(at(1, "amount"), want[0]);
    // Row 3's missing savings: its missing column when training had one, else other.
    let savings_missing = names.iter().any(|n| n == "savings_missing");
    assert_eq!(
        at(
            2,
            if savings_missing {
                "savings_missing"
            } else {
                "savings=other"
            }
        ),
        1.0
    );
    assert!(x.iter().all(|v| v.is_finite()));

    // A prediction file without a model column is an error naming it.
    let tmp = TempFile::new("nocol.csv", b"age,purpose\n30,car\n");
    let e = PredictReader::open(&tmp.0, pre).err().unwrap().to_string();
    assert!(e.contains("checking") && e.contains("\"age\""), "{e}");
    // Text in a numeric column at prediction: read as missing, as training reads it, and
    // reported with its line and column.
    let tmp = TempFile::new("text.csv", b"housing,age,loan_id,purpose,checking,amount,duration,savings\nown,30,P1,car,A11,lots,12,A61\n");
    let mut r = PredictReader::open(&tmp.0, pre).unwrap();
    let batch = r.next_batch(10).unwrap().unwrap();
    let amount_at = names.iter().position(|n| n == "amount").unwrap();
    assert_eq!(batch.x[amount_at], want[0]);
    let note = r.odd_cells().next().expect("a note").to_string();
    assert!(
        note.contains("line 2") && note.contains("\"amount\"") && note.contains("lots"),
        "{note}"
    );
}

#[test]
fn prediction_ids_are_row_numbers_without_an_id_column() {
    let tmp = TempFile::new("noid.csv", b"x,k,y\n1,a,0\n2,b,1\n3,a,0\n4,b,1\n5,a,1\n");
    let p = prepare(
        &tmp.0,
        &PrepareOptions {
            val_fraction: 0.4,
            ..Default::default()
        },
    )
    .unwrap();
    let gz = {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(b"k,x\nb,10\nzz,NA\n").unwrap();
        enc.finish().unwrap()
    };
    // gzip found by its magic even without `.gz` in the name.
    let tmp = TempFile::new("new-rows.csv", &gz);
    let (ids, x) = predict_all(&tmp.0, &p.preprocessor, 1);
    assert_eq!(ids, ["1", "2"]);
    assert_eq!(x.len(), 2 * p.n_features());
}

fn train_mlp(p: &riskgrad::data::Prepared, epochs: usize) -> f64 {
    let model = ModelSpec::mlp(p.n_features(), &[64, 32]).unwrap();
    let config = TrainConfig {
        epochs,
        batch: 256,
        optimizer: Optimizer::Adam {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
        seed: 0,
        pos_weight: 1.0,
    };
    let mut exec = CpuExecutor::new();
    let mut trainer = Trainer::new(&mut exec, &model, &p.train, &p.val, config).unwrap();
    let mut auc = 0.0;
    for _ in 0..epochs {
        let r = trainer.epoch(&mut |_, _, _| {}).unwrap();
        eprintln!(
            "epoch {} loss {:.4} val AUC {:.4}",
            r.epoch, r.train_loss, r.validation.auc
        );
        auc = r.validation.auc;
    }
    auc
}

#[test]
fn islr_default_trains_to_auc_093_in_10_epochs() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/islr_default_SIMULATED.csv");
    let path = if path.exists() {
        path
    } else {
        PathBuf::from("/work/shared/data/islr_default_SIMULATED.csv")
    };
    if !path.exists() {
        eprintln!("skipped: {} not found", path.display());
        return;
    }
    let opts = PrepareOptions {
        target: TargetSpec::Name("default".into()),
        ..Default::default()
    };
    let p = prepare(&path, &opts).unwrap();
    assert_eq!(
        p.feature_names,
        [
            "student=No",
            "student=Yes",
            "student=other",
            "balance",
            "income"
        ]
    );
    assert_eq!(p.schema.target.positives, 333);
    let auc = train_mlp(&p, 10);
    assert!(auc >= 0.93, "validation AUC {auc} < 0.93");
}
