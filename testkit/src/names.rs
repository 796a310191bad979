//! Unique names for databases, streams and subjects.

use std::sync::atomic::{AtomicU64, Ordering};

/// Longest prefix kept; the rest of the name adds at most 30 characters, which keeps
/// every name under PostgreSQL's 63-byte identifier limit.
const MAX_PREFIX: usize = 24;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name unique to this call: `{prefix}_{pid}_{counter}_{random}`.
///
/// * unique within the process (a counter), across processes running now (the pid) and
///   across runs (10 random base-36 characters, about 51 bits);
/// * lowercase `[a-z0-9_]`, starts with a letter, well under 63 characters: a valid unquoted
///   PostgreSQL and ClickHouse database name and a valid NATS stream name or subject
///   token.
///
/// The prefix is lowercased, other characters become `_`, it is cut to 24 characters,
/// and `t` is put in front when it is empty or does not start with a letter.
pub fn unique_name(prefix: &str) -> String {
    let mut p: String = prefix
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(MAX_PREFIX)
        .collect();
    if !p.starts_with(|c: char| c.is_ascii_lowercase()) {
        p.insert(0, 't');
    }
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!(
        "{p}_{pid}_{n}_{rand}",
        pid = std::process::id(),
        rand = random_base36(10)
    )
}

fn random_base36(len: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut bytes = vec![0u8; len];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS randomness (should not happen): fall back to the clock, still unique
        // enough together with pid and counter.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (t >> ((i % 16) * 8)) as u8;
        }
    }
    bytes
        .iter()
        .map(|b| DIGITS[usize::from(*b) % DIGITS.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn valid(name: &str) -> bool {
        name.len() <= 63
            && name.starts_with(|c: char| c.is_ascii_lowercase())
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn names_are_safe_and_distinct() {
        let mut seen = HashSet::new();
        for prefix in [
            "links",
            "Control-API.test",
            "",
            "9lives",
            "ünïcode prefix",
            "a_very_long_prefix_that_goes_on_and_on_and_on_forever",
        ] {
            for _ in 0..200 {
                let n = unique_name(prefix);
                assert!(valid(&n), "{n:?} from {prefix:?}");
                assert!(seen.insert(n));
            }
        }
        assert!(unique_name("Links").starts_with("links_"));
        assert!(unique_name("9").starts_with("t9_"));
        assert!(unique_name("").starts_with("t_"));
    }
}
