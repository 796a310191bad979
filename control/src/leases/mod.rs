//! Visit leases for links with `max_visits` (docs/max-visits.md): control
//! owns each limited link's budget and hands it to engines in leases.
//!
//! Every instance answers: it subscribes to `links.lease.*` in one queue
//! group (`control-leases`), so each request reaches one instance, and the
//! budget's rule lives in PostgreSQL, not in the instance: each grant is
//! one transaction on the link's `link_visits` row taken `FOR UPDATE`, in
//! which `granted + lease <= max_visits` ([`store::grant`]). A request's
//! returns (leases the engine is done with, with their unused visits) are
//! credited first, so visits one engine gives back can go to another in
//! the same round; before them, its moves (visits an older lease had not
//! handed out, now served from the newer one) are moved between the two
//! leases' rows, so each row says what its lease holds. The grant is signed with the link-signing key, as link
//! changes are, and carries the request's nonce.
//!
//! Leases last [`LEASE_TTL`]. An engine stops serving one `LEASE_TTL` after
//! it sent its request, before control counts it expired. A lease that is
//! never given back (its engine died or was cut off) keeps its visits
//! counted: the engine may have served any of them, and granting them
//! again could serve more than `max_visits`. Its row is swept
//! [`SWEEP_AFTER`] after it expired.

pub mod store;

use crate::metrics::Metrics;
use futures::StreamExt as _;
use servicekit::nats::NatsSettings;
use snapshots::lease::{
    LEASE_VERSION, Lease, LeaseGrant, LeaseRequest, MAX_LEASE_ITEMS, lease_subjects,
};
use snapshots::signing::{DeltaSigner, SIGNATURE_HEADER};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;

/// How long a lease lasts.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long after its expiry a lease never given back is forgotten.
pub const SWEEP_AFTER: Duration = Duration::from_secs(3600);
/// The queue group every instance answers in.
const QUEUE_GROUP: &str = "control-leases";
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What the responder needs.
#[derive(Clone)]
pub struct Responder {
    pub db: PgPool,
    pub nats: NatsSettings,
    /// Signs grants; `None` only where engines accept unsigned changes.
    pub signer: Option<Arc<DeltaSigner>>,
    pub metrics: Arc<Metrics>,
    pub ttl: Duration,
    /// Requests arrive on `<subject>.<node>`.
    pub subject: String,
}

/// Answers lease requests forever, reconnecting with backoff.
pub async fn run(responder: Responder) {
    let mut backoff = Duration::from_millis(100);
    let mut sweep = tokio::time::interval(Duration::from_secs(60));
    loop {
        match serve(&responder, &mut sweep, &mut backoff).await {
            Ok(()) => tracing::warn!("lease requests ended; subscribing again"),
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "lease responder down"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn serve(
    responder: &Responder,
    sweep: &mut tokio::time::Interval,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let client = responder
        .nats
        .connect("control leases", |options| options)
        .await?;
    let subjects = lease_subjects(&responder.subject);
    let mut requests = client
        .queue_subscribe(subjects.clone(), QUEUE_GROUP.into())
        .await?;
    client.flush().await?;
    *backoff = Duration::from_millis(100);
    tracing::info!(%subjects, "answering visit lease requests");
    loop {
        tokio::select! {
            message = requests.next() => {
                let Some(message) = message else { return Ok(()) };
                let Some(reply) = message.reply.clone() else { continue };
                let Some(body) = answer(responder, &message.subject, &message.payload).await else {
                    continue;
                };
                let mut headers = async_nats::HeaderMap::new();
                if let Some(signer) = &responder.signer {
                    headers.insert(SIGNATURE_HEADER, signer.sign(&body).as_str());
                }
                client
                    .publish_with_headers(reply, headers, body.into())
                    .await?;
            }
            _ = sweep.tick() => {
                let after = time::Duration::try_from(SWEEP_AFTER).unwrap_or(time::Duration::HOUR);
                match store::sweep(&responder.db, after).await {
                    Ok(0) => {}
                    Ok(n) => {
                        responder.metrics.lease_swept.add(n);
                        tracing::warn!(leases = n, "forgot expired visit leases never given back (their visits stay counted)");
                    }
                    Err(e) => tracing::warn!(error = %e, "sweeping expired visit leases failed"),
                }
            }
        }
    }
}

/// The grant for one request, encoded; `None` for a request that is
/// refused (logged; the engine times out and asks again).
pub async fn answer(responder: &Responder, subject: &str, payload: &[u8]) -> Option<Vec<u8>> {
    let request = match LeaseRequest::decode(payload, subject, &responder.subject) {
        Ok(request) => request,
        Err(e) => {
            responder.metrics.lease_refused.inc();
            tracing::warn!(error = %e, %subject, "refusing a lease request");
            return None;
        }
    };
    let db = &responder.db;
    let metrics = &responder.metrics;
    metrics.lease_requests.inc();
    // Moves first: a lease in this request's returns may hold visits moved
    // into it in the same request.
    for moved in &request.moves {
        if let Err(e) = store::move_visits(
            db,
            &request.node,
            moved.from as i64,
            moved.into as i64,
            moved.visits,
        )
        .await
        {
            tracing::warn!(error = %e, from = moved.from, into = moved.into, "moving visits between leases failed");
            return None;
        }
    }
    for returned in &request.returns {
        match store::give_back(db, &request.node, returned.lease as i64, returned.unused).await {
            Ok(credited) => metrics.lease_visits_returned.add(credited as u64),
            Err(e) => {
                tracing::warn!(error = %e, lease = returned.lease, "giving a lease back failed");
                return None;
            }
        }
    }
    let ttl = time::Duration::try_from(responder.ttl).unwrap_or(time::Duration::SECOND * 30);
    let mut leases = Vec::with_capacity(request.want.len().min(MAX_LEASE_ITEMS));
    for want in &request.want {
        let granted = match store::grant(
            db,
            &request.node,
            want.domain,
            &want.code,
            want.visits,
            ttl,
        )
        .await
        {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!(error = %e, code = %want.code, "granting a lease failed");
                store::Granted {
                    lease: 0,
                    visits: 0,
                }
            }
        };
        metrics.lease_visits_granted.add(granted.visits as u64);
        leases.push(Lease {
            domain: want.domain,
            code: want.code.clone(),
            lease: granted.lease as u64,
            visits: granted.visits as u32,
            ttl_ms: responder.ttl.as_millis() as u64,
        });
    }
    Some(
        LeaseGrant {
            v: LEASE_VERSION,
            nonce: request.nonce,
            leases,
        }
        .encode(),
    )
}
