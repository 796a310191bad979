//! HTTP-01 answers through the engines: a well-known answer written with its
//! outbox row (the relay signs and publishes it like any link change), and
//! the wait until every engine has applied it.
//!
//! The answer is also a `well_known_answers` row, so a snapshot built while
//! it is live carries it to an engine that starts meanwhile.

use super::push::Engines;
use crate::domains::store::record_change;
use snapshots::delta::LinkChange;
use snapshots::domain::WellKnown;
use sqlx::PgPool;
use std::time::Duration;

/// The path of an HTTP-01 answer (RFC 8555 §8.3).
pub const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

/// Publishes `answer` (for the domain `domain_id`); returns its sequence.
pub async fn publish(db: &PgPool, answer: &WellKnown, domain_id: i64) -> anyhow::Result<u64> {
    answer.validate()?;
    let mut tx = db.begin().await?;
    sqlx::query(
        "INSERT INTO well_known_answers (host, path, body, domain_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (host, path) DO UPDATE SET body = EXCLUDED.body, domain_id = EXCLUDED.domain_id",
    )
    .bind(&answer.host)
    .bind(&answer.path)
    .bind(&answer.body)
    .bind(domain_id)
    .execute(&mut *tx)
    .await?;
    let seq = record_change(
        &mut tx,
        &answer.host,
        LinkChange::WellKnownUpsert {
            answer: answer.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(seq)
}

/// Removes the answer at `host` + `path` (nothing when it is gone already).
pub async fn remove(db: &PgPool, host: &str, path: &str) -> anyhow::Result<()> {
    let mut tx = db.begin().await?;
    let gone = sqlx::query("DELETE FROM well_known_answers WHERE host = $1 AND path = $2")
        .bind(host)
        .bind(path)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone > 0 {
        record_change(
            &mut tx,
            host,
            LinkChange::WellKnownDelete {
                host: host.to_owned(),
                path: path.to_owned(),
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Waits until every engine reports `seq` applied on every core, polling
/// their `/readyz`; an error names the engines still behind at `timeout`.
pub async fn wait_applied(engines: &Engines, seq: u64, timeout: Duration) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut behind: Vec<String> = engines.addrs().to_vec();
    loop {
        let mut still = Vec::new();
        let mut why = Vec::new();
        for engine in behind {
            match engines.readiness(&engine).await {
                Ok(r) if applied_sequence(&r).is_some_and(|s| s >= seq) => continue,
                Ok(r) => why.push(format!("{engine} at {:?}", applied_sequence(&r))),
                Err(e) => why.push(format!("{engine}: {e:#}")),
            }
            still.push(engine);
        }
        if still.is_empty() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!(
                "engines had not applied the challenge answer (change {seq}) after {timeout:?}: {}",
                why.join("; ")
            );
        }
        behind = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The highest change sequence every core of an engine serves: per core the
/// newer of its snapshot and its last applied change, then the lowest core.
pub fn applied_sequence(r: &snapshots::readiness::EngineReadiness) -> Option<u64> {
    r.cores
        .iter()
        .map(|c| u64::try_from(c.snapshot_sequence.max(c.delta_applied_seq)).ok())
        .collect::<Option<Vec<u64>>>()?
        .into_iter()
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::readiness::{CoreReadiness, EngineReadiness};

    fn engine(cores: &[(i64, i64)]) -> EngineReadiness {
        EngineReadiness {
            ready: true,
            snapshot: None,
            nats: true,
            nats_connected: true,
            delta_seq: 0,
            delta_lag: 0,
            cores: cores
                .iter()
                .map(|&(snapshot_sequence, delta_applied_seq)| CoreReadiness {
                    snapshot_sequence,
                    delta_applied_seq,
                    delta_entries: 0,
                })
                .collect(),
            boot_id: None,
        }
    }

    #[test]
    fn applied_is_the_slowest_core_s_newest() {
        assert_eq!(applied_sequence(&engine(&[(5, 9), (7, 3)])), Some(7));
        assert_eq!(applied_sequence(&engine(&[(10, 0), (2, 12)])), Some(10));
        assert_eq!(applied_sequence(&engine(&[(-1, -1), (5, 5)])), None);
        assert_eq!(applied_sequence(&engine(&[])), None);
    }
}
