//! Payment-history layout: the `--sequence` / `--time-order` flags, the bundled data's
//! default, and the reordered matrix (statics first, then time-major, oldest first).

use riskgrad::data::sequence::{self, SequenceLayout, TimeOrder};
use riskgrad::data::{prepare_bundled, PrepareOptions, Prepared};

fn names(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// The bundled file prepared for a sequence model (every column numeric).
fn bundled(drop: &[&str]) -> Prepared {
    let opts = sequence::prepare_options(
        PrepareOptions {
            drop: names(drop),
            ..PrepareOptions::bundled()
        },
        &[],
        true,
    )
    .unwrap();
    prepare_bundled(&opts).unwrap()
}

#[test]
fn bundled_data_default_matches_the_peer_layout() {
    let data = bundled(&[]);
    assert_eq!(data.n_features(), 23, "{:?}", data.feature_names);
    let layout = SequenceLayout::from_flags(&data.feature_names, &[], None).unwrap();
    assert_eq!(
        (layout.statics(), layout.channels(), layout.steps()),
        (5, 3, 6)
    );
    assert_eq!(
        layout.static_names,
        names(&["LIMIT_BAL", "SEX", "EDUCATION", "MARRIAGE", "AGE"])
    );
    // Time-major, April (month 6) first: t = 0 is (PAY_6, BILL_AMT6, PAY_AMT6).
    let want = names(&[
        "LIMIT_BAL",
        "SEX",
        "EDUCATION",
        "MARRIAGE",
        "AGE",
        "PAY_6",
        "BILL_AMT6",
        "PAY_AMT6",
        "PAY_5",
        "BILL_AMT5",
        "PAY_AMT5",
        "PAY_4",
        "BILL_AMT4",
        "PAY_AMT4",
        "PAY_3",
        "BILL_AMT3",
        "PAY_AMT3",
        "PAY_2",
        "BILL_AMT2",
        "PAY_AMT2",
        "PAY_0",
        "BILL_AMT1",
        "PAY_AMT1",
    ]);
    assert_eq!(layout.feature_names(), want);

    // The explicit flags of the issue give the same layout.
    let specs = names(&[
        "PAY_0,PAY_2,PAY_3,PAY_4,PAY_5,PAY_6",
        "BILL_AMT1..6",
        "PAY_AMT1..PAY_AMT6",
    ]);
    let explicit =
        SequenceLayout::from_flags(&data.feature_names, &specs, Some(TimeOrder::NewestFirst))
            .unwrap();
    assert_eq!(explicit, layout);
    // Listed oldest first instead.
    let specs = names(&["PAY_6..2,PAY_0", "BILL_AMT6..1", "PAY_AMT6..1"]);
    assert_eq!(
        SequenceLayout::from_flags(&data.feature_names, &specs, Some(TimeOrder::OldestFirst))
            .unwrap(),
        layout
    );

    // Values move with their names, in both splits.
    let mut moved = data.clone();
    layout.apply(&mut moved).unwrap();
    assert_eq!(moved.feature_names, layout.feature_names());
    let f = data.n_features();
    for (before, after) in [(&data.train, &moved.train), (&data.val, &moved.val)] {
        for row in [0, 1, 17, before.rows() - 1] {
            for (j, name) in moved.feature_names.iter().enumerate() {
                let i = data.feature_names.iter().position(|n| n == name).unwrap();
                assert_eq!(
                    after.x[row * f + j],
                    before.x[row * f + i],
                    "row {row} column {name}"
                );
            }
        }
    }
    // The layout is plain data: it goes through JSON unchanged, to be saved with a model.
    let json = serde_json::to_string(&layout).unwrap();
    assert_eq!(
        serde_json::from_str::<SequenceLayout>(&json).unwrap(),
        layout
    );
}

#[test]
fn one_hot_columns_cannot_be_channels() {
    // The bundled file's own preparation reads the PAY_x codes as categories.
    let data = prepare_bundled(&PrepareOptions::bundled()).unwrap();
    let e = SequenceLayout::from_flags(&data.feature_names, &names(&["PAY_0,PAY_2..6"]), None)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("invalid sequence columns") && e.contains("categories") && e.contains("PAY_0"),
        "{e}"
    );
    // prepare_options makes named columns numeric (as sequence columns, so that an
    // unknown one is blamed on --sequence) and keeps other categories.
    let opts = PrepareOptions {
        categorical: names(&["SEX", "PAY_2"]),
        ..PrepareOptions::default()
    };
    let opts = sequence::prepare_options(opts, &names(&["PAY_0,PAY_2..6"]), false).unwrap();
    assert_eq!(opts.categorical, names(&["SEX"]));
    assert_eq!(
        opts.sequence,
        names(&["PAY_0", "PAY_2", "PAY_3", "PAY_4", "PAY_5", "PAY_6"])
    );
}

