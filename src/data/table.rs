//! The raw table: a CSV file read once, record by record, into one compact array per
//! column. A column is read as numbers (f32, NaN for missing); from the first cell that
//! is neither a number nor missing on, it is also kept as text (u32 codes into a
//! dictionary), and at the end of the file [`numeric_despite`] decides which it is: a
//! few odd cells in a column of numbers are read as missing and reported
//! ([`OddCells`]), more make it categories. A column forced numeric errors when it has
//! more, one forced categorical is text from the start.
//! Nothing is fitted here: the table keeps every row so that the split, the schema and the
//! preprocessing can each look at the rows they need.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::cell::{category_key, is_missing, number_key, read_number, NumberCell};
use super::options::{PrepareOptions, SignedLog};
use super::source::{data_err, find_column, show, Place, Source};
use super::TargetSpec;
use crate::error::{Error, Result, Setting};

/// Code of a missing cell in a text column.
pub const MISSING_CODE: u32 = u32::MAX;

/// A text column with more distinct values than this stops keeping its values: it is free
/// text or an identifier, not a category, and keeping it would cost memory per row.
pub const MAX_DISTINCT: usize = 65_536;

/// Whether a column of `non_missing` cells, `not_numbers` of which are not numbers, is a
/// numeric column all the same (its odd cells read as missing) rather than categories:
/// when the odd cells are at most 1 % of the non-missing cells or at most 5 cells,
/// whichever allows more, and never more than a tenth of them (so a short column of
/// words stays categories). Numbers beyond f32's range are numbers here: they never make
/// a column categorical.
pub fn numeric_despite(not_numbers: usize, non_missing: usize) -> bool {
    (not_numbers <= 5 || not_numbers * 100 <= non_missing) && not_numbers * 10 <= non_missing
}

/// How many odd cells [`OddCells`] lists by line.
pub const ODD_CELLS_LISTED: usize = 5;

/// The cells of a numeric column that are read as missing although they are not empty
/// or a missing spelling: text (within the share [`numeric_despite`] allows) and numbers
/// beyond f32's range. Counted, with the first few, for the user to see.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OddCells {
    /// The column's name.
    pub column: String,
    /// Cells that are not numbers (`abc`, `1,5`).
    pub not_numbers: usize,
    /// Numbers beyond f32's range (`1e308`, `inf`).
    pub out_of_range: usize,
    /// The first [`ODD_CELLS_LISTED`] of them: the 1-based file line (CSV) or data row
    /// (Parquet) and the cell as shown in messages (quoted).
    pub first: Vec<(u64, String)>,
    /// Whether the first one is out of range (else it is not a number).
    #[serde(skip)]
    first_out_of_range: bool,
    /// Where each of `first` is (file, line or row).
    #[serde(skip)]
    places: Vec<Place>,
}

impl OddCells {
    /// None yet, in column `column`.
    pub fn new(column: &str) -> Self {
        OddCells {
            column: column.to_string(),
            ..OddCells::default()
        }
    }

    /// All the odd cells.
    pub fn count(&self) -> usize {
        self.not_numbers + self.out_of_range
    }

    /// Counts an odd cell of kind `kind`, read at `place` (asked only for the first few).
    pub(crate) fn add(&mut self, place: impl FnOnce() -> Place, cell: &[u8], kind: NumberCell) {
        match kind {
            NumberCell::OutOfRange => self.out_of_range += 1,
            _ => self.not_numbers += 1,
        }
        if self.first.is_empty() {
            self.first_out_of_range = kind == NumberCell::OutOfRange;
        }
        if self.first.len() < ODD_CELLS_LISTED {
            let place = place();
            self.first.push((place.number(), show(cell)));
            self.places.push(place);
        }
    }

