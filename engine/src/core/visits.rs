//! One core's visits of links with `max_visits`: plain per-core counters.
//!
//! Control leases a limited link's visits to the engine
//! ([`crate::leases`]); the control thread hands each core a *slice* of a
//! lease through the core's command channel ([`Slices::grant`], applied on
//! the tick like a delta). A visit of a limited link takes one visit from
//! this core's slice ([`Slices::take`]): a hash lookup in a map only this
//! core touches and a decrement, no lock, no atomic, no allocation. Links
//! without a limit never come here.
//!
//! A slice with no visits left answers the visit as exhausted (the link's
//! expired answer) and asks the control thread for more; it never waits.
//! The ask is made on the core's next tick ([`Slices::tick`]), which is also
//! where a slice's visits stop at its lease's end and where every slice
//! that ends reports how many of its visits it did not serve: a slice
//! reports exactly once, when it is replaced by one of another lease, when
//! its lease ends, or when the control thread takes it back, and from then
//! on this core serves nothing of it. That is what lets the engine return
//! unused visits to control without ever serving one it returned.

use super::fxhash::FxHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// Longest key: a domain id and the longest code.
const MAX_KEY_LEN: usize = 4 + snapshots::link::MAX_CODE_LEN;

/// A link's key in the slice map and in reports: the domain's four
/// little-endian bytes, then the code (as the delta map's).
pub type LinkKey = Box<[u8]>;

/// `(domain, code)` as a [`LinkKey`] (allocates: off the request path).
pub fn link_key(domain: u32, code: &[u8]) -> LinkKey {
    let mut key = Vec::with_capacity(4 + code.len());
    key.extend_from_slice(&domain.to_le_bytes());
    key.extend_from_slice(code);
    key.into_boxed_slice()
}

/// What a core tells the control thread (on its tick, never per visit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VisitReport {
    /// The slice of `lease` this core held for the link is over: `unused`
    /// of the visits it was given were not served, and never will be here.
    Ended {
        core: usize,
        key: LinkKey,
        lease: u64,
        unused: u32,
    },
    /// The link's slice on this core is running out (or out): more, please.
    Low { core: usize, key: LinkKey },
}

/// Where reports go: the control thread's lease task.
pub type Reporter = tokio::sync::mpsc::UnboundedSender<VisitReport>;

#[derive(Debug)]
struct Slice {
    /// The lease the visits come from (0: none yet).
    lease: u64,
    remaining: u32,
    /// Unix ms at which the lease ends for this engine.
    until_ms: u64,
    /// At or below this many left, ask for more.
    low: u32,
    /// Asked, or to ask on the next tick; cleared by a grant.
    asking: bool,
    /// To ask on the next tick.
    ask: bool,
}

/// One core's slices, by link.
#[derive(Debug, Default)]
pub struct Slices {
    map: HashMap<LinkKey, Slice, BuildHasherDefault<FxHasher>>,
    reporter: Option<Reporter>,
    core: usize,
}

impl Slices {
    pub fn new(core: usize) -> Slices {
        Slices {
            core,
            ..Slices::default()
        }
    }

    /// Where this core's reports go from now on.
    pub fn set_reporter(&mut self, reporter: Reporter) {
        self.reporter = Some(reporter);
    }

    /// One visit of `(domain, code)`, a limited link: whether this core may
    /// serve it. The request path: no allocation, no lock.
    #[inline]
    pub fn take(&mut self, domain: u32, code: &[u8]) -> bool {
        let mut buf = [0u8; MAX_KEY_LEN];
        let len = 4 + code.len();
        if len > MAX_KEY_LEN {
            return false;
        }
        buf[..4].copy_from_slice(&domain.to_le_bytes());
        buf[4..len].copy_from_slice(code);
        let Some(slice) = self.map.get_mut(&buf[..len]) else {
            // Not tracked here yet: the control thread tracks every limited
            // link it learns of on every core (a grant of 0 visits) and asks
            // for its visits itself.
            return false;
        };
        if slice.remaining == 0 {
            if !slice.asking {
                slice.asking = true;
                slice.ask = true;
            }
            return false;
        }
        slice.remaining -= 1;
        if slice.remaining <= slice.low && !slice.asking {
            slice.asking = true;
            slice.ask = true;
        }
        true
    }

    /// Adds `visits` of `lease` (ending at `until_ms`) to the link's slice.
    /// A slice of another lease ends first (reported with what it had
    /// left): one counter never mixes two leases.
    pub fn grant(&mut self, key: LinkKey, lease: u64, visits: u32, until_ms: u64) {
        let core = self.core;
        let low = visits / 4;
        match self.map.get_mut(&key) {
            Some(slice) if slice.lease == lease => {
                slice.remaining = slice.remaining.saturating_add(visits);
                slice.low = low;
                slice.asking = false;
                slice.ask = false;
            }
            existing => {
                if let Some(slice) = existing
                    && slice.lease != 0
                    && let Some(reporter) = &self.reporter
                {
                    let _ = reporter.send(VisitReport::Ended {
                        core,
                        key: key.clone(),
                        lease: slice.lease,
                        unused: slice.remaining,
                    });
                }
                self.map.insert(
                    key,
                    Slice {
                        lease,
                        remaining: visits,
                        until_ms,
                        low,
                        asking: false,
                        ask: false,
                    },
                );
            }
        }
    }

    /// Ends the link's slice now (the control thread takes its visits back
    /// to give them to a core that has none, or the link is no longer
    /// limited): reported like any end.
    pub fn revoke(&mut self, key: &[u8]) {
        if let Some(slice) = self.map.get_mut(key) {
            Self::end(self.core, self.reporter.as_ref(), key, slice);
        }
    }

