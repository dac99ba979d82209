//! Opening a data source and walking its records: a CSV file (plain or gzip, the header
//! checked once, every record checked for its field count) or Parquet (a file or a
//! directory of them, `data::parquet`), and every failure turned into an error that names
//! the file, the line (CSV) or data row (Parquet) and, where there is one, the column.
//!
//! Every reader of this folder (the raw table, the prediction stream, the date range)
//! goes through [`Source`], so they agree on what a file is, and a Parquet row is read
//! as the same text cells a CSV record would hold.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;

use super::arrow::ArrowSource;
use super::parquet::{is_parquet, ParquetSource};
use crate::error::{Error, Result};

/// A source of data rows: a header of column names, then records of text cells.
pub(crate) enum Source {
    /// A CSV file (or bytes), plain or gzip.
    Csv(CsvSource),
    /// A Parquet file or a directory of them.
    Parquet(ParquetSource),
    /// Arrow record batches in memory (from Python: a DataFrame, a Table).
    Arrow(ArrowSource),
}

impl Source {
    /// Opens `path`: Parquet when it is a directory, is named `.parquet` or starts with
    /// the Parquet magic bytes, else CSV (gzip when named `.gz` or starting with the gzip
    /// magic).
    pub fn open(path: &Path) -> Result<Self> {
        if is_parquet(path) {
            ParquetSource::open(path).map(Source::Parquet)
        } else {
            CsvSource::open(path).map(Source::Csv)
        }
    }

    /// CSV from bytes already open; `path` names them in messages.
    pub fn from_reader(reader: impl BufRead + 'static, path: &Path) -> Result<Self> {
        CsvSource::from_reader(reader, path).map(Source::Csv)
    }

    /// The file or directory as given.
    pub fn path(&self) -> &Path {
        match self {
            Source::Csv(s) => &s.path,
            Source::Parquet(s) => &s.path,
            Source::Arrow(s) => s.path(),
        }
    }

    /// The column names, in file order.
    pub fn names(&self) -> &[String] {
        match self {
            Source::Csv(s) => &s.names,
            Source::Parquet(s) => &s.names,
            Source::Arrow(s) => &s.names,
        }
    }

    /// Reads the next record into `rec`, one cell per column; `Ok(None)` at the end, else
    /// its position: the 1-based file line of a CSV record (the header is line 1), the
    /// 1-based data row of a Parquet row in its file. Pass it to [`err`](Self::err) and
    /// [`place`](Self::place) for this record.
    pub fn next(&mut self, rec: &mut csv::ByteRecord) -> Result<Option<u64>> {
        match self {
            Source::Csv(s) => s.next(rec),
            Source::Parquet(s) => s.next(rec),
            Source::Arrow(s) => s.next(rec),
        }
    }

    /// Where the record at `pos` (the last one read) is.
    pub fn place(&self, pos: u64) -> Place {
        match self {
            Source::Csv(s) => Place {
                path: s.path.clone(),
                line: Some(pos),
                row: None,
                name_file: false,
            },
            Source::Parquet(s) => s.place(pos),
            Source::Arrow(s) => s.place(pos),
        }
    }

    /// The fingerprint of a record read by [`next`](Self::next) (see `data::fingerprint`).
    pub fn fingerprint(&self, rec: &csv::ByteRecord) -> u64 {
        let (names, order) = match self {
            Source::Csv(s) => (&s.names, &s.fingerprint_order),
            Source::Parquet(s) => (&s.names, &s.fingerprint_order),
            Source::Arrow(s) => (&s.names, &s.fingerprint_order),
        };
        super::fingerprint::row_fingerprint(names, order, rec)
    }

    /// Builds an `Error::Data` at the record at `pos` (the last one read) and the column
    /// at `col`.
    pub fn err(&self, pos: u64, col: usize, message: impl Into<String>) -> Error {
        self.place(pos)
            .err(self.names().get(col).map(String::as_str), message)
    }

