//! The raw table: a CSV file read once, record by record, into one compact array per
//! column. A column is read as numbers (f32, NaN for missing) until a cell that is not a
//! number and not a missing value turns it into text (u32 codes into a dictionary); a
//! column forced numeric errors instead, one forced categorical is text from the start.
//! Nothing is fitted here: the table keeps every row so that the split, the schema and the
//! preprocessing can each look at the rows they need.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use super::cell::{category_key, is_missing, number_key, parse_number};
use super::options::{PrepareOptions, SignedLog};
use super::source::{data_err, find_column, show, CsvSource};
use super::TargetSpec;
use crate::error::{Error, Result, Setting};

/// Code of a missing cell in a text column.
pub const MISSING_CODE: u32 = u32::MAX;

/// A text column with more distinct values than this stops keeping its values: it is free
/// text or an identifier, not a category, and keeping it would cost memory per row.
pub const MAX_DISTINCT: usize = 65_536;

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
}

impl RawTable {
    /// The column named `name`, if there is one.
    pub fn column(&self, name: &str) -> Option<&RawColumn> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The column names, in file order.
    pub fn names(&self) -> Vec<String> {
        self.columns.iter().map(|c| c.name.clone()).collect()
    }
}

/// Reads a CSV file (gzip when named `.gz` or starting with the gzip magic) into a
/// [`RawTable`], streaming: only the column arrays grow.
pub fn read_table(path: &Path, opts: &PrepareOptions) -> Result<RawTable> {
    read_from_source(CsvSource::open(path)?, opts)
}

/// Like [`read_table`], from bytes already open; `path` names them in messages.
pub fn read_table_from(
    reader: impl BufRead + 'static,
    path: &Path,
    opts: &PrepareOptions,
) -> Result<RawTable> {
    read_from_source(CsvSource::from_reader(reader, path)?, opts)
}

fn read_from_source(mut src: CsvSource, opts: &PrepareOptions) -> Result<RawTable> {
    let (roles, target) = plan_roles(&src.path, &src.names, opts)?;
    let mut cols: Vec<ColumnReader> = src
        .names
        .iter()
        .zip(&roles)
        .map(|(name, &role)| ColumnReader::new(role, looks_like_id(name)))
        .collect();

    let mut rec = csv::ByteRecord::new();
    let mut n_rows = 0usize;
    while let Some(line) = src.next(&mut rec)? {
        if n_rows >= u32::MAX as usize {
            return Err(src.err(line, 0, "more than 4294967295 rows"));
        }
        for (j, (field, col)) in rec.iter().zip(cols.iter_mut()).enumerate() {
            col.push(field).map_err(|msg| src.err(line, j, msg))?;
        }
        n_rows += 1;
    }
    if n_rows == 0 {
        return Err(data_err(
            &src.path,
            None,
            None,
            "no data rows after the header",
        ));
    }
    let columns = src
        .names
        .iter()
        .zip(cols)
        .map(|(name, c)| c.finish(name.clone()))
        .collect();
    Ok(RawTable {
        path: src.path.clone(),
        columns,
        n_rows,
        target,
    })
}

