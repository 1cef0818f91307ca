//! Deterministic synthetic traces of a realistic microservice system, for demos, tests
//! and benchmarks.
//!
//! A web shop of 16 services: requests enter at the frontend and fan out through an API
//! gateway to services that call databases, caches and each other, sequentially or in
//! parallel, up to 8 levels deep. Calls fail at per-service rates (2–5% of traces carry an
//! error) with `exception` events; failed calls are retried; latencies have a long tail.
//! Checkout publishes to a queue whose consumers run in their own traces, linked to the
//! producer span. Attributes use both old (`http.status_code`) and new
//! (`http.response.status_code`) semantic-convention names and every value type.
//!
//! The same seed always gives the same traces. [`random`] has small random traces and
//! queries for differential tests.

pub mod random;

use std::sync::Arc;

use traceql_format::codes::{kind, status};
use traceql_format::ids::{SpanId, TraceId};
use traceql_format::model::Trace;
use traceql_format::model::{Event, Link, Resource, Scope, Span};
use traceql_format::value::{KeyValue, Value};

/// 2026-11-01T00:00:00Z: where `traceql gen` and the benchmarks start generated traces,
/// so the same seed always gives the same data.
pub const EPOCH_UNIX_NANO: u64 = 1_793_491_200_000_000_000;

/// A small, fast, deterministic random number generator (SplitMix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A float in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An integer in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.next_u64() as usize % items.len()]
    }
}

