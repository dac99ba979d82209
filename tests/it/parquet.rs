//! Parquet in and out: the Taiwan data converted to Parquet (a file of several row
//! groups, and a directory of two files) trains the same model bit for bit as its CSV;
//! `predict --out *.parquet` holds the CSV's scores; `eval` finds the validation rows of
//! a Parquet training file by their fingerprints; values read as the CSV pandas would
//! write; and broken inputs are clear errors (exit code 3), never a panic.

use crate::common::{riskgrad, stderr};
use crate::lifecycle_common::{taiwan_file, temp_dir};
use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::cast::AsArray;
use arrow_array::types::{Float32Type, Float64Type, Int64Type};
use arrow_array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array, Int64Array,
    RecordBatch, StringArray, TimestampSecondArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;
use riskgrad::data::{read_table, PrepareOptions, TargetSpec, Values};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Writes `columns` to a Parquet file at `path`, `group_rows` rows per row group.
fn write_parquet(path: &Path, columns: Vec<(&str, ArrayRef)>, group_rows: usize) {
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ));
    let batch =
        RecordBatch::try_new(schema.clone(), columns.into_iter().map(|c| c.1).collect()).unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

/// The CSV's header and rows of cells.
fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut bytes = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut bytes)
        .unwrap();
    let mut rdr = csv::Reader::from_reader(&bytes[..]);
    let names = rdr.headers().unwrap().iter().map(String::from).collect();
    let rows = rdr
        .records()
        .map(|r| r.unwrap().iter().map(String::from).collect())
        .collect();
    (names, rows)
}

/// Column `j` of `rows` typed as pandas' `read_csv` types it: int64 when every cell is an
/// integer, float64 when every cell is a number or empty, else strings (empty = null).
fn pandas_column(rows: &[Vec<String>], j: usize) -> ArrayRef {
    let cells: Vec<&str> = rows.iter().map(|r| r[j].as_str()).collect();
    if cells.iter().all(|c| c.parse::<i64>().is_ok()) {
        return Arc::new(Int64Array::from_iter_values(
            cells.iter().map(|c| c.parse::<i64>().unwrap()),
        ));
    }
    if cells
        .iter()
        .all(|c| c.is_empty() || c.parse::<f64>().is_ok())
    {
        return Arc::new(Float64Array::from_iter(
            cells.iter().map(|c| c.parse::<f64>().ok()),
        ));
    }
    Arc::new(StringArray::from_iter(
        cells.iter().map(|c| (!c.is_empty()).then_some(*c)),
    ))
}

/// `rows[range]` of the CSV as a Parquet file of several row groups.
fn csv_rows_to_parquet(
    names: &[String],
    rows: &[Vec<String>],
    path: &Path,
    range: std::ops::Range<usize>,
) {
    let part = &rows[range];
    let columns = names
        .iter()
        .enumerate()
        .map(|(j, n)| (n.as_str(), pandas_column(part, j)))
        .collect();
    write_parquet(path, columns, 4000);
}

struct Taiwan {
    dir: PathBuf,
    csv: PathBuf,
    parquet: PathBuf,
    parts: PathBuf,
    csv_model: PathBuf,
}

fn train(data: &Path, out: &Path) {
    let o = riskgrad(&[
        "train",
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
        "--epochs",
        "2",
        "--seed",
        "0",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        o.status.success(),
        "train on {}: {}",
        data.display(),
        stderr(&o)
    );
}

/// The Taiwan file as Parquet (one file, and a directory of two), and the model trained
/// on the CSV; made once for the tests of this module.
fn taiwan() -> &'static Taiwan {
    static ONCE: OnceLock<Taiwan> = OnceLock::new();
    ONCE.get_or_init(|| {
        let dir = crate::common::once_dir("parquet-taiwan");
        let csv = taiwan_file();
        let (names, rows) = read_csv(&csv);
        let parquet = dir.join("taiwan.parquet");
        csv_rows_to_parquet(&names, &rows, &parquet, 0..rows.len());
        let parts = dir.join("parts");
        std::fs::create_dir(&parts).unwrap();
        csv_rows_to_parquet(&names, &rows, &parts.join("part-0.parquet"), 0..12_345);
        csv_rows_to_parquet(
            &names,
            &rows,
            &parts.join("part-1.parquet"),
            12_345..rows.len(),
        );
        // Files that are not Parquet are not part of the data set.
        std::fs::write(parts.join("_SUCCESS"), b"").unwrap();
        let csv_model = dir.join("model-csv");
        train(&csv, &csv_model);
        Taiwan {
            dir,
            csv,
            parquet,
            parts,
            csv_model,
        }
    })
}

