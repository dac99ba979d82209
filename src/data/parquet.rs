//! Reading Parquet: a `.parquet` file, or a directory of them, as rows of text cells, so
//! that schema inference, preprocessing, odd-cell handling and row fingerprints are the
//! CSV path's own (`source::Source` hands either kind of record to them).
//!
//! Files are streamed a record batch at a time (row group by row group), never whole.
//! A directory is every `*.parquet` file in it, in name order, all of one schema.
//!
//! Each value becomes the text pandas' `to_csv` would write for it, so that a table saved
//! both ways reads the same and its rows have the same fingerprints:
//!
//! - integers in decimal; floats as Python's `repr` writes them (shortest text that reads
//!   back as the same value: `0.1`, `20000.0`, `1e-05`, `1e+16`), float32 with float32's
//!   shortest digits; NaN as missing, infinities as `inf` / `-inf`;
//! - strings (and binary values, as bytes) trimmed as CSV cells are;
//! - booleans as `True` / `False`;
//! - decimals exactly, with their scale's digits (`12.50`);
//! - dates as `2024-03-31`; timestamps as `2024-03-31 12:00:00`, with the fraction of a
//!   second in the unit's digits when it is not zero, and `Z` after a time-zone-aware
//!   one (shown in UTC). pandas writes the date alone when every time of a column is
//!   midnight, and a zone's own offset: rows with timestamps may fingerprint apart;
//! - null as a missing (empty) cell;
//! - dictionary-encoded columns (pandas categoricals) as their values.
//!
//! Nested columns (lists, structs, maps, unions), times of day, durations and intervals
//! are refused when the file is opened, naming the file and the column.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};

use super::source::{data_err, Place};
use crate::error::{Error, Result};

/// Rows per record batch read.
const BATCH_ROWS: usize = 8192;

/// The magic bytes a Parquet file starts (and ends) with.
pub(crate) const MAGIC: &[u8; 4] = b"PAR1";

/// Whether `path` is read as Parquet: a directory, a name ending in `.parquet` (or
/// `.parq`, `.pq`), or a regular file starting with the Parquet magic bytes. A pipe
/// (`/dev/stdin`, a FIFO) is not opened to look: its bytes can be read once, and the
/// CSV reader that then reads it needs them all (a FIFO opened twice waits for a second
/// writer forever).
pub(crate) fn is_parquet(path: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(path) else {
        return false;
    };
    if meta.is_dir() {
        return true;
    }
    if path.extension().is_some_and(|e| {
        ["parquet", "parq", "pq"]
            .iter()
            .any(|x| e.eq_ignore_ascii_case(x))
    }) {
        return true;
    }
    if !meta.is_file() {
        return false;
    }
    let mut head = [0u8; 4];
    File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut head))
        .is_ok_and(|()| &head == MAGIC)
}

/// A Parquet file or directory, read row by row as text cells.
pub(crate) struct ParquetSource {
    /// The file or directory as given.
    pub path: PathBuf,
    /// The column names (trimmed, as a CSV header's are).
    pub names: Vec<String>,
    /// The columns in the order row fingerprints visit them.
    pub fingerprint_order: Vec<usize>,
    files: Vec<PathBuf>,
    in_dir: bool,
    /// Files opened so far; the one being read is `files[opened - 1]`.
    opened: usize,
    reader: Option<ParquetRecordBatchReader>,
    /// The batch being read, its dictionary columns decoded.
    columns: Vec<ArrayRef>,
    batch_rows: usize,
    next_in_batch: usize,
    /// Data rows read from the current file.
    row_in_file: u64,
}

