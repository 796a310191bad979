//! The wall clock, in the units records use.
//!
//! Click timestamps, batch ages, snapshot build times and delta times all
//! cross processes, so they are all Unix time read the same way. A clock set
//! before 1970 reads as 0 rather than panicking.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Seconds since the Unix epoch.
pub fn unix_secs() -> u64 {
    unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    #[test]
    fn milliseconds_and_seconds_agree() {
        let ms = super::unix_ms();
        let s = super::unix_secs();
        // 2020-01-01 as a floor: the clock is read, not zero.
        assert!(ms > 1_577_836_800_000, "{ms}");
        assert!(s >= ms / 1000 && s <= ms / 1000 + 1, "{s} vs {ms}");
    }
}
