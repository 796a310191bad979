//! The engine's clocks, all of them.
//!
//! - The wall clock is [`servicekit::clock`] ([`unix_ms`], [`unix_secs`]),
//!   the one every service reads for times that cross processes: click
//!   timestamps, batch ages, when a snapshot was loaded.
//! - [`CoreClock`]: each core's Unix second, cached and advanced by the core's
//!   tick. Link expiry checks and the `Date` header read it, so the request
//!   path reads no clock for them.
//! - [`TurnClock`]: Unix milliseconds derived from the monotonic `Instant` an
//!   I/O loop reads once per turn anyway, re-based every tick, so a click
//!   costs no clock read of its own.

use crate::http::date::{self, HttpDate};
use std::cell::Cell;
use std::time::Instant;

pub use servicekit::clock::{unix_ms, unix_secs};

/// One core's cached Unix second.
#[derive(Debug)]
pub struct CoreClock {
    secs: Cell<i64>,
}

impl CoreClock {
    /// Reads the wall clock once.
    pub fn new() -> CoreClock {
        CoreClock {
            secs: Cell::new(seconds(unix_secs())),
        }
    }

    /// The Unix second as of the last tick (signed, like link expiry times).
    #[inline]
    pub fn secs(&self) -> i64 {
        self.secs.get()
    }

    /// The `Date` header value for [`CoreClock::secs`].
    pub fn date(&self) -> HttpDate {
        date::format(self.secs())
    }

    /// Advances to `now_ms` (Unix ms); whether the second changed, in which
    /// case the `Date` header is stale.
    pub fn advance(&self, now_ms: u64) -> bool {
        let now = seconds(now_ms / 1000);
        let changed = now != self.secs.get();
        self.secs.set(now);
        changed
    }
}

impl Default for CoreClock {
    fn default() -> Self {
        CoreClock::new()
    }
}

fn seconds(unix_secs: u64) -> i64 {
    i64::try_from(unix_secs).unwrap_or(i64::MAX)
}

/// Unix milliseconds from the monotonic clock read an I/O loop makes anyway,
/// re-based on the wall clock every tick: one clock read per turn instead of
/// one per click.
#[derive(Debug)]
pub struct TurnClock {
    base: Instant,
    base_ms: u64,
}

impl TurnClock {
    /// Re-bases on the wall clock now.
    pub fn new() -> TurnClock {
        TurnClock {
            base: Instant::now(),
            base_ms: unix_ms(),
        }
    }

    /// Unix milliseconds at `now`, a monotonic reading taken after the base.
    #[inline]
    pub fn unix_ms(&self, now: Instant) -> u64 {
        self.base_ms + now.saturating_duration_since(self.base).as_millis() as u64
    }
}

impl Default for TurnClock {
    fn default() -> Self {
        TurnClock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_core_clock_says_when_the_second_changes() {
        let clock = CoreClock::new();
        let now = clock.secs() as u64 * 1000;
        assert!(!clock.advance(now + 999), "same second");
        assert!(clock.advance(now + 1000));
        assert_eq!(clock.secs() as u64, now / 1000 + 1);
        assert_eq!(clock.date(), date::format(clock.secs()));
    }

    #[test]
    fn a_turn_clock_follows_the_monotonic_reading() {
        let clock = TurnClock::new();
        let later = clock.base + Duration::from_millis(1500);
        assert_eq!(clock.unix_ms(later), clock.base_ms + 1500);
        assert_eq!(clock.unix_ms(clock.base), clock.base_ms);
    }
}
