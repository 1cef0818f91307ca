//! Executes TraceQL over trace blocks on local disk or object storage.
//!
//! The block format and span model live in `traceql-format`, the plans in
//! `traceql-planner`. Here:
//!
//! - [`engine`]: the core that every query runs on: the store's blocks and their
//!   facts, block selection, one scan of the span table, execution with statistics.
//! - What runs on it: [`search`] (Tempo-shaped results, newest first), [`metrics`]
//!   (time series), [`trace`] (one whole trace by id), [`explain`] (the plans).
//! - Data in and out: [`store`] (blocks on disk, in memory or in the cloud), [`source`]
//!   (the kinds of block a store holds, each read as the span table), [`table`]
//!   (the span table of a store as a DataFusion table), [`otlp`] (OTLP input) and
//!   [`ingest`] (OTLP files into blocks), [`export`] (spans out, as flat Parquet or
//!   OTLP/JSON).
//!
//! The synthetic trace generator is `traceql-gen`.
//!
//! Queries allocate many short-lived buffers from several threads; a program embedding
//! the engine gains much from a faster global allocator than glibc's (the `traceql`
//! binary uses mimalloc: every match of `{ }` over a million spans took 579 ms with
//! glibc's allocator and 329 ms with mimalloc).

pub mod compact;
pub mod convert;
pub mod engine;
pub mod explain;
pub mod export;
pub mod ingest;
pub mod insights;
pub mod metrics;
pub mod otlp;
pub mod search;
pub mod services;
pub mod source;
pub mod store;
pub mod table;
pub mod trace;

pub use engine::{
    Engine, EngineError, EngineOptions, Order, ParsedQuery, QueryStats, TimeRange, register,
};
pub use search::{SearchOptions, SearchResponse, SearchResults};
