//! "Did you mean …?" suggestions for misspelt words.

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
        assert_eq!(
            closest_keyword("duraton", &crate::vocab::field_words()),
            Some("duration")
        );
        assert_eq!(
            closest_keyword("Status", &crate::vocab::field_words()),
            Some("status")
        );
        assert_eq!(
            closest_keyword("sevrer", &crate::vocab::field_words()),
            Some("server")
        );
        assert_eq!(
            closest_keyword("wharblgarbl", &crate::vocab::field_words()),
            None
        );
    }
}
