//! A few odd cells in a column of numbers (text, `inf`, `1e308`, `1,000`) keep it numeric:
//! they are read as missing, counted and reported by line, the same way at prediction
//! time, and `--strict` makes them an error; a column with many words stays categories.

use crate::common;

use common::{riskgrad, rng_for, stderr, TempFile};
use riskgrad::data::{
    numeric_despite, prepare, ColumnKind, NumericEncoding, PredictReader, PrepareOptions,
    Preprocessor,
};
use riskgrad::error::Error;
use riskgrad::rng::Rng;
use std::path::Path;

/// Data rows of the generated files: enough that one odd cell is far below 1 %.
const ROWS: usize = 400;

/// A credit-like file: LIMIT_BAL and AGE random numbers, grade a category, the target
/// drawn from LIMIT_BAL so the columns matter. `cell(r)` may replace LIMIT_BAL of data
/// row `r` (0-based; file line r + 2).
fn credit_csv(rng: &mut Rng, cell: impl Fn(usize) -> Option<String>) -> String {
    let mut s = String::from("LIMIT_BAL,AGE,grade,default\n");
    for r in 0..ROWS {
        let limit = (rng.range(1.0, 50.0) as i64 * 10_000).to_string();
        let age = 21 + rng.below(50);
        let grade = ["A", "B", "C"][rng.below(3)];
        let y = (rng.uniform() < 0.2 + 0.3 * (limit.len() < 6) as u8 as f64) as u8;
        let limit = cell(r).unwrap_or(limit);
        s.push_str(&format!("{limit},{age},{grade},{y}\n"));
    }
    s
}

/// The same file twice from one seed: once with `odd` at data row `row`, once with
/// `instead` there.
fn pair(test: &str, row: usize, odd: &str, instead: &str) -> (TempFile, TempFile) {
    let make = |text: &str| {
        let mut rng = rng_for(test);
        let text = text.to_string();
        credit_csv(&mut rng, move |r| (r == row).then(|| text.clone()))
    };
    (
        TempFile::new("odd.csv", make(odd).as_bytes()),
        TempFile::new("plain.csv", make(instead).as_bytes()),
    )
}

fn opts() -> PrepareOptions {
    PrepareOptions {
        numeric_encoding: NumericEncoding::Standard,
        ..Default::default()
    }
}

#[test]
fn the_share_rule() {
    // At most 5 odd cells, or 1 %, and never more than a tenth.
    assert!(numeric_despite(0, 1));
    assert!(numeric_despite(5, 50));
    assert!(!numeric_despite(5, 49));
    assert!(!numeric_despite(6, 599));
    assert!(numeric_despite(6, 600));
    assert!(numeric_despite(300, 30_000));
    assert!(!numeric_despite(301, 30_000));
    assert!(!numeric_despite(3, 10));
    assert!(!numeric_despite(1, 1));
}

#[test]
fn one_odd_cell_is_read_as_missing_and_reported() {
    // Data row 11 is file line 13; the odd file must prepare exactly as the file with an
    // empty cell there (same features, same values), and say which line it read so.
    for (odd, out_of_range) in [
        ("abc", false),
        ("inf", true),
        ("1e308", true),
        ("-1e39", true),
    ] {
        let (odd_file, empty_file) = pair("one_odd_cell", 11, odd, "");
        let got = prepare(&odd_file.0, &opts()).unwrap_or_else(|e| panic!("{odd}: {e}"));
        let want = prepare(&empty_file.0, &opts()).unwrap();
        assert_eq!(got.feature_names, want.feature_names, "{odd}");
        assert_eq!(got.schema.columns[0].kind, ColumnKind::Numeric, "{odd}");
        // 2 numeric features with a missing flag for LIMIT_BAL at most, 3 grades + other.
        assert!(got.n_features() <= 8, "{odd}: {:?}", got.feature_names);
        assert_eq!(got.train.x, want.train.x, "{odd}");
        assert_eq!(got.val.x, want.val.x, "{odd}");
        assert_eq!(got.schema.columns[0].missing, 1, "{odd}");

        let notes: Vec<_> = got.schema.odd_cells().collect();
        assert_eq!(notes.len(), 1, "{odd}");
        let note = notes[0].to_string();
        assert_eq!(notes[0].count(), 1);
        assert_eq!(notes[0].out_of_range, out_of_range as usize, "{note}");
        assert_eq!(notes[0].first, [(13, format!("{odd:?}"))], "{note}");
        for want in ["\"LIMIT_BAL\"", "line 13", "read as missing"] {
            assert!(note.contains(want), "{want:?} not in {note}");
        }
        assert_eq!(
            note.contains("beyond f32's range"),
            out_of_range,
            "out-of-range numbers are not called text: {note}"
        );
        assert!(want.schema.odd_cells().next().is_none());
    }
}

