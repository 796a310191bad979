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
