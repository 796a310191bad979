//! `link.clicked`: the analytics sidecar's enriched clicks, batched per
//! organization into events that go out through the same deliveries as
//! link events (signed, retried, dead-lettered).
//!
//! **Why a JetStream stream, not a core NATS subscription.** The sidecar
//! publishes each stored click on core NATS `<enriched_subject>.<org>`
//! (`analytics::publish`): a core subscriber gets only what is published
//! while it is connected, and cannot acknowledge, so a control restart (or a
//! deploy) would lose the clicks of that moment and a crash would lose the
//! ones it held. Control therefore keeps a stream of its own on
//! `<enriched_subject>.>` (`enriched_stream`, settings owned here as
//! `LINKS`' are by the relay: limits retention, `enriched_stream_max_age_secs`
//! and `..._max_bytes`), which stores the sidecar's core publishes as they
//! come, and reads it through one durable pull consumer, [`CONSUMER`],
//! shared by every instance: JetStream hands each message to one of them,
//! so several instances never write a click twice.
//!
//! **Acknowledged after PostgreSQL has the events.** A click is held until
//! its organization's batch is full (`webhook_click_batch`, 100) or its
//! oldest click has waited `webhook_click_wait_ms` (1 s); then the batch's
//! `link.clicked` event and one delivery per subscribed endpoint are
//! inserted ([`super::events::insert_events`], the path link events take)
//! and committed, and only then are its messages acknowledged. A crash
//! before the commit leaves them unacknowledged: JetStream sends them again
//! after the ack wait (30 s), as it does the clicks the server had handed
//! a pull request of an instance that is gone (a request lives
//! [`PULL_EXPIRES`] at most). A crash between the commit and the acks sends those
//! clicks again in a later event (at least once, like the sidecar's own
//! stream); each click carries the engine's `event_id` to deduplicate on,
//! and each event's id is fixed when it is written, so its retries carry
//! the same id.
//!
//! One batch is one organization's clicks and goes to every endpoint of
//! that organization subscribed to `link.clicked`, so each endpoint gets its
//! organization's clicks in events of at most `webhook_click_batch`, none
//! older than the wait when written. Clicks of organizations without such an
//! endpoint are acknowledged and dropped: checked per batch, so a new
//! endpoint gets clicks from its creation on. A message that is not an
//! enriched click of the organization its subject names is refused
//! (terminated, counted) and never blocks the others.

use super::events::insert_events;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::relay::{StreamSettings, ensure_stream};
use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind, Message, consumer};
use futures::StreamExt as _;
use serde_json::{Value, json};
use servicekit::nats::NatsSettings;
use snapshots::enriched::{EnrichedClick, subject_org};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The durable consumer every control instance reads the stream through.
pub const CONSUMER: &str = "control-webhooks";
/// How long JetStream waits for an acknowledgement before sending a
/// message again: well past the batching wait and a slow commit.
pub const ACK_WAIT: Duration = Duration::from_secs(30);
/// Messages one instance may hold unacknowledged; past it JetStream sends
/// no more until batches are written (and memory stays bounded).
const MAX_ACK_PENDING: i64 = 20_000;
/// Messages asked for per pull.
const PULL: usize = 500;
/// How long one pull request stays open at the server. Short: the server
/// keeps a request after its instance has gone and sends it clicks that then
/// wait out the ack wait, so a stopped instance delays (never loses) at
/// most this much of the traffic.
pub const PULL_EXPIRES: Duration = Duration::from_secs(5);
/// How long a message refused by a failed write waits before it comes back.
const RETRY_DELAY: Duration = Duration::from_secs(1);

/// Where the enriched clicks are and how they are batched.
#[derive(Debug, Clone)]
pub struct ClickSource {
    pub nats: NatsSettings,
    /// The sidecar's `enriched_subject`: clicks are on `<prefix>.<org>`.
    pub prefix: String,
    pub stream: String,
    pub settings: StreamSettings,
    /// Most clicks in one event.
    pub batch: usize,
    /// Longest a click waits for its event.
    pub wait: Duration,
}