#[test]
fn thousands_separators_are_numbers() {
    for (grouped, plain) in [("\"1,000\"", "1000"), ("\"-1,234,567.5\"", "-1234567.5")] {
        let (odd_file, plain_file) = pair("thousands", 20, grouped, plain);
        let got = prepare(&odd_file.0, &opts()).unwrap();
        let want = prepare(&plain_file.0, &opts()).unwrap();
        assert_eq!(got.feature_names, want.feature_names, "{grouped}");
        assert_eq!(got.train.x, want.train.x, "{grouped}");
        assert_eq!(got.val.x, want.val.x, "{grouped}");
        assert!(got.schema.odd_cells().next().is_none(), "{grouped}");
        assert_eq!(got.schema.columns[0].missing, 0);
    }
    // A decimal comma is not guessed at: an odd cell, read as missing.
    let (odd_file, _) = pair("thousands", 20, "\"12,5\"", "");
    let got = prepare(&odd_file.0, &opts()).unwrap();
    let note = got.schema.odd_cells().next().expect("a note").to_string();
    assert!(note.contains("line 22") && note.contains("12,5"), "{note}");
}

#[test]
fn a_few_odd_cells_are_listed_and_counted() {
    // Eight words in 400 cells (1 % is 4, so 5 is the allowance): categories.
    let mut rng = rng_for("a_few_odd_cells");
    let eight = credit_csv(&mut rng, |r| (r % 50 == 3).then(|| "n.a.".to_string()));
    let f = TempFile::new("eight.csv", eight.as_bytes());
    let p = prepare(&f.0, &opts()).unwrap();
    assert_eq!(p.schema.columns[0].kind, ColumnKind::Categorical);

    // Five: numeric, the five lines listed, the count in the missing cells.
    let mut rng = rng_for("a_few_odd_cells");
    let five = credit_csv(&mut rng, |r| {
        (r % 50 == 3 && r < 250).then(|| ["x", "inf"][(r / 50) % 2].to_string())
    });
    let f = TempFile::new("five.csv", five.as_bytes());
    let p = prepare(&f.0, &opts()).unwrap();
    assert_eq!(p.schema.columns[0].kind, ColumnKind::Numeric);
    assert_eq!(p.schema.columns[0].missing, 5);
    let odd = p.schema.odd_cells().next().unwrap();
    assert_eq!((odd.not_numbers, odd.out_of_range), (3, 2));
    let lines: Vec<u64> = odd.first.iter().map(|(l, _)| *l).collect();
    assert_eq!(lines, [5, 55, 105, 155, 205]);
    let note = odd.to_string();
    assert!(
        note.contains("3 cells are not numbers and 2 are beyond f32's range"),
        "{note}"
    );
}

