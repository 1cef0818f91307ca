//! Times and durations on the command line: RFC 3339 or unix seconds in, RFC 3339 out.

use chrono::{DateTime, SecondsFormat, Utc};
use traceql_exec::TimeRange;

/// Which traces a command looks at: `--start`/`--end`, or `--since`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RangeArgs {
    /// Only traces that end at or after this time (RFC 3339, or unix seconds).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    pub start: Option<String>,
    /// Only traces that start at or before this time (RFC 3339, or unix seconds).
    #[arg(long, value_name = "TIME", conflicts_with = "since")]
    pub end: Option<String>,
    /// Only traces of the last DURATION before now (e.g. 15m, 1h, 2d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
}

impl RangeArgs {
    /// The range these flags ask for (every trace when none is given).
    pub fn range(&self) -> Result<TimeRange, String> {
        let mut range = TimeRange::ALL;
        if let Some(since) = &self.since {
            range.start_unix_nano = Some(now_unix_nano().saturating_sub(parse_duration(since)?));
        }
        if let Some(start) = &self.start {
            range.start_unix_nano = Some(parse_time(start)?);
        }
        if let Some(end) = &self.end {
            range.end_unix_nano = Some(parse_time(end)?);
        }
        Ok(range)
    }
}

/// Parses `2026-11-21T10:00:00Z` (any RFC 3339 offset) or unix seconds (`1763719200`,
/// fractions allowed) into unix nanoseconds.
pub fn parse_time(text: &str) -> Result<u64, String> {
    if let Ok(seconds) = text.parse::<f64>()
        && seconds >= 0.0
    {
        return Ok((seconds * 1e9) as u64);
    }
    let time = DateTime::parse_from_rfc3339(text).map_err(|e| {
        format!(
            "`{text}` is not a time ({e}); use RFC 3339 like 2026-11-21T10:00:00Z or unix seconds"
        )
    })?;
    u64::try_from(time.timestamp_nanos_opt().unwrap_or(0))
        .map_err(|_| format!("`{text}` is before 1970"))
}

/// Parses a TraceQL duration such as `15m`, `1h30m` or `2d` into nanoseconds.
pub fn parse_duration(text: &str) -> Result<u64, String> {
    traceql_parser::parse_duration(text)
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| format!("`{text}` is not a duration; use e.g. 15m, 1h or 2d"))
}

/// Now, in unix nanoseconds.
pub fn now_unix_nano() -> u64 {
    u64::try_from(Utc::now().timestamp_nanos_opt().unwrap_or(0)).unwrap_or(0)
}

/// Unix nanoseconds as RFC 3339 UTC with milliseconds.
pub fn format_time(unix_nano: u64) -> String {
    let secs = (unix_nano / 1_000_000_000) as i64;
    let nanos = (unix_nano % 1_000_000_000) as u32;
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_else(|| unix_nano.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_from_rfc3339_and_unix_seconds() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000_000));
        assert_eq!(parse_time("2"), Ok(2_000_000_000));
        assert!(parse_time("yesterday").unwrap_err().contains("RFC 3339"));
        assert_eq!(format_time(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }

    #[test]
    fn durations_parse_like_traceql() {
        assert_eq!(parse_duration("1h"), Ok(3_600_000_000_000));
        assert!(parse_duration("soon").is_err());
    }
}
