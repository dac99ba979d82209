//! Bad input to `prepare` and `inspect`: each gets an error that names the file and, where
//! there is one, the line and the column; none panics. (The CLI exits with code 2 on these.)

use crate::common;

use common::{fixture, TempFile};
use std::io::Write;
use std::path::Path;

use riskgrad::data::{inspect, prepare, PrepareOptions, TargetSpec};
use riskgrad::error::{Error, Setting};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

/// The error of `prepare` (and the same from `inspect` where it is a reading error), whose
/// message names the file.
fn prepare_err(path: &Path, opts: &PrepareOptions) -> (Error, String) {
    let e = prepare(path, opts).expect_err("expected an error");
    let msg = e.to_string();
    let file = path.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(file), "message does not name the file: {msg}");
    (e, msg)
}

fn assert_data(e: &Error, msg: &str, line: Option<u64>, column: Option<&str>, text: &str) {
    match e {
        Error::Data {
            line: l, column: c, ..
        } => {
            assert_eq!(*l, line, "{msg}");
            assert_eq!(c.as_deref(), column, "{msg}");
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
    if let Some(l) = line {
        assert!(msg.contains(&format!("line {l}")), "{msg}");
    }
    assert!(msg.contains(text), "{msg:?} does not contain {text:?}");
}

fn text_file(name: &str, text: &str) -> TempFile {
    TempFile::new(name, text.as_bytes())
}

#[test]
fn missing_file() {
    let (e, _) = prepare_err(&fixture("no_such_file.csv"), &PrepareOptions::default());
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
    assert!(inspect(&fixture("no_such_file.csv"), &PrepareOptions::default()).is_err());
}

#[test]
fn empty_file() {
    let (e, msg) = prepare_err(&fixture("empty.csv"), &PrepareOptions::default());
    assert_data(&e, &msg, None, None, "empty file");
    let tmp = TempFile::new("empty.csv.gz", &gzip(b""));
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, None, None, "empty file");
}

#[test]
fn header_only() {
    let (e, msg) = prepare_err(&fixture("header_only.csv"), &PrepareOptions::default());
    assert_data(&e, &msg, None, None, "no data rows");
}

#[test]
fn wrong_number_of_fields_names_the_line() {
    let (e, msg) = prepare_err(&fixture("ragged.csv"), &PrepareOptions::default());
    assert_data(&e, &msg, Some(3), None, "found 3");
    let tmp = text_file("long.csv", "a,b,y\n1,2,0\n3,4,1\n5,6,0,9\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(
        &e,
        &msg,
        Some(4),
        None,
        "expected 3 fields as in the header, found 4",
    );
}

#[test]
fn text_in_a_column_forced_numeric_names_line_and_column() {
    let opts = PrepareOptions {
        numeric: vec!["student".into()],
        target: "default".parse().unwrap(),
        ..Default::default()
    };
    let (e, msg) = prepare_err(&fixture("text_cell.csv"), &opts);
    assert_data(&e, &msg, Some(2), Some("student"), "not a number: \"No\"");
    // Missing values are fine in a numeric column.
    let tmp = text_file("na.csv", "a,y\n1,0\nNA,1\n,0\n3,1\n4,0\n");
    let opts = PrepareOptions {
        numeric: vec!["a".into()],
        val_fraction: 0.4,
        ..Default::default()
    };
    assert!(prepare(&tmp.0, &opts).is_ok());
}

#[test]
fn unknown_columns_list_the_columns() {
    let path = fixture("small.csv");
    let (e, msg) = prepare_err(
        &path,
        &PrepareOptions {
            target: "nope".parse().unwrap(),
            ..Default::default()
        },
    );
    assert_data(&e, &msg, Some(1), None, "target column \"nope\" not found");
    assert!(
        msg.contains("\"LIMIT_BAL\"") && msg.contains("\"default payment next month\""),
        "{msg}"
    );
    let (e, msg) = prepare_err(
        &path,
        &PrepareOptions {
            target: TargetSpec::Index(9),
            ..Default::default()
        },
    );
    assert_data(&e, &msg, Some(1), None, "index 9");
    for opts in [
        PrepareOptions {
            drop: vec!["SEX".into()],
            ..Default::default()
        },
        PrepareOptions {
            categorical: vec!["SEX".into()],
            ..Default::default()
        },
        PrepareOptions {
            numeric: vec!["SEX".into()],
            ..Default::default()
        },
        PrepareOptions {
            id_column: Some("SEX".into()),
            ..Default::default()
        },
    ] {
        let (e, msg) = prepare_err(&path, &opts);
        assert_data(&e, &msg, Some(1), None, "\"SEX\"");
        assert!(msg.contains("\"PAY_0\""), "{msg}");
    }
    // Case-insensitive names are found when only one column matches.
    let p = prepare(
        &path,
        &PrepareOptions {
            target: "DEFAULT PAYMENT NEXT MONTH".parse().unwrap(),
            val_fraction: 0.4,
            ..Default::default()
        },
    );
    assert!(p.is_ok(), "{p:?}");
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let tmp = TempFile::new("utf8.csv", b"a,b,y\n1,x,0\n3,\xFF\xFE,1\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, Some(3), Some("b"), "invalid UTF-8");
    // In a column of numbers so far.
    let tmp = TempFile::new("utf8-num.csv", b"a,b,y\n1,2,0\n3,\xC3\x28,1\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, Some(3), Some("b"), "invalid UTF-8");
    // In the header.
    let tmp = TempFile::new("utf8-header.csv", b"a,\xFF,y\n1,2,0\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, Some(1), None, "UTF-8");
    // In the target.
    let tmp = TempFile::new("utf8-target.csv", b"a,y\n1,0\n2,\xFF\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, Some(3), Some("y"), "invalid UTF-8");
}

#[test]
fn truncated_or_corrupt_gzip() {
    let full = gzip(&std::fs::read(fixture("credit_mixed.csv")).unwrap());
    let opts = PrepareOptions {
        target: "credit_risk".parse().unwrap(),
        ..Default::default()
    };
    for (name, bytes) in [
        ("half.csv.gz", &full[..full.len() / 2]),
        ("no-trailer.csv.gz", &full[..full.len() - 8]),
        ("three-bytes.csv.gz", &full[..3]),
        // Truncated, and without `.gz` in the name: found by the magic.
        ("half-no-ext.csv", &full[..full.len() / 2]),
    ] {
        let tmp = TempFile::new(name, bytes);
        let (e, msg) = prepare_err(&tmp.0, &opts);
        assert!(matches!(e, Error::Io { .. }), "{name}: {e:?}");
        assert!(msg.contains("gzip"), "{msg}");
    }
    let tmp = TempFile::new("not-gzip.csv.gz", b"a,y\n1,0\n");
    let (e, _) = prepare_err(&tmp.0, &opts);
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn other_unusable_files() {
    // Only an id and a target: nothing to learn from.
    let tmp = text_file("noid.csv", "id,y\n1,0\n2,1\n3,0\n4,1\n");
    let (e, msg) = prepare_err(
        &tmp.0,
        &PrepareOptions {
            val_fraction: 0.5,
            ..Default::default()
        },
    );
    assert_data(&e, &msg, None, None, "no feature columns");
    // Every target missing.
    let tmp = text_file("notarget.csv", "a,y\n1,\n2,NA\n");
    let (e, msg) = prepare_err(&tmp.0, &PrepareOptions::default());
    assert_data(&e, &msg, None, Some("y"), "no values");
    // A bad validation split is a refused setting, named as such.
    let e = prepare(
        &fixture("small.csv"),
        &PrepareOptions {
            val_fraction: 1.0,
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                setting: Setting::ValidationSplit,
                ..
            }
        ),
        "{e:?}"
    );
    // The target cannot be dropped or forced.
    let (e, msg) = prepare_err(
        &fixture("small.csv"),
        &PrepareOptions {
            drop: vec!["default payment next month".into()],
            ..Default::default()
        },
    );
    assert_data(
        &e,
        &msg,
        Some(1),
        Some("default payment next month"),
        "cannot be dropped",
    );
    let e = prepare(
        &fixture("small.csv"),
        &PrepareOptions {
            categorical: vec!["default payment next month".into()],
            ..Default::default()
        },
    )
    .unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid {
                setting: Setting::Categorical,
                ..
            }
        ),
        "{e:?}"
    );
}

/// A validation split that leaves the training rows without both classes is refused as
/// about the split, naming what is left: the model could not learn from one class (it
/// trained on one row before).
#[test]
fn a_split_that_leaves_the_training_rows_one_class_is_refused() {
    // 30 rows, 6 of them defaults.
    let mut text = String::from("x,y\n");
    for i in 0..30 {
        text.push_str(&format!("{}.5,{}\n", i * 7 % 11, (i % 5 == 0) as u8));
    }
    let tmp = text_file("one-class-side.csv", &text);
    for (fraction, expected) in [
        (0.92, "0.92 leaves 2 training rows, none of them a default"),
        (0.97, "1 training row, a non-default"),
        (0.999_999, "no training rows"),
    ] {
        let opts = PrepareOptions {
            val_fraction: fraction,
            ..Default::default()
        };
        let (e, msg) = prepare_err(&tmp.0, &opts);
        assert!(
            matches!(
                e,
                Error::Data {
                    setting: Some(Setting::ValidationSplit),
                    ..
                }
            ),
            "{fraction}: {e:?}"
        );
        assert!(msg.contains(expected), "{fraction}: {msg}");
    }
    // One class among the validation rows only: prepared (the CLI notes it).
    let prepared = prepare(
        &tmp.0,
        &PrepareOptions {
            val_fraction: 0.04,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(prepared.val.y, vec![0.0]);
    assert_eq!(prepared.train.y.len(), 29);
}

/// A file with no line ends (a device, a binary blob) is refused once a line passes the
/// reader's bound, instead of being read into memory until the machine runs out.
#[cfg(unix)]
#[test]
fn a_file_without_line_ends_is_refused_not_read_into_memory() {
    let e = inspect(Path::new("/dev/zero"), &PrepareOptions::default()).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, Error::Data { .. }), "{e:?}");
    assert!(msg.contains("/dev/zero") && msg.contains("64 MB"), "{msg}");
}

/// `--target 1` in a header `1,0,x` means the column named 1 (which only its name can
/// pick), not the column at index 1; where no column has that name, the index holds.
#[test]
fn a_target_of_digits_is_a_column_of_that_name_before_an_index() {
    let text = "1,0,x\n1,0,0\n0,1,1\n1,1,1\n0,0,0\n";
    let tmp = TempFile::new("digit-names.csv", text.as_bytes());
    let target_of = |flag: &str| {
        let opts = PrepareOptions {
            target: flag.parse().unwrap(),
            ..Default::default()
        };
        inspect(&tmp.0, &opts).unwrap().target.name
    };
    assert_eq!(target_of("1"), "1");
    assert_eq!(target_of("0"), "0");
    assert_eq!(target_of("2"), "x");
}
