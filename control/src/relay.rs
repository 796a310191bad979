//! The outbox relay: publishes `link_outbox` rows, in sequence order, to the
//! JetStream stream of link changes, which control owns.
//!
//! Guarantees and how they are kept:
//! - **Nothing lost, nothing reordered.** Outbox sequences are assigned in
//!   commit order (see the migration), so reading `seq > published` never
//!   skips a row that commits later. Each message carries
//!   `Nats-Expected-Last-Sequence` (the stream sequence it must follow) and,
//!   after the first of a pipelined batch, `Nats-Expected-Last-Msg-Id` (the
//!   outbox sequence of the message before it). If one publish is lost (a
//!   dropped connection), every later one is refused by the sequence check.
//!   If something else lands in the stream mid-batch, the sequence check
//!   alone would not do: it refuses the next message, but the one after it
//!   expects exactly the intruder's sequence and would be stored, leaving a
//!   gap. The message-id check refuses it and every later one (the intruder
//!   has another id or none). The first message of a batch carries only the
//!   sequence check: the server forgets the last message id on restart
//!   unless it falls in the duplicate window.
//! - **Other publishers on the subject.** The stream's messages are ours
//!   when their `Nats-Msg-Id` is the outbox sequence their delta carries;
//!   anything else is foreign (a stray `nats pub`, a misconfigured service).
//!   A refused publish triggers a resynchronisation: the relay walks back
//!   from the stream's end to its own newest message, resumes after that
//!   delta sequence, and expects the stream's real last sequence, foreign
//!   messages included. So it never republishes what the stream holds and
//!   never leaves a gap. Engines skip what they cannot decode.
//! - **Survives restarts and outages.** Every (re)connect resynchronises the
//!   same way; the stream is the truth of what was published. `relay_state`
//!   records the acknowledged watermark too, used when the stream holds none
//!   of our messages (empty, recreated, aged out). `Nats-Msg-Id` adds the
//!   server's duplicate window on top.
//! - **One owner of the stream's settings.** [`ensure_stream`] creates the
//!   stream with explicit limits (file storage, limits retention, discard
//!   old, max age, max bytes, two-minute duplicate window). A stream that
//!   exists with other settings is refused loudly (error log,
//!   `control_links_stream_mismatch` 1, `/readyz` 503 saying why) and nothing
//!   is published into it, unless `links_stream_adopt` says to update it.
//! - **Signed.** Each message carries `Links-Signature`, control's Ed25519
//!   signature over the delta bytes (`snapshots::signing`), so an engine can
//!   tell a change from control from anything else on the subject, whatever
//!   NATS lets through. The relay connects as its own NATS user
//!   (`servicekit::nats`), allowed to publish only here.
//! - **Prompt.** Writers `pg_notify('link_outbox')` in their transaction; the
//!   relay `LISTEN`s and wakes at once, with a slow poll as a safety net.

use crate::config::Config;
use crate::metrics::Metrics;
use anyhow::Context as _;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::{PublishMessage, StreamMessage};
use async_nats::jetstream::stream::{
    self, DiscardPolicy, LastRawMessageErrorKind, RetentionPolicy, StorageType,
};
use async_nats::jetstream::{self, ErrorCode};
use servicekit::nats::NatsSettings;
use snapshots::delta::LinkDelta;
use snapshots::signing::{DeltaSigner, SIGNATURE_HEADER};
use sqlx::PgPool;
use sqlx::postgres::PgListener;
use std::sync::Arc;
use std::time::Duration;

/// Rows published per round (pipelined, then acknowledged together).
const BATCH: i64 = 256;
/// How long the relay sleeps without a notification before looking anyway.
const POLL: Duration = Duration::from_secs(5);
/// The duplicate window the stream is created with.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// How many messages back from the stream's end a resynchronisation looks
/// for our newest one before falling back to the recorded watermark.
const RESYNC_SCAN: u64 = 10_000;

/// The settings control keeps the stream at.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamSettings {
    pub max_age: Duration,
    pub max_bytes: i64,
    /// Copies a JetStream cluster keeps (1: a single server).
    pub replicas: usize,
    /// Update a stream whose settings differ instead of refusing it.
    pub adopt: bool,
}

impl StreamSettings {
    pub fn from_config(c: &Config) -> Self {
        StreamSettings {
            max_age: Duration::from_secs(c.links_stream_max_age_secs),
            max_bytes: c.links_stream_max_bytes,
            replicas: c.links_stream_replicas,
            adopt: c.links_stream_adopt,
        }
    }
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings::from_config(&Config::default())
    }
}

