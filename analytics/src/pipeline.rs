//! The consume → enrich → deduplicate → insert → ack loop.
//!
//! Messages are taken in groups (up to `max_group_batches` messages or
//! `max_group_events` events, waiting at most `linger` after the first) so
//! that one deduplication lookup and one insert serve many batches. A group
//! is acknowledged only after all its rows are in ClickHouse or parked.
//!
//! When a try fails, [`refusal::classify`] says why:
//! * ClickHouse **unavailable**: the group is retried with backoff for as
//!   long as it takes, and its messages get in-progress acks so JetStream
//!   does not hand them out again meanwhile. Nothing is parked.
//! * ClickHouse **refused** the rows: the batches are halved, and halved
//!   again, each part looked up and inserted on its own, so every batch
//!   ClickHouse takes is stored and every batch it refuses alone is found.
//!   A refused batch is tried again after the backoff; once it has been
//!   refused `park_after_attempts` times it is parked (its addresses cut,
//!   [`Batch::parked_row`]) and acked with the rest of the group.
//!
//! Every part's lookup asks `clicks` again, so the deduplication holds
//! across the split: rows a part stored (or a failed insert stored anyway)
//! are never inserted twice.
//!
//! **Decoding overlaps storing.** While a group is being stored (lookup,
//! insert, acks: mostly waiting for ClickHouse) the next one is read, each
//! message decoded as it arrives; the next group is closed when full, or
//! once the linger is over *and* the previous group is stored, so while
//! ClickHouse is busy the next group takes everything that arrives (one
//! larger insert rather than a queue of small ones). It is stored only once
//! the previous one is done, so there is never more than one group in
//! ClickHouse's hands, groups are stored in order, and each lookup sees
//! every row the groups before it inserted. The group waiting its turn gets
//! in-progress acks like the one being stored, so a slow store does not let
//! JetStream hand its messages to another sidecar meanwhile.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, AckKind, Message};
use futures::StreamExt as _;
use snapshots::click::CLICK_MAGIC;

use crate::attribution::SubjectNodes;
use crate::backoff::Backoff;
use crate::config::Config;
use crate::encoded::ClickRows;
use crate::enrich::Enricher;
use crate::group::{Batch, Group, GroupBuilder, Origin};
use crate::metrics::Metrics;
use crate::nats::{self, StreamError};
use crate::publish::Publisher;
use crate::refusal::{self, Failure};
use crate::store::Store;

/// Owns the enricher (on the consuming task) and the store side.
#[derive(Debug)]
pub struct Pipeline {
    enricher: Enricher,
    /// Which node each message's subject names.
    nodes: SubjectNodes,
    writer: Writer,
}

/// What stores and acks a group; a clone runs on its own task while the
/// next group is decoded.
#[derive(Debug, Clone)]
struct Writer {
    config: Config,
    store: Store,
    metrics: Arc<Metrics>,
    /// Where stored clicks are published (`crate::publish`), if anywhere.
    publisher: Option<Publisher>,
}

/// How one try at a group ended, when ClickHouse answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// Everything is stored or parked.
    Stored,
    /// Some batch was refused and has tries left.
    RefusalsLeft,
}

impl Pipeline {
    pub fn new(config: Config, store: Store, enricher: Enricher, metrics: Arc<Metrics>) -> Self {
        Pipeline {
            enricher,
            nodes: SubjectNodes::new(&config.subjects),
            writer: Writer {
                config,
                store,
                metrics,
                publisher: None,
            },
        }
    }

    /// Publishes every stored click through `publisher` (after its insert).
    pub fn with_publisher(mut self, publisher: Option<Publisher>) -> Self {
        self.writer.publisher = publisher;
        self
    }

