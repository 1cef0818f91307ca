//! Insights as tables: the findings grouped across traces (or one trace's findings),
//! and each service's own time on the critical paths.

use traceql_exec::insights::{Insights, ServiceTime};

use super::{Look, align_right as right, table};

fn ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0}ms")
    } else {
        format!("{ms:.1}ms")
    }
}

/// Where the time went: services by their own time on the critical paths.
fn critical_path(times: &[ServiceTime], look: &Look) -> String {
    let mut t = table(vec!["service", "time on critical path", "share"], look);
    for s in times {
        t.add_row(vec![
            s.service.clone(),
            ms(s.total_ms),
            format!("{:.1}%", 100.0 * s.share),
        ]);
    }
    right(&mut t, &[1, 2]);
    t.to_string()
}

/// The groups of findings, costliest first, then the critical-path time per service.
pub fn across_traces(insights: &Insights, look: &Look) -> String {
    if insights.critical_path.is_empty() {
        return "no traces in the range".to_string();
    }
    let mut out = String::new();
    if insights.groups.is_empty() {
        out.push_str("no N+1 queries or calls and no slow database queries\n");
    } else {
        let mut t = table(
            vec![
                "finding",
                "service",
                "parent",
                "pattern",
                "traces",
                "spans",
                "time",
                "example trace",
            ],
            look,
        );
        for g in &insights.groups {
            t.add_row(vec![
                g.kind.to_string(),
                g.service.clone(),
                g.parent.clone(),
                g.pattern.clone(),
                g.traces.to_string(),
                g.spans.to_string(),
                ms(g.total_ms),
                g.examples.first().cloned().unwrap_or_default(),
            ]);
        }
        right(&mut t, &[4, 5, 6]);
        out.push_str(&format!("{t}\n"));
    }
    out.push_str(&critical_path(&insights.critical_path, look));
    out
}

/// One trace's findings and where its time went, for beneath its waterfall.
pub fn one_trace(insights: &Insights, look: &Look) -> String {
    let mut out = String::new();
    if insights.findings.is_empty() {
        out.push_str("No N+1 queries or calls and no slow database queries.\n");
    } else {
        let mut t = table(
            vec![
                "finding",
                "service",
                "parent",
                "pattern",
                "spans",
                "time",
                "first span",
            ],
            look,
        );
        for f in &insights.findings {
            t.add_row(vec![
                f.kind.to_string(),
                f.service.clone(),
                f.parent.clone(),
                f.pattern.clone(),
                f.count.to_string(),
                ms(f.total_ms),
                f.span_id.clone(),
            ]);
        }
        right(&mut t, &[4, 5]);
        out.push_str(&format!("{t}\n"));
    }
    out.push_str("Where the time went:\n");
    out.push_str(&critical_path(&insights.critical_path, look));
    out
}
