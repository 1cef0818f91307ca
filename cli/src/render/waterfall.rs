//! A trace as a waterfall: the span tree, a time bar per span placed by its start and
//! sized by its duration, services, durations, errors with their status message, and
//! the critical path marked.

use std::collections::HashMap;

use console::Style;
use traceql_exec::insights::critical_path;
use traceql_format::codes::{kind, status};
use traceql_format::ids::hex;
use traceql_format::model::Span;

use super::{Look, fit, human_duration, pad};

/// The spans of one trace as a tree: roots and children in start order. Spans whose
/// parent is missing are roots too.
struct Tree<'a> {
    spans: &'a [Span],
    roots: Vec<usize>,
    children: HashMap<usize, Vec<usize>>,
}

impl<'a> Tree<'a> {
    fn new(spans: &'a [Span]) -> Self {
        let index: HashMap<[u8; 8], usize> = spans
            .iter()
            .enumerate()
            .map(|(i, s)| (s.span_id, i))
            .collect();
        let mut roots = Vec::new();
        let mut children: HashMap<usize, Vec<usize>> = HashMap::new();
        for (i, s) in spans.iter().enumerate() {
            match s
                .parent_span_id
                .and_then(|p| index.get(&p).copied())
                .filter(|&p| p != i)
            {
                Some(p) => children.entry(p).or_default().push(i),
                None => roots.push(i),
            }
        }
        let order = |i: &usize| (spans[*i].start_unix_nano, spans[*i].span_id);
        roots.sort_by_key(order);
        for list in children.values_mut() {
            list.sort_by_key(order);
        }
        Tree {
            spans,
            roots,
            children,
        }
    }

    fn end(&self, i: usize) -> u64 {
        self.spans[i]
            .end_unix_nano
            .max(self.spans[i].start_unix_nano)
    }

    /// Depth-first order with depths.
    fn walk(&self) -> Vec<(usize, usize)> {
        let mut out = Vec::with_capacity(self.spans.len());
        let mut stack: Vec<(usize, usize)> = self.roots.iter().rev().map(|&r| (r, 0)).collect();
        while let Some((i, depth)) = stack.pop() {
            out.push((i, depth));
            if let Some(kids) = self.children.get(&i) {
                stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
            }
        }
        out
    }

    /// The spans on the critical path (see `traceql_exec::insights::critical_path`):
    /// from the root that finishes last, the child that finished last before the
    /// parent's end, then the one that finished before that child started, and so on.
    fn critical_path(&self) -> Vec<usize> {
        let mut parents = vec![None; self.spans.len()];
        for (&parent, kids) in &self.children {
            for &k in kids {
                parents[k] = Some(parent);
            }
        }
        let starts: Vec<u64> = self.spans.iter().map(|s| s.start_unix_nano).collect();
        let ends: Vec<u64> = (0..self.spans.len()).map(|i| self.end(i)).collect();
        critical_path(&starts, &ends, &parents)
            .iter()
            .enumerate()
            .filter_map(|(i, own)| own.map(|_| i))
            .collect()
    }
}

/// Renders `spans` (one trace) as a waterfall.
pub fn waterfall(spans: &[Span], look: &Look) -> String {
    if spans.is_empty() {
        return String::new();
    }
    let tree = Tree::new(spans);
    let start = spans.iter().map(|s| s.start_unix_nano).min().unwrap_or(0);
    let end = (0..spans.len()).map(|i| tree.end(i)).max().unwrap_or(start);
    let total = end.saturating_sub(start).max(1);
    let critical = tree.critical_path();
    let rows = tree.walk();

    let label = |i: usize, depth: usize| {
        let orphan = if spans[i].parent_span_id.is_some() && depth == 0 {
            " (orphan)"
        } else {
            ""
        };
        format!("{}{}{orphan}", "  ".repeat(depth), spans[i].name)
    };
    let service = |i: usize| spans[i].resource.service_name().unwrap_or("?").to_string();
    let label_width = rows
        .iter()
        .map(|&(i, d)| console::measure_text_width(&label(i, d)))
        .max()
        .unwrap_or(0)
        .min(48);
    let service_width = rows
        .iter()
        .map(|&(i, _)| service(i).len())
        .max()
        .unwrap_or(0)
        .min(24);
    let duration_width = (0..spans.len())
        .map(|i| human_duration(tree.end(i) - spans[i].start_unix_nano).len())
        .max()
        .unwrap_or(8)
        .max(8);
    let fixed = 2 + label_width + 2 + service_width + 2 + duration_width + 2;
    // Room after the bars for an error's status message or the span kind.
    const NOTE: usize = 24;
    let bar_width = look.width.saturating_sub(fixed + 2 + NOTE).max(20);

    let dim = Style::new().dim();
    let red = Style::new().red();
    let bold = Style::new().bold();
    let yellow = Style::new().yellow();
    let root = tree.roots.first().map(|&r| &spans[r]);
    let mut out = vec![
        look.paint(
            &format!(
                "trace {} · {} spans · {} · {} {}",
                hex(&spans[0].trace_id),
                spans.len(),
                human_duration(total),
                root.and_then(|r| r.resource.service_name()).unwrap_or("?"),
                root.map(|r| r.name.as_str()).unwrap_or("?"),
            ),
            &bold,
        ),
        look.paint(
            &format!(
                "  {}  {}  {}  |{}|",
                pad("span", label_width),
                pad("service", service_width),
                pad("duration", duration_width),
                axis(&human_duration(total), bar_width)
            ),
            &dim,
        ),
    ];
    for (i, depth) in rows {
        let s = &spans[i];
        let on_path = critical.contains(&i);
        let error = s.status_code == status::ERROR;
        let offset =
            ((s.start_unix_nano - start) as u128 * bar_width as u128 / total as u128) as usize;
        let length = ((tree.end(i) - s.start_unix_nano) as u128 * bar_width as u128)
            .div_ceil(total as u128) as usize;
        let offset = offset.min(bar_width - 1);
        let length = length.clamp(1, bar_width - offset);
        let glyph = if on_path { "█" } else { "▆" };
        let bar = glyph.repeat(length);
        let bar = if error {
            look.paint(&bar, &red)
        } else if on_path {
            look.paint(&bar, &yellow)
        } else {
            bar
        };
        let bar = format!(
            "{}{bar}{}",
            " ".repeat(offset),
            " ".repeat(bar_width - offset - length)
        );
        let marker = if on_path { "*" } else { " " };
        let mut line = format!(
            "{marker} {}  {}  {}  |{bar}|",
            pad(&fit(&label(i, depth), label_width), label_width),
            look.paint(&pad(&fit(&service(i), service_width), service_width), &dim),
            pad(
                &human_duration(tree.end(i) - s.start_unix_nano),
                duration_width
            ),
        );
        if error {
            let message = if s.status_message.is_empty() {
                "error".to_string()
            } else {
                s.status_message.clone()
            };
            line.push_str(&look.paint(&fit(&format!(" ✗ {message}"), NOTE), &red));
        } else if s.kind != kind::UNSPECIFIED {
            line.push_str(&look.paint(&format!(" {}", kind::name(s.kind)), &dim));
        }
        out.push(line);
    }
    out.push(look.paint(
        "* critical path: what the trace waited on (from its end, the child that finished last, then the one before it started)",
        &dim,
    ));
    out.join("\n")
}

/// The time axis above the bars: `0` on the left, the trace's duration on the right.
fn axis(total: &str, width: usize) -> String {
    format!(
        "0{}{total}",
        " ".repeat(width.saturating_sub(1 + total.len()))
    )
}
