//! The traceql block format, and the logical span table every kind of block presents.
//!
//! - The logical span table: [`schema`] (columns, typed attribute columns, entry lists,
//!   events and links), [`facts`] (what a plan may know of a block). Each kind of
//!   block presents its spans as this table; the engine's block sources
//!   (`traceql_exec::source`) are the seam between the kinds and the table.
//! - The span model: [`model`] (spans, resources, scopes, events, links), [`value`]
//!   (attribute values and their type codes), [`ids`] (trace and span ids, hex),
//!   [`codes`] (status and kind codes and their TraceQL words).
//! - [`arena`]: spans as decoded from OTLP, owned in arenas, on their way to a block
//!   without the span model.
//! - Reading and writing: [`entries`] (attribute entry lists), [`arrays`] (typed access
//!   to Arrow arrays), [`block`] (traceql's own blocks: writer, reader, `meta.json`),
//!   [`tempo`] (Grafana Tempo's vParquet4 and vParquet5 blocks, read as span model).
//! - [`display`]: values as Tempo's results show them.
//! - [`error`]: what can go wrong.

pub mod arena;
pub mod arrays;
pub mod block;
pub mod codes;
pub mod display;
pub mod entries;
pub mod error;
pub mod facts;
pub mod ids;
pub mod model;
pub mod schema;
pub mod tempo;
pub mod value;

pub use error::FormatError;
