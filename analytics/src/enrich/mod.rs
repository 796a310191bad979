//! Turning a captured click into a stored row: address truncation, GeoIP,
//! user agent, referrer host, language, visitor hash.
//!
//! * [`privacy`]: /24 and /48 truncation and the visitor hash.
//! * [`geo`]: country and city from a MaxMind-format database.
//! * [`language`]: the preferred language from `Accept-Language`.
//! * [`referrer`]: the Referer's host (plain names without a URL parse).
//! * [`agent`]: browser, OS, device class, bot and preview flags, cached per agent,
//!   from [`bots`] (isbot's list and rules), [`uap`] (uap-core's regexes) and
//!   [`device`] (the class from [`models`], Matomo's device database, and
//!   uap-core's answer).

pub mod agent;
pub mod bots;
pub mod device;
pub mod geo;
pub mod language;
pub mod models;
pub mod privacy;
pub mod referrer;
pub mod uap;

use snapshots::click::ClickEvent;

use crate::encoded::ClickRows;
use crate::rows::ClickRow;
use agent::AgentCache;
use geo::GeoIp;

/// Enriches events one at a time; owned by the single consumer task, so the
/// cache needs no lock.
#[derive(Debug)]
pub struct Enricher {
    geoip: Option<GeoIp>,
    agents: AgentCache,
}

impl Enricher {
    /// An enricher with an optional GeoIP database and a user-agent cache of
    /// about `ua_cache_size` entries.
    pub fn new(geoip: Option<GeoIp>, ua_cache_size: usize) -> Enricher {
        Enricher {
            geoip,
            agents: AgentCache::new(ua_cache_size),
        }
    }

    /// The row stored for one event of a batch from `node`, owned (tools
    /// and tests; the sidecar writes rows in place with [`encode`](Self::encode)).
    pub fn enrich(&mut self, node: &str, batch_id: [u8; 16], event: &ClickEvent<'_>) -> ClickRow {
        let mut rows = ClickRows::default();
        self.encode(node, batch_id, event, &mut rows);
        rows.get(0).to_row()
    }

    /// Appends the row stored for one event of a batch from `node` to
    /// `rows`, column by column, allocating nothing once the buffer has
    /// grown (the strings come from the batch, the GeoIP database and the
    /// agent cache).
    ///
    /// The full address is used only for the GeoIP lookup, in memory; the row
    /// gets the truncated prefix and a hash of it.
    pub fn encode(
        &mut self,
        node: &str,
        batch_id: [u8; 16],
        event: &ClickEvent<'_>,
        rows: &mut ClickRows,
    ) {
        let truncated = privacy::truncate_ip(event.ip);
        let place = self
            .geoip
            .as_ref()
            .map(|g| g.lookup_ref(event.ip.to_canonical()))
            .unwrap_or_default();
        let agent = self.agents.get(event.user_agent);
        let mut prefix = [0u8; 48];
        let prefix_len = privacy::write_prefix(truncated, &mut prefix);

        // Columns in `ClickRow` field order.
        let mut row = rows.begin_row();
        row.fixed(&event.event_id);
        row.u32((event.ts_ms / 1000).min(u64::from(u32::MAX)) as u32);
        row.u64(event.ts_ms);
        row.fixed(&batch_id);
        row.string(node.as_bytes());
        row.string_lossy(event.code);
        row.u16(event.status);
        row.string_lossy_lowercase(event.host);
        row.string_lossy(event.domain);
        row.string(&prefix[..prefix_len]);
        row.string(place.country.as_bytes());
        row.string(place.city.as_bytes());
        row.raw(&agent.columns); // device, browser, os
        row.string_lowercase(referrer::host(event.referrer).as_bytes());
        row.string_lossy(event.accept_language);
        row.string_lowercase(language::primary_subtag(event.accept_language).as_bytes());
        row.u8(u8::from(agent.agent.is_bot));
        row.u8(u8::from(agent.agent.is_preview));
        row.u64(privacy::visitor_hash(truncated, event.user_agent));
        row.u64(event.org_id);
        row.u16(event.rule);
    }

    /// User-agent cache hits and misses since the last call.
    pub fn take_cache_counts(&mut self) -> (u64, u64) {
        self.agents.take_counts()
    }
}

/// The lowercased host of a Referer URL; empty when absent or unparsable.
pub fn referrer_host(referrer: &[u8]) -> String {
    referrer::host(referrer).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn referrer_hosts() {
        assert_eq!(
            referrer_host(b"https://News.Example.COM/a?b=c"),
            "news.example.com"
        );
        assert_eq!(referrer_host(b"http://t.co/x"), "t.co");
        assert_eq!(referrer_host(b"android-app://com.slack/"), "com.slack");
        assert_eq!(referrer_host(b""), "");
        assert_eq!(referrer_host(b"not a url"), "");
        assert_eq!(referrer_host(b"/relative/path"), "");
        assert_eq!(referrer_host(&[0xff, 0xfe]), "");
    }

    #[test]
    fn a_row_never_holds_the_full_address() {
        let mut e = Enricher::new(None, 16);
        let ip: IpAddr = "81.2.69.142".parse().unwrap();
        let event = ClickEvent {
            event_id: [7; 16],
            ts_ms: 1_700_000_000_123,
            status: 302,
            ip,
            code: b"abc",
            user_agent: b"curl/8.5.0",
            referrer: b"https://example.org/",
            accept_language: b"en-GB",
            host: b"Sho.RT",
            domain: b"sho.rt",
            org_id: 0,
            rule: 0,
        };
        let row = e.enrich("node-1", [1; 16], &event);
        assert_eq!(row.ip_prefix, "81.2.69.0/24");
        assert_eq!(row.ts, 1_700_000_000);
        assert_eq!(row.host, "sho.rt");
        assert_eq!(row.referrer_host, "example.org");
        assert_eq!(row.is_bot, 1);
        assert!(!format!("{row:?}").contains("81.2.69.142"));
    }
}
