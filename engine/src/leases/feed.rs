//! What the lease task learns of limited links, and its counters: fed by
//! snapshot installs and the change fan-out ([`crate::shared`]), read by
//! the task ([`super`]) and the admin port.

use crate::core::visits::{LinkKey, link_key};
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};

/// What the task learns from snapshot installs and applied changes.
#[derive(Debug)]
pub enum LeaseEvent {
    /// A snapshot at `seq` is served: its limited links, with their limits.
    Snapshot {
        seq: u64,
        limited: Vec<(LinkKey, u32)>,
    },
    /// A change at `seq` made the link limited (`max_visits` > 0) or not (0:
    /// unlimited or gone).
    Link {
        seq: u64,
        key: LinkKey,
        max_visits: u32,
    },
}

/// The engine's lease counters, for `/metrics`.
#[derive(Debug, Default)]
pub struct LeaseStats {
    pub requests: AtomicU64,
    pub request_errors: AtomicU64,
    pub visits_leased: AtomicU64,
    pub visits_returned: AtomicU64,
    /// Limited links tracked.
    pub links: AtomicU64,
}

/// Where snapshot installs and change fan-out tell the task about limited
/// links; inert when the engine has no NATS (limited links then never get
/// visits and answer as exhausted).
#[derive(Debug)]
pub struct LeaseFeed {
    tx: Option<UnboundedSender<LeaseEvent>>,
    rx: Mutex<Option<UnboundedReceiver<LeaseEvent>>>,
    pub stats: LeaseStats,
}

impl LeaseFeed {
    pub fn new(enabled: bool) -> LeaseFeed {
        let (tx, rx) = match enabled {
            true => {
                let (tx, rx) = unbounded_channel();
                (Some(tx), Some(rx))
            }
            false => (None, None),
        };
        LeaseFeed {
            tx,
            rx: Mutex::new(rx),
            stats: LeaseStats::default(),
        }
    }

    /// A snapshot was installed (or loaded at start).
    pub fn snapshot(&self, snapshot: &snapshots::Snapshot) {
        if let Some(tx) = &self.tx {
            let limited = snapshot
                .limits()
                .map(|(domain, code, max)| (link_key(domain, code.as_bytes()), max))
                .collect();
            let _ = tx.send(LeaseEvent::Snapshot {
                seq: snapshot.sequence(),
                limited,
            });
        }
    }

    /// A link change was sent to the cores.
    pub fn change(&self, record: &crate::core::state::DeltaRecord) {
        use crate::core::state::DeltaChange;
        let Some(tx) = &self.tx else {
            return;
        };
        if let DeltaChange::Link { domain, code, link } = &record.change {
            let _ = tx.send(LeaseEvent::Link {
                seq: record.seq,
                key: link_key(*domain, code.as_bytes()),
                max_visits: link.as_ref().map_or(0, |l| l.max_visits),
            });
        }
    }

    pub(super) fn take_receiver(&self) -> Option<UnboundedReceiver<LeaseEvent>> {
        self.rx.lock().ok()?.take()
    }
}