/// Where to publish, as whom, and the key that signs each change.
#[derive(Debug, Clone)]
pub struct RelayTarget {
    pub nats: NatsSettings,
    pub stream: String,
    pub subject: String,
    pub settings: StreamSettings,
    /// Signs every published change (`Links-Signature`); `None` publishes
    /// unsigned (development only: engines refuse them unless told not to).
    pub signer: Option<Arc<DeltaSigner>>,
}

impl RelayTarget {
    /// An anonymous, unsigned target with the default stream settings.
    pub fn new(nats_url: String, stream: String, subject: String) -> Self {
        RelayTarget {
            nats: NatsSettings {
                servers: nats_url,
                user: None,
                password_file: None,
            },
            stream,
            subject,
            settings: StreamSettings::default(),
            signer: None,
        }
    }

    /// Signs every change with `signer`.
    pub fn signed_by(mut self, signer: DeltaSigner) -> Self {
        self.signer = Some(Arc::new(signer));
        self
    }

    /// The relay of a validated config; `None` without `nats`.
    pub fn from_config(c: &Config) -> Result<Option<Self>, servicekit::ConfigError> {
        let Some(nats) = c.nats_settings() else {
            return Ok(None);
        };
        Ok(Some(RelayTarget {
            nats,
            stream: c.links_stream.clone(),
            subject: c.links_subject.clone(),
            settings: StreamSettings::from_config(c),
            signer: c.links_signer()?.map(Arc::new),
        }))
    }
}

/// Why the stream cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(
        "stream {name} exists with other settings than control keeps it at ({differences}); \
         nothing is published into it: fix or delete the stream, or set links_stream_adopt \
         (--links-stream-adopt) to update it"
    )]
    Mismatch { name: String, differences: String },
    #[error("stream {name} has other settings and adopting it failed: {source:#}")]
    AdoptFailed { name: String, source: anyhow::Error },
    #[error("stream {name}: {source:#}")]
    Nats { name: String, source: anyhow::Error },
}

impl StreamError {
    /// The stream is there but control will not use it (as opposed to NATS
    /// being unreachable): what `/readyz` and the mismatch gauge report.
    pub fn refuses_stream(&self) -> bool {
        matches!(
            self,
            StreamError::Mismatch { .. } | StreamError::AdoptFailed { .. }
        )
    }
}

/// The stream as control wants it.
pub fn stream_config(name: &str, subject: &str, settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: name.to_owned(),
        subjects: vec![subject.to_owned()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        discard: DiscardPolicy::Old,
        max_age: settings.max_age,
        max_bytes: settings.max_bytes,
        duplicate_window: DUPLICATE_WINDOW,
        num_replicas: settings.replicas,
        ..Default::default()
    }
}

/// What differs between the stream's settings and `want`, in words.
fn differences(have: &stream::Config, want: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    let mut differ = |name: &str, have: String, want: String| {
        if have != want {
            out.push(format!("{name} is {have}, wants {want}"));
        }
    };
    differ(
        "subjects",
        format!("{:?}", have.subjects),
        format!("{:?}", want.subjects),
    );
    differ(
        "storage",
        format!("{:?}", have.storage),
        format!("{:?}", want.storage),
    );
    differ(
        "retention",
        format!("{:?}", have.retention),
        format!("{:?}", want.retention),
    );
    differ(
        "discard",
        format!("{:?}", have.discard),
        format!("{:?}", want.discard),
    );
    differ(
        "max_age",
        format!("{:?}", have.max_age),
        format!("{:?}", want.max_age),
    );
    differ(
        "max_bytes",
        have.max_bytes.to_string(),
        want.max_bytes.to_string(),
    );
    differ(
        "duplicate_window",
        format!("{:?}", have.duplicate_window),
        format!("{:?}", want.duplicate_window),
    );
    // The server reports a stream created without a count as 1.
    differ(
        "replicas",
        have.num_replicas.max(1).to_string(),
        want.num_replicas.max(1).to_string(),
    );
    // Limits control does not set must be off: a message or per-subject
    // cap would silently drop changes engines still need.
    let unlimited = |v: i64| {
        if v <= 0 {
            "unlimited".to_owned()
        } else {
            v.to_string()
        }
    };
    differ("max_msgs", unlimited(have.max_messages), "unlimited".into());
    differ(
        "max_msgs_per_subject",
        unlimited(have.max_messages_per_subject),
        "unlimited".into(),
    );
    differ("sealed", have.sealed.to_string(), "false".into());
    out
}

