//! `--numeric-encoding ple`: the piecewise-linear encoding by hand, fitted on the training
//! rows only, beside missing indicators and categories, and reproduced bit for bit after
//! the preprocessing's JSON round trip and through the prediction reader.

use crate::common::fixture;
use riskgrad::data::{
    piecewise_linear, prepare, InputColumn, NumericEncoding, PredictReader, PrepareOptions,
    Preprocessor, RareThreshold,
};
use std::path::Path;

fn opts(encoding: NumericEncoding) -> PrepareOptions {
    PrepareOptions {
        target: "credit_risk".parse().unwrap(),
        rare: RareThreshold::Count(2),
        numeric_encoding: encoding,
        ..Default::default()
    }
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

#[test]
fn piecewise_linear_by_hand() {
    let edges = [0.0, 1.0, 3.0, 7.0];
    let mut out = [f32::NAN; 3];
    let mut enc = |x: f32| {
        piecewise_linear(x, &edges, &mut out);
        out
    };
    assert_eq!(enc(0.5), [0.5, 0.0, 0.0]);
    assert_eq!(enc(2.0), [1.0, 0.5, 0.0]);
    assert_eq!(enc(6.0), [1.0, 1.0, 0.75]);
    assert_eq!(enc(3.0), [1.0, 1.0, 0.0]);
    // Outside the training range the end bins keep going; the inner ones clamp.
    assert_eq!(enc(-1.0), [-1.0, 0.0, 0.0]);
    assert_eq!(enc(11.0), [1.0, 1.0, 2.0]);
}

#[test]
fn ple_fitted_on_training_rows_with_indicators_and_categories() {
    let p = prepare(&fixture("credit_mixed.csv"), &opts(NumericEncoding::Ple)).unwrap();
    let standard = prepare(
        &fixture("credit_mixed.csv"),
        &opts(NumericEncoding::Standard),
    )
    .unwrap();
    // The categories are the same either way; numeric columns get one feature per bin.
    let mut numeric = 0;
    for (ple, std) in p
        .preprocessor
        .inputs
        .iter()
        .zip(&standard.preprocessor.inputs)
    {
        match (ple, std) {
            (InputColumn::Numeric(a), InputColumn::Numeric(b)) => {
                numeric += 1;
                let edges = a.ple_edges.as_ref().expect("edges for a numeric column");
                assert!(edges.len() >= 3, "{}: {edges:?}", a.name);
                assert!(edges.windows(2).all(|w| w[0] < w[1]));
                assert_eq!(a.missing_indicator, b.missing_indicator);
                assert!(b.ple_edges.is_none());
                // Edges are quantiles of the training rows: the lowest and highest edge
                // are the training minimum and maximum (after any signed log).
                let col = p
                    .preprocessor
                    .feature_names
                    .iter()
                    .position(|n| n == &format!("{}_bin1of{}", a.name, edges.len() - 1));
                let col = col.expect("bin feature names");
                let w = p.n_features();
                let first_bin: Vec<f32> = p.train.x.chunks_exact(w).map(|r| r[col]).collect();
                let lo = first_bin.iter().copied().fold(f32::INFINITY, f32::min);
                assert_eq!(lo, 0.0, "{}: the training minimum encodes as 0", a.name);
            }
            (InputColumn::Categorical(a), InputColumn::Categorical(b)) => assert_eq!(a, b),
            _ => panic!("column kinds differ"),
        }
    }
    assert!(numeric >= 3);
    assert!(p.n_features() > standard.n_features());
}

#[test]
fn ple_round_trips_bit_for_bit_through_json_and_the_prediction_reader() {
    let p = prepare(&fixture("credit_mixed.csv"), &opts(NumericEncoding::Ple)).unwrap();
    let json = p.preprocessor.to_json();
    assert!(json.contains("ple_edges"));
    let pre = Preprocessor::from_json(&json, Path::new("config.json")).unwrap();
    assert_eq!(pre, p.preprocessor);
    let mut reader = PredictReader::open(&fixture("credit_mixed.csv"), &pre).unwrap();
    let mut x = Vec::new();
    while let Some(b) = reader.next_batch(7).unwrap() {
        x.extend(b.x);
    }
    let w = pre.n_features();
    for (rows, split) in [(&p.train_rows, &p.train), (&p.val_rows, &p.val)] {
        for (i, &r) in rows.iter().enumerate() {
            assert_eq!(
                bits(&x[r as usize * w..(r as usize + 1) * w]),
                bits(&split.x[i * w..(i + 1) * w]),
                "row {r}"
            );
        }
    }
}

#[test]
fn standard_files_omit_the_field_and_bad_edges_are_refused() {
    let p = prepare(
        &fixture("credit_mixed.csv"),
        &opts(NumericEncoding::Standard),
    )
    .unwrap();
    // A model saved before the encoding existed has no ple_edges: it loads as standard.
    let json = p.preprocessor.to_json();
    assert!(!json.contains("ple_edges"));
    assert_eq!(
        Preprocessor::from_json(&json, Path::new("old.json")).unwrap(),
        p.preprocessor
    );

    let ple = prepare(&fixture("credit_mixed.csv"), &opts(NumericEncoding::Ple)).unwrap();
    let mut bad = ple.preprocessor.clone();
    let InputColumn::Numeric(step) = bad
        .inputs
        .iter_mut()
        .find(|i| matches!(i, InputColumn::Numeric(_)))
        .unwrap()
    else {
        unreachable!()
    };
    let edges = step.ple_edges.as_mut().unwrap();
    edges.swap(0, 1);
    let e = Preprocessor::from_json(&bad.to_json(), Path::new("bad.json"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("bin edge") && e.contains("bad.json"), "{e}");
    let e = "fourier"
        .parse::<NumericEncoding>()
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("numeric encoding") && e.contains("fourier") && e.contains("periodic"),
        "{e}"
    );
}