impl ClickSource {
    /// The source of a validated config; `None` without `enriched_subject`
    /// (or without `nats`).
    pub fn from_config(c: &Config) -> Option<ClickSource> {
        Some(ClickSource {
            nats: c.nats_settings()?,
            prefix: c.enriched_subject.clone()?,
            stream: c.enriched_stream.clone(),
            settings: StreamSettings {
                max_age: Duration::from_secs(c.enriched_stream_max_age_secs),
                max_bytes: c.enriched_stream_max_bytes,
                replicas: c.links_stream_replicas,
                adopt: c.links_stream_adopt,
            },
            batch: c.webhook_click_batch,
            wait: c.webhook_click_wait(),
        })
    }

    /// The stream's (and the consumer's) subjects.
    pub fn subjects(&self) -> String {
        format!("{}.>", self.prefix)
    }
}

/// Runs for ever: connect, make sure of the stream and the consumer, read;
/// on any error back off and start again.
pub async fn run(db: PgPool, source: ClickSource, metrics: Arc<Metrics>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let e = consume(&db, &source, &metrics, &mut backoff).await;
        tracing::warn!(
            error = format!("{e:#}"),
            ?backoff,
            "link.clicked reader stopped; restarting"
        );
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// The durable consumer's settings: explicit acks, every stored message,
/// redelivered without limit.
fn consumer_config(source: &ClickSource) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(CONSUMER.into()),
        name: Some(CONSUMER.into()),
        description: Some("control: enriched clicks into link.clicked webhooks".into()),
        deliver_policy: consumer::DeliverPolicy::All,
        ack_policy: consumer::AckPolicy::Explicit,
        ack_wait: ACK_WAIT,
        max_deliver: -1,
        max_ack_pending: MAX_ACK_PENDING,
        filter_subject: source.subjects(),
        ..Default::default()
    }
}

/// One connection's life: reads until the message stream fails, and says
/// why.
async fn consume(
    db: &PgPool,
    source: &ClickSource,
    metrics: &Metrics,
    backoff: &mut Duration,
) -> anyhow::Error {
    match read(db, source, metrics, backoff).await {
        Ok(never) => match never {},
        Err(e) => e,
    }
}

async fn read(
    db: &PgPool,
    source: &ClickSource,
    metrics: &Metrics,
    backoff: &mut Duration,
) -> anyhow::Result<std::convert::Infallible> {
    let client = source
        .nats
        .connect("control link.clicked", |o| o.retry_on_initial_connect())
        .await
        .with_context(|| format!("connecting to NATS at {}", source.nats.servers))?;
    // However this connection's life ends (an error, or the task aborted at
    // shutdown), it is drained: the consumer's pulling runs in tasks of the
    // client's own, which would otherwise go on taking clicks that nobody
    // reads (held, unacknowledged, until the ack wait).
    let _drain = DrainOnDrop(client.clone());
    let js = jetstream::new(client);
    let stream = ensure_stream(&js, &source.stream, &source.subjects(), &source.settings).await?;
    let consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(CONSUMER, consumer_config(source))
        .await
        .with_context(|| format!("getting or creating consumer {CONSUMER}"))?;
    let mut messages = consumer
        .stream()
        .max_messages_per_batch(PULL)
        .heartbeat(Duration::from_secs(2))
        .expires(PULL_EXPIRES)
        .messages()
        .await
        .context("pulling from the consumer")?;
    tracing::info!(
        stream = source.stream,
        subjects = source.subjects(),
        "reading enriched clicks for link.clicked"
    );
    let mut batches = Batches::<Message>::new(source.batch, source.wait);
    loop {
        let next = match batches.deadline() {
            Some(at) => tokio::time::timeout_at(at, messages.next()).await.ok(),
            None => Some(messages.next().await),
        };
        match next {
            // A batch is due.
            None => {}
            Some(Some(Ok(message))) => {
                *backoff = Duration::from_millis(100);
                metrics.webhook_clicks_read.inc();
                match decode(&source.prefix, message.subject.as_str(), &message.payload) {
                    Some(click) => {
                        if let Some(full) = batches.push(click, message) {
                            write(db, metrics, vec![full]).await;
                        }
                    }
                    None => {
                        metrics.webhook_clicks_refused.inc();
                        tracing::warn!(
                            subject = message.subject.as_str(),
                            "not an enriched click of the organization its subject names; dropped"
                        );
                        let _ = message.ack_with(AckKind::Term).await;
                    }
                }
            }
            Some(Some(Err(e))) => {
                // What is held is written (its acks may fail: then it comes
                // again, at least once).
                write(db, metrics, batches.take_all()).await;
                return Err(anyhow::Error::from(e).context("reading the consumer"));
            }
            Some(None) => {
                write(db, metrics, batches.take_all()).await;
                anyhow::bail!("the consumer's message stream ended");
            }
        }
        let due = batches.take_due(Instant::now());
        if !due.is_empty() {
            write(db, metrics, due).await;
        }
    }
}