/// Creates the stream with control's settings, or checks an existing one:
/// the same settings, or (with `settings.adopt`) updated to them, or refused.
pub async fn ensure_stream(
    js: &jetstream::Context,
    name: &str,
    subject: &str,
    settings: &StreamSettings,
) -> Result<stream::Stream, StreamError> {
    let nats = |source: anyhow::Error| StreamError::Nats {
        name: name.to_owned(),
        source,
    };
    let want = stream_config(name, subject, settings);
    match js.get_stream(name).await {
        Ok(mut stream) => {
            let have = stream
                .info()
                .await
                .map_err(|e| nats(e.into()))?
                .config
                .clone();
            let diff = differences(&have, &want);
            if diff.is_empty() {
                return Ok(stream);
            }
            if !settings.adopt {
                return Err(StreamError::Mismatch {
                    name: name.to_owned(),
                    differences: diff.join("; "),
                });
            }
            tracing::warn!(
                stream = name,
                differences = diff.join("; "),
                "adopting the stream: updating its settings"
            );
            js.update_stream(&want)
                .await
                .map_err(|e| StreamError::AdoptFailed {
                    name: name.to_owned(),
                    source: anyhow::Error::from(e)
                        .context(format!("updating its settings ({})", diff.join("; "))),
                })?;
            js.get_stream(name).await.map_err(|e| nats(e.into()))
        }
        Err(e)
            if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref j)
                if j.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            js.create_stream(want)
                .await
                .map_err(|e| nats(anyhow::Error::from(e).context("creating it")))
        }
        Err(e) => Err(nats(e.into())),
    }
}

