//! Rendering for the terminal: whether to use colour, how wide to be, and the views
//! (trace tables, waterfalls).

pub mod chunks;
pub mod metrics;
pub mod traces;
pub mod waterfall;

use console::Style;

/// How output should look on this terminal.
#[derive(Clone, Copy, Debug)]
pub struct Look {
    /// ANSI colours and bold.
    pub color: bool,
    /// Columns available.
    pub width: usize,
}

impl Look {
    /// The look of standard output: colour only on a terminal and without `NO_COLOR`,
    /// the terminal's width (or `$COLUMNS`, else 120).
    pub fn stdout() -> Look {
        let term = console::Term::stdout();
        let color = term.is_term() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let width = term
            .size_checked()
            .map(|(_, w)| w as usize)
            .or_else(|| std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()))
            .unwrap_or(120);
        Look {
            color,
            width: width.max(40),
        }
    }

    /// `text` in `style` when colour is on.
    pub fn paint(&self, text: &str, style: &Style) -> String {
        if self.color {
            style.clone().force_styling(true).apply_to(text).to_string()
        } else {
            text.to_string()
        }
    }
}

/// `text` cut to at most `width` columns, with `…` when cut.
pub fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    if console::measure_text_width(text) <= width {
        return text.to_string();
    }
    let mut out = String::new();
    let mut used = 0;
    for c in text.chars() {
        let w = c.width().unwrap_or(0);
        if used + w + 1 > width {
            break;
        }
        used += w;
        out.push(c);
    }
    out.push('…');
    out
}

/// `text` padded with spaces to `width` columns.
pub fn pad(text: &str, width: usize) -> String {
    let w = console::measure_text_width(text);
    format!("{text}{}", " ".repeat(width.saturating_sub(w)))
}

/// A duration for people, as trace viewers show it: three significant digits in the
/// largest unit that keeps the number at least 1 (`237ms`, `1.00ms`, `502µs`, `12.3s`),
/// whole nanoseconds below a microsecond, and minutes and seconds or hours and minutes
/// from a minute up (`4m05s`, `1h02m`).
pub fn human_duration(nanos: u64) -> String {
    const MINUTE: u64 = 60_000_000_000;
    const HOUR: u64 = 60 * MINUTE;
    if nanos >= HOUR {
        let minutes = (nanos + MINUTE / 2) / MINUTE;
        return format!("{}h{:02}m", minutes / 60, minutes % 60);
    }
    if nanos >= MINUTE {
        let seconds = (nanos + 500_000_000) / 1_000_000_000;
        return format!("{}m{:02}s", seconds / 60, seconds % 60);
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    const UNITS: [(u64, &str); 3] = [(1_000_000_000, "s"), (1_000_000, "ms"), (1_000, "µs")];
    let mut unit = UNITS
        .iter()
        .position(|&(size, _)| nanos >= size)
        .unwrap_or(UNITS.len() - 1);
    loop {
        let (size, name) = UNITS[unit];
        let value = nanos as f64 / size as f64;
        let decimals = if value >= 99.95 {
            0
        } else if value >= 9.995 {
            1
        } else {
            2
        };
        let text = format!("{value:.decimals$}");
        // 999.7ms rounds to 1000ms: say 1.00s instead.
        if text.parse::<f64>().is_ok_and(|v| v >= 1000.0) && unit > 0 {
            unit -= 1;
            continue;
        }
        return format!("{text}{name}");
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_at_a_glance() {
        let cases = [
            (0, "0ns"),
            (999, "999ns"),
            (1_000, "1.00µs"),
            (502_400, "502µs"),
            (1_001_929, "1.00ms"),
            (12_345_678, "12.3ms"),
            (237_271_456, "237ms"),
            (999_700_000, "1.00s"),
            (1_500_000_000, "1.50s"),
            (59_400_000_000, "59.4s"),
            (245_000_000_000, "4m05s"),
            (3_720_000_000_000, "1h02m"),
        ];
        for (nanos, text) in cases {
            assert_eq!(human_duration(nanos), text, "{nanos} ns");
        }
    }
}
