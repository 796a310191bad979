//! The ClickHouse schema the sidecar owns, created on start.
//!
//! Written for ClickHouse 18.16 (Debian's) and current releases alike: no
//! `DateTime64`, no `LowCardinality` (it needs an experimental setting on
//! 18.16; plain `String` compresses well enough here), no table TTL (drop old
//! partitions: `ALTER TABLE clicks DROP PARTITION 202601`).
//!
//! * `clicks`: one row per click, `MergeTree`, partitioned by month, ordered by
//!   `(code, ts)` so per-link queries and the deduplication lookup read few granules.
//! * `clicks_per_minute`, `clicks_per_day`: `AggregatingMergeTree` rollups fed by
//!   materialized views, keyed by code, time bucket and the main dimensions,
//!   holding `countState()` and `uniqState(visitor_hash)`. Read them with
//!   `countMerge(clicks)` and `uniqMerge(visitors)` and `GROUP BY`: parts are
//!   merged in the background, so a key can have several rows at any moment.
//! * `parked_batches`: batches given up on (undecodable, or refused by ClickHouse
//!   too often), with the error; kept `parked_retention_days` ([`crate::store::Store::purge_parked`]).
//!
//! Rollups are exact only if every event reaches `clicks` once; see the crate
//! doc for how redeliveries are kept out.

/// Dimensions of both rollups, in their sort-key order after code and time.
const ROLLUP_DIMENSIONS: &str = "status, country, device, browser, os, referrer_host, is_bot";

/// Columns added to `clicks` after it was first created, each with the
/// column it follows: [`crate::store::Store::create_schema`] adds those a
/// table made by an older sidecar lacks (ClickHouse 18.16 has no
/// `ADD COLUMN IF NOT EXISTS`, so it looks in `system.columns` first).
/// `domain`: the normalised name of the domain a click was served under
/// (click batch version 2; empty for version-1 batches and the unnamed
/// default domain).
pub const ADDED_CLICK_COLUMNS: &[(&str, &str, &str)] = &[("domain", "String", "host")];

/// The statements that create the schema in `database`, in order. Each is
/// `IF NOT EXISTS`, so running them again is harmless.
pub fn statements(database: &str) -> Vec<String> {
    let db = database;
    let dims = ROLLUP_DIMENSIONS;
    let rollup = |table: &str, bucket_col: &str, bucket_type: &str, bucket_expr: &str| {
        [
            format!(
                "CREATE TABLE IF NOT EXISTS {db}.{table} (
                    code String,
                    {bucket_col} {bucket_type},
                    status UInt16,
                    country String,
                    device String,
                    browser String,
                    os String,
                    referrer_host String,
                    is_bot UInt8,
                    clicks AggregateFunction(count),
                    visitors AggregateFunction(uniq, UInt64)
                ) ENGINE = AggregatingMergeTree
                PARTITION BY toYYYYMM({bucket_col})
                ORDER BY (code, {bucket_col}, {dims})"
            ),
            format!(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_mv TO {db}.{table} AS
                SELECT code, {bucket_expr} AS {bucket_col}, {dims},
                       countState() AS clicks, uniqState(visitor_hash) AS visitors
                FROM {db}.clicks
                GROUP BY code, {bucket_col}, {dims}"
            ),
        ]
    };
    let mut out = vec![
        format!("CREATE DATABASE IF NOT EXISTS {db}"),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.clicks (
                event_id FixedString(16),
                ts DateTime,
                ts_ms UInt64,
                batch_id FixedString(16),
                node String,
                code String,
                status UInt16,
                host String,
                domain String,
                ip_prefix String,
                country String,
                city String,
                device String,
                browser String,
                os String,
                referrer_host String,
                accept_language String,
                is_bot UInt8,
                visitor_hash UInt64
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(ts)
            ORDER BY (code, ts)"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {db}.parked_batches (
                parked_at DateTime,
                stream String,
                stream_seq UInt64,
                subject String,
                msg_id String,
                error String,
                payload String
            ) ENGINE = MergeTree
            PARTITION BY toYYYYMM(parked_at)
            ORDER BY (parked_at, stream_seq)"
        ),
    ];
    out.extend(rollup(
        "clicks_per_minute",
        "minute",
        "DateTime",
        "toStartOfMinute(ts)",
    ));
    out.extend(rollup("clicks_per_day", "day", "Date", "toDate(ts)"));
    out
}
