//! Leadership among control instances sharing one PostgreSQL database.
//!
//! Every instance serves the API; exactly one, the leader, runs the tasks
//! that act on the whole deployment: the outbox relay, scheduled snapshot
//! builds and pushes, the engine reconcile loop, purges and ACME renewals
//! (`server::spawn_leader_tasks`). The leader is whoever holds a
//! session-level PostgreSQL advisory lock ([`LOCK_KEY`]) on a connection of
//! its own, opened for that purpose and held while the process lives:
//!
//! - **Acquiring.** `pg_try_advisory_lock` never waits; an instance that does
//!   not get it tries again every `leader_retry_ms`.
//! - **Losing.** A leader's process that dies (even by SIGKILL) closes its
//!   socket, PostgreSQL ends the session and the lock is free at once; the
//!   next try of another instance takes it, so a handover takes about one
//!   retry interval. The leader probes its own connection at the same pace;
//!   a probe that fails or does not answer in time means the session (and
//!   with it the lock) may be gone: the leader stops its tasks at once and
//!   contends again on a fresh connection. The session asks the server for
//!   TCP keepalives of a few seconds, so a leader cut off by the network
//!   loses the lock in seconds rather than the system default of hours.
//! - **Overlap.** Between the moment PostgreSQL frees a lock and the moment
//!   a cut-off leader's probe fails, two instances may briefly run the
//!   tasks. None of them needs exclusivity to stay correct, only to avoid
//!   doing the work twice: the relay publishes each change with
//!   `Nats-Expected-Last-Sequence` and a `Nats-Msg-Id` (JetStream refuses
//!   a message that does not follow the stream's real last one, and drops a
//!   repeated id), so two relays cannot put a change in twice or leave a
//!   gap (`relay.rs`); snapshot builds read one consistent state; purges
//!   and certificate orders are row-locked transactions and idempotent.
//!
//! The lock is per database, so deployments (and tests) on different
//! databases of one server do not contend.

use crate::metrics::Metrics;
use sqlx::{Connection as _, PgConnection};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The advisory lock's key: the ASCII of "shortenr", so it is recognisable
/// in `pg_locks` (`objid` and `classid` hold its halves).
pub const LOCK_KEY: i64 = 0x7368_6f72_7465_6e72;

/// Server-side TCP keepalives of the lock's session: idle seconds before
/// the first probe, seconds between probes, probes lost before the server
/// drops the session (and frees the lock).
const KEEPALIVE: &str = "SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2; \
                         SET tcp_keepalives_count = 3";

/// Contends for leadership for ever; `leader` says whether this instance
/// holds the lock (and `control_leader` in the metrics).
pub async fn run(
    database_url: String,
    retry: Duration,
    metrics: Arc<Metrics>,
    leader: watch::Sender<bool>,
) {
    // A probe that takes longer than this counts as lost.
    let answer_within = retry.max(Duration::from_secs(2));
    let mut said_unreachable = false;
    loop {
        let mut conn = match connect(&database_url, answer_within).await {
            Ok(conn) => conn,
            Err(e) => {
                if !said_unreachable {
                    tracing::warn!(error = %e, "leadership: cannot reach PostgreSQL; trying again");
                    said_unreachable = true;
                }
                tokio::time::sleep(retry).await;
                continue;
            }
        };
        said_unreachable = false;
        // Contend until the lock is ours or the connection fails.
        let mut ours = false;
        loop {
            let tried = tokio::time::timeout(
                answer_within,
                sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
                    .bind(LOCK_KEY)
                    .fetch_one(&mut conn),
            )
            .await;
            match tried {
                Ok(Ok(true)) => {
                    ours = true;
                    break;
                }
                Ok(Ok(false)) => tokio::time::sleep(retry).await,
                Ok(Err(e)) => {
                    tracing::warn!(error = %e, "leadership: the lock's connection failed");
                    break;
                }
                Err(_) => {
                    tracing::warn!("leadership: the lock's connection does not answer");
                    break;
                }
            }
        }
        if !ours {
            continue;
        }
        tracing::info!("leadership: this instance is the leader");
        metrics.leader.set(1);
        leader.send_replace(true);
        // Hold it while the connection answers.
        loop {
            tokio::time::sleep(retry).await;
            let probe = tokio::time::timeout(
                answer_within,
                sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&mut conn),
            )
            .await;
            if !matches!(probe, Ok(Ok(1))) {
                break;
            }
        }
        leader.send_replace(false);
        metrics.leader.set(0);
        tracing::error!("leadership lost (the lock's connection failed); leader tasks stopped");
        // Dropping the connection closes it: if the server still holds the
        // session, it ends it and frees the lock.
        drop(conn);
    }
}

async fn connect(url: &str, within: Duration) -> anyhow::Result<PgConnection> {
    let mut conn = tokio::time::timeout(within, PgConnection::connect(url)).await??;
    sqlx::raw_sql(KEEPALIVE).execute(&mut conn).await?;
    Ok(conn)
}

/// Runs the tasks `start` spawns while `leader` is true, and aborts them all
/// the moment it turns false (or this future is dropped); starts them
/// again when leadership comes back.
pub async fn supervise(mut leader: watch::Receiver<bool>, start: impl Fn(&mut JoinSet<()>)) {
    loop {
        if leader.wait_for(|l| *l).await.is_err() {
            return;
        }
        let mut tasks = JoinSet::new();
        start(&mut tasks);
        let lost = leader.wait_for(|l| !*l).await.is_err();
        tasks.abort_all();
        if lost {
            return;
        }
    }
}
