//! The inferred schema: what each column of a raw table is used as, with the numbers a
//! person checks before training (missing, distinct, range or top categories, the
//! target's positive rate), and its rendering for `riskgrad inspect`.

use std::collections::HashSet;
use std::fmt::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::options::PrepareOptions;
use super::table::{OddCells, RawColumn, RawTable, Role, Values, MAX_DISTINCT};
use super::target::TargetEncoding;
use crate::error::Setting;

/// What a column is used as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum ColumnKind {
    /// Used as a number.
    Numeric,
    /// Used as categories (one-hot).
    Categorical,
    /// The label the model learns.
    Target,
    /// A row identifier: named in the options, or found (unique per row, named like one).
    Id,
    /// Left out with `--drop`.
    Dropped,
    /// Not usable as a feature (see the note): all missing, or text with too many values.
    Ignored,
}

impl ColumnKind {
    fn label(self) -> &'static str {
        match self {
            ColumnKind::Numeric => "numeric",
            ColumnKind::Categorical => "categorical",
            ColumnKind::Target => "target",
            ColumnKind::Id => "id (not used)",
            ColumnKind::Dropped => "dropped",
            ColumnKind::Ignored => "ignored",
        }
    }
}

/// One column's inferred use and statistics.
#[derive(Clone, Debug, Serialize)]
pub struct ColumnSchema {
    /// The column's name in the header.
    pub name: String,
    /// What it is used as.
    pub kind: ColumnKind,
    /// Why the column has its kind, where that is not plain from its values.
    pub note: Option<String>,
    /// Missing cells.
    pub missing: usize,
    /// Distinct non-missing values; `None` for a column that was not read, and for text
    /// with more than [`MAX_DISTINCT`] values.
    pub distinct: Option<usize>,
    /// Smallest and largest value of a numeric column.
    pub range: Option<(f32, f32)>,
    /// The three most frequent values of a text column, with their row counts.
    pub top: Vec<(String, usize)>,
    /// A numeric column's cells read as missing although they hold something (counted in
    /// `missing`): print each with its `Display` as a note.
    pub odd: Option<OddCells>,
}

/// The target column's values and what they mean.
#[derive(Clone, Debug, Serialize)]
pub struct TargetSummary {
    /// The target column's name.
    pub name: String,
    /// Distinct values with their row counts, most frequent first.
    pub values: Vec<(String, usize)>,
    /// Rows whose target is missing (left out of training).
    pub missing: usize,
    /// How values map to 0/1; `None` when `problem` says why not.
    pub encoding: Option<TargetEncoding>,
    /// Why the values cannot be read as 0/1, if they cannot.
    pub problem: Option<String>,
    /// The caller's setting the problem is with (the positive class it named), if any.
    #[serde(skip)]
    pub problem_about: Option<Setting>,
    /// Rows labelled 1.
    pub positives: usize,
    /// Rows labelled 0.
    pub negatives: usize,
}

impl TargetSummary {
    /// Positives over labelled rows (`None` when the target could not be read).
    pub fn positive_rate(&self) -> Option<f64> {
        let n = self.positives + self.negatives;
        (self.encoding.is_some() && n > 0).then(|| self.positives as f64 / n as f64)
    }
}

/// What a file holds and how each column will be used.
#[derive(Clone, Debug, Serialize)]
pub struct Schema {
    /// The file.
    pub path: PathBuf,
    /// Data rows (header excluded).
    pub n_rows: usize,
    /// Every column, in file order.
    pub columns: Vec<ColumnSchema>,
    /// The target column.
    pub target: TargetSummary,
}

/// A column left out without being asked to, and why (for the CLI to print).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AutoDropped {
    /// The column's name.
    pub name: String,
    /// Why it was left out.
    pub reason: String,
}

/// Note of a column dropped as an identifier by the auto-detection.
const AUTO_ID_NOTE: &str = "unique per row, looks like an ID";

impl Schema {
    /// Columns left out without being named in the options: found identifiers, and
    /// columns that cannot be features.
    pub fn auto_dropped(&self) -> Vec<AutoDropped> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Ignored || c.note.as_deref() == Some(AUTO_ID_NOTE))
            .map(|c| AutoDropped {
                name: c.name.clone(),
                reason: c.note.clone().unwrap_or_default(),
            })
            .collect()
    }

    /// The feature columns whose odd cells are read as missing (text in a column of
    /// numbers, numbers beyond f32's range), for the CLI to print one note each.
    pub fn odd_cells(&self) -> impl Iterator<Item = &OddCells> {
        self.columns
            .iter()
            .filter(|c| c.kind == ColumnKind::Numeric)
            .filter_map(|c| c.odd.as_ref())
    }

    /// Names of the feature columns (numeric or categorical), in file order.
    pub fn feature_columns(&self) -> impl Iterator<Item = &ColumnSchema> {
        self.columns
            .iter()
            .filter(|c| matches!(c.kind, ColumnKind::Numeric | ColumnKind::Categorical))
    }
}

