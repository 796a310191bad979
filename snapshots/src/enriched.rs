//! The enriched click: what the analytics sidecar publishes, as JSON, on
//! core NATS subject `<enriched_subject>.<org id>` for every click it has
//! stored (`analytics::publish`), and what control reads back to send
//! `link.clicked` webhooks (`control::webhooks::clicks`). Defined here so the
//! writer and the readers compile against one record.

use serde::{Deserialize, Serialize};

/// One published click: the enriched fields of its ClickHouse `clicks` row,
/// without the address prefix and the visitor hash (they stay in
/// ClickHouse).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrichedClick {
    /// The engine's event id, 32 hex digits: the key to deduplicate on.
    pub event_id: String,
    /// The organisation owning the link (0: a click batch older than
    /// organisations).
    pub org_id: u64,
    /// The domain the link was served under (empty: the default domain).
    pub domain: String,
    pub code: String,
    /// Unix milliseconds of the click.
    pub ts_ms: u64,
    pub status: u16,
    pub country: String,
    pub city: String,
    /// `desktop`, `mobile`, `tablet`, `bot`...
    pub device: String,
    pub browser: String,
    pub os: String,
    pub referrer_host: String,
    pub language: String,
    /// Not a person (crawler, script, link preview).
    pub is_bot: bool,
    /// A link-preview fetcher (`is_bot` too).
    pub is_preview: bool,
    /// The redirect rule or A/B variant that served it; 0: the link's own target.
    pub rule: u16,
    /// The engine node that served it.
    pub node: String,
}

/// The subject a click of organisation `org_id` is published on, under
/// `prefix` (the sidecar's `enriched_subject`).
pub fn subject(prefix: &str, org_id: u64) -> String {
    format!("{prefix}.{org_id}")
}

/// The organisation a subject under `prefix` names (`None`: not one of
/// these subjects).
pub fn subject_org(prefix: &str, subject: &str) -> Option<u64> {
    subject
        .strip_prefix(prefix)?
        .strip_prefix('.')?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_name_their_organisation() {
        assert_eq!(subject("enriched.clicks", 42), "enriched.clicks.42");
        assert_eq!(
            subject_org("enriched.clicks", "enriched.clicks.42"),
            Some(42)
        );
        assert_eq!(subject_org("enriched.clicks", "enriched.clicks42"), None);
        assert_eq!(subject_org("enriched.clicks", "enriched.clicks.x"), None);
        assert_eq!(subject_org("enriched.clicks", "other.42"), None);
    }
}
