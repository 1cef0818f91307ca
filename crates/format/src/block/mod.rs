//! traceql's own block: one Parquet file of spans sorted by trace start and trace id,
//! plus `meta.json`.

pub mod meta;
pub mod nested_set;
pub mod order;
pub mod reader;
mod rows;
pub mod schema;
pub mod span_rows;
mod summary;
pub mod writer;

pub use meta::{BlockMeta, TypedColumn};

/// The `format` that `meta.json` gives for traceql's own blocks.
pub const FORMAT_NAME: &str = "traceql-block";

/// The file, inside a block's directory, that holds its spans.
pub const DATA_FILE: &str = "data.parquet";

/// The file, inside a block's directory, that describes the block. Every kind of block
/// a store holds has one, whose `format` field names the kind; a block is visible only
/// once it exists.
pub const META_FILE: &str = "meta.json";
pub use rows::{span_batch, span_rows_batch};
pub use writer::{
    BlockOptions, BlockWriter, EncodedBlock, EncodedRowGroup, RowGroupEncoder, arena_block_rows,
    choose_arena_typed_columns, choose_typed_columns, describe, encode_arena_block, encode_block,
    joined_typed_columns, row_groups,
};
