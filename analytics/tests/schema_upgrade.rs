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

/// Rollups keyed by code (made before the org, `is_preview`, `domain`,
/// `city` and the hourly rollup) are replaced by the org-keyed ones: their
/// views stop, and each new rollup is filled from the raw clicks when
/// made. A click stored before the upgrade is in every new rollup once,
/// with org 0; later clicks are split by org, rule and the new dimensions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_keyed_by_code_give_way_to_org_rollups_filled_from_clicks() {
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

    let tables = [
        "org_clicks_per_minute",
        "org_clicks_per_hour",
        "org_clicks_per_day",
    ];
    for table in tables {
        let created = env
            .ch
            .query(&format!("SHOW CREATE TABLE {db}.{table}"))
            .await
            .unwrap();
        assert!(
            created.contains("ORDER BY (org_id, code, ")
                && created.contains("referrer_host, is_bot, is_preview, domain, city, language)"),
            "{table}'s sort key starts with the org and has every dimension: {created}"
        );
    }
    let old_views = env
        .ch
        .query(&format!(
            "SELECT count() FROM system.tables WHERE database = '{db}' AND name IN ('clicks_per_minute_mv', 'clicks_per_day_mv')"
        ))
        .await
        .unwrap();
    assert_eq!(old_views, "0\n", "the old rollups are no longer fed");
    env.ch
        .query(&format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, domain, city, is_bot, is_preview, visitor_hash, org_id, rule) VALUES
             ('1123456789abcdef', now(), 'new', 'go.example', 'Paris', 1, 1, 1, 7, 2),
             ('2123456789abcdef', now(), 'new', '', 'Lyon', 0, 0, 2, 7, 0)"
        ))
        .await
        .unwrap();
    for table in tables {
        assert_eq!(
            env.ch
                .query(&format!(
                    "SELECT org_id, code, rule, domain, city, is_bot, is_preview, countMerge(clicks) FROM {db}.{table}
                     GROUP BY org_id, code, rule, domain, city, is_bot, is_preview ORDER BY org_id, code, is_bot"
                ))
                .await
                .unwrap(),
            "0\told\t0\t\t\t0\t0\t1\n7\tnew\t0\t\tLyon\t0\t0\t1\n7\tnew\t2\tgo.example\tParis\t1\t1\t1\n",
            "{table}: the old click once (org 0, the new columns' defaults), the new ones apart"
        );
    }
    // The narrow rollups came later still: filled from the raw clicks when
    // made (the old click with org 0), fed like the others after.
    for table in [
        "org_series_per_minute",
        "org_series_per_hour",
        "org_series_per_day",
    ] {
        assert_eq!(
            env.ch
                .query(&format!(
                    "SELECT org_id, code, rule, domain, is_bot, is_preview, countMerge(clicks), uniqMerge(visitors) FROM {db}.{table}
                     GROUP BY org_id, code, rule, domain, is_bot, is_preview ORDER BY org_id, code, is_bot"
                ))
                .await
                .unwrap(),
            "0\told\t0\t\t0\t0\t1\t1\n7\tnew\t0\t\t0\t0\t1\t1\n7\tnew\t2\tgo.example\t1\t1\t1\t1\n",
            "{table}"
        );
    }
    assert_eq!(
        env.ch
            .query(&format!(
                "SELECT countMerge(clicks) FROM {db}.clicks_per_minute"
            ))
            .await
            .unwrap(),
        "1\n",
        "the old minute rollup kept its rows and got no new ones"
    );
}
