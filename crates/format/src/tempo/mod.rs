//! Grafana Tempo's own blocks (vParquet4 and vParquet5), read as the logical span table.
//!
//! A Tempo block directory holds `meta.json` (whose `format` names the version),
//! `data.parquet` (one row per trace: nested resource → scope → span lists), bloom
//! filters and an index. Reading one takes three steps:
//!
//! - [`meta`]: Tempo's `meta.json` becomes a [`crate::block::BlockMeta`] (time range,
//!   counts, sizes) and a [`TempoBlock`] (version, dedicated columns, footer, bloom
//!   shards).
//! - [`columns`]: which attribute each dedicated spare column (`String01`, `Int01`, …)
//!   and each well-known column (`ServiceName`, v4's `HttpMethod`, …) holds.
//! - [`read`]: a batch of Tempo rows becomes whole traces borrowed from its columns
//!   ([`crate::block::span_rows::SpanRows`]), with every attribute back under its own
//!   name, which the block writer's row builder turns into rows of the logical span
//!   table without copying a string first (and, for `convert`, the span model).
//!
//! A scan gives the Parquet reader a [`filter::RowFilter`]: tests on the columns a
//! query compares (span name, status, kind, duration, attributes wherever the block
//! keeps them), the trace of a lookup and a window of trace starts, so rows that
//! cannot match are never decoded.
//!
//! [`keys`] reads the keys of the generic attribute lists and the service names from
//! their columns' dictionaries, so the planner knows where attributes are not.
//!
//! Trace lookups consult the block's bloom filters first ([`bloom`]), then its `index`
//! for the one row group to read ([`index`]).
//!
//! Relations between spans (nested sets, root span, trace bounds) are recomputed from
//! span and parent ids when the rows are built, so Tempo's blocks follow the same
//! documented semantics as traceql's own (orphans numbered as their own trees rather
//! than zeroed). `docs/format.md` lists how Tempo's columns map onto the span table.

pub mod bloom;
pub mod columns;
pub mod filter;
pub mod index;
pub mod keys;
pub mod meta;
pub mod read;

pub use columns::{Spare, SpareScope, spares};
pub use meta::{DedicatedColumn, TempoBlock, TempoMeta, TempoVersion};
pub use read::TraceDecoder;
