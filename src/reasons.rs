//! Adverse-action reasons in words: a reasons file gives each raw input column of a
//! model a reason code and the text a decline letter would show, and an applicant's
//! per-column attributions ([`crate::explain::by_source`]) become their top adverse
//! reasons as codes and texts.
//!
//! The file is CSV (UTF-8, `#` starts a comment line) with the header `column,code,text`
//! (in any order, no other columns) and one row per raw column:
//!
//! ```text
//! column,code,text
//! PAY_0,R01,Payments were late in recent months
//! PAY_2,R01,Payments were late in recent months
//! LIMIT_BAL,R02,"Credit limit is low for the balance carried"
//! ```
//!
//! Several columns may share a code (with the same text): their attributions are summed
//! into one reason, so a letter never lists the same reason twice. Only reasons whose
//! summed contribution pushed the score toward default (above zero) are given, largest
//! first. Refused, with the file, line and field named: a column that is not one of the
//! model's inputs (near matches listed), a column given twice, an empty code or text, a
//! code given two different texts, a header without exactly those three fields, a code
//! that is the name of a column the file leaves out. A model column the file leaves out
//! is reported by [`ReasonCodes::uncovered`] and stands as its own reason, with its name
//! as code and text, so no attribution goes unaccounted.

use crate::error::{Error, Result};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;

/// A reason code, its text, and the raw columns it covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ReasonCode {
    /// The code, as the file spells it.
    pub code: String,
    /// The text shown to the applicant.
    pub text: String,
    /// The model's raw input columns it covers, in model order.
    pub columns: Vec<String>,
}

/// One adverse reason of an applicant: a code that raised the probability of default.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CodedReason {
    /// The reason code.
    pub code: String,
    /// Its text.
    pub text: String,
    /// The raw columns whose attributions it sums.
    pub columns: Vec<String>,
    /// The summed attribution, in probability (always above 0).
    pub contribution: f64,
}

/// The reasons file read against a model's raw input columns.
#[derive(Clone, Debug, PartialEq)]
pub struct ReasonCodes {
    codes: Vec<ReasonCode>,
    /// For each raw column (model order), the index of its code in `codes`.
    of_column: Vec<usize>,
    /// Model columns the file gave no reason, each standing as its own code.
    uncovered: Vec<String>,
}

const FIELDS: [&str; 3] = ["column", "code", "text"];

