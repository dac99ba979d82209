//! Property tests: arbitrary bytes and arbitrary CSV-shaped text never make reading,
//! inspecting, preparing or predicting panic; they give a result or an error.

use std::path::Path;

use proptest::prelude::*;
use riskgrad::data::{
    infer_schema, prepare_from, read_table_from, render_schema, PredictReader, PrepareOptions,
    RareThreshold, SignedLog,
};

fn run_all(bytes: Vec<u8>, opts: &PrepareOptions) {
    let path = Path::new("fuzz.csv");
    if let Ok(table) = read_table_from(std::io::Cursor::new(bytes.clone()), path, opts) {
        let _ = render_schema(&infer_schema(&table, opts));
    }
    if let Ok(p) = prepare_from(std::io::Cursor::new(bytes.clone()), path, opts) {
        assert_eq!(p.train.x.len(), p.train.rows() * p.n_features());
        assert_eq!(p.val.x.len(), p.val.rows() * p.n_features());
        assert!(
            p.train.x.iter().chain(&p.val.x).all(|v| v.is_finite()),
            "non-finite feature"
        );
        // The same bytes through the saved preprocessing.
        let json = p.preprocessor.to_json();
        let pre = riskgrad::data::Preprocessor::from_json(&json, Path::new("m.json"))
            .expect("own JSON reads back");
        if let Ok(mut r) = PredictReader::from_reader(std::io::Cursor::new(bytes), path, &pre) {
            while let Ok(Some(b)) = r.next_batch(3) {
                assert!(b.x.iter().all(|v| v.is_finite()));
            }
        }
    }
}

/// Cells a credit file might hold, and (less often) some that break the CSV shape.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        1000 => prop_oneof![
            Just(String::new()),
            Just("NA".to_string()),
            Just("?".to_string()),
            Just("null".to_string()),
            Just("yes".to_string()),
            Just("No".to_string()),
            Just("A11".to_string()),
            Just("1e40".to_string()),
            Just("inf".to_string()),
            Just("\"a, b\"".to_string()),
            Just("-0".to_string()),
            (-3i32..4).prop_map(|v| v.to_string()),
            (-1.0e7f64..1.0e7).prop_map(|v| format!("{v}")),
            "[a-zA-Z0-9 _./-]{0,6}",
        ],
        1 => Just("\"".to_string()),
        1 => any::<u8>().prop_map(|b| String::from_utf8_lossy(&[b]).into_owned()),
    ]
}

/// A row's target: one of the file's two values, sometimes anything.
fn target_cell(pair: (&'static str, &'static str)) -> impl Strategy<Value = String> {
    prop_oneof![
        20 => prop_oneof![Just(pair.0), Just(pair.1)].prop_map(str::to_string),
        1 => cell(),
    ]
}

/// A header (unique names, sometimes named like ids, target last) and rows that mostly
/// have the header's width.
fn csv_text() -> impl Strategy<Value = (Vec<u8>, usize)> {
    let pairs = prop_oneof![
        Just(("0", "1")),
        Just(("yes", "No")),
        Just(("good", "bad")),
        Just(("x", "z"))
    ];
    (1usize..6, 0usize..40, pairs).prop_flat_map(|(features, rows, pair)| {
        let names = prop::collection::vec(
            prop_oneof![
                Just("c"),
                Just("id"),
                Just("cust_id"),
                Just(""),
                Just("amt ")
            ],
            features,
        );
        let row = (
            prop_oneof![400 => Just(features), 1 => 0..features + 3]
                .prop_flat_map(|n| prop::collection::vec(cell(), n)),
            target_cell(pair),
        );
        (names, prop::collection::vec(row, rows), any::<bool>()).prop_map(
            move |(names, rows, crlf)| {
                let nl = if crlf { "\r\n" } else { "\n" };
                let mut header: Vec<String> = names
                    .iter()
                    .enumerate()
                    .map(|(i, n)| format!("{n}{i}"))
                    .collect();
                header.push("y".into());
                let mut text = header.join(",");
                for (cells, target) in rows {
                    text.push_str(nl);
                    text.push_str(&cells.join(","));
                    text.push(',');
                    text.push_str(&target);
                }
                (text.into_bytes(), features + 1)
            },
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        run_all(bytes, &PrepareOptions::default());
    }

    #[test]
    fn arbitrary_gzip_headed_bytes_never_panic(tail in prop::collection::vec(any::<u8>(), 0..100)) {
        let mut bytes = vec![0x1f, 0x8b, 8, 0];
        bytes.extend(tail);
        run_all(bytes, &PrepareOptions::default());
    }

    #[test]
    fn csv_shaped_text_never_panics((bytes, cols) in csv_text(), forced in 0usize..4, val in 0.05f64..0.95) {
        let mut opts = PrepareOptions { val_fraction: val, rare: RareThreshold::Count(2), ..Default::default() };
        match forced {
            0 => {}
            1 => opts.positive = Some("yes".into()),
            2 => opts.signed_log = SignedLog::Off,
            _ => opts.target = riskgrad::data::TargetSpec::Index(cols.saturating_sub(2)), // a feature as target
        }
        run_all(bytes, &opts);
    }
}