/// What kind of work an operation is.
#[derive(Clone, Copy, PartialEq)]
enum Op {
    /// An HTTP endpoint.
    Http(&'static str, &'static str),
    /// A gRPC method.
    Rpc(&'static str),
    /// A database query.
    Db(&'static str, &'static str),
    /// A cache lookup.
    Cache,
    /// Publishing to a queue.
    Publish(&'static str),
    /// In-process work.
    Internal,
}

/// A call from one operation to another.
struct Call {
    to: usize,
    probability: f64,
    max_repeat: u64,
    parallel: bool,
}

struct Operation {
    service: usize,
    name: &'static str,
    op: Op,
    /// Median duration of its own work, microseconds.
    self_us: u64,
    error_rate: f64,
    calls: &'static [Call],
}

const fn call(to: usize, probability: f64, max_repeat: u64, parallel: bool) -> Call {
    Call {
        to,
        probability,
        max_repeat,
        parallel,
    }
}

const SERVICES: &[&str] = &[
    "frontend",
    "api-gateway",
    "auth",
    "cart",
    "checkout",
    "payment",
    "inventory",
    "shipping",
    "recommendation",
    "catalog",
    "currency",
    "fraud-detection",
    "email",
    "postgres",
    "redis",
    "order-worker",
];

// Operation indices used in the call table.
const GET_HOME: usize = 0;
const GET_PRODUCT: usize = 1;
const POST_CART: usize = 2;
const POST_CHECKOUT: usize = 3;
const ORDER_CONSUME: usize = 21;

static OPERATIONS: &[Operation] = &[
    // 0..=3: frontend entry points
    Operation {
        service: 0,
        name: "GET /",
        op: Op::Http("GET", "/"),
        self_us: 800,
        error_rate: 0.002,
        calls: &[
            call(4, 1.0, 1, false),
            call(8, 0.9, 1, true),
            call(9, 0.9, 1, true),
        ],
    },
    Operation {
        service: 0,
        name: "GET /product/{id}",
        op: Op::Http("GET", "/product/{id}"),
        self_us: 600,
        error_rate: 0.003,
        calls: &[
            call(4, 1.0, 1, false),
            call(10, 1.0, 1, true),
            call(8, 0.7, 1, true),
            call(11, 0.8, 1, true),
        ],
    },
    Operation {
        service: 0,
        name: "POST /cart",
        op: Op::Http("POST", "/cart"),
        self_us: 700,
        error_rate: 0.004,
        calls: &[call(4, 1.0, 1, false), call(12, 1.0, 1, false)],
    },
    Operation {
        service: 0,
        name: "POST /checkout",
        op: Op::Http("POST", "/checkout"),
        self_us: 900,
        error_rate: 0.005,
        calls: &[call(4, 1.0, 1, false), call(13, 1.0, 1, false)],
    },
    // 4: gateway auth
    Operation {
        service: 1,
        name: "AuthService/Verify",
        op: Op::Rpc("AuthService/Verify"),
        self_us: 200,
        error_rate: 0.002,
        calls: &[call(5, 1.0, 1, false)],
    },
    Operation {
        service: 2,
        name: "auth.verify_token",
        op: Op::Internal,
        self_us: 150,
        error_rate: 0.001,
        calls: &[call(6, 0.6, 1, false)],
    },
    Operation {
        service: 2,
        name: "GET session",
        op: Op::Cache,
        self_us: 120,
        error_rate: 0.001,
        calls: &[],
    },
    Operation {
        service: 13,
        name: "SELECT users",
        op: Op::Db("postgresql", "SELECT * FROM users WHERE id = $1"),
        self_us: 900,
        error_rate: 0.002,
        calls: &[],
    },
    // 8: recommendations
    Operation {
        service: 8,
        name: "RecommendationService/List",
        op: Op::Rpc("RecommendationService/List"),
        self_us: 3000,
        error_rate: 0.01,
        calls: &[call(9, 1.0, 1, false)],
    },
    // 9: catalog
    Operation {
        service: 9,
        name: "CatalogService/ListProducts",
        op: Op::Rpc("CatalogService/ListProducts"),
        self_us: 400,
        error_rate: 0.003,
        calls: &[call(14, 1.0, 1, false), call(15, 0.3, 1, false)],
    },
    // 10: product detail
    Operation {
        service: 9,
        name: "CatalogService/GetProduct",
        op: Op::Rpc("CatalogService/GetProduct"),
        self_us: 300,
        error_rate: 0.003,
        calls: &[call(14, 1.0, 1, false), call(16, 1.0, 1, true)],
    },
    // 11: currency
    Operation {
        service: 10,
        name: "CurrencyService/Convert",
        op: Op::Rpc("CurrencyService/Convert"),
        self_us: 150,
        error_rate: 0.002,
        calls: &[],
    },
    // 12: cart add
    Operation {
        service: 3,
        name: "CartService/AddItem",
        op: Op::Rpc("CartService/AddItem"),
        self_us: 300,
        error_rate: 0.006,
        calls: &[
            call(14, 1.0, 1, false),
            call(17, 1.0, 1, false),
            call(16, 1.0, 1, false),
        ],
    },
    // 13: checkout
    Operation {
        service: 4,
        name: "CheckoutService/PlaceOrder",
        op: Op::Rpc("CheckoutService/PlaceOrder"),
        self_us: 1500,
        error_rate: 0.01,
        calls: &[
            call(18, 1.0, 1, false),
            call(16, 1.0, 3, true),
            call(11, 1.0, 1, false),
            call(19, 1.0, 1, false),
            call(20, 1.0, 1, false),
            call(22, 1.0, 1, false),
        ],
    },
    // 14: cache
    Operation {
        service: 14,
        name: "GET",
        op: Op::Cache,
        self_us: 100,
        error_rate: 0.001,
        calls: &[],
    },
    // 15: catalog db
    Operation {
        service: 13,
        name: "SELECT products",
        op: Op::Db("postgresql", "SELECT * FROM products WHERE category = $1"),
        self_us: 2500,
        error_rate: 0.003,
        calls: &[],
    },
    // 16: inventory
    Operation {
        service: 6,
        name: "InventoryService/Check",
        op: Op::Rpc("InventoryService/Check"),
        self_us: 250,
        error_rate: 0.004,
        calls: &[call(23, 1.0, 1, false)],
    },
    // 17: cart write
    Operation {
        service: 14,
        name: "SET",
        op: Op::Cache,
        self_us: 150,
        error_rate: 0.002,
        calls: &[],
    },
    // 18: cart read for checkout
    Operation {
        service: 3,
        name: "CartService/GetCart",
        op: Op::Rpc("CartService/GetCart"),
        self_us: 250,
        error_rate: 0.003,
        calls: &[call(14, 1.0, 1, false)],
    },
    // 19: payment
    Operation {
        service: 5,
        name: "PaymentService/Charge",
        op: Op::Rpc("PaymentService/Charge"),
        self_us: 4000,
        error_rate: 0.03,
        calls: &[call(24, 1.0, 1, false), call(25, 1.0, 1, false)],
    },
    // 20: shipping
    Operation {
        service: 7,
        name: "ShippingService/Quote",
        op: Op::Rpc("ShippingService/Quote"),
        self_us: 800,
        error_rate: 0.005,
        calls: &[call(10, 0.5, 1, false)],
    },
    // 21: order worker (consumer trace root)
    Operation {
        service: 15,
        name: "orders process",
        op: Op::Internal,
        self_us: 2000,
        error_rate: 0.01,
        calls: &[call(26, 1.0, 1, false), call(27, 1.0, 1, false)],
    },
    // 22: publish order
    Operation {
        service: 4,
        name: "orders publish",
        op: Op::Publish("orders"),
        self_us: 300,
        error_rate: 0.002,
        calls: &[],
    },
    // 23: inventory db
    Operation {
        service: 13,
        name: "SELECT stock",
        op: Op::Db("postgresql", "SELECT quantity FROM stock WHERE sku = $1"),
        self_us: 700,
        error_rate: 0.002,
        calls: &[],
    },
    // 24: fraud
    Operation {
        service: 11,
        name: "FraudService/Score",
        op: Op::Rpc("FraudService/Score"),
        self_us: 6000,
        error_rate: 0.005,
        calls: &[call(7, 0.5, 1, false)],
    },
    // 25: payment db
    Operation {
        service: 13,
        name: "INSERT payments",
        op: Op::Db(
            "postgresql",
            "INSERT INTO payments (order_id, amount) VALUES ($1, $2)",
        ),
        self_us: 1200,
        error_rate: 0.003,
        calls: &[],
    },
    // 26: order db
    Operation {
        service: 13,
        name: "INSERT orders",
        op: Op::Db(
            "postgresql",
            "INSERT INTO orders (id, total) VALUES ($1, $2)",
        ),
        self_us: 1500,
        error_rate: 0.003,
        calls: &[],
    },
    // 27: email
    Operation {
        service: 12,
        name: "EmailService/SendConfirmation",
        op: Op::Rpc("EmailService/SendConfirmation"),
        self_us: 5000,
        error_rate: 0.01,
        calls: &[call(5, 0.3, 1, false)],
    },
];

/// The span making a call: client spans belong to its service.
#[derive(Clone, Copy)]
struct Caller<'a> {
    span_id: SpanId,
    resource: &'a Arc<Resource>,
    scope: &'a Arc<Scope>,
}

/// The generator: resources and scopes are built once and shared.
pub struct Generator {
    rng: Rng,
    resources: Vec<Vec<Arc<Resource>>>,
    scopes: Vec<Arc<Scope>>,
    /// Start of the first trace, unix nanoseconds.
    start_unix_nano: u64,
    /// Mean gap between trace starts, nanoseconds.
    gap_nano: u64,
    next_start: u64,
    pending_consumers: Vec<(TraceId, SpanId, u64)>,
}

fn kv(key: &str, value: Value) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value,
    }
}