impl ReasonCodes {
    /// Reads the reasons file at `path` for a model whose raw input columns are
    /// `columns` ([`crate::model_io::SavedModel::source_names`]).
    pub fn read(path: &Path, columns: &[String]) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
        Self::from_reader(std::io::BufReader::new(file), path, columns)
    }

    /// As [`read`](Self::read), from bytes already open; `path` names them in messages.
    pub fn from_reader(
        reader: impl std::io::Read,
        path: &Path,
        columns: &[String],
    ) -> Result<Self> {
        let err = |line: u64, field: Option<&str>, message: String| Error::Data {
            path: path.to_path_buf(),
            line: Some(line),
            row: None,
            column: field.map(str::to_string),
            setting: None,
            message,
        };
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(reader);
        let mut records = rdr.records();
        let csv_err = |e: csv::Error| {
            let line = e.position().map_or(1, |p| p.line());
            match e.into_kind() {
                csv::ErrorKind::Io(io) => Error::io(path, io),
                csv::ErrorKind::Utf8 { .. } => err(line, None, "invalid UTF-8".into()),
                other => err(line, None, format!("{other:?}")),
            }
        };
        let header = match records.next() {
            Some(h) => h.map_err(csv_err)?,
            None => {
                return Err(Error::Data {
                    path: path.to_path_buf(),
                    line: None,
                    row: None,
                    column: None,
                    setting: None,
                    message: "is empty: a reasons file starts with the header column,code,text"
                        .into(),
                })
            }
        };
        let header_line = header.position().map_or(1, |p| p.line());
        // Where each of column, code, text is in a row.
        let mut at = [usize::MAX; 3];
        for (i, name) in header.iter().enumerate() {
            match FIELDS.iter().position(|f| f.eq_ignore_ascii_case(name)) {
                Some(k) if at[k] == usize::MAX => at[k] = i,
                Some(_) => return Err(err(header_line, None, format!("the header names {name:?} twice"))),
                None => {
                    return Err(err(
                        header_line,
                        None,
                        format!("the header has {name:?}; a reasons file has exactly the fields column,code,text"),
                    ))
                }
            }
        }
        if let Some(k) = at.iter().position(|&i| i == usize::MAX) {
            return Err(err(
                header_line,
                None,
                format!(
                    "the header lacks {:?}; a reasons file has exactly the fields column,code,text",
                    FIELDS[k]
                ),
            ));
        }

        // Per model column: its code's index and the line that gave it.
        let mut given: Vec<Option<(usize, u64)>> = vec![None; columns.len()];
        let mut codes: Vec<ReasonCode> = Vec::new();
        // Code -> (index in `codes`, line of its first use).
        let mut code_at: HashMap<String, (usize, u64)> = HashMap::new();
        for rec in records {
            let rec = rec.map_err(csv_err)?;
            let line = rec.position().map_or(0, |p| p.line());
            if rec.iter().all(str::is_empty) {
                continue;
            }
            if rec.len() != header.len() {
                return Err(err(
                    line,
                    None,
                    format!(
                        "has {} fields and the header {}: quote a text that holds a comma",
                        rec.len(),
                        header.len()
                    ),
                ));
            }
            let [column, code, text] = at.map(|i| rec.get(i).unwrap_or(""));
            for (field, value) in FIELDS.iter().zip([column, code, text]) {
                if value.is_empty() {
                    return Err(err(line, Some(field), format!("the {field} is empty")));
                }
            }
            let Some(j) = find(columns, column) else {
                let near = near_matches(columns, column);
                let hint = if near.is_empty() {
                    format!("the model's input columns are: {}", quoted(columns))
                } else {
                    format!("did you mean {}?", quoted(&near))
                };
                return Err(err(
                    line,
                    Some("column"),
                    format!("{column:?} is not one of the model's input columns; {hint}"),
                ));
            };
            if let Some((_, first)) = given[j] {
                return Err(err(
                    line,
                    Some("column"),
                    format!("{:?} already has a reason, on line {first}", columns[j]),
                ));
            }
            let k = match code_at.get(code) {
                Some(&(k, first)) => {
                    if codes[k].text != text {
                        return Err(err(
                            line,
                            Some("text"),
                            format!(
                                "code {code:?} has the text {:?} on line {first} and {text:?} here: columns that share a code share its text",
                                codes[k].text
                            ),
                        ));
                    }
                    k
                }
                None => {
                    code_at.insert(code.to_string(), (codes.len(), line));
                    codes.push(ReasonCode {
                        code: code.to_string(),
                        text: text.to_string(),
                        columns: Vec::new(),
                    });
                    codes.len() - 1
                }
            };
            given[j] = Some((k, line));
        }
        let mut uncovered = Vec::new();
        let mut of_column = Vec::with_capacity(columns.len());
        for (j, g) in given.iter().enumerate() {
            let k = match g {
                Some((k, _)) => *k,
                None => {
                    // Reported under its own name, which must not be a code the file
                    // gives other columns: one code would then come twice, with two
                    // texts.
                    if let Some(&(_, first)) = code_at.get(columns[j].as_str()) {
                        return Err(err(
                            first,
                            Some("code"),
                            format!(
                                "code {:?} is also the name of the model's column {:?}, which the file gives no line, so it would report under that name too: give {:?} a line, or this code another name",
                                columns[j], columns[j], columns[j]
                            ),
                        ));
                    }
                    uncovered.push(columns[j].clone());
                    codes.push(ReasonCode {
                        code: columns[j].clone(),
                        text: columns[j].clone(),
                        columns: Vec::new(),
                    });
                    codes.len() - 1
                }
            };
            codes[k].columns.push(columns[j].clone());
            of_column.push(k);
        }
        Ok(ReasonCodes {
            codes,
            of_column,
            uncovered,
        })
    }

    /// The codes: the file's, in the order it first names them, then one per uncovered
    /// column.
    pub fn codes(&self) -> &[ReasonCode] {
        &self.codes
    }

    /// The model columns the file gives no reason (each reported under its own name).
    pub fn uncovered(&self) -> &[String] {
        &self.uncovered
    }

    /// A row of per-column attributions (model column order) summed per code, indexed as
    /// [`codes`](Self::codes). The sum over codes is the sum over columns.
    pub fn by_code(&self, row: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0f64; self.codes.len()];
        for (&k, &a) in self.of_column.iter().zip(row) {
            out[k] += a;
        }
        out
    }

    /// The `top` adverse reasons of a row of per-column attributions: codes whose summed
    /// contribution is above zero, largest first (ties keep code order). A row whose
    /// columns all lowered the score, or left it alone, has none.
    pub fn top(&self, row: &[f64], top: usize) -> Vec<CodedReason> {
        let sums = self.by_code(row);
        let mut idx: Vec<usize> = (0..sums.len()).filter(|&k| sums[k] > 0.0).collect();
        idx.sort_by(|&a, &b| sums[b].total_cmp(&sums[a]).then(a.cmp(&b)));
        idx.into_iter()
            .take(top)
            .map(|k| CodedReason {
                code: self.codes[k].code.clone(),
                text: self.codes[k].text.clone(),
                columns: self.codes[k].columns.clone(),
                contribution: sums[k],
            })
            .collect()
    }
}

/// The model column a file row names: exactly, else the one that matches ignoring ASCII
/// case.
fn find(columns: &[String], name: &str) -> Option<usize> {
    if let Some(j) = columns.iter().position(|c| c == name) {
        return Some(j);
    }
    let mut hits = columns
        .iter()
        .enumerate()
        .filter(|(_, c)| c.eq_ignore_ascii_case(name));
    match (hits.next(), hits.next()) {
        (Some((j, _)), None) => Some(j),
        _ => None,
    }
}

