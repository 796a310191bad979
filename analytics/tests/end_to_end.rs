//! Batches in, exactly as many enriched rows out, and rollups that agree.

mod common;

use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_becomes_one_enriched_row_and_rollups_agree() {
    let env = Env::new().await;
    let sidecar = env.start_sidecar();
    let (batches, per_batch) = (20u32, 150u32);
    for seed in 0..batches {
        let node = if seed % 2 == 0 { "node-a" } else { "node-b" };
        env.publish(
            node,
            &hex(&id(seed, u32::MAX)),
            batch(node, seed, per_batch),
        )
        .await;
    }
    let n = u64::from(batches * per_batch);
    env.settle_exactly(&sidecar, n).await;

    // Enrichment of one known event: index 0 is London, Chrome on Windows,
    // with a referrer.
    let row = env
        .ch
        .query(&format!(
            "SELECT code, status, country, city, browser, os, device, referrer_host, is_bot, \
             ip_prefix, node, host, accept_language, language, hex(batch_id), ts_ms \
             FROM clicks WHERE event_id = unhex('{}')",
            hex(&id(3, 0))
        ))
        .await
        .unwrap();
    let fields: Vec<&str> = row.trim_end_matches('\n').split('\t').collect();
    assert_eq!(
        fields,
        [
            "abc",
            "301",
            "GB",
            "London",
            "Chrome",
            "Windows",
            "desktop",
            "news.example.com",
            "0",
            "81.2.69.0/24",
            "node-b",
            "sho.rt",
            "en-GB",
            "en",
            &hex(&id(3, u32::MAX)).to_uppercase(),
            "1763700003000",
        ]
    );
    // Index 1: IPv6 /48, iPhone Safari, no referrer.
    let row = env
        .ch
        .query(&format!(
            "SELECT browser, os, device, referrer_host, is_bot, ip_prefix, country \
             FROM clicks WHERE event_id = unhex('{}')",
            hex(&id(3, 1))
        ))
        .await
        .unwrap();
    assert_eq!(
        row.trim_end_matches('\n'),
        "Mobile Safari\tiOS\tmobile\t\t0\t2001:db8:1234::/48\t"
    );
    // Index 2: Slackbot is a link preview (and so not a person); an invalid
    // referrer gives an empty host.
    let row = env
        .ch
        .query(&format!(
            "SELECT device, is_bot, is_preview, referrer_host FROM clicks WHERE event_id = unhex('{}')",
            hex(&id(3, 2))
        ))
        .await
        .unwrap();
    assert_eq!(row.trim_end_matches('\n'), "bot\t1\t1\t");
    // The full address is stored nowhere.
    assert_eq!(
        env.number("SELECT count() FROM clicks WHERE ip_prefix LIKE '%142%'")
            .await,
        0
    );
    assert_eq!(env.number("SELECT sum(is_bot) FROM clicks").await, n / 3);
    assert_eq!(
        env.number("SELECT sum(is_preview) FROM clicks").await,
        n / 3
    );

    // Every rollup agrees with the raw table, per key (every dimension).
    let dims: Vec<&str> = analytics::schema::ROLLUP_DIMENSIONS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let dims = dims.join(", ");
    for (table, col, bucket) in [
        (
            "org_clicks_per_minute_hll",
            "minute",
            "toStartOfMinute(ts, 'UTC')",
        ),
        (
            "org_clicks_per_hour_hll",
            "hour",
            "toStartOfHour(ts, 'UTC')",
        ),
        ("org_clicks_per_day_hll", "day", "toDate(ts, 'UTC')"),
    ] {
        let raw = env
            .ch
            .query(&format!(
                "SELECT code, {bucket} AS b, {dims}, count(), uniqHLL12(visitor_hash) FROM clicks \
                 GROUP BY code, b, {dims} ORDER BY code, b, {dims}"
            ))
            .await
            .unwrap();
        let rolled = env
            .ch
            .query(&format!(
                "SELECT code, {col}, {dims}, countMerge(clicks), uniqHLL12Merge(visitors) FROM {table} \
                 GROUP BY code, {col}, {dims} ORDER BY code, {col}, {dims}"
            ))
            .await
            .unwrap();
        assert!(!raw.is_empty());
        assert_eq!(raw, rolled, "{table} disagrees with clicks");
    }
    assert_eq!(
        env.number("SELECT countMerge(clicks) FROM org_clicks_per_day_hll")
            .await,
        n
    );
    // Each event's org and rule reach its row and its rollups.
    assert_eq!(
        env.number("SELECT count() FROM clicks WHERE org_id < 100 OR rule > 1")
            .await,
        0
    );
    assert_eq!(
        env.number(
            "SELECT countMerge(clicks) FROM org_clicks_per_day_hll WHERE org_id >= 100 AND rule IN (0, 1)"
        )
        .await,
        n
    );
    assert_eq!(
        env.number("SELECT countMerge(clicks) FROM org_clicks_per_minute_hll WHERE rule = 1")
            .await,
        env.number("SELECT count() FROM clicks WHERE rule = 1")
            .await
    );

    // Acks are counted last, so once they are all counted the rest is final.
    sidecar
        .expect_metric("analytics_batches_acked_total", f64::from(batches))
        .await;
    let m = sidecar.metrics().await;
    assert_eq!(m["analytics_rows_inserted_total"], n as f64);
    assert_eq!(m["analytics_batches_parked_total"], 0.0);
    assert!(m["analytics_enrich_cache_hit_ratio"] > 0.9, "{m:?}");
    assert!(m["analytics_insert_seconds_count"] >= 1.0);
}
