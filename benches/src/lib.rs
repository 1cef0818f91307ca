//! Shared data for the workspace benchmarks.

/// The mixed query corpus in `corpus/queries.traceql`: realistic searches, structural
/// queries, pipelines and metrics queries of our own.
pub fn query_corpus() -> Vec<&'static str> {
    include_str!("../corpus/queries.traceql")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}
