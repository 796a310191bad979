//! A link's click total and last click (`clicks`, `last_click_at` on the
//! link JSON), read from the analytics rollup `org_series_per_minute_hll` (a
//! few rows per link and minute, not one per dimension combination) and
//! cached here.
//!
//! - What counts: redirects (301, 302, 307, 308) by people (`is_bot = 0`),
//!   as the stats routes count by default. `last_click_at` is the start of
//!   the minute of the last click (the rollup's bucket).
//! - Staleness: a total is at most `click_totals_ttl_secs` old (60 s by
//!   default), plus the sidecar's own lag (clicks reach ClickHouse within a
//!   second or so). Each entry is fetched again once it is older.
//! - ClickHouse down, slow (more than [`QUERY_TIMEOUT`]) or not configured:
//!   the links answer with `null` for both, never an error; a failure is not
//!   cached, so totals come back as soon as ClickHouse does.
//! - One query per page of links (`org_id IN (...) AND code IN (...)`, the
//!   rollup's leading sort-key columns), only for the links not cached.

use super::model::{LinkJson, LinkRow};
use clickhouse::Row;
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// The longest a page of links waits for ClickHouse.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(2);
/// Entries kept at most; beyond, the stale ones are dropped (then all).
const MAX_ENTRIES: usize = 100_000;

/// A link's totals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub clicks: u64,
    pub last_click_at: Option<OffsetDateTime>,
}

/// The cache, keyed by (domain id, code).
#[derive(Debug)]
pub struct ClickTotals {
    ttl: Duration,
    entries: Mutex<HashMap<(i64, String), (Instant, Totals)>>,
}

#[derive(Debug, Row, Deserialize)]
struct TotalRow {
    code: String,
    domain: String,
    clicks: u64,
    last: u32,
}

impl ClickTotals {
    pub fn new(ttl: Duration) -> ClickTotals {
        ClickTotals {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, row: &LinkRow, now: Instant) -> Option<Totals> {
        let entries = self.entries.lock().expect("click totals lock");
        entries
            .get(&(row.domain_id, row.code.clone()))
            .filter(|(at, _)| now.duration_since(*at) < self.ttl)
            .map(|(_, totals)| *totals)
    }

    fn store(&self, fetched: Vec<((i64, String), Totals)>, now: Instant) {
        let mut entries = self.entries.lock().expect("click totals lock");
        if entries.len() + fetched.len() > MAX_ENTRIES {
            entries.retain(|_, (at, _)| now.duration_since(*at) < self.ttl);
            if entries.len() + fetched.len() > MAX_ENTRIES {
                entries.clear();
            }
        }
        for (key, totals) in fetched {
            entries.insert(key, (now, totals));
        }
    }
}

/// Fills `clicks` and `last_click_at` of `json` (the links of `rows`, in
/// the same order) from `cache` or ClickHouse (`ch`, the stats database);
/// leaves them `null` when ClickHouse cannot answer.
pub async fn fill(
    cache: &ClickTotals,
    ch: Option<&clickhouse::Client>,
    rows: &[LinkRow],
    json: &mut [LinkJson],
) {
    let now = Instant::now();
    let mut missing = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        match cache.cached(row, now) {
            Some(totals) => set(&mut json[i], totals),
            None => missing.push(i),
        }
    }
    if missing.is_empty() {
        return;
    }
    let Some(ch) = ch else {
        return;
    };
    let wanted: Vec<&LinkRow> = missing.iter().map(|&i| &rows[i]).collect();
    // The rollup's sort key starts (org_id, code): both as `IN` lists, so
    // the read is a few granules per link, not the organization's range or
    // the whole table. Org 0 too: clicks stored before records carried it.
    let mut orgs: Vec<i64> = wanted.iter().map(|r| r.org_id).collect();
    orgs.push(0);
    orgs.sort_unstable();
    orgs.dedup();
    let orgs: Vec<String> = orgs.iter().map(i64::to_string).collect();
    let placeholders = vec!["?"; wanted.len()].join(", ");
    let sql = format!(
        "SELECT code, domain, toUInt64(countMerge(clicks)) AS clicks,
                toUInt32(max(minute)) AS last
           FROM {table}
          WHERE org_id IN ({orgs}) AND code IN ({placeholders})
            AND status IN (301, 302, 307, 308) AND is_bot = 0
          GROUP BY code, domain",
        table = crate::stats::rollups::MINUTE.series,
        orgs = orgs.join(", ")
    );
    let mut query = ch.query(&sql);
    for row in &wanted {
        query = query.bind(row.code.as_str());
    }
    let query = query.fetch_all::<TotalRow>();
    let found = match tokio::time::timeout(QUERY_TIMEOUT, query).await {
        Ok(Ok(found)) => found,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "click totals unavailable (ClickHouse)");
            return;
        }
        Err(_) => {
            tracing::warn!("click totals unavailable (ClickHouse did not answer in time)");
            return;
        }
    };
    let mut by_key: HashMap<(&str, &str), (u64, u32)> = HashMap::new();
    for row in &found {
        by_key.insert(
            (row.code.as_str(), row.domain.as_str()),
            (row.clicks, row.last),
        );
    }
    let mut fetched = Vec::with_capacity(missing.len());
    for &i in &missing {
        let row = &rows[i];
        let totals = totals_of(row, &by_key);
        set(&mut json[i], totals);
        fetched.push(((row.domain_id, row.code.clone()), totals));
    }
    cache.store(fetched, now);
}

/// A link's totals among the rows found: its domain's name, and for the
/// default domain also clicks that carry no name (before domains, or an
/// unnamed default domain).
fn totals_of(row: &LinkRow, found: &HashMap<(&str, &str), (u64, u32)>) -> Totals {
    let mut names = vec![row.domain.as_str()];
    if row.domain_id == 0 && !row.domain.is_empty() {
        names.push("");
    }
    let mut clicks = 0;
    let mut last = 0u32;
    for name in names {
        if let Some((n, at)) = found.get(&(row.code.as_str(), name)) {
            clicks += n;
            last = last.max(*at);
        }
    }
    Totals {
        clicks,
        last_click_at: (clicks > 0)
            .then(|| OffsetDateTime::from_unix_timestamp(i64::from(last)).ok())
            .flatten(),
    }
}

fn set(json: &mut LinkJson, totals: Totals) {
    json.clicks = Some(totals.clicks);
    json.last_click_at = totals.last_click_at;
}
