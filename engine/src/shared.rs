//! State shared between the cores and the control thread (admin, change
//! stream, signals). Nothing here is touched on the request path except each
//! core's own [`CoreMetrics`]; cores learn about changes through their
//! command channel.

use crate::config::Config;
use crate::core::command::{COMMAND_CAPACITY, Command};
use crate::core::state::DeltaRecord;
use crate::metrics::CoreMetrics;
use crate::state_dir::StateDir;
use crate::streams::StreamWatch;
use crossbeam_channel::{Receiver, Sender, bounded};
use snapshots::Snapshot;
use snapshots::signing::SignatureError;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The snapshot being served, as the admin port reports it.
#[derive(Debug, Clone)]
pub struct LoadedSnapshot {
    pub sequence: u64,
    pub links: u64,
    pub built_at_ms: i64,
    pub file_len: u64,
    pub loaded_at_ms: u64,
    /// Where it came from: a path, or `push (<generation file>)`.
    pub source: String,
    /// Opened by a trusted signature rather than the complete check.
    pub by_signature: bool,
}

/// (device, inode, length, mtime in ns) of a file.
pub type Fingerprint = (u64, u64, u64, i128);

/// Reads a file's [`Fingerprint`].
pub fn fingerprint(path: &std::path::Path) -> Option<Fingerprint> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((
        m.dev(),
        m.ino(),
        m.len(),
        i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
    ))
}

/// Everything the control thread needs to reach the cores.
#[derive(Debug)]
pub struct Shared {
    pub config: Arc<Config>,
    /// This process's boot id for `/readyz` (`snapshots::readiness`).
    pub boot_id: String,
    pub senders: Vec<Sender<Command>>,
    pub metrics: Vec<Arc<CoreMetrics>>,
    /// The snapshot every core serves (after the last completed install).
    pub snapshot: Mutex<Option<LoadedSnapshot>>,
    /// Serializes installs so two pushes cannot interleave on the cores.
    pub install_lock: Mutex<()>,
    /// Identity of the file at the configured `snapshot` path when it was
    /// last looked at, so the watcher reads a file once per change (whether
    /// it was installed, refused, or older than a pushed generation).
    pub watched: Mutex<Option<Fingerprint>>,
    /// A `PUT /snapshot` upload is under way (one at a time).
    pub upload_busy: AtomicBool,
    /// The engine's state directory (pushed generations, spool), locked.
    pub state: StateDir,
    /// Highest change sequence sent to the cores.
    pub delta_sent_seq: AtomicU64,
    /// Highest change sequence received with a valid signature (sent to the
    /// cores or already covered).
    pub delta_received_seq: AtomicU64,
    /// The links stream's last change sequence when the consumer connected,
    /// raised by every change received since.
    pub links_stream_last_seq: AtomicU64,
    /// Changes still in the stream after the last one received.
    pub delta_lag: AtomicU64,
    pub deltas_received: AtomicU64,
    pub deltas_invalid: AtomicU64,
    /// Changes skipped for their signature.
    pub deltas_refused: DeltasRefused,
    /// The `LINKS` stream as the consumer last found it.
    pub links_stream: StreamWatch,
    pub nats_connected: AtomicBool,
    pub snapshot_loads: AtomicU64,
    pub snapshot_refusals: AtomicU64,
    /// Snapshots pulled from control and installed, and pulls that failed.
    pub snapshot_pulls: AtomicU64,
    pub snapshot_pull_errors: AtomicU64,
    pub started: Instant,
    /// The click publisher's counters, when clicks are on.
    pub clicks: Option<Arc<crate::clicks::ClickStats>>,
    /// The TLS certificates, when TLS is on.
    pub tls: Option<crate::tls_control::TlsControl>,
    /// Limited links for the visit lease task ([`crate::leases`]).
    pub leases: crate::leases::feed::LeaseFeed,
}

/// Changes skipped because of their signature, by reason.
#[derive(Debug, Default)]
pub struct DeltasRefused {
    missing: AtomicU64,
    malformed: AtomicU64,
    unknown_key: AtomicU64,
    invalid: AtomicU64,
}