impl ParquetSource {
    /// Opens a Parquet file, or every `*.parquet` file of a directory (in name order),
    /// reading their footers: each must be a readable Parquet file, of the first one's
    /// schema, whose columns are all of types riskgrad reads.
    pub fn open(path: &Path) -> Result<Self> {
        let in_dir = path.is_dir();
        let files = if in_dir {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(path).map_err(|e| Error::io(path, e))? {
                let p = entry.map_err(|e| Error::io(path, e))?.path();
                let named = p
                    .extension()
                    .is_some_and(|e| e.eq_ignore_ascii_case("parquet"));
                if named && p.is_file() {
                    files.push(p);
                }
            }
            files.sort();
            if files.is_empty() {
                return Err(data_err(
                    path,
                    None,
                    None,
                    "a directory given as data must hold Parquet files (*.parquet), and this one holds none",
                ));
            }
            files
        } else {
            vec![path.to_path_buf()]
        };
        let first = builder(&files[0])?;
        let schema = first.schema().clone();
        check_types(&files[0], &schema)?;
        for other in &files[1..] {
            let b = builder(other)?;
            check_same_schema(&files[0], &schema, other, b.schema())?;
        }
        let names = column_names(&files[0], &schema)?;
        Ok(ParquetSource {
            path: path.to_path_buf(),
            fingerprint_order: super::fingerprint::fingerprint_order(&names),
            names,
            files,
            in_dir,
            opened: 0,
            reader: None,
            columns: Vec::new(),
            batch_rows: 0,
            next_in_batch: 0,
            row_in_file: 0,
        })
    }

    /// The file being read (the first before any row is).
    fn current(&self) -> &Path {
        &self.files[self.opened.saturating_sub(1)]
    }

    /// Reads the next row into `rec`, one text cell per column; `Ok(None)` after the
    /// last row of the last file, else the row's 1-based number in its file.
    pub fn next(&mut self, rec: &mut csv::ByteRecord) -> Result<Option<u64>> {
        while self.next_in_batch >= self.batch_rows {
            if !self.next_batch()? {
                return Ok(None);
            }
        }
        let i = self.next_in_batch;
        self.next_in_batch += 1;
        self.row_in_file += 1;
        write_row(&self.columns, i, rec);
        Ok(Some(self.row_in_file))
    }

    /// Moves to the next record batch, opening the next file when this one is done;
    /// false after the last.
    fn next_batch(&mut self) -> Result<bool> {
        loop {
            if let Some(reader) = self.reader.as_mut() {
                match reader.next() {
                    Some(Ok(batch)) => {
                        self.set_batch(batch)?;
                        return Ok(true);
                    }
                    Some(Err(e)) => {
                        let which = match self.row_in_file {
                            0 => "its rows".to_string(),
                            n => format!("the rows after data row {n}"),
                        };
                        return Err(data_err(
                            self.current(),
                            None,
                            None,
                            format!("cannot read {which}: {e} (is the file corrupt or truncated?)"),
                        ));
                    }
                    None => self.reader = None,
                }
            }
            let Some(file) = self.files.get(self.opened) else {
                return Ok(false);
            };
            let reader = builder(file)?
                .with_batch_size(BATCH_ROWS)
                .build()
                .map_err(|e| not_parquet(file, e))?;
            self.reader = Some(reader);
            self.opened += 1;
            self.row_in_file = 0;
        }
    }

    fn set_batch(&mut self, batch: RecordBatch) -> Result<()> {
        self.columns = batch_columns(&batch, self.current(), &self.names)?;
        self.batch_rows = batch.num_rows();
        self.next_in_batch = 0;
        Ok(())
    }

    /// Where row `row` (as [`next`](Self::next) numbered it) of the file being read is.
    pub fn place(&self, row: u64) -> Place {
        Place {
            path: self.current().to_path_buf(),
            line: None,
            row: Some(row),
            name_file: self.in_dir,
        }
    }
}

/// The column names of `schema` (trimmed, as a CSV header's are), each once; `path`
/// names the data in errors.
pub(crate) fn column_names(path: &Path, schema: &Schema) -> Result<Vec<String>> {
    let mut names: Vec<String> = Vec::with_capacity(schema.fields().len());
    for (j, f) in schema.fields().iter().enumerate() {
        let name = f.name().trim();
        if let Some(k) = names.iter().position(|n| n == name) {
            return Err(data_err(
                path,
                None,
                Some(name),
                format!("duplicate column name (columns {k} and {j})"),
            ));
        }
        names.push(name.to_string());
    }
    if names.is_empty() {
        return Err(data_err(path, None, None, "no columns"));
    }
    Ok(names)
}

