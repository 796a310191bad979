//! The ClickHouse side of an export: the query for its spec, streamed row
//! by row (the crate's `RowCursor` decodes one RowBinary row at a time from
//! the HTTP body as it arrives) into an [`ExportWriter`]. Nothing collects
//! rows: memory is the cursor's read buffer, one row and the writer's
//! buffer, whatever the export's size.
//!
//! * **Clicks** read the raw `clicks` table: one row per click, redirects
//!   only (as the stats count), ordered by time. The file holds what the
//!   stats show, per click; not the address prefix nor the visitor hash
//!   (which would let a reader follow one visitor across links).
//! * **Rollups** read the rollups exactly as the stats do
//!   ([`crate::stats::rollups`]): the range cut into whole days, hours and
//!   minutes, no part coarser than the bucket, the count and visitor states
//!   merged per bucket, link and dimension value.
//!
//! Values are bound (`?`), never spliced; the organization comes first in
//! every filter (the rollups' sort key).

use super::cell::Cell;
use super::file::{ExportWriter, millis_rfc3339};
use super::request::{ExportBucket, ExportKind, ExportSpec};
use crate::stats::filters::Filters;
use crate::stats::rollups;
use clickhouse::Row;
use serde::Deserialize;

/// The traffic class of a click or rollup row.
const TRAFFIC: &str = "multiIf(is_preview = 1, 'preview', is_bot = 1, 'bot', 'human')";
/// What the stats count: redirects.
const REDIRECTS: &str = "status IN (301, 302, 307, 308)";

/// The columns of a click export, in order.
pub const CLICK_COLUMNS: &[&str] = &[
    "time", "event_id", "code", "domain", "status", "country", "city", "device", "browser", "os",
    "referrer", "language", "traffic", "rule",
];

#[derive(Debug, Row, Deserialize)]
struct ClickOut {
    eid: String,
    ts_ms: u64,
    code: String,
    domain: String,
    status: u16,
    country: String,
    city: String,
    device: String,
    browser: String,
    os: String,
    referrer: String,
    language: String,
    traffic: String,
    rule: u16,
}

#[derive(Debug, Row, Deserialize)]
struct RollupOut {
    key: u32,
    vals: Vec<String>,
    clicks: u64,
    visitors: u64,
}

/// Which clicks: the organization's (or one of its links'), the range's
/// redirects of the asked traffic, the filters. `WHERE` text with `?`s;
/// [`Scope::bind`] binds them in order.
pub struct Scope<'a> {
    org_id: u64,
    /// The link's code and the domain names its clicks may carry.
    link: Option<(&'a str, Vec<String>)>,
    traffic: Vec<&'static str>,
    filters: Filters,
}

