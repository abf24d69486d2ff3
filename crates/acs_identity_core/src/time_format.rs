//! Date-time text as ACS writes and reads it.

use time::format_description::well_known::{Rfc2822, Rfc3339};
use time::{OffsetDateTime, UtcOffset};

/// Formats like ACS: `2022-09-07T14:34:56.2714874+00:00` (UTC, numeric offset, up to 7
/// fractional digits). Trailing zeros of the fraction are left out, and the fraction with them
/// on a whole second (`2022-09-29T16:11:00.164747+00:00`, `2022-09-29T16:11:00+00:00`), as
/// ACS's serializer writes them: the SDKs' recorded sessions show 6-digit fractions and no
/// 7-digit one ending in 0.
pub fn acs_datetime(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    let fraction = format!("{:07}", t.nanosecond() / 100);
    let fraction = fraction.trim_end_matches('0');
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{fraction}+00:00",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        if fraction.is_empty() { "" } else { "." },
    )
}

/// Parses an RFC 3339 date-time with any offset.
pub fn parse_rfc3339(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339).ok()
}

/// Parses an HTTP date (`Wed, 07 Sep 2022 13:34:56 GMT`, IMF-fixdate) as sent in `x-ms-date`.
///
/// Also accepts a single-digit day, which some clients send.
pub fn parse_http_date(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc2822) {
        return Some(t);
    }
    // RFC 2822 parsing in `time` requires a numeric zone or GMT/UT; retry with +0000.
    let s = s.strip_suffix(" GMT").or_else(|| s.strip_suffix(" UTC"))?;
    OffsetDateTime::parse(&format!("{s} +0000"), &Rfc2822).ok()
}

/// Formats an HTTP date (IMF-fixdate).
pub fn http_date(t: OffsetDateTime) -> String {
    let t = t.to_offset(UtcOffset::UTC);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[t.weekday().number_days_from_monday() as usize],
        t.day(),
        MONTHS[u8::from(t.month()) as usize - 1],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn acs_format_has_up_to_seven_fraction_digits_and_offset() {
        let t = datetime!(2022-09-07 14:34:56.2714874 UTC);
        assert_eq!(acs_datetime(t), "2022-09-07T14:34:56.2714874+00:00");
        assert_eq!(
            acs_datetime(datetime!(2022-09-29 16:11:00.164747 UTC)),
            "2022-09-29T16:11:00.164747+00:00"
        );
        assert_eq!(acs_datetime(datetime!(2022-01-02 03:04:05 UTC)), "2022-01-02T03:04:05+00:00");
        let shifted = datetime!(2022-09-07 07:34:56.5 -07:00);
        assert_eq!(acs_datetime(shifted), "2022-09-07T14:34:56.5+00:00");
        // Below 100 ns is below ACS's precision.
        assert_eq!(
            acs_datetime(datetime!(2022-01-02 03:04:05.000_000_099 UTC)),
            "2022-01-02T03:04:05+00:00"
        );
    }

    #[test]
    fn acs_format_parses_back_as_rfc3339() {
        let t = datetime!(2031-12-31 23:59:59.9999999 UTC);
        assert_eq!(parse_rfc3339(&acs_datetime(t)), Some(t));
        let whole = datetime!(2022-01-02 03:04:05 UTC);
        assert_eq!(parse_rfc3339(&acs_datetime(whole)), Some(whole));
        assert_eq!(
            parse_rfc3339("2026-07-22T10:00:00.0000000-07:00"),
            Some(datetime!(2026-07-22 17:00 UTC))
        );
    }

    #[test]
    fn http_dates_round_trip() {
        let t = datetime!(2022-09-07 13:34:56 UTC);
        assert_eq!(http_date(t), "Wed, 07 Sep 2022 13:34:56 GMT");
        assert_eq!(parse_http_date("Wed, 07 Sep 2022 13:34:56 GMT"), Some(t));
        assert_eq!(parse_http_date("Wed, 7 Sep 2022 13:34:56 GMT"), Some(t));
        assert_eq!(parse_http_date("garbage"), None);
        assert_eq!(parse_http_date(""), None);
    }
}
