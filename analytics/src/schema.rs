//! The ClickHouse schema the sidecar owns, created on start.
//!
//! Written for ClickHouse 18.16 (Debian's) and current releases alike: no
//! `DateTime64`, no `LowCardinality` (it needs an experimental setting on
//! 18.16; plain `String` compresses well enough here), no table TTL (drop old
//! partitions: `ALTER TABLE clicks DROP PARTITION 202601`).
//!
//! * `clicks`: one row per click, `MergeTree`, partitioned by month, ordered by
//!   `(code, ts)` so per-link queries and the deduplication lookup read few granules.
//! * `clicks_per_minute`, `clicks_per_hour`, `clicks_per_day`:
//!   `AggregatingMergeTree` rollups fed by materialized views, keyed by code,
//!   UTC time bucket and every dimension the stats API reads (domain, the
//!   human / bot / preview flags, status, country, city, device, browser, OS,
//!   referrer host), holding `countState()` and `uniqState(visitor_hash)`.
//!   Read them with `countMerge(clicks)` and `uniqMerge(visitors)` and
//!   `GROUP BY`: parts are merged in the background, so a key can have
//!   several rows at any moment. A dimension added later
//!   ([`added_rollup_dimensions`]) is added to the table and its sort key
//!   (`MODIFY ORDER BY`, which 18.16 allows for a column added in the same
//!   statement) and the view is made again; older rows read the column's
//!   default. A rollup added later (the hourly one) is filled from the
//!   minute rollup when first made ([`backfill_rollup`]).
//! * `parked_batches`: batches given up on (undecodable, or refused by ClickHouse
//!   too often), with the error; kept `parked_retention_days` ([`crate::store::Store::purge_parked`]).
//!
//! Rollups are exact only if every event reaches `clicks` once; see the crate
//! doc for how redeliveries are kept out.

/// Dimensions of every rollup, in their sort-key order after code and the
/// time bucket, with their types. The first [`ORIGINAL_DIMENSIONS`] are those
/// the rollups were first made with; the ones after were added later, and a
/// rollup made before them gets them in this order ([`upgrade_rollup`]):
/// `is_preview` (a link-preview fetcher, also counted in `is_bot`), `domain`
/// (so a rollup is keyed by domain and code, like links), `city` and
/// `language` (so every breakdown and filter the stats API offers reads a
/// rollup).
pub const ROLLUP_DIMENSIONS: &[(&str, &str)] = &[
    ("status", "UInt16"),
    ("country", "String"),
    ("device", "String"),
    ("browser", "String"),
    ("os", "String"),
    ("referrer_host", "String"),
    ("is_bot", "UInt8"),
    ("is_preview", "UInt8"),
    ("domain", "String"),
    ("city", "String"),
    ("language", "String"),
];

/// How many of [`ROLLUP_DIMENSIONS`] the first rollups had.
pub const ORIGINAL_DIMENSIONS: usize = 7;

/// A rollup table: its name, and its time bucket's column, type and expression.
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    pub table: &'static str,
    pub bucket_col: &'static str,
    bucket_type: &'static str,
    bucket_expr: &'static str,
    /// Made after the first rollups: filled from [`Rollup::backfill_from`]
    /// when the sidecar creates it on a database that has clicks.
    pub backfill_from: Option<&'static str>,
}

/// The rollups fed from `clicks`, finest first. Buckets are UTC (the
/// expressions name the zone, whatever the server's).
pub const ROLLUPS: &[Rollup] = &[
    Rollup {
        table: "clicks_per_minute",
        bucket_col: "minute",
        bucket_type: "DateTime",
        bucket_expr: "toStartOfMinute(ts, 'UTC')",
        backfill_from: None,
    },
    Rollup {
        table: "clicks_per_hour",
        bucket_col: "hour",
        bucket_type: "DateTime",
        bucket_expr: "toStartOfHour(ts, 'UTC')",
        backfill_from: Some("clicks_per_minute"),
    },
    Rollup {
        table: "clicks_per_day",
        bucket_col: "day",
        bucket_type: "Date",
        bucket_expr: "toDate(ts, 'UTC')",
        backfill_from: None,
    },
];

