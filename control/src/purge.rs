//! Purging: links soft-deleted, or expired without an `expired_url`, more
//! than `purge_after_secs` ago (30 days by default) leave PostgreSQL, the
//! snapshots and the engines.
//!
//! - An expired link is still in the snapshot and on every engine (it
//!   answers 410 there). Its purge is a delete change like an API delete: a
//!   `delete` delta through the outbox removes it from every engine, and the
//!   next snapshot (built because the sequence moved) no longer has it.
//! - A soft-deleted link left the engines when it was deleted (its delete
//!   delta) and is in no snapshot built since; its row goes.
//! - An expired link with an `expired_url` still answers (a redirect there),
//!   so it is kept until someone deletes it.
//!
//! Codes are never reused (an old short link must not start pointing
//! somewhere new): a purged link's `(domain, code)` stays in
//! `retired_codes`, which inserts check. Each purge is in the audit log
//! (`link.purge`, the operator acting).
//!
//! Work goes in batches of [`BATCH`] links, each one transaction taking its
//! rows with `FOR UPDATE SKIP LOCKED`, so a purge never waits for (or
//! blocks) an API write, and two controls purging at once share the work.

use crate::links::store;
use sqlx::PgPool;
use std::time::Duration;

/// Links per transaction.
pub const BATCH: i64 = 1000;

/// What one [`purge`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Purged {
    /// Expired links (each with a delete delta for the engines).
    pub expired: u64,
    /// Soft-deleted links.
    pub deleted: u64,
}

/// Removes every link expired or soft-deleted more than `after` ago.
pub async fn purge(db: &PgPool, after: Duration) -> anyhow::Result<Purged> {
    let mut purged = Purged::default();
    let after_secs = after.as_secs_f64();
    loop {
        let n = purge_batch(db, after_secs, Kind::Expired).await?;
        purged.expired += n;
        if n < BATCH as u64 {
            break;
        }
    }
    loop {
        let n = purge_batch(db, after_secs, Kind::Deleted).await?;
        purged.deleted += n;
        if n < BATCH as u64 {
            break;
        }
    }
    Ok(purged)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Expired,
    Deleted,
}

async fn purge_batch(db: &PgPool, after_secs: f64, kind: Kind) -> anyhow::Result<u64> {
    let mut tx = db.begin().await?;
    // Link rows first (the lock order of every link writer), the outbox
    // counter last (`record_changes`).
    let select = match kind {
        Kind::Expired => {
            "SELECT id FROM links
              WHERE deleted_at IS NULL AND expired_url IS NULL
                AND expires_at < now() - make_interval(secs => $1)
              ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
        Kind::Deleted => {
            "SELECT id FROM links
              WHERE deleted_at < now() - make_interval(secs => $1)
              ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED"
        }
    };
    let ids: Vec<i64> = sqlx::query_scalar(select)
        .bind(after_secs)
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
    if ids.is_empty() {
        tx.rollback().await?;
        return Ok(0);
    }
    let reason = match kind {
        Kind::Expired => "expired",
        Kind::Deleted => "deleted",
    };
    sqlx::query(
        "INSERT INTO retired_codes (domain_id, code, org_id)
         SELECT domain_id, code, org_id FROM links WHERE id = ANY($1)
         ON CONFLICT DO NOTHING",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO audit_log (org_id, operator, action, subject, details)
         SELECT org_id, true, 'link.purge', code,
                jsonb_build_object('domain_id', domain_id, 'reason', $2::text)
           FROM links WHERE id = ANY($1)",
    )
    .bind(&ids)
    .bind(reason)
    .execute(&mut *tx)
    .await?;
    if kind == Kind::Expired {
        // A delete delta for each: the engines still serve them (410).
        sqlx::query(
            "UPDATE links SET deleted_at = now(), version = version + 1, updated_at = now()
              WHERE id = ANY($1)",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
        store::record_changes(&mut tx, &ids)
            .await
            .map_err(|e| anyhow::anyhow!("recording the purge's deletes: {e}"))?;
    }
    sqlx::query("DELETE FROM links WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len() as u64)
}

/// Purges every `interval`, links older than `after`; runs until the
/// process ends. A failed round is logged and tried again next time.
pub async fn run(db: PgPool, after: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match purge(&db, after).await {
            Ok(p) if p == Purged::default() => {}
            Ok(p) => tracing::info!(expired = p.expired, deleted = p.deleted, "purged links"),
            Err(e) => tracing::warn!(error = %e, "purging links failed; trying again later"),
        }
    }
}