/// Assigns a role to each column from the options, checking every name they mention.
/// Returns the roles and the target's index.
pub(crate) fn plan_roles(
    path: &Path,
    names: &[String],
    opts: &PrepareOptions,
) -> Result<(Vec<Role>, usize)> {
    let not_found = |what: &str, missing: &[&str]| {
        data_err(
            path,
            Some(1),
            None,
            format!(
                "{what} {missing:?}: no such column; columns are: {}",
                super::source::listing(names)
            ),
        )
    };
    let resolve = |what: &str, list: &[String]| -> Result<Vec<usize>> {
        let missing: Vec<&str> = list
            .iter()
            .map(|s| s.trim())
            .filter(|s| find_column(names, s).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(not_found(what, &missing));
        }
        Ok(list.iter().filter_map(|s| find_column(names, s)).collect())
    };

    let target = match &opts.target {
        TargetSpec::Last => names.len().saturating_sub(1),
        TargetSpec::Name(n) => find_column(names, n).ok_or_else(|| {
            data_err(
                path,
                Some(1),
                None,
                format!(
                    "target column {n:?} not found; columns are: {}",
                    super::source::listing(names)
                ),
            )
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
                super::source::listing(names)
            ),
            ))
        }
    };

    let mut roles = vec![Role::Auto; names.len()];
    for j in resolve("cannot drop", &opts.drop)? {
        roles[j] = Role::Dropped;
    }
    if roles[target] == Role::Dropped {
        return Err(data_err(
            path,
            Some(1),
            Some(&names[target]),
            "the target column cannot be dropped",
        ));
    }
    let categorical = resolve("--categorical", &opts.categorical)?;
    let numeric = resolve("--numeric", &opts.numeric)?;
    if let SignedLog::Columns(list) = &opts.signed_log {
        resolve("--signed-log", list)?;
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
                        format!("{:?} is in both --categorical and --numeric", names[j]),
                    ))
                }
            }
        }
    }
    roles[target] = Role::Target;

    if let Some(id) = &opts.id_column {
        let j = find_column(names, id).ok_or_else(|| {
            data_err(
                path,
                Some(1),
                None,
                format!(
                    "id column {id:?} not found; columns are: {}",
                    super::source::listing(names)
                ),
            )
        })?;
        if j == target {
            return Err(data_err(
                path,
                Some(1),
                Some(id),
                "the id column cannot also be the target",
            ));
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
}

enum Building {
    Numeric(Vec<f32>),
    Text(TextBuilder),
    TooManyDistinct,
    NotRead,
}

impl ColumnReader {
    fn new(role: Role, id_like: bool) -> Self {
        let values = match role {
            Role::Auto | Role::Numeric => Building::Numeric(Vec::new()),
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
        }
    }

    /// Takes one (trimmed) cell. `Err` is the message for an error at this cell.
    fn push(&mut self, cell: &[u8]) -> std::result::Result<(), String> {
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
            Building::Numeric(v) => {
                if missing {
                    v.push(f32::NAN);
                } else if let Some(x) = parse_number(cell) {
                    v.push(x);
                } else if self.role == Role::Numeric {
                    return Err(format!(
                        "not a number: {} (the column was declared numeric)",
                        show(cell)
                    ));
                } else {
                    // The first text cell: from here on the column is categories, and the
                    // numbers before it become categories under their canonical names.
                    let mut text = TextBuilder::default();
                    let fits = v.iter().all(|&x| {
                        let key = (!x.is_nan()).then(|| number_key(x));
                        text.push(key.as_deref())
                    });
                    self.values = if fits {
                        Building::Text(text)
                    } else {
                        Building::TooManyDistinct
                    };
                    return self.push_text(cell);
                }
            }
            Building::Text(_) => return self.push_text(cell),
            Building::TooManyDistinct | Building::NotRead => {}
        }
        Ok(())
    }

    fn push_text(&mut self, cell: &[u8]) -> std::result::Result<(), String> {
        let key = category_key(cell).map_err(|_| format!("invalid UTF-8: {}", show(cell)))?;
        if let Building::Text(t) = &mut self.values {
            if !t.push(key.as_deref()) {
                self.values = Building::TooManyDistinct;
            }
        }
        Ok(())
    }

    fn finish(self, name: String) -> RawColumn {
        let values = match self.values {
            Building::Numeric(v) => Values::Numeric(v),
            Building::Text(t) => Values::Text(t.finish()),
            Building::TooManyDistinct => Values::TooManyDistinct,
            Building::NotRead => Values::NotRead,
        };
        RawColumn {
            name,
            role: self.role,
            values,
            missing: self.missing,
            unique: self.unique,
        }
    }
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