#[test]
fn columns_outside_every_sequence_stay_static_in_their_order() {
    let features = names(&["a1", "z", "a2", "b1", "y", "b2", "a3", "b3"]);
    let layout = SequenceLayout::from_flags(&features, &names(&["a1..3", "b1..3"]), None).unwrap();
    assert_eq!(layout.static_names, names(&["z", "y"]));
    assert_eq!(
        layout.feature_names(),
        names(&["z", "y", "a1", "b1", "a2", "b2", "a3", "b3"])
    );
    assert_eq!(layout.source, vec![1, 4, 0, 3, 2, 5, 6, 7]);
    let x: Vec<f32> = (0..16).map(|v| v as f32).collect();
    assert_eq!(
        layout.reorder(&x).unwrap(),
        vec![1., 4., 0., 3., 2., 5., 6., 7., 9., 12., 8., 11., 10., 13., 14., 15.]
    );
    assert!(layout.reorder(&x[..15]).is_err(), "a partial row");
}

#[test]
fn bad_sequences_are_clear_errors_naming_the_flag() {
    let features = names(&["a1", "a2", "a3", "b1", "b2", "B3", "c"]);
    let err = |specs: &[&str], order: Option<TimeOrder>| {
        SequenceLayout::from_flags(&features, &names(specs), order)
            .unwrap_err()
            .to_string()
    };

    let e = err(&["a1..3", "b1..2"], None);
    assert!(
        e.contains("invalid sequence columns")
            && e.contains("has 2 columns")
            && e.contains("has 3"),
        "{e}"
    );
    let e = err(&["a1..3", "b1..3"], None);
    assert!(
        e.contains("\"b3\"") && e.contains("did you mean \"B3\""),
        "{e}"
    );
    let e = err(&["a1..4"], None);
    assert!(
        e.contains("no feature column \"a4\"") && e.contains("a1, a2"),
        "{e}"
    );
    let e = err(&["a1..3", "a3,b1,b2"], None);
    assert!(
        e.contains("\"a3\"") && e.contains("sequences 1 and 2"),
        "{e}"
    );
    let e = err(&["a1,a2,a1"], None);
    assert!(e.contains("twice in sequence 1"), "{e}");
    let e = err(&["a1,,a2"], None);
    assert!(e.contains("empty column name"), "{e}");

    // No flags: only the Taiwan columns have a default.
    let e = err(&[], None);
    assert!(
        e.contains("invalid sequence columns") && e.contains("time series"),
        "{e}"
    );
    let e = err(&[], Some(TimeOrder::NewestFirst));
    assert!(e.contains("invalid time order"), "{e}");
}

#[test]
fn taiwan_copies_that_call_pay_0_pay_1_get_the_default_too() {
    let data = bundled(&[]);
    let renamed: Vec<String> = data
        .feature_names
        .iter()
        .map(|n| {
            if n == "PAY_0" {
                "PAY_1".to_string()
            } else {
                n.clone()
            }
        })
        .collect();
    let layout = SequenceLayout::taiwan_default(&renamed).unwrap();
    assert_eq!(
        layout.channels[0],
        names(&["PAY_6", "PAY_5", "PAY_4", "PAY_3", "PAY_2", "PAY_1"])
    );
    // Without a month, there is no default.
    let dropped = bundled(&["BILL_AMT3"]);
    assert!(SequenceLayout::taiwan_default(&dropped.feature_names).is_none());
}

#[test]
fn an_unknown_sequence_column_is_blamed_on_the_sequence() {
    use riskgrad::error::{Error, Setting};
    let opts = sequence::prepare_options(
        PrepareOptions::default(),
        &names(&["LIMIT_BAL,AMT9"]),
        false,
    )
    .unwrap();
    let small = crate::common::fixture("small.csv");
    let e = riskgrad::data::prepare(&small, &opts).unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { setting: Setting::Sequence, message } if message.contains("AMT9") && message.contains("LIMIT_BAL")),
        "{e:?}"
    );

    let out_dir = crate::common::TempDir::unmade("seq");
    let out = crate::common::riskgrad(&[
        "train",
        "--model",
        "lstm",
        "--device",
        "cpu",
        "--data",
        small.to_str().unwrap(),
        "--sequence",
        "LIMIT_BAL,AMT9",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    let msg = crate::common::stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{msg}");
    assert!(
        msg.contains("--sequence") && msg.contains("AMT9") && !msg.contains("--numeric"),
        "{msg}"
    );
}
