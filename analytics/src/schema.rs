//! The ClickHouse schema the sidecar owns, created on start.
//!
//! Written for ClickHouse 18.16 (Debian's) and current releases alike: no
//! `DateTime64`, no `LowCardinality` (it needs an experimental setting on
//! 18.16; plain `String` compresses well enough here), no table TTL (the
//! sidecar drops months past their retention:
//! [`crate::store::Store::drop_old_partitions`]).
//!
//! * `clicks`: one row per click, `MergeTree`, partitioned by month, ordered by
//!   `(code, ts)` so per-link queries and the deduplication lookup read few granules.
//! * `org_clicks_per_minute_hll`, `org_clicks_per_hour_hll`,
//!   `org_clicks_per_day_hll`: `AggregatingMergeTree` rollups fed by
//!   materialized views, keyed by the
//!   link's org first (an organisation's stats are one range), code, UTC
//!   time bucket, redirect rule and every dimension the stats API reads (domain, the
//!   human / bot / preview flags, status, country, city, device, browser, OS,
//!   referrer host), holding `countState()` and `uniqHLL12State(visitor_hash)`
//!   (fixed-size visitor estimates, [`VISITORS`]).
//!   Read them with `countMerge(clicks)` and `uniqHLL12Merge(visitors)` and
//!   `GROUP BY`: parts are merged in the background, so a key can have
//!   several rows at any moment. A dimension added later
//!   ([`added_rollup_dimensions`]) is added to the table and its sort key
//!   (`MODIFY ORDER BY`, which 18.16 allows for a column added in the same
//!   statement) and the view is made again; older rows read the column's
//!   default. A new rollup is filled when first made: from the raw `clicks`
//!   ([`backfill_rollup`]), and for the months `clicks` no longer holds,
//!   counts only, from the rollup it replaced ([`carry_over`]); the rollups
//!   it replaced ([`Rollup::replaces`]: with exact `uniq` states, and before
//!   them keyed by code) lose their views and stay for the operator.
//! * `org_series_per_minute_hll`, `org_series_per_hour_hll`, `org_series_per_day_hll`:
//!   narrow rollups with only what totals, series and top links read when
//!   no dimension filter is asked for (org, code, bucket, domain, rule,
//!   status and the bot / preview flags). A busy link has thousands of
//!   dimension combinations per hour in the wide rollups above and a handful
//!   of rows here ([`Shape::Series`]).
//!
//!   One-dimension rollups (a row per click and dimension through `ARRAY
//!   JOIN`, for breakdowns) were tried and left out: with them an insert of
//!   clicks took 5.6 times as long (analytics/README.md, "Rollup shapes").
//! * `parked_batches`: batches given up on (undecodable, or refused by ClickHouse
//!   too often), with the error; kept `parked_retention_days` ([`crate::store::Store::purge_parked`]).
//!
//! Rollups are exact only if every event reaches `clicks` once; see the crate
//! doc for how redeliveries are kept out.
//!
//! With `clickhouse_replicated` every table is made with the `Replicated`
//! form of its engine ([`engine`]), coordinated through the ZooKeeper the
//! server is configured with, at `/clickhouse/tables/<database>/<table>`,
//! one replica per server named by its `{replica}` macro: two servers given
//! the same database hold the same rows (one shard, several replicas; the
//! README says why not shards). Views are per server and made by each
//! sidecar on its own.

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

/// What a rollup keeps of a click besides its org, code and time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Every dimension of [`ROLLUP_DIMENSIONS`] (filters and cross rows
    /// need them together).
    Wide,
    /// Domain, rule, status and the bot and preview flags
    /// ([`SERIES_COLUMNS`]): totals, series, top links.
    Series,
}

/// The columns of the series rollups after the time bucket, in sort-key
/// order, with their types.
pub const SERIES_COLUMNS: &[(&str, &str)] = &[
    ("domain", "String"),
    ("rule", "UInt16"),
    ("status", "UInt16"),
    ("is_bot", "UInt8"),
    ("is_preview", "UInt8"),
];

