//! "Did you mean …?": the closest known name to a mistyped one.

/// The known name closest to `given` (Jaro-Winkler similarity, case-insensitive) when it is
/// close enough to be a typo of it.
pub fn did_you_mean<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let given = given.to_lowercase();
    known
        .into_iter()
        .map(|k| (strsim::jaro_winkler(&given, &k.to_lowercase()), k))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, k)| k)
}

/// ` (did you mean 'x'?)`, or nothing.
pub fn hint<'a>(given: &str, known: impl IntoIterator<Item = &'a str>) -> String {
    did_you_mean(given, known).map_or(String::new(), |k| format!(" (did you mean '{k}'?)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["astronomy", "anatomy", "philosophy"];
        assert_eq!(did_you_mean("astronomyy", names), Some("astronomy"));
        assert_eq!(did_you_mean("Anatomy", names), Some("anatomy"));
        assert_eq!(did_you_mean("chemistry", names), None);
        assert_eq!(
            hint("smolm2-135m", ["smollm2-135m", "phi-2"]),
            " (did you mean 'smollm2-135m'?)"
        );
    }
}