    /// Reads `consumer` until its message stream fails (NATS gone, consumer
    /// deleted); the caller rebuilds it with backoff.
    pub async fn consume(
        &mut self,
        consumer: &jetstream::consumer::PullConsumer,
    ) -> anyhow::Result<()> {
        let config = &self.writer.config;
        let mut messages = consumer
            .stream()
            .max_messages_per_batch(config.max_group_batches)
            .heartbeat(Duration::from_secs(5))
            .expires(Duration::from_secs(30))
            .messages()
            .await?;
        let (max_batches, max_events, linger) = (
            config.max_group_batches,
            config.max_group_events,
            config.linger(),
        );
        let every = self.writer.progress_every();
        let mut storing: Option<Storing> = None;
        loop {
            let first = match messages.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => {
                    finish(storing).await;
                    return Err(e.into());
                }
                None => {
                    finish(storing).await;
                    anyhow::bail!("message stream ended");
                }
            };
            let mut group = GroupBuilder::default();
            let (mut batches, mut events) = (1, self.add(&mut group, first));
            let deadline = tokio::time::Instant::now() + linger;
            let mut progress = tokio::time::interval_at(deadline + every, every);
            let mut failure = None;
            // Until full, or the linger is over and the previous group is
            // stored: a group formed while ClickHouse is busy takes what
            // arrives meanwhile, so inserts grow with the load instead of
            // queueing up.
            while batches < max_batches && events < max_events {
                let busy = storing.as_ref().is_some_and(|s| !s.is_done());
                let next = if !busy || tokio::time::Instant::now() < deadline {
                    match tokio::time::timeout_at(deadline, messages.next()).await {
                        Ok(next) => next,
                        Err(_) if busy => continue,
                        Err(_) => break,
                    }
                } else {
                    let previous = storing.as_mut().expect("busy");
                    tokio::select! {
                        next = messages.next() => next,
                        () = previous.wait() => continue,
                        _ = progress.tick() => {
                            for m in group.messages() {
                                let _ = m.ack_with(AckKind::Progress).await;
                            }
                            continue;
                        }
                    }
                };
                match next {
                    Some(Ok(m)) => {
                        batches += 1;
                        events += self.add(&mut group, m);
                    }
                    Some(Err(e)) => {
                        failure = Some(anyhow::Error::from(e));
                        break;
                    }
                    None => break,
                }
            }
            let group = self.finish_group(group);
            if let Some(previous) = storing.take() {
                keeping(&group.messages, every, previous.finish()).await;
            }
            storing = Some(Storing::spawn(self.writer.clone(), group));
            if let Some(e) = failure {
                finish(storing).await;
                return Err(e);
            }
        }
    }

    /// Decodes and enriches one message into `group` (CPU work, ~1 ms for
    /// a batch of 1,000: off the runtime's worker, so the previous group's
    /// store goes on meanwhile); returns its event count.
    fn add(&mut self, group: &mut GroupBuilder, msg: Message) -> usize {
        let events = event_count_hint(&msg.payload);
        let origin = self.origin(&msg);
        let now = servicekit::clock::unix_secs() as u32;
        let (enricher, stream) = (&mut self.enricher, &self.writer.config.stream);
        blocking(|| group.push(enricher, stream, now, msg.payload.clone(), origin));
        group.push_message(msg);
        events
    }

    /// Where a message sat, and the node its subject names; counts redeliveries.
    fn origin(&self, msg: &Message) -> Origin {
        let info = msg.info().ok();
        if info.as_ref().is_some_and(|i| i.delivered > 1) {
            self.writer
                .metrics
                .batches_redelivered
                .fetch_add(1, Relaxed);
        }
        Origin {
            stream_seq: info.as_ref().map_or(0, |i| i.stream_sequence),
            subject: msg.subject.to_string(),
            msg_id: msg
                .headers
                .as_ref()
                .and_then(|h| h.get("Nats-Msg-Id"))
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default(),
            node: self.nodes.node_of(&msg.subject).map(str::to_owned),
        }
    }

    /// The group built, with the enricher's cache counts flushed to the metrics.
    fn finish_group(&mut self, group: GroupBuilder) -> Group {
        let (hits, misses) = self.enricher.take_cache_counts();
        self.writer.metrics.ua_cache_hits.fetch_add(hits, Relaxed);
        self.writer
            .metrics
            .ua_cache_misses
            .fetch_add(misses, Relaxed);
        group.finish()
    }

    /// Decodes and enriches a group's messages; undecodable ones, and
    /// batches naming another node than their subject, become parked rows.
    pub fn decode(&mut self, messages: Vec<Message>) -> Group {
        let mut group = GroupBuilder::default();
        for msg in messages {
            let origin = self.origin(&msg);
            let now = servicekit::clock::unix_secs() as u32;
            let stream = &self.writer.config.stream;
            group.push(&mut self.enricher, stream, now, msg.payload.clone(), origin);
            group.push_message(msg);
        }
        self.finish_group(group)
    }

    /// Decodes and enriches payloads (with where they came from) into a
    /// group without messages: what [`decode`](Self::decode) does after
    /// reading the messages, usable without NATS.
    pub fn decode_payloads(
        &mut self,
        payloads: impl IntoIterator<Item = (bytes::Bytes, Origin)>,
    ) -> Group {
        let now = servicekit::clock::unix_secs() as u32;
        let stream = &self.writer.config.stream;
        let group = Group::decode(&mut self.enricher, stream, now, payloads);
        let (hits, misses) = self.enricher.take_cache_counts();
        self.writer.metrics.ua_cache_hits.fetch_add(hits, Relaxed);
        self.writer
            .metrics
            .ua_cache_misses
            .fetch_add(misses, Relaxed);
        group
    }

    /// Stores a group (retrying, splitting, parking: see the module doc),
    /// then acks its messages.
    pub async fn store_and_ack(&mut self, group: Group) {
        self.writer.store_and_ack(group).await;
    }

    /// Stores a group's rows and parked batches: retries with backoff while
    /// ClickHouse is unavailable, splits the group when it refuses rows, and
    /// parks each batch refused `park_after_attempts` times. Returns when
    /// every batch is stored or parked. Does not ack.
    pub async fn store(&mut self, group: &mut Group) {
        self.writer.store(group).await;
    }

    /// Acknowledges a stored group's messages.
    pub async fn ack(&self, group: &Group) {
        self.writer.ack(group).await;
    }

    /// Consumes until the stream turns out to have settings the sidecar
    /// does not own (then returns the error): (re)creates the stream and
    /// consumer with backoff whenever reading fails.
    pub async fn run(&mut self, js: &jetstream::Context) -> Result<(), StreamError> {
        let mut backoff = Backoff::new();
        loop {
            match nats::consumer(js, &self.writer.config).await {
                Ok(consumer) => {
                    backoff.reset();
                    if let Err(error) = self.consume(&consumer).await {
                        self.writer.metrics.nats_errors.fetch_add(1, Relaxed);
                        tracing::warn!(%error, "reading the click stream failed; reconnecting");
                    }
                }
                Err(error) if error.is_unavailable() => {
                    self.writer.metrics.nats_errors.fetch_add(1, Relaxed);
                    tracing::warn!(%error, "setting up the click consumer failed; retrying");
                }
                Err(error) => return Err(error),
            }
            backoff.wait().await;
        }
    }
}

