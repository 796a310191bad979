//! The click publisher thread: batches in from the cores, JetStream out, the
//! spool in between when NATS cannot keep up.
//!
//! Loop: replay the spool while NATS is healthy (oldest first, one ack at a
//! time, so replay is in order); take up to a window of new batches; while
//! the spool is non-empty or NATS is unhealthy, append them to the spool
//! (keeping their order behind the spooled ones), else publish the window
//! with pipelined acks and spool whichever fail. A failure marks NATS
//! unhealthy; health is re-checked (a look-up of the stream, which analytics
//! owns and creates: the engine never does, [`crate::streams`]) with capped
//! exponential backoff. A missing stream or one without limits keeps the
//! publisher spooling. On shutdown, what is left is published or spooled.

use super::handoff::BatchReceiver;
use super::spool::Spool;
use super::{ClickStats, relaxed_add};
use crate::streams::{self, StreamState};
use async_nats::jetstream::{self, message::PublishMessage as Publish};
use bytes::Bytes;
use crossbeam_channel::{Sender, TryRecvError};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// Batches published before their acks are awaited.
const WINDOW: usize = 64;
/// How long a publish may wait for its ack before the batch is spooled.
const ACK_TIMEOUT: Duration = Duration::from_secs(2);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest sleep with nothing to do: the doorbell wakes the publisher
/// for every batch, so this is only a safety net.
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// Where and how to publish.
#[derive(Debug, Clone)]
pub struct PublisherConfig {
    /// Where NATS is and the engine's identity there.
    pub nats: servicekit::nats::NatsSettings,
    pub stream: String,
    pub subject_prefix: String,
    pub node_id: String,
    pub spool_dir: PathBuf,
    pub spool_max_bytes: u64,
}

/// Starts the thread. It ends when every core's sender is gone and what
/// they sent is published or spooled.
pub fn spawn(
    config: PublisherConfig,
    stats: Arc<ClickStats>,
    batches: BatchReceiver,
    recycle: Sender<Vec<u8>>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let spool = Spool::open(&config.spool_dir, config.spool_max_bytes)?;
    std::thread::Builder::new()
        .name("engine-clicks".into())
        .spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("click publisher runtime");
            runtime.block_on(Publisher::new(config, stats, spool).run(batches, recycle));
        })
}

struct Publisher {
    config: PublisherConfig,
    stats: Arc<ClickStats>,
    spool: Spool,
    subject: String,
    healthy: bool,
    retry_at: Instant,
    backoff: Duration,
}

fn events_in(batch: &[u8]) -> u64 {
    batch.get(8..12).map_or(0, |b| {
        u64::from(u32::from_le_bytes(b.try_into().expect("4 bytes")))
    })
}

fn message_id(batch: &[u8]) -> String {
    batch
        .get(12..28)
        .map(|id| id.iter().map(|b| format!("{b:02x}")).collect())
        .unwrap_or_default()
}

impl Publisher {
    fn new(config: PublisherConfig, stats: Arc<ClickStats>, spool: Spool) -> Publisher {
        let subject = format!("{}.{}", config.subject_prefix, config.node_id);
        stats.spool_bytes.store(spool.bytes(), Relaxed);
        stats.spool_batches.store(spool.len() as u64, Relaxed);
        Publisher {
            config,
            stats,
            spool,
            subject,
            healthy: false,
            retry_at: Instant::now(),
            backoff: Duration::from_millis(200),
        }
    }

