//! NATS subjects and subject filters, with NATS semantics: tokens separated by `.`,
//! `*` matches exactly one token, `>` (last token only) matches one or more tokens.
//! The sled log uses this to evaluate expectations exactly as JetStream does.

/// Why a filter is not a valid NATS subject filter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid subject filter {filter:?}: {reason}")]
pub struct InvalidFilter {
    pub filter: String,
    pub reason: &'static str,
}

/// Checks that `filter` is a valid subject or subject filter.
pub fn validate_filter(filter: &str) -> Result<(), InvalidFilter> {
    let fail = |reason| Err(InvalidFilter { filter: filter.to_string(), reason });
    if filter.is_empty() || filter.len() > crate::SUBJECT_SIZE_MAX {
        return fail("empty or too long");
    }
    let tokens: Vec<&str> = filter.split('.').collect();
    for (index, token) in tokens.iter().enumerate() {
        if token.is_empty() {
            return fail("empty token");
        }
        if token.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return fail("whitespace or control character");
        }
        if token.len() > 1 && (token.contains('*') || token.contains('>')) {
            return fail("a wildcard must be a whole token");
        }
        if *token == ">" && index != tokens.len() - 1 {
            return fail("'>' must be the last token");
        }
    }
    Ok(())
}

/// True for a valid subject without wildcards.
pub fn is_literal(subject: &str) -> bool {
    validate_filter(subject).is_ok() && subject.split('.').all(|t| t != "*" && t != ">")
}

/// True if the literal `subject` matches `filter` (a literal subject is the
/// one subject it matches, so this is [`covers`]).
pub fn matches(filter: &str, subject: &str) -> bool {
    debug_assert!(!subject.split('.').any(|t| t == "*" || t == ">"), "{subject} is not literal");
    covers(filter, subject)
}

/// True if `filter` matches every subject that `pattern` (itself a filter)
/// matches: e.g. `fundtrail.v1.>` covers the stream's `fundtrail.v1.*.*.*`.
pub fn covers(filter: &str, pattern: &str) -> bool {
    let mut filter_tokens = filter.split('.');
    let mut pattern_tokens = pattern.split('.');
    loop {
        match (filter_tokens.next(), pattern_tokens.next()) {
            (None, None) => return true,
            (Some(">"), Some(_)) => return true,
            (Some("*"), Some(p)) if p != ">" => continue,
            (Some(f), Some(p)) if f == p => continue,
            _ => return false,
        }
    }
}

/// The literal tokens of `filter` before its first wildcard, each followed by `.`:
/// every subject the filter matches starts with it (used to scan an index by prefix).
pub fn literal_prefix(filter: &str) -> String {
    let mut prefix = String::new();
    for token in filter.split('.') {
        if token == "*" || token == ">" {
            return prefix;
        }
        prefix.push_str(token);
        prefix.push('.');
    }
    // No wildcard: the filter is a literal subject; the exact subject is its own prefix.
    filter.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_filters() {
        let stream = "fundtrail.v1.*.*.*";
        for filter in ["fundtrail.v1.>", stream, ">", "fundtrail.>", "*.v1.*.*.*", "fundtrail.v1.*.>"] {
            assert!(covers(filter, stream), "{filter}");
        }
        for filter in ["fundtrail.v1.f1.>", "fundtrail.v1.*.*", "fundtrail.v1.*.*.*.*", "fundtrail.v1.*.donation.*"] {
            assert!(!covers(filter, stream), "{filter}");
        }
        assert!(!covers("a.*", "a.>"), "'*' is one token, '>' one or more");
        assert!(covers("a.>", "a.>"));
    }

    #[test]
    fn star_matches_exactly_one_token() {
        assert!(matches("a.*.c", "a.b.c"));
        assert!(!matches("a.*.c", "a.b.x.c"));
        assert!(!matches("a.*", "a"));
        assert!(matches("fundtrail.v1.*.*.*", "fundtrail.v1.f.p.1"));
        assert!(!matches("fundtrail.v1.*.*.*", "fundtrail.v1.checkpoints"));
    }

    #[test]
    fn gt_matches_one_or_more_trailing_tokens() {
        assert!(matches("a.>", "a.b"));
        assert!(matches("a.>", "a.b.c.d"));
        assert!(!matches("a.>", "a"));
        assert!(!matches("a.>", "b.c"));
        assert!(matches(">", "a"));
    }

    #[test]
    fn literal_matches_itself_only() {
        assert!(matches("a.b", "a.b"));
        assert!(!matches("a.b", "a.b.c"));
        assert!(!matches("a.b.c", "a.b"));
    }

    #[test]
    fn filters_are_validated() {
        assert!(validate_filter("a.*.>").is_ok());
        assert!(validate_filter("a.>.b").is_err());
        assert!(validate_filter("a..b").is_err());
        assert!(validate_filter("a.b*").is_err());
        assert!(validate_filter("a b").is_err());
        assert!(validate_filter("").is_err());
        assert!(is_literal("a.b"));
        assert!(!is_literal("a.*"));
    }

    #[test]
    fn literal_prefix_stops_at_first_wildcard() {
        assert_eq!(literal_prefix("fundtrail.v1.f.>"), "fundtrail.v1.f.");
        assert_eq!(literal_prefix("a.*.c"), "a.");
        assert_eq!(literal_prefix("a.b"), "a.b");
        assert_eq!(literal_prefix(">"), "");
    }
}