impl Writer {
    async fn store_and_ack(&self, mut group: Group) {
        self.store(&mut group).await;
        self.ack(&group).await;
    }

    /// How often messages being handled get an in-progress ack.
    fn progress_every(&self) -> Duration {
        self.config.ack_wait() / 3
    }

    /// [`Pipeline::store`].
    async fn store(&self, group: &mut Group) {
        let mut backoff = Backoff::new();
        let mut last_progress = Instant::now();
        let progress_every = self.progress_every();
        self.metrics
            .duplicates_skipped
            .fetch_add(std::mem::take(&mut group.duplicates_in_group), Relaxed);
        self.metrics
            .batches_wrong_node
            .fetch_add(std::mem::take(&mut group.wrong_node), Relaxed);
        // A redelivered batch may have been stored, in part or whole, by
        // another sidecar, and so may a batch being retried (by a try of
        // ours that failed on our side but still runs on the server). Before
        // the lookup asks: the inserts still running on the server finish
        // (`Store::settle_inserts`), and with replication this replica
        // fetches what the others announced (`Store::sync_replica`).
        let mut catch_up = group
            .messages
            .iter()
            .any(|m| m.info().is_ok_and(|i| i.delivered > 1));
        loop {
            // The whole try (waits, lookup, insert) may outlast the ack
            // wait on a loaded server: keep the batches ours meanwhile, or
            // JetStream hands them to another sidecar while we insert them.
            let messages = std::mem::take(&mut group.messages);
            let result = keeping(&messages, progress_every, async {
                if catch_up {
                    self.store.settle_inserts().await?;
                    self.store.sync_replica().await?;
                }
                self.store_once(group).await
            })
            .await;
            group.messages = messages;
            match result {
                Ok(Outcome::Stored) => return,
                Ok(Outcome::RefusalsLeft) => {}
                Err(error) => {
                    catch_up = true;
                    let batches = group.batches.iter().filter(|b| !b.done).count() as u64;
                    self.metrics.batches_retried.fetch_add(batches, Relaxed);
                    tracing::warn!(%error, batches, "ClickHouse unavailable; retrying the click batches");
                }
            }
            if last_progress.elapsed() >= progress_every {
                // Tell JetStream we are still on it, so it does not
                // redeliver these to another sidecar meanwhile.
                for m in &group.messages {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
                last_progress = Instant::now();
            }
            backoff.wait().await;
        }
    }

    /// [`Pipeline::ack`].
    async fn ack(&self, group: &Group) {
        let mut acked = 0;
        for m in &group.messages {
            match m.ack().await {
                Ok(()) => acked += 1,
                // The rows are stored; a lost ack means a redelivery, which
                // the deduplication lookup turns into a no-op.
                Err(error) => {
                    tracing::warn!(%error, "ack failed; the batch will be redelivered and deduplicated")
                }
            }
        }
        self.metrics.batches_acked.fetch_add(acked, Relaxed);
    }

    /// One try: store the batches not done yet, splitting on refusals; park
    /// the batches out of tries; write the parked rows. Each step marks what
    /// it finished, so the next try does not repeat it. `Err` only when
    /// ClickHouse is unavailable.
    async fn store_once(&self, group: &mut Group) -> clickhouse::error::Result<Outcome> {
        // A stack of parts (indices into the batches), halved on refusal.
        let mut parts: Vec<Vec<usize>> = vec![
            (0..group.batches.len())
                .filter(|&i| !group.batches[i].done)
                .collect(),
        ];
        while let Some(part) = parts.pop() {
            if part.is_empty() {
                continue;
            }
            let Err(error) = self.insert_part(&mut group.batches, &part).await else {
                continue;
            };
            if refusal::classify(&error) == Failure::Unavailable {
                return Err(error);
            }
            if let [one] = part[..] {
                let batch = &mut group.batches[one];
                batch.refusals += 1;
                batch.last_refusal = error.to_string();
                self.metrics.batches_refused.fetch_add(1, Relaxed);
                tracing::warn!(
                    %error, subject = %batch.origin.subject, stream_seq = batch.origin.stream_seq,
                    msg_id = %batch.origin.msg_id, refusals = batch.refusals,
                    "ClickHouse refused a click batch"
                );
            } else {
                // Second half pushed first: the first half is tried first.
                let (first, second) = part.split_at(part.len() / 2);
                parts.push(second.to_vec());
                parts.push(first.to_vec());
            }
        }

        let now = servicekit::clock::unix_secs() as u32;
        for batch in group.batches.iter_mut().filter(|b| !b.done) {
            if batch.refusals >= self.config.park_after_attempts {
                tracing::warn!(
                    subject = %batch.origin.subject, stream_seq = batch.origin.stream_seq,
                    msg_id = %batch.origin.msg_id, refusals = batch.refusals,
                    "parking a click batch ClickHouse keeps refusing"
                );
                group
                    .parked
                    .push(batch.parked_row(&self.config.stream, now));
                batch.done = true;
                batch.rows.clear();
            }
        }
        if !group.parked.is_empty() {
            // Any failure here is retried: a parked row is strings and
            // numbers, so only the server's state can make it fail.
            self.store.insert_parked(&group.parked).await?;
            self.metrics
                .batches_parked
                .fetch_add(group.parked.len() as u64, Relaxed);
            group.parked.clear();
        }
        Ok(if group.is_stored() {
            Outcome::Stored
        } else {
            Outcome::RefusalsLeft
        })
    }

    /// Looks up and inserts the rows of `part` (indices into `batches`) in
    /// one go; on success the batches are done.
    async fn insert_part(
        &self,
        batches: &mut [Batch],
        part: &[usize],
    ) -> clickhouse::error::Result<()> {
        let rows: Vec<&ClickRows> = part.iter().map(|&i| &batches[i].rows).collect();
        let total: usize = rows.iter().map(|r| r.len()).sum();
        if total > 0 {
            let lookup_started = Instant::now();
            let existing = self.store.existing_ids(&rows).await?;
            tracing::debug!(rows = total, found = existing.len(), took = ?lookup_started.elapsed(), "deduplication lookup");
            // The rows not stored yet, as one body: whole batches when none
            // is (the common case), else row by row.
            let mut body = Vec::with_capacity(rows.iter().map(|r| r.bytes().len()).sum());
            let mut new = 0;
            for batch in &rows {
                if existing.is_empty() {
                    body.extend_from_slice(batch.bytes());
                    new += batch.len();
                    continue;
                }
                for row in batch.iter() {
                    if !existing.contains(&row.event_id()) {
                        body.extend_from_slice(row.bytes());
                        new += 1;
                    }
                }
            }
            let started = Instant::now();
            self.store.insert_clicks(body.into()).await?;
            self.metrics.observe_insert(started.elapsed());
            tracing::debug!(rows = new, took = ?started.elapsed(), "insert");
            self.metrics.rows_inserted.fetch_add(new as u64, Relaxed);
            self.metrics
                .duplicates_skipped
                .fetch_add((total - new) as u64, Relaxed);
            // Every row of the part, stored now or before: a batch
            // redelivered after a crash between insert and publish is
            // published then (at least once; `crate::publish`).
            if let Some(publisher) = &self.publisher {
                publisher.offer(rows.iter().flat_map(|r| r.iter()));
            }
        }
        for &i in part {
            batches[i].done = true;
            batches[i].rows.clear();
        }
        Ok(())
    }
}

/// A group being stored and acked on its own task; dropping it (the
/// sidecar stopping) aborts that task, leaving the group unacked, as
/// dropping the work itself did before it had a task.
struct Storing(Option<tokio::task::JoinHandle<()>>);

impl Storing {
    fn spawn(writer: Writer, group: Group) -> Storing {
        Storing(Some(tokio::spawn(async move {
            writer.store_and_ack(group).await
        })))
    }