impl DeltasRefused {
    pub fn record(&self, error: &SignatureError) {
        let counter = match error {
            SignatureError::Missing => &self.missing,
            SignatureError::Malformed => &self.malformed,
            SignatureError::UnknownKey(_) => &self.unknown_key,
            SignatureError::Invalid(_) => &self.invalid,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// `(reason, count)` for the `reason` label.
    pub fn by_reason(&self) -> [(&'static str, u64); 4] {
        [
            ("missing", self.missing.load(Relaxed)),
            ("malformed", self.malformed.load(Relaxed)),
            ("unknown_key", self.unknown_key.load(Relaxed)),
            ("invalid", self.invalid.load(Relaxed)),
        ]
    }
}

impl Shared {
    /// Channels for `cores` cores; the receivers go to the cores.
    pub fn new(
        config: Arc<Config>,
        cores: usize,
        state: StateDir,
        tls: Option<crate::tls_control::TlsControl>,
    ) -> (Arc<Shared>, Vec<Receiver<Command>>) {
        let (senders, receivers) = (0..cores).map(|_| bounded(COMMAND_CAPACITY)).unzip();
        let config_clicks = config
            .clicks_enabled()
            .then(|| Arc::new(crate::clicks::ClickStats::default()));
        let leases = crate::leases::feed::LeaseFeed::new(config.nats_settings().is_some());
        let shared = Shared {
            leases,
            config,
            boot_id: boot_id(),
            senders,
            metrics: (0..cores).map(|_| Arc::new(CoreMetrics::new())).collect(),
            snapshot: Mutex::new(None),
            install_lock: Mutex::new(()),
            watched: Mutex::new(None),
            upload_busy: AtomicBool::new(false),
            state,
            delta_sent_seq: AtomicU64::new(0),
            delta_received_seq: AtomicU64::new(0),
            links_stream_last_seq: AtomicU64::new(0),
            delta_lag: AtomicU64::new(0),
            deltas_received: AtomicU64::new(0),
            deltas_invalid: AtomicU64::new(0),
            deltas_refused: DeltasRefused::default(),
            links_stream: StreamWatch::default(),
            nats_connected: AtomicBool::new(false),
            snapshot_loads: AtomicU64::new(0),
            snapshot_refusals: AtomicU64::new(0),
            snapshot_pulls: AtomicU64::new(0),
            snapshot_pull_errors: AtomicU64::new(0),
            started: Instant::now(),
            clicks: config_clicks,
            tls,
        };
        (Arc::new(shared), receivers)
    }

    pub fn loaded(&self) -> Option<LoadedSnapshot> {
        self.snapshot.lock().map(|s| s.clone()).unwrap_or(None)
    }

    /// Sends `snapshot` to every core and waits until each serves it.
    /// Blocking: call it from a blocking context, never from a core.
    pub fn install(&self, snapshot: Arc<Snapshot>, source: String) {
        let (done, acks) = bounded(self.senders.len());
        for sender in &self.senders {
            // A closed channel means the core is shutting down.
            let _ = sender.send(Command::Snapshot {
                snapshot: snapshot.clone(),
                done: done.clone(),
            });
        }
        drop(done);
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..self.senders.len() {
            if acks.recv_deadline(deadline).is_err() {
                tracing::warn!("a core did not confirm the snapshot swap in time");
                break;
            }
        }
        let header = snapshot.header();
        let loaded = LoadedSnapshot {
            sequence: header.sequence,
            links: header.link_count,
            built_at_ms: header.built_at_ms,
            file_len: snapshot.file_len(),
            loaded_at_ms: crate::clock::unix_ms(),
            source,
            by_signature: snapshot.checked_by() != snapshots::signed::Checked::Full,
        };
        tracing::info!(
            sequence = loaded.sequence,
            links = loaded.links,
            source = %loaded.source,
            "snapshot installed on every core"
        );
        if let Ok(mut slot) = self.snapshot.lock() {
            *slot = Some(loaded);
        }
        self.snapshot_loads.fetch_add(1, Relaxed);
        self.leases.snapshot(&snapshot);
    }

    /// Sends one change to every core (waits if a core's channel is full).
    pub fn broadcast_delta(&self, record: DeltaRecord) {
        let seq = record.seq;
        self.leases.change(&record);
        let record = Arc::new(record);
        for sender in &self.senders {
            let _ = sender.send(Command::Delta(record.clone()));
        }
        self.delta_sent_seq.fetch_max(seq, Relaxed);
    }

    /// Re-reads the TLS certificates if they changed (blocking).
    pub fn poll_tls(&self) {
        if let Some(tls) = &self.tls {
            tls.poll(&self.senders);
        }
    }

    /// Asks every core to stop.
    pub fn shutdown(&self) {
        for sender in &self.senders {
            let _ = sender.send(Command::Shutdown);
        }
    }

    /// The change sequence the engine already has: the larger of the
    /// snapshot's and the last change sent to the cores.
    pub fn known_seq(&self) -> u64 {
        let snapshot = self.loaded().map_or(0, |s| s.sequence);
        snapshot.max(self.delta_sent_seq.load(Relaxed))
    }

    /// The newest change sequence the engine knows of, which a pushed
    /// snapshot may not pass by more than `snapshot_sequence_max_lead`: the
    /// served snapshot's, the last change received, and while connected the
    /// links stream's last.
    pub fn newest_known_seq(&self) -> u64 {
        let stream = if self.nats_connected.load(Relaxed) {
            self.links_stream_last_seq.load(Relaxed)
        } else {
            0
        };
        self.known_seq()
            .max(self.delta_received_seq.load(Relaxed))
            .max(stream)
    }

    /// The configured snapshot path, if any.
    pub fn snapshot_path(&self) -> Option<PathBuf> {
        self.config.snapshot.clone()
    }
}

/// 64 random bits in hex: unique per start for every practical purpose.
/// Without the OS's randomness (never seen) the start time in nanoseconds
/// still differs between starts.
fn boot_id() -> String {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