#[test]
fn a_column_with_many_words_stays_categorical() {
    // 30 % of LIMIT_BAL is text: categories, as before, with no note.
    let mut rng = rng_for("many_words");
    let text = credit_csv(&mut rng, |r| {
        (r % 10 < 3).then(|| ["unknown", "n.a.", "none"][r % 3].to_string())
    });
    let f = TempFile::new("words.csv", text.as_bytes());
    let p = prepare(&f.0, &opts()).unwrap();
    assert_eq!(p.schema.columns[0].kind, ColumnKind::Categorical);
    assert!(p.schema.odd_cells().next().is_none());
    assert!(p.feature_names.iter().any(|n| n == "LIMIT_BAL=unknown"));
    // A short column of words is categories even under 5 odd cells.
    let f = TempFile::new(
        "short.csv",
        b"purpose,amount,y\ncar,1,0\nhome,2,1\ncar,3,0\n4,4,1\n",
    );
    let p = prepare(
        &f.0,
        &PrepareOptions {
            val_fraction: 0.5,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(p.schema.columns[0].kind, ColumnKind::Categorical);
}

#[test]
fn strict_refuses_odd_cells_naming_line_and_column() {
    let (odd_file, _) = pair("strict", 30, "1e308", "");
    let strict = PrepareOptions {
        strict: true,
        ..opts()
    };
    let e = prepare(&odd_file.0, &strict).unwrap_err();
    let msg = e.to_string();
    match &e {
        Error::Data { line, column, .. } => {
            assert_eq!(*line, Some(32), "{msg}");
            assert_eq!(column.as_deref(), Some("LIMIT_BAL"), "{msg}");
        }
        other => panic!("expected a data error, got {other:?}"),
    }
    assert!(
        msg.contains("beyond f32's range") && msg.contains("1e308"),
        "{msg}"
    );

    // The CLI: exit 3 (bad data), naming file, line and column; without --strict, a note.
    let path = odd_file.0.to_str().unwrap();
    let out = riskgrad(&["inspect", "--data", path, "--strict"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    for want in ["odd.csv", "line 32", "LIMIT_BAL", "--strict"] {
        assert!(err.contains(want), "{want:?} not in {err}");
    }
    let out = riskgrad(&["inspect", "--data", path]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("note: column \"LIMIT_BAL\": 1 cell is beyond f32's range")
            && err.contains("line 32")
            && err.contains("--strict makes this an error"),
        "{err}"
    );
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("LIMIT_BAL") && l.contains("numeric")),
        "{table}"
    );
}

#[test]
fn a_declared_numeric_column_refuses_many_words() {
    let mut rng = rng_for("declared");
    let text = credit_csv(&mut rng, |r| (r % 4 == 1).then(|| "n.a.".to_string()));
    let f = TempFile::new("declared.csv", text.as_bytes());
    let e = prepare(
        &f.0,
        &PrepareOptions {
            numeric: vec!["LIMIT_BAL".into()],
            ..opts()
        },
    )
    .unwrap_err();
    let msg = e.to_string();
    assert!(
        matches!(e, Error::Data { line: Some(3), .. })
            && msg.contains("declared numeric")
            && msg.contains("\"n.a.\""),
        "{msg}"
    );
}

/// Features of every row of `path` through `pre`, and the odd cells it reported.
fn predict_features(path: &Path, pre: &Preprocessor) -> (Vec<f32>, Vec<String>) {
    let mut reader = PredictReader::open(path, pre).unwrap();
    let mut x = Vec::new();
    while let Some(batch) = reader.next_batch(97).unwrap() {
        x.extend(batch.x);
    }
    let notes = reader.odd_cells().map(|o| o.to_string()).collect();
    (x, notes)
}

#[test]
fn prediction_reads_odd_cells_as_training_does() {
    // Trained on a file with an odd cell at line 9: the saved preprocessing (through its
    // JSON) reads the same file as the training did, and an odd cell as a missing one.
    let (odd_file, empty_file) = pair("prediction_odd", 7, "inf", "");
    let prepared = prepare(&odd_file.0, &opts()).unwrap();
    let pre =
        Preprocessor::from_json(&prepared.preprocessor.to_json(), Path::new("p.json")).unwrap();
    assert_eq!(pre.to_json(), prepared.preprocessor.to_json());

    let (x_odd, notes) = predict_features(&odd_file.0, &pre);
    let (x_empty, none) = predict_features(&empty_file.0, &pre);
    assert_eq!(x_odd, x_empty);
    assert!(none.is_empty(), "{none:?}");
    assert_eq!(notes.len(), 1);
    assert!(
        notes[0].contains("line 9") && notes[0].contains("\"inf\""),
        "{notes:?}"
    );

    // The training rows, as training prepared them, come out of the reader unchanged.
    let width = prepared.n_features();
    for (i, &r) in prepared.train_rows.iter().enumerate().step_by(37) {
        let r = r as usize;
        assert_eq!(
            x_odd[r * width..(r + 1) * width],
            prepared.train.x[i * width..(i + 1) * width],
            "row {r}"
        );
    }

    // A text cell where training saw only numbers is missing too, not an error.
    let (text_file, _) = pair("prediction_odd", 100, "unknown", "");
    let (x_text, notes) = predict_features(&text_file.0, &pre);
    assert_eq!(x_text.len(), x_empty.len());
    assert!(
        notes[0].contains("line 102") && notes[0].contains("\"unknown\""),
        "{notes:?}"
    );
}

#[test]
fn predict_scores_an_odd_cell_like_a_missing_one() {
    let (odd_file, empty_file) = pair("predict_cli", 5, "#VALUE!", "");
    let dir = crate::common::TempDir::unmade("odd-model");
    let model = dir.to_str().unwrap();
    let out = riskgrad(&[
        "train",
        "--device",
        "cpu",
        "--data",
        odd_file.0.to_str().unwrap(),
        "--hidden",
        "8",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--out",
        model,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let score = |data: &Path, name: &str| {
        let csv = dir.with_file_name(name);
        let out = riskgrad(&[
            "predict",
            "--device",
            "cpu",
            "--model",
            model,
            "--data",
            data.to_str().unwrap(),
            "--out",
            csv.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let scores = std::fs::read_to_string(&csv).unwrap();
        let _ = std::fs::remove_file(&csv);
        (scores, stderr(&out))
    };
    let (odd, note) = score(&odd_file.0, "odd-scores.csv");
    let (empty, _) = score(&empty_file.0, "empty-scores.csv");
    assert_eq!(odd, empty);
    assert_eq!(odd.lines().count(), ROWS + 1);
    assert!(
        note.contains("LIMIT_BAL") && note.contains("line 7") && note.contains("#VALUE!"),
        "{note}"
    );
}

/// A column of no use to the model in any scored row (emptied, or a categorical column
/// recoded so that training saw none of its values) is said once, by name; the file as
/// trained on, or a column empty in some rows only, says nothing.
#[test]
fn a_column_emptied_or_recoded_since_training_is_named() {
    let mut rng = rng_for("unused_columns");
    let text = credit_csv(&mut rng, |_| None);
    let trained = TempFile::new("trained.csv", text.as_bytes());
    let pre = prepare(&trained.0, &opts()).unwrap().preprocessor;
    let notes_for = |text: &str| {
        let file = TempFile::new("scored.csv", text.as_bytes());
        let mut reader = PredictReader::open(&file.0, &pre).unwrap();
        while reader.next_batch(97).unwrap().is_some() {}
        reader.unused_columns()
    };
    // A rewrite of every data line's cells.
    let rewrite = |cells: &dyn Fn(usize, Vec<&str>) -> Vec<String>| {
        let mut lines = text.lines();
        let mut out = format!("{}\n", lines.next().unwrap());
        for (r, line) in lines.enumerate() {
            out.push_str(&cells(r, line.split(',').collect()).join(","));
            out.push('\n');
        }
        out
    };
    assert!(notes_for(&text).is_empty());
    let some_empty = rewrite(&|r, c| {
        let mut c: Vec<String> = c.into_iter().map(String::from).collect();
        if r % 2 == 0 {
            c[0].clear();
        }
        c
    });
    assert!(notes_for(&some_empty).is_empty());

    let emptied = rewrite(&|_, c| {
        let mut c: Vec<String> = c.into_iter().map(String::from).collect();
        c[0].clear();
        c
    });
    let notes = notes_for(&emptied);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].contains("\"LIMIT_BAL\"") && notes[0].contains("empty in all 400 rows"));

    let recoded = rewrite(&|_, c| {
        let mut c: Vec<String> = c.into_iter().map(String::from).collect();
        c[2] = format!("grade-{}", c[2]);
        c
    });
    let notes = notes_for(&recoded);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("\"grade\"") && notes[0].contains("never saw"),
        "{notes:?}"
    );
}

/// `inspect` shows a table whose target no model can learn from (three values, one
/// class), then fails as `train` would (exit 3, naming the column), so a script can check
/// a file first; a good target passes.
#[test]
fn inspect_fails_on_a_target_train_would_refuse() {
    let dir = std::env::temp_dir().join(format!("riskgrad-inspect-target-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, targets, ok) in [
        ("three.csv", ["x", "z", "w", "x"], false),
        ("one.csv", ["1", "1", "1", "1"], false),
        ("two.csv", ["1", "0", "0", "1"], true),
    ] {
        let path = dir.join(name);
        let rows: Vec<String> = targets
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{},{},{t}", i as f32 * 1.5, 7 - i))
            .collect();
        std::fs::write(&path, format!("a,b,y\n{}\n", rows.join("\n"))).unwrap();
        let out = riskgrad(&["inspect", "--data", path.to_str().unwrap()]);
        let table = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            table.contains("target \"y\""),
            "{name}: the table is shown: {table}"
        );
        if ok {
            assert!(out.status.success(), "{name}: {}", stderr(&out));
        } else {
            assert_eq!(out.status.code(), Some(3), "{name}: {}", stderr(&out));
            assert!(
                stderr(&out).contains(&format!("{name}, column \"y\"")),
                "{}",
                stderr(&out)
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
