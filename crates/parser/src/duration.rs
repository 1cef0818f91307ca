//! Duration literals: reading (Prometheus and Go forms) and canonical printing.

/// Nanoseconds per unit, longest unit names first where they share a prefix.
const GO_UNITS: &[(&str, i128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Prometheus units in the order they must appear.
const PROM_UNITS: &[(&str, i128)] = &[
    ("y", 365 * 86_400_000_000_000),
    ("w", 7 * 86_400_000_000_000),
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
];

/// Parses `text` as a duration in nanoseconds: first as a Prometheus duration
/// (`1d12h`, `1y`, integer components in descending order), then as a Go duration
/// (`1.5h`, `300us`, `1h15m30.5s`). `None` if it is neither or does not fit in i64.
pub fn parse_duration(text: &str) -> Option<i64> {
    parse_prometheus(text).or_else(|| parse_go(text))
}

/// Splits `text` into (number, unit) pairs: digits and dots, then letters.
fn components(text: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let (num, after) = rest.split_at(num_len);
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        if num.is_empty() || unit.is_empty() {
            return None;
        }
        out.push((num, unit));
        rest = after;
    }
    Some(out)
}

fn parse_prometheus(text: &str) -> Option<i64> {
    let mut total: i128 = 0;
    let mut next_unit = 0;
    for (num, unit) in components(text)? {
        let pos = PROM_UNITS[next_unit..]
            .iter()
            .position(|(u, _)| *u == unit)?
            + next_unit;
        next_unit = pos + 1;
        let n: i128 = num.parse().ok()?;
        total = total.checked_add(n.checked_mul(PROM_UNITS[pos].1)?)?;
    }
    i64::try_from(total).ok()
}

fn parse_go(text: &str) -> Option<i64> {
    let mut total: i128 = 0;
    for (num, unit) in components(text)? {
        let scale = GO_UNITS.iter().find(|(u, _)| *u == unit)?.1;
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() && frac.is_empty() || frac.contains('.') {
            return None;
        }
        let int: i128 = if int.is_empty() { 0 } else { int.parse().ok()? };
        let mut value = int.checked_mul(scale)?;
        // Fractional part, truncated to whole nanoseconds as Go does.
        let mut place = scale;
        for d in frac.bytes() {
            place /= 10;
            if place == 0 {
                break;
            }
            value += i128::from(d - b'0') * place;
        }
        total = total.checked_add(value)?;
    }
    i64::try_from(total).ok()
}

/// Prints nanoseconds as a duration that reads back to the same value, using the
/// units h, m, s, ms, us and ns: `1h30m`, `1.5s` is printed `1s500ms`, `0` is `0s`.
pub(crate) fn format_duration(ns: i64) -> String {
    if ns == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ns < 0 {
        out.push('-');
    }
    let mut rest = ns.unsigned_abs();
    for (unit, scale) in [
        ("h", 3_600_000_000_000u64),
        ("m", 60_000_000_000),
        ("s", 1_000_000_000),
        ("ms", 1_000_000),
        ("us", 1_000),
        ("ns", 1),
    ] {
        if rest >= scale {
            out.push_str(&format!("{}{unit}", rest / scale));
            rest %= scale;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_prometheus_and_go_forms() {
        let s = 1_000_000_000;
        assert_eq!(parse_duration("1s"), Some(s));
        assert_eq!(parse_duration("100ms"), Some(100_000_000));
        assert_eq!(parse_duration("1h15m30.5s"), Some(4530 * s + s / 2));
        assert_eq!(parse_duration("1d12h"), Some(36 * 3600 * s));
        assert_eq!(parse_duration("1y"), Some(365 * 86400 * s));
        assert_eq!(parse_duration("2w"), Some(14 * 86400 * s));
        assert_eq!(parse_duration("1.5h"), Some(5400 * s));
        assert_eq!(parse_duration(".5s"), Some(s / 2));
        assert_eq!(parse_duration("300us"), Some(300_000));
        assert_eq!(parse_duration("3µs"), Some(3_000));
        assert_eq!(parse_duration("7ns"), Some(7));
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        for text in [
            "1e3",
            "1.5d",
            "1x",
            "s",
            "1..5s",
            "1h1h2",
            "999999999999999h",
        ] {
            assert_eq!(parse_duration(text), None, "{text}");
        }
    }

    #[test]
    fn prints_durations_that_read_back() {
        for ns in [
            0,
            1,
            999,
            1_500_000_000,
            5_400_000_000_000,
            86_400_000_000_000,
            -5_000_000_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            let text = format_duration(ns.abs());
            assert_eq!(parse_duration(&text), Some(ns.abs()), "{text}");
        }
        assert_eq!(format_duration(5_400_000_000_000), "1h30m");
        assert_eq!(format_duration(1_500_000_000), "1s500ms");
        assert_eq!(format_duration(-5_000_000_000), "-5s");
    }
}