#[test]
fn taiwan_as_parquet_trains_the_same_model_bit_for_bit() {
    let t = taiwan();
    let meta =
        ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&t.parquet).unwrap()).unwrap();
    assert!(meta.metadata().num_row_groups() > 1);
    assert_eq!(meta.schema().field(1).data_type(), &DataType::Int64);
    let weights = |m: &Path| std::fs::read(m.join("model.safetensors")).unwrap();
    let want = weights(&t.csv_model);
    for (what, data) in [("a Parquet file", &t.parquet), ("a directory", &t.parts)] {
        let model = t.dir.join(format!(
            "model-{}",
            data.file_name().unwrap().to_str().unwrap()
        ));
        train(data, &model);
        assert!(
            weights(&model) == want,
            "{what}: another model than the CSV's"
        );
    }
}

/// Reads a scores file back: each column as text as the CSV would hold it.
fn read_scores_parquet(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut names = Vec::new();
    let mut rows: Vec<Vec<String>> = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        names = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| match c.data_type() {
                        DataType::Int64 => c.as_primitive::<Int64Type>().value(i).to_string(),
                        DataType::Utf8 => c.as_string::<i32>().value(i).to_string(),
                        DataType::Float32 => c.as_primitive::<Float32Type>().value(i).to_string(),
                        DataType::Float64 => {
                            format!("{:.2}", c.as_primitive::<Float64Type>().value(i))
                        }
                        other => panic!("unexpected column type {other}"),
                    })
                    .collect(),
            );
        }
    }
    (names, rows)
}

fn predict(model: &Path, data: &Path, out: &Path, extra: &[&str]) {
    let o = riskgrad(
        &[
            &[
                "predict",
                "--model",
                model.to_str().unwrap(),
                "--data",
                data.to_str().unwrap(),
                "--device",
                "cpu",
                "--out",
                out.to_str().unwrap(),
            ],
            extra,
        ]
        .concat(),
    );
    assert!(o.status.success(), "predict: {}", stderr(&o));
}

#[test]
fn predict_writes_parquet_with_the_csv_scores() {
    let t = taiwan();
    for extra in [&[][..], &["--points", "600:50:20"]] {
        let csv_out = t.dir.join(format!("scores{}.csv", extra.len()));
        predict(&t.csv_model, &t.csv, &csv_out, extra);
        let text = std::fs::read_to_string(&csv_out).unwrap();
        let mut lines = text.lines();
        let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
        let want: Vec<Vec<String>> = lines
            .map(|l| l.split(',').map(String::from).collect())
            .collect();
        // The scores of the Parquet data, written as Parquet, are the CSV's.
        let out = t.dir.join(format!("scores{}.parquet", extra.len()));
        predict(&t.csv_model, &t.parquet, &out, extra);
        let (names, rows) = read_scores_parquet(&out);
        assert_eq!(names, header);
        assert_eq!(rows.len(), 30_000);
        assert!(rows == want, "the Parquet scores differ from the CSV's");
        assert!(crate::common::temporary_files(&t.dir).is_empty());
    }
    // The id column is the row number when the model has none: int64.
    let out = t.dir.join("scores-types.parquet");
    predict(&t.csv_model, &t.parts, &out, &[]);
    let b = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&out).unwrap()).unwrap();
    let types: Vec<DataType> = b
        .schema()
        .fields()
        .iter()
        .map(|f| f.data_type().clone())
        .collect();
    assert!(
        types[1] == DataType::Float32 && matches!(types[0], DataType::Int64 | DataType::Utf8),
        "{types:?}"
    );
}