    /// Builds an `Error::Data` about the header (the column names): line 1 of a CSV file,
    /// no row of a Parquet one.
    pub fn header_err(&self, column: Option<&str>, message: impl Into<String>) -> Error {
        let line = matches!(self, Source::Csv(_)).then_some(1);
        data_err(self.path(), line, column, message)
    }

    /// The header names as a quoted list, for messages about a column that is not there.
    pub fn listing(&self) -> String {
        listing(self.names())
    }
}

/// Where a record was read: a CSV file's line, or a Parquet file's data row (in a
/// directory, which file), kept for messages that come after the reading (odd cells).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Place {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line, in a CSV file.
    pub line: Option<u64>,
    /// The 1-based data row, in a Parquet file.
    pub row: Option<u64>,
    /// Whether messages name the file beside the row (a file of a directory).
    pub name_file: bool,
}

impl Place {
    /// An `Error::Data` here, at `column`.
    pub fn err(&self, column: Option<&str>, message: impl Into<String>) -> Error {
        Error::Data {
            path: self.path.clone(),
            line: self.line,
            row: self.row,
            column: column.map(str::to_string),
            setting: None,
            message: message.into(),
        }
    }

    /// The position's number: the line or the row.
    pub fn number(&self) -> u64 {
        self.line.or(self.row).unwrap_or(0)
    }
}

impl std::fmt::Display for Place {
    /// `line 14`, `row 14`, or `row 14 of part-2.parquet` in a directory.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.line, self.row) {
            (Some(l), _) => write!(f, "line {l}"),
            (None, Some(r)) if self.name_file => write!(
                f,
                "row {r} of {}",
                self.path
                    .file_name()
                    .map_or(self.path.display().to_string(), |n| n
                        .to_string_lossy()
                        .into_owned())
            ),
            (None, Some(r)) => write!(f, "row {r}"),
            (None, None) => Ok(()),
        }
    }
}

/// A CSV reader over a file or bytes, with the header already read and checked.
pub(crate) struct CsvSource {
    pub path: PathBuf,
    pub names: Vec<String>,
    rdr: csv::Reader<Box<dyn Read>>,
    is_gz: bool,
    /// Added to the csv crate's line numbers: 1 in CRLF files, whose records it places
    /// one line early (it counts a line at the `\n` that starts the next record).
    line_offset: u64,
    /// The columns in the order row fingerprints visit them.
    pub fingerprint_order: Vec<usize>,
}

/// The most bytes one CSV line may hold. A credit table's widest rows are kilobytes;
/// without a bound, a file with no line ends (a binary file, `/dev/zero`) would be read
/// into memory until the machine ran out.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// The error a [`LineLengthGuard`] stops the reading with.
#[derive(Debug)]
struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a line longer than {} MB", MAX_LINE_BYTES >> 20)
    }
}

impl std::error::Error for LineTooLong {}

/// Fails the read once a line runs past [`MAX_LINE_BYTES`] (decompressed bytes).
struct LineLengthGuard<R> {
    inner: R,
    since_line_end: usize,
}

impl<R: Read> Read for LineLengthGuard<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.since_line_end = match buf[..n].iter().rposition(|&b| b == b'\n') {
            Some(i) => n - i - 1,
            None => self.since_line_end + n,
        };
        if self.since_line_end > MAX_LINE_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                LineTooLong,
            ));
        }
        Ok(n)
    }
}

/// Whether a stream's first line ends in `\r\n`, found as the bytes go by.
struct LineEndSniffer<R> {
    inner: R,
    first_line_crlf: std::rc::Rc<std::cell::Cell<Option<bool>>>,
    last_was_cr: bool,
}

impl<R: Read> Read for LineEndSniffer<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if self.first_line_crlf.get().is_none() && n > 0 {
            match buf[..n].iter().position(|&b| b == b'\n') {
                Some(0) => self.first_line_crlf.set(Some(self.last_was_cr)),
                Some(i) => self.first_line_crlf.set(Some(buf[i - 1] == b'\r')),
                None => self.last_was_cr = buf[n - 1] == b'\r',
            }
        }
        Ok(n)
    }
}

