//! traceql's own block ([`crate::kind::BlockKind::Traceql`]): one Parquet file of spans
//! sorted by trace start and trace id, plus `meta.json`.

pub mod meta;
pub mod nested_set;
pub mod reader;
pub mod schema;
pub mod writer;

pub use meta::{BlockMeta, TypedColumn};
pub use writer::{BlockOptions, EncodedBlock, encode_block, span_batch};