/// The dimensions added to the rollups after they were first made, each with
/// its type and the column it follows (see [`upgrade_rollup`]).
pub fn added_rollup_dimensions() -> impl Iterator<Item = (&'static str, &'static str, &'static str)>
{
    ROLLUP_DIMENSIONS
        .windows(2)
        .skip(ORIGINAL_DIMENSIONS - 1)
        .map(|w| (w[1].0, w[1].1, w[0].0))
}

fn dimension_list(dims: &[(&str, &str)]) -> String {
    dims.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

/// Columns added to `clicks` after it was first created, each with the
/// column it follows: [`crate::store::Store::create_schema`] adds those a
/// table made by an older sidecar lacks (ClickHouse 18.16 has no
/// `ADD COLUMN IF NOT EXISTS`, so it looks in `system.columns` first).
/// `domain`: the normalised name of the domain a click was served under
/// (click batch version 2; empty for version-1 batches and the unnamed
/// default domain). `is_preview`: the agent is a link-preview fetcher
/// (`is_bot` is set too, so `is_bot = 0` still means people). `language`:
/// the preferred language's primary subtag (`crate::enrich::language`);
/// empty in rows stored before it.
pub const ADDED_CLICK_COLUMNS: &[(&str, &str, &str)] = &[
    ("domain", "String", "host"),
    ("is_preview", "UInt8", "is_bot"),
    ("language", "String", "accept_language"),
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
                language String,
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
    let columns: String = ROLLUP_DIMENSIONS
        .iter()
        .map(|(name, kind)| format!("{name} {kind},\n            "))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.{table} (
            code String,
            {bucket_col} {bucket_type},
            {columns}clicks AggregateFunction(count),
            visitors AggregateFunction(uniq, UInt64)
        ) ENGINE = AggregatingMergeTree
        PARTITION BY toYYYYMM({bucket_col})
        ORDER BY ({sort_key})",
        sort_key = sort_key(r, ROLLUP_DIMENSIONS.len())
    )
}

fn rollup_view(db: &str, r: &Rollup) -> String {
    let Rollup {
        table,
        bucket_col,
        bucket_expr,
        ..
    } = r;
    let dims = dimension_list(ROLLUP_DIMENSIONS);
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_mv TO {db}.{table} AS
        SELECT code, {bucket_expr} AS {bucket_col}, {dims},
               countState() AS clicks, uniqState(visitor_hash) AS visitors
        FROM {db}.clicks
        GROUP BY code, {bucket_col}, {dims}"
    )
}

/// The sort key with the first `dims` dimensions.
fn sort_key(r: &Rollup, dims: usize) -> String {
    format!(
        "code, {}, {}",
        r.bucket_col,
        dimension_list(&ROLLUP_DIMENSIONS[..dims])
    )
}

/// The statements that add dimension `column` to a rollup made before it
/// existed: the column joins the table and its sort key (up to this column:
/// a later one may be missing too) in one `ALTER`, which 18.16 allows for a
/// column added in the same statement, and the view (which names its
/// columns) is dropped, for [`views`] to make again. Rows already rolled up
/// read the column's default. Run before the sidecar inserts: a click
/// written between the drop and the create would miss the rollup.
pub fn upgrade_rollup(db: &str, r: &Rollup, column: &str, kind: &str, after: &str) -> [String; 2] {
    let table = r.table;
    let upto = ROLLUP_DIMENSIONS
        .iter()
        .position(|(name, _)| *name == column)
        .map_or(ROLLUP_DIMENSIONS.len(), |i| i + 1);
    [
        format!(
            "ALTER TABLE {db}.{table} ADD COLUMN {column} {kind} AFTER {after}, \
             MODIFY ORDER BY ({sort_key})",
            sort_key = sort_key(r, upto)
        ),
        format!("DROP TABLE IF EXISTS {db}.{table}_mv"),
    ]
}

/// The statement that fills a rollup made after the first ones from a finer
/// rollup (`from`), which holds every click since the sidecar first ran; run
/// when the table is new and before its view exists, so no click is counted
/// twice. The states are copied as they are: the table merges them.
pub fn backfill_rollup(db: &str, r: &Rollup, from: &Rollup) -> String {
    let dims = dimension_list(ROLLUP_DIMENSIONS);
    format!(
        "INSERT INTO {db}.{table} (code, {bucket_col}, {dims}, clicks, visitors)
         SELECT code, {bucket_expr} AS {bucket_col}, {dims}, clicks, visitors
           FROM {db}.{source}",
        table = r.table,
        bucket_col = r.bucket_col,
        bucket_expr = r
            .bucket_expr
            .replace("(ts,", &format!("({},", from.bucket_col)),
        source = from.table,
    )
}
