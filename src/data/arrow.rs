//! Arrow record batches already in memory (a pandas DataFrame or a pyarrow Table handed
//! over by the Python package through the Arrow C data interface) read as rows of text
//! cells, with `data::parquet`'s conversion: a batch reads exactly as the same table
//! saved as Parquet would, so preprocessing and scores do not depend on the way in.

use std::path::{Path, PathBuf};

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::SchemaRef;

use super::parquet::{batch_columns, check_types, column_names, write_row};
use super::source::Place;
use crate::error::Result;

/// Record batches of one schema, read row by row as text cells.
pub(crate) struct ArrowSource {
    /// What the batches are, for messages (`pandas DataFrame`, `pyarrow Table`).
    pub path: PathBuf,
    /// The column names (trimmed, as a CSV header's are).
    pub names: Vec<String>,
    /// The columns in the order row fingerprints visit them.
    pub fingerprint_order: Vec<usize>,
    batches: std::vec::IntoIter<RecordBatch>,
    /// The batch being read, its dictionary columns decoded.
    columns: Vec<ArrayRef>,
    batch_rows: usize,
    next_in_batch: usize,
    /// Rows read so far.
    row: u64,
}

impl ArrowSource {
    /// A source over `batches` (all of `schema`), named `name` in messages; a column of
    /// a type riskgrad does not read is refused as in a Parquet file.
    pub fn new(name: &str, schema: SchemaRef, batches: Vec<RecordBatch>) -> Result<Self> {
        let path = PathBuf::from(name);
        check_types(&path, &schema)?;
        let names = column_names(&path, &schema)?;
        Ok(ArrowSource {
            path,
            fingerprint_order: super::fingerprint::fingerprint_order(&names),
            names,
            batches: batches.into_iter(),
            columns: Vec::new(),
            batch_rows: 0,
            next_in_batch: 0,
            row: 0,
        })
    }

    /// Reads the next row into `rec`; `Ok(None)` after the last, else its 1-based number.
    pub fn next(&mut self, rec: &mut csv::ByteRecord) -> Result<Option<u64>> {
        while self.next_in_batch >= self.batch_rows {
            let Some(batch) = self.batches.next() else {
                return Ok(None);
            };
            self.columns = batch_columns(&batch, &self.path, &self.names)?;
            self.batch_rows = batch.num_rows();
            self.next_in_batch = 0;
        }
        write_row(&self.columns, self.next_in_batch, rec);
        self.next_in_batch += 1;
        self.row += 1;
        Ok(Some(self.row))
    }

    /// Where row `row` is: a data row of the batches, as in a Parquet file.
    pub fn place(&self, row: u64) -> Place {
        Place {
            path: self.path.clone(),
            line: None,
            row: Some(row),
            name_file: false,
        }
    }

    /// The name the batches go by.
    pub fn path(&self) -> &Path {
        &self.path
    }
}
