//! What one core serves from: its own `Arc` of the current snapshot and its
//! own delta map. Only the core touches it (through a `RefCell` it never
//! borrows across an `.await`), so lookups take no lock and touch no shared
//! reference count.

use snapshots::delta::{LinkChange, LinkDelta};
use snapshots::{RedirectStatus, Snapshot};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

/// One change as every core holds it: decoded once by the change-stream
/// thread, shared read-only by `Arc` (each core keeps its own clone).
#[derive(Debug)]
pub struct DeltaRecord {
    pub code: Box<str>,
    pub seq: u64,
    /// `None`: a tombstone (the link was deleted).
    pub link: Option<DeltaLink>,
}

/// An upserted link, owned.
#[derive(Debug)]
pub struct DeltaLink {
    pub target: Box<str>,
    pub status: RedirectStatus,
    /// Unix seconds; 0 means never.
    pub expires_at: i64,
    pub disabled: bool,
    pub forward_query: bool,
}

impl From<LinkDelta> for DeltaRecord {
    fn from(delta: LinkDelta) -> DeltaRecord {
        match delta.change {
            LinkChange::Upsert { link } => DeltaRecord {
                code: link.code.into_boxed_str(),
                seq: delta.seq,
                link: Some(DeltaLink {
                    target: link.target.into_boxed_str(),
                    status: link.status,
                    expires_at: link.expires_at.unwrap_or(0),
                    disabled: link.disabled,
                    forward_query: link.forward_query,
                }),
            },
            LinkChange::Delete { code } => DeltaRecord {
                code: code.into_boxed_str(),
                seq: delta.seq,
                link: None,
            },
        }
    }
}

/// A link found by a lookup, borrowed from the snapshot or the delta map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub location: &'a [u8],
    pub status: RedirectStatus,
    pub expires_at: i64,
    pub disabled: bool,
    pub forward_query: bool,
}

impl Target<'_> {
    /// Whether the link should not redirect at `now` (unix seconds).
    #[inline]
    pub fn is_gone(&self, now: i64) -> bool {
        self.disabled || (self.expires_at != 0 && now >= self.expires_at)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(Target<'a>),
    Missing,
    /// No snapshot loaded yet: the engine cannot say a code is unknown.
    NotReady,
}

/// FxHash: codes are short and the map's keys come from the control plane,
/// not from clients, so a fast non-keyed hash is fine here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

type DeltaMap = HashMap<Box<[u8]>, Arc<DeltaRecord>, BuildHasherDefault<FxHasher>>;

/// One core's view of the links.
#[derive(Debug, Default)]
pub struct CoreState {
    snapshot: Option<Arc<Snapshot>>,
    deltas: DeltaMap,
    applied_seq: u64,
}

impl CoreState {
    pub fn new(snapshot: Option<Arc<Snapshot>>) -> CoreState {
        CoreState {
            snapshot,
            ..CoreState::default()
        }
    }

    /// Deltas first (they are newer than the snapshot), then the snapshot.
    #[inline]
    pub fn lookup(&self, code: &[u8]) -> Lookup<'_> {
        if !self.deltas.is_empty()
            && let Some(record) = self.deltas.get(code)
        {
            return match &record.link {
                Some(link) => Lookup::Found(Target {
                    location: link.target.as_bytes(),
                    status: link.status,
                    expires_at: link.expires_at,
                    disabled: link.disabled,
                    forward_query: link.forward_query,
                }),
                None => Lookup::Missing,
            };
        }
        let Some(snapshot) = &self.snapshot else {
            return Lookup::NotReady;
        };
        match snapshot.get_bytes(code) {
            Some(view) => Lookup::Found(Target {
                location: view.target().as_bytes(),
                status: view.status(),
                expires_at: view.expires_at().unwrap_or(0),
                disabled: view.disabled(),
                forward_query: view.forward_query(),
            }),
            None => Lookup::Missing,
        }
    }

    /// Swaps the snapshot in and prunes the deltas it covers; returns the
    /// previous one so the caller decides where it is dropped (unmapped).
    pub fn install(&mut self, snapshot: Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        let sequence = snapshot.sequence();
        self.deltas.retain(|_, record| record.seq > sequence);
        self.snapshot.replace(snapshot)
    }

    /// Applies a change unless the snapshot or an applied change is newer.
    /// Returns whether it changed anything.
    pub fn apply(&mut self, record: Arc<DeltaRecord>) -> bool {
        let covered = self
            .snapshot
            .as_ref()
            .is_some_and(|s| record.seq <= s.sequence());
        self.applied_seq = self.applied_seq.max(record.seq);
        if covered {
            return false;
        }
        match self.deltas.get_mut(record.code.as_bytes()) {
            Some(existing) if existing.seq >= record.seq => false,
            Some(existing) => {
                *existing = record;
                true
            }
            None => {
                let key = record.code.as_bytes().to_vec().into_boxed_slice();
                self.deltas.insert(key, record);
                true
            }
        }
    }

    pub fn snapshot_sequence(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.sequence())
    }

    pub fn delta_len(&self) -> usize {
        self.deltas.len()
    }

    /// Highest delta sequence seen (applied or covered).
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::{Link, SnapshotBuilder};

    fn snapshot(seq: u64, links: &[(&str, &str)]) -> Arc<Snapshot> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(seq);
        for (code, target) in links {
            builder.push(Link::new(*code, *target)).unwrap();
        }
        builder.write_to(&path).unwrap();
        Arc::new(Snapshot::open(&path).unwrap())
    }

    fn location(state: &CoreState, code: &str) -> Option<String> {
        match state.lookup(code.as_bytes()) {
            Lookup::Found(t) => Some(String::from_utf8(t.location.to_vec()).unwrap()),
            Lookup::Missing => None,
            Lookup::NotReady => Some("not ready".into()),
        }
    }

    fn upsert(seq: u64, code: &str, target: &str) -> Arc<DeltaRecord> {
        Arc::new(LinkDelta::upsert(seq, Link::new(code, target)).into())
    }

    #[test]
    fn deltas_over_snapshots() {
        let mut state = CoreState::new(None);
        assert_eq!(location(&state, "a").as_deref(), Some("not ready"));
        state.install(snapshot(10, &[("a", "https://a/1"), ("b", "https://b/1")]));
        assert_eq!(location(&state, "a").as_deref(), Some("https://a/1"));
        // Covered by the snapshot: ignored.
        assert!(!state.apply(upsert(9, "a", "https://a/old")));
        assert!(state.apply(upsert(11, "a", "https://a/2")));
        assert!(state.apply(Arc::new(LinkDelta::delete(12, "b").into())));
        assert!(
            !state.apply(upsert(11, "a", "https://a/2")),
            "redelivery is a no-op"
        );
        assert_eq!(location(&state, "a").as_deref(), Some("https://a/2"));
        assert_eq!(location(&state, "b"), None);
        assert_eq!(state.delta_len(), 2);
        // A snapshot at 11 covers the upsert, not the delete.
        state.install(snapshot(11, &[("a", "https://a/2"), ("b", "https://b/1")]));
        assert_eq!(state.delta_len(), 1);
        assert_eq!(location(&state, "b"), None);
        assert_eq!(state.applied_seq(), 12);
    }
}