/// Runs forever: connect, relay, and on any error back off and start again.
pub async fn run(db: PgPool, target: RelayTarget, metrics: Arc<Metrics>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match relay(&db, &target, &metrics).await {
            Ok(()) => backoff = Duration::from_millis(100),
            Err(e) => {
                metrics.relay_errors.inc();
                if e.downcast_ref::<StreamError>()
                    .is_some_and(StreamError::refuses_stream)
                {
                    tracing::error!(
                        error = format!("{e:#}"),
                        ?backoff,
                        "relay refuses the links stream"
                    );
                } else {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        ?backoff,
                        "relay stopped; restarting"
                    );
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The outbox sequence of one of our messages, or `None` for a foreign one:
/// ours carry a delta whose sequence is their `Nats-Msg-Id`.
fn ours(message: &StreamMessage) -> Option<u64> {
    let id: u64 = message
        .headers
        .get(async_nats::header::NATS_MESSAGE_ID)?
        .as_str()
        .parse()
        .ok()?;
    let delta = LinkDelta::decode(&message.payload).ok()?;
    (delta.seq == id).then_some(id)
}

/// Where publishing resumes: after outbox sequence `published`, expecting
/// the stream's last sequence to be `stream_seq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Position {
    published: i64,
    stream_seq: u64,
}

/// Reads the position from the stream: our newest message (walking back
/// past foreign ones), else the recorded watermark.
async fn resync(stream: &mut stream::Stream, db: &PgPool) -> anyhow::Result<Position> {
    let state = stream.info().await.context("stream info")?.state.clone();
    let last = state.last_sequence;
    let floor = state
        .first_sequence
        .max(last.saturating_sub(RESYNC_SCAN))
        .max(1);
    let mut foreign = 0u64;
    let mut seq = last;
    while seq >= floor && seq > 0 {
        match stream.get_raw_message(seq).await {
            Ok(message) => match ours(&message) {
                Some(published) => {
                    if foreign > 0 {
                        tracing::warn!(
                            foreign,
                            after = seq,
                            "skipping foreign messages at the end of the links stream"
                        );
                    }
                    return Ok(Position {
                        published: published as i64,
                        stream_seq: last,
                    });
                }
                None => foreign += 1,
            },
            // Deleted or aged out meanwhile.
            Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => {}
            Err(e) => {
                return Err(anyhow::Error::from(e).context(format!("reading stream message {seq}")));
            }
        }
        seq -= 1;
    }
    let watermark: i64 = sqlx::query_scalar("SELECT published_seq FROM relay_state")
        .fetch_one(db)
        .await?;
    if foreign > 0 {
        tracing::warn!(
            foreign,
            watermark,
            "none of the relay's messages in the links stream's tail; resuming from the recorded watermark"
        );
    }
    Ok(Position {
        published: watermark,
        stream_seq: last,
    })
}

/// The message for outbox row `seq`, expecting `after` as the stream's last
/// sequence and, unless it is the first of its batch, `previous` as the last
/// message id.
fn message(
    seq: i64,
    delta: &[u8],
    after: u64,
    previous: Option<i64>,
    signer: Option<&DeltaSigner>,
) -> PublishMessage {
    let mut msg = PublishMessage::build()
        .payload(delta.to_vec().into())
        .message_id(seq.to_string())
        .expected_last_sequence(after);
    if let Some(signer) = signer {
        msg = msg.header(SIGNATURE_HEADER, signer.sign(delta).as_str());
    }
    match previous {
        Some(p) => msg.expected_last_message_id(p.to_string()),
        None => msg,
    }
}

async fn relay(db: &PgPool, target: &RelayTarget, metrics: &Metrics) -> anyhow::Result<()> {
    let client = target
        .nats
        .connect("control relay", |options| {
            options.retry_on_initial_connect()
        })
        .await
        .with_context(|| format!("connecting to NATS at {}", target.nats.servers))?;
    let js = jetstream::new(client);
    let mut stream =
        match ensure_stream(&js, &target.stream, &target.subject, &target.settings).await {
            Ok(s) => {
                metrics.links_stream_problem.set(None);
                s
            }
            Err(e) => {
                if e.refuses_stream() {
                    metrics.links_stream_problem.set(Some(e.to_string()));
                }
                return Err(e.into());
            }
        };
    let mut listener = PgListener::connect_with(db)
        .await
        .context("LISTEN connection")?;
    listener.listen("link_outbox").await?;

    let Position {
        mut published,
        mut stream_seq,
    } = resync(&mut stream, db).await?;
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
    tracing::info!(published, stream_seq, stream = %target.stream, "relay resuming");
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
            let previous = i.checked_sub(1).map(|p| rows[p].0);
            let msg = message(
                *seq,
                delta,
                stream_seq + i as u64,
                previous,
                target.signer.as_deref(),
            );
            acks.push(
                js.send_publish(target.subject.clone(), msg)
                    .await
                    .context("publish")?,
            );
        }
        let mut refused = false;
        for (ack, (seq, _)) in acks.into_iter().zip(&rows) {
            match ack.await {
                Ok(ack) => {
                    stream_seq = ack.sequence;
                    published = *seq;
                    metrics.relay_published.inc();
                }
                // Something else is in the stream: every later message of
                // the batch is refused too; find our place again.
                Err(e)
                    if matches!(
                        e.kind(),
                        PublishErrorKind::WrongLastSequence | PublishErrorKind::WrongLastMessageId
                    ) =>
                {
                    tracing::warn!(outbox_seq = seq, error = %e, "publish refused: the links stream moved under the relay; resynchronising");
                    metrics.relay_resyncs.inc();
                    refused = true;
                    break;
                }
                Err(e) => {
                    return Err(anyhow::Error::from(e).context(format!("ack of outbox seq {seq}")));
                }
            }
        }
        sqlx::query("UPDATE relay_state SET published_seq = $1, updated_at = now()")
            .bind(published)
            .execute(db)
            .await?;
        metrics.relay_published_seq.set(published as u64);
        if refused {
            let position = resync(&mut stream, db).await?;
            published = position.published;
            stream_seq = position.stream_seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_differences_are_named() {
        let s = StreamSettings::default();
        let want = stream_config("LINKS", "links.changes", &s);
        assert!(differences(&want, &want).is_empty());
        // What a plain get_or_create_stream makes: no limits.
        let bare = stream::Config {
            name: "LINKS".into(),
            subjects: vec!["links.changes".into()],
            max_bytes: -1,
            max_messages: -1,
            max_messages_per_subject: -1,
            ..Default::default()
        };
        let d = differences(&bare, &want).join("; ");
        assert!(d.contains("max_age") && d.contains("max_bytes"), "{d}");
        assert!(d.contains("duplicate_window"), "{d}");
        let capped = stream::Config {
            max_messages_per_subject: 1,
            ..want.clone()
        };
        assert_eq!(
            differences(&capped, &want),
            vec!["max_msgs_per_subject is 1, wants unlimited".to_string()]
        );
    }
}