/// Drains a NATS client when dropped.
struct DrainOnDrop(async_nats::Client);

impl Drop for DrainOnDrop {
    fn drop(&mut self) {
        let client = self.0.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = client.drain().await;
            });
        }
    }
}

/// The click a message carries, if it is one of the organization its
/// subject names.
fn decode(prefix: &str, subject: &str, payload: &[u8]) -> Option<EnrichedClick> {
    let org = subject_org(prefix, subject)?;
    let click: EnrichedClick = serde_json::from_slice(payload).ok()?;
    // Organization 0 (clicks older than organizations) has no endpoints:
    // taken like any other, and dropped when its batch finds none.
    (click.org_id == org && i64::try_from(org).is_ok()).then_some(click)
}

/// One organization's clicks waiting for their event, with their messages
/// (`M`: a JetStream message; the unit tests use `()`).
#[derive(Debug)]
pub struct Batch<M = Message> {
    pub org_id: u64,
    pub clicks: Vec<EnrichedClick>,
    messages: Vec<M>,
    since: Instant,
}

/// The batches being filled, one per organization.
#[derive(Debug)]
struct Batches<M> {
    open: HashMap<u64, Batch<M>>,
    size: usize,
    wait: Duration,
}

impl<M> Batches<M> {
    fn new(size: usize, wait: Duration) -> Batches<M> {
        Batches {
            open: HashMap::new(),
            size,
            wait,
        }
    }

    /// Adds a click; returns its batch when that is now full.
    fn push(&mut self, click: EnrichedClick, message: M) -> Option<Batch<M>> {
        let org = click.org_id;
        let batch = self.open.entry(org).or_insert_with(|| Batch {
            org_id: org,
            clicks: Vec::with_capacity(self.size.min(128)),
            messages: Vec::with_capacity(self.size.min(128)),
            since: Instant::now(),
        });
        batch.clicks.push(click);
        batch.messages.push(message);
        if batch.clicks.len() >= self.size {
            self.open.remove(&org)
        } else {
            None
        }
    }

    /// When the oldest batch is due.
    fn deadline(&self) -> Option<Instant> {
        self.open.values().map(|b| b.since + self.wait).min()
    }

    /// The batches due at `now`.
    fn take_due(&mut self, now: Instant) -> Vec<Batch<M>> {
        let due: Vec<u64> = self
            .open
            .values()
            .filter(|b| b.since + self.wait <= now)
            .map(|b| b.org_id)
            .collect();
        due.iter().filter_map(|org| self.open.remove(org)).collect()
    }

    fn take_all(&mut self) -> Vec<Batch<M>> {
        self.open.drain().map(|(_, b)| b).collect()
    }
}

/// Writes `batches` as `link.clicked` events in one transaction, then
/// acknowledges their messages; when the write fails, asks for them again
/// instead.
async fn write(db: &PgPool, metrics: &Metrics, batches: Vec<Batch>) {
    if batches.is_empty() {
        return;
    }
    match insert(db, &batches).await {
        Ok(evented) => {
            metrics.webhook_clicks_evented.add(evented);
            for m in batches.iter().flat_map(|b| &b.messages) {
                if let Err(error) = m.ack().await {
                    // The events are written: this click comes again, in
                    // another event (at least once).
                    tracing::warn!(%error, "acknowledging an enriched click failed");
                }
            }
        }
        Err(error) => {
            tracing::warn!(%error, "writing link.clicked events failed; the clicks come again");
            for m in batches.iter().flat_map(|b| &b.messages) {
                let _ = m.ack_with(AckKind::Nak(Some(RETRY_DELAY))).await;
            }
        }
    }
}