/// Up to five columns within two edits of `name` (ignoring case), or containing it.
fn near_matches(columns: &[String], name: &str) -> Vec<String> {
    let lower = name.to_lowercase();
    let mut scored: Vec<(usize, &String)> = columns
        .iter()
        .filter_map(|c| {
            let cl = c.to_lowercase();
            let d = edit_distance(&cl, &lower);
            if d <= 2 {
                Some((d, c))
            } else if lower.len() >= 3 && (cl.contains(&lower) || lower.contains(&cl)) {
                Some((3, c))
            } else {
                None
            }
        })
        .collect();
    scored.sort_by_key(|&(d, _)| d);
    scored.into_iter().take(5).map(|(_, c)| c.clone()).collect()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, &cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + (ca != cb) as usize)
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("{n:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<String> {
        ["LIMIT_BAL", "SEX", "PAY_0", "PAY_2"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn parse(text: &str) -> Result<ReasonCodes> {
        ReasonCodes::from_reader(text.as_bytes(), Path::new("r.csv"), &cols())
    }

    fn message(text: &str) -> (Option<u64>, Option<String>, String) {
        match parse(text) {
            Err(Error::Data {
                line,
                column,
                message,
                ..
            }) => (line, column, message),
            other => panic!("expected a data error, got {other:?}"),
        }
    }

    #[test]
    fn shared_codes_sum_and_uncovered_columns_stand_alone() {
        let r = parse(
            "# a comment\ncode,column,text\nR1,pay_0,\"Late, recently\"\nR1,PAY_2,\"Late, recently\"\nR2,LIMIT_BAL,Low limit\n",
        )
        .unwrap();
        assert_eq!(r.uncovered(), ["SEX"]);
        let codes: Vec<&str> = r.codes().iter().map(|c| c.code.as_str()).collect();
        assert_eq!(codes, ["R1", "R2", "SEX"]);
        assert_eq!(r.codes()[0].columns, ["PAY_0", "PAY_2"]);
        assert_eq!(r.codes()[0].text, "Late, recently");
        // Columns LIMIT_BAL, SEX, PAY_0, PAY_2.
        let row = [0.1, 0.05, 0.2, -0.05];
        assert_eq!(r.by_code(&row), [0.15000000000000002, 0.1, 0.05]);
        let top = r.top(&row, 2);
        assert_eq!(top.len(), 2);
        assert_eq!((top[0].code.as_str(), top[1].code.as_str()), ("R1", "R2"));
        // The adverse-only rule: a code whose columns lowered the score in sum is no
        // reason, and a row that only lowered it has none.
        let top = r.top(&[0.01, 0.0, 0.2, -0.3], 3);
        assert_eq!(top.len(), 1);
        assert_eq!(top[0].code, "R2");
        assert!(r.top(&[-0.1, -0.2, 0.0, -0.01], 3).is_empty());
    }

    #[test]
    fn bad_files_name_the_line_and_field() {
        let (line, col, msg) = message("column,code,text\nPAY_1,R1,Late\n");
        assert_eq!((line, col.as_deref()), (Some(2), Some("column")));
        assert!(
            msg.contains("\"PAY_1\"") && msg.contains("\"PAY_0\""),
            "{msg}"
        );
        let (line, _, msg) = message("column,code,text\nSEX,R1,a\nPAY_0,R2,b\nsex,R3,c\n");
        assert_eq!(line, Some(4));
        assert!(msg.contains("line 2"), "{msg}");
        let (line, col, _) = message("column,code,text\nSEX,,a\n");
        assert_eq!((line, col.as_deref()), (Some(2), Some("code")));
        let (line, col, _) = message("column,code,text\nSEX,R1,\n");
        assert_eq!((line, col.as_deref()), (Some(2), Some("text")));
        let (line, col, msg) = message("column,code,text\nSEX,R1,a\nPAY_0,R1,b\n");
        assert_eq!((line, col.as_deref()), (Some(3), Some("text")));
        assert!(msg.contains("line 2"), "{msg}");
        let (line, _, msg) = message("column,reason\nSEX,a\n");
        assert_eq!(line, Some(1));
        assert!(msg.contains("column,code,text"), "{msg}");
        let (line, _, _) = message("column,code,text\nSEX,R1,a,b\n");
        assert_eq!(line, Some(2));
        // A code named as a column the file leaves to report under its own name.
        let (line, col, msg) = message("column,code,text\nSEX,R1,a\nPAY_0,PAY_2,Late\n");
        assert_eq!((line, col.as_deref()), (Some(3), Some("code")));
        assert!(msg.contains("\"PAY_2\""), "{msg}");
        // Given a line of its own, the column may share that code.
        assert!(parse("column,code,text\nPAY_0,PAY_2,Late\nPAY_2,PAY_2,Late\n").is_ok());
        assert!(matches!(parse(""), Err(Error::Data { line: None, .. })));
    }

    #[test]
    fn near_matches_by_edits_and_containment() {
        let c = cols();
        assert_eq!(near_matches(&c, "PAY_1"), ["PAY_0", "PAY_2"]);
        assert_eq!(near_matches(&c, "limit"), ["LIMIT_BAL"]);
        assert!(near_matches(&c, "EDUCATION").is_empty());
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
