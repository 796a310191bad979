//! Pruning: delivered deliveries, and the events no delivery needs any
//! more, leave PostgreSQL once older than `webhook_retention_secs` (7 days
//! by default). Each `link.clicked` event holds up to 100 clicks, so
//! without this the tables grow with the traffic.
//!
//! - A delivery goes when it was **delivered** more than the age ago
//!   (`finished_at`). Pending ones are the queue and dead letters are kept
//!   for the API until redelivered or their endpoint deleted: neither is
//!   pruned.
//! - An event goes when it is older than the age and has no delivery left
//!   (all pruned, or its endpoints deleted). Events are inserted with their
//!   deliveries in one statement, so an old event without any is done.
//!
//! Work goes in batches of `batch` rows, each one short statement taking its
//! rows with `FOR UPDATE SKIP LOCKED`: a prune never waits for (or blocks) a
//! sender claiming a delivery, and holds its locks for one batch only. The
//! leader runs it every `webhook_prune_interval_secs`.

use crate::metrics::Metrics;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// Rows per statement.
pub const BATCH: i64 = 1000;

/// What one [`prune`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub deliveries: u64,
    pub events: u64,
}

/// Removes the delivered deliveries and finished events older than `age`,
/// `batch` rows per statement.
pub async fn prune(db: &PgPool, age: Duration, batch: i64) -> sqlx::Result<Pruned> {
    let age = age.as_secs_f64();
    let mut pruned = Pruned::default();
    loop {
        let n = sqlx::query(
            "DELETE FROM webhook_deliveries WHERE id IN (
                SELECT id FROM webhook_deliveries
                 WHERE state = 'delivered'
                   AND finished_at < now() - make_interval(secs => $1)
                 ORDER BY finished_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(age)
        .bind(batch)
        .execute(db)
        .await?
        .rows_affected();
        pruned.deliveries += n;
        if n < batch as u64 {
            break;
        }
    }
    loop {
        let n = sqlx::query(
            "DELETE FROM webhook_events WHERE id IN (
                SELECT e.id FROM webhook_events e
                 WHERE e.created_at < now() - make_interval(secs => $1)
                   AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_id = e.id)
                 ORDER BY e.created_at LIMIT $2
                 FOR UPDATE SKIP LOCKED)",
        )
        .bind(age)
        .bind(batch)
        .execute(db)
        .await?
        .rows_affected();
        pruned.events += n;
        if n < batch as u64 {
            break;
        }
    }
    Ok(pruned)
}

/// Prunes every `interval` for ever (the leader's task), the first time
/// one interval after it starts (a leader that changes hands often does not
/// prune at every handover).
pub async fn run(db: PgPool, age: Duration, interval: Duration, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match prune(&db, age, BATCH).await {
            Ok(p) if p == Pruned::default() => {}
            Ok(p) => {
                metrics.webhook_pruned.add(p.deliveries + p.events);
                tracing::info!(
                    deliveries = p.deliveries,
                    events = p.events,
                    "pruned webhook rows"
                );
            }
            Err(e) => tracing::warn!(error = %e, "pruning webhook rows failed; trying again later"),
        }
    }
}
