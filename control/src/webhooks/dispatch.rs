//! The sender: claims due deliveries, POSTs them signed, records the
//! outcome, schedules retries, opens and closes breakers (the rules are in
//! the module doc of [`super`]).

use super::Webhooks;
use super::sign;
use crate::metrics::Metrics;
use axum::http::{Request, header};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use serde_json::{Value, json};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::task::JoinSet;

/// Longest error text kept on a delivery.
const MAX_ERROR_LEN: usize = 500;
/// Most of an answer's body read (then dropped).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
const USER_AGENT: &str = concat!("shortener-webhooks/", env!("CARGO_PKG_VERSION"));
/// The notification channel that wakes the senders when events are written
/// outside a link write (`link.clicked`, [`super::clicks`]); link writes wake
/// them through the outbox's own `link_outbox`.
pub const WAKE_CHANNEL: &str = "webhook_events";

/// A delivery this sender holds the lease of.
#[derive(Debug, sqlx::FromRow)]
struct Claimed {
    id: i64,
    /// This attempt's number (from 1).
    attempts: i32,
    endpoint_id: i64,
    url: String,
    secret_sealed: Vec<u8>,
    public_id: String,
    #[sqlx(rename = "type")]
    event_type: String,
    created_at: OffsetDateTime,
    data: sqlx::types::Json<Value>,
}

/// Claims up to `limit` due deliveries of endpoints whose breaker lets
/// them through: one probe per half-open endpoint, none of open ones. Each
/// claimed delivery's attempt is counted and its `next_attempt_at` moved a
/// lease ahead, in the transaction that found it.
async fn claim(db: &PgPool, w: &Webhooks, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    let s = &w.settings;
    let mut tx = db.begin().await?;
    let due: Vec<(i64, i64, bool)> = sqlx::query_as(
        "SELECT d.id, d.endpoint_id, e.failures >= $2 AS probe
           FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
          WHERE d.state = 'pending' AND d.next_attempt_at <= now() AND e.active
            AND (e.open_until IS NULL OR e.open_until <= now())
          ORDER BY d.next_attempt_at, d.id
          LIMIT $1
          FOR UPDATE OF d SKIP LOCKED",
    )
    .bind(limit)
    .bind(s.breaker_failures as i32)
    .fetch_all(&mut *tx)
    .await?;
    let mut ids = Vec::with_capacity(due.len());
    let mut probed = std::collections::HashMap::new();
    for (id, endpoint, probe) in due {
        if !probe {
            ids.push(id);
            continue;
        }
        // Half-open: one probe. Pushing `open_until` a lease ahead is what
        // makes it one: a concurrent claimer waits for this row, then sees
        // the breaker open.
        // Later deliveries of an endpoint already probed wait.
        let won = match probed.get(&endpoint) {
            Some(_) => false,
            None => {
                let won = sqlx::query(
                    "UPDATE webhook_endpoints
                        SET open_until = now() + make_interval(secs => $2)
                      WHERE id = $1 AND (open_until IS NULL OR open_until <= now())",
                )
                .bind(endpoint)
                .bind(s.lease().as_secs_f64())
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 1;
                probed.insert(endpoint, won);
                won
            }
        };
        if won {
            ids.push(id);
        }
    }
    let claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE webhook_deliveries d
            SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => $2)
           FROM webhook_events ev, webhook_endpoints e
          WHERE d.id = ANY($1) AND ev.id = d.event_id AND e.id = d.endpoint_id
          RETURNING d.id, d.attempts, d.endpoint_id, e.url, e.secret_sealed, ev.public_id,
                    ev.type, ev.created_at, ev.data",
    )
    .bind(&ids)
    .bind(s.lease().as_secs_f64())
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(claimed)
}

/// The body of an event: `id`, `type`, `created_at`, `data`. A link's
/// `short_url` is completed with this deployment's `short_base`.
pub fn body(
    public_id: &str,
    event_type: &str,
    created_at: OffsetDateTime,
    mut data: Value,
    short_base: &str,
) -> Vec<u8> {
    if let Some(Value::String(url)) = data.get_mut("short_url") {
        *url = crate::links::model::absolute_short_url(short_base, url);
    }
    let created_at = created_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::to_vec(&json!({
        "id": public_id,
        "type": event_type,
        "created_at": created_at,
        "data": data,
    }))
    .expect("JSON serialises")
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    Delivered(u16),
    Failed { status: Option<u16>, error: String },
}

