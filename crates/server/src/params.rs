//! Request parameters as Tempo reads them: times in unix seconds, `end` after `start`,
//! positive limits, steps as durations (`60s`, `1m`) or seconds.

use std::collections::HashMap;

use crate::error::ApiError;

/// The query string of a request, form-decoded (`+` is a space).
pub type Params = HashMap<String, String>;

/// A time range in unix nanoseconds, either end open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Range {
    /// Start, unix nanoseconds.
    pub start: Option<u64>,
    /// End, unix nanoseconds.
    pub end: Option<u64>,
}

/// `start` and `end` (unix seconds); when both are given, `end` must be after `start`.
pub fn range(params: &Params) -> Result<Range, ApiError> {
    let seconds = |name: &str| -> Result<Option<u64>, ApiError> {
        match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(text) => text.parse::<u64>().map(Some).map_err(|_| {
                ApiError::bad_request(format!(
                    "invalid {name}: expected unix seconds, got `{text}`"
                ))
            }),
        }
    };
    seconds_range(seconds("start")?, seconds("end")?)
}

/// The range from `start` to `end` in unix seconds, either open; when both are given,
/// `end` must be after `start`.
pub fn seconds_range(start: Option<u64>, end: Option<u64>) -> Result<Range, ApiError> {
    if let (Some(s), Some(e)) = (start, end)
        && e <= s
    {
        return Err(ApiError::bad_request(format!(
            "http parameter start must be before end. received start={s} end={e}"
        )));
    }
    let nanos = |s: u64| s.saturating_mul(1_000_000_000);
    Ok(Range {
        start: start.map(nanos),
        end: end.map(nanos),
    })
}

/// A positive count `name`, or `default` when absent.
pub fn count(params: &Params, name: &str, default: usize) -> Result<usize, ApiError> {
    match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(default),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n > 0 => Ok(n),
            _ => Err(ApiError::bad_request(format!(
                "invalid {name}: must be a positive number"
            ))),
        },
    }
}

/// A duration (`step`): Go's notation (`30s`, `1m30s`, `500ms`) or plain seconds.
pub fn duration_nanos(params: &Params, name: &str) -> Result<Option<u64>, ApiError> {
    let Some(text) = params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let invalid = || ApiError::bad_request(format!("invalid {name}: `{text}` is not a duration"));
    // TraceQL durations are signed 64-bit nanoseconds: about 292 years at most.
    let longest = i64::MAX as u64;
    if let Ok(seconds) = text.parse::<f64>() {
        let nanos = seconds * 1e9;
        return if nanos >= 1.0 && nanos <= longest as f64 {
            Ok(Some(nanos as u64))
        } else {
            Err(invalid())
        };
    }
    let mut total = 0u64;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(invalid)?;
        let number: f64 = rest[..digits].parse().map_err(|_| invalid())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(invalid()),
        };
        total = total.saturating_add((number * unit) as u64);
        rest = &rest[unit_len..];
    }
    if total == 0 || total > longest {
        return Err(invalid());
    }
    Ok(Some(total))
}

/// Parameters from `(name, value)` pairs, for tests.
#[cfg(test)]
pub fn params(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_seconds_with_end_after_start() {
        let r = range(&params(&[("start", "10"), ("end", "20")])).unwrap();
        assert_eq!(r.start, Some(10_000_000_000));
        assert_eq!(r.end, Some(20_000_000_000));
        assert_eq!(range(&params(&[])).unwrap(), Range::default());
        let e = range(&params(&[("start", "20"), ("end", "10")])).unwrap_err();
        assert!(e.message.contains("start must be before end"), "{e:?}");
        assert!(range(&params(&[("start", "yesterday")])).is_err());
    }

    #[test]
    fn counts_are_positive() {
        assert_eq!(count(&params(&[]), "limit", 20).unwrap(), 20);
        assert_eq!(count(&params(&[("limit", "5")]), "limit", 20).unwrap(), 5);
        let e = count(&params(&[("limit", "0")]), "limit", 20).unwrap_err();
        assert_eq!(e.message, "invalid limit: must be a positive number");
        assert!(count(&params(&[("limit", "-1")]), "limit", 20).is_err());
    }

    #[test]
    fn steps_are_go_durations_or_seconds() {
        let step = |s: &str| duration_nanos(&params(&[("step", s)]), "step");
        assert_eq!(step("60s").unwrap(), Some(60_000_000_000));
        assert_eq!(step("1m30s").unwrap(), Some(90_000_000_000));
        assert_eq!(step("500ms").unwrap(), Some(500_000_000));
        assert_eq!(step("15").unwrap(), Some(15_000_000_000));
        assert!(step("fast").is_err());
        assert!(step("0s").is_err());
        // Longer than a TraceQL duration holds (i64 nanoseconds).
        assert!(step("10000000000").is_err());
        assert!(step("3000000h").is_err());
        assert_eq!(step("2000000h").unwrap(), Some(7_200_000_000_000_000_000));
        assert_eq!(duration_nanos(&params(&[]), "step").unwrap(), None);
    }
}