/// The aggregate function of the rollups' visitor states: `uniqHLL12`, a
/// HyperLogLog of 2^12 five-bit registers. A state is exact up to 16
/// distinct visitors and 2,651 bytes above, however many visitors it holds
/// (an exact `uniq` state grows to 256 KiB), so merging a busy link's
/// buckets costs the same for a day as for a minute. The estimate's error:
/// [`VISITORS_ERROR`]. Merging states gives the estimate of the union,
/// exactly what `uniqHLL12(visitor_hash)` over the raw rows gives, so a
/// rollup still equals its raw rows (analytics/README.md, "Visitor states",
/// has the measurements against `uniq` and `uniqCombined`).
pub const VISITORS: &str = "uniqHLL12";

/// The documented bound of a visitor estimate's relative error against the
/// exact count, in percent: four standard errors of 4,096 registers
/// (1.04 / sqrt(4096) = 1.6 %). Measured on 4,000 sets of 1 to 300,000
/// visitors (analytics/README.md, "Visitor states"): mean error 0.5-1.3 %,
/// 99 % of estimates within 4.8 %, the worst 6.25 % (4 too few of 64). Up
/// to 16 distinct visitors the count is exact. The bound is for values
/// spread like hashes, as `visitor_hash` is (XXH3); small consecutive
/// integers fare worse (`uniqHLL12` of 0..23 is 22).
pub const VISITORS_ERROR: f64 = 6.5;

/// A rollup table: its name, shape, and its time bucket's column, type,
/// width and expression.
#[derive(Debug, Clone, Copy)]
pub struct Rollup {
    pub table: &'static str,
    pub shape: Shape,
    pub bucket_col: &'static str,
    bucket_type: &'static str,
    bucket_expr: &'static str,
    /// The bucket's width, seconds.
    pub bucket_secs: i64,
    /// The rollups this one replaced, oldest first, whose views the
    /// sidecar drops once this one is filled: from the newest of them that
    /// exists ([`carry_over`]) for the months the raw clicks no longer
    /// hold, from the raw clicks ([`backfill_rollup`]) after. Their tables
    /// are left for the operator.
    pub replaces: &'static [&'static str],
}

const MINUTE: (&str, &str, &str, i64) = ("minute", "DateTime", "toStartOfMinute(ts, 'UTC')", 60);
const HOUR: (&str, &str, &str, i64) = ("hour", "DateTime", "toStartOfHour(ts, 'UTC')", 3600);
const DAY: (&str, &str, &str, i64) = ("day", "Date", "toDate(ts, 'UTC')", 86_400);

const fn rollup(
    table: &'static str,
    shape: Shape,
    (bucket_col, bucket_type, bucket_expr, bucket_secs): (
        &'static str,
        &'static str,
        &'static str,
        i64,
    ),
    replaces: &'static [&'static str],
) -> Rollup {
    Rollup {
        table,
        shape,
        bucket_col,
        bucket_type,
        bucket_expr,
        bucket_secs,
        replaces,
    }
}

