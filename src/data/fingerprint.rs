//! Row fingerprints: a 64-bit FNV-1a hash of one data row's raw cells, so that the rows
//! a model held out in training can be found again in a file by their content, whatever
//! their order and whatever rows were added since.
//!
//! A row's fingerprint covers every cell of the record, each with its column's header
//! name, in the order of the names (so moving a column keeps the fingerprints; renaming
//! one or changing any cell, the target's included, changes them). Cells are hashed as
//! the CSV reader gives them: unquoted, line endings gone, nothing trimmed. A Parquet
//! row is hashed from the text cells `data::parquet` renders (the text pandas' `to_csv`
//! writes), so a table saved both ways fingerprints alike; that module says where
//! pandas' text can differ (timestamps).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::HashMap;

use crate::model_io::{fnv1a64_extend, FNV1A64_START};

/// The order in which [`row_fingerprint`] visits a file's columns: by header name.
pub(crate) fn fingerprint_order(names: &[String]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..names.len()).collect();
    order.sort_by(|&a, &b| names[a].cmp(&names[b]));
    order
}

/// The fingerprint of one record of a file with header `names`, visited in `order`
/// ([`fingerprint_order`]). Each name and cell is hashed after its length, so no two
/// different rows are told apart only by where one cell ends.
pub(crate) fn row_fingerprint(names: &[String], order: &[usize], rec: &csv::ByteRecord) -> u64 {
    let piece = |h: u64, bytes: &[u8]| {
        let h = fnv1a64_extend(h, &(bytes.len() as u64).to_le_bytes());
        fnv1a64_extend(h, bytes)
    };
    order.iter().fold(FNV1A64_START, |h, &j| {
        let h = piece(h, names[j].as_bytes());
        piece(h, rec.get(j).unwrap_or(b""))
    })
}

/// The fingerprints of a set of rows (the validation rows of a training), sorted. Saved
/// in config.json as one string of 16 hex digits per row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RowFingerprints(Vec<u64>);

impl RowFingerprints {
    /// The set of `fingerprints` (one per row; equal rows give equal ones, kept each).
    pub fn new(mut fingerprints: Vec<u64>) -> Self {
        fingerprints.sort_unstable();
        RowFingerprints(fingerprints)
    }

    /// Rows in the set.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set holds no row.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A matcher that finds each row of the set once among the rows shown to it.
    pub fn matcher(&self) -> RowMatcher {
        let mut left = HashMap::with_capacity(self.0.len());
        for &f in &self.0 {
            *left.entry(f).or_insert(0usize) += 1;
        }
        RowMatcher {
            left,
            not_found: self.0.len(),
        }
    }
}

/// Finds the rows of a [`RowFingerprints`] among a file's rows, each at most once (a set
/// with two equal rows matches two rows: their scores are equal too, so which two does not
/// matter).
#[derive(Clone, Debug)]
pub struct RowMatcher {
    left: HashMap<u64, usize>,
    not_found: usize,
}

impl RowMatcher {
    /// Whether a row with `fingerprint` is one of the set not matched yet; if so, it is
    /// matched now.
    pub fn take(&mut self, fingerprint: u64) -> bool {
        match self.left.get_mut(&fingerprint) {
            Some(n) if *n > 0 => {
                *n -= 1;
                self.not_found -= 1;
                true
            }
            _ => false,
        }
    }

    /// Rows of the set not matched so far.
    pub fn not_found(&self) -> usize {
        self.not_found
    }
}

impl Serialize for RowFingerprints {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let mut hex = String::with_capacity(16 * self.0.len());
        for f in &self.0 {
            hex.push_str(&format!("{f:016x}"));
        }
        s.serialize_str(&hex)
    }
}

impl<'de> Deserialize<'de> for RowFingerprints {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        let hex = String::deserialize(d)?;
        if hex.len() % 16 != 0 || !hex.is_ascii() {
            return Err(D::Error::custom(
                "row fingerprints: not 16 hex digits per row",
            ));
        }
        hex.as_bytes()
            .chunks(16)
            .map(|c| {
                std::str::from_utf8(c)
                    .ok()
                    .and_then(|c| u64::from_str_radix(c, 16).ok())
                    .ok_or_else(|| D::Error::custom("row fingerprints: not hex digits"))
            })
            .collect::<std::result::Result<Vec<u64>, _>>()
            .map(RowFingerprints::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(cells: &[&str]) -> csv::ByteRecord {
        csv::ByteRecord::from(cells.to_vec())
    }

    #[test]
    fn fingerprints_follow_content_not_column_order() {
        let names: Vec<String> = ["a", "b", "y"].map(String::from).to_vec();
        let moved: Vec<String> = ["y", "a", "b"].map(String::from).to_vec();
        let (o1, o2) = (fingerprint_order(&names), fingerprint_order(&moved));
        let f = row_fingerprint(&names, &o1, &rec(&["1", "x", "0"]));
        assert_eq!(f, row_fingerprint(&moved, &o2, &rec(&["0", "1", "x"])));
        assert_ne!(f, row_fingerprint(&names, &o1, &rec(&["1", "x", "1"])));
        // Where one cell ends counts.
        assert_ne!(
            row_fingerprint(&names, &o1, &rec(&["1", "x0", ""])),
            row_fingerprint(&names, &o1, &rec(&["1", "x", "0"]))
        );
    }

    #[test]
    fn a_set_round_trips_and_matches_each_row_once() {
        let set = RowFingerprints::new(vec![7, u64::MAX, 7, 0x1234]);
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json.len(), 2 + 4 * 16);
        assert_eq!(serde_json::from_str::<RowFingerprints>(&json).unwrap(), set);
        assert!(serde_json::from_str::<RowFingerprints>("\"12\"").is_err());
        let mut m = set.matcher();
        assert!(m.take(7) && m.take(7) && !m.take(7) && !m.take(8));
        assert_eq!(m.not_found(), 2);
    }
}