    /// Stops tracking a link (no longer limited, or gone): its slice ends
    /// as by [`Slices::revoke`] and it leaves the map.
    pub fn forget(&mut self, key: &[u8]) {
        if let Some(mut slice) = self.map.remove(key) {
            Self::end(self.core, self.reporter.as_ref(), key, &mut slice);
        }
    }

    /// Ends a slice: reports it (when it came from a lease) and leaves it
    /// tracked without visits.
    fn end(core: usize, reporter: Option<&Reporter>, key: &[u8], slice: &mut Slice) {
        if slice.lease != 0
            && let Some(reporter) = reporter
        {
            let _ = reporter.send(VisitReport::Ended {
                core,
                key: key.into(),
                lease: slice.lease,
                unused: slice.remaining,
            });
        }
        slice.lease = 0;
        slice.remaining = 0;
    }

    /// The tick: slices whose lease ended stop and report; wanted links are
    /// asked for.
    pub fn tick(&mut self, now_ms: u64) {
        if self.map.is_empty() {
            return;
        }
        let core = self.core;
        let Some(reporter) = self.reporter.as_ref() else {
            return;
        };
        for (key, slice) in self.map.iter_mut() {
            if slice.lease != 0 && now_ms >= slice.until_ms {
                let _ = reporter.send(VisitReport::Ended {
                    core,
                    key: key.clone(),
                    lease: slice.lease,
                    unused: slice.remaining,
                });
                // Still tracked, without visits; wanted again if it was
                // being visited.
                slice.lease = 0;
                slice.remaining = 0;
                slice.ask = slice.asking;
            }
            if slice.ask {
                slice.ask = false;
                let _ = reporter.send(VisitReport::Low {
                    core,
                    key: key.clone(),
                });
            }
        }
    }

    /// Visits this core may still serve of the link (tests, metrics).
    pub fn remaining(&self, domain: u32, code: &[u8]) -> u32 {
        self.map
            .get(&link_key(domain, code))
            .map_or(0, |s| s.remaining)
    }

    /// Visits left in all of this core's slices (the admin port's gauge).
    pub fn total_remaining(&self) -> u64 {
        self.map.values().map(|s| u64::from(s.remaining)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(rx: &mut tokio::sync::mpsc::UnboundedReceiver<VisitReport>) -> Vec<VisitReport> {
        let mut out = Vec::new();
        while let Ok(report) = rx.try_recv() {
            out.push(report);
        }
        out
    }

    #[test]
    fn a_slice_serves_exactly_its_visits_and_asks_for_more() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut slices = Slices::new(1);
        slices.set_reporter(tx);
        // Unknown here: refused.
        assert!(!slices.take(0, b"lim"));
        slices.tick(1_000);
        assert!(drain(&mut rx).is_empty());
        // Tracked without visits: refused, and wanted at the next tick.
        slices.grant(link_key(0, b"lim"), 0, 0, 0);
        assert!(!slices.take(0, b"lim"));
        assert!(!slices.take(0, b"lim"));
        slices.tick(1_000);
        assert_eq!(
            drain(&mut rx),
            vec![VisitReport::Low {
                core: 1,
                key: link_key(0, b"lim")
            }]
        );
        slices.grant(link_key(0, b"lim"), 7, 8, 10_000);
        let served = (0..20).filter(|_| slices.take(0, b"lim")).count();
        assert_eq!(served, 8);
        // Low at 2 left: asked once, on the tick.
        slices.tick(2_000);
        assert_eq!(
            drain(&mut rx),
            vec![VisitReport::Low {
                core: 1,
                key: link_key(0, b"lim")
            }]
        );
        slices.tick(2_005);
        assert!(drain(&mut rx).is_empty());
        // More of the same lease: added, no report.
        slices.grant(link_key(0, b"lim"), 7, 4, 10_000);
        assert!(slices.take(0, b"lim"));
        assert_eq!(slices.remaining(0, b"lim"), 3);
        assert!(drain(&mut rx).is_empty());
        // Another lease replaces it: the old one ends with 3 unused.
        slices.grant(link_key(0, b"lim"), 8, 5, 20_000);
        assert_eq!(
            drain(&mut rx),
            vec![VisitReport::Ended {
                core: 1,
                key: link_key(0, b"lim"),
                lease: 7,
                unused: 3
            }]
        );
        // The lease ends: nothing more is served, the rest is reported.
        assert!(slices.take(0, b"lim"));
        slices.tick(20_000);
        assert_eq!(
            drain(&mut rx),
            vec![VisitReport::Ended {
                core: 1,
                key: link_key(0, b"lim"),
                lease: 8,
                unused: 4
            }]
        );
        assert!(!slices.take(0, b"lim"));
        // Revoked: reported, then nothing.
        slices.grant(link_key(0, b"lim"), 9, 2, 30_000);
        drain(&mut rx);
        slices.revoke(&link_key(0, b"lim"));
        assert_eq!(
            drain(&mut rx),
            vec![VisitReport::Ended {
                core: 1,
                key: link_key(0, b"lim"),
                lease: 9,
                unused: 2
            }]
        );
    }

    #[test]
    fn taking_a_visit_does_not_allocate() {
        let mut slices = Slices::new(0);
        slices.grant(link_key(3, b"hot"), 1, 1_000, u64::MAX);
        let allocations = crate::test_alloc::count(|| {
            for _ in 0..100 {
                assert!(slices.take(3, b"hot"));
            }
        });
        assert_eq!(allocations, 0);
    }
}