fn s(v: &str) -> Value {
    Value::Str(v.to_string())
}

const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-southeast-2"];

impl Generator {
    /// A generator for `seed`, with traces starting at `start_unix_nano`, `gap_nano` apart
    /// on average.
    pub fn new(seed: u64, start_unix_nano: u64, gap_nano: u64) -> Generator {
        let mut rng = Rng::new(seed);
        let resources = SERVICES
            .iter()
            .enumerate()
            .map(|(i, service)| {
                (0..3)
                    .map(|pod| {
                        let region = REGIONS[(i + pod) % REGIONS.len()];
                        Arc::new(Resource {
                            attributes: vec![
                                kv("service.name", s(service)),
                                kv("service.version", s(&format!("1.{}.{}", i % 5, pod))),
                                kv("deployment.environment", s("production")),
                                kv(
                                    "k8s.namespace.name",
                                    s(if i >= 13 { "data" } else { "shop" }),
                                ),
                                kv(
                                    "k8s.pod.name",
                                    s(&format!("{service}-{:08x}-{pod}", rng.next_u64() as u32)),
                                ),
                                kv("cloud.region", s(region)),
                                kv("host.cpu.count", Value::Int([2, 4, 8][pod % 3])),
                            ],
                            dropped_attributes_count: 0,
                            schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                        })
                    })
                    .collect()
            })
            .collect();
        let scopes = SERVICES
            .iter()
            .map(|service| {
                Arc::new(Scope {
                    name: format!("shop.{service}"),
                    version: "1.0.0".into(),
                    attributes: vec![],
                    dropped_attributes_count: 0,
                    schema_url: String::new(),
                })
            })
            .collect();
        Generator {
            rng,
            resources,
            scopes,
            start_unix_nano,
            gap_nano: gap_nano.max(1),
            next_start: start_unix_nano,
            pending_consumers: Vec::new(),
        }
    }

