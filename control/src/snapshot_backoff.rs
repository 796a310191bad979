//! Backoff per engine for reconcile pushes: an engine that refuses a
//! generation (its sequence guard, a full disk, a bad file) is not sent the
//! same file again every round. The wait doubles from [`FIRST`] up to
//! [`LONGEST`] per failed push of one generation; a newer generation, or a
//! success, starts afresh.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The wait after a first failed push.
pub const FIRST: Duration = Duration::from_secs(2);
/// The longest wait between pushes of one generation to one engine.
pub const LONGEST: Duration = Duration::from_secs(300);

#[derive(Debug, Default)]
pub struct PushBackoff {
    engines: Mutex<HashMap<String, Failing>>,
}

#[derive(Debug, Clone, Copy)]
struct Failing {
    /// The generation (its sequence) the failures were with.
    seq: i64,
    failures: u32,
    next: Instant,
}

impl PushBackoff {
    /// Whether a push of generation `seq` to `engine` may go now.
    pub fn due(&self, engine: &str, seq: i64) -> bool {
        self.due_at(engine, seq, Instant::now())
    }

    /// Notes how a push went.
    pub fn record(&self, engine: &str, seq: i64, ok: bool) {
        self.record_at(engine, seq, ok, Instant::now())
    }

    fn due_at(&self, engine: &str, seq: i64, now: Instant) -> bool {
        let engines = self.engines.lock().expect("backoff lock");
        match engines.get(engine) {
            Some(f) if f.seq == seq => now >= f.next,
            _ => true,
        }
    }

    fn record_at(&self, engine: &str, seq: i64, ok: bool, now: Instant) {
        let mut engines = self.engines.lock().expect("backoff lock");
        if ok {
            engines.remove(engine);
            return;
        }
        let failures = match engines.get(engine) {
            Some(f) if f.seq == seq => f.failures + 1,
            _ => 1,
        };
        let wait = FIRST
            .saturating_mul(1 << (failures - 1).min(16))
            .min(LONGEST);
        engines.insert(
            engine.to_owned(),
            Failing {
                seq,
                failures,
                next: now + wait,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_of_one_generation_wait_longer_each_time() {
        let b = PushBackoff::default();
        let t0 = Instant::now();
        assert!(b.due_at("e1", 5, t0));
        b.record_at("e1", 5, false, t0);
        assert!(!b.due_at("e1", 5, t0 + Duration::from_secs(1)));
        assert!(b.due_at("e1", 5, t0 + FIRST));
        b.record_at("e1", 5, false, t0 + FIRST);
        assert!(
            !b.due_at("e1", 5, t0 + FIRST * 2),
            "4 s after the second failure"
        );
        assert!(b.due_at("e1", 5, t0 + FIRST * 3));
        assert!(b.due_at("e2", 5, t0), "other engines are not held back");
        assert!(b.due_at("e1", 6, t0), "a newer generation goes at once");
        for _ in 0..30 {
            b.record_at("e1", 5, false, t0);
        }
        assert!(b.due_at("e1", 5, t0 + LONGEST), "capped");
        b.record_at("e1", 5, true, t0);
        assert!(b.due_at("e1", 5, t0), "a success clears it");
    }
}
