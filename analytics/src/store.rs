//! The ClickHouse side: schema creation, the deduplication lookup and inserts.

use std::collections::HashSet;
use std::fmt::Write as _;

use clickhouse::Client;

use crate::config::Config;
use crate::rows::{ClickRow, EventIdRow, ParkedRow};
use crate::schema;

/// Ids per deduplication lookup. Each id is a few AST nodes and ~45 bytes of
/// SQL; ClickHouse refuses queries over 50,000 AST elements by default.
const LOOKUP_CHUNK: usize = 5_000;
/// A lookup's text is up to ~250 KB, about the server's 256 KiB default.
const MAX_QUERY_SIZE: &str = "4194304";

/// A ClickHouse client bound to the sidecar's database.
#[derive(Clone)]
pub struct Store {
    /// No default database: it may not exist yet when the schema is created.
    admin: Client,
    /// Default database set: inserts name the bare table (the crate quotes
    /// a table name as one identifier, so `db.table` would not work).
    client: Client,
    database: String,
}

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
        }
    }

    /// Creates the database, tables and views if missing.
    pub async fn create_schema(&self) -> clickhouse::error::Result<()> {
        for sql in schema::statements(&self.database) {
            self.admin.query(&sql).execute().await?;
        }
        Ok(())
    }

    /// The ids among `rows` that `clicks` already holds.
    ///
    /// The lookup is bounded by the rows' own codes and time range, which is
    /// the table's sort key, so it reads only the granules those events could
    /// be in, however large the table grows.
    pub async fn existing_ids(
        &self,
        rows: &[ClickRow],
    ) -> clickhouse::error::Result<HashSet<[u8; 16]>> {
        let mut existing = HashSet::new();
        for chunk in rows.chunks(LOOKUP_CHUNK) {
            let Some(sql) = existing_ids_sql(&self.database, chunk) else {
                continue;
            };
            // Raw: codes may contain `?`, which `query()` would take for a placeholder.
            let found: Vec<EventIdRow> = self
                .admin
                .query_raw(&sql)
                .with_setting("max_query_size", MAX_QUERY_SIZE)
                .fetch_all()
                .await?;
            existing.extend(found.into_iter().map(|r| r.event_id));
        }
        Ok(existing)
    }

    /// Inserts rows into `clicks` in one statement (the rollup views see the
    /// same block). Returns when the server has written them.
    pub async fn insert_clicks(&self, rows: &[ClickRow]) -> clickhouse::error::Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut insert = self.client.insert::<ClickRow>("clicks").await?;
        for row in rows {
            insert.write(row).await?;
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

    /// The underlying client (for tests and tools).
    pub fn client(&self) -> &Client {
        &self.client
    }
}

/// `SELECT event_id FROM clicks WHERE code IN (...) AND ts BETWEEN ... AND
/// event_id IN (...)`, or `None` for no rows. Values are escaped here
/// because ClickHouse 18.16 cannot take server-side parameters.
fn existing_ids_sql(database: &str, rows: &[ClickRow]) -> Option<String> {
    let min_ts = rows.iter().map(|r| r.ts).min()?;
    let max_ts = rows.iter().map(|r| r.ts).max()?;
    let codes: HashSet<&str> = rows.iter().map(|r| r.code.as_str()).collect();
    let mut sql = format!("SELECT event_id FROM {database}.clicks WHERE code IN (");
    for (i, code) in codes.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        push_string_literal(&mut sql, code);
    }
    let _ = write!(
        sql,
        ") AND ts >= toDateTime({min_ts}) AND ts <= toDateTime({max_ts}) AND event_id IN ("
    );
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            sql.push_str(", ");
        }
        sql.push_str("unhex('");
        for b in row.event_id {
            let _ = write!(sql, "{b:02x}");
        }
        sql.push_str("')");
    }
    sql.push(')');
    Some(sql)
}

/// A ClickHouse single-quoted literal: backslash and quote are the only
/// characters with a meaning inside one.
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
            ip_prefix: String::new(),
            country: String::new(),
            city: String::new(),
            device: String::new(),
            browser: String::new(),
            os: String::new(),
            referrer_host: String::new(),
            accept_language: String::new(),
            is_bot: 0,
            visitor_hash: 0,
        };
        assert_eq!(existing_ids_sql("db", &[]), None);
        let sql = existing_ids_sql("db", &[row(1, 20, "x"), row(2, 10, "x")]).unwrap();
        assert_eq!(
            sql,
            "SELECT event_id FROM db.clicks WHERE code IN ('x') AND ts >= toDateTime(10) \
             AND ts <= toDateTime(20) AND event_id IN (unhex('01010101010101010101010101010101'), \
             unhex('02020202020202020202020202020202'))"
        );
    }
}
