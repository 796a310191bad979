//! A `clicks` table made by a sidecar from before click batch version 2 (no
//! `domain` column) gets the column when a newer sidecar starts, keeping its
//! rows; starting again changes nothing.

mod common;

use common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_clicks_table_gets_the_domain_column() {
    let env = Env::new().await;
    let db = env.ch.name().to_owned();
    // The version-1 table, as `schema.rs` created it before domains.
    env.ch
        .query(&format!(
            "CREATE TABLE {db}.clicks (
                event_id FixedString(16), ts DateTime, ts_ms UInt64, batch_id FixedString(16),
                node String, code String, status UInt16, host String, ip_prefix String,
                country String, city String, device String, browser String, os String,
                referrer_host String, accept_language String, is_bot UInt8, visitor_hash UInt64
            ) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (code, ts)"
        ))
        .await
        .unwrap();
    env.ch
        .query(&format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, host) VALUES ('0123456789abcdef', now(), 'abc', 'sho.rt')"
        ))
        .await
        .unwrap();
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();
    // 18.16's system.columns has no position: DESCRIBE lists them in order.
    let described = env
        .ch
        .query(&format!("DESCRIBE TABLE {db}.clicks"))
        .await
        .unwrap();
    let names: Vec<&str> = described
        .lines()
        .filter_map(|line| line.split('\t').next())
        .filter(|name| matches!(*name, "host" | "domain" | "ip_prefix"))
        .collect();
    assert_eq!(
        names,
        ["host", "domain", "ip_prefix"],
        "domain follows host"
    );
    assert_eq!(
        env.ch
            .query(&format!("SELECT code, domain FROM {db}.clicks"))
            .await
            .unwrap(),
        "abc\t\n",
        "old rows read an empty domain"
    );
}

/// Rollups made before `is_preview` (table, sort key and view without it) get
/// the column in the table and its sort key, and a view that fills it: a
/// preview click written after the upgrade is rolled up apart from people's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_rollups_get_the_preview_dimension() {
    let env = Env::new().await;
    let db = env.ch.name().to_owned();
    let dims = "status, country, device, browser, os, referrer_host, is_bot";
    for sql in [
        format!(
            "CREATE TABLE {db}.clicks (
                event_id FixedString(16), ts DateTime, ts_ms UInt64, batch_id FixedString(16),
                node String, code String, status UInt16, host String, domain String, ip_prefix String,
                country String, city String, device String, browser String, os String,
                referrer_host String, accept_language String, is_bot UInt8, visitor_hash UInt64
            ) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (code, ts)"
        ),
        format!(
            "CREATE TABLE {db}.clicks_per_day (
                code String, day Date, status UInt16, country String, device String,
                browser String, os String, referrer_host String, is_bot UInt8,
                clicks AggregateFunction(count), visitors AggregateFunction(uniq, UInt64)
            ) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM(day)
            ORDER BY (code, day, {dims})"
        ),
        format!(
            "CREATE MATERIALIZED VIEW {db}.clicks_per_day_mv TO {db}.clicks_per_day AS
             SELECT code, toDate(ts) AS day, {dims},
                    countState() AS clicks, uniqState(visitor_hash) AS visitors
             FROM {db}.clicks GROUP BY code, day, {dims}"
        ),
        format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, is_bot) VALUES ('0123456789abcdef', now(), 'old', 0)"
        ),
    ] {
        env.ch.query(&sql).await.unwrap();
    }
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();

    let created = env
        .ch
        .query(&format!("SHOW CREATE TABLE {db}.clicks_per_day"))
        .await
        .unwrap();
    assert!(
        created.contains("referrer_host, is_bot, is_preview, domain)"),
        "is_preview and domain in the sort key: {created}"
    );
    env.ch
        .query(&format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, is_bot, is_preview, visitor_hash) VALUES
             ('1123456789abcdef', now(), 'new', 1, 1, 1), ('2123456789abcdef', now(), 'new', 0, 0, 2)"
        ))
        .await
        .unwrap();
    assert_eq!(
        env.ch
            .query(&format!(
                "SELECT code, is_bot, is_preview, countMerge(clicks) FROM {db}.clicks_per_day
                 GROUP BY code, is_bot, is_preview ORDER BY code, is_bot, is_preview"
            ))
            .await
            .unwrap(),
        "new\t0\t0\t1\nnew\t1\t1\t1\nold\t0\t0\t1\n",
        "old rows read is_preview 0; new ones are split by it"
    );
}
