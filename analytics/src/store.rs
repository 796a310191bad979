//! The ClickHouse side: schema creation, the deduplication lookup and inserts.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use bytes::Bytes;
use clickhouse::Client;

use crate::config::Config;
use crate::encoded::{ClickRows, RowRef};
use crate::hash::SeededXxh3;
use crate::rows::{ClickRow, IdRow, ParkedRow};
use crate::schema;

/// Ids per deduplication lookup. Each id is a few AST nodes and ~45 bytes of
/// SQL; ClickHouse refuses queries over 50,000 AST elements by default.
const LOOKUP_CHUNK: usize = 5_000;
/// Above this many distinct codes a lookup leaves the `code IN` condition
/// out (it would only add AST elements; the time range still bounds it).
const MAX_LOOKUP_CODES: usize = 5_000;
/// A lookup's text is up to ~250 KB, about the server's 256 KiB default.
const MAX_QUERY_SIZE: &str = "4194304";
/// Bytes per chunk (one compressed block each) of an insert's body.
const INSERT_CHUNK: usize = 256 * 1024;

/// A ClickHouse client bound to the sidecar's database.
#[derive(Clone)]
pub struct Store {
    /// No default database: it may not exist yet when the schema is created.
    admin: Client,
    /// Default database set: inserts name the bare table (the crate quotes
    /// a table name as one identifier, so `db.table` would not work).
    client: Client,
    database: String,
    replication: schema::Replication,
    /// `insert_quorum` for inserts; 0 is off.
    insert_quorum: u32,
    /// `clicks-insert:<database>:`: every insert into `clicks` runs under
    /// a `query_id` that starts with this, so
    /// [`settle_inserts`](Self::settle_inserts) finds this database's
    /// inserts in the server's process list, whichever sidecar sent them.
    insert_id_prefix: String,
    /// `<pid>.<start>.`: what sets this process's insert ids apart from
    /// other sidecars' (a counter follows).
    insert_id_process: String,
    inserts_sent: Arc<AtomicU64>,
}

/// How often [`Store::settle_inserts`] looks at the process list again.
const SETTLE_POLL: Duration = Duration::from_millis(50);

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("database", &self.database)
            .finish()
    }
}