/// Sends one claimed delivery.
async fn send(w: &Webhooks, short_base: &str, c: &Claimed) -> Outcome {
    let failed = |status, error: String| Outcome::Failed { status, error };
    // The URL was checked when set; check again (the rules may be stricter
    // now than when it was stored).
    let url = match w.urls.check(&c.url) {
        Ok(url) => url,
        Err(e) => return failed(None, format!("refused: {e}")),
    };
    let secret = match super::store::open_secret(&w.sealer, c.endpoint_id, &c.secret_sealed) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(endpoint = c.endpoint_id, error = %e, "webhook secret does not open");
            return failed(
                None,
                "the signing secret could not be opened (webhook_key_file changed?)".into(),
            );
        }
    };
    let body = body(
        &c.public_id,
        &c.event_type,
        c.created_at,
        c.data.0.clone(),
        short_base,
    );
    let t = OffsetDateTime::now_utc().unix_timestamp();
    let req = Request::post(url.as_str())
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::USER_AGENT, USER_AGENT)
        .header(sign::SIGNATURE_HEADER, sign::header(&secret, t, &body))
        .header(sign::EVENT_ID_HEADER, &c.public_id)
        .header(sign::EVENT_TYPE_HEADER, &c.event_type)
        .header(sign::ATTEMPT_HEADER, c.attempts.to_string())
        .body(Full::new(Bytes::from(body)));
    let req = match req {
        Ok(req) => req,
        Err(e) => return failed(None, format!("the request cannot be made: {e}")),
    };
    let exchange = async {
        let answer = w.http.request(req).await?;
        let status = answer.status();
        // A short answer is read (and dropped) so the connection can serve
        // the next delivery; a long one is cut.
        let _ = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await;
        Ok::<_, hyper_util::client::legacy::Error>(status)
    };
    match tokio::time::timeout(w.settings.timeout, exchange).await {
        Ok(Ok(status)) if status.is_success() => Outcome::Delivered(status.as_u16()),
        Ok(Ok(status)) => {
            let why = if status.is_redirection() {
                "a redirect (not followed)"
            } else {
                "not a 2xx"
            };
            failed(Some(status.as_u16()), format!("answered {status}: {why}"))
        }
        Ok(Err(e)) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            if text.len() > MAX_ERROR_LEN {
                let mut end = MAX_ERROR_LEN;
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                text.truncate(end);
            }
            failed(None, text)
        }
        Err(_) => failed(None, format!("no answer within {:?}", w.settings.timeout)),
    }
}

/// Records `outcome` of attempt `c.attempts` (unless the lease was lost:
/// another sender took the delivery since).
async fn record(
    db: &PgPool,
    w: &Webhooks,
    metrics: &Metrics,
    c: &Claimed,
    outcome: Outcome,
) -> sqlx::Result<()> {
    let s = &w.settings;
    let mut tx = db.begin().await?;
    match outcome {
        Outcome::Delivered(status) => {
            sqlx::query(
                "UPDATE webhook_deliveries
                    SET state = 'delivered', last_status = $3, last_error = NULL,
                        finished_at = now()
                  WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            )
            .bind(c.id)
            .bind(c.attempts)
            .bind(i32::from(status))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE webhook_endpoints SET failures = 0, open_until = NULL
                  WHERE id = $1 AND (failures <> 0 OR open_until IS NOT NULL)",
            )
            .bind(c.endpoint_id)
            .execute(&mut *tx)
            .await?;
            metrics.webhook_delivered.inc();
        }
        Outcome::Failed { status, error } => {
            let dead = c.attempts as u32 >= s.max_attempts;
            let wait = s.retry.delay(c.attempts as u32);
            sqlx::query(
                "UPDATE webhook_deliveries
                    SET last_status = $3, last_error = $4,
                        state = CASE WHEN $5 THEN 'dead' ELSE 'pending' END,
                        finished_at = CASE WHEN $5 THEN now() END,
                        next_attempt_at = now() + make_interval(secs => $6)
                  WHERE id = $1 AND attempts = $2 AND state = 'pending'",
            )
            .bind(c.id)
            .bind(c.attempts)
            .bind(status.map(i32::from))
            .bind(&error)
            .bind(dead)
            .bind(wait.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            let opened: Option<bool> = sqlx::query_scalar(
                "UPDATE webhook_endpoints
                    SET failures = failures + 1,
                        open_until = CASE WHEN failures + 1 >= $2
                                          THEN now() + make_interval(secs => $3)
                                          ELSE open_until END
                  WHERE id = $1 RETURNING failures = $2",
            )
            .bind(c.endpoint_id)
            .bind(s.breaker_failures as i32)
            .bind(s.breaker_cooldown.as_secs_f64())
            .fetch_optional(&mut *tx)
            .await?;
            metrics.webhook_failed.inc();
            if dead {
                metrics.webhook_dead.inc();
            }
            if opened == Some(true) {
                metrics.webhook_breaker_opened.inc();
                tracing::warn!(
                    endpoint = c.endpoint_id,
                    failures = s.breaker_failures,
                    "webhook breaker open"
                );
            }
            tracing::info!(
                delivery = c.id,
                endpoint = c.endpoint_id,
                attempt = c.attempts,
                ?status,
                error,
                dead,
                "webhook delivery failed"
            );
        }
    }
    tx.commit().await
}

