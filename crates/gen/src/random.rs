//! Small random traces and TraceQL search queries over them: the inputs of differential
//! tests, which hold an engine's answers to a reference evaluator's, or to its own
//! answers elsewhere (on a cluster). Traces have random shapes (roots, children, orphans
//! whose parent is missing, repeated keys, arrays, events, attributes at span and
//! resource level); queries use every spanset operator, filters of every kind,
//! aggregates, `by()`, `coalesce()` and `select()`.

use std::sync::Arc;

use traceql_format::model::{Event, Resource, Scope, Span};
use traceql_format::value::Value;

use crate::{Rng, kv};

/// The spans of a few small traces with random shapes, the same for the same `seed`.
pub fn traces(seed: u64) -> Vec<Span> {
    let mut rng = Rng::new(seed);
    let resources: Vec<Arc<Resource>> = ["api", "db", "web"]
        .iter()
        .map(|name| {
            let mut attributes = vec![kv("service.name", Value::Str(name.to_string()))];
            if rng.chance(0.5) {
                attributes.push(kv("a", Value::Int(rng.range(0, 3) as i64)));
            }
            if rng.chance(0.3) {
                attributes.push(kv("b", Value::Str(rng.pick(&["x", "y"]).to_string())));
            }
            Arc::new(Resource {
                attributes,
                ..Resource::default()
            })
        })
        .collect();
    let scope = Arc::new(Scope {
        name: "lib".into(),
        version: "1.0".into(),
        ..Scope::default()
    });
    let mut spans = Vec::new();
    for t in 0..rng.range(1, 6) {
        let trace_id: [u8; 16] = std::array::from_fn(|i| {
            if i == 15 {
                t as u8 + 1
            } else if i == 0 {
                (seed % 251) as u8
            } else {
                0
            }
        });
        let n = rng.range(1, 8) as usize;
        let base = 1_000_000_000_000 + t * 1_000_000_000;
        for i in 0..n {
            let span_id: [u8; 8] = [t as u8 + 1, i as u8 + 1, 0, 0, 0, 0, 0, 7];
            let parent = match rng.range(0, 9) {
                0 | 1 if i > 0 => None,
                2 => Some([t as u8 + 1, 99, 0, 0, 0, 0, 0, 7]),
                _ if i == 0 => None,
                _ => Some([
                    t as u8 + 1,
                    rng.range(0, i as u64 - 1) as u8 + 1,
                    0,
                    0,
                    0,
                    0,
                    0,
                    7,
                ]),
            };
            let mut attributes = Vec::new();
            if rng.chance(0.6) {
                attributes.push(kv("a", Value::Int(rng.range(0, 3) as i64)));
            }
            if rng.chance(0.5) {
                attributes.push(kv(
                    "b",
                    Value::Str(rng.pick(&["x", "y", "z", "1"]).to_string()),
                ));
            }
            if rng.chance(0.4) {
                attributes.push(kv("c", Value::Float(rng.range(0, 4) as f64 / 2.0)));
            }
            if rng.chance(0.3) {
                attributes.push(kv("d", Value::Bool(rng.chance(0.5))));
            }
            if rng.chance(0.3) {
                let items = (0..rng.range(1, 3))
                    .map(|_| rng.range(0, 3) as i64)
                    .collect();
                attributes.push(kv("arr", Value::IntArray(items)));
            }
            // Often enough to be a typed column.
            if rng.chance(0.7) {
                let items = (0..rng.range(1, 3))
                    .map(|_| rng.pick(&["x", "y", "z"]).to_string())
                    .collect();
                attributes.push(kv("tags", Value::StrArray(items)));
            }
            if rng.chance(0.15) {
                attributes.push(kv("a", Value::Str("1".into())));
            }
            let start = base + rng.range(0, 50) * 1_000_000;
            let events = (0..rng.range(0, 2))
                .map(|k| Event {
                    time_unix_nano: start + k * 1_000_000,
                    name: rng.pick(&["exception", "retry"]).to_string(),
                    attributes: if rng.chance(0.5) {
                        vec![kv("e", Value::Int(rng.range(0, 2) as i64))]
                    } else {
                        vec![]
                    },
                    dropped_attributes_count: 0,
                })
                .collect();
            spans.push(Span {
                trace_id,
                span_id,
                parent_span_id: parent,
                trace_state: String::new(),
                flags: 0,
                name: rng.pick(&["GET /", "db.query", "auth", "pay"]).to_string(),
                kind: rng.range(0, 5) as i8,
                start_unix_nano: start,
                end_unix_nano: start + rng.range(1, 40) * 1_000_000,
                attributes,
                dropped_attributes_count: 0,
                events,
                dropped_events_count: 0,
                links: vec![],
                dropped_links_count: 0,
                status_code: rng.range(0, 2) as i8,
                status_message: if rng.chance(0.2) {
                    "boom".into()
                } else {
                    String::new()
                },
                resource: Arc::clone(rng.pick(&resources)),
                scope: Arc::clone(&scope),
            });
        }
    }
    spans
}