/// The columns of `batch` ready for [`write_row`]: a dictionary column (a pandas
/// categorical) decoded to its values. `path` and `names` name it in errors.
pub(crate) fn batch_columns(
    batch: &RecordBatch,
    path: &Path,
    names: &[String],
) -> Result<Vec<ArrayRef>> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (j, col) in batch.columns().iter().enumerate() {
        let col = match col.as_any_dictionary_opt() {
            Some(dict) => arrow_select::take::take(dict.values().as_ref(), dict.keys(), None)
                .map_err(|e| {
                    data_err(
                        path,
                        None,
                        names.get(j).map(String::as_str),
                        format!("cannot decode the dictionary column: {e}"),
                    )
                })?,
            None => col.clone(),
        };
        columns.push(col);
    }
    Ok(columns)
}

/// Row `i` of `columns` into `rec`, one text cell per column (see the module docs),
/// trimmed as CSV cells are.
pub(crate) fn write_row(columns: &[ArrayRef], i: usize, rec: &mut csv::ByteRecord) {
    rec.clear();
    let mut cell = Vec::with_capacity(32);
    for col in columns {
        cell.clear();
        write_cell(col.as_ref(), i, &mut cell);
        rec.push_field(cell.trim_ascii());
    }
}

/// A reader builder for `file`, its footer read; an unreadable file is an error that
/// says it is not (or no longer) Parquet.
fn builder(file: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let f = File::open(file).map_err(|e| Error::io(file, e))?;
    ParquetRecordBatchReaderBuilder::try_new(f).map_err(|e| not_parquet(file, e))
}

fn not_parquet(file: &Path, e: parquet::errors::ParquetError) -> Error {
    data_err(
        file,
        None,
        None,
        format!("cannot be read as a Parquet file ({e}); is it corrupt or truncated?"),
    )
}

/// Refuses a column of a type whose values riskgrad cannot take as cells.
pub(crate) fn check_types(file: &Path, schema: &Schema) -> Result<()> {
    for f in schema.fields() {
        if let Some(why) = unsupported(f.data_type()) {
            return Err(data_err(
                file,
                None,
                Some(f.name().trim()),
                format!(
                    "{why} ({}): riskgrad reads flat columns of numbers, text, booleans, dates, timestamps and decimals; flatten the column or leave it out of the file",
                    f.data_type()
                ),
            ));
        }
    }
    Ok(())
}

/// Why a column of type `t` cannot be read, or `None` when it can.
fn unsupported(t: &DataType) -> Option<&'static str> {
    use DataType::*;
    match t {
        Null | Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64
        | Float16 | Float32 | Float64 | Timestamp(..) | Date32 | Date64 | Binary
        | FixedSizeBinary(_) | LargeBinary | BinaryView | Utf8 | LargeUtf8 | Utf8View
        | Decimal32(..) | Decimal64(..) | Decimal128(..) | Decimal256(..) => None,
        Dictionary(_, values) => unsupported(values),
        List(_) | ListView(_) | FixedSizeList(..) | LargeList(_) | LargeListView(_) => {
            Some("a nested column of lists is not supported")
        }
        Struct(_) => Some("a nested column of structs is not supported"),
        Map(..) => Some("a nested column of maps is not supported"),
        Union(..) => Some("a column of unions is not supported"),
        Time32(_) | Time64(_) => Some("a column of times of day is not supported"),
        Duration(_) | Interval(_) => Some("a column of durations is not supported"),
        _ => Some("a column of this type is not supported"),
    }
}

/// Refuses a file of a directory whose columns differ from the first file's.
fn check_same_schema(first: &Path, a: &Schema, other: &Path, b: &Schema) -> Result<()> {
    let name = |p: &Path| {
        p.file_name().map_or(p.display().to_string(), |n| {
            n.to_string_lossy().into_owned()
        })
    };
    let columns =
        |s: &Schema| -> Vec<String> { s.fields().iter().map(|f| f.name().clone()).collect() };
    let differ = |what: String| {
        Err(data_err(
            other,
            None,
            None,
            format!(
                "{what}: every Parquet file of a directory must have the schema of the first, {}",
                name(first)
            ),
        ))
    };
    if columns(a) != columns(b) {
        return differ(format!(
            "its columns {:?} differ from {:?} in {}",
            columns(b),
            columns(a),
            name(first)
        ));
    }
    for (fa, fb) in a.fields().iter().zip(b.fields()) {
        if fa.data_type() != fb.data_type() {
            return differ(format!(
                "its column {:?} is {} where it is {} in {}",
                fb.name(),
                fb.data_type(),
                fa.data_type(),
                name(first)
            ));
        }
    }
    Ok(())
}

