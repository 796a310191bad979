//! Exponential backoff with full jitter: after the `n`th failed attempt the
//! next one waits a uniformly random time between 0 and
//! `min(cap, base · 2^(n-1))`. The randomness spreads the retries of many
//! deliveries that failed together (an endpoint that was down) instead of
//! sending them back in one wave; full jitter keeps the expected total about
//! half the ceiling's. With the defaults (base 30 s, cap 30 min, 8
//! attempts) the ceilings of the seven waits are 30 s, 1, 2, 4, 8, 16 and
//! 30 min: a dead letter after at most about an hour, half that expected.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    /// The ceiling of the wait after the `failed`th failed attempt (from 1).
    pub fn ceiling(&self, failed: u32) -> Duration {
        let doublings = failed.saturating_sub(1).min(40);
        self.base
            .checked_mul(1u32 << doublings.min(31))
            .map_or(self.cap, |d| d.min(self.cap))
    }

    /// The wait after the `failed`th failed attempt: random in `[0, ceiling]`.
    pub fn delay(&self, failed: u32) -> Duration {
        let ceiling = self.ceiling(failed).as_millis() as u64;
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the OS random generator is available");
        Duration::from_millis(u64::from_le_bytes(bytes) % (ceiling + 1))
    }

    /// The most all the waits of `attempts` attempts can add up to.
    pub fn worst_total(&self, attempts: u32) -> Duration {
        (1..attempts).map(|n| self.ceiling(n)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap_with_jitter_below_the_ceiling() {
        let b = Backoff {
            base: Duration::from_secs(30),
            cap: Duration::from_secs(1800),
        };
        let ceilings: Vec<u64> = (1..=8).map(|n| b.ceiling(n).as_secs()).collect();
        assert_eq!(ceilings, [30, 60, 120, 240, 480, 960, 1800, 1800]);
        // The defaults: 8 attempts end within about an hour.
        assert_eq!(b.worst_total(8).as_secs(), 3690);
        for n in 1..=8 {
            for _ in 0..50 {
                assert!(b.delay(n) <= b.ceiling(n));
            }
        }
        assert_eq!(b.ceiling(1000), b.cap);
        let spread: std::collections::HashSet<_> = (0..20).map(|_| b.delay(5)).collect();
        assert!(spread.len() > 1, "jittered");
    }
}