    /// No trace made from now on starts before this, unix nanoseconds. Traces come
    /// roughly in order of start: a queue consumer's trace starts when its message is
    /// received, after traces made later than it.
    pub fn next_start(&self) -> u64 {
        self.next_start
    }

    /// The next trace, with its spans in the order they were created.
    pub fn next_trace(&mut self) -> Trace {
        let gap = self.rng.range(0, 2 * self.gap_nano);
        self.next_start += gap;
        let start = self.next_start;
        let mut trace_id = [0u8; 16];
        trace_id[..8].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        trace_id[8..].copy_from_slice(&self.rng.next_u64().to_be_bytes());
        let mut spans = Vec::new();
        if let Some((producer_trace, producer_span, at)) = self.pending_consumers.pop() {
            let link = Link {
                trace_id: producer_trace,
                span_id: producer_span,
                trace_state: String::new(),
                flags: 1,
                attributes: vec![kv("messaging.operation", s("receive"))],
                dropped_attributes_count: 0,
            };
            self.operation(
                &mut spans,
                trace_id,
                ORDER_CONSUME,
                None,
                at.max(start),
                0,
                vec![link],
            );
            return spans;
        }
        let root = match self.rng.unit() {
            x if x < 0.35 => GET_HOME,
            x if x < 0.75 => GET_PRODUCT,
            x if x < 0.92 => POST_CART,
            _ => POST_CHECKOUT,
        };
        self.operation(&mut spans, trace_id, root, None, start, 0, vec![]);
        spans
    }

    /// The start of the first trace, unix nanoseconds.
    pub fn start_unix_nano(&self) -> u64 {
        self.start_unix_nano
    }

    fn span_id(&mut self) -> SpanId {
        let id = self.rng.next_u64().max(1);
        id.to_be_bytes()
    }

    /// A long-tailed duration around `median_us`.
    fn latency(&mut self, median_us: u64) -> u64 {
        let u = self.rng.unit().max(1e-9);
        // Exponential body with a rare heavy tail.
        let factor = if self.rng.chance(0.01) {
            10.0 + 40.0 * self.rng.unit()
        } else {
            -u.ln() * 0.7 + 0.3
        };
        (median_us as f64 * factor * 1000.0) as u64 + 1000
    }