/// Appends the text of row `i` of `col` (see the module docs); nothing for a null.
fn write_cell(col: &dyn Array, i: usize, out: &mut Vec<u8>) {
    if col.is_null(i) {
        return;
    }
    // Writing to a Vec cannot fail.
    let _ = match col.data_type() {
        DataType::Boolean => {
            out.extend_from_slice(if col.as_boolean().value(i) {
                b"True"
            } else {
                b"False"
            });
            Ok(())
        }
        DataType::Int8 => write!(out, "{}", col.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => write!(out, "{}", col.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => write!(out, "{}", col.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => write!(out, "{}", col.as_primitive::<Int64Type>().value(i)),
        DataType::UInt8 => write!(out, "{}", col.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => write!(out, "{}", col.as_primitive::<UInt16Type>().value(i)),
        DataType::UInt32 => write!(out, "{}", col.as_primitive::<UInt32Type>().value(i)),
        DataType::UInt64 => write!(out, "{}", col.as_primitive::<UInt64Type>().value(i)),
        DataType::Float16 => {
            let v = col.as_primitive::<Float16Type>().value(i).to_f32();
            push_float(out, v.is_nan(), v.is_infinite(), &format!("{v:e}"));
            Ok(())
        }
        DataType::Float32 => {
            let v = col.as_primitive::<Float32Type>().value(i);
            push_float(out, v.is_nan(), v.is_infinite(), &format!("{v:e}"));
            Ok(())
        }
        DataType::Float64 => {
            let v = col.as_primitive::<Float64Type>().value(i);
            push_float(out, v.is_nan(), v.is_infinite(), &format!("{v:e}"));
            Ok(())
        }
        DataType::Utf8 => {
            out.extend_from_slice(col.as_string::<i32>().value(i).as_bytes());
            Ok(())
        }
        DataType::LargeUtf8 => {
            out.extend_from_slice(col.as_string::<i64>().value(i).as_bytes());
            Ok(())
        }
        DataType::Utf8View => {
            out.extend_from_slice(col.as_string_view().value(i).as_bytes());
            Ok(())
        }
        DataType::Binary => {
            out.extend_from_slice(col.as_binary::<i32>().value(i));
            Ok(())
        }
        DataType::LargeBinary => {
            out.extend_from_slice(col.as_binary::<i64>().value(i));
            Ok(())
        }
        DataType::BinaryView => {
            out.extend_from_slice(col.as_binary_view().value(i));
            Ok(())
        }
        DataType::FixedSizeBinary(_) => {
            out.extend_from_slice(col.as_fixed_size_binary().value(i));
            Ok(())
        }
        DataType::Decimal32(_, s) => {
            push_decimal(
                out,
                &col.as_primitive::<Decimal32Type>().value(i).to_string(),
                *s,
            );
            Ok(())
        }
        DataType::Decimal64(_, s) => {
            push_decimal(
                out,
                &col.as_primitive::<Decimal64Type>().value(i).to_string(),
                *s,
            );
            Ok(())
        }
        DataType::Decimal128(_, s) => {
            push_decimal(
                out,
                &col.as_primitive::<Decimal128Type>().value(i).to_string(),
                *s,
            );
            Ok(())
        }
        DataType::Decimal256(_, s) => {
            push_decimal(
                out,
                &col.as_primitive::<Decimal256Type>().value(i).to_string(),
                *s,
            );
            Ok(())
        }
        DataType::Date32 => {
            let days = col.as_primitive::<Date32Type>().value(i) as i64;
            push_date(out, days);
            Ok(())
        }
        DataType::Date64 => {
            let ms = col.as_primitive::<Date64Type>().value(i);
            push_date(out, ms.div_euclid(86_400_000));
            Ok(())
        }
        DataType::Timestamp(unit, tz) => {
            let (v, per_second, digits) = match unit {
                TimeUnit::Second => (col.as_primitive::<TimestampSecondType>().value(i), 1, 0),
                TimeUnit::Millisecond => (
                    col.as_primitive::<TimestampMillisecondType>().value(i),
                    1_000,
                    3,
                ),
                TimeUnit::Microsecond => (
                    col.as_primitive::<TimestampMicrosecondType>().value(i),
                    1_000_000,
                    6,
                ),
                TimeUnit::Nanosecond => (
                    col.as_primitive::<TimestampNanosecondType>().value(i),
                    1_000_000_000,
                    9,
                ),
            };
            let (secs, frac) = (v.div_euclid(per_second), v.rem_euclid(per_second));
            push_date(out, secs.div_euclid(86_400));
            let s = secs.rem_euclid(86_400);
            let _ = write!(out, " {:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
            if frac != 0 {
                let _ = write!(out, ".{frac:0digits$}");
            }
            if tz.is_some() {
                out.push(b'Z');
            }
            Ok(())
        }
        // Null columns hold only nulls (handled above); other types were refused at open.
        _ => Ok(()),
    };
}

/// Appends a float given as Rust's shortest scientific text (`{:e}`: `1.5e-7`, `-2e4`)
/// the way Python's `repr` writes it: positional with at least one decimal between 1e-4
/// and 1e16 (`0.0001`, `20000.0`), else scientific with a signed two-digit exponent at
/// least (`1.5e-07`, `1e+16`). NaN is missing (nothing), infinities `inf` / `-inf`.
pub(crate) fn push_float(out: &mut Vec<u8>, nan: bool, infinite: bool, sci: &str) {
    if nan {
        return;
    }
    let negative = sci.starts_with('-');
    if negative {
        out.push(b'-');
    }
    if infinite {
        out.extend_from_slice(b"inf");
        return;
    }
    let (mantissa, exp) = sci
        .trim_start_matches('-')
        .split_once('e')
        .unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let whole = exp as usize + 1;
            if digits.len() <= whole {
                out.extend_from_slice(&digits);
                out.extend(std::iter::repeat_n(b'0', whole - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..whole]);
                out.push(b'.');
                out.extend_from_slice(&digits[whole..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        let _ = write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
}

/// Appends a decimal's unscaled integer `int` (as text) with `scale` digits after the
/// point (`1250`, 2 → `12.50`; a negative scale appends zeros).
fn push_decimal(out: &mut Vec<u8>, int: &str, scale: i8) {
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    out.extend_from_slice(sign.as_bytes());
    if scale <= 0 {
        out.extend_from_slice(digits.as_bytes());
        if digits != "0" {
            out.extend(std::iter::repeat_n(b'0', (-scale) as usize));
        }
        return;
    }
    let scale = scale as usize;
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (whole, frac) = padded.split_at(padded.len() - scale);
    out.extend_from_slice(whole.as_bytes());
    out.push(b'.');
    out.extend_from_slice(frac.as_bytes());
}

/// Appends the date `days` after 1970-01-01 as `YYYY-MM-DD`.
fn push_date(out: &mut Vec<u8>, days: i64) {
    out.extend_from_slice(super::dates::date_of_days(days).as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn float(v: f64) -> String {
        let mut out = Vec::new();
        push_float(&mut out, v.is_nan(), v.is_infinite(), &format!("{v:e}"));
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_as_python_repr() {
        for (v, text) in [
            (0.1, "0.1"),
            (20000.0, "20000.0"),
            (-3.5, "-3.5"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e-4, "0.0001"),
            (1.5e-5, "1.5e-05"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (1e100, "1e+100"),
            (-2.5e-300, "-2.5e-300"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, ""),
        ] {
            assert_eq!(float(v), text, "{v:e}");
        }
        let mut out = Vec::new();
        let v = 0.1f32;
        push_float(&mut out, false, false, &format!("{v:e}"));
        assert_eq!(out, b"0.1");
    }

    #[test]
    fn decimals_and_dates() {
        let dec = |int: &str, scale: i8| {
            let mut out = Vec::new();
            push_decimal(&mut out, int, scale);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(dec("1250", 2), "12.50");
        assert_eq!(dec("-5", 3), "-0.005");
        assert_eq!(dec("0", 2), "0.00");
        assert_eq!(dec("12", -2), "1200");
        assert_eq!(dec("7", 0), "7");
        let date = |days: i64| {
            let mut out = Vec::new();
            push_date(&mut out, days);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_813), "2024-03-31");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(11_016), "2000-02-29");
    }
}
