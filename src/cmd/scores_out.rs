//! The scores file `riskgrad predict --out` writes, batch by batch: CSV, or Parquet when
//! the name ends in `.parquet` (one row group per [`ROW_GROUP_ROWS`] rows, so memory
//! stays bounded). Either goes through the command's atomic output: a temporary file
//! renamed over the target only once every row is written.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use riskgrad::files::AtomicWriter;
use riskgrad::scoring::PointsScale;
use riskgrad::{Error, Result};

/// Rows per row group of a Parquet scores file.
pub const ROW_GROUP_ROWS: usize = 65_536;

/// Whether `path` names a Parquet file (`.parquet`, any case).
pub fn is_parquet_name(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("parquet"))
}

/// A scores file being written.
pub enum ScoresOut {
    /// CSV: the id column, probability_of_default, and points with a scale.
    Csv {
        /// The file.
        out: AtomicWriter,
        /// One batch's text.
        text: String,
    },
    /// Parquet: the id column (text, or the row number as int64),
    /// probability_of_default as float32, points as float64.
    Parquet {
        /// The writer, over the file (boxed: it is large).
        writer: Box<ArrowWriter<AtomicWriter>>,
        /// The columns.
        schema: Arc<Schema>,
        /// Whether the ids are row numbers (written as int64).
        row_ids: bool,
        /// The file, for messages.
        path: PathBuf,
    },
}

impl ScoresOut {
    /// Starts the scores file `path` (already opened as `out`): Parquet when it is named
    /// so, else CSV, whose header is written now. `id_header` names the id column;
    /// `row_ids` says it holds row numbers; `points` adds the points column.
    pub fn create(
        out: AtomicWriter,
        path: &Path,
        id_header: &str,
        row_ids: bool,
        points: bool,
    ) -> Result<Self> {
        if !is_parquet_name(path) {
            let mut out = out;
            let points_header = if points { ",points" } else { "" };
            out.write_all(
                format!(
                    "{},probability_of_default{points_header}\n",
                    csv_field(id_header)
                )
                .as_bytes(),
            )?;
            return Ok(ScoresOut::Csv {
                out,
                text: String::new(),
            });
        }
        let schema = scores_schema(id_header, row_ids, points);
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props))
            .map_err(|e| parquet_err(path, e))?;
        Ok(ScoresOut::Parquet {
            writer: Box::new(writer),
            schema,
            row_ids,
            path: path.to_path_buf(),
        })
    }

    /// Writes one batch: each row's id and probability, and its points with a scale
    /// (rounded to 2 decimals, the same value in both formats).
    pub fn write(
        &mut self,
        ids: &[String],
        probs: &[f32],
        points: Option<&PointsScale>,
    ) -> Result<()> {
        match self {
            ScoresOut::Csv { out, text } => {
                text.clear();
                for (id, p) in ids.iter().zip(probs) {
                    // `{}` prints the shortest text that reads back as the same f32.
                    text.push_str(&csv_field(id));
                    text.push(',');
                    text.push_str(&p.to_string());
                    if let Some(scale) = points {
                        text.push_str(&format!(",{:.2}", scale.points(*p)));
                    }
                    text.push('\n');
                }
                out.write_all(text.as_bytes())
            }
            ScoresOut::Parquet {
                writer,
                schema,
                row_ids,
                path,
            } => {
                let batch = scores_batch(schema, *row_ids, ids, probs, points)?;
                writer.write(&batch).map_err(|e| parquet_err(path, e))
            }
        }
    }

    /// Finishes the file (a Parquet footer) and renames it into place.
    pub fn commit(self) -> Result<()> {
        match self {
            ScoresOut::Csv { out, .. } => out.commit(),
            ScoresOut::Parquet { writer, path, .. } => writer
                .into_inner()
                .map_err(|e| parquet_err(&path, e))?
                .commit(),
        }
    }
}

/// The columns of scores as Arrow (a Parquet scores file, the Python package's
/// predictions): the id column `id_header` (text, or the row number as int64 when
/// `row_ids`), probability_of_default as float32, and with `points` points as float64.
pub fn scores_schema(id_header: &str, row_ids: bool, points: bool) -> Arc<Schema> {
    let id_type = if row_ids {
        DataType::Int64
    } else {
        DataType::Utf8
    };
    let mut fields = vec![
        Field::new(id_header, id_type, false),
        Field::new("probability_of_default", DataType::Float32, false),
    ];
    if points {
        fields.push(Field::new("points", DataType::Float64, false));
    }
    Arc::new(Schema::new(fields))
}

/// One batch of scores as a record batch of `schema` ([`scores_schema`]): each row's
/// id and probability, and its points with a scale (the CSV's 2-decimal value).
pub fn scores_batch(
    schema: &Arc<Schema>,
    row_ids: bool,
    ids: &[String],
    probs: &[f32],
    points: Option<&PointsScale>,
) -> Result<RecordBatch> {
    let id: ArrayRef = if row_ids {
        let rows = ids
            .iter()
            .map(|id| {
                id.parse::<i64>()
                    .map_err(|_| Error::Internal(format!("row number {id:?} is not a number")))
            })
            .collect::<Result<Vec<i64>>>()?;
        Arc::new(Int64Array::from(rows))
    } else {
        Arc::new(StringArray::from_iter_values(ids))
    };
    let mut columns = vec![id, Arc::new(Float32Array::from(probs.to_vec())) as ArrayRef];
    if let Some(scale) = points {
        // The CSV's 2-decimal text read back, so both files hold one value.
        let points: Vec<f64> = probs
            .iter()
            .map(|&p| {
                format!("{:.2}", scale.points(p))
                    .parse()
                    .unwrap_or(f64::NAN)
            })
            .collect();
        columns.push(Arc::new(Float64Array::from(points)));
    }
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(format!("scores batch: {e}")))
}

/// A Parquet writer's failure (the disk's, mostly) as an error naming the file.
fn parquet_err(path: &Path, e: parquet::errors::ParquetError) -> Error {
    let io = match e {
        parquet::errors::ParquetError::External(inner) => {
            match inner.downcast::<std::io::Error>() {
                Ok(io) => *io,
                Err(other) => std::io::Error::other(other.to_string()),
            }
        }
        e => std::io::Error::other(format!("writing Parquet: {e}")),
    };
    Error::io(path, io)
}

/// Quotes a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}