    async fn run(mut self, mut batches: BatchReceiver, recycle: Sender<Vec<u8>>) {
        let client = match self
            .config
            .nats
            .connect("engine clicks", |options| {
                options.retry_on_initial_connect()
            })
            .await
        {
            Ok(client) => client,
            Err(e) => {
                tracing::error!(error = %e, "click publisher cannot create a NATS client; spooling only");
                return self.spool_until_closed(batches).await;
            }
        };
        let js = jetstream::ContextBuilder::new()
            .timeout(ACK_TIMEOUT)
            .build(client);
        let mut window: Vec<Vec<u8>> = Vec::with_capacity(WINDOW);
        let mut closed = false;
        while !closed || !window.is_empty() {
            if !self.healthy && Instant::now() >= self.retry_at {
                self.check_health(&js).await;
            }
            if self.healthy {
                self.replay(&js).await;
            }
            // Intake.
            while window.len() < WINDOW {
                match batches.try_recv() {
                    Ok(batch) => window.push(batch),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            if window.is_empty() {
                if !closed {
                    // Until a core hands over a batch, or the health check
                    // is due.
                    let wait = match self.healthy {
                        true => IDLE_WAIT,
                        false => self.retry_at.saturating_duration_since(Instant::now()),
                    };
                    batches.wait(wait.min(IDLE_WAIT)).await;
                }
                continue;
            }
            if self.healthy && self.spool.is_empty() {
                self.publish_window(&js, &mut window).await;
            } else {
                for batch in &window {
                    self.spool_batch(batch);
                }
            }
            for batch in window.drain(..) {
                let _ = recycle.try_send(batch);
            }
            if closed && !self.healthy {
                break;
            }
        }
        // Whatever is still in the channel goes to the spool for next time.
        while let Ok(batch) = batches.try_recv() {
            self.spool_batch(&batch);
        }
        self.stats.connected.store(0, Relaxed);
    }

    async fn spool_until_closed(mut self, mut batches: BatchReceiver) {
        // Nothing else runs on this runtime: blocking on the channel is fine.
        while let Ok(batch) = batches.recv_blocking() {
            self.spool_batch(&batch);
        }
    }

    async fn check_health(&mut self, js: &jetstream::Context) {
        let result = streams::look_up(js, &self.config.stream).await;
        let state = result.as_ref().err().copied().unwrap_or(StreamState::Ok);
        self.stats.stream.set(&self.config.stream, state);
        match result {
            Ok(_) => {
                if !self.healthy {
                    tracing::info!(stream = %self.config.stream, spooled = self.spool.len(), "click stream available");
                }
                self.healthy = true;
                self.backoff = Duration::from_millis(200);
                self.stats.connected.store(1, Relaxed);
            }
            Err(state) => self.unhealthy(&format!("click stream {}", state.name())),
        }
    }

    fn unhealthy(&mut self, why: &str) {
        if self.healthy {
            tracing::warn!(reason = why, "click publishing paused; spooling to disk");
        }
        self.healthy = false;
        self.stats.connected.store(0, Relaxed);
        self.retry_at = Instant::now() + self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn spool_batch(&mut self, batch: &[u8]) {
        let events = events_in(batch);
        match self.spool.push(batch) {
            Ok(true) => relaxed_add(&self.stats.events_spooled, events),
            Ok(false) => relaxed_add(&self.stats.events_dropped, events),
            Err(e) => {
                tracing::error!(error = %e, dir = %self.config.spool_dir.display(), "cannot spool clicks; dropping a batch");
                relaxed_add(&self.stats.events_dropped, events);
            }
        }
        self.stats.spool_bytes.store(self.spool.bytes(), Relaxed);
        self.stats
            .spool_batches
            .store(self.spool.len() as u64, Relaxed);
    }

    async fn publish_one(&self, js: &jetstream::Context, batch: &[u8]) -> Result<(), String> {
        let message = Publish::build()
            .payload(Bytes::copy_from_slice(batch))
            .message_id(message_id(batch));
        let ack = js
            .send_publish(self.subject.clone(), message)
            .await
            .map_err(|e| e.to_string())?;
        ack.await.map(|_| ()).map_err(|e| e.to_string())
    }

    /// Publishes the window with every publish sent before any ack is
    /// awaited; failed batches go to the spool in window order.
    async fn publish_window(&mut self, js: &jetstream::Context, window: &mut [Vec<u8>]) {
        let started = Instant::now();
        let mut acks = Vec::with_capacity(window.len());
        for batch in window.iter() {
            let message = Publish::build()
                .payload(Bytes::copy_from_slice(batch))
                .message_id(message_id(batch));
            acks.push(js.send_publish(self.subject.clone(), message).await);
        }
        let mut failed = None;
        for (batch, ack) in window.iter().zip(acks) {
            let result = match ack {
                Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            match result {
                Ok(()) => {
                    relaxed_add(&self.stats.batches_published, 1);
                    relaxed_add(&self.stats.events_published, events_in(batch));
                }
                Err(e) => {
                    relaxed_add(&self.stats.publish_failures, 1);
                    failed.get_or_insert(e);
                    self.spool_batch(batch);
                }
            }
        }
        relaxed_add(
            &self.stats.publish_latency_us_sum,
            started.elapsed().as_micros() as u64,
        );
        relaxed_add(&self.stats.publish_latency_count, 1);
        if let Some(e) = failed {
            self.unhealthy(&e);
        }
    }

    /// Publishes spooled batches oldest first until the spool is empty, a
    /// publish fails, or new batches have been waiting a while.
    async fn replay(&mut self, js: &jetstream::Context) {
        let deadline = Instant::now() + Duration::from_millis(200);
        while Instant::now() < deadline {
            let front = self.spool.front();
            self.stats
                .spool_quarantined
                .store(self.spool.quarantined(), Relaxed);
            self.stats.spool_bytes.store(self.spool.bytes(), Relaxed);
            let (seq, batch) = match front {
                Ok(Some(front)) => front,
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the click spool");
                    return;
                }
            };
            match self.publish_one(js, &batch).await {
                Ok(()) => {
                    if let Err(e) = self.spool.pop(seq) {
                        tracing::error!(error = %e, "cannot remove a replayed batch from the spool");
                        return;
                    }
                    let events = events_in(&batch);
                    relaxed_add(&self.stats.events_replayed, events);
                    relaxed_add(&self.stats.events_published, events);
                    relaxed_add(&self.stats.batches_published, 1);
                    self.stats.spool_bytes.store(self.spool.bytes(), Relaxed);
                    self.stats
                        .spool_batches
                        .store(self.spool.len() as u64, Relaxed);
                }
                Err(e) => {
                    relaxed_add(&self.stats.publish_failures, 1);
                    self.unhealthy(&e);
                    return;
                }
            }
        }
    }
}