    /// The error for a column whose odd cells are refused: at the first one, `why` they
    /// are (`--strict`, or a column declared numeric with too many).
    fn refusal(&self, why: &str) -> Option<Error> {
        let (_, cell) = self.first.first()?;
        let place = self.places.first()?;
        let what = if self.first_out_of_range {
            format!("beyond f32's range (±3.4e38): {cell}")
        } else {
            format!("not a number: {cell}")
        };
        let (unit, at) = match (place.line, place.name_file) {
            (Some(_), _) => ("lines", self.numbers()),
            (None, false) => ("rows", self.numbers()),
            (None, true) => ("", self.places.iter().map(Place::to_string).collect()),
        };
        let more = if self.count() > self.first.len() {
            ", …"
        } else {
            ""
        };
        let n = self.count();
        Some(place.err(
            Some(&self.column),
            format!(
                "{what} ({n} {} of this numeric column cannot be read as numbers, on {unit}{}{}{more}); {why}",
                if n == 1 { "cell" } else { "cells" },
                if unit.is_empty() { "" } else { " " },
                at.join(", ")
            ),
        ))
    }

    fn numbers(&self) -> Vec<String> {
        self.first.iter().map(|(n, _)| n.to_string()).collect()
    }
}

impl std::fmt::Display for OddCells {
    /// `column "LIMIT_BAL": 2 cells are not numbers, read as missing (line 14: "abc",
    /// line 907: "x")`; `row 14` in a Parquet file.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const RANGE: &str = "beyond f32's range (±3.4e38)";
        let (t, r) = (self.not_numbers, self.out_of_range);
        let text = if t == 1 {
            "1 cell is not a number".to_string()
        } else {
            format!("{t} cells are not numbers")
        };
        write!(f, "column {:?}: ", self.column)?;
        match (t, r) {
            (_, 0) => write!(f, "{text}")?,
            (0, 1) => write!(f, "1 cell is {RANGE}")?,
            (0, _) => write!(f, "{r} cells are {RANGE}")?,
            (_, 1) => write!(f, "{text} and 1 is {RANGE}")?,
            _ => write!(f, "{text} and {r} are {RANGE}")?,
        }
        let listed: Vec<String> = self
            .first
            .iter()
            .enumerate()
            .map(|(k, (line, cell))| match self.places.get(k) {
                Some(place) => format!("{place}: {cell}"),
                None => format!("line {line}: {cell}"),
            })
            .collect();
        let more = if self.count() > self.first.len() {
            ", …"
        } else {
            ""
        };
        write!(f, ", read as missing ({}{more})", listed.join(", "))
    }
}

/// What the options make of a column before any value is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Numeric or categorical, as the values say.
    Auto,
    /// Forced numeric (`--numeric`).
    Numeric,
    /// Forced categorical (`--categorical`).
    Categorical,
    /// The target column (`--target`).
    Target,
    /// The row-identifier column named in the options.
    Id,
    /// Listed in `--drop`.
    Dropped,
}

/// The values of one column.
#[derive(Clone, Debug)]
pub enum Values {
    /// NaN for a missing cell.
    Numeric(Vec<f32>),
    /// Category codes into a dictionary.
    Text(TextValues),
    /// Text with more than [`MAX_DISTINCT`] distinct values: not kept.
    TooManyDistinct,
    /// Not read (a dropped or id column).
    NotRead,
}

/// A text column: one code per row ([`MISSING_CODE`] for missing) into `dict`, and how many
/// rows hold each entry.
#[derive(Clone, Debug, Default)]
pub struct TextValues {
    /// One code per row.
    pub codes: Vec<u32>,
    /// The distinct values, by code.
    pub dict: Vec<String>,
    /// Rows holding each code.
    pub counts: Vec<usize>,
}

/// One column of a raw table: its role and its values as read.
#[derive(Clone, Debug)]
pub struct RawColumn {
    /// The header's name.
    pub name: String,
    /// What the options make of it.
    pub role: Role,
    /// The values as read.
    pub values: Values,
    /// Missing cells (0 for a column not read).
    pub missing: usize,
    /// For a column named like an identifier: whether every row has its own non-missing
    /// value. `None` for other columns.
    pub unique: Option<bool>,
    /// For a numeric column: the cells read as missing that are not empty or a missing
    /// spelling (counted in `missing` too). `None` when there are none.
    pub odd: Option<OddCells>,
}

