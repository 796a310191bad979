//! Upgrades of a database an older sidecar made, when a newer one starts:
//! a `clicks` table from before click batch version 2 (no `domain` column)
//! gets the column, keeping its rows; rollups keyed by code give way to
//! org-keyed ones; rollups with exact `uniq` visitor states give way to
//! fixed-size ones, keeping every count. Starting again changes nothing.

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
        "org_clicks_per_minute_hll",
        "org_clicks_per_hour_hll",
        "org_clicks_per_day_hll",
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
        "org_series_per_minute_hll",
        "org_series_per_hour_hll",
        "org_series_per_day_hll",
    ] {
        assert_eq!(
            env.ch
                .query(&format!(
                    "SELECT org_id, code, rule, domain, is_bot, is_preview, countMerge(clicks), uniqHLL12Merge(visitors) FROM {db}.{table}
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

/// 2025-11-10T00:00:00Z: a month the raw clicks no longer hold.
const NOV: u64 = 1_762_732_800;
/// 2026-01-10T10:00:00Z.
const JAN: u64 = 1_768_039_200;

/// The schema as it was with exact `uniq` visitor states, its views
/// filling its rollups from 100 clicks: 40 in November 2025 (25 visitors,
/// one link), 60 in January 2026 (30 visitors, two links, two orgs); then
/// November's raw clicks dropped, as `raw_retention_days` drops them, so
/// only the rollups still count them.
async fn database_with_uniq_states(env: &Env) {
    let db = env.ch.name();
    for sql in testkit::fixtures::clickhouse_statements("schema-uniq-states.sql", db) {
        env.ch.query(&sql).await.unwrap();
    }
    for (from, n, ts, visitors) in [(0, 40, NOV, 25), (40, 60, JAN, 30)] {
        env.ch
            .query(&format!(
                "INSERT INTO {db}.clicks (event_id, ts, code, domain, status, country, city, device, is_bot, visitor_hash, org_id, rule)
                 SELECT toFixedString(toString(number), 16), toDateTime({ts} + (number - {from}) * 700),
                        if(number % 4 = 0, 'xyz', 'abc'), if(number % 3 = 0, 'go.example', ''), if(number % 10 = 0, 404, 301),
                        ['GB', 'US', 'FR'][number % 3 + 1], 'Paris', 'mobile', toUInt8(number % 7 = 0),
                        number % {visitors}, if(number % 4 = 0 AND number >= 40, 8, 7), toUInt16(number % 5 = 0)
                   FROM numbers({from}, {n})"
            ))
            .await
            .unwrap();
    }
    assert_eq!(
        env.ch
            .query(&format!("SELECT uniqExact(event_id) FROM {db}.clicks"))
            .await
            .unwrap(),
        "100\n"
    );
    env.ch
        .query(&format!("ALTER TABLE {db}.clicks DROP PARTITION 202511"))
        .await
        .unwrap();
    assert_eq!(
        env.ch
            .query(&format!("SELECT count() FROM {db}.clicks"))
            .await
            .unwrap(),
        "60\n"
    );
}

/// For each rollup: the new table, the one it replaced, its key columns
/// and the raw rows' bucket expression.
fn upgraded_rollups() -> Vec<(
    &'static str,
    &'static str,
    String,
    &'static str,
    &'static str,
)> {
    analytics::schema::ROLLUPS
        .iter()
        .map(|r| {
            let keys: Vec<&str> = match r.shape {
                analytics::schema::Shape::Wide => std::iter::once("rule")
                    .chain(analytics::schema::ROLLUP_DIMENSIONS.iter().map(|(n, _)| *n))
                    .collect(),
                analytics::schema::Shape::Series => analytics::schema::SERIES_COLUMNS
                    .iter()
                    .map(|(n, _)| *n)
                    .collect(),
            };
            let expr = match r.bucket_col {
                "minute" => "toStartOfMinute(ts, 'UTC')",
                "hour" => "toStartOfHour(ts, 'UTC')",
                _ => "toDate(ts, 'UTC')",
            };
            (
                r.table,
                *r.replaces.last().unwrap(),
                keys.join(", "),
                r.bucket_col,
                expr,
            )
        })
        .collect()
}

/// Every key's clicks in `table` (bucket `col`), one line each.
async fn counts(env: &Env, table: &str, keys: &str, col: &str) -> String {
    let db = env.ch.name();
    env.ch
        .query(&format!(
            "SELECT org_id, code, toUInt32({col}) AS b, {keys}, countMerge(clicks) FROM {db}.{table}
             GROUP BY org_id, code, b, {keys} ORDER BY org_id, code, b, {keys}"
        ))
        .await
        .unwrap()
}

/// The new rollups hold every count of the old ones, the months the raw
/// clicks no longer hold included; their visitors are the raw clicks'
/// (the same sketch over the raw rows) where those are kept, and none
/// before; the old views are gone, the old tables kept, the new views fed.
async fn assert_upgraded(env: &Env, before: &[String]) {
    let db = env.ch.name();
    for ((table, old, keys, col, expr), old_counts) in upgraded_rollups().into_iter().zip(before) {
        assert!(old_counts.lines().count() > 10, "{old}: {old_counts}");
        assert_eq!(
            &counts(env, table, &keys, col).await,
            old_counts,
            "{table} has every count {old} had"
        );
        assert_eq!(
            &counts(env, old, &keys, col).await,
            old_counts,
            "{old} keeps its rows"
        );
        let kept = env
            .ch
            .query(&format!(
                "SELECT org_id, code, toUInt32({expr}) AS b, {keys}, count(), uniqHLL12(visitor_hash) FROM {db}.clicks
                 GROUP BY org_id, code, b, {keys} ORDER BY org_id, code, b, {keys}"
            ))
            .await
            .unwrap();
        let rolled = env
            .ch
            .query(&format!(
                "SELECT org_id, code, toUInt32({col}) AS b, {keys}, countMerge(clicks), uniqHLL12Merge(visitors) FROM {db}.{table}
                 WHERE toYYYYMM({col}) >= 202512
                 GROUP BY org_id, code, b, {keys} ORDER BY org_id, code, b, {keys}"
            ))
            .await
            .unwrap();
        assert_eq!(
            rolled, kept,
            "{table}: the kept months, from the raw clicks"
        );
        assert_eq!(
            env.ch
                .query(&format!(
                    "SELECT countMerge(clicks), uniqHLL12Merge(visitors) FROM {db}.{table}
                     WHERE toYYYYMM({col}) < 202512"
                ))
                .await
                .unwrap(),
            "40\t0\n",
            "{table}: November's counts carried over, no visitors"
        );
    }
    let views = env
        .ch
        .query(&format!(
            "SELECT name FROM system.tables WHERE database = '{db}' AND endsWith(name, '_mv') ORDER BY name"
        ))
        .await
        .unwrap();
    let mut want: Vec<String> = upgraded_rollups()
        .iter()
        .map(|r| format!("{}_mv\n", r.0))
        .collect();
    want.sort();
    assert_eq!(views, want.concat(), "the new rollups' views only");
    // A click stored now reaches the new rollups only.
    env.ch
        .query(&format!(
            "INSERT INTO {db}.clicks (event_id, ts, code, status, visitor_hash, org_id) VALUES ('zzzzzzzzzzzzzzzz', toDateTime({JAN}), 'abc', 301, 999, 7)"
        ))
        .await
        .unwrap();
    for (table, old, ..) in upgraded_rollups() {
        for (t, want) in [(table, "101\n"), (old, "100\n")] {
            assert_eq!(
                env.ch
                    .query(&format!("SELECT countMerge(clicks) FROM {db}.{t}"))
                    .await
                    .unwrap(),
                want,
                "{t}"
            );
        }
    }
}

/// The old rollups' counts, each key's.
async fn old_counts(env: &Env) -> Vec<String> {
    let mut out = Vec::new();
    for (_, old, keys, col, _) in upgraded_rollups() {
        out.push(counts(env, old, &keys, col).await);
    }
    out
}

/// Rollups with exact `uniq` visitor states (the schema until 2026-12-01)
/// are replaced by ones with fixed-size states when a newer sidecar
/// starts: counts carried over for the months the raw clicks no longer
/// hold, everything rebuilt from the raw clicks after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_with_exact_visitor_states_give_way_to_fixed_size_ones_keeping_every_count() {
    let env = Env::new().await;
    database_with_uniq_states(&env).await;
    let before = old_counts(&env).await;
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    store.create_schema().await.unwrap();
    assert_upgraded(&env, &before).await;
}

/// A start stopped while filling the new rollups (one holds part of its
/// rows, none has its view, the old views are still there) is finished by
/// the next: the partial rollup is filled again from scratch, not topped
/// up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upgrade_stopped_while_filling_is_done_again_from_scratch() {
    let env = Env::new().await;
    database_with_uniq_states(&env).await;
    let before = old_counts(&env).await;
    let db = env.ch.name().to_owned();
    for sql in analytics::schema::statements(&db) {
        env.ch.query(&sql).await.unwrap();
    }
    env.ch
        .query(&format!(
            "INSERT INTO {db}.org_series_per_day_hll (org_id, code, day, clicks, visitors)
             SELECT 7, 'abc', toDate('2026-01-10'), countState(), uniqHLL12State(toUInt64(1)) FROM numbers(5)"
        ))
        .await
        .unwrap();
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    assert_upgraded(&env, &before).await;
}