/// Sends and records one delivery.
async fn attempt(
    db: PgPool,
    w: Arc<Webhooks>,
    metrics: Arc<Metrics>,
    short_base: Arc<str>,
    c: Claimed,
) {
    let outcome = send(&w, &short_base, &c).await;
    if let Err(e) = record(&db, &w, &metrics, &c, outcome).await {
        // The lease runs out and the delivery is tried again.
        tracing::warn!(delivery = c.id, error = %e, "recording a webhook attempt failed");
    }
}

/// Updates the breaker gauge.
async fn observe(db: &PgPool, metrics: &Metrics) -> sqlx::Result<()> {
    let (open, pending): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM webhook_endpoints WHERE open_until > now()),
                (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending')",
    )
    .fetch_one(db)
    .await?;
    metrics.webhook_breakers_open.set(open as u64);
    metrics.webhook_pending.set(pending as u64);
    Ok(())
}

/// Runs this instance's sender for ever: up to `concurrency` attempts in
/// flight; it looks for due deliveries when one finishes, when a link write
/// commits (the outbox's NOTIFY), when `link.clicked` events are written
/// ([`WAKE_CHANNEL`]), on a redelivery and every `poll`.
pub async fn run(db: PgPool, w: Arc<Webhooks>, metrics: Arc<Metrics>, short_base: String) {
    let short_base: Arc<str> = short_base.into();
    let concurrency = w.settings.concurrency;
    let mut inflight = JoinSet::new();
    let mut listener: Option<PgListener> = None;
    let mut last_observed: Option<tokio::time::Instant> = None;
    loop {
        if listener.is_none() {
            listener = listen(&db).await;
        }
        let free = concurrency.saturating_sub(inflight.len());
        let mut claimed_all = false;
        if free > 0 {
            match claim(&db, &w, free as i64).await {
                Ok(batch) => {
                    claimed_all = !batch.is_empty() && batch.len() == free;
                    for c in batch {
                        inflight.spawn(attempt(
                            db.clone(),
                            w.clone(),
                            metrics.clone(),
                            short_base.clone(),
                            c,
                        ));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "claiming webhook deliveries failed"),
            }
        }
        if last_observed.is_none_or(|t| t.elapsed() >= w.settings.poll.max(Duration::from_secs(1)))
        {
            last_observed = Some(tokio::time::Instant::now());
            if let Err(e) = observe(&db, &metrics).await {
                tracing::debug!(error = %e, "webhook gauges");
            }
        }
        if claimed_all {
            // Every slot is busy: wait for one to free.
            inflight.join_next().await;
            continue;
        }
        let notified = async {
            match listener.as_mut() {
                Some(l) => l.recv().await.is_ok(),
                None => std::future::pending().await,
            }
        };
        let listener_lost = tokio::select! {
            Some(_) = inflight.join_next(), if !inflight.is_empty() => false,
            _ = w.wake.notified() => false,
            ok = notified => !ok,
            _ = tokio::time::sleep(w.settings.poll) => false,
        };
        if listener_lost {
            listener = None;
        }
    }
}

/// A connection that hears link writes and other events commit; `None`
/// when it cannot be had now (the poll carries on).
async fn listen(db: &PgPool) -> Option<PgListener> {
    let mut l = PgListener::connect_with(db).await.ok()?;
    l.listen_all(["link_outbox", WAKE_CHANNEL]).await.ok()?;
    Some(l)
}
