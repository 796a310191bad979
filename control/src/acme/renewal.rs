//! The renewal task: orders for due rows one at a time, records the outcome,
//! ships new certificates, and reconciles engines in between.
//!
//! Run by the leader only (`crate::leader`; `server::spawn_leader_tasks`).

use super::Acme;
use super::push::Reconciler;
use super::store;
use std::sync::Arc;
use std::time::Duration;

/// Rows taken per look; the rest wait for the next.
const BATCH: i64 = 16;

/// Runs until aborted: a look for due rows every `check_interval` or when
/// woken, an engine reconcile round every `reconcile_every`.
pub async fn run(acme: Arc<Acme>, reconcile_every: Duration) {
    let mut reconciler = Reconciler::default();
    let mut check = tokio::time::interval(acme.check_interval);
    let mut reconcile = tokio::time::interval(reconcile_every);
    check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    reconcile.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = check.tick() => run_due(&acme).await,
            _ = acme.wake.notified() => run_due(&acme).await,
            _ = reconcile.tick() => {}
        }
        // Every wake-up ends with a round, so a new certificate ships at once
        // (the round finds every engine lacking it).
        if let Err(e) = reconciler
            .round(&acme.db, &acme.engines, &acme.sealer)
            .await
        {
            tracing::warn!(
                error = format!("{e:#}"),
                "certificate reconcile round failed"
            );
        }
    }
}

/// Orders for every due row (as of now), one at a time.
pub async fn run_due(acme: &Acme) {
    let due = match store::due(&acme.db, BATCH).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!(error = %e, "reading due certificates");
            return;
        }
    };
    for row in due {
        attempt(acme, &row).await;
    }
}

/// One order for `row`, its outcome stored.
async fn attempt(acme: &Acme, row: &store::Due) {
    tracing::info!(domain = row.domain, "ordering a certificate");
    let outcome = super::issue::issue(acme, &row.domain, row.domain_id).await;
    let stored = match outcome {
        Ok(issued) => {
            let stored = store::store_issued(&acme.db, &row.domain, &issued).await;
            if stored.is_ok() {
                tracing::info!(
                    domain = row.domain,
                    not_after = %issued.not_after,
                    "certificate issued"
                );
            }
            stored
        }
        Err(e) => {
            let error = format!("{e:#}");
            match store::store_failure(&acme.db, &row.domain, row.failures, &error, acme.retry_base)
                .await
            {
                Ok(wait) => {
                    tracing::warn!(domain = row.domain, error, retry_in = ?wait, "certificate order failed");
                    Ok(())
                }
                Err(db) => Err(db),
            }
        }
    };
    if let Err(e) = stored {
        tracing::error!(domain = row.domain, error = %e, "recording a certificate outcome");
    }
}