impl CsvSource {
    /// Opens `path`; gzip when the name ends in `.gz` or the bytes start with the gzip magic.
    pub fn open(path: &Path) -> Result<Self> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_reader(BufReader::with_capacity(1 << 16, file), path)
    }

    /// Like [`open`](Self::open), from bytes already open; `path` names them in messages.
    pub fn from_reader(mut buffered: impl BufRead + 'static, path: &Path) -> Result<Self> {
        let by_name = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("gz"));
        // Sniff the magic too, so a gzip file without `.gz` in its name still reads.
        let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
        let by_magic = head.starts_with(&[0x1f, 0x8b]);
        let is_gz = by_name || by_magic;
        let input: Box<dyn Read> = if is_gz {
            Box::new(MultiGzDecoder::new(buffered))
        } else {
            Box::new(buffered)
        };
        let first_line_crlf = std::rc::Rc::new(std::cell::Cell::new(None));
        let input: Box<dyn Read> = Box::new(LineEndSniffer {
            inner: LineLengthGuard {
                inner: input,
                since_line_end: 0,
            },
            first_line_crlf: first_line_crlf.clone(),
            last_was_cr: false,
        });
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(true)
            // Field counts are checked in `next`, to say which line is wrong and how.
            .flexible(true)
            .trim(csv::Trim::All)
            .buffer_capacity(1 << 16)
            .from_reader(input);

        let header = rdr
            .byte_headers()
            .map_err(|e| csv_error(path, is_gz, e))?
            .clone();
        if header.is_empty() || (header.len() == 1 && header.get(0) == Some(&b""[..])) {
            return Err(data_err(path, None, None, "empty file: no header row"));
        }
        if header.len() == 1 {
            let only = String::from_utf8_lossy(&header[0]).into_owned();
            if let Some(sep) = [';', '\t', '|'].into_iter().find(|&c| only.contains(c)) {
                let shown = if sep == '\t' {
                    "tab".to_string()
                } else {
                    format!("{sep:?}")
                };
                return Err(data_err(
                    path,
                    Some(1),
                    None,
                    format!(
                        "the header is one column that holds {shown} characters: the file seems to be \
                         {shown}-separated, and riskgrad reads comma-separated files; save it with commas \
                         (e.g. pandas: df.to_csv(path, index=False))"
                    ),
                ));
            }
        }
        let mut names: Vec<String> = Vec::with_capacity(header.len());
        // Each name's column, to find a duplicate without comparing every pair (a header
        // of 200,000 columns took over a minute that way).
        let mut seen: std::collections::HashMap<&[u8], usize> =
            std::collections::HashMap::with_capacity(header.len());
        for (j, raw) in header.iter().enumerate() {
            let name = std::str::from_utf8(raw).map_err(|_| {
                data_err(
                    path,
                    Some(1),
                    None,
                    format!("header field {j} is not valid UTF-8"),
                )
            })?;
            if let Some(&k) = seen.get(raw) {
                return Err(data_err(
                    path,
                    Some(1),
                    Some(name),
                    format!("duplicate column name (columns {k} and {j})"),
                ));
            }
            seen.insert(raw, j);
            names.push(name.to_string());
        }
        Ok(CsvSource {
            path: path.to_path_buf(),
            fingerprint_order: super::fingerprint::fingerprint_order(&names),
            names,
            rdr,
            is_gz,
            line_offset: first_line_crlf.get().unwrap_or(false) as u64,
        })
    }

    /// Reads the next record into `rec`; `Ok(None)` at the end, else its 1-based file line
    /// (the header is line 1). A record whose field count differs from the header's is an
    /// error naming its line.
    pub fn next(&mut self, rec: &mut csv::ByteRecord) -> Result<Option<u64>> {
        match self.rdr.read_byte_record(rec) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(e) => {
                let mut e = csv_error(&self.path, self.is_gz, e);
                if let Error::Data { line, .. } = &mut e {
                    *line = line.map(|l| l + self.line_offset);
                }
                return Err(e);
            }
        }
        let line = rec.position().map_or(0, |p| p.line() + self.line_offset);
        if rec.len() != self.names.len() {
            return Err(data_err(
                &self.path,
                Some(line),
                None,
                format!(
                    "expected {} fields as in the header, found {}",
                    self.names.len(),
                    rec.len()
                ),
            ));
        }
        Ok(Some(line))
    }
}