/// Inserts the events of the batches whose organization has an active
/// endpoint for `link.clicked`, with their deliveries, and wakes the
/// senders; returns how many clicks went into events.
pub async fn insert<M>(db: &PgPool, batches: &[Batch<M>]) -> sqlx::Result<u64> {
    let orgs: Vec<i64> = batches.iter().map(|b| b.org_id as i64).collect();
    let mut tx = db.begin().await?;
    let wanted: Vec<i64> = sqlx::query_scalar(
        "SELECT DISTINCT org_id FROM webhook_endpoints
          WHERE org_id = ANY($1) AND active AND 'link.clicked' = ANY(events)",
    )
    .bind(&orgs)
    .fetch_all(&mut *tx)
    .await?;
    let mut event_orgs = Vec::new();
    let mut data = Vec::new();
    let mut clicks = 0u64;
    for b in batches
        .iter()
        .filter(|b| wanted.contains(&(b.org_id as i64)))
    {
        event_orgs.push(b.org_id as i64);
        data.push(sqlx::types::Json(event_data(&b.clicks)));
        clicks += b.clicks.len() as u64;
    }
    if !event_orgs.is_empty() {
        let types = vec!["link.clicked"; event_orgs.len()];
        insert_events(&mut tx, &event_orgs, &types, &data).await?;
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(super::dispatch::WAKE_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(clicks)
}

/// A `link.clicked` event's `data`: `{"clicks": [...]}`, in the order read.
pub fn event_data(clicks: &[EnrichedClick]) -> Value {
    json!({ "clicks": clicks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn click(org: u64, n: u32) -> EnrichedClick {
        EnrichedClick {
            event_id: format!("{n:032x}"),
            org_id: org,
            domain: String::new(),
            code: "launch".into(),
            ts_ms: 1_764_590_000_000,
            status: 301,
            country: "GB".into(),
            city: "London".into(),
            device: "desktop".into(),
            browser: "Chrome".into(),
            os: "Windows".into(),
            referrer_host: String::new(),
            language: "en".into(),
            is_bot: false,
            is_preview: false,
            rule: 0,
            node: "edge-1".into(),
        }
    }

    #[test]
    fn a_batch_is_written_when_full_or_when_its_oldest_click_has_waited() {
        let wait = Duration::from_secs(1);
        let mut b = Batches::<()>::new(3, wait);
        assert_eq!(b.deadline(), None);
        assert!(b.push(click(1, 1), ()).is_none());
        assert!(b.push(click(2, 2), ()).is_none());
        assert!(b.push(click(1, 3), ()).is_none());
        // The third click of organization 1 fills its batch: out at once,
        // only its own clicks.
        let full = b.push(click(1, 4), ()).expect("full");
        assert_eq!(full.org_id, 1);
        assert_eq!(full.clicks.len(), 3);
        assert!(full.clicks.iter().all(|c| c.org_id == 1));
        // Organization 2's waits until its first click is `wait` old.
        let due_at = b.deadline().expect("organization 2's batch");
        assert!(due_at >= full.since + wait);
        assert!(b.take_due(due_at - Duration::from_millis(1)).is_empty());
        let due = b.take_due(due_at);
        assert_eq!(due.len(), 1);
        assert_eq!(due[0].org_id, 2);
        assert_eq!(due[0].clicks.len(), 1);
        assert_eq!(b.deadline(), None);
    }

    #[test]
    fn only_a_click_of_the_organization_its_subject_names_is_taken() {
        let p = "enriched.clicks";
        let json = |c: &EnrichedClick| serde_json::to_vec(c).unwrap();
        let seven = click(7, 1);
        assert_eq!(
            decode(p, "enriched.clicks.7", &json(&seven)),
            Some(seven.clone())
        );
        assert_eq!(decode(p, "enriched.clicks.8", &json(&seven)), None);
        assert_eq!(
            decode(p, "enriched.clicks.0", &json(&click(0, 1))),
            Some(click(0, 1))
        );
        assert_eq!(decode(p, "enriched.clicks.0", &json(&seven)), None);
        assert_eq!(decode(p, "enriched.clicks.7", b"{\"event_id\":1}"), None);
        assert_eq!(decode(p, "other.7", &json(&seven)), None);
    }

    #[test]
    fn event_data_lists_the_clicks_as_published() {
        let data = event_data(&[click(7, 1)]);
        assert_eq!(data["clicks"][0]["org_id"], 7);
        assert_eq!(data["clicks"][0]["event_id"], format!("{:032x}", 1));
        assert_eq!(data["clicks"].as_array().unwrap().len(), 1);
    }
}
