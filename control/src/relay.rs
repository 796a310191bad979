//! The outbox relay: publishes `link_outbox` rows, in sequence order, to the
//! JetStream stream of link changes.
//!
//! Guarantees and how they are kept:
//! - **Nothing lost, nothing reordered.** Outbox sequences are assigned in
//!   commit order (see the migration), so reading `seq > published` never
//!   skips a row that commits later. Each message carries
//!   `Nats-Expected-Last-Sequence` (the stream sequence it must follow): if
//!   one publish in a pipelined batch is lost (a dropped connection), every
//!   later one is refused by the server too, so the stream never gets a gap.
//! - **Survives restarts and outages.** On every (re)connect the relay reads
//!   the last message of the stream and resumes after the delta sequence it
//!   carries; the stream is the truth of what was published. `relay_state`
//!   records the acknowledged watermark too (for an empty or recreated
//!   stream, and for operators). `Nats-Msg-Id` = the outbox sequence adds the
//!   server's duplicate window on top.
//! - **Prompt.** Writers `pg_notify('link_outbox')` in their transaction; the
//!   relay `LISTEN`s and wakes at once, with a slow poll as a safety net.

use crate::metrics::Metrics;
use anyhow::Context as _;
use async_nats::jetstream::{self, message::PublishMessage, stream};
use snapshots::delta::LinkDelta;
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

/// Rows published per round (pipelined, then acknowledged together).
const BATCH: i64 = 256;
/// How long the relay sleeps without a notification before looking anyway.
const POLL: Duration = Duration::from_secs(5);

/// Where to publish.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub nats_url: String,
    pub stream: String,
    pub subject: String,
}

/// Creates the stream if it is missing: one subject, file storage, a two-minute
/// duplicate window (NATS 2.9 has no newer options to set).
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
) -> anyhow::Result<stream::Stream> {
    js.get_or_create_stream(stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: stream::StorageType::File,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .with_context(|| format!("creating or opening stream {name}"))
}

/// Runs forever: connect, relay, and on any error back off and start again.
pub async fn run(db: PgPool, target: RelayTarget, metrics: Arc<Metrics>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match relay(&db, &target, &metrics).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                metrics.relay_errors.inc();
                tracing::warn!(
                    error = format!("{e:#}"),
                    ?backoff,
                    "relay stopped; restarting"
                );
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The last delta sequence in the stream, and the stream's own last sequence.
async fn stream_position(
    stream: &mut stream::Stream,
    subject: &str,
) -> anyhow::Result<Option<(u64, u64)>> {
    let last = stream
        .info()
        .await
        .context("stream info")?
        .state
        .last_sequence;
    if last == 0 {
        return Ok(None);
    }
    let msg = stream
        .get_last_raw_message_by_subject(subject)
        .await
        .context("reading the stream's last message")?;
    let delta =
        LinkDelta::decode(&msg.payload).context("the stream's last message is not a delta")?;
    Ok(Some((delta.seq, msg.sequence.max(last))))
}

async fn relay(db: &PgPool, target: &RelayTarget, metrics: &Metrics) -> anyhow::Result<()> {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(&target.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", target.nats_url))?;
    let js = jetstream::new(client);
    let mut stream = ensure_stream(&js, &target.stream, &target.subject).await?;
    let mut listener = PgListener::connect_with(db)
        .await
        .context("LISTEN connection")?;
    listener.listen("link_outbox").await?;

    let watermark: i64 = sqlx::query_scalar("SELECT published_seq FROM relay_state")
        .fetch_one(db)
        .await?;
    let (mut published, mut stream_seq) =
        match stream_position(&mut stream, &target.subject).await? {
            Some((delta_seq, stream_seq)) => (delta_seq as i64, stream_seq),
            None => (watermark, 0),
        };
    let head: i64 = sqlx::query_scalar("SELECT seq FROM outbox_counter")
        .fetch_one(db)
        .await?;
    if published > head {
        // Publishing would wait forever for sequences the stream already has,
        // and engines would ignore them: the stream belongs to another database.
        anyhow::bail!(
            "stream {} is ahead of this database (stream at change {published}, database at {head}); \
             it was written from another database: purge it or use another --links-stream",
            target.stream
        );
    }
    tracing::info!(published, stream_seq, watermark, stream = %target.stream, "relay resuming");
    metrics.relay_published_seq.set(published as u64);

    loop {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
            "SELECT seq, delta FROM link_outbox WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(published)
        .bind(BATCH)
        .fetch_all(db)
        .await?;
        if rows.is_empty() {
            // Wake on a NOTIFY, or look again after POLL anyway.
            match tokio::time::timeout(POLL, listener.recv()).await {
                Ok(r) => {
                    r.context("LISTEN connection lost")?;
                }
                Err(_elapsed) => {}
            }
            continue;
        }
        if rows[0].0 != published + 1 {
            // Sequences have no gaps (commit-ordered counter); a jump means
            // rows were deleted under us. Say so, and carry on from what exists.
            tracing::warn!(
                expected = published + 1,
                found = rows[0].0,
                "gap in link_outbox"
            );
        }
        let mut acks = Vec::with_capacity(rows.len());
        for (i, (seq, delta)) in rows.iter().enumerate() {
            let msg = PublishMessage::build()
                .payload(delta.clone().into())
                .message_id(seq.to_string())
                .expected_last_sequence(stream_seq + i as u64);
            acks.push(
                js.send_publish(target.subject.clone(), msg)
                    .await
                    .context("publish")?,
            );
        }
        for (ack, (seq, _)) in acks.into_iter().zip(&rows) {
            let ack = ack
                .await
                .with_context(|| format!("ack of outbox seq {seq}"))?;
            stream_seq = ack.sequence;
            published = *seq;
            metrics.relay_published.inc();
        }
        sqlx::query("UPDATE relay_state SET published_seq = $1, updated_at = now()")
            .bind(published)
            .execute(db)
            .await?;
        metrics.relay_published_seq.set(published as u64);
    }
}