/// The rollups fed from `clicks`: the wide ones finest first (the ones
/// [`added_rollup_dimensions`] upgrades), then the narrow ones. Buckets are
/// UTC (the expressions name the zone, whatever the server's). Each
/// replaced the rollup of the same key with exact `uniq` visitor states
/// (`org_clicks_per_minute`...), which replaced, for the wide ones, the
/// rollups keyed by code before the org (`clicks_per_minute`...).
pub const ROLLUPS: &[Rollup] = &[
    rollup(
        "org_clicks_per_minute_hll",
        Shape::Wide,
        MINUTE,
        &["clicks_per_minute", "org_clicks_per_minute"],
    ),
    rollup(
        "org_clicks_per_hour_hll",
        Shape::Wide,
        HOUR,
        &["clicks_per_hour", "org_clicks_per_hour"],
    ),
    rollup(
        "org_clicks_per_day_hll",
        Shape::Wide,
        DAY,
        &["clicks_per_day", "org_clicks_per_day"],
    ),
    rollup(
        "org_series_per_minute_hll",
        Shape::Series,
        MINUTE,
        &["org_series_per_minute"],
    ),
    rollup(
        "org_series_per_hour_hll",
        Shape::Series,
        HOUR,
        &["org_series_per_hour"],
    ),
    rollup(
        "org_series_per_day_hll",
        Shape::Series,
        DAY,
        &["org_series_per_day"],
    ),
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
/// `org_id` and `rule` (click batch version 3): the organisation owning
/// the link and the redirect rule that served the visit; 0 in rows stored
/// before them (see the README, "Organisations").
pub const ADDED_CLICK_COLUMNS: &[(&str, &str, &str)] = &[
    ("domain", "String", "host"),
    ("is_preview", "UInt8", "is_bot"),
    ("language", "String", "accept_language"),
    ("org_id", "UInt64", "visitor_hash"),
    ("rule", "UInt16", "org_id"),
];

/// How the tables are made: on one server, or replicated through ZooKeeper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replication {
    /// Plain `MergeTree` engines (the default).
    #[default]
    Single,
    /// `ReplicatedMergeTree` engines, one replica per server.
    Replicated,
}

/// The `ENGINE` clause of `db.table`, whose single-server engine is `kind`
/// (`MergeTree`, `AggregatingMergeTree`): that engine, or its replicated
/// form at `/clickhouse/tables/<db>/<table>` in ZooKeeper with the server's
/// `{replica}` macro as the replica's name (ClickHouse 18.16 has no
/// `{database}` macro, so the name is written in).
pub fn engine(kind: &str, replication: Replication, db: &str, table: &str) -> String {
    match replication {
        Replication::Single => format!("ENGINE = {kind}"),
        Replication::Replicated => {
            format!("ENGINE = Replicated{kind}('/clickhouse/tables/{db}/{table}', '{{replica}}')")
        }
    }
}

/// The statements that create the database and tables in `database`, in
/// order. Each is `IF NOT EXISTS`, so running them again is harmless. The
/// views ([`views`]) come after the upgrades of older tables, since they read
/// the newest columns.
pub fn statements(database: &str) -> Vec<String> {
    statements_with(database, Replication::Single)
}

/// [`statements`], with the tables made as `replication` says.
pub fn statements_with(database: &str, replication: Replication) -> Vec<String> {
    let db = database;
    let engine = |kind, table| engine(kind, replication, db, table);
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
                visitor_hash UInt64,
                org_id UInt64,
                rule UInt16
            ) {clicks_engine}
            PARTITION BY toYYYYMM(ts)
            ORDER BY (code, ts)",
            clicks_engine = engine("MergeTree", "clicks"),
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
            ) {parked_engine}
            PARTITION BY toYYYYMM(parked_at)
            ORDER BY (parked_at, stream_seq)",
            parked_engine = engine("MergeTree", "parked_batches"),
        ),
    ];
    out.extend(ROLLUPS.iter().map(|r| rollup_table(db, r, replication)));
    out
}

/// The materialized views feeding the rollups (`IF NOT EXISTS`).
pub fn views(database: &str) -> Vec<String> {
    ROLLUPS.iter().map(|r| rollup_view(database, r)).collect()
}

/// A rollup's columns between its time bucket and its states, with their
/// types, in sort-key order (for a wide rollup, its first `dims`
/// dimensions: see [`upgrade_rollup`]).
fn key_columns(r: &Rollup, dims: usize) -> Vec<(&'static str, &'static str)> {
    match r.shape {
        Shape::Wide => std::iter::once(("rule", "UInt16"))
            .chain(ROLLUP_DIMENSIONS[..dims].iter().copied())
            .collect(),
        Shape::Series => SERIES_COLUMNS.to_vec(),
    }
}