/// Types each column of `table` and summarises it over all its rows.
pub fn infer_schema(table: &RawTable, opts: &PrepareOptions) -> Schema {
    let columns = table
        .columns
        .iter()
        .map(|c| column_schema(c, opts))
        .collect();
    let target = match table.columns.get(table.target) {
        Some(c) => target_summary(c, opts),
        None => TargetSummary {
            name: String::new(),
            values: Vec::new(),
            missing: 0,
            encoding: None,
            problem: Some("no target column".into()),
            problem_about: None,
            positives: 0,
            negatives: 0,
        },
    };
    Schema {
        path: table.path.clone(),
        n_rows: table.n_rows,
        columns,
        target,
    }
}

fn column_schema(c: &RawColumn, opts: &PrepareOptions) -> ColumnSchema {
    let mut s = ColumnSchema {
        name: c.name.clone(),
        kind: ColumnKind::Ignored,
        note: None,
        missing: c.missing,
        distinct: None,
        range: None,
        top: Vec::new(),
        odd: c.odd.clone(),
    };
    match &c.values {
        Values::Numeric(v) => {
            s.distinct = Some(distinct_numbers(v));
            s.range = v
                .iter()
                .filter(|x| !x.is_nan())
                .fold(None, |r, &x| match r {
                    None => Some((x, x)),
                    Some((lo, hi)) => Some((lo.min(x), hi.max(x))),
                });
            s.kind = ColumnKind::Numeric;
        }
        Values::Text(t) => {
            s.distinct = Some(t.dict.len());
            let mut order: Vec<usize> = (0..t.dict.len()).collect();
            order.sort_by(|&a, &b| {
                t.counts[b]
                    .cmp(&t.counts[a])
                    .then_with(|| t.dict[a].cmp(&t.dict[b]))
            });
            s.top = order
                .iter()
                .take(3)
                .map(|&i| (t.dict[i].clone(), t.counts[i]))
                .collect();
            s.kind = ColumnKind::Categorical;
        }
        Values::TooManyDistinct => {
            s.note = Some(format!(
                "text with more than {MAX_DISTINCT} distinct values"
            ));
        }
        Values::NotRead => {}
    }
    match c.role {
        Role::Dropped => {
            s.kind = ColumnKind::Dropped;
            s.note = Some("on request".into());
        }
        Role::Id => {
            s.kind = ColumnKind::Id;
            s.note = Some("the id column".into());
        }
        Role::Target => s.kind = ColumnKind::Target,
        Role::Auto if opts.auto_id && c.unique == Some(true) => {
            s.kind = ColumnKind::Id;
            s.note = Some(AUTO_ID_NOTE.into());
        }
        Role::Auto | Role::Numeric | Role::Categorical => {
            if s.distinct == Some(0) {
                s.kind = ColumnKind::Ignored;
                // A numeric column reads `inf` and 1e39 as missing (`cell::read_number`).
                let out_of_range = c.odd.as_ref().map_or(0, |o| o.out_of_range);
                s.note = Some(match out_of_range {
                    0 => "every cell is missing".into(),
                    _ => "every cell is missing or a number out of f32's range, such as inf".into(),
                });
            } else if c.role == Role::Auto && s.distinct == Some(1) && c.missing == 0 {
                // With a missing cell the column still says something (which rows lack
                // it: the missing indicator), so only a column without one goes.
                s.kind = ColumnKind::Ignored;
                s.note = Some("one value in every row, which can rank no one".into());
            } else if c.role == Role::Categorical {
                s.note = Some("declared categorical".into());
            } else if c.role == Role::Numeric {
                s.note = Some("declared numeric".into());
            }
        }
    }
    s
}

/// Distinct values of a numeric column, missing excluded (`-0` is `0`).
fn distinct_numbers(v: &[f32]) -> usize {
    let mut seen = HashSet::new();
    for &x in v {
        if !x.is_nan() {
            seen.insert((x + 0.0).to_bits());
        }
    }
    seen.len()
}