#[test]
fn eval_finds_the_validation_rows_of_a_parquet_file() {
    let t = taiwan();
    for data in [&t.parquet, &t.parts] {
        let o = riskgrad(&[
            "eval",
            "--model",
            t.csv_model.to_str().unwrap(),
            "--data",
            data.to_str().unwrap(),
            "--device",
            "cpu",
            "--json",
            "--bootstrap",
            "10",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(ev["rows_scored"], "validation", "{ev}");
        assert_eq!(ev["validation_rows_verified"], true, "{ev}");
        assert_eq!(ev["validation_rows_not_found"], 0, "{ev}");
    }
}

/// A small table of every type read, as Parquet and as the CSV pandas would write.
fn typed_table(dir: &Path) -> (PathBuf, PathBuf) {
    let parquet = dir.join("typed.parquet");
    let columns: Vec<(&str, ArrayRef)> = vec![
        (
            "n",
            Arc::new(Int64Array::from(vec![Some(1), None, Some(-3), Some(4)])),
        ),
        (
            "f",
            Arc::new(Float64Array::from(vec![
                Some(0.1),
                Some(2.0),
                None,
                Some(f64::NAN),
            ])),
        ),
        (
            "g",
            Arc::new(Float32Array::from(vec![0.1f32, 1e-5, 3.5, 1e20])),
        ),
        (
            "s",
            Arc::new(StringArray::from(vec![
                Some(" a "),
                Some("b"),
                None,
                Some("NA"),
            ])),
        ),
        (
            "b",
            Arc::new(BooleanArray::from(vec![
                Some(true),
                Some(false),
                None,
                Some(true),
            ])),
        ),
        (
            "d",
            Arc::new(Date32Array::from(vec![
                Some(19_813),
                Some(0),
                None,
                Some(-1),
            ])),
        ),
        (
            "t",
            Arc::new(TimestampSecondArray::from(vec![
                Some(1_711_886_400),
                None,
                Some(0),
                Some(59),
            ])),
        ),
        (
            "m",
            Arc::new(
                Decimal128Array::from(vec![Some(1250), Some(-5), None, Some(0)])
                    .with_precision_and_scale(10, 2)
                    .unwrap(),
            ),
        ),
        ("y", Arc::new(Int64Array::from(vec![0, 1, 0, 1]))),
    ];
    write_parquet(&parquet, columns, 2);
    let csv = dir.join("typed.csv");
    std::fs::write(
        &csv,
        "n,f,g,s,b,d,t,m,y\n\
         1,0.1,0.1,a,True,2024-03-31,2024-03-31 12:00:00,12.50,0\n\
         ,2.0,1e-05,b,False,1970-01-01,,-0.05,1\n\
         -3,,3.5,,,,1970-01-01 00:00:00,,0\n\
         4,,1e+20,NA,True,1969-12-31,1970-01-01 00:00:59,0.00,1\n",
    )
    .unwrap();
    (parquet, csv)
}

#[test]
fn cells_read_as_the_csv_pandas_writes_nulls_as_missing() {
    let dir = temp_dir("parquet-typed");
    let (parquet, csv) = typed_table(&dir);
    let opts = PrepareOptions {
        target: TargetSpec::Name("y".into()),
        ..Default::default()
    };
    let (p, c) = (
        read_table(&parquet, &opts).unwrap(),
        read_table(&csv, &opts).unwrap(),
    );
    assert_eq!(p.n_rows, 4);
    assert_eq!(p.row_fingerprints, c.row_fingerprints);
    for (pc, cc) in p.columns.iter().zip(&c.columns) {
        assert_eq!(pc.name, cc.name);
        assert_eq!(pc.missing, cc.missing, "{}", pc.name);
        match (&pc.values, &cc.values) {
            (Values::Numeric(a), Values::Numeric(b)) => {
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(a), bits(b), "{}", pc.name);
            }
            (Values::Text(a), Values::Text(b)) => {
                assert_eq!((&a.codes, &a.dict), (&b.codes, &b.dict), "{}", pc.name)
            }
            (a, b) => panic!("{}: {a:?} vs {b:?}", pc.name),
        }
    }
    // Nulls (and NaN) are missing: one per column here, two in f (a null and a NaN).
    let missing = |n: &str| p.column(n).unwrap().missing;
    assert_eq!(
        ["n", "f", "s", "b", "d", "t", "m"].map(missing),
        [1, 2, 2, 1, 1, 1, 1]
    );
    // Dates and timestamps are year-first text: `train --date` reads them.
    let range = riskgrad::data::dates::date_range(&parquet, "d").unwrap();
    assert_eq!(
        (range.first.as_str(), range.last.as_str()),
        ("1969-12-31", "2024-03-31")
    );
    let range = riskgrad::data::dates::date_range(&parquet, "t").unwrap();
    assert_eq!(range.first, "1970-01-01 00:00:00");
}

/// `riskgrad inspect` of `data`: an error with exit code 3 and no panic, whose message
/// holds every one of `texts`.
fn refused(data: &Path, extra: &[&str], texts: &[&str]) {
    let o = riskgrad(&[&["inspect", "--data", data.to_str().unwrap()][..], extra].concat());
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(3), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for t in texts {
        assert!(err.contains(t), "{err:?} lacks {t:?}");
    }
}

#[test]
fn broken_parquet_inputs_are_clear_errors() {
    let dir = temp_dir("parquet-errors");
    let (good, _) = typed_table(&dir);
    let bytes = std::fs::read(&good).unwrap();

    let truncated = dir.join("truncated.parquet");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refused(
        &truncated,
        &[],
        &["truncated.parquet", "cannot be read as a Parquet file"],
    );
    // A corrupt middle: the footer reads, the pages do not.
    let mut corrupt = bytes.clone();
    for b in &mut corrupt[8..bytes.len() / 2] {
        *b = 0xAB;
    }
    let corrupt_path = dir.join("corrupt.parquet");
    std::fs::write(&corrupt_path, &corrupt).unwrap();
    refused(&corrupt_path, &[], &["corrupt.parquet"]);

    // Damaged pages in a file of many row groups: an error naming the file, or values
    // read as they now are (Parquet pages carry no checksum here), never a panic.
    let taiwan = std::fs::read(&taiwan().parquet).unwrap();
    let mut rng = riskgrad::rng::Rng::new(15);
    let mut refusals = 0;
    for k in 0..12 {
        let mut damaged = taiwan.clone();
        let start = 8 + rng.below(taiwan.len() - 9000);
        for b in &mut damaged[start..start + 4096] {
            *b = rng.below(256) as u8;
        }
        let path = dir.join(format!("damaged{k}.parquet"));
        std::fs::write(&path, &damaged).unwrap();
        let o = riskgrad(&["inspect", "--data", path.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!err.contains("panicked"), "{err}");
        match o.status.code() {
            Some(0) => {}
            Some(3) if err.contains(&format!("damaged{k}.parquet")) => refusals += 1,
            other => panic!("exit {other:?}: {err}"),
        }
    }
    assert!(refusals > 0, "no damage was noticed");

    let nested = dir.join("nested.parquet");
    let mut list = ListBuilder::new(Int64Builder::new());
    for i in 0..3 {
        list.values().append_value(i);
        list.append(true);
    }
    write_parquet(
        &nested,
        vec![
            ("tags", Arc::new(list.finish()) as ArrayRef),
            ("y", Arc::new(Int64Array::from(vec![0, 1, 0]))),
        ],
        10,
    );
    refused(
        &nested,
        &[],
        &["nested.parquet", "column \"tags\"", "lists"],
    );

    let empty = dir.join("empty-dir");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), b"x").unwrap();
    refused(&empty, &[], &["empty-dir", "holds none"]);

    let mixed = dir.join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    let ints = |v: Vec<i64>| Arc::new(Int64Array::from(v)) as ArrayRef;
    write_parquet(
        &mixed.join("a.parquet"),
        vec![("x", ints(vec![1, 2])), ("y", ints(vec![0, 1]))],
        10,
    );
    write_parquet(
        &mixed.join("b.parquet"),
        vec![
            ("x", Arc::new(StringArray::from(vec!["1", "2"])) as ArrayRef),
            ("y", ints(vec![0, 1])),
        ],
        10,
    );
    write_parquet(
        &mixed.join("c.parquet"),
        vec![("z", ints(vec![1])), ("y", ints(vec![0]))],
        10,
    );
    refused(&mixed, &[], &["b.parquet", "\"x\"", "a.parquet"]);
    std::fs::remove_file(mixed.join("b.parquet")).unwrap();
    refused(&mixed, &[], &["c.parquet", "columns"]);

    // A cell that is not a number, in a numeric column, under --strict: its row.
    let odd = dir.join("odd.parquet");
    let mut cells: Vec<String> = (0..20).map(|i| i.to_string()).collect();
    cells[6] = "abc".into();
    write_parquet(
        &odd,
        vec![
            ("x", Arc::new(StringArray::from(cells)) as ArrayRef),
            ("y", ints((0..20).map(|i| i % 2).collect())),
        ],
        8,
    );
    refused(
        &odd,
        &["--strict"],
        &["odd.parquet, row 7, column \"x\"", "rows 7"],
    );
    let o = riskgrad(&["inspect", "--data", odd.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("row 7: \"abc\""), "{}", stderr(&o));
}

#[test]
fn predict_keeps_a_parquet_id_column_and_protects_its_input() {
    let dir = temp_dir("parquet-ids");
    let n = 200;
    let ids: Vec<String> = (0..n).map(|i| format!("c{i:04}")).collect();
    let a: Vec<f64> = (0..n).map(|i| (i as f64 * 0.37).sin()).collect();
    let y: Vec<i64> = a.iter().map(|&v| (v > 0.2) as i64).collect();
    let data = dir.join("ids.parquet");
    write_parquet(
        &data,
        vec![
            (
                "customer_id",
                Arc::new(StringArray::from(ids.clone())) as ArrayRef,
            ),
            ("a", Arc::new(Float64Array::from(a)) as ArrayRef),
            ("default", Arc::new(Int64Array::from(y)) as ArrayRef),
        ],
        64,
    );
    let model = dir.join("model");
    let o = crate::common::train_small(&data, &model, &["--epochs", "2", "--id", "customer_id"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = dir.join("scores.parquet");
    predict(&model, &data, &out, &[]);
    let (names, rows) = read_scores_parquet(&out);
    assert_eq!(names, ["customer_id", "probability_of_default"]);
    let got: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(got, ids);
    // The input is protected: predict refuses to write over it.
    let o = riskgrad(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        "--data",
        data.to_str().unwrap(),
        "--device",
        "cpu",
        "--out",
        data.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let len = data.metadata().unwrap().len();
    assert!(len > 0);
    let reread = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&data).unwrap())
        .unwrap()
        .build()
        .unwrap();
    assert_eq!(reread.map(|b| b.unwrap().num_rows()).sum::<usize>(), n);
}
