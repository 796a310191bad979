//! Pruning finished webhook rows: delivered deliveries and the events no
//! delivery needs leave once older than `webhook_retention_secs`; the queue,
//! the dead letters and recent rows stay. Old rows are inserted directly.

mod common;

use common::TestApp;
use common::webhooks::{POLL, WAIT, endpoint, key_file};
use control::webhooks::prune::{Pruned, prune};
use std::time::Duration;

/// Inserts an event of `age_days` with one delivery to `endpoint` in
/// `state`, finished `age_days` ago unless pending; returns the event id.
async fn old(app: &TestApp, endpoint: i64, state: &str, age_days: i32) -> i64 {
    let org = app.org_id("acme").await;
    sqlx::query_scalar(
        "WITH ev AS (INSERT INTO webhook_events (org_id, type, data, created_at)
                     VALUES ($1, 'link.clicked', '{\"clicks\":[]}',
                             now() - make_interval(days => $4))
                     RETURNING id)
         INSERT INTO webhook_deliveries (event_id, endpoint_id, state, attempts, created_at,
                                         finished_at)
         SELECT ev.id, $2, $3, 1, now() - make_interval(days => $4),
                CASE WHEN $3 = 'pending' THEN NULL ELSE now() - make_interval(days => $4) END
           FROM ev RETURNING event_id",
    )
    .bind(org)
    .bind(endpoint)
    .bind(state)
    .bind(age_days)
    .fetch_one(&app.running.state.db)
    .await
    .unwrap()
}

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
        .fetch_one(&app.running.state.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn delivered_rows_older_than_the_age_go_in_batches_and_the_rest_stay() {
    let (_dir, key) = key_file();
    // The periodic task's first round is an hour off: this test calls the
    // pruning itself.
    let app = TestApp::start_with(|c| {
        c.webhook_key_file = Some(key.clone());
        c.webhook_prune_interval_secs = 3600;
        c.allow_private_webhooks = true;
        // Nothing is sent: the pending rows stay pending.
        c.webhook_concurrency = 0;
    })
    .await;
    let (hook, _) = endpoint(&app, "http://127.0.0.1:9/hook", &["link.clicked"]).await;
    let id = hook["id"].as_i64().unwrap();
    let mut gone = Vec::new();
    for _ in 0..5 {
        gone.push(old(&app, id, "delivered", 8).await);
    }
    let recent = old(&app, id, "delivered", 6).await;
    let dead = old(&app, id, "dead", 30).await;
    let queued = old(&app, id, "pending", 30).await;
    // An old event whose endpoint was deleted: no delivery left.
    let orphan: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_events (org_id, type, data, created_at)
         VALUES ($1, 'link.created', '{}', now() - interval '8 days') RETURNING id",
    )
    .bind(app.org_id("acme").await)
    .fetch_one(&app.running.state.db)
    .await
    .unwrap();

    // Batches of two: the five old deliveries take three statements.
    let pruned = prune(&app.running.state.db, Duration::from_secs(7 * 86_400), 2)
        .await
        .unwrap();
    assert_eq!(
        pruned,
        Pruned {
            deliveries: 5,
            events: 6
        }
    );
    let left: Vec<i64> = sqlx::query_scalar("SELECT id FROM webhook_events ORDER BY id")
        .fetch_all(&app.running.state.db)
        .await
        .unwrap();
    assert_eq!(left, vec![recent, dead, queued]);
    assert!(gone.iter().chain([&orphan]).all(|id| !left.contains(id)));
    let states: Vec<String> =
        sqlx::query_scalar("SELECT state FROM webhook_deliveries ORDER BY event_id")
            .fetch_all(&app.running.state.db)
            .await
            .unwrap();
    assert_eq!(states, ["delivered", "dead", "pending"]);
    // Again: nothing more to do.
    let again = prune(&app.running.state.db, Duration::from_secs(7 * 86_400), 2)
        .await
        .unwrap();
    assert_eq!(again, Pruned::default());
}

#[tokio::test]
async fn the_leader_prunes_on_its_interval() {
    let (_dir, key) = key_file();
    let app = TestApp::start_with(|c| {
        c.webhook_key_file = Some(key.clone());
        c.allow_private_webhooks = true;
        c.webhook_concurrency = 0;
        c.webhook_retention_secs = 86_400;
        c.webhook_prune_interval_secs = 1;
    })
    .await;
    let (hook, _) = endpoint(&app, "http://127.0.0.1:9/hook", &["link.clicked"]).await;
    let id = hook["id"].as_i64().unwrap();
    old(&app, id, "delivered", 2).await;
    testkit::wait_for(WAIT, POLL, || async {
        count(&app, "webhook_events").await == 0 && count(&app, "webhook_deliveries").await == 0
    })
    .await
    .expect("the periodic task prunes the old rows");
    let metrics = reqwest::get(format!("{}/metrics", app.base))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("control_webhook_pruned_total 2"),
        "{metrics}"
    );
}