fn target_summary(c: &RawColumn, opts: &PrepareOptions) -> TargetSummary {
    let mut t = TargetSummary {
        name: c.name.clone(),
        values: Vec::new(),
        missing: c.missing,
        encoding: None,
        problem: None,
        problem_about: None,
        positives: 0,
        negatives: 0,
    };
    match &c.values {
        Values::Text(v) => {
            t.values = v
                .dict
                .iter()
                .cloned()
                .zip(v.counts.iter().copied())
                .collect();
            t.values
                .sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            match TargetEncoding::infer(&t.values, opts.positive.as_deref()) {
                Ok(enc) => {
                    for (value, n) in &t.values {
                        match enc.label(value) {
                            Some(y) if y > 0.5 => t.positives += n,
                            Some(_) => t.negatives += n,
                            None => {}
                        }
                    }
                    t.encoding = Some(enc);
                }
                Err(problem) => {
                    t.problem = Some(problem.message);
                    t.problem_about = problem.about;
                }
            }
        }
        Values::TooManyDistinct => {
            t.problem = Some(format!(
                "the target has more than {MAX_DISTINCT} distinct values, it must have two"
            ));
        }
        _ => t.problem = Some("the target column was not read".into()),
    }
    t
}

/// The schema as a table for a terminal: one line per column (name, type, missing,
/// distinct, range or top three values, note), then the target's classes and positive rate.
pub fn render_schema(schema: &Schema) -> String {
    let mut rows: Vec<[String; 5]> = vec![[
        "column".into(),
        "type".into(),
        "missing".into(),
        "distinct".into(),
        "values".into(),
    ]];
    for c in &schema.columns {
        let distinct = match (c.distinct, c.kind) {
            (Some(d), _) => d.to_string(),
            (None, ColumnKind::Dropped | ColumnKind::Id) => "-".into(),
            (None, _) => format!(">{MAX_DISTINCT}"),
        };
        let mut values = if let Some((lo, hi)) = c.range {
            format!("min {lo}, max {hi}")
        } else if !c.top.is_empty() {
            let top: Vec<String> = c
                .top
                .iter()
                .map(|(v, n)| format!("{} ({n})", shown(v)))
                .collect();
            let more = c.distinct.is_some_and(|d| d > c.top.len());
            format!("{}{}", top.join(", "), if more { ", ..." } else { "" })
        } else {
            String::new()
        };
        if let Some(note) = &c.note {
            if !values.is_empty() {
                values.push_str("  ");
            }
            let _ = write!(values, "[{note}]");
        }
        let missing =
            if matches!(c.kind, ColumnKind::Dropped | ColumnKind::Id) && c.distinct.is_none() {
                "-".into()
            } else {
                c.missing.to_string()
            };
        rows.push([
            display_name(&c.name),
            c.kind.label().into(),
            missing,
            distinct,
            values,
        ]);
    }
    let mut widths = [0usize; 4];
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = format!(
        "{}: {} rows, {} columns\n\n",
        schema.path.display(),
        schema.n_rows,
        schema.columns.len()
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:>w3$}  {}",
            r[0],
            r[1],
            r[2],
            r[3],
            r[4],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2],
            w3 = widths[3]
        );
    }
    let t = &schema.target;
    out.push('\n');
    match (&t.encoding, &t.problem) {
        (Some(enc), _) => {
            let n = t.positives + t.negatives;
            let _ = write!(
                out,
                "target {:?}: positive {:?}, negative {:?}; {} positives in {} rows ({:.2} %)",
                t.name,
                enc.positive,
                enc.negative,
                t.positives,
                n,
                100.0 * t.positive_rate().unwrap_or(f64::NAN)
            );
            if t.missing > 0 {
                let _ = write!(out, "; {} rows without a target are not used", t.missing);
            }
            out.push('\n');
        }
        (None, problem) => {
            let _ = writeln!(
                out,
                "target {:?}: {}",
                t.name,
                problem.as_deref().unwrap_or("unreadable")
            );
        }
    }
    out
}

/// A header name as shown in the table: quoted when empty or padded with spaces.
fn display_name(name: &str) -> String {
    if name.is_empty() || name.trim() != name {
        format!("{name:?}")
    } else {
        shown(name)
    }
}

/// The longest text of a cell or a name the table shows whole.
const SHOWN_CHARS: usize = 40;