impl Store {
    /// A client for `config.clickhouse`; connects lazily.
    pub fn new(config: &Config) -> Store {
        // Validation off: 18.16 has no RowBinaryWithNamesAndTypes.
        let mut client = Client::default()
            .with_url(&config.clickhouse)
            .with_validation(false);
        if let Some(user) = &config.clickhouse_user {
            client = client.with_user(user);
        }
        if let Some(password) = &config.clickhouse_password {
            client = client.with_password(password);
        }
        Store {
            admin: client.clone(),
            client: client.with_database(&config.database),
            database: config.database.clone(),
            replication: config.replication(),
            insert_quorum: config.clickhouse_insert_quorum,
            insert_id_prefix: insert_id_prefix(&config.database),
            insert_id_process: insert_id_process(),
            inserts_sent: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Creates the database, tables and views if missing, and upgrades
    /// tables an older sidecar made: tables, then added columns, then the
    /// fill of new rollups, then views (which read the added columns), then
    /// the replaced rollups' views are dropped. Run before any insert, and
    /// with no older sidecar still inserting: a click stored between a
    /// rollup's fill and its view would miss it.
    pub async fn create_schema(&self) -> clickhouse::error::Result<()> {
        for sql in schema::statements_with(&self.database, self.replication) {
            self.admin.query(&sql).execute().await?;
        }
        if self.replication == schema::Replication::Replicated {
            self.check_replicated().await?;
        }
        for (column, kind, after) in schema::ADDED_CLICK_COLUMNS {
            if !self.has_column("clicks", column).await? {
                let sql = format!(
                    "ALTER TABLE {}.clicks ADD COLUMN {column} {kind} AFTER {after}",
                    self.database
                );
                self.admin.query(&sql).execute().await?;
            }
        }
        let wide = schema::ROLLUPS
            .iter()
            .filter(|r| r.shape == schema::Shape::Wide);
        for rollup in wide {
            for (column, kind, after) in schema::added_rollup_dimensions() {
                if !self.has_column(rollup.table, column).await? {
                    for sql in schema::upgrade_rollup(&self.database, rollup, column, kind, after) {
                        self.admin.query(&sql).execute().await?;
                    }
                }
            }
        }
        // A rollup made after clicks were stored starts with all of them:
        // filled while it is still empty and has no view (nothing is
        // inserted meanwhile, so no click is counted twice), then its view
        // is made, then the views of the rollups it replaced are dropped
        // (their tables stay for the operator). A replaced view still there
        // next to a rollup without its own view means a start stopped while
        // filling it: the fill is done again from scratch. (A rollup without
        // its view and with rows otherwise had its view dropped to gain a
        // dimension, [`schema::upgrade_rollup`]: its rows stay.)
        //
        // Not on replicated tables: a server joining the replicas has no
        // view yet and may have fetched some of `clicks` and none of the
        // rollup, and a fill there would be replicated to every server on
        // top of their own rows.
        if self.replication == schema::Replication::Single {
            let raw_since = self.raw_clicks_since().await?;
            for rollup in schema::ROLLUPS {
                if self.has_table(&format!("{}_mv", rollup.table)).await? {
                    continue;
                }
                let mut interrupted = false;
                for old in rollup.replaces {
                    interrupted |= self.has_table(&format!("{old}_mv")).await?;
                }
                if !self.is_empty(rollup.table).await? {
                    if !interrupted {
                        continue;
                    }
                    let sql = format!("TRUNCATE TABLE {}.{}", self.database, rollup.table);
                    self.admin.query(&sql).execute().await?;
                }
                self.fill_rollup(rollup, raw_since).await?;
            }
        }
        for sql in schema::views(&self.database) {
            self.admin.query(&sql).execute().await?;
        }
        for rollup in schema::ROLLUPS {
            for old in rollup.replaces {
                let sql = format!("DROP TABLE IF EXISTS {}.{old}_mv", self.database);
                self.admin.query(&sql).execute().await?;
            }
        }
        Ok(())
    }

    /// Fills the new, empty `rollup`. Its buckets from the start of the
    /// first month the raw `clicks` hold (`raw_since`) come from them, with
    /// visitors; the earlier ones (months dropped from `clicks` past the raw
    /// retention, still in the rollups) are copied from the newest rollup it
    /// replaced, counts only ([`schema::carry_over`]). No replaced rollup:
    /// everything from `clicks`.
    async fn fill_rollup(
        &self,
        rollup: &schema::Rollup,
        raw_since: Option<i64>,
    ) -> clickhouse::error::Result<()> {
        let mut old = None;
        for name in rollup.replaces.iter().rev() {
            if self.has_table(name).await? {
                old = Some(*name);
                break;
            }
        }
        let Some(old) = old else {
            let sql = schema::backfill_rollup(&self.database, rollup, None);
            return self.admin.query(&sql).execute().await;
        };
        // The first whole bucket from `raw_since` on: a bucket is read from
        // one table or the other, never both.
        let width = rollup.bucket_secs;
        let cut = raw_since.map(|t| (t + width - 1).div_euclid(width) * width);
        let columns: Vec<String> = self
            .admin
            .query("SELECT name FROM system.columns WHERE database = ? AND table = ?")
            .bind(&self.database)
            .bind(old)
            .fetch_all()
            .await?;
        let sql = schema::carry_over(&self.database, rollup, old, &columns, cut);
        self.admin.query(&sql).execute().await?;
        if let Some(cut) = cut {
            let sql = schema::backfill_rollup(&self.database, rollup, Some(cut));
            self.admin.query(&sql).execute().await?;
        }
        Ok(())
    }

    /// From when the raw `clicks` hold every click stored, Unix seconds:
    /// the start of their first month (server time, as the partitions and
    /// [`Store::drop_old_partitions`] count months), since only whole months
    /// are dropped. `None`: `clicks` is empty.
    async fn raw_clicks_since(&self) -> clickhouse::error::Result<Option<i64>> {
        if self.is_empty("clicks").await? {
            return Ok(None);
        }
        let sql = format!(
            "SELECT toUInt32(toDateTime(toStartOfMonth(min(ts)))) FROM {}.clicks",
            self.database
        );
        let since: u32 = self.admin.query(&sql).fetch_one().await?;
        Ok(Some(i64::from(since)))
    }

    /// Replicated tables asked for, but `clicks` exists and is not one
    /// (made before `clickhouse_replicated` was set): an error rather than
    /// two servers each holding their own clicks. The sidecar retries it
    /// at start like any schema failure, saying why in its log.
    async fn check_replicated(&self) -> clickhouse::error::Result<()> {
        let engine: String = self
            .admin
            .query("SELECT engine FROM system.tables WHERE database = ? AND name = 'clicks'")
            .bind(&self.database)
            .fetch_one()
            .await?;
        if engine.starts_with("Replicated") {
            return Ok(());
        }
        Err(clickhouse::error::Error::Custom(format!(
            "clickhouse_replicated is set but {}.clicks is a {engine} table: \
             the sidecar does not convert tables; move the data into replicated ones \
             (docs: analytics/README.md, \"Several ClickHouse servers\")",
            self.database
        )))
    }

    /// Brings this replica's `clicks` up to date with the others: fetches
    /// every part another replica has announced in ZooKeeper so far
    /// (`SYSTEM SYNC REPLICA`), so a deduplication lookup after it sees
    /// what a sidecar on another replica stored. A no-op without
    /// replication.
    pub async fn sync_replica(&self) -> clickhouse::error::Result<()> {
        if self.replication == schema::Replication::Single {
            return Ok(());
        }
        let sql = format!("SYSTEM SYNC REPLICA {}.clicks", self.database);
        self.admin.query(&sql).execute().await
    }

    /// Returns once every insert into this database's `clicks` that the
    /// server is running now, from any sidecar, has finished (committed or
    /// failed).
    ///
    /// Why: a sidecar killed, or a try that timed out on the client's side,
    /// leaves its `INSERT` running on the server, and it commits after the
    /// client is gone. Its batches come back (redelivered to another sidecar
    /// after `ack_wait`, or retried by this one), and a deduplication lookup
    /// made before that commit would not see the rows: they would be
    /// inserted twice. So a group holding a redelivered batch, or being
    /// retried, waits for the inserts running at that moment before its
    /// lookup. Inserts that start later are not waited for (they cannot
    /// hold rows of batches already handed to us), so this ends however
    /// busy other sidecars are. The process list is the server's own: with
    /// replication, an insert still running on another replica is not seen
    /// (README, "Several ClickHouse servers").
    pub async fn settle_inserts(&self) -> clickhouse::error::Result<()> {
        let prefix = sql_string(&self.insert_id_prefix);
        let running: Vec<String> = self
            .admin
            .query_raw(&format!(
                "SELECT query_id FROM system.processes WHERE startsWith(query_id, {prefix})"
            ))
            .fetch_all()
            .await?;
        if running.is_empty() {
            return Ok(());
        }
        let mut ids = String::new();
        for (i, id) in running.iter().enumerate() {
            if i > 0 {
                ids.push_str(", ");
            }
            ids.push_str(&sql_string(id));
        }
        let sql = format!("SELECT count() FROM system.processes WHERE query_id IN ({ids})");
        tracing::info!(
            inserts = running.len(),
            "waiting for inserts still running on the server before deduplicating"
        );
        loop {
            let left: u64 = self.admin.query_raw(&sql).fetch_one().await?;
            if left == 0 {
                return Ok(());
            }
            tokio::time::sleep(SETTLE_POLL).await;
        }
    }

    /// Whether `table` of the sidecar's database has `column` (ClickHouse
    /// 18.16 has no `ADD COLUMN IF NOT EXISTS`).
    async fn has_column(&self, table: &str, column: &str) -> clickhouse::error::Result<bool> {
        let present: u64 = self
            .admin
            .query(
                "SELECT count() FROM system.columns
                  WHERE database = ? AND table = ? AND name = ?",
            )
            .bind(&self.database)
            .bind(table)
            .bind(column)
            .fetch_one()
            .await?;
        Ok(present > 0)
    }

    /// Whether the sidecar's database has `table` (or view).
    async fn has_table(&self, table: &str) -> clickhouse::error::Result<bool> {
        let present: u64 = self
            .admin
            .query("SELECT count() FROM system.tables WHERE database = ? AND name = ?")
            .bind(&self.database)
            .bind(table)
            .fetch_one()
            .await?;
        Ok(present > 0)
    }

    /// Whether `table` of the sidecar's database has no rows.
    async fn is_empty(&self, table: &str) -> clickhouse::error::Result<bool> {
        let sql = format!("SELECT count() FROM {}.{table}", self.database);
        let rows: u64 = self.admin.query(&sql).fetch_one().await?;
        Ok(rows == 0)
    }

    /// The ids among `rows` that `clicks` already holds.
    ///
    /// Two steps, both bounded by the rows' own codes and time range (the
    /// table's sort key), so they read only the granules those events could be
    /// in, however large the table grows:
    /// 1. which of the rows' batch ids have any row stored (a few dozen ids);
    /// 2. only for rows of those batches: which event ids are stored.
    ///
    /// Step 2 is what makes the answer exact after a partial insert; step 1
    /// keeps the common case (a batch never seen) to one small query, because
    /// ClickHouse 18.16 parses long `IN` lists slowly (~16 µs per id). It is
    /// sound because an event is written into exactly one batch and a batch
    /// keeps its id wherever it is re-sent (FORMAT.md §3).
    pub async fn existing_ids(
        &self,
        batches: &[&ClickRows],
    ) -> clickhouse::error::Result<HashSet<[u8; 16], SeededXxh3>> {
        let mut existing = HashSet::default();
        let rows = || batches.iter().flat_map(|b| b.iter());
        let Some(sql) = lookup_sql(&self.database, rows(), Key::Batch) else {
            return Ok(existing);
        };
        let present: HashSet<[u8; 16], SeededXxh3> = self.fetch_ids(&sql).await?;
        if present.is_empty() {
            return Ok(existing);
        }
        let candidates: Vec<RowRef<'_>> =
            rows().filter(|r| present.contains(&r.batch_id())).collect();
        for chunk in candidates.chunks(LOOKUP_CHUNK) {
            if let Some(sql) = lookup_sql(&self.database, chunk.iter().copied(), Key::Event) {
                existing.extend(self.fetch_ids(&sql).await?);
            }
        }
        Ok(existing)
    }

    async fn fetch_ids(
        &self,
        sql: &str,
    ) -> clickhouse::error::Result<HashSet<[u8; 16], SeededXxh3>> {
        // Raw: codes may contain `?`, which `query()` would take for a placeholder.
        let mut query = self
            .admin
            .query_raw(sql)
            .with_setting("max_query_size", MAX_QUERY_SIZE);
        if self.insert_quorum > 0 {
            // Refuses to answer on a replica missing a part written with
            // the quorum, instead of answering without it.
            query = query.with_setting("select_sequential_consistency", "1");
        }
        let found: Vec<IdRow> = query.fetch_all().await?;
        Ok(found.into_iter().map(|r| r.id).collect())
    }

    /// Inserts encoded rows ([`ClickRows::bytes`], concatenated) into
    /// `clicks` in one statement (the rollup views see the same block).
    /// Returns when the server has written them.
    pub async fn insert_clicks(&self, body: Bytes) -> clickhouse::error::Result<()> {
        if body.is_empty() {
            return Ok(());
        }
        let n = self.inserts_sent.fetch_add(1, Relaxed);
        let sql = format!(
            "INSERT INTO clicks({}) FORMAT RowBinary",
            <ClickRow as clickhouse::Row>::COLUMN_NAMES.join(",")
        );
        let mut insert = self.client.insert_formatted_with(sql).with_setting(
            "query_id",
            format!("{}{}{n}", self.insert_id_prefix, self.insert_id_process),
        );
        if self.insert_quorum > 0 {
            insert = insert.with_setting("insert_quorum", self.insert_quorum.to_string());
        }
        // Chunks as the crate's own row inserts send them; the server reads
        // one stream, so a row may span two.
        let mut at = 0;
        while at < body.len() {
            let end = (at + INSERT_CHUNK).min(body.len());
            insert.send(body.slice(at..end)).await?;
            at = end;
        }
        insert.end().await
    }

    /// Inserts parked batches.
    pub async fn insert_parked(&self, rows: &[ParkedRow]) -> clickhouse::error::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<ParkedRow>("parked_batches").await?;
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Deletes parked batches parked more than `days` days ago; returns how
    /// many there were. ClickHouse 18.16 has no TTL, so this is a mutation
    /// (`ALTER TABLE ... DELETE`, applied in the background), issued only
    /// when there is something to delete.
    pub async fn purge_parked(&self, days: u32) -> clickhouse::error::Result<u64> {
        let condition = format!("parked_at < now() - INTERVAL {days} DAY");
        let old: u64 = self
            .client
            .query(&format!(
                "SELECT count() FROM parked_batches WHERE {condition}"
            ))
            .fetch_one()
            .await?;
        if old > 0 {
            self.client
                .query(&format!(
                    "ALTER TABLE parked_batches DELETE WHERE {condition}"
                ))
                .execute()
                .await?;
        }
        Ok(old)
    }

    /// Drops the monthly partitions of `clicks` entirely older than
    /// `raw_days` and those of the rollups entirely older than
    /// `rollup_days` (ClickHouse 18.16 has no TTL); returns how many were
    /// dropped. A partition goes only when its whole month is before the
    /// cut-off, so a row is kept at least its retention and at most a month
    /// more.
    pub async fn drop_old_partitions(
        &self,
        raw_days: u32,
        rollup_days: u32,
    ) -> clickhouse::error::Result<u64> {
        let tables = std::iter::once(("clicks", raw_days))
            .chain(schema::ROLLUPS.iter().map(|r| (r.table, rollup_days)));
        let mut dropped = 0;
        for (table, days) in tables {
            let old: Vec<String> = self
                .admin
                .query(&format!(
                    "SELECT DISTINCT partition FROM system.parts
                      WHERE database = ? AND table = ? AND active
                        AND toUInt32(partition) < toYYYYMM(now() - INTERVAL {days} DAY)"
                ))
                .bind(&self.database)
                .bind(table)
                .fetch_all()
                .await?;
            // Month numbers from the server; checked anyway before they
            // are written into a statement.
            for month in old.iter().filter(|p| p.bytes().all(|b| b.is_ascii_digit())) {
                let sql = format!(
                    "ALTER TABLE {}.{table} DROP PARTITION {month}",
                    self.database
                );
                self.admin.query(&sql).execute().await?;
                dropped += 1;
            }
        }
        Ok(dropped)
    }

    /// The underlying client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// Which id column a lookup asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Batch,
    Event,
}

/// `SELECT DISTINCT <id> AS id FROM clicks WHERE code IN (...) AND ts BETWEEN
/// ... AND <id> IN (...)`, or `None` for no rows. Values are escaped here
/// because ClickHouse 18.16 cannot take server-side parameters; ids are
/// `'\xHH...'` literals, which 18.16 parses ~2.5x faster than `unhex()` calls.
fn lookup_sql<'a>(
    database: &str,
    rows: impl IntoIterator<Item = RowRef<'a>>,
    key: Key,
) -> Option<String> {
    let mut min_ts = u32::MAX;
    let mut max_ts = 0;
    // Hashed while collecting (one insert per row), sorted once at the end.
    let mut codes = HashSet::with_hasher(SeededXxh3::default());
    let mut ids = HashSet::with_hasher(SeededXxh3::default());
    let mut last_id = None;
    for r in rows {
        let ts = r.ts();
        min_ts = min_ts.min(ts);
        max_ts = max_ts.max(ts);
        codes.insert(r.code());
        let id = match key {
            Key::Batch => r.batch_id(),
            Key::Event => r.event_id(),
        };
        // A batch's rows are consecutive: most batch ids repeat the last.
        if last_id != Some(id) {
            ids.insert(id);
            last_id = Some(id);
        }
    }
    let mut codes: Vec<&str> = codes.into_iter().collect();
    codes.sort_unstable();
    let mut ids: Vec<[u8; 16]> = ids.into_iter().collect();
    ids.sort_unstable();
    if ids.is_empty() {
        return None;
    }
    let column = match key {
        Key::Batch => "batch_id",
        Key::Event => "event_id",
    };
    let mut sql = format!("SELECT DISTINCT {column} AS id FROM {database}.clicks WHERE ");
    if codes.len() <= MAX_LOOKUP_CODES {
        sql.push_str("code IN (");
        for (i, code) in codes.iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            push_string_literal(&mut sql, code);
        }
        sql.push_str(") AND ");
    }
    let _ = write!(
        sql,
        "ts >= toDateTime({min_ts}) AND ts <= toDateTime({max_ts}) AND {column} IN ("
    );
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push('\'');
        for b in id {
            let _ = write!(sql, "\\x{b:02x}");
        }
        sql.push('\'');
    }
    sql.push(')');
    Some(sql)
}

