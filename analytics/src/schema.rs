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
//!   A dimension added later ([`ADDED_ROLLUP_DIMENSIONS`]) is added to the
//!   table and its sort key (`MODIFY ORDER BY`, which 18.16 allows for a column
//!   added in the same statement) and the view is made again; older rows read
//!   the column's default.
//! * `parked_batches`: batches given up on (undecodable, or refused by ClickHouse
//!   too often), with the error; kept `parked_retention_days` ([`crate::store::Store::purge_parked`]).
//!
//! Rollups are exact only if every event reaches `clicks` once; see the crate
//! doc for how redeliveries are kept out.

/// Dimensions of both rollups, in their sort-key order after code and time.
const ROLLUP_DIMENSIONS: &str =
    "status, country, device, browser, os, referrer_host, is_bot, is_preview, domain";

/// A rollup table: its name, and its time bucket's column, type and expression.
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    pub table: &'static str,
    pub bucket_col: &'static str,
    bucket_type: &'static str,
    bucket_expr: &'static str,
}

/// The rollups fed from `clicks`.
pub const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "clicks_per_minute",
        bucket_col: "minute",
        bucket_type: "DateTime",
        bucket_expr: "toStartOfMinute(ts)",
    },
    Rollup {
        table: "clicks_per_day",
        bucket_col: "day",
        bucket_type: "Date",
        bucket_expr: "toDate(ts)",
    },
];

/// Dimensions added to the rollups after they were first created, each with
/// its type and the column it follows (see [`upgrade_rollup`]).
/// `is_preview`: a link-preview fetcher (also counted in `is_bot`).
/// `domain`: the domain the click was served under, so a link's totals
/// (control's `clicks` on the link JSON) are its own and not those of the
/// same code on another domain; rows rolled up before read `''`.
pub const ADDED_ROLLUP_DIMENSIONS: &[(&str, &str, &str)] = &[
    ("is_preview", "UInt8", "is_bot"),
    ("domain", "String", "is_preview"),
];

/// Columns added to `clicks` after it was first created, each with the
/// column it follows: [`crate::store::Store::create_schema`] adds those a
/// table made by an older sidecar lacks (ClickHouse 18.16 has no
/// `ADD COLUMN IF NOT EXISTS`, so it looks in `system.columns` first).
/// `domain`: the normalised name of the domain a click was served under
/// (click batch version 2; empty for version-1 batches and the unnamed
/// default domain). `is_preview`: the agent is a link-preview fetcher
/// (`is_bot` is set too, so `is_bot = 0` still means people).
pub const ADDED_CLICK_COLUMNS: &[(&str, &str, &str)] = &[
    ("domain", "String", "host"),
    ("is_preview", "UInt8", "is_bot"),
];

/// The statements that create the database and tables in `database`, in
/// order. Each is `IF NOT EXISTS`, so running them again is harmless. The
/// views ([`views`]) come after the upgrades of older tables, since they read
/// the newest columns.
pub fn statements(database: &str) -> Vec<String> {
    let db = database;
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
                is_preview UInt8,
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
    out.extend(ROLLUPS.iter().map(|r| rollup_table(db, r)));
    out
}

/// The materialized views feeding the rollups (`IF NOT EXISTS`).
pub fn views(database: &str) -> Vec<String> {
    ROLLUPS.iter().map(|r| rollup_view(database, r)).collect()
}

fn rollup_table(db: &str, r: &Rollup) -> String {
    let Rollup {
        table,
        bucket_col,
        bucket_type,
        ..
    } = r;
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
            is_preview UInt8,
            domain String,
            clicks AggregateFunction(count),
            visitors AggregateFunction(uniq, UInt64)
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM({bucket_col})
        ORDER BY ({sort_key})",
        sort_key = sort_key(r)
    )
}

fn rollup_view(db: &str, r: &Rollup) -> String {
    let Rollup {
        table,
        bucket_col,
        bucket_expr,
        ..
    } = r;
    let dims = ROLLUP_DIMENSIONS;
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_mv TO {db}.{table} AS
        SELECT code, {bucket_expr} AS {bucket_col}, {dims},
               countState() AS clicks, uniqState(visitor_hash) AS visitors
        FROM {db}.clicks
        GROUP BY code, {bucket_col}, {dims}"
    )
}

fn sort_key(r: &Rollup) -> String {
    format!("code, {}, {ROLLUP_DIMENSIONS}", r.bucket_col)
}

/// The sort key as it is once `column` is added: the dimensions up to it
/// (later ones are added after it, one `ALTER` each).
fn sort_key_through(r: &Rollup, column: &str) -> String {
    let dims: Vec<&str> = ROLLUP_DIMENSIONS.split(", ").collect();
    let end = dims
        .iter()
        .position(|d| *d == column)
        .map_or(dims.len(), |i| i + 1);
    format!("code, {}, {}", r.bucket_col, dims[..end].join(", "))
}

/// The statements that add dimension `column` to a rollup made before it
/// existed: the column joins the table and its sort key in one `ALTER`, and
/// the view (which names its columns) is dropped, for [`views`] to make
/// again. Rows already rolled up read the column's default. Run before the
/// sidecar inserts: a click written between the drop and the create would
/// miss the rollup.
pub fn upgrade_rollup(db: &str, r: &Rollup, column: &str, kind: &str, after: &str) -> [String; 2] {
    let table = r.table;
    [
        format!(
            "ALTER TABLE {db}.{table} ADD COLUMN {column} {kind} AFTER {after}, \
             MODIFY ORDER BY ({sort_key})",
            sort_key = sort_key_through(r, column)
        ),
        format!("DROP TABLE IF EXISTS {db}.{table}_mv"),
    ]
}
