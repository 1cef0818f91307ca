//! traceql's own block ([`crate::kind::BlockKind::Traceql`]): one Parquet file of spans
//! sorted by trace start and trace id, plus `meta.json`.

pub mod meta;
pub mod nested_set;
pub mod reader;
mod rows;
pub mod schema;
mod summary;
pub mod writer;

pub use meta::{BlockMeta, TypedColumn};
pub use rows::span_batch;
pub use writer::{
    BlockOptions, BlockWriter, EncodedBlock, EncodedRowGroup, RowGroupEncoder,
    choose_typed_columns, encode_block, joined_typed_columns, row_groups,
};
