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

/// Rollups made before `is_preview`, `domain` and `city` (tables, sort keys
/// and views without them) and before the hourly rollup existed get the
/// columns in their tables and sort keys, views that fill them, and an
/// hourly rollup filled from the minute one: a click made before the upgrade
/// is in every rollup once, later clicks are split by the new dimensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn older_rollups_get_the_new_dimensions_and_an_hourly_rollup() {
    let env = Env::new().await;
    let db = env.ch.name().to_owned();
    let dims = "status, country, device, browser, os, referrer_host, is_bot";
    let mut setup = vec![format!(
        "CREATE TABLE {db}.clicks (
            event_id FixedString(16), ts DateTime, ts_ms UInt64, batch_id FixedString(16),
            node String, code String, status UInt16, host String, domain String, ip_prefix String,
            country String, city String, device String, browser String, os String,
            referrer_host String, accept_language String, is_bot UInt8, visitor_hash UInt64
        ) ENGINE = MergeTree PARTITION BY toYYYYMM(ts) ORDER BY (code, ts)"
    )];
    // The first rollups, as `schema.rs` made them.
    for (table, col, kind, expr) in [
        (
            "clicks_per_minute",
            "minute",
            "DateTime",
            "toStartOfMinute(ts)",
        ),
        ("clicks_per_day", "day", "Date", "toDate(ts)"),
    ] {
        setup.push(format!(
            "CREATE TABLE {db}.{table} (
                code String, {col} {kind}, status UInt16, country String, device String,
                browser String, os String, referrer_host String, is_bot UInt8,
                clicks AggregateFunction(count), visitors AggregateFunction(uniq, UInt64)
            ) ENGINE = AggregatingMergeTree PARTITION BY toYYYYMM({col})
            ORDER BY (code, {col}, {dims})"
        ));
        setup.push(format!(
            "CREATE MATERIALIZED VIEW {db}.{table}_mv TO {db}.{table} AS
             SELECT code, {expr} AS {col}, {dims},
                    countState() AS clicks, uniqState(visitor_hash) AS visitors
             FROM {db}.clicks GROUP BY code, {col}, {dims}"
        ));
    }
    setup.push(format!(
        "INSERT INTO {db}.clicks (event_id, ts, code, is_bot, visitor_hash) VALUES ('0123456789abcdef', now(), 'old', 0, 9)"
    ));
    for sql in setup {
        env.ch.query(&sql).await.unwrap();
    }
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();

    for table in ["clicks_per_minute", "clicks_per_hour", "clicks_per_day"] {
        let created = env
            .ch
            .query(&format!("SHOW CREATE TABLE {db}.{table}"))
            .await
            .unwrap();
        assert!(
            created.contains("referrer_host, is_bot, is_preview, domain, city, language)"),
            "the new dimensions in {table}'s sort key: {created}"
        );
    }
    env.ch
        .query(&format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, domain, city, is_bot, is_preview, visitor_hash) VALUES
             ('1123456789abcdef', now(), 'new', 'go.example', 'Paris', 1, 1, 1),
             ('2123456789abcdef', now(), 'new', '', 'Lyon', 0, 0, 2)"
        ))
        .await
        .unwrap();
    for table in ["clicks_per_minute", "clicks_per_hour", "clicks_per_day"] {
        assert_eq!(
            env.ch
                .query(&format!(
                    "SELECT code, domain, city, is_bot, is_preview, countMerge(clicks) FROM {db}.{table}
                     GROUP BY code, domain, city, is_bot, is_preview ORDER BY code, is_bot"
                ))
                .await
                .unwrap(),
            "new\t\tLyon\t0\t0\t1\nnew\tgo.example\tParis\t1\t1\t1\nold\t\t\t0\t0\t1\n",
            "{table}: the old click once (read with the new columns' defaults), the new ones apart"
        );
    }
}
