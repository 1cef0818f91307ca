//! Values as results show them: table cells and durations in
//! Go's notation (`1m40s`, `100ms`). Status and kind words are in [`crate::codes`].

use crate::value::Value;

/// A value as a table cell shows it (see [`Value`]'s `Display`), `nil` for none.
pub fn value_text(value: Option<&Value>) -> String {
    value.map_or_else(|| "nil".into(), Value::to_string)
}

/// A duration in nanoseconds in Go's `time.Duration` notation.
pub fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".into();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let n = nanos.unsigned_abs();
    let fraction = |value: u64, unit: u64, suffix: &str| {
        let whole = value / unit;
        let rest = value % unit;
        if rest == 0 {
            format!("{whole}{suffix}")
        } else {
            let digits = unit.to_string().len() - 1;
            let frac = format!("{rest:0digits$}");
            format!("{whole}.{}{suffix}", frac.trim_end_matches('0'))
        }
    };
    if n < 1_000 {
        return format!("{sign}{n}ns");
    }
    if n < 1_000_000 {
        return format!("{sign}{}", fraction(n, 1_000, "µs"));
    }
    if n < 1_000_000_000 {
        return format!("{sign}{}", fraction(n, 1_000_000, "ms"));
    }
    let hours = n / 3_600_000_000_000;
    let minutes = n / 60_000_000_000 % 60;
    let seconds = fraction(n % 60_000_000_000, 1_000_000_000, "s");
    match (hours, minutes) {
        (0, 0) => format!("{sign}{seconds}"),
        (0, m) => format!("{sign}{m}m{seconds}"),
        (h, m) => format!("{sign}{h}h{m}m{seconds}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_print_like_go() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(999), "999ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(100_000_000), "100ms");
        assert_eq!(go_duration(100_000_000_000), "1m40s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration(1_500_000_000), "1.5s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
    }
}
