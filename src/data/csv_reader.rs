//! Streaming CSV reader: one record at a time into a reused `ByteRecord`, so a file is never
//! held in memory as text; only the parsed `f32` matrix grows.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use flate2::bufread::MultiGzDecoder;

use super::{Dataset, ReadOptions, TargetSpec};
use crate::error::{Error, Result};

/// What a CSV column becomes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Feature,
    Target,
    Id,
    Skip,
}

/// Reads a header + rows CSV (gzip when the name ends in `.gz`) into a [`Dataset`].
///
/// Every kept column except the target and the id column must hold finite numbers; the target
/// must be 0 or 1. Errors name the file, the 1-based file line (the header is line 1) and the
/// column.
pub fn read_csv(path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    read_csv_from(BufReader::new(file), path, opts)
}

/// Like [`read_csv`], from bytes already open; `path` names them in messages and says by
/// its extension whether they are gzip.
pub fn read_csv_from(buffered: impl std::io::BufRead + 'static, path: &Path, opts: &ReadOptions) -> Result<Dataset> {
    let is_gz = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gz"));
    let input: Box<dyn Read> =
        if is_gz { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) };
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        // Field counts are checked below, to say which line is wrong and how.
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(input);

    let header = rdr.byte_headers().map_err(|e| csv_error(path, is_gz, e))?.clone();
    if header.is_empty() {
        return Err(data_err(path, None, None, "empty file: no header row"));
    }
    let mut names = Vec::with_capacity(header.len());
    for (j, raw) in header.iter().enumerate() {
        let name = std::str::from_utf8(raw).map_err(|_| {
            data_err(path, Some(1), None, format!("header field {j} is not valid UTF-8"))
        })?;
        if let Some(k) = names.iter().position(|n: &String| n == name) {
            return Err(data_err(
                path,
                Some(1),
                Some(name),
                format!("duplicate column name (columns {k} and {j})"),
            ));
        }
        names.push(name.to_string());
    }

    let roles = plan_columns(path, &names, opts)?;
    let n_cols = names.len();
    let target_col = roles.iter().position(|&r| r == Role::Target).unwrap_or(0);
    let feature_names: Vec<String> = names
        .iter()
        .zip(&roles)
        .filter(|(_, &r)| r == Role::Feature)
        .map(|(n, _)| n.clone())
        .collect();
    if feature_names.is_empty() {
        return Err(data_err(path, Some(1), None, "no feature columns left"));
    }

    let mut x = Vec::new();
    let mut y = Vec::new();
    let mut ids = opts.id_column.as_ref().map(|_| Vec::new());
    let mut rec = csv::ByteRecord::new();
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => return Err(csv_error(path, is_gz, e)),
        }
        let line = rec.position().map(|p| p.line());
        if rec.len() != n_cols {
            return Err(data_err(
                path,
                line,
                None,
                format!("expected {n_cols} fields as in the header, found {}", rec.len()),
            ));
        }
        for (j, field) in rec.iter().enumerate() {
            let col = || Some(names[j].as_str());
            match roles[j] {
                Role::Skip => {}
                Role::Feature => {
                    if field.is_empty() {
                        return Err(data_err(
                            path,
                            line,
                            col(),
                            "empty cell (missing values are not supported yet)",
                        ));
                    }
                    let v = parse_f32(field).ok_or_else(|| {
                        data_err(path, line, col(), format!("not a finite number: {}", show(field)))
                    })?;
                    x.push(v);
                }
                Role::Target => {
                    let v = parse_target(field).ok_or_else(|| {
                        data_err(path, line, col(), format!("target must be 0 or 1, found {}", show(field)))
                    })?;
                    y.push(v);
                }
                Role::Id => {
                    let s = std::str::from_utf8(field)
                        .map_err(|_| data_err(path, line, col(), "id is not valid UTF-8"))?;
                    if let Some(ids) = ids.as_mut() {
                        ids.push(s.to_string());
                    }
                }
            }
        }
    }
    if y.is_empty() {
        return Err(data_err(path, None, None, "no data rows after the header"));
    }

    Ok(Dataset {
        path: path.to_path_buf(),
        feature_names,
        x,
        y,
        ids,
        target_name: names[target_col].clone(),
    })
}