    /// Waits until the group is stored and acked.
    async fn finish(mut self) {
        self.wait().await;
    }

    /// [`finish`](Self::finish), keeping the handle (cancel-safe: the task
    /// goes on if this is dropped).
    async fn wait(&mut self) {
        let Some(task) = self.0.as_mut() else { return };
        let result = task.await;
        self.0 = None;
        if let Err(error) = result
            && error.is_panic()
        {
            std::panic::resume_unwind(error.into_panic());
        }
    }

    /// Whether the group is stored and acked.
    fn is_done(&self) -> bool {
        self.0.as_ref().is_none_or(|task| task.is_finished())
    }
}

impl Drop for Storing {
    fn drop(&mut self) {
        if let Some(task) = &self.0 {
            task.abort();
        }
    }
}

/// Waits for the group being stored, if any.
async fn finish(storing: Option<Storing>) {
    if let Some(storing) = storing {
        storing.finish().await;
    }
}

/// Runs CPU-bound `work` where it does not hold up the runtime's other
/// tasks: `block_in_place` on a multi-threaded runtime (the sidecar's), so
/// this worker's queued tasks move to another thread; inline otherwise.
fn blocking<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

/// Runs `work`, telling JetStream every `every` that `messages` are still
/// being handled (in-progress acks), so they are not handed to another
/// sidecar while it lasts.
async fn keeping<T>(
    messages: &[Message],
    every: Duration,
    work: impl std::future::Future<Output = T>,
) -> T {
    let work = std::pin::pin!(work);
    let mut work = work;
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            out = &mut work => return out,
            _ = tick.tick() => {
                for m in messages {
                    let _ = m.ack_with(AckKind::Progress).await;
                }
            }
        }
    }
}

/// The record count from a batch header, without checking the batch (0 if
/// it does not look like one): enough to size a group.
fn event_count_hint(payload: &[u8]) -> usize {
    if payload.len() >= 12 && payload[..4] == CLICK_MAGIC {
        u32::from_le_bytes([payload[8], payload[9], payload[10], payload[11]]) as usize
    } else {
        0
    }
}
