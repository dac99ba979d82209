//! The target: which of its two values is the positive class (a default).

use serde::{Deserialize, Serialize};

use super::cell::category_key;
use crate::error::Setting;

/// Two-valued spellings whose positive class is known, as (positive, negative), compared
/// ignoring case. `2`/`1` is the Statlog German credit coding (1 = good, 2 = bad).
const KNOWN_PAIRS: [(&str, &str); 7] = [
    ("1", "0"),
    ("true", "false"),
    ("yes", "no"),
    ("y", "n"),
    ("t", "f"),
    ("bad", "good"),
    ("2", "1"),
];

/// Why a target cannot be read as 0/1, and the caller's setting it concerns when the
/// fix is a setting (naming the positive class).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetProblem {
    /// What is wrong, in words.
    pub message: String,
    /// The setting that would fix it, or that the data contradicts.
    pub about: Option<Setting>,
}

impl TargetProblem {
    fn in_data(message: impl Into<String>) -> Self {
        TargetProblem {
            message: message.into(),
            about: None,
        }
    }
}

/// How target cells map to 0/1. Values are compared by their category names (so `1`,
/// `1.0` and `01` are one value) ignoring case.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetEncoding {
    /// The value that means 1 (default), as a category name.
    pub positive: String,
    /// The value that means 0.
    pub negative: String,
}

impl TargetEncoding {
    /// Chooses the positive class from the target's distinct values and their counts
    /// (missing excluded). `positive` is the user's `--positive`. The error lists what was
    /// found: one class only, more than two values, an unknown pair without `--positive`,
    /// or a `--positive` that is not one of the two values.
    pub fn infer(
        values: &[(String, usize)],
        positive: Option<&str>,
    ) -> Result<Self, TargetProblem> {
        let values = merge_case(values);
        let found = describe(&values);
        match values.len() {
            0 => {
                return Err(TargetProblem::in_data(
                    "the target column has no values (every cell is missing)",
                ))
            }
            1 => {
                return Err(TargetProblem::in_data(format!(
                    "the target has one class only: {found}; it needs two"
                )))
            }
            2 => {}
            n => {
                return Err(TargetProblem::in_data(format!(
                    "the target has {n} distinct values, it must have two: {found}"
                )))
            }
        }
        let (a, b) = (values[0].0.as_str(), values[1].0.as_str());
        if let Some(p) = positive {
            let p = key_of(p.trim());
            return if same(&p, a) {
                Ok(TargetEncoding {
                    positive: a.into(),
                    negative: b.into(),
                })
            } else if same(&p, b) {
                Ok(TargetEncoding {
                    positive: b.into(),
                    negative: a.into(),
                })
            } else {
                Err(TargetProblem {
                    message: format!(
                        "the positive class {p:?} is not a value of the target, which has {found}"
                    ),
                    about: Some(Setting::Positive),
                })
            };
        }
        for (pos, neg) in KNOWN_PAIRS {
            if same(pos, a) && same(neg, b) {
                return Ok(TargetEncoding {
                    positive: a.into(),
                    negative: b.into(),
                });
            }
            if same(pos, b) && same(neg, a) {
                return Ok(TargetEncoding {
                    positive: b.into(),
                    negative: a.into(),
                });
            }
        }
        Err(TargetProblem {
            message: format!(
                "the target has {found}: say which is the positive class (the default)"
            ),
            about: Some(Setting::Positive),
        })
    }

    /// 1.0 for the positive value, 0.0 for the negative one, `None` for anything else
    /// (compared as category names, ignoring case).
    pub fn label(&self, key: &str) -> Option<f32> {
        if same(key, &self.positive) {
            Some(1.0)
        } else if same(key, &self.negative) {
            Some(0.0)
        } else {
            None
        }
    }

    /// [`label`](Self::label) of a raw cell: NaN for a missing cell, `None` for a value that
    /// is neither class (or not UTF-8).
    pub fn label_cell(&self, cell: &[u8]) -> Option<f32> {
        match category_key(cell) {
            Ok(None) => Some(f32::NAN),
            Ok(Some(k)) => self.label(&k),
            Err(_) => None,
        }
    }
}

fn same(a: &str, b: &str) -> bool {
    a == b || a.to_lowercase() == b.to_lowercase()
}

/// The category name of a user-typed value (`1.0` -> `1`).
fn key_of(s: &str) -> String {
    match category_key(s.as_bytes()) {
        Ok(Some(k)) => k.into_owned(),
        _ => s.to_string(),
    }
}