/// Assigns a role to each column from the options, checking every name they mention.
fn plan_columns(path: &Path, names: &[String], opts: &ReadOptions) -> Result<Vec<Role>> {
    let listing = || {
        let quoted: Vec<String> = names.iter().map(|n| format!("{n:?}")).collect();
        quoted.join(", ")
    };
    let find = |name: &str| names.iter().position(|n| n == name);

    let target = match &opts.target {
        TargetSpec::Last => names.len() - 1,
        TargetSpec::Name(n) => find(n.trim()).ok_or_else(|| {
            data_err(path, Some(1), None, format!("target column {n:?} not found; columns are: {}", listing()))
        })?,
        TargetSpec::Index(i) if *i < names.len() => *i,
        TargetSpec::Index(i) => {
            return Err(data_err(
                path,
                Some(1),
                None,
                format!(
                    "target column index {i} is out of range: the header has {} columns (0-based): {}",
                    names.len(),
                    listing()
                ),
            ))
        }
    };

    let mut roles = vec![Role::Feature; names.len()];
    let missing: Vec<&str> =
        opts.drop.iter().map(|d| d.trim()).filter(|d| find(d).is_none()).collect();
    if !missing.is_empty() {
        return Err(data_err(
            path,
            Some(1),
            None,
            format!("cannot drop {missing:?}: no such column; columns are: {}", listing()),
        ));
    }
    for d in &opts.drop {
        if let Some(j) = find(d.trim()) {
            roles[j] = Role::Skip;
        }
    }
    if roles[target] == Role::Skip {
        return Err(data_err(path, Some(1), Some(&names[target]), "the target column cannot be dropped"));
    }
    roles[target] = Role::Target;

    if let Some(id) = &opts.id_column {
        let j = find(id.trim()).ok_or_else(|| {
            data_err(path, Some(1), None, format!("id column {id:?} not found; columns are: {}", listing()))
        })?;
        if j == target {
            return Err(data_err(path, Some(1), Some(id), "the id column cannot also be the target"));
        }
        // An id column that is also in `drop` still provides the ids.
        roles[j] = Role::Id;
    }
    Ok(roles)
}

/// A finite number, or None. Accepts what Rust's float parser accepts ("12", "-3.5", "1e3").
fn parse_f32(field: &[u8]) -> Option<f32> {
    let v: f32 = std::str::from_utf8(field).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// 0 or 1, also written as a float ("0.0", "1.0").
fn parse_target(field: &[u8]) -> Option<f32> {
    let v: f64 = std::str::from_utf8(field).ok()?.parse().ok()?;
    if v == 0.0 {
        Some(0.0)
    } else if v == 1.0 {
        Some(1.0)
    } else {
        None
    }
}

/// A cell for an error message: quoted, lossy UTF-8, cut short if long.
fn show(field: &[u8]) -> String {
    let s = String::from_utf8_lossy(field);
    if s.chars().count() > 40 {
        let cut: String = s.chars().take(40).collect();
        format!("{cut:?}...")
    } else {
        format!("{s:?}")
    }
}

fn data_err(path: &Path, line: Option<u64>, column: Option<&str>, message: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        line,
        column: column.map(str::to_string),
        message: message.into(),
    }
}

/// Maps a csv crate error: read failures (including gzip decoding) to `Error::Io`, the rest
/// to `Error::Data` with the line when the crate knows it.
fn csv_error(path: &Path, is_gz: bool, e: csv::Error) -> Error {
    let line = e.position().map(|p| p.line());
    match e.into_kind() {
        csv::ErrorKind::Io(io) if is_gz => Error::io(
            path,
            std::io::Error::new(io.kind(), format!("{io} (while decompressing: is the gzip file corrupt or truncated?)")),
        ),
        csv::ErrorKind::Io(io) => Error::io(path, io),
        csv::ErrorKind::Utf8 { pos, err } => data_err(
            path,
            pos.map(|p| p.line()).or(line),
            None,
            format!("invalid UTF-8 in field {}", err.field()),
        ),
        csv::ErrorKind::UnequalLengths { pos, expected_len, len } => data_err(
            path,
            pos.map(|p| p.line()).or(line),
            None,
            format!("expected {expected_len} fields, found {len}"),
        ),
        other => data_err(path, line, None, format!("{other:?}")),
    }
}
