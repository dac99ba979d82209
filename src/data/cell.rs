//! What one CSV cell means: missing, a number, or a category. Training and prediction both
//! read cells through these functions, so a value is understood the same way in both.

use std::borrow::Cow;

/// Spellings of a missing value, matched after trimming and ignoring ASCII case: the empty
/// cell, `NA`, `N/A`, `#N/A` (Excel), `NaN`, `null`, `?` (UCI files).
const MISSING: [&[u8]; 6] = [b"na", b"n/a", b"#n/a", b"nan", b"null", b"?"];

/// Whether a (trimmed) cell is a missing value.
pub fn is_missing(cell: &[u8]) -> bool {
    cell.is_empty() || (cell.len() <= 4 && MISSING.iter().any(|m| m.eq_ignore_ascii_case(cell)))
}

/// A finite number, or `None`. Accepts what Rust's float parser accepts (`12`, `-3.5`,
/// `1e3`, `+7`); `inf` and values too large for an f32 are not numbers.
pub fn parse_number(cell: &[u8]) -> Option<f32> {
    // Every number starts with a digit, a sign or a point: skip the parser for text.
    let first = *cell.first()?;
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.')) {
        return None;
    }
    let v: f32 = std::str::from_utf8(cell).ok()?.parse().ok()?;
    v.is_finite().then_some(v)
}

/// The name under which a category value is known: `None` for a missing cell, the number
/// in Rust's shortest form for a numeric cell (so `2`, `2.0` and `02` are one category,
/// in training and at prediction alike), else the text itself. `Err` for invalid UTF-8.
pub fn category_key(cell: &[u8]) -> Result<Option<Cow<'_, str>>, std::str::Utf8Error> {
    if is_missing(cell) {
        return Ok(None);
    }
    if let Some(v) = parse_number(cell) {
        return Ok(Some(Cow::Owned(number_key(v))));
    }
    std::str::from_utf8(cell).map(|s| Some(Cow::Borrowed(s)))
}

/// The category name of a number (see [`category_key`]); `-0` is `0`.
pub fn number_key(v: f32) -> String {
    if v == 0.0 {
        "0".to_string()
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_spellings() {
        for m in [
            "", "NA", "na", "N/A", "n/a", "#N/A", "NaN", "nan", "NULL", "null", "?",
        ] {
            assert!(is_missing(m.as_bytes()), "{m}");
        }
        for v in ["0", "N", "none", "NAN1", "??", "-", "Nab"] {
            assert!(!is_missing(v.as_bytes()), "{v}");
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"12"), Some(12.0));
        assert_eq!(parse_number(b"-3.5"), Some(-3.5));
        assert_eq!(parse_number(b"+7"), Some(7.0));
        assert_eq!(parse_number(b".5"), Some(0.5));
        assert_eq!(parse_number(b"1e3"), Some(1000.0));
        for bad in [
            &b""[..],
            b"abc",
            b"inf",
            b"-inf",
            b"NaN",
            b"1e300",
            b"1,5",
            b"\xff",
            b"12a",
            b"-",
        ] {
            assert_eq!(
                parse_number(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn category_keys() {
        let key = |b: &[u8]| category_key(b).unwrap().map(|c| c.into_owned());
        assert_eq!(key(b"A11"), Some("A11".into()));
        assert_eq!(key(b"2"), Some("2".into()));
        assert_eq!(key(b"2.0"), Some("2".into()));
        assert_eq!(key(b"02"), Some("2".into()));
        assert_eq!(key(b"-0"), Some("0".into()));
        assert_eq!(key(b"0.5"), Some("0.5".into()));
        assert_eq!(key(b"NA"), None);
        assert_eq!(key(b""), None);
        assert!(category_key(b"\xc3\x28").is_err());
    }
}