/// A whole CSV file, column by column.
#[derive(Clone, Debug)]
pub struct RawTable {
    /// The file.
    pub path: PathBuf,
    /// Every column, in file order.
    pub columns: Vec<RawColumn>,
    /// Data rows.
    pub n_rows: usize,
    /// Index of the target column in `columns`.
    pub target: usize,
    /// Each data row's fingerprint (`data::fingerprint`), in file order.
    pub row_fingerprints: Vec<u64>,
}

impl RawTable {
    /// The column named `name`, if there is one (a scan: to find many, use
    /// [`columns_by_name`](Self::columns_by_name)).
    pub fn column(&self, name: &str) -> Option<&RawColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// Every column by its name, to find many of them (one lookup each, not a scan: a
    /// table of 200,000 columns took minutes with a scan per column).
    pub fn columns_by_name(&self) -> HashMap<&str, &RawColumn> {
        self.columns.iter().map(|c| (c.name.as_str(), c)).collect()
    }

    /// The column names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// Reads a data file into a [`RawTable`], streaming: only the column arrays grow. CSV
/// (gzip when named `.gz` or starting with the gzip magic), or Parquet: a `.parquet`
/// file or a directory of them (see `data::parquet`).
pub fn read_table(path: &Path, opts: &PrepareOptions) -> Result<RawTable> {
    read_from_source(Source::open(path)?, opts)
}

/// Like [`read_table`], from CSV bytes already open; `path` names them in messages.
pub fn read_table_from(
    reader: impl BufRead + 'static,
    path: &Path,
    opts: &PrepareOptions,
) -> Result<RawTable> {
    read_from_source(Source::from_reader(reader, path)?, opts)
}

fn read_from_source(mut src: Source, opts: &PrepareOptions) -> Result<RawTable> {
    let (roles, target) = plan_roles(&src, opts)?;
    let mut cols: Vec<ColumnReader> = src
        .names()
        .iter()
        .zip(&roles)
        .map(|(name, &role)| ColumnReader::new(role, looks_like_id(name)))
        .collect();

    let mut rec = csv::ByteRecord::new();
    let mut n_rows = 0usize;
    let mut row_fingerprints = Vec::new();
    while let Some(line) = src.next(&mut rec)? {
        if n_rows >= u32::MAX as usize {
            return Err(src.err(line, 0, "more than 4294967295 rows"));
        }
        for (j, (field, col)) in rec.iter().zip(cols.iter_mut()).enumerate() {
            col.push(field, || src.place(line))
                .map_err(|msg| src.err(line, j, msg))?;
        }
        row_fingerprints.push(src.fingerprint(&rec));
        n_rows += 1;
    }
    if n_rows == 0 {
        let what = match src {
            Source::Csv(_) => "no data rows after the header",
            Source::Parquet(_) | Source::Arrow(_) => "no data rows",
        };
        return Err(data_err(src.path(), None, None, what));
    }
    let columns = src
        .names()
        .iter()
        .zip(cols)
        .map(|(name, c)| c.finish(name.clone(), opts.strict))
        .collect::<Result<Vec<_>>>()?;
    Ok(RawTable {
        path: src.path().to_path_buf(),
        columns,
        n_rows,
        target,
        row_fingerprints,
    })
}

/// Assigns a role to each column from the options, checking every name they mention.
/// Returns the roles and the target's index.
pub(crate) fn plan_roles(src: &Source, opts: &PrepareOptions) -> Result<(Vec<Role>, usize)> {
    let (path, names) = (src.path(), src.names());
    let not_found = |setting: Setting, missing: &[&str]| {
        src.header_err(
            None,
            format!(
                "{missing:?}: no such column; columns are: {}",
                super::source::listing(names)
            ),
        )
        .about(setting)
    };
    let resolve = |setting: Setting, list: &[String]| -> Result<Vec<usize>> {
        let missing: Vec<&str> = list
            .iter()
            .map(|s| s.trim())
            .filter(|s| find_column(names, s).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(not_found(setting, &missing));
        }
        Ok(list.iter().filter_map(|s| find_column(names, s)).collect())
    };

    let target = match &opts.target {
        TargetSpec::Last => names.len().saturating_sub(1),
        TargetSpec::Name(n) => find_column(names, n).ok_or_else(|| {
            src.header_err(
                None,
                format!(
                    "target column {n:?} not found; columns are: {}",
                    super::source::listing(names)
                ),
            )
        })?,
        // A column named by the digits is the one meant (`--target 1` in a header
        // `1,0,x`): a name is the only way to pick it, while any column has a name.
        TargetSpec::Index(i) => match find_column(names, &i.to_string()) {
            Some(named) => named,
            None if *i < names.len() => *i,
            None => {
                return Err(src.header_err(
                    None,
                    format!(
                        "target column index {i} is out of range: the header has {} columns (0-based): {}",
                        names.len(),
                        super::source::listing(names)
                    ),
                ))
            }
        },
    };

    let mut roles = vec![Role::Auto; names.len()];
    for j in resolve(Setting::Drop, &opts.drop)? {
        roles[j] = Role::Dropped;
    }
    if roles[target] == Role::Dropped {
        return Err(src.header_err(Some(&names[target]), "the target column cannot be dropped"));
    }
    let categorical = resolve(Setting::Categorical, &opts.categorical)?;
    let mut numeric = resolve(Setting::Numeric, &opts.numeric)?;
    let unknown: Vec<&str> = opts
        .sequence
        .iter()
        .map(|s| s.trim())
        .filter(|s| find_column(names, s).is_none())
        .collect();
    if !unknown.is_empty() {
        return Err(Error::invalid(
            Setting::Sequence,
            format!(
                "{unknown:?}: no such column in {}; columns are: {}",
                path.display(),
                super::source::listing(names)
            ),
        ));
    }
    for j in opts.sequence.iter().filter_map(|s| find_column(names, s)) {
        // Said here, as the history's own setting: it is merged into the numeric
        // columns below, whose refusal would name --numeric.
        if j == target {
            return Err(Error::invalid(
                Setting::Sequence,
                format!(
                    "{:?} is the target column; a payment history is of features",
                    names[j]
                ),
            ));
        }
        if !numeric.contains(&j) {
            numeric.push(j);
        }
    }
    if let SignedLog::Columns(list) = &opts.signed_log {
        resolve(Setting::SignedLog, list)?;
    }
    for (setting, cols, role) in [
        (Setting::Categorical, &categorical, Role::Categorical),
        (Setting::Numeric, &numeric, Role::Numeric),
    ] {
        for &j in cols {
            if j == target {
                return Err(Error::invalid(
                    setting,
                    format!("{:?} is the target column", names[j]),
                ));
            }
            match roles[j] {
                Role::Auto => roles[j] = role,
                Role::Dropped => {}
                _ => {
                    return Err(Error::invalid(
                        setting,
                        format!("{:?} is declared both categorical and numeric", names[j]),
                    ))
                }
            }
        }
    }
    roles[target] = Role::Target;

    if let Some(id) = &opts.id_column {
        let j = find_column(names, id).ok_or_else(|| {
            src.header_err(
                None,
                format!(
                    "id column {id:?} not found; columns are: {}",
                    super::source::listing(names)
                ),
            )
        })?;
        if j == target {
            return Err(src.header_err(Some(id), "the id column cannot also be the target"));
        }
        // An id column that is also in `drop` still names the rows.
        roles[j] = Role::Id;
    }
    Ok((roles, target))
}

/// Whether a header name reads like a row identifier: `id`, `ID`, `Id`, `*_id`, `* id`,
/// `id_*`, `customerId`, `LoanID`, `*_no`, `*_number`, `index`, `key`, `uuid`, `rowid`,
/// and the unnamed index columns that R and pandas write (`""`, `Unnamed: 0`).
pub fn looks_like_id(name: &str) -> bool {
    let lower = name.trim().to_ascii_lowercase();
    const WHOLE: [&str; 11] = [
        "", "id", "idx", "index", "key", "uuid", "guid", "rowid", "row", "no", "number",
    ];
    const SUFFIX: [&str; 9] = [
        "_id", "-id", " id", ".id", "_no", "_num", "_number", " number", "_key",
    ];
    if WHOLE.contains(&lower.as_str())
        || lower.starts_with("unnamed:")
        || lower.starts_with("id_")
        || lower.starts_with("id ")
        || SUFFIX.iter().any(|s| lower.ends_with(s))
    {
        return true;
    }
    // camelCase / PascalCase: `customerId`, `LoanID` (but not `PAID` or `valid`).
    let b = name.trim().as_bytes();
    b.len() > 2 && (b.ends_with(b"Id") || b.ends_with(b"ID")) && b[b.len() - 3].is_ascii_lowercase()
}

/// Reads one column's cells as they stream by.
struct ColumnReader {
    role: Role,
    values: Building,
    missing: usize,
    /// Hashes of the values seen, while the column is named like an id and still unique.
    seen: Option<HashSet<u64>>,
    unique: Option<bool>,
    /// The cells of a numeric column that are not numbers, so far.
    odd: OddCells,
}

enum Building {
    /// Numbers, NaN for missing and odd cells; `text` is the same column as categories,
    /// kept from its first cell that is not a number on (for a column not forced
    /// numeric), in case too many are not.
    Numeric {
        v: Vec<f32>,
        text: Option<Box<Building>>,
    },
    Text(TextBuilder),
    TooManyDistinct,
    NotRead,
}

impl ColumnReader {
    fn new(role: Role, id_like: bool) -> Self {
        let values = match role {
            Role::Auto | Role::Numeric => Building::Numeric {
                v: Vec::new(),
                text: None,
            },
            Role::Categorical | Role::Target => Building::Text(TextBuilder::default()),
            Role::Id | Role::Dropped => Building::NotRead,
        };
        let tracked = id_like && matches!(role, Role::Auto | Role::Numeric | Role::Categorical);
        ColumnReader {
            role,
            values,
            missing: 0,
            seen: tracked.then(HashSet::new),
            unique: tracked.then_some(true),
            odd: OddCells::default(),
        }
    }