/// A ClickHouse single-quoted literal: backslash and quote are the only
/// characters with a meaning inside one.
/// The `query_id` prefix of every insert into `database`'s `clicks`.
pub fn insert_id_prefix(database: &str) -> String {
    format!("clicks-insert:{database}:")
}

/// What tells this process's insert ids apart from other sidecars' on the
/// same database: its pid and start time.
fn insert_id_process() -> String {
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{}.{started}.", std::process::id())
}

/// `value` as a quoted SQL string literal.
fn sql_string(value: &str) -> String {
    let mut out = String::new();
    push_string_literal(&mut out, value);
    out
}

fn push_string_literal(out: &mut String, value: &str) {
    out.push('\'');
    for c in value.chars() {
        if matches!(c, '\\' | '\'') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('\'');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_are_escaped() {
        let mut s = String::new();
        push_string_literal(&mut s, r"a'b\c");
        assert_eq!(s, r"'a\'b\\c'");
    }

    #[test]
    fn replicated_tables_name_their_zookeeper_path_and_replica() {
        let single = schema::statements("db").join("\n");
        assert!(!single.contains("Replicated"), "{single}");
        assert!(single.contains("ENGINE = MergeTree"), "{single}");
        let replicated = schema::statements_with("db", schema::Replication::Replicated);
        let tables: Vec<&String> = replicated
            .iter()
            .filter(|s| s.contains("CREATE TABLE"))
            .collect();
        assert_eq!(tables.len(), 2 + schema::ROLLUPS.len());
        for sql in tables {
            assert!(sql.contains("ENGINE = Replicated"), "{sql}");
        }
        let all = replicated.join("\n");
        assert!(
            all.contains(
                "ENGINE = ReplicatedMergeTree('/clickhouse/tables/db/clicks', '{replica}')"
            ),
            "{all}"
        );
        assert!(all.contains(
            "ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/db/org_clicks_per_minute_hll', '{replica}')"
        ));
        assert!(
            all.contains(
                "ReplicatedMergeTree('/clickhouse/tables/db/parked_batches', '{replica}')"
            )
        );
    }

    #[test]
    fn lookup_sql_is_bounded_by_code_and_time() {
        let row = |id: u8, ts: u32, code: &str| ClickRow {
            event_id: [id; 16],
            ts,
            ts_ms: u64::from(ts) * 1000,
            batch_id: [0; 16],
            node: String::new(),
            code: code.into(),
            status: 301,
            host: String::new(),
            domain: String::new(),
            ip_prefix: String::new(),
            country: String::new(),
            city: String::new(),
            device: String::new(),
            browser: String::new(),
            os: String::new(),
            referrer_host: String::new(),
            accept_language: String::new(),
            language: String::new(),
            is_bot: 0,
            is_preview: 0,
            visitor_hash: 0,
            org_id: 0,
            rule: 0,
        };
        assert_eq!(
            lookup_sql("db", ClickRows::default().iter(), Key::Event),
            None
        );
        let mut rows = ClickRows::default();
        rows.push(&row(2, 10, "x"));
        rows.push(&row(1, 20, "x"));
        assert_eq!(
            lookup_sql("db", rows.iter(), Key::Event).unwrap(),
            format!(
                "SELECT DISTINCT event_id AS id FROM db.clicks WHERE code IN ('x') AND ts >= toDateTime(10) \
                 AND ts <= toDateTime(20) AND event_id IN ('{}', '{}')",
                r"\x01".repeat(16),
                r"\x02".repeat(16)
            )
        );
        let sql = lookup_sql("db", rows.iter(), Key::Batch).unwrap();
        assert!(
            sql.starts_with("SELECT DISTINCT batch_id AS id FROM db.clicks WHERE code IN ('x')")
        );
        assert!(
            sql.ends_with(&format!("batch_id IN ('{}')", r"\x00".repeat(16))),
            "{sql}"
        );
    }
}
