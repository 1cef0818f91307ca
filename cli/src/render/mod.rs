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
