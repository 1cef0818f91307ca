//! Executes TraceQL over Parquet trace blocks on local disk or object storage.
//!
//! Today: the block format ([`block`]), the span model ([`model`]), OTLP input
//! ([`otlp`]), ingest ([`ingest`]), the synthetic trace generator ([`generate`]), block
//! stores ([`store`]) and a DataFusion table over a store ([`table`]).

pub mod block;
pub mod generate;
pub mod ingest;
pub mod model;
pub mod otlp;
pub mod search;
pub mod store;
pub mod table;

pub use search::{Engine, EngineError, SearchOptions, SearchResponse, register};
