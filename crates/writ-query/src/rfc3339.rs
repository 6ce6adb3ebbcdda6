//! RFC 3339 timestamps in UTC with milliseconds (`2026-12-24T18:34:05.123Z`): the wire form
//! of `recordedAt`, for the server's event metadata and for read models that show when
//! something happened (the server re-exports this module).
//!
//! Small enough to own rather than pull in a date crate: the engine stores milliseconds
//! since the Unix epoch and the wire needs exactly one format.

use std::fmt::Write;

/// Formats milliseconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SS.mmmZ`.
///
/// Years past 9999 (in some 250 million years) print with more digits.
///
/// ```
/// use writ_query::rfc3339::format_millis;
/// assert_eq!(format_millis(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(format_millis(1_798_137_245_123), "2026-12-24T18:34:05.123Z");
/// ```
pub fn format_millis(ms: u64) -> String {
    let mut out = String::with_capacity(24);
    write_millis(&mut out, ms);
    out
}

/// Appends [`format_millis`]`(ms)` to `out`.
pub fn write_millis(out: &mut String, ms: u64) {
    let millis = ms % 1000;
    let secs = ms / 1000;
    let (days, secs_of_day) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        secs_of_day / 3600,
        secs_of_day / 60 % 60,
        secs_of_day % 60
    )
    .expect("writing to a String never fails");
}

/// The proleptic Gregorian date of a day count since 1970-01-01, after Howard Hinnant's
/// `civil_from_days` (days are never negative here, which keeps it in unsigned arithmetic).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097; // 400-year eras
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365], from March 1
    let mp = (5 * doy + 2) / 153; // [0, 11], March = 0
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        let cases = [
            (0, "1970-01-01T00:00:00.000Z"),
            (1, "1970-01-01T00:00:00.001Z"),
            (86_399_999, "1970-01-01T23:59:59.999Z"),
            (86_400_000, "1970-01-02T00:00:00.000Z"),
            (951_782_400_000, "2000-02-29T00:00:00.000Z"), // a leap day in a 400-year leap year
            (951_868_800_000, "2000-03-01T00:00:00.000Z"),
            (4_107_456_000_000, "2100-02-28T00:00:00.000Z"),
            (4_107_542_400_000, "2100-03-01T00:00:00.000Z"), // 2100 is not a leap year
            (1_798_137_245_123, "2026-12-24T18:34:05.123Z"),
            (1_709_164_800_000, "2024-02-29T00:00:00.000Z"),
            (253_402_300_799_999, "9999-12-31T23:59:59.999Z"),
        ];
        for (ms, expected) in cases {
            assert_eq!(format_millis(ms), expected, "{ms}");
        }
    }

    /// Walks day by day over four centuries against a plain calendar, so every month
    /// length and leap rule is checked.
    #[test]
    fn every_day_matches_a_naive_calendar() {
        let leap =
            |y: u64| (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400);
        let (mut y, mut m, mut d) = (1970u64, 1u64, 1u64);
        for days in 0..(400 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            let month_len = match m {
                2 if leap(y) => 29,
                2 => 28,
                4 | 6 | 9 | 11 => 30,
                _ => 31,
            };
            d += 1;
            if d > month_len {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }
}