/// A cell or name as the table shows it: as it is, unless it holds control characters
/// (a terminal escape, a NUL, a line break would break the table or the terminal) or is
/// long: then quoted with escapes, cut to `SHOWN_CHARS` characters.
fn shown(text: &str) -> String {
    if text.chars().count() <= SHOWN_CHARS && !text.chars().any(char::is_control) {
        return text.to_string();
    }
    let cut: String = text.chars().take(SHOWN_CHARS).collect();
    let more = if cut.len() < text.len() { "..." } else { "" };
    format!("{cut:?}{more}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::table::read_table_from;
    use std::path::Path;

    fn schema(text: &str, opts: &PrepareOptions) -> Schema {
        let t = read_table_from(
            std::io::Cursor::new(text.as_bytes().to_vec()),
            Path::new("s.csv"),
            opts,
        )
        .unwrap();
        infer_schema(&t, opts)
    }

    const TEXT: &str = "customer_id,amount,purpose,empty,grade,default\n\
        c1,100,car,,1,no\n\
        c2,NA,car,,2,yes\n\
        c3,300,home,NA,1,no\n\
        c4,-5,car,,3,No\n";

    /// A column with one value in every row is dropped, saying why; with the value in
    /// some rows only (the rest missing) it stays, as does one declared a feature.
    #[test]
    fn a_constant_column_is_dropped_saying_so() {
        let text = "x,same,word,some,y\n1,7,a,7,0\n2,7,a,,1\n3,7,a,7,0\n4,7,a,7,1\n";
        let s = schema(text, &PrepareOptions::default());
        let dropped: Vec<String> = s.auto_dropped().into_iter().map(|d| d.name).collect();
        assert_eq!(dropped, ["same", "word"]);
        assert!(s.auto_dropped()[0]
            .reason
            .contains("one value in every row"));
        let declared = PrepareOptions {
            numeric: vec!["same".into()],
            ..Default::default()
        };
        let s = schema(text, &declared);
        let dropped: Vec<String> = s.auto_dropped().into_iter().map(|d| d.name).collect();
        assert_eq!(dropped, ["word"]);
    }

    /// A category holding a terminal escape, or thousands of characters, is shown
    /// quoted, escaped and cut short: the table stays one line a column, the terminal
    /// untouched. Plain values are shown as they are.
    #[test]
    fn the_table_shows_odd_or_long_cells_escaped_and_short() {
        let long = "x".repeat(5000);
        let text = format!("c,y\n\"\u{1b}[31mred\",0\n{long},1\nplain,0\nplain,1\n");
        let table = render_schema(&schema(&text, &PrepareOptions::default()));
        assert!(
            !table.contains('\u{1b}') && table.contains("\\u{1b}[31mred"),
            "{table}"
        );
        assert!(
            table.contains(&format!("\"{}\"...", "x".repeat(40))),
            "{table}"
        );
        assert!(!table.contains(&"x".repeat(41)), "cut short");
        assert!(table.contains("plain (2)"), "{table}");
    }

    #[test]
    fn a_column_of_infinities_is_dropped_saying_so() {
        let s = schema(
            "x,big,y\n1,inf,0\n2,,1\n3,-1e39,0\n4,inf,1\n",
            &PrepareOptions::default(),
        );
        assert_eq!(s.columns[1].kind, ColumnKind::Ignored);
        assert_eq!(
            s.columns[1].note.as_deref(),
            Some("every cell is missing or a number out of f32's range, such as inf")
        );
    }

    #[test]
    fn kinds_and_stats() {
        let s = schema(
            TEXT,
            &PrepareOptions {
                drop: vec!["grade".into()],
                ..Default::default()
            },
        );
        let kinds: Vec<ColumnKind> = s.columns.iter().map(|c| c.kind).collect();
        use ColumnKind::*;
        assert_eq!(kinds, [Id, Numeric, Categorical, Ignored, Dropped, Target]);
        assert_eq!(s.columns[0].note.as_deref(), Some(AUTO_ID_NOTE));
        assert_eq!(s.columns[1].missing, 1);
        assert_eq!(s.columns[1].distinct, Some(3));
        assert_eq!(s.columns[1].range, Some((-5.0, 300.0)));
        assert_eq!(
            s.columns[2].top,
            [("car".to_string(), 3), ("home".to_string(), 1)]
        );
        assert_eq!(s.columns[3].missing, 4);
        assert_eq!(
            s.auto_dropped(),
            [
                AutoDropped {
                    name: "customer_id".into(),
                    reason: AUTO_ID_NOTE.into()
                },
                AutoDropped {
                    name: "empty".into(),
                    reason: "every cell is missing".into()
                }
            ]
        );
        assert_eq!(s.target.positives, 1);
        assert_eq!(s.target.negatives, 3);
        assert_eq!(s.target.positive_rate(), Some(0.25));
        assert_eq!(
            s.feature_columns()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>(),
            ["amount", "purpose"]
        );

        let s = schema(
            TEXT,
            &PrepareOptions {
                auto_id: false,
                ..Default::default()
            },
        );
        assert_eq!(s.columns[0].kind, Categorical);
    }

    #[test]
    fn rendering() {
        let s = schema(TEXT, &PrepareOptions::default());
        let out = render_schema(&s);
        for want in [
            "s.csv: 4 rows, 6 columns",
            "customer_id",
            "id (not used)",
            "min -5, max 300",
            "car (3), home (1)",
            "unique per row, looks like an ID",
            "target \"default\": positive \"yes\", negative \"no\"; 1 positives in 4 rows (25.00 %)",
        ] {
            assert!(out.contains(want), "{want:?} not in\n{out}");
        }
        let s = schema("a,y\n1,0\n2,0\n", &PrepareOptions::default());
        assert!(
            render_schema(&s).contains("one class only"),
            "{}",
            render_schema(&s)
        );
    }
}
