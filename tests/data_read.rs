//! Reading CSV files into a Dataset: the happy paths (plain, gzip, the bundled Taiwan file)
//! and every kind of bad input, whose errors must name the file, line and column.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use riskgrad::data::{read_csv, Dataset, ReadOptions, TargetSpec};
use riskgrad::error::Error;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fresh path in the temp dir, unique per process and call; removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir()
            .join(format!("riskgrad-data-read-{}-{n}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn with_id(id: &str) -> ReadOptions {
    ReadOptions { id_column: Some(id.into()), ..Default::default() }
}

fn read_err(path: &Path, opts: &ReadOptions) -> (Error, String) {
    let e = read_csv(path, opts).expect_err("expected an error");
    let msg = e.to_string();
    let file = path.file_name().unwrap().to_str().unwrap();
    assert!(msg.contains(file), "message does not name the file: {msg}");
    (e, msg)
}

/// Asserts an Error::Data at `line` (and `column` when given) whose message contains `text`.
fn assert_data_err(e: &Error, msg: &str, line: Option<u64>, column: Option<&str>, text: &str) {
    match e {
        Error::Data { line: l, column: c, .. } => {
            assert_eq!(*l, line, "{msg}");
            assert_eq!(c.as_deref(), column, "{msg}");
        }
        other => panic!("expected Error::Data, got {other:?}"),
    }
    if let Some(l) = line {
        assert!(msg.contains(&format!("line {l}")), "{msg}");
    }
    if let Some(c) = column {
        assert!(msg.contains(c), "{msg}");
    }
    assert!(msg.contains(text), "{msg:?} does not contain {text:?}");
}

fn check_small(d: &Dataset) {
    assert_eq!(d.n_rows(), 5);
    assert_eq!(d.n_features(), 3);
    assert_eq!(d.feature_names, ["LIMIT_BAL", "AGE", "PAY_0"]);
    assert_eq!(d.target_name, "default payment next month");
    assert_eq!(d.row(0), &[20000.0, 24.0, 2.0]);
    assert_eq!(d.row(4), &[50000.0, 57.0, -1.0]);
    assert_eq!(d.y, [1.0, 1.0, 0.0, 0.0, 0.0]);
    assert_eq!(d.ids.as_deref().unwrap(), ["1", "2", "3", "4", "5"]);
    assert!((d.positive_rate() - 0.4).abs() < 1e-12);
}

#[test]
fn reads_plain_csv() {
    let d = read_csv(&fixture("small.csv"), &with_id("ID")).unwrap();
    check_small(&d);
    assert_eq!(d.path, fixture("small.csv"));
}

#[test]
fn reads_gzip_csv() {
    let bytes = std::fs::read(fixture("small.csv")).unwrap();
    let tmp = TempFile::new("small.csv.gz", &gzip(&bytes));
    check_small(&read_csv(&tmp.0, &with_id("ID")).unwrap());

    // Concatenated gzip members (as `cat a.gz b.gz` makes) are one stream.
    let text = std::str::from_utf8(&bytes).unwrap();
    let split = text.find("3,90000").unwrap();
    let mut two = gzip(&bytes[..split]);
    two.extend(gzip(&bytes[split..]));
    let tmp = TempFile::new("two-members.csv.gz", &two);
    check_small(&read_csv(&tmp.0, &with_id("ID")).unwrap());
}

#[test]
fn without_id_column_the_id_is_a_feature() {
    let d = read_csv(&fixture("small.csv"), &ReadOptions::default()).unwrap();
    assert_eq!(d.feature_names[0], "ID");
    assert_eq!(d.n_features(), 4);
    assert!(d.ids.is_none());
}

#[test]
fn target_by_name_index_and_float_labels_drop() {
    let opts = ReadOptions {
        target: "label".parse().unwrap(),
        drop: vec!["z".into()],
        id_column: Some("id".into()),
    };
    let d = read_csv(&fixture("float_target.csv"), &opts).unwrap();
    assert_eq!(d.feature_names, ["x"]);
    assert_eq!(d.x, [1.5, 2.5, -0.5]);
    assert_eq!(d.y, [0.0, 1.0, 1.0]);
    assert_eq!(d.ids.unwrap(), ["a1", "a2", "a3"]);

    let opts = ReadOptions { target: TargetSpec::Index(2), ..with_id("id") };
    let d = read_csv(&fixture("float_target.csv"), &opts).unwrap();
    assert_eq!(d.feature_names, ["x", "z"]);
    assert_eq!(d.row(1), &[2.5, 300.0]);

    // An id column that is also listed in `drop` still provides the ids.
    let opts = ReadOptions { drop: vec!["ID".into(), "AGE".into()], ..with_id("ID") };
    let d = read_csv(&fixture("small.csv"), &opts).unwrap();
    assert_eq!(d.feature_names, ["LIMIT_BAL", "PAY_0"]);
    assert_eq!(d.ids.unwrap().len(), 5);
}

#[test]
fn crlf_bom_and_quotes() {
    let text = b"\xEF\xBB\xBFid,\"a, quoted\",y\r\nr1,1,0\r\nr2,\" 2 \",1\r\n";
    let tmp = TempFile::new("crlf.csv", text);
    let d = read_csv(&tmp.0, &with_id("id")).unwrap();
    assert_eq!(d.feature_names, ["a, quoted"]);
    assert_eq!(d.x, [1.0, 2.0]);
    assert_eq!(d.y, [0.0, 1.0]);
}

#[test]
fn text_in_feature_column() {
    let path = fixture("text_cell.csv");
    let opts = ReadOptions { target: "default".parse().unwrap(), ..Default::default() };
    let (e, msg) = read_err(&path, &opts);
    assert_data_err(&e, &msg, Some(2), Some("student"), "\"No\"");
}

#[test]
fn empty_feature_cell() {
    let path = fixture("empty_cell.csv");
    let (e, msg) = read_err(&path, &with_id("ID"));
    assert_data_err(&e, &msg, Some(3), Some("b"), "empty cell");
}

#[test]
fn target_not_zero_or_one() {
    let path = fixture("bad_target.csv");
    let (e, msg) = read_err(&path, &with_id("ID"));
    assert_data_err(&e, &msg, Some(4), Some("y"), "\"2\"");
}

#[test]
fn wrong_field_count() {
    let path = fixture("ragged.csv");
    let (e, msg) = read_err(&path, &with_id("ID"));
    assert_data_err(&e, &msg, Some(3), None, "found 3");
}

#[test]
fn unknown_target_drop_and_id_list_the_columns() {
    let path = fixture("small.csv");
    let opts = ReadOptions { target: "nope".parse().unwrap(), ..Default::default() };
    let (e, msg) = read_err(&path, &opts);
    assert_data_err(&e, &msg, Some(1), None, "\"nope\"");
    assert!(msg.contains("LIMIT_BAL") && msg.contains("default payment next month"), "{msg}");

    let opts = ReadOptions { target: TargetSpec::Index(5), ..Default::default() };
    let (e, msg) = read_err(&path, &opts);
    assert_data_err(&e, &msg, Some(1), None, "index 5");

    let opts = ReadOptions { drop: vec!["AGE".into(), "SEX".into()], ..Default::default() };
    let (e, msg) = read_err(&path, &opts);
    assert_data_err(&e, &msg, Some(1), None, "SEX");
    assert!(msg.contains("PAY_0"), "{msg}");

    let (e, msg) = read_err(&path, &with_id("CUST"));
    assert_data_err(&e, &msg, Some(1), None, "CUST");
    assert!(msg.contains("PAY_0"), "{msg}");

    let opts = ReadOptions { drop: vec!["default payment next month".into()], ..Default::default() };
    let (e, msg) = read_err(&path, &opts);
    assert_data_err(&e, &msg, Some(1), Some("default payment next month"), "cannot be dropped");
}

#[test]
fn missing_empty_and_header_only_files() {
    let path = fixture("does_not_exist.csv");
    let (e, _) = read_err(&path, &ReadOptions::default());
    assert!(matches!(e, Error::Io { .. }), "{e:?}");

    let (e, msg) = read_err(&fixture("empty.csv"), &ReadOptions::default());
    assert_data_err(&e, &msg, None, None, "empty file");

    let (e, msg) = read_err(&fixture("header_only.csv"), &ReadOptions::default());
    assert_data_err(&e, &msg, None, None, "no data rows");

    // An empty .gz (a valid gzip stream of nothing) is an empty file too.
    let tmp = TempFile::new("empty.csv.gz", &gzip(b""));
    let (e, msg) = read_err(&tmp.0, &ReadOptions::default());
    assert_data_err(&e, &msg, None, None, "empty file");
}

#[test]
fn invalid_utf8() {
    // In a numeric cell: reported as not a number, at its line and column.
    let tmp = TempFile::new("utf8-cell.csv", b"a,b,y\n1,2,0\n3,\xFF\xFE,1\n");
    let (e, msg) = read_err(&tmp.0, &ReadOptions::default());
    assert_data_err(&e, &msg, Some(3), Some("b"), "not a finite number");

    // In the id column.
    let tmp = TempFile::new("utf8-id.csv", b"id,b,y\n\xC3\x28,2,0\n");
    let (e, msg) = read_err(&tmp.0, &with_id("id"));
    assert_data_err(&e, &msg, Some(2), Some("id"), "UTF-8");

    // In the header.
    let tmp = TempFile::new("utf8-header.csv", b"a,\xFF,y\n1,2,0\n");
    let (e, msg) = read_err(&tmp.0, &ReadOptions::default());
    assert_data_err(&e, &msg, Some(1), None, "UTF-8");
}

#[test]
fn non_finite_numbers_are_rejected() {
    let tmp = TempFile::new("inf.csv", b"a,y\n1,0\ninf,1\n");
    let (e, msg) = read_err(&tmp.0, &ReadOptions::default());
    assert_data_err(&e, &msg, Some(3), Some("a"), "\"inf\"");
    let tmp = TempFile::new("overflow.csv", b"a,y\n1e300,0\n");
    let (e, msg) = read_err(&tmp.0, &ReadOptions::default());
    assert_data_err(&e, &msg, Some(2), Some("a"), "1e300");
}

#[test]
fn truncated_and_corrupt_gzip() {
    let full = gzip(&std::fs::read(fixture("small.csv")).unwrap());
    let tmp = TempFile::new("truncated.csv.gz", &full[..full.len() / 2]);
    let (e, _) = read_err(&tmp.0, &with_id("ID"));
    assert!(matches!(e, Error::Io { .. }), "{e:?}");

    // Missing only the trailer (CRC + size): still an error, not silently short data.
    let tmp = TempFile::new("no-trailer.csv.gz", &full[..full.len() - 8]);
    let (e, _) = read_err(&tmp.0, &with_id("ID"));
    assert!(matches!(e, Error::Io { .. }), "{e:?}");

    let tmp = TempFile::new("not-gzip.csv.gz", b"ID,a,y\n1,2,0\n");
    let (e, _) = read_err(&tmp.0, &with_id("ID"));
    assert!(matches!(e, Error::Io { .. }), "{e:?}");
}

#[test]
fn bundled_taiwan_file() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/taiwan_default_of_credit_card_clients.csv.gz");
    let d = read_csv(&path, &with_id("ID")).unwrap();
    assert_eq!(d.n_rows(), 30000);
    assert_eq!(d.n_features(), 23);
    assert_eq!(d.x.len(), 30000 * 23);
    assert_eq!(d.target_name, "default payment next month");
    assert_eq!(d.y.iter().filter(|&&v| v == 1.0).count(), 6636);
    assert_eq!(d.feature_names[0], "LIMIT_BAL");
    assert_eq!(d.feature_names[22], "PAY_AMT6");
    let ids = d.ids.as_ref().unwrap();
    assert_eq!((ids[0].as_str(), ids[29999].as_str()), ("1", "30000"));
    // First data row: 1,20000,2,2,1,24,2,2,-1,-1,-2,-2,3913,3102,689,0,0,0,0,689,0,0,0,0,1
    assert_eq!(&d.row(0)[..8], &[20000.0, 2.0, 2.0, 1.0, 24.0, 2.0, 2.0, -1.0]);
    assert_eq!(d.row(0)[12], 3102.0);
}
