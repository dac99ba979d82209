//! Arrow record batches in memory (`PredictReader::from_batches`, what the Python
//! package scores) read as the same table saved as Parquet: the same ids and features,
//! row for row, whatever the batch boundaries; errors name the batches' source.

use crate::common::{rng_for, TempFile};
use arrow_array::types::Int32Type;
use arrow_array::Array;
use arrow_array::{ArrayRef, DictionaryArray, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use riskgrad::data::{prepare, PredictReader, PrepareOptions, TargetSpec};
use std::sync::Arc;

/// A table of `rows` rows: an id, a float column with nulls and NaN, an integer, a
/// dictionary-encoded category (a pandas categorical) and a 0/1 target.
fn table(rows: usize) -> RecordBatch {
    let mut rng = rng_for("arrow_source");
    let amount: Float64Array = (0..rows)
        .map(|i| match i % 17 {
            3 => None,
            5 => Some(f64::NAN),
            _ => Some((rng.range(-3.0, 3.0) * 1000.0).round() / 7.0),
        })
        .collect();
    let count = Int64Array::from_iter_values((0..rows).map(|_| rng.range(0.0, 40.0) as i64));
    let keys: Vec<i32> = (0..rows).map(|_| rng.range(0.0, 3.0) as i32).collect();
    let kind = DictionaryArray::<Int32Type>::try_new(
        keys.into(),
        Arc::new(StringArray::from(vec!["car", "home", "card"])),
    )
    .unwrap();
    let target = Int64Array::from_iter_values((0..rows).map(|_| (rng.uniform() < 0.3) as i64));
    let id = StringArray::from_iter_values((0..rows).map(|i| format!("A{:05}", 7 * i + 1)));
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("loan_id", Arc::new(id)),
        ("amount", Arc::new(amount)),
        ("count", Arc::new(count)),
        ("kind", Arc::new(kind)),
        ("default", Arc::new(target)),
    ];
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    RecordBatch::try_new(
        Arc::new(schema),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .unwrap()
}

fn parquet_bytes(batch: &RecordBatch) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut w = ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    w.write(batch).unwrap();
    w.close().unwrap();
    bytes
}

/// Every batch a reader gives, `rows` at a time, as (ids, features).
fn read_all(mut reader: PredictReader, rows: usize) -> (Vec<String>, Vec<f32>) {
    let (mut ids, mut x) = (Vec::new(), Vec::new());
    while let Some(b) = reader.next_batch(rows).unwrap() {
        ids.extend(b.ids);
        x.extend(b.x);
    }
    (ids, x)
}

#[test]
fn batches_in_memory_read_as_their_parquet_file() {
    let rows = 1003;
    let whole = table(rows);
    let file = TempFile::new("arrow_source.parquet", &parquet_bytes(&whole));
    let opts = PrepareOptions {
        target: TargetSpec::Name("default".into()),
        id_column: Some("loan_id".into()),
        ..Default::default()
    };
    let prepared = prepare(&file.0, &opts).unwrap();
    let pre = &prepared.preprocessor;
    let (want_ids, want_x) = read_all(PredictReader::open(&file.0, pre).unwrap(), 256);
    assert_eq!(want_ids.len(), rows);
    assert!(want_x.iter().any(|&v| v != 0.0));
    // Batch boundaries at awkward places, none lining up with the reads'.
    let cuts = [0, 1, 400, 401, 999, rows];
    let batches: Vec<RecordBatch> = cuts
        .windows(2)
        .map(|w| whole.slice(w[0], w[1] - w[0]))
        .collect();
    let reader =
        PredictReader::from_batches("pandas DataFrame", whole.schema(), batches, pre).unwrap();
    assert!(reader.has_id_column());
    let (ids, x) = read_all(reader, 97);
    assert_eq!(ids, want_ids);
    assert_eq!(x.len(), want_x.len());
    for (i, (a, b)) in x.iter().zip(&want_x).enumerate() {
        assert_eq!(a.to_bits(), b.to_bits(), "feature value {i}");
    }
}

#[test]
fn batches_without_a_model_column_are_an_error_naming_them() {
    let whole = table(40);
    let file = TempFile::new("arrow_source_cols.parquet", &parquet_bytes(&whole));
    let opts = PrepareOptions {
        target: TargetSpec::Name("default".into()),
        ..Default::default()
    };
    let prepared = prepare(&file.0, &opts).unwrap();
    let without = whole.project(&[0, 2, 3, 4]).unwrap();
    let err = PredictReader::from_batches(
        "pyarrow Table",
        without.schema(),
        vec![without],
        &prepared.preprocessor,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("pyarrow Table"), "{err}");
    assert!(
        err.contains("the model needs columns [\"amount\"], not in this table"),
        "{err}"
    );
    // A nested column is refused as in a Parquet file, naming it.
    let list =
        arrow_array::ListArray::from_iter_primitive::<Int32Type, _, _>(vec![Some(vec![Some(1)])]);
    let nested = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "xs",
            list.data_type().clone(),
            true,
        )])),
        vec![Arc::new(list)],
    )
    .unwrap();
    assert!(matches!(
        nested.schema().field(0).data_type(),
        DataType::List(_)
    ));
    let err =
        PredictReader::from_batches("t", nested.schema(), vec![nested], &prepared.preprocessor)
            .err()
            .unwrap()
            .to_string();
    assert!(
        err.contains("xs") && err.contains("lists is not supported"),
        "{err}"
    );
}
