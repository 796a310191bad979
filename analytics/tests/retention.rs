//! Retention without TTL (ClickHouse 18.16): whole months of clicks and of
//! rollups past their retention are dropped, younger months kept.

mod common;

use common::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn months_past_their_retention_are_dropped() {
    let env = Env::new().await;
    let store = analytics::store::Store::new(&env.config());
    store.create_schema().await.unwrap();
    // Clicks of about 400 and 100 days ago, and of now (the views roll
    // them up as they are inserted).
    env.ch
        .query(
            "INSERT INTO clicks (event_id, ts, code, visitor_hash, org_id) VALUES
             ('0000000000000001', now() - 400 * 86400, 'a', 1, 7),
             ('0000000000000002', now() - 100 * 86400, 'a', 2, 7),
             ('0000000000000003', now(), 'a', 3, 7)",
        )
        .await
        .unwrap();
    // Raw rows kept one day, rollups 200: the two old months of raw rows
    // go, only the 400-day-old month of the rollups.
    let dropped = store.drop_old_partitions(1, 200).await.unwrap();
    let rollups = analytics::schema::ROLLUPS;
    assert_eq!(
        dropped,
        2 + rollups.len() as u64,
        "two months of clicks, one of each rollup"
    );
    assert_eq!(env.number("SELECT count() FROM clicks").await, 1);
    for rollup in rollups {
        let table = rollup.table;
        assert_eq!(
            env.number(&format!("SELECT countMerge(clicks) FROM {table}"))
                .await,
            2,
            "{table} keeps the clicks of 100 days ago and of now"
        );
    }
    // Nothing more to drop.
    assert_eq!(store.drop_old_partitions(1, 200).await.unwrap(), 0);
}