    /// Takes one (trimmed) cell, read at `place`. `Err` is the message for an error at
    /// this cell.
    fn push(
        &mut self,
        cell: &[u8],
        place: impl FnOnce() -> Place,
    ) -> std::result::Result<(), String> {
        if matches!(self.values, Building::NotRead) {
            return Ok(());
        }
        let missing = is_missing(cell);
        self.missing += missing as usize;
        if let Some(seen) = &mut self.seen {
            let mut h = DefaultHasher::new();
            cell.hash(&mut h);
            if missing || !seen.insert(h.finish()) {
                self.seen = None;
                self.unique = Some(false);
            }
        }
        match &mut self.values {
            Building::Numeric { v, text } => {
                let read = if missing {
                    None
                } else {
                    Some(read_number(cell))
                };
                match read {
                    None => v.push(f32::NAN),
                    Some(NumberCell::Number(x)) => v.push(x),
                    Some(kind) => {
                        v.push(f32::NAN);
                        self.odd.add(place, cell, kind);
                        if kind == NumberCell::NotNumber
                            && text.is_none()
                            && self.role != Role::Numeric
                        {
                            // The first text cell: from here on the column is kept as
                            // categories too, the numbers before it under their canonical
                            // names (this cell is pushed below).
                            let mut t = TextBuilder::default();
                            let fits = v[..v.len() - 1].iter().all(|&x| {
                                let key = (!x.is_nan()).then(|| number_key(x));
                                t.push(key.as_deref())
                            });
                            *text = Some(Box::new(if fits {
                                Building::Text(t)
                            } else {
                                Building::TooManyDistinct
                            }));
                            return push_text(text.as_deref_mut(), cell);
                        }
                    }
                }
                push_text(text.as_deref_mut(), cell)
            }
            Building::Text(_) => push_text(Some(&mut self.values), cell),
            Building::TooManyDistinct | Building::NotRead => Ok(()),
        }
    }