impl<'a> Scope<'a> {
    /// `default_domain`: the deployment's default domain's name (empty when
    /// unnamed); a link on it may also have clicks that carry no name.
    pub fn new(org_id: i64, spec: &'a ExportSpec, default_domain: &str) -> anyhow::Result<Self> {
        let link = spec.code.as_deref().map(|code| {
            let domain = spec.domain.clone().unwrap_or_default();
            let mut names = vec![domain.clone()];
            if domain == default_domain && !domain.is_empty() {
                names.push(String::new());
            }
            (code, names)
        });
        let lists = [
            ("country", &spec.country),
            ("device", &spec.device),
            ("referrer", &spec.referrer),
            ("language", &spec.language),
        ];
        let joined: Vec<(&'static str, Option<String>)> = lists
            .iter()
            .map(|(n, v)| (*n, (!v.is_empty()).then(|| v.join(","))))
            .collect();
        let given: Vec<(&'static str, Option<&str>)> =
            joined.iter().map(|(n, v)| (*n, v.as_deref())).collect();
        let filters = Filters::parse(&given).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(Scope {
            org_id: u64::try_from(org_id).unwrap_or(0),
            link,
            traffic: spec.traffic.iter().map(|t| t.as_str()).collect(),
            filters,
        })
    }

    /// The conditions, for a table with the click columns (`clicks` and
    /// every rollup have them).
    pub fn sql(&self) -> String {
        // A link's clicks stored before clicks carried the org have org 0
        // (as the link stats read them).
        let org = if self.link.is_some() {
            "org_id IN (0, ?) AND code = ? AND has(?, domain)"
        } else {
            "org_id = ?"
        };
        format!(
            "{org} AND {REDIRECTS} AND has(?, {TRAFFIC}){}",
            self.filters.sql()
        )
    }

    pub fn bind(&self, mut q: clickhouse::query::Query) -> clickhouse::query::Query {
        q = q.bind(self.org_id);
        if let Some((code, names)) = &self.link {
            q = q.bind(*code).bind(names);
        }
        self.filters.bind(q.bind(&self.traffic))
    }
}

/// The file's columns for `spec`.
pub fn columns(spec: &ExportSpec) -> Vec<&'static str> {
    match spec.kind {
        ExportKind::Clicks => CLICK_COLUMNS.to_vec(),
        ExportKind::Rollup => {
            let mut c = vec!["time", "code", "domain"];
            c.extend(spec.dimensions.iter().map(|d| d.name()));
            c.extend(["clicks", "unique_visitors"]);
            c
        }
    }
}

/// Runs `spec`'s query and writes every row to `out`.
pub async fn stream(
    ch: &clickhouse::Client,
    spec: &ExportSpec,
    scope: &Scope<'_>,
    out: &mut ExportWriter,
) -> anyhow::Result<()> {
    let from = spec.from.unix_timestamp();
    let to = spec.to.unix_timestamp();
    match spec.kind {
        ExportKind::Clicks => stream_clicks(ch, from, to, scope, out).await,
        ExportKind::Rollup => stream_rollup(ch, spec, from, to, scope, out).await,
    }
}

async fn stream_clicks(
    ch: &clickhouse::Client,
    from: i64,
    to: i64,
    scope: &Scope<'_>,
    out: &mut ExportWriter,
) -> anyhow::Result<()> {
    let sql = format!(
        "SELECT lower(hex(event_id)) AS eid, ts_ms, code, domain, status, country, city,
                device, browser, os, referrer_host AS referrer, language, {TRAFFIC} AS traffic, rule
           FROM clicks
          WHERE ts >= toDateTime(?) AND ts < toDateTime(?) AND {}
          ORDER BY ts_ms, event_id",
        scope.sql()
    );
    let q = scope.bind(ch.query(&sql).bind(from).bind(to));
    // ClickHouse sorts on disk past this many bytes, not in its memory.
    // (Aliases differ from the columns they read: 18.16 calls `x AS x`
    // cyclic.)
    let mut cursor = q
        .with_setting("max_bytes_before_external_sort", "268435456")
        .fetch::<ClickOut>()?;
    while let Some(c) = cursor.next().await? {
        out.row(&[
            Cell::Owned(millis_rfc3339(c.ts_ms)),
            Cell::Text(&c.eid),
            Cell::Text(&c.code),
            Cell::Text(&c.domain),
            Cell::Number(c.status.into()),
            Cell::Text(&c.country),
            Cell::Text(&c.city),
            Cell::Text(&c.device),
            Cell::Text(&c.browser),
            Cell::Text(&c.os),
            Cell::Text(&c.referrer),
            Cell::Text(&c.language),
            Cell::Text(&c.traffic),
            Cell::Number(c.rule.into()),
        ])
        .await?;
    }
    Ok(())
}

async fn stream_rollup(
    ch: &clickhouse::Client,
    spec: &ExportSpec,
    from: i64,
    to: i64,
    scope: &Scope<'_>,
    out: &mut ExportWriter,
) -> anyhow::Result<()> {
    let (bucket_fn, rollup) = match spec.bucket.unwrap_or(ExportBucket::Day) {
        ExportBucket::Minute => ("toStartOfMinute", rollups::MINUTE),
        ExportBucket::Hour => ("toStartOfHour", rollups::HOUR),
        ExportBucket::Day => ("toStartOfDay", rollups::DAY),
    };
    let mut cols = vec!["code", "domain"];
    for d in &spec.dimensions {
        let column = crate::stats::DIMENSIONS
            .iter()
            .find(|(n, _)| *n == d.name())
            .map(|(_, c)| *c)
            .ok_or_else(|| anyhow::anyhow!("no column for dimension {}", d.name()))?;
        cols.push(column);
    }
    let parts = rollups::plan(from, to, rollup);
    if parts.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT key, vals, countMerge(c) AS clicks, {merge}(v) AS visitors
           FROM ({union}) GROUP BY key, vals ORDER BY key, vals",
        merge = rollups::VISITORS_MERGE,
        union = rollups::union(
            &parts,
            rollups::Source::Wide,
            rollups::Key::Cross(bucket_fn, &cols),
            &scope.sql()
        )
    );
    let mut q = ch.query(&sql);
    for _ in &parts {
        q = scope.bind(q);
    }
    let mut cursor = q
        .with_setting("max_bytes_before_external_group_by", "268435456")
        .with_setting("max_bytes_before_external_sort", "268435456")
        .fetch::<RollupOut>()?;
    while let Some(r) = cursor.next().await? {
        let mut cells = Vec::with_capacity(r.vals.len() + 3);
        cells.push(Cell::Owned(crate::stats::rfc3339(r.key.into())));
        cells.extend(r.vals.iter().map(|v| Cell::Text(v)));
        cells.push(Cell::Number(r.clicks));
        cells.push(Cell::Number(r.visitors));
        out.row(&cells).await?;
    }
    Ok(())
}
