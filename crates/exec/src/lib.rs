//! Executes TraceQL over Parquet trace blocks on local disk or object storage.
//!
//! Home of the block format, OTLP ingest, the physical span-set operators and the
//! `Engine` API; they arrive with the blocks and search work.