    /// Emits the span of `op` (and its subtree) starting at `start`; returns
    /// (end, failed).
    #[allow(clippy::too_many_arguments)]
    fn operation(
        &mut self,
        spans: &mut Vec<Span>,
        trace_id: TraceId,
        op_index: usize,
        parent: Option<SpanId>,
        start: u64,
        depth: usize,
        links: Vec<Link>,
    ) -> (u64, bool) {
        let op = &OPERATIONS[op_index];
        let span_id = self.span_id();
        let position = spans.len();
        let pod = self.rng.range(0, 2) as usize;
        let resource = Arc::clone(&self.resources[op.service][pod]);
        let scope = Arc::clone(&self.scopes[op.service]);
        let mut cursor = start + self.latency(op.self_us) / 4;
        let mut failed_child = false;
        if depth < 8 {
            for c in op.calls {
                if !self.rng.chance(c.probability) {
                    continue;
                }
                let repeat = self.rng.range(1, c.max_repeat);
                let mut parallel_end = cursor;
                for _ in 0..repeat {
                    let caller = Caller {
                        span_id,
                        resource: &resource,
                        scope: &scope,
                    };
                    let (end, failed) =
                        self.client_call(spans, trace_id, caller, c.to, cursor, depth + 1);
                    failed_child |= failed;
                    if c.parallel {
                        parallel_end = parallel_end.max(end);
                    } else {
                        cursor = end;
                    }
                }
                cursor = cursor.max(parallel_end);
            }
        }
        let end = cursor + self.latency(op.self_us) * 3 / 4;
        let failed = self.rng.chance(op.error_rate) || (failed_child && self.rng.chance(0.5));
        let mut span = Span {
            parent_span_id: parent,
            flags: 1,
            kind: kind::INTERNAL,
            links,
            status_code: status::UNSET,
            resource,
            scope,
            ..Span::bare(trace_id, span_id, op.name, start, end)
        };
        self.describe(&mut span, op, failed);
        if let Op::Publish(_) = op.op {
            self.pending_consumers.push((
                trace_id,
                span_id,
                end + self.rng.range(1_000_000, 50_000_000),
            ));
        }
        spans.insert(position, span);
        (end, failed)
    }

    /// A client span in the caller's service around a call to operation `to`, retried
    /// up to twice when it fails.
    fn client_call(
        &mut self,
        spans: &mut Vec<Span>,
        trace_id: TraceId,
        caller: Caller<'_>,
        to: usize,
        start: u64,
        depth: usize,
    ) -> (u64, bool) {
        let target = &OPERATIONS[to];
        if !matches!(target.op, Op::Rpc(_)) {
            return self.operation(
                spans,
                trace_id,
                to,
                Some(caller.span_id),
                start,
                depth,
                vec![],
            );
        }
        let mut at = start;
        let mut attempt = 0;
        loop {
            let client_id = self.span_id();
            let position = spans.len();
            let (server_end, failed) = self.operation(
                spans,
                trace_id,
                to,
                Some(client_id),
                at + 200_000,
                depth + 1,
                vec![],
            );
            let end = server_end + 300_000;
            let Op::Rpc(method) = target.op else {
                unreachable!()
            };
            let mut attributes = vec![
                kv("rpc.system", s("grpc")),
                kv("rpc.method", s(method)),
                kv("server.address", s(SERVICES[target.service])),
                kv("net.peer.name", s(SERVICES[target.service])),
                kv(
                    "rpc.grpc.status_code",
                    Value::Int(if failed { 14 } else { 0 }),
                ),
            ];
            if attempt > 0 {
                attributes.push(kv("retry.attempt", Value::Int(attempt)));
            }
            spans.insert(
                position,
                Span {
                    trace_id,
                    span_id: client_id,
                    parent_span_id: Some(caller.span_id),
                    trace_state: String::new(),
                    flags: 1,
                    name: method.to_string(),
                    kind: kind::CLIENT,
                    start_unix_nano: at,
                    end_unix_nano: end,
                    attributes,
                    dropped_attributes_count: 0,
                    events: vec![],
                    dropped_events_count: 0,
                    links: vec![],
                    dropped_links_count: 0,
                    status_code: if failed { status::ERROR } else { status::UNSET },
                    status_message: if failed {
                        "UNAVAILABLE".into()
                    } else {
                        String::new()
                    },
                    resource: Arc::clone(caller.resource),
                    scope: Arc::clone(caller.scope),
                },
            );
            if !failed || attempt == 2 || !self.rng.chance(0.7) {
                return (end, failed);
            }
            attempt += 1;
            at = end + self.rng.range(1_000_000, 20_000_000);
        }
    }

