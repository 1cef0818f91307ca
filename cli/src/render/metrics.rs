//! Metrics results as text: a table with one row per series and a sparkline of its
//! values over time, JSON lines (one series per line) or CSV (one row per point).

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use serde_json::json;
use traceql_exec::metrics::{MetricsResponse, Series};
use traceql_format::display::value_text;

use super::Look;
use crate::time::format_time;

const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// The series' labels as `key=value` pairs.
fn labels(series: &Series) -> String {
    series
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={}", value_text(v.as_ref())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A line of bars, one per bucket (resampled to at most `width`), scaled between the
/// series' smallest and largest value; a blank where a bucket has no value.
pub fn sparkline(values: &[f64], width: usize) -> String {
    let width = width.max(1);
    let chunk = values.len().div_ceil(width).max(1);
    let points: Vec<f64> = values
        .chunks(chunk)
        .map(|c| {
            let present: Vec<f64> = c.iter().copied().filter(|v| !v.is_nan()).collect();
            if present.is_empty() {
                f64::NAN
            } else {
                present.iter().sum::<f64>() / present.len() as f64
            }
        })
        .collect();
    let (lo, hi) = points
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    points
        .iter()
        .map(|v| {
            if v.is_nan() {
                ' '
            } else if hi > lo {
                BARS[(((v - lo) / (hi - lo)) * 7.0).round() as usize]
            } else {
                BARS[3]
            }
        })
        .collect()
}

/// A number in at most a few significant digits.
fn number(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v == v.trunc() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// One row per series: labels, a sparkline, and its smallest, average, largest and last
/// values.
pub fn table(response: &MetricsResponse, look: &Look) -> String {
    if response.series.is_empty() {
        return "no spans matched in the range".to_string();
    }
    let timestamps = response.timestamps();
    let first = timestamps.first().copied().unwrap_or(0) * 1_000_000;
    let last = timestamps.last().copied().unwrap_or(0) * 1_000_000;
    let mut table = Table::new();
    table
        .load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_width(look.width as u16);
    table.set_header(vec!["series", "over time", "min", "avg", "max", "last"]);
    let chart = (look.width / 3).clamp(10, 60);
    for series in &response.series {
        let present: Vec<f64> = series
            .values
            .iter()
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        let min = present.iter().copied().fold(f64::NAN, f64::min);
        let max = present.iter().copied().fold(f64::NAN, f64::max);
        let avg = present.iter().sum::<f64>() / present.len().max(1) as f64;
        let last_value = series.values.iter().rev().find(|v| !v.is_nan()).copied();
        table.add_row(vec![
            labels(series),
            sparkline(&series.values, chart),
            number(min),
            number(avg),
            number(max),
            number(last_value.unwrap_or(f64::NAN)),
        ]);
    }
    let b = &response.buckets;
    if b.instant {
        return format!(
            "{table}\n{} series, one value for {} to {}",
            response.series.len(),
            format_time(b.start),
            format_time(b.end)
        );
    }
    format!(
        "{table}\n{} series, {} points of {}s from {} to {}",
        response.series.len(),
        timestamps.len(),
        number(b.step as f64 / 1e9),
        format_time(first),
        format_time(last)
    )
}

/// One series per line: `{"labels": {...}, "samples": [[timestampMs, value], ...]}`.
pub fn json_lines(response: &MetricsResponse) -> String {
    let timestamps = response.timestamps();
    response
        .series
        .iter()
        .map(|s| {
            let labels: serde_json::Map<String, serde_json::Value> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), json!(value_text(v.as_ref()))))
                .collect();
            let samples: Vec<serde_json::Value> = s
                .values
                .iter()
                .zip(&timestamps)
                .filter(|(v, _)| !v.is_nan())
                .map(|(v, t)| json!([t, v]))
                .collect();
            json!({ "labels": labels, "samples": samples }).to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One row per point: `series,timestamp_ms,value`.
pub fn csv(response: &MetricsResponse) -> Result<String, String> {
    let timestamps = response.timestamps();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let fail = |e: csv::Error| e.to_string();
    writer
        .write_record(["series", "timestamp_ms", "value"])
        .map_err(fail)?;
    for s in &response.series {
        let name = labels(s);
        for (v, t) in s.values.iter().zip(&timestamps) {
            if !v.is_nan() {
                writer
                    .write_record([name.as_str(), &t.to_string(), &v.to_string()])
                    .map_err(fail)?;
            }
        }
    }
    let bytes = writer.into_inner().map_err(|e| e.to_string())?;
    String::from_utf8(bytes)
        .map(|s| s.trim_end().to_string())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_between_min_and_max() {
        assert_eq!(sparkline(&[0.0, 1.0, 2.0, f64::NAN, 7.0], 10), "▁▂▃ █");
        assert_eq!(sparkline(&[5.0, 5.0], 10), "▄▄");
        assert_eq!(sparkline(&[1.0, 3.0, 5.0, 7.0], 2), "▁█");
    }
}
