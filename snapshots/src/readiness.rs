//! An engine's readiness: the JSON body of its admin `GET /readyz`.
//!
//! This is the contract between the engine, which writes it, and the control
//! plane, which reads it to decide whether an engine needs the latest
//! snapshot pushed (and operators and scripts, which read it to see an
//! engine converge). The engine answers 200 with it once a snapshot is
//! loaded, 503 with it before.
//!
//! Field names are the wire names and must not change; a reader ignores
//! fields it does not know, so a field may be added. Per-core values are the
//! cores' own gauges, so `-1` means "none yet" where a sequence is signed.
//!
//! ```
//! use snapshots::readiness::EngineReadiness;
//! let body = r#"{"ready":false,"snapshot":null,"nats":false,"nats_connected":false,
//!     "delta_seq":0,"delta_lag":0,"cores":[{"snapshot_sequence":-1,
//!     "delta_applied_seq":0,"delta_entries":0}]}"#;
//! let readiness: EngineReadiness = serde_json::from_str(body).unwrap();
//! assert_eq!(readiness.served_sequence(), None);
//! ```

use serde::{Deserialize, Serialize};

/// What `GET /readyz` on an engine's admin port answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineReadiness {
    /// A snapshot is loaded on every core (the answer is then 200, else 503).
    pub ready: bool,
    /// The snapshot every core serves; `null` before the first one.
    pub snapshot: Option<ServedSnapshot>,
    /// The engine is configured to follow the link change stream.
    pub nats: bool,
    /// It is consuming that stream right now.
    pub nats_connected: bool,
    /// Highest change sequence handed to the cores.
    pub delta_seq: u64,
    /// Changes in the stream not received yet.
    pub delta_lag: u64,
    /// Each core's own view, in core order.
    pub cores: Vec<CoreReadiness>,
    /// Drawn at random when the engine process starts: another value means
    /// it restarted (so a reader that pushed it something it keeps only in
    /// memory, or that tracks what it pushed, starts over). `None` from
    /// engines older than the field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot_id: Option<String>,
}

/// The snapshot an engine serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedSnapshot {
    /// Its change sequence: the outbox sequence it was built at.
    pub sequence: u64,
    pub links: u64,
    /// When it was built, Unix ms (from its header).
    pub built_at_ms: i64,
    /// When this engine installed it, Unix ms.
    pub loaded_at_ms: u64,
    /// Where it came from: a file path, or `push (<path>)`.
    pub source: String,
}

/// One core's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoreReadiness {
    /// Sequence of the snapshot the core serves; -1 before its first.
    pub snapshot_sequence: i64,
    /// Highest change sequence the core has applied.
    pub delta_applied_seq: i64,
    /// Upserts and tombstones in the core's delta map.
    pub delta_entries: i64,
}

impl EngineReadiness {
    /// The snapshot sequence the engine serves everywhere: the lowest core's
    /// (a core still on an older snapshot counts as older), and never above
    /// the engine-wide one. `None` when it serves no snapshot.
    pub fn served_sequence(&self) -> Option<u64> {
        let whole = self.snapshot.as_ref().map(|s| s.sequence);
        // A core without a snapshot (-1) leaves the cores out of it.
        let lowest_core = self
            .cores
            .iter()
            .map(|c| u64::try_from(c.snapshot_sequence).ok())
            .collect::<Option<Vec<u64>>>()
            .and_then(|sequences| sequences.into_iter().min());
        match (whole, lowest_core) {
            (Some(whole), Some(core)) => Some(whole.min(core)),
            (whole, core) => whole.or(core),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bodies exactly as the engine wrote them before this type existed
    /// (its `json!` in `engine/src/admin`), ready and not ready.
    const READY: &str = r#"{"cores":[{"delta_applied_seq":0,"delta_entries":0,"snapshot_sequence":0},{"delta_applied_seq":0,"delta_entries":0,"snapshot_sequence":0}],"delta_lag":0,"delta_seq":0,"nats":false,"nats_connected":false,"ready":true,"snapshot":{"built_at_ms":1796026361209,"links":1,"loaded_at_ms":1796026361272,"sequence":0,"source":"/tmp/er-links.snap"}}"#;
    const UNREADY: &str = r#"{"cores":[{"delta_applied_seq":0,"delta_entries":0,"snapshot_sequence":-1}],"delta_lag":0,"delta_seq":0,"nats":false,"nats_connected":false,"ready":false,"snapshot":null}"#;

    #[test]
    fn the_engine_s_existing_bodies_decode() {
        let ready: EngineReadiness = serde_json::from_str(READY).unwrap();
        assert!(ready.ready);
        assert_eq!(ready.cores.len(), 2);
        let snapshot = ready.snapshot.as_ref().unwrap();
        assert_eq!(
            (snapshot.sequence, snapshot.links, snapshot.loaded_at_ms),
            (0, 1, 1796026361272)
        );
        assert_eq!(snapshot.source, "/tmp/er-links.snap");
        assert_eq!(ready.served_sequence(), Some(0));

        let unready: EngineReadiness = serde_json::from_str(UNREADY).unwrap();
        assert!(!unready.ready && unready.snapshot.is_none());
        assert_eq!(unready.cores[0].snapshot_sequence, -1);
        assert_eq!(unready.served_sequence(), None);
    }

    #[test]
    fn it_writes_the_same_field_names() {
        let ready: EngineReadiness = serde_json::from_str(READY).unwrap();
        let written: serde_json::Value = serde_json::to_value(&ready).unwrap();
        let before: serde_json::Value = serde_json::from_str(READY).unwrap();
        assert_eq!(written, before);
    }

    #[test]
    fn the_lowest_core_counts() {
        let core = |snapshot_sequence| CoreReadiness {
            snapshot_sequence,
            delta_applied_seq: 0,
            delta_entries: 0,
        };
        let mut readiness: EngineReadiness = serde_json::from_str(READY).unwrap();
        readiness.snapshot.as_mut().unwrap().sequence = 9;
        readiness.cores = vec![core(9), core(8)];
        assert_eq!(readiness.served_sequence(), Some(8));
        readiness.cores = vec![core(9), core(-1)];
        assert_eq!(readiness.served_sequence(), Some(9));
        readiness.snapshot = None;
        assert_eq!(readiness.served_sequence(), None);
    }
}