/// Column names as a quoted, comma-separated list.
pub(crate) fn listing(names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
    quoted.join(", ")
}

/// The column a user named: the exact header name (after trimming), else the one name that
/// matches ignoring ASCII case (`--target Default` for a column `default`).
pub(crate) fn find_column(names: &[String], query: &str) -> Option<usize> {
    let q = query.trim();
    if let Some(j) = names.iter().position(|n| n == q) {
        return Some(j);
    }
    let mut hits = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.eq_ignore_ascii_case(q));
    match (hits.next(), hits.next()) {
        (Some((j, _)), None) => Some(j),
        _ => None,
    }
}

/// The columns of several names at once (a model's inputs), each found as [`find_column`]
/// finds one, except that no file column serves two names: a column that is one name
/// exactly is no other's match ignoring case, nor is one matched so twice (a model of
/// `balance` and `BALANCE` scoring a file with only `BALANCE` misses `balance` instead
/// of reading `BALANCE` for both).
pub(crate) fn find_columns(names: &[String], queries: &[&str]) -> Vec<Option<usize>> {
    let exact: Vec<Option<usize>> = queries
        .iter()
        .map(|q| names.iter().position(|n| n == q.trim()))
        .collect();
    let mut taken: Vec<usize> = exact.iter().flatten().copied().collect();
    queries
        .iter()
        .zip(exact)
        .map(|(q, exact)| {
            exact.or_else(|| {
                let hits: Vec<usize> = (0..names.len())
                    .filter(|j| !taken.contains(j) && names[*j].eq_ignore_ascii_case(q.trim()))
                    .collect();
                let [j] = hits[..] else { return None };
                taken.push(j);
                Some(j)
            })
        })
        .collect()
}

/// A cell for an error message: quoted, lossy UTF-8, cut short if long.
pub(crate) fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut:?}...")
    } else {
        format!("{s:?}")
    }
}

pub(crate) fn data_err(
    path: &Path,
    line: Option<u64>,
    column: Option<&str>,
    message: impl Into<String>,
) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line,
        row: None,
        column: column.map(str::to_string),
        setting: None,
        message: message.into(),
    }
}

/// Maps a csv crate error: read failures (including gzip decoding) to `Error::Io`, the rest
/// to `Error::Data` with the line when the crate knows it.
pub(crate) fn csv_error(path: &Path, is_gz: bool, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|e| e.is::<LineTooLong>()) => data_err(
            path,
            line,
            None,
            format!(
                "{} without an end: this does not look like a CSV file (riskgrad reads \
                     comma-separated text, plain or gzip, and Parquet)",
                LineTooLong
            ),
        ),
        csv::ErrorKind::Io(io) if is_gz => Error::io(
            path,
            std::io::Error::new(
                io.kind(),
                format!("{io} (while decompressing: is the gzip file corrupt or truncated?)"),
            ),
        ),
        csv::ErrorKind::Io(io) => Error::io(path, io),
        csv::ErrorKind::Utf8 { pos, err } => data_err(
            path,
            pos.map(|p| p.line()).or(line),
            None,
            format!("invalid UTF-8 in field {}", err.field()),
        ),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => data_err(
            path,
            pos.map(|p| p.line()).or(line),
            None,
            format!("expected {expected_len} fields, found {len}"),
        ),
        other => data_err(path, line, None, format!("{other:?}")),
    }
}