/// A random boolean field expression.
fn field(rng: &mut Rng, depth: u32) -> String {
    let choice = rng.range(0, if depth == 0 { 5 } else { 8 });
    let cmp = ["=", "!=", "<", "<=", ">", ">="];
    match choice {
        0 | 1 => {
            let attr = rng.pick(&["span.a", ".a", "resource.a", ".arr", "event.e", ".c"]);
            let value = rng.pick(&["0", "1", "2", "1.5", "\"1\"", "2.0"]);
            format!("{attr} {} {value}", rng.pick(&cmp))
        }
        2 => {
            let attr = rng.pick(&[
                ".b",
                "span.b",
                "resource.b",
                "name",
                "statusMessage",
                "resource.service.name",
                "event:name",
                "trace:rootService",
                "span.tags",
                ".tags",
            ]);
            let value = rng.pick(&[
                "\"x\"",
                "\"y\"",
                "\"1\"",
                "\"auth\"",
                "\"api\"",
                "\"exception\"",
                "\"\"",
            ]);
            format!("{attr} {} {value}", rng.pick(&["=", "!=", "<", ">"]))
        }
        3 => match rng.range(0, 4) {
            0 => format!(
                "status {} {}",
                rng.pick(&["=", "!="]),
                rng.pick(&["error", "ok", "unset"])
            ),
            1 => format!(
                "kind {} {}",
                rng.pick(&["=", "!="]),
                rng.pick(&["server", "client", "internal"])
            ),
            2 => format!(
                "duration {} {}",
                rng.pick(&cmp),
                rng.pick(&["10ms", "20ms", "5ms"])
            ),
            3 => format!(".d = {}", rng.pick(&["true", "false"])),
            _ => format!("event:timeSinceStart {} 0", rng.pick(&[">", "="])),
        },
        4 => format!(
            "{} {} nil",
            rng.pick(&[".a", "span.b", "resource.b", "event.e", ".arr", ".d"]),
            rng.pick(&["=", "!="])
        ),
        5 => match rng.range(0, 2) {
            0 => format!(
                "{} {} \"{}\"",
                rng.pick(&[".b", "name"]),
                rng.pick(&["=~", "!~"]),
                rng.pick(&["x|y", ".*a.*", "db\\..*"])
            ),
            1 => format!(
                "{} {} {} {} {}",
                rng.pick(&[".a", ".c", "span.a"]),
                rng.pick(&["+", "-", "*", "/"]),
                rng.pick(&["1", "2", "0.5"]),
                rng.pick(&cmp),
                rng.pick(&["1", "2", "3"])
            ),
            _ => format!(
                "{} = {}",
                rng.pick(&[".a", "span.a"]),
                rng.pick(&["resource.a", ".c"])
            ),
        },
        6 => format!("({} && {})", field(rng, depth - 1), field(rng, depth - 1)),
        7 => format!("({} || {})", field(rng, depth - 1), field(rng, depth - 1)),
        _ => format!("!({})", field(rng, depth - 1)),
    }
}

/// Every spanset operator, as [`query`] writes them.
pub const SPANSET_OPS: [&str; 17] = [
    "&&", "||", ">", "<", ">>", "<<", "~", "!>", "!<", "!>>", "!<<", "!~", "&>", "&<", "&>>",
    "&<<", "&~",
];

fn spanset(rng: &mut Rng, depth: u32) -> String {
    match rng.range(0, if depth == 0 { 3 } else { 5 }) {
        0 => "{ }".into(),
        1..=3 => format!("{{ {} }}", field(rng, 1)),
        4 => format!(
            "({} | count() > {})",
            spanset(rng, depth - 1),
            rng.range(0, 2)
        ),
        _ => format!(
            "({} {} {})",
            spanset(rng, depth - 1),
            rng.pick(&SPANSET_OPS),
            spanset(rng, depth - 1)
        ),
    }
}

/// A random search query over the attributes of [`traces`].
pub fn query(rng: &mut Rng) -> String {
    let mut q = spanset(rng, 2);
    for _ in 0..rng.range(0, 2) {
        let stage = match rng.range(0, 10) {
            0 => format!("count() > {}", rng.range(0, 3)),
            1 => format!("count() = {}", rng.range(1, 3)),
            2 => "avg(duration) > 10ms".into(),
            3 => "max(.a) >= 2".into(),
            4 => "sum(.c) > 1".into(),
            5 => "min(duration) < 8ms".into(),
            6 => format!(
                "by({})",
                rng.pick(&[".b", "resource.service.name", "span.a", "status"])
            ),
            7 => "coalesce()".into(),
            8 => "select(.a, status)".into(),
            _ => format!("{{ {} }}", field(rng, 1)),
        };
        q = format!("{q} | {stage}");
    }
    q
}