fn rollup_table(db: &str, r: &Rollup, replication: Replication) -> String {
    let Rollup {
        table,
        bucket_col,
        bucket_type,
        ..
    } = r;
    let columns: String = key_columns(r, ROLLUP_DIMENSIONS.len())
        .iter()
        .map(|(name, kind)| format!("{name} {kind},\n            "))
        .collect();
    format!(
        "CREATE TABLE IF NOT EXISTS {db}.{table} (
            org_id UInt64,
            code String,
            {bucket_col} {bucket_type},
            {columns}clicks AggregateFunction(count),
            visitors AggregateFunction({VISITORS}, UInt64)
        ) {engine}
        PARTITION BY toYYYYMM({bucket_col})
        ORDER BY ({sort_key})",
        engine = engine("AggregatingMergeTree", replication, db, table),
        sort_key = sort_key(r, ROLLUP_DIMENSIONS.len())
    )
}

fn rollup_view(db: &str, r: &Rollup) -> String {
    let table = r.table;
    format!(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{table}_mv TO {db}.{table} AS {select}",
        select = rollup_select(db, r, None)
    )
}

/// What a rollup holds, from the raw `clicks` (those from `since` on, Unix
/// seconds, when given): its view's query, and the fill of a new rollup
/// ([`backfill_rollup`]).
fn rollup_select(db: &str, r: &Rollup, since: Option<i64>) -> String {
    let Rollup {
        bucket_col,
        bucket_expr,
        ..
    } = r;
    let columns = dimension_list(&key_columns(r, ROLLUP_DIMENSIONS.len()));
    let since = since.map_or(String::new(), |t| format!(" WHERE ts >= toDateTime({t})"));
    format!(
        "SELECT org_id, code, {bucket_expr} AS {bucket_col}, {columns},
               countState() AS clicks, {VISITORS}State(visitor_hash) AS visitors
        FROM {db}.clicks{since}
        GROUP BY org_id, code, {bucket_col}, {columns}"
    )
}

/// The sort key (for a wide rollup, with its first `dims` dimensions). It
/// starts with the org, so an organisation's stats are one range of the
/// table, then the code, so a link's are a range within it.
fn sort_key(r: &Rollup, dims: usize) -> String {
    format!(
        "org_id, code, {}, {}",
        r.bucket_col,
        dimension_list(&key_columns(r, dims))
    )
}