    /// Kind, status, attributes and events of a span of `op`.
    fn describe(&mut self, span: &mut Span, op: &Operation, failed: bool) {
        let a = &mut span.attributes;
        match op.op {
            Op::Http(method, route) => {
                span.kind = kind::SERVER;
                let status = if failed {
                    *self.rng.pick(&[500, 502, 503, 504])
                } else {
                    *self.rng.pick(&[200, 200, 200, 201, 304])
                };
                a.push(kv("http.method", s(method)));
                a.push(kv("http.request.method", s(method)));
                a.push(kv("http.route", s(route)));
                a.push(kv(
                    "http.target",
                    s(&route.replace("{id}", &self.rng.range(1, 5000).to_string())),
                ));
                a.push(kv("http.status_code", Value::Int(status)));
                a.push(kv("http.response.status_code", Value::Int(status)));
                a.push(kv(
                    "user.id",
                    s(&format!("user-{}", self.rng.range(1, 20_000))),
                ));
                a.push(kv("session.new", Value::Bool(self.rng.chance(0.2))));
                a.push(kv(
                    "request.size_kb",
                    Value::Float((self.rng.unit() * 64.0 * 100.0).round() / 100.0),
                ));
                if self.rng.chance(0.3) {
                    let flags = [
                        "new-checkout",
                        "dark-mode",
                        "fast-search",
                        "recommendations-v2",
                    ];
                    let n = self.rng.range(1, 3) as usize;
                    a.push(kv(
                        "feature.flags",
                        Value::StrArray(flags[..n].iter().map(|f| f.to_string()).collect()),
                    ));
                }
                if route == "/cart" {
                    a.push(kv("cart.items", Value::Int(self.rng.range(1, 12) as i64)));
                }
                if route == "/checkout" {
                    a.push(kv(
                        "order.total",
                        Value::Float((self.rng.unit() * 500.0 * 100.0).round() / 100.0),
                    ));
                    a.push(kv(
                        "order.item_ids",
                        Value::IntArray(
                            (0..self.rng.range(1, 4))
                                .map(|_| self.rng.range(1, 5000) as i64)
                                .collect(),
                        ),
                    ));
                }
            }
            Op::Rpc(method) => {
                span.kind = kind::SERVER;
                a.push(kv("rpc.system", s("grpc")));
                a.push(kv(
                    "rpc.service",
                    s(method.split('/').next().unwrap_or(method)),
                ));
                a.push(kv("rpc.method", s(method)));
                a.push(kv(
                    "rpc.grpc.status_code",
                    Value::Int(if failed { 13 } else { 0 }),
                ));
            }
            Op::Db(system, statement) => {
                span.kind = kind::CLIENT;
                a.push(kv("db.system", s(system)));
                a.push(kv("db.statement", s(statement)));
                a.push(kv("db.query.text", s(statement)));
                a.push(kv(
                    "db.rows_affected",
                    Value::Int(self.rng.range(0, 50) as i64),
                ));
                a.push(kv("server.address", s("postgres.data.svc")));
                a.push(kv("server.port", Value::Int(5432)));
            }
            Op::Cache => {
                span.kind = kind::CLIENT;
                a.push(kv("db.system", s("redis")));
                a.push(kv("cache.hit", Value::Bool(self.rng.chance(0.85))));
                a.push(kv("server.address", s("redis.data.svc")));
            }
            Op::Publish(topic) => {
                span.kind = kind::PRODUCER;
                a.push(kv("messaging.system", s("kafka")));
                a.push(kv("messaging.destination.name", s(topic)));
                a.push(kv("messaging.destination", s(topic)));
                a.push(kv(
                    "messaging.message.body.size",
                    Value::Int(self.rng.range(200, 4000) as i64),
                ));
            }
            Op::Internal => {
                if span.links.is_empty() {
                    span.kind = kind::INTERNAL;
                } else {
                    span.kind = kind::CONSUMER;
                    a.push(kv("messaging.system", s("kafka")));
                    a.push(kv("messaging.destination.name", s("orders")));
                    a.push(kv("messaging.operation", s("process")));
                }
            }
        }
        if failed {
            span.status_code = status::ERROR;
            let (kind, message) = *self.rng.pick(&[
                ("java.net.SocketTimeoutException", "Read timed out"),
                (
                    "io.grpc.StatusRuntimeException",
                    "UNAVAILABLE: upstream connect error",
                ),
                ("org.postgresql.util.PSQLException", "deadlock detected"),
                (
                    "java.lang.IllegalStateException",
                    "payment declined by issuer",
                ),
            ]);
            span.status_message = message.to_string();
            let at = span.start_unix_nano + (span.end_unix_nano - span.start_unix_nano) * 9 / 10;
            span.events.push(Event {
                time_unix_nano: at,
                name: "exception".into(),
                attributes: vec![
                    kv("exception.type", s(kind)),
                    kv("exception.message", s(message)),
                    kv(
                        "exception.stacktrace",
                        s(&format!(
                            "{kind}: {message}\n\tat shop.{}.handle(Handler.java:{})",
                            SERVICES[op.service],
                            self.rng.range(20, 400)
                        )),
                    ),
                    kv("exception.escaped", Value::Bool(true)),
                ],
                dropped_attributes_count: 0,
            });
        } else if self.rng.chance(0.05) {
            span.status_code = status::OK;
        }
        if self.rng.chance(0.02) {
            span.events.push(Event {
                time_unix_nano: span.start_unix_nano + 1000,
                name: "log".into(),
                attributes: vec![
                    kv("log.severity", s("WARN")),
                    kv("log.message", s("slow dependency")),
                ],
                dropped_attributes_count: 0,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_traces() {
        let a: Vec<Trace> = {
            let mut g = Generator::new(7, 1_000, 1_000_000);
            (0..50).map(|_| g.next_trace()).collect()
        };
        let b: Vec<Trace> = {
            let mut g = Generator::new(7, 1_000, 1_000_000);
            (0..50).map(|_| g.next_trace()).collect()
        };
        assert_eq!(a, b);
        let c: Vec<Trace> = {
            let mut g = Generator::new(8, 1_000, 1_000_000);
            (0..50).map(|_| g.next_trace()).collect()
        };
        assert_ne!(a, c);
    }

    #[test]
    fn traces_have_a_realistic_shape() {
        let mut g = Generator::new(42, 0, 1_000_000);
        let traces: Vec<Trace> = (0..2000).map(|_| g.next_trace()).collect();
        let spans: Vec<&Span> = traces.iter().flatten().collect();
        let services: std::collections::HashSet<&str> = spans
            .iter()
            .filter_map(|s| s.resource.service_name())
            .collect();
        assert!(services.len() >= 10, "{services:?}");
        let errored = traces
            .iter()
            .filter(|t| t.iter().any(|s| s.status_code == status::ERROR))
            .count();
        let rate = errored as f64 / traces.len() as f64;
        assert!((0.02..=0.12).contains(&rate), "error rate {rate}");
        assert!(
            spans
                .iter()
                .any(|s| s.events.iter().any(|e| e.name == "exception"))
        );
        assert!(
            spans
                .iter()
                .any(|s| !s.links.is_empty() && s.kind == kind::CONSUMER)
        );
        assert!(
            spans
                .iter()
                .any(|s| s.attributes.iter().any(|kv| kv.key == "retry.attempt"))
        );
        for kind in 1..=5 {
            assert!(spans.iter().any(|s| s.kind == kind), "kind {kind}");
        }
        // Depth: follow parents.
        let max_depth = traces
            .iter()
            .map(|t| {
                let ids: std::collections::HashMap<SpanId, Option<SpanId>> =
                    t.iter().map(|s| (s.span_id, s.parent_span_id)).collect();
                t.iter()
                    .map(|s| {
                        let mut d = 1;
                        let mut p = s.parent_span_id;
                        while let Some(id) = p {
                            d += 1;
                            p = ids.get(&id).copied().flatten();
                        }
                        d
                    })
                    .max()
                    .unwrap_or(0)
            })
            .max()
            .unwrap();
        assert!((6..=12).contains(&max_depth), "depth {max_depth}");
        for t in &traces {
            assert!(
                t.iter()
                    .all(|s| s.trace_id == t[0].trace_id && s.end_unix_nano >= s.start_unix_nano)
            );
            // An RPC client span belongs to the service of the span making the call.
            for s in t.iter().filter(|s| {
                s.kind == kind::CLIENT && s.attributes.iter().any(|kv| kv.key == "rpc.system")
            }) {
                let parent = t
                    .iter()
                    .find(|p| Some(p.span_id) == s.parent_span_id)
                    .expect("caller in trace");
                assert_eq!(
                    s.resource.service_name(),
                    parent.resource.service_name(),
                    "{}",
                    s.name
                );
            }
        }
    }
}
