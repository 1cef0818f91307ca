//! The requests between services in each trace, with Grafana Tempo's service-graph
//! rules (its metrics-generator's `service-graphs` processor), resolved per trace
//! instead of over a stream:
//!
//! - A client (or producer) span and the server (or consumer) span whose parent it is
//!   make one request from the client's service to the server's. Either side being a
//!   producer or consumer makes it a `messaging_system` request; otherwise the
//!   connection type is unset (empty).
//! - A client or producer span naming a database (its own or its resource's
//!   `db.namespace`, `db.name`, `db.system`, `db.system.name`, in that order) is a
//!   `database` request on its own, to the server named by `peer.service`,
//!   `server.address`, `network.peer.address` (with `:network.peer.port`) or else the
//!   database attribute; both latencies are the client span's.
//! - A root server span is called by a `virtual_node` client: its first peer attribute
//!   (`peer.service`, `db.name`, `db.system`, `db.system.name`), or `user`.
//! - A client span that no server span answers calls a `virtual_node` server named by
//!   its first peer attribute; without one it is no request.
//! - A request failed if either side has status error. A side that is missing has
//!   latency 0.
//! - Spans whose resource has no `service.name` take no part.
//!
//! Where Tempo pairs spans as they arrive, a client span here is paired with the server
//! child that starts first (then the first in the trace's depth-first order); further
//! server children of the same client are, as in Tempo, no request. Parents are found by
//! the spans' nested-set numbers (small integers, where span ids are 8 random bytes to
//! read), which every kind of block gives with the same meaning. Each request is written on one row — the client
//! span's, or for a virtual client the server span's — so the requests of a trace are
//! the rows where [`CLIENT`] is not null.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Int8Array, Int32Array, RecordBatch, StringArray, StringViewBuilder,
    UInt64Array, UInt64Builder,
};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::error::Result;
use traceql_format::codes::{kind, status};
use traceql_format::schema::columns as c;

use super::{FirstOf, TraceOperator, column, text_at};

/// Input: the span's `resource.service.name` (`Utf8`, null when none).
pub const SERVICE: &str = "__service";

/// Output: the calling service of the request written on this row (`Utf8View`), null
/// on rows without one.
pub const CLIENT: &str = "__edge_client";
/// Output: the called service.
pub const SERVER: &str = "__edge_server";
/// Output: the connection type (`""`, `messaging_system`, `database`, `virtual_node`).
pub const CONNECTION_TYPE: &str = "__edge_connection_type";
/// Output: whether the request failed (`Boolean`).
pub const FAILED: &str = "__edge_failed";
/// Output: the server side's latency in nanoseconds (`UInt64`, 0 when missing).
pub const SERVER_NANOS: &str = "__edge_server_nanos";
/// Output: the client side's latency in nanoseconds (`UInt64`, 0 when missing).
pub const CLIENT_NANOS: &str = "__edge_client_nanos";

/// The connection type of a request between a producer and a consumer.
pub const MESSAGING_SYSTEM: &str = "messaging_system";
/// The connection type of a database request.
pub const DATABASE_TYPE: &str = "database";
/// The connection type of a request with a side named from attributes.
pub const VIRTUAL_NODE: &str = "virtual_node";
/// The client of a root server span without peer attributes.
pub const USER: &str = "user";

/// The service-graph requests of each trace (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize)]
pub struct ServiceEdges {
    /// The input columns of the attributes it reads.
    pub columns: EdgeColumns,
}

/// The input columns (`Utf8`) of each attribute the operator reads, in order of
/// preference (see [`FirstOf`]).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, serde::Serialize, serde::Deserialize,
)]
pub struct EdgeColumns {
    /// The database a client span names: a span with one is a database call.
    pub database: Vec<String>,
    /// The server a database call goes to, when the span names one (else the
    /// database).
    pub database_server: Vec<String>,
    /// The span's peer attributes, naming the other side of a virtual node.
    pub peer: Vec<String>,
}

/// One request found in a trace, written on row `row`.
struct Edge<'a> {
    row: usize,
    client: &'a str,
    server: &'a str,
    connection_type: &'static str,
    failed: bool,
    server_nanos: u64,
    client_nanos: u64,
}

/// The input columns of a batch.
struct Spans<'a> {
    /// The span's nested-set number, unique in its trace.
    left: &'a Int32Array,
    /// The parent's nested-set number: -1 for a root, below -1 for a span whose parent
    /// is not in the trace.
    parent: &'a Int32Array,
    kind: &'a Int8Array,
    status: &'a Int8Array,
    start: &'a UInt64Array,
    duration: &'a UInt64Array,
    service: &'a StringArray,
    database: FirstOf<'a>,
    database_server: FirstOf<'a>,
    peer: FirstOf<'a>,
}

impl<'a> Spans<'a> {
    fn new(batch: &'a RecordBatch, columns: &EdgeColumns) -> Result<Self> {
        Ok(Spans {
            left: column(batch, c::NESTED_SET_LEFT)?,
            parent: column(batch, c::NESTED_SET_PARENT)?,
            kind: column(batch, c::KIND)?,
            status: column(batch, c::STATUS_CODE)?,
            start: column(batch, c::START_UNIX_NANO)?,
            duration: column(batch, c::DURATION_NANO)?,
            service: column(batch, SERVICE)?,
            database: FirstOf::new(batch, &columns.database)?,
            database_server: FirstOf::new(batch, &columns.database_server)?,
            peer: FirstOf::new(batch, &columns.peer)?,
        })
    }

