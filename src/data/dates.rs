//! The date range of a column (`train --date COL`), for the model card: every date must
//! be written year first, so that the earliest and latest are found without guessing
//! whether 03/04 is March or April.

use super::source::Source;
use crate::error::{Error, Result, Setting};
use std::path::Path;

/// The dates a column spans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DateRange {
    /// The column.
    pub column: String,
    /// The earliest date, as written in the file.
    pub first: String,
    /// The latest date, as written.
    pub last: String,
    /// Rows with no date (an empty cell).
    pub missing: usize,
}

/// A date written year first: `2024-03-31`, `2024/03/31`, `20240331`, `2024-03` or
/// `2024`, with anything after a `T` or a space (a time) ignored. Returns (year, month,
/// day), a missing month or day as 0, or `None` when the text is not such a date.
pub fn parse_year_first(text: &str) -> Option<(u32, u32, u32)> {
    let date = text.trim().split(['T', ' ']).next()?;
    let parts: Vec<&str> = if date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) {
        vec![&date[..4], &date[4..6], &date[6..]]
    } else {
        date.split(['-', '/', '.']).collect()
    };
    let number = |s: &str, width: std::ops::RangeInclusive<usize>| {
        (width.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<u32>().ok())
            .flatten()
    };
    let year = number(parts.first()?, 4..=4)?;
    let month = match parts.get(1) {
        Some(m) => number(m, 1..=2).filter(|m| (1..=12).contains(m))?,
        None => 0,
    };
    let day = match parts.get(2) {
        Some(d) => number(d, 1..=2).filter(|d| (1..=31).contains(d))?,
        None => 0,
    };
    (parts.len() <= 3 && (day == 0 || month > 0)).then_some((year, month, day))
}

/// A date as (year, month, day) and as written.
type Dated = ((u32, u32, u32), String);

/// The date `days` after 1970-01-01 as `YYYY-MM-DD` (proleptic Gregorian; the
/// civil-from-days algorithm of H. Hinnant).
pub fn date_of_days(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The earliest and latest dates of `column` in the data file `path` (CSV or Parquet,
/// whose dates and timestamps read as year-first text). Refuses a column
/// the file does not have, a cell that is not a date written year first (naming its
/// line), and a column without a date.
pub fn date_range(path: &Path, column: &str) -> Result<DateRange> {
    let mut src = Source::open(path)?;
    let Some(col) = src.names().iter().position(|n| n == column) else {
        return Err(Error::invalid(
            Setting::Date,
            format!(
                "{} has no column {column:?} ({})",
                path.display(),
                src.listing()
            ),
        ));
    };
    let mut rec = csv::ByteRecord::new();
    // The earliest and latest so far, each parsed and as written.
    let mut range: Option<(Dated, Dated)> = None;
    let mut missing = 0;
    while let Some(line) = src.next(&mut rec)? {
        let cell = String::from_utf8_lossy(rec.get(col).unwrap_or_default());
        let cell = cell.trim();
        if cell.is_empty() {
            missing += 1;
            continue;
        }
        let Some(date) = parse_year_first(cell) else {
            return Err(src
                .err(
                    line,
                    col,
                    format!("{cell:?} is not a date written year first (e.g. 2024-03-31, 2024/03/31, 20240331, 2024-03)"),
                )
                .about(Setting::Date));
        };
        let here = (date, cell.to_string());
        match &mut range {
            None => range = Some((here.clone(), here)),
            Some((first, last)) => {
                if here.0 < first.0 {
                    *first = here;
                } else if here.0 > last.0 {
                    *last = here;
                }
            }
        }
    }
    let Some(((_, first), (_, last))) = range else {
        return Err(Error::invalid(
            Setting::Date,
            format!("the column {column:?} of {} holds no date", path.display()),
        ));
    };
    Ok(DateRange {
        column: column.to_string(),
        first,
        last,
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_first_dates_parse_and_others_do_not() {
        assert_eq!(parse_year_first("2024-03-31"), Some((2024, 3, 31)));
        assert_eq!(parse_year_first("2024/3/1"), Some((2024, 3, 1)));
        assert_eq!(parse_year_first("20240331"), Some((2024, 3, 31)));
        assert_eq!(parse_year_first("2024-03"), Some((2024, 3, 0)));
        assert_eq!(parse_year_first("2024"), Some((2024, 0, 0)));
        assert_eq!(
            parse_year_first("2024-03-31T12:00:00Z"),
            Some((2024, 3, 31))
        );
        assert_eq!(parse_year_first("2024-03-31 12:00"), Some((2024, 3, 31)));
        for bad in [
            "03/31/2024",
            "31.03.2024",
            "2024-13-01",
            "2024-02-32",
            "yesterday",
            "2024-03-31-1",
            "24-03-31",
            "",
        ] {
            assert_eq!(parse_year_first(bad), None, "{bad:?}");
        }
    }
}
