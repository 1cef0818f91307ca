//! The seam between physical block formats and the logical span table.
//!
//! A store may hold blocks of several kinds. Each kind reads its own files and presents
//! its spans as the logical span table of [`crate::schema`] (the planner plans against
//! nothing else), supplies the [`crate::facts::Facts`] a search uses to skip it, and
//! keeps every trace's spans contiguous, which is all the per-trace operators need.
//! `docs/format.md` describes what each kind provides.

/// A kind of block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BlockKind {
    /// traceql's own block ([`crate::block`]): `data.parquet` holds the logical span table
    /// plus the columns that make it lossless; `meta.json` holds its facts.
    Traceql,
    /// A block written by Grafana Tempo in its vParquet4 format ([`crate::tempo`]): one
    /// Parquet row per trace, nested resource → scope → span lists.
    TempoVParquet4,
    /// A block written by Grafana Tempo in its vParquet5 format ([`crate::tempo`]).
    TempoVParquet5,
}

impl BlockKind {
    /// Every kind this code reads.
    pub const ALL: [BlockKind; 3] = [
        BlockKind::Traceql,
        BlockKind::TempoVParquet4,
        BlockKind::TempoVParquet5,
    ];

    /// The name in the `format` field of the block's metadata.
    pub fn name(self) -> &'static str {
        match self {
            BlockKind::Traceql => "traceql-block",
            BlockKind::TempoVParquet4 => "vParquet4",
            BlockKind::TempoVParquet5 => "vParquet5",
        }
    }

    /// The kind whose metadata name is `name`.
    pub fn of_name(name: &str) -> Option<BlockKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The file, inside the block's directory, that holds the spans.
    pub fn data_file(self) -> &'static str {
        "data.parquet"
    }

    /// The file, inside the block's directory, that describes the block; a block is
    /// visible only once it exists.
    pub fn meta_file(self) -> &'static str {
        "meta.json"
    }

    /// Whether Grafana Tempo wrote blocks of this kind.
    pub fn is_tempo(self) -> bool {
        matches!(self, BlockKind::TempoVParquet4 | BlockKind::TempoVParquet5)
    }
}
