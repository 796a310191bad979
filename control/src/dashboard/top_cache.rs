//! The overview's "most clicked, last 7 days", cached per organization.
//!
//! Ranking every link of a large organization merges the week's rollup rows
//! of all of them (about a second for 100k links and 10M clicks on the
//! project's 2-core VM: perf/README.md, the dashboard benchmark), and the
//! answer moves slowly, so the page reuses one for `click_totals_ttl_secs`
//! (60 s by default), the freshness links' click totals already have. An
//! error is not cached.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// `(code, clicks, visitors)`, most clicked first.
pub type TopLinks = Vec<(String, u64, u64)>;

/// Organizations kept at most; beyond, the cache starts over.
const MAX_ORGS: usize = 10_000;

#[derive(Debug)]
pub struct TopLinksCache {
    ttl: Duration,
    entries: Mutex<HashMap<i64, (Instant, TopLinks)>>,
}

impl TopLinksCache {
    pub fn new(ttl: Duration) -> TopLinksCache {
        TopLinksCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// `org`'s list if fetched less than the TTL ago.
    pub fn get(&self, org: i64) -> Option<TopLinks> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries
            .get(&org)
            .filter(|(at, _)| at.elapsed() < self.ttl)
            .map(|(_, top)| top.clone())
    }

    pub fn put(&self, org: i64, top: &TopLinks) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ORGS {
            entries.clear();
        }
        entries.insert(org, (Instant::now(), top.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_lives_for_the_ttl() {
        let top = vec![("abc".to_owned(), 3, 2)];
        let cache = TopLinksCache::new(Duration::from_secs(60));
        assert_eq!(cache.get(1), None);
        cache.put(1, &top);
        assert_eq!(cache.get(1), Some(top.clone()));
        assert_eq!(cache.get(2), None);
        let expired = TopLinksCache::new(Duration::ZERO);
        expired.put(1, &top);
        assert_eq!(expired.get(1), None);
    }
}
