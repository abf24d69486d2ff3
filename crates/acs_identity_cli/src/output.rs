//! Printing results: aligned tables for people, JSON for scripts, and times.

use std::io::Write as _;

use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Duration, OffsetDateTime, UtcOffset};

/// How a command prints its result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// `label: value` lines.
    Table,
    /// One pretty-printed JSON document.
    Json,
}

/// Prints `value` as pretty JSON on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut stdout, value)?;
    writeln!(stdout)?;
    stdout.flush()?;
    Ok(())
}

/// Prints `label: value` rows on stdout with the values aligned.
pub(crate) fn print_table(rows: &[(&str, String)]) -> anyhow::Result<()> {
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 1;
    let mut stdout = std::io::stdout().lock();
    for (label, value) in rows {
        writeln!(stdout, "{:<width$} {value}", format!("{label}:"))?;
    }
    stdout.flush()?;
    Ok(())
}

/// The machine's UTC offset, or UTC when it cannot be read.
///
/// Call it before starting threads: `time` does not read the offset of a multi-threaded process
/// on every platform.
pub(crate) fn local_offset() -> UtcOffset {
    UtcOffset::current_local_offset().unwrap_or(UtcOffset::UTC)
}

/// RFC 3339 in UTC, as in JSON output.
pub(crate) fn rfc3339(at: OffsetDateTime) -> String {
    at.to_offset(UtcOffset::UTC).format(&Rfc3339).unwrap_or_else(|_| at.to_string())
}

/// `2026-01-31 17:05:09 +01:00`, in `offset`.
pub(crate) fn local(at: OffsetDateTime, offset: UtcOffset) -> String {
    let format = format_description!(
        "[year]-[month]-[day] [hour]:[minute]:[second] [offset_hour sign:mandatory]:[offset_minute]"
    );
    at.to_offset(offset).format(&format).unwrap_or_else(|_| at.to_string())
}

/// `in 23h 59m` for a future time, `5m 3s ago` for a past one, relative to `now`.
pub(crate) fn relative(at: OffsetDateTime, now: OffsetDateTime) -> String {
    let delta = at - now;
    if delta.is_negative() {
        format!("{} ago", span(-delta))
    } else {
        format!("in {}", span(delta))
    }
}

/// A duration in its two largest units: `2d 3h`, `23h 59m`, `5m 3s`, `42s`; hours up to 48, so
/// that token lifetimes (at most 24 hours) read in hours.
pub(crate) fn span(d: Duration) -> String {
    let total = d.whole_seconds().max(0);
    let (hours, minutes, seconds) = (total / 3_600, total / 60 % 60, total % 60);
    if hours >= 48 {
        format!("{}d {}h", hours / 24, hours % 24)
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else if minutes > 0 {
        format!("{minutes}m {seconds}s")
    } else {
        format!("{seconds}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn spans_use_the_two_largest_units() {
        assert_eq!(span(Duration::seconds(42)), "42s");
        assert_eq!(span(Duration::seconds(5 * 60 + 3)), "5m 3s");
        assert_eq!(span(Duration::minutes(23 * 60 + 59) + Duration::seconds(30)), "23h 59m");
        assert_eq!(span(Duration::hours(26)), "26h 0m");
        assert_eq!(span(Duration::hours(50)), "2d 2h");
        assert_eq!(span(Duration::seconds(-5)), "0s");
    }

    #[test]
    fn relative_times_read_both_ways() {
        let now = datetime!(2026-01-01 12:00 UTC);
        assert_eq!(relative(now + Duration::hours(24), now), "in 24h 0m");
        assert_eq!(relative(now - Duration::seconds(90), now), "1m 30s ago");
    }

    #[test]
    fn times_format_in_utc_and_local_offsets() {
        let at = datetime!(2026-01-31 16:05:09.123 UTC);
        assert_eq!(rfc3339(at), "2026-01-31T16:05:09.123Z");
        assert_eq!(local(at, offset!(+1)), "2026-01-31 17:05:09 +01:00");
        assert_eq!(local(at, offset!(-7:30)), "2026-01-31 08:35:09 -07:30");
    }
}