    fn finish(self, name: String, strict: bool) -> Result<RawColumn> {
        let mut odd = self.odd;
        odd.column = name.clone();
        let mut missing = self.missing;
        let values = match self.values {
            Building::Numeric { v, text } => {
                let non_missing = v.len() - missing;
                let numeric = numeric_despite(odd.not_numbers, non_missing);
                match text {
                    Some(text) if !numeric => match *text {
                        Building::Text(t) => Values::Text(t.finish()),
                        _ => Values::TooManyDistinct,
                    },
                    _ => {
                        let why = if !numeric {
                            Some((Setting::Numeric, "the column was declared numeric; declare it categorical instead, or fix the cells"))
                        } else if strict {
                            Some((Setting::Strict, "the strict reading refuses them; without it they are read as missing"))
                        } else {
                            None
                        };
                        if let Some((setting, e)) =
                            why.and_then(|(setting, why)| Some((setting, odd.refusal(why)?)))
                        {
                            return Err(e.about(setting));
                        }
                        missing += odd.count();
                        Values::Numeric(v)
                    }
                }
            }
            Building::Text(t) => Values::Text(t.finish()),
            Building::TooManyDistinct => Values::TooManyDistinct,
            Building::NotRead => Values::NotRead,
        };
        let odd = (matches!(values, Values::Numeric(_)) && odd.count() > 0).then_some(odd);
        Ok(RawColumn {
            name,
            role: self.role,
            values,
            missing,
            unique: self.unique,
            odd,
        })
    }
}

/// Adds a cell to a column kept as text (nothing for `None` or a column past
/// [`MAX_DISTINCT`]).
fn push_text(values: Option<&mut Building>, cell: &[u8]) -> std::result::Result<(), String> {
    let Some(values) = values else {
        return Ok(());
    };
    let key = category_key(cell).map_err(|_| format!("invalid UTF-8: {}", show(cell)))?;
    if let Building::Text(t) = values {
        if !t.push(key.as_deref()) {
            *values = Building::TooManyDistinct;
        }
    }
    Ok(())
}

#[derive(Default)]
struct TextBuilder {
    codes: Vec<u32>,
    index: HashMap<String, u32>,
    counts: Vec<usize>,
}

impl TextBuilder {
    /// Appends a value (`None` = missing); false when it would be distinct value number
    /// [`MAX_DISTINCT`] + 1.
    fn push(&mut self, key: Option<&str>) -> bool {
        let code = match key {
            None => MISSING_CODE,
            Some(k) => match self.index.get(k) {
                Some(&c) => c,
                None => {
                    if self.index.len() >= MAX_DISTINCT {
                        return false;
                    }
                    let c = self.index.len() as u32;
                    self.index.insert(k.to_string(), c);
                    self.counts.push(0);
                    c
                }
            },
        };
        if let Some(n) = self.counts.get_mut(code as usize) {
            *n += 1;
        }
        self.codes.push(code);
        true
    }

