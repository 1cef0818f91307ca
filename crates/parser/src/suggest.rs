//! "Did you mean …?" suggestions for misspelt words.

/// Words that name functions (aggregates, pipeline stages, metrics) rather than values.
pub const FUNCTION_WORDS: &[&str] = &[
    "count",
    "avg",
    "min",
    "max",
    "sum",
    "by",
    "select",
    "coalesce",
    "rate",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "avg_over_time",
    "sum_over_time",
    "quantile_over_time",
    "histogram_over_time",
    "compare",
    "topk",
    "bottomk",
];

/// Words that may appear as values inside `{ … }`.
pub const FIELD_WORDS: &[&str] = &[
    "true",
    "false",
    "nil",
    "ok",
    "error",
    "unset",
    "unspecified",
    "internal",
    "server",
    "client",
    "producer",
    "consumer",
    "minInt",
    "maxInt",
    "duration",
    "name",
    "status",
    "statusMessage",
    "kind",
    "rootName",
    "rootServiceName",
    "traceDuration",
    "nestedSetLeft",
    "nestedSetRight",
    "nestedSetParent",
    "parent",
];

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest_keyword<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&lower, &c.to_ascii_lowercase()),
                *c,
            )
        })
        .filter(|(d, c)| *d <= (c.len() / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_misses_only() {
        assert_eq!(closest_keyword("duraton", FIELD_WORDS), Some("duration"));
        assert_eq!(closest_keyword("Status", FIELD_WORDS), Some("status"));
        assert_eq!(closest_keyword("sevrer", FIELD_WORDS), Some("server"));
        assert_eq!(closest_keyword("wharblgarbl", FIELD_WORDS), None);
    }
}
