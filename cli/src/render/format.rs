//! The output formats: one list for every command and the REPL, each command accepting
//! those that fit what it prints.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

/// An output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// A table for people (with `query --spans`, the matched spans beneath each trace).
    Table,
    /// One JSON document: Tempo's `/api/search` or metrics JSON, the blocks as an array,
    /// a trace as an OTLP/JSON `ExportTraceServiceRequest`.
    Json,
    /// One JSON object per line: a trace, or a series.
    Jsonl,
    /// One CSV row per shown span, or per series sample.
    Csv,
    /// An Arrow IPC stream, one row per shown span (for pandas, Polars, DuckDB).
    Arrow,
    /// A trace's span tree with a time bar per span and the critical path.
    Waterfall,
    /// One Parquet file, a row per span.
    Parquet,
    /// OTLP/JSON lines, one `ExportTraceServiceRequest` per line.
    OtlpJson,
    /// OTLP/protobuf, each `ExportTraceServiceRequest` behind its length (4 bytes,
    /// big-endian), as the Collector's file exporter writes `format: proto`.
    OtlpProto,
    /// Graphviz's DOT language, for a picture of a graph.
    Dot,
    /// A Mermaid flowchart, for a picture of a graph in Markdown.
    Mermaid,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 11] = [
        Format::Table,
        Format::Json,
        Format::Jsonl,
        Format::Csv,
        Format::Arrow,
        Format::Waterfall,
        Format::Parquet,
        Format::OtlpJson,
        Format::OtlpProto,
        Format::Dot,
        Format::Mermaid,
    ];

    /// What `traceql query` and the REPL print.
    pub const QUERY: &[Format] = &[
        Format::Table,
        Format::Json,
        Format::Jsonl,
        Format::Csv,
        Format::Arrow,
    ];

    /// What `traceql query` and the REPL print for metrics queries.
    pub const METRICS: &[Format] = &[Format::Table, Format::Json, Format::Jsonl, Format::Csv];

    /// What `traceql trace` prints.
    pub const TRACE: &[Format] = &[Format::Waterfall, Format::Json];

    /// What `traceql blocks` prints.
    pub const BLOCKS: &[Format] = &[Format::Table, Format::Json];

    /// What `traceql services` prints.
    pub const SERVICES: &[Format] = &[Format::Table, Format::Json, Format::Dot, Format::Mermaid];

    /// What `traceql insights` prints.
    pub const INSIGHTS: &[Format] = &[Format::Table, Format::Json];

    /// What `traceql export` writes.
    pub const EXPORT: &[Format] = &[Format::Parquet, Format::OtlpJson, Format::OtlpProto];

    /// The name `--format` takes.
    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Arrow => "arrow",
            Format::Waterfall => "waterfall",
            Format::Parquet => "parquet",
            Format::OtlpJson => "otlp-json",
            Format::OtlpProto => "otlp-proto",
            Format::Dot => "dot",
            Format::Mermaid => "mermaid",
        }
    }

    /// The format named `name`.
    pub fn of_name(name: &str) -> Option<Format> {
        Format::ALL.into_iter().find(|f| f.name() == name)
    }

    /// Whether the format is binary (not for a terminal).
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Arrow | Format::Parquet | Format::OtlpProto)
    }

    /// What the format is, in a few words, for `--help`.
    fn help(self) -> &'static str {
        match self {
            Format::Table => "a table for people",
            Format::Json => "one JSON document (Tempo's JSON for searches and metrics)",
            Format::Jsonl => "one JSON object per line",
            Format::Csv => "CSV, one row per shown span or series sample",
            Format::Arrow => "an Arrow IPC stream, one row per shown span",
            Format::Waterfall => "the span tree with time bars and the critical path",
            Format::Parquet => "one Parquet file, a row per span",
            Format::OtlpJson => "OTLP/JSON lines",
            Format::OtlpProto => "OTLP/protobuf, length-delimited",
            Format::Dot => "Graphviz DOT (`dot -Tsvg`)",
            Format::Mermaid => "a Mermaid flowchart",
        }
    }

    /// The names of `formats`, for messages: `table, json or csv`.
    pub fn names(formats: &[Format]) -> String {
        let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
        match names.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// A `--format` value parser that accepts `allowed`, each listed in `--help`.
pub fn parser(allowed: &'static [Format]) -> impl TypedValueParser<Value = Format> {
    PossibleValuesParser::new(
        allowed
            .iter()
            .map(|f| PossibleValue::new(f.name()).help(f.help())),
    )
    .map(|name| Format::of_name(&name).expect("a format's own name"))
}

#[cfg(test)]
mod tests {
    use super::Format;

    #[test]
    fn names_round_trip_and_lists_read_well() {
        for f in Format::ALL {
            assert_eq!(Format::of_name(f.name()), Some(f));
        }
        assert_eq!(Format::names(Format::TRACE), "waterfall or json");
        assert_eq!(Format::names(Format::BLOCKS), "table or json");
    }
}