    fn finish(self) -> TextValues {
        let mut dict = vec![String::new(); self.index.len()];
        for (k, c) in self.index {
            if let Some(slot) = dict.get_mut(c as usize) {
                *slot = k;
            }
        }
        TextValues {
            codes: self.codes,
            dict,
            counts: self.counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str, opts: &PrepareOptions) -> Result<RawTable> {
        read_table_from(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Path::new("t.csv"),
            opts,
        )
    }

    #[test]
    fn id_names() {
        for n in [
            "ID",
            "id",
            "Id",
            "customer_id",
            "Customer ID",
            "LoanID",
            "customerId",
            "id_loan",
            "Unnamed: 0",
            "",
            "row_no",
            "account_number",
            "index",
        ] {
            assert!(looks_like_id(n), "{n:?}");
        }
        for n in [
            "PAID", "valid", "bid", "AGE", "PAY_0", "idea", "default", "width",
        ] {
            assert!(!looks_like_id(n), "{n:?}");
        }
    }

    #[test]
    fn columns_become_text_on_the_first_word() {
        let t = read(
            "a,b,c,y\n1,x,NA,0\n2.5,2,,1\n,y,3,0\n",
            &PrepareOptions::default(),
        )
        .unwrap();
        assert_eq!(t.n_rows, 3);
        assert_eq!(t.target, 3);
        let Values::Numeric(a) = &t.columns[0].values else {
            panic!()
        };
        assert_eq!(a[..2], [1.0, 2.5]);
        assert!(a[2].is_nan());
        assert_eq!(t.columns[0].missing, 1);
        let Values::Text(b) = &t.columns[1].values else {
            panic!()
        };
        assert_eq!(b.dict, ["x", "2", "y"]);
        assert_eq!(b.codes, [0, 1, 2]);
        let Values::Numeric(c) = &t.columns[2].values else {
            panic!()
        };
        assert_eq!(t.columns[2].missing, 2);
        assert_eq!(c[2], 3.0);
        let Values::Text(y) = &t.columns[3].values else {
            panic!()
        };
        assert_eq!(
            (y.dict.clone(), y.counts.clone()),
            (vec!["0".to_string(), "1".into()], vec![2, 1])
        );
    }

    #[test]
    fn numbers_seen_before_text_keep_their_names() {
        let t = read(
            "a,y\n1,0\n2.0,1\n,0\nA11,1\n1,0\n",
            &PrepareOptions::default(),
        )
        .unwrap();
        let Values::Text(a) = &t.columns[0].values else {
            panic!()
        };
        assert_eq!(a.dict, ["1", "2", "A11"]);
        assert_eq!(a.codes, [0, 1, MISSING_CODE, 2, 0]);
        assert_eq!(a.counts, [2, 1, 1]);
    }

    #[test]
    fn forced_roles_and_errors() {
        let opts = PrepareOptions {
            categorical: vec!["a".into()],
            numeric: vec!["b".into()],
            ..Default::default()
        };
        let t = read("a,b,y\n1,2,0\n3,,1\n", &opts).unwrap();
        assert!(matches!(&t.columns[0].values, Values::Text(v) if v.dict == ["1", "3"]));
        let e = read("a,b,y\n1,2,0\n3,x,1\n", &opts)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("line 3") && e.contains("\"b\"") && e.contains("\"x\""),
            "{e}"
        );
        let both = PrepareOptions {
            categorical: vec!["a".into()],
            numeric: vec!["a".into()],
            ..Default::default()
        };
        assert!(read("a,y\n1,0\n", &both).is_err());
        let e = read(
            "a,y\n1,0\n",
            &PrepareOptions {
                categorical: vec!["zz".into()],
                ..Default::default()
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("zz") && e.contains("\"a\""), "{e}");
    }

    #[test]
    fn uniqueness_of_id_like_columns() {
        let t = read(
            "id,cust_id,x,y\n1,a,5,0\n2,a,6,1\n3,b,5,0\n",
            &PrepareOptions::default(),
        )
        .unwrap();
        assert_eq!(t.columns[0].unique, Some(true));
        assert_eq!(t.columns[1].unique, Some(false));
        assert_eq!(t.columns[2].unique, None);
        let t = read("id,y\n1,0\n,1\n", &PrepareOptions::default()).unwrap();
        assert_eq!(t.columns[0].unique, Some(false));
    }

    #[test]
    fn too_many_distinct() {
        let mut text = String::from("name,y\n");
        for i in 0..=MAX_DISTINCT {
            text.push_str(&format!("n{i},0\n"));
        }
        let t = read(&text, &PrepareOptions::default()).unwrap();
        assert!(matches!(t.columns[0].values, Values::TooManyDistinct));
        assert_eq!(t.n_rows, MAX_DISTINCT + 1);
    }
}