    fn service(&self, row: usize) -> Option<&'a str> {
        text_at(self.service, row)
    }

    fn failed(&self, row: usize) -> bool {
        self.status.value(row) == status::ERROR
    }

    /// The requests of the trace in `rows`, using `waiting` and `servers` (left empty)
    /// as scratch space.
    fn edges(
        &self,
        rows: Range<usize>,
        waiting: &mut Vec<(i32, usize, bool)>,
        servers: &mut Vec<usize>,
        out: &mut Vec<Edge<'a>>,
    ) {
        let is_client = |k| k == kind::CLIENT || k == kind::PRODUCER;
        let is_server = |k| k == kind::SERVER || k == kind::CONSUMER;
        // `waiting`: client spans that wait for a server span: (nested-set number, row,
        // answered), sorted by number.
        for row in rows {
            let k = self.kind.value(row);
            let Some(service) = self.service(row) else {
                continue;
            };
            if is_client(k) {
                if let Some(database) = self.database.first(row) {
                    let server = self.database_server.first(row).unwrap_or(database);
                    let nanos = self.duration.value(row);
                    out.push(Edge {
                        row,
                        client: service,
                        server,
                        connection_type: DATABASE_TYPE,
                        failed: self.failed(row),
                        server_nanos: nanos,
                        client_nanos: nanos,
                    });
                } else {
                    waiting.push((self.left.value(row), row, false));
                }
            } else if is_server(k) {
                servers.push(row);
            }
        }
        waiting.sort_unstable_by_key(|w| w.0);
        // The server child that starts first answers its client.
        servers.sort_unstable_by_key(|&row| (self.start.value(row), self.left.value(row)));
        for server in servers.drain(..) {
            let service = self.service(server).unwrap_or_default();
            let parent = self.parent.value(server);
            if parent == -1 {
                out.push(Edge {
                    row: server,
                    client: self.peer.first(server).unwrap_or(USER),
                    server: service,
                    connection_type: VIRTUAL_NODE,
                    failed: self.failed(server),
                    server_nanos: self.duration.value(server),
                    client_nanos: 0,
                });
                continue;
            }
            let Ok(at) = waiting.binary_search_by_key(&parent, |w| w.0) else {
                continue; // no parent in the trace, or not a waiting client
            };
            let (_, client, answered) = &mut waiting[at];
            if *answered {
                continue;
            }
            *answered = true;
            let client = *client;
            let messaging = [client, server]
                .iter()
                .any(|&row| matches!(self.kind.value(row), kind::PRODUCER | kind::CONSUMER));
            out.push(Edge {
                row: client,
                client: self.service(client).unwrap_or_default(),
                server: service,
                connection_type: if messaging { MESSAGING_SYSTEM } else { "" },
                failed: self.failed(client) || self.failed(server),
                server_nanos: self.duration.value(server),
                client_nanos: self.duration.value(client),
            });
        }
        // Clients that no server answered call the server their peer attribute names.
        for (_, row, answered) in waiting.drain(..) {
            if answered {
                continue;
            }
            if let Some(peer) = self.peer.first(row) {
                out.push(Edge {
                    row,
                    client: self.service(row).unwrap_or_default(),
                    server: peer,
                    connection_type: VIRTUAL_NODE,
                    failed: self.failed(row),
                    server_nanos: 0,
                    client_nanos: self.duration.value(row),
                });
            }
        }
    }
}

impl TraceOperator for ServiceEdges {
    fn name(&self) -> &'static str {
        "ServiceEdges"
    }

    fn outputs(&self) -> Vec<Field> {
        vec![
            Field::new(CLIENT, DataType::Utf8View, true),
            Field::new(SERVER, DataType::Utf8View, true),
            Field::new(CONNECTION_TYPE, DataType::Utf8View, true),
            Field::new(FAILED, DataType::Boolean, true),
            Field::new(SERVER_NANOS, DataType::UInt64, true),
            Field::new(CLIENT_NANOS, DataType::UInt64, true),
        ]
    }

    fn describe(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "requests between services, by Tempo's service-graph rules"
        )
    }

    fn evaluate(&self, batch: &RecordBatch, traces: &[Range<usize>]) -> Result<Vec<ArrayRef>> {
        let spans = Spans::new(batch, &self.columns)?;
        let mut edges = Vec::new();
        let (mut waiting, mut servers) = (Vec::new(), Vec::new());
        for trace in traces {
            spans.edges(trace.clone(), &mut waiting, &mut servers, &mut edges);
        }
        // The edge written on each row, if any.
        let rows = batch.num_rows();
        let mut on_row = vec![u32::MAX; rows];
        for (i, e) in edges.iter().enumerate() {
            on_row[e.row] = i as u32;
        }
        // Views: the filter that keeps the rows with an edge copies 16 bytes a value,
        // not the text.
        let mut client = StringViewBuilder::with_capacity(rows);
        let mut server = StringViewBuilder::with_capacity(rows);
        let mut connection_type = StringViewBuilder::with_capacity(rows);
        let mut failed = BooleanBuilder::with_capacity(rows);
        let mut server_nanos = UInt64Builder::with_capacity(rows);
        let mut client_nanos = UInt64Builder::with_capacity(rows);
        for &i in &on_row {
            match edges.get(i as usize) {
                Some(e) => {
                    client.append_value(e.client);
                    server.append_value(e.server);
                    connection_type.append_value(e.connection_type);
                    failed.append_value(e.failed);
                    server_nanos.append_value(e.server_nanos);
                    client_nanos.append_value(e.client_nanos);
                }
                None => {
                    client.append_null();
                    server.append_null();
                    connection_type.append_null();
                    failed.append_null();
                    server_nanos.append_null();
                    client_nanos.append_null();
                }
            }
        }
        Ok(vec![
            Arc::new(client.finish()),
            Arc::new(server.finish()),
            Arc::new(connection_type.finish()),
            Arc::new(failed.finish()),
            Arc::new(server_nanos.finish()),
            Arc::new(client_nanos.finish()),
        ])
    }
}
