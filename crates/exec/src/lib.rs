//! Executes TraceQL over Parquet trace blocks on local disk or object storage.
//!
//! The block format and span model live in `traceql-format`. Here: OTLP input
//! ([`otlp`]), ingest ([`ingest`]), block stores on disk, in memory or in the cloud
//! ([`store`]), a DataFusion table over a store ([`table`]), the search engine
//! ([`search`]) and metrics queries on it ([`metrics`]). The synthetic trace generator
//! is `traceql-gen`.

pub mod ingest;
pub mod metrics;
pub mod otlp;
pub mod search;
pub mod store;
pub mod table;

pub use search::{Engine, EngineError, SearchOptions, SearchResponse, register};