/// The statements that add dimension `column` to a wide rollup made before it
/// existed: the column joins the table and its sort key (up to this column:
/// a later one may be missing too) in one `ALTER`, which 18.16 allows for a
/// column added in the same statement, and the view (which names its
/// columns) is dropped, for [`views`] to make again. Rows already rolled up
/// read the column's default. Run before the sidecar inserts: a click
/// written between the drop and the create would miss the rollup.
pub fn upgrade_rollup(db: &str, r: &Rollup, column: &str, kind: &str, after: &str) -> [String; 2] {
    debug_assert_eq!(
        r.shape,
        Shape::Wide,
        "only the wide rollups gain dimensions"
    );
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

/// The statement that fills a new rollup from the raw `clicks` (every
/// click the sidecar has stored, those of the rollups it replaces
/// included; with `since`, Unix seconds, a multiple of the bucket's width:
/// those from then on, the earlier buckets being [`carry_over`]'s); run
/// when the table is empty and before its view exists, so no click is
/// counted twice.
pub fn backfill_rollup(db: &str, r: &Rollup, since: Option<i64>) -> String {
    let columns = dimension_list(&key_columns(r, ROLLUP_DIMENSIONS.len()));
    format!(
        "INSERT INTO {db}.{table} (org_id, code, {bucket_col}, {columns}, clicks, visitors) {select}",
        table = r.table,
        bucket_col = r.bucket_col,
        select = rollup_select(db, r, since),
    )
}

/// The statement that copies into the new rollup `r` the rows of `old`, a
/// rollup it replaces (one of [`Rollup::replaces`]), whose buckets start
/// before `before` (Unix seconds, a multiple of the bucket's width; `None`:
/// every row): their count states as they are and an empty visitor state,
/// since an exact `uniq` state cannot become a [`VISITORS`] one (only the
/// raw clicks can). `old_columns` are the columns `old` has: a key column
/// it lacks (an older rollup: no org, rule or later dimensions) is written
/// as its type's default, as the raw rows of its time read it.
///
/// This is what keeps the counts of the months the raw `clicks` no longer
/// hold (dropped past `raw_retention_days`); [`backfill_rollup`] fills the
/// buckets from `before` on, with visitors.
pub fn carry_over(
    db: &str,
    r: &Rollup,
    old: &str,
    old_columns: &[String],
    before: Option<i64>,
) -> String {
    let keys = key_columns(r, ROLLUP_DIMENSIONS.len());
    let has = |name: &str| old_columns.iter().any(|c| c == name);
    let value = |name: &str, kind: &str| {
        if has(name) {
            name.to_owned()
        } else if kind == "String" {
            format!("'' AS {name}")
        } else {
            format!("CAST(0 AS {kind}) AS {name}")
        }
    };
    let selected: Vec<String> = std::iter::once(("org_id", "UInt64"))
        .chain(keys.iter().copied())
        .map(|(name, kind)| value(name, kind))
        .collect();
    let bucket_col = r.bucket_col;
    let before = before.map_or(String::new(), |t| {
        if r.bucket_type == "Date" {
            format!(" WHERE {bucket_col} < toDate(toDateTime({t}), 'UTC')")
        } else {
            format!(" WHERE {bucket_col} < toDateTime({t})")
        }
    });
    format!(
        "INSERT INTO {db}.{table} (org_id, {columns}, code, {bucket_col}, clicks, visitors)
         SELECT {selected}, code, {bucket_col}, clicks,
                arrayReduce('{VISITORS}State', emptyArrayUInt64()) AS visitors
         FROM {db}.{old}{before}",
        table = r.table,
        columns = dimension_list(&keys),
        selected = selected.join(", "),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn narrow_rollups_are_keyed_for_their_reads() {
        let series = ROLLUPS
            .iter()
            .find(|r| r.table == "org_series_per_hour_hll")
            .unwrap();
        assert_eq!(
            sort_key(series, ROLLUP_DIMENSIONS.len()),
            "org_id, code, hour, domain, rule, status, is_bot, is_preview"
        );
        let wide = &ROLLUPS[0];
        assert_eq!(wide.table, "org_clicks_per_minute_hll");
        assert_eq!(
            sort_key(wide, ORIGINAL_DIMENSIONS),
            "org_id, code, minute, rule, status, country, device, browser, os, referrer_host, is_bot"
        );
    }

    #[test]
    fn a_carry_over_defaults_what_the_old_rollup_lacks_and_stops_at_the_raw_clicks() {
        let day = ROLLUPS
            .iter()
            .find(|r| r.table == "org_series_per_day_hll")
            .unwrap();
        let old: Vec<String> = ["org_id", "code", "day", "domain", "status", "is_bot"]
            .map(String::from)
            .to_vec();
        let sql = carry_over("db", day, "org_series_per_day", &old, Some(1_767_225_600));
        assert!(
            sql.contains("SELECT org_id, domain, CAST(0 AS UInt16) AS rule, status, is_bot, CAST(0 AS UInt8) AS is_preview, code, day, clicks"),
            "{sql}"
        );
        assert!(
            sql.contains("arrayReduce('uniqHLL12State', emptyArrayUInt64())"),
            "{sql}"
        );
        assert!(
            sql.ends_with(
                "FROM db.org_series_per_day WHERE day < toDate(toDateTime(1767225600), 'UTC')"
            ),
            "{sql}"
        );
        let all = carry_over("db", day, "org_series_per_day", &old, None);
        assert!(all.ends_with("FROM db.org_series_per_day"), "{all}");
        let fill = backfill_rollup("db", day, Some(1_767_225_600));
        assert!(
            fill.contains("FROM db.clicks WHERE ts >= toDateTime(1767225600)"),
            "{fill}"
        );
    }
}
