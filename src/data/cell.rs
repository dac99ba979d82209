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

/// What a non-missing cell read as a number holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum NumberCell {
    /// A finite f32.
    Number(f32),
    /// A number beyond f32's range (about ±3.4e38): `1e308`, `-1e39`, `inf`, `-Infinity`.
    /// A numeric column reads it as missing, never as ±`f32::MAX`: a clamped value would
    /// sit 30 orders of magnitude away from the rest and swamp a standardized feature.
    OutOfRange,
    /// Text, or a number written in a way that is not read (`1,5`, `12a`, `1.000,5`).
    NotNumber,
}

/// Reads a (trimmed, non-missing) cell as a number: what Rust's float parser accepts
/// (`12`, `-3.5`, `1e3`, `+7`, `inf`), and thousands separators where the grouping is
/// unambiguous (see [`strip_thousands`]).
pub fn read_number(cell: &[u8]) -> NumberCell {
    // Every number starts with a digit, a sign, a point or the `i` of `inf`: skip the
    // parser for other text.
    let Some(&first) = cell.first() else {
        return NumberCell::NotNumber;
    };
    if !(first.is_ascii_digit() || matches!(first, b'-' | b'+' | b'.' | b'i' | b'I')) {
        return NumberCell::NotNumber;
    }
    let Ok(text) = std::str::from_utf8(cell) else {
        return NumberCell::NotNumber;
    };
    let parsed = if text.contains(',') {
        strip_thousands(text).and_then(|t| t.parse::<f32>().ok())
    } else {
        text.parse::<f32>().ok()
    };
    match parsed {
        Some(v) if v.is_finite() => NumberCell::Number(v),
        Some(v) if v.is_infinite() => NumberCell::OutOfRange,
        _ => NumberCell::NotNumber,
    }
}

/// A finite number, or `None` (see [`read_number`]): `inf` and values too large for an
/// f32 are `None` here, [`NumberCell::OutOfRange`] there.
pub fn parse_number(cell: &[u8]) -> Option<f32> {
    match read_number(cell) {
        NumberCell::Number(v) => Some(v),
        _ => None,
    }
}

/// `text` without its thousands separators, when they are unambiguous: an optional sign,
/// one to three digits, then one or more groups of a comma and exactly three digits, then
/// at most one point with digits after it (`1,000`, `-1,234,567.5`). Anything else with a
/// comma (`1,5`, `12,34`, `1234,567`, `1,000,00`, `1,000.5.5`) is `None`: a decimal comma
/// or a typo, not a number to guess at.
pub fn strip_thousands(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let sign = usize::from(matches!(b.first(), Some(b'-' | b'+')));
    let digits = |from: usize| b[from..].iter().take_while(|c| c.is_ascii_digit()).count();
    let lead = digits(sign);
    if !(1..=3).contains(&lead) {
        return None;
    }
    let mut i = sign + lead;
    let mut groups = 0;
    while b.get(i) == Some(&b',') {
        if digits(i + 1) != 3 {
            return None;
        }
        i += 4;
        groups += 1;
    }
    if groups == 0 {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1 + digits(i + 1);
    }
    (i == b.len()).then(|| text.replace(',', ""))
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
        assert_eq!(parse_number(b"1,000"), Some(1000.0));
        assert_eq!(parse_number(b"-1,234,567.5"), Some(-1_234_567.5));
        assert_eq!(parse_number(b"+12,345."), Some(12_345.0));
        for bad in [
            &b""[..],
            b"abc",
            b"inf",
            b"-inf",
            b"NaN",
            b"1e300",
            b"1,5",
            b"12,34",
            b"1234,567",
            b"1,000,00",
            b"1,000.5.5",
            b",100",
            b"1,000e3",
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
    fn out_of_range_is_not_text() {
        for big in ["1e308", "-1e39", "inf", "-inf", "+Infinity", "INF"] {
            assert_eq!(read_number(big.as_bytes()), NumberCell::OutOfRange, "{big}");
        }
        for text in ["abc", "info", "1,5", "12a", "-"] {
            assert_eq!(
                read_number(text.as_bytes()),
                NumberCell::NotNumber,
                "{text}"
            );
        }
        assert_eq!(read_number(b"1e-50"), NumberCell::Number(0.0));
        assert_eq!(
            read_number(b"3.4e38"),
            NumberCell::Number("3.4e38".parse().unwrap())
        );
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
        assert_eq!(key(b"1,000"), Some("1000".into()));
        assert_eq!(key(b"inf"), Some("inf".into()));
        assert_eq!(key(b"NA"), None);
        assert_eq!(key(b""), None);
        assert!(category_key(b"\xc3\x28").is_err());
    }
}