/// Values that differ only in case are one value (its most frequent spelling names it);
/// the result is ordered by count, most frequent first, then by name.
fn merge_case(values: &[(String, usize)]) -> Vec<(String, usize)> {
    let mut sorted: Vec<&(String, usize)> = values.iter().filter(|(_, n)| *n > 0).collect();
    sorted.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    let mut out: Vec<(String, usize)> = Vec::new();
    for (v, n) in sorted {
        match out.iter_mut().find(|(o, _)| same(o, v)) {
            Some(slot) => slot.1 += n,
            None => out.push((v.clone(), *n)),
        }
    }
    out.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    out
}

/// `"0" (23364 rows), "1" (6636 rows)`, the first ten values.
fn describe(values: &[(String, usize)]) -> String {
    let mut parts: Vec<String> = values
        .iter()
        .take(10)
        .map(|(v, n)| format!("{v:?} ({n} rows)"))
        .collect();
    if values.len() > 10 {
        parts.push(format!("and {} more", values.len() - 10));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(v: &[(&str, usize)]) -> Vec<(String, usize)> {
        v.iter().map(|(s, n)| (s.to_string(), *n)).collect()
    }

    fn pos(v: &[(&str, usize)], positive: Option<&str>) -> Result<String, String> {
        TargetEncoding::infer(&vals(v), positive)
            .map(|e| e.positive)
            .map_err(|p| p.message)
    }

    #[test]
    fn known_spellings() {
        assert_eq!(pos(&[("0", 5), ("1", 2)], None).unwrap(), "1");
        assert_eq!(pos(&[("1", 5), ("0", 9)], None).unwrap(), "1");
        assert_eq!(pos(&[("False", 5), ("True", 2)], None).unwrap(), "True");
        assert_eq!(pos(&[("No", 5), ("Yes", 2)], None).unwrap(), "Yes");
        assert_eq!(pos(&[("n", 5), ("y", 2)], None).unwrap(), "y");
        assert_eq!(pos(&[("good", 5), ("bad", 2)], None).unwrap(), "bad");
        assert_eq!(pos(&[("1", 700), ("2", 300)], None).unwrap(), "2");
        assert_eq!(pos(&[("T", 1), ("F", 3)], None).unwrap(), "T");
    }

    #[test]
    fn positive_flag() {
        assert_eq!(
            pos(&[("paid", 5), ("charged off", 2)], Some("Charged Off")).unwrap(),
            "charged off"
        );
        assert_eq!(pos(&[("0", 5), ("1", 2)], Some("0")).unwrap(), "0");
        assert_eq!(pos(&[("0", 5), ("1", 2)], Some("1.0")).unwrap(), "1");
        let e = pos(&[("paid", 5), ("charged off", 2)], None).unwrap_err();
        assert!(
            e.contains("the positive class") && e.contains("\"paid\" (5 rows)"),
            "{e}"
        );
        let e = pos(&[("paid", 5), ("late", 2)], Some("default")).unwrap_err();
        assert!(e.contains("\"default\"") && e.contains("\"late\""), "{e}");
    }

    #[test]
    fn wrong_class_counts() {
        let e = pos(&[("0", 5)], None).unwrap_err();
        assert!(
            e.contains("one class") && e.contains("\"0\" (5 rows)"),
            "{e}"
        );
        let e = pos(&[("0", 5), ("1", 2), ("2", 1)], None).unwrap_err();
        assert!(
            e.contains("3 distinct") && e.contains("\"2\" (1 rows)"),
            "{e}"
        );
        assert!(pos(&[], None).unwrap_err().contains("no values"));
        // Case variants are one value.
        assert_eq!(
            pos(&[("Yes", 3), ("yes", 1), ("No", 4)], None).unwrap(),
            "Yes"
        );
    }

    #[test]
    fn labels() {
        let e = TargetEncoding {
            positive: "Yes".into(),
            negative: "No".into(),
        };
        assert_eq!(e.label("YES"), Some(1.0));
        assert_eq!(e.label("no"), Some(0.0));
        assert_eq!(e.label("maybe"), None);
        assert_eq!(e.label_cell(b"Yes"), Some(1.0));
        assert!(e.label_cell(b"NA").unwrap().is_nan());
        assert_eq!(e.label_cell(b"x"), None);
        assert_eq!(e.label_cell(b"\xff"), None);
        let n = TargetEncoding {
            positive: "1".into(),
            negative: "0".into(),
        };
        assert_eq!(n.label_cell(b"1.0"), Some(1.0));
        assert_eq!(n.label_cell(b"0"), Some(0.0));
    }
}
