//! Token buckets: one family per client IP, one per verified API key.
//!
//! Every request spends one token from its IP's bucket, checked first and
//! before anything else is done for it. A key's bucket is charged only after
//! the key is verified, and it is found by the key's id: the visible prefix
//! of a key appears in listings, and charging by it let anyone who had seen
//! one keep that key at 429. Unverified tokens (wrong keys, junk) cost their
//! IP's bucket only. The middleware ([`crate::middleware`]) sends the tighter
//! of the two as `X-RateLimit-Limit` (burst), `-Remaining` and `-Reset`
//! (seconds until full); a refusal is a 429 with `Retry-After`. The client IP
//! is the TCP peer: behind a proxy, put the limiter there or teach this one to
//! trust `X-Forwarded-For` from it.

use crate::config::Config;
use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// Above this many buckets, full (stateless) ones are forgotten.
const PRUNE_ABOVE: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The outcome of spending one token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the bucket is full again.
    pub reset: u64,
    /// Seconds until one token is available (for `Retry-After`).
    pub retry_after: u64,
}

impl Decision {
    /// The tighter of two decisions: a refusal, else the fewer remaining.
    pub fn tighter(self, other: Option<Decision>) -> Decision {
        match other {
            None => self,
            Some(b) if !b.allowed && self.allowed => b,
            Some(b) if self.allowed == b.allowed && b.remaining < self.remaining => b,
            Some(_) => self,
        }
    }
}

/// One family of buckets (all keys, or all IPs) with the same rate.
#[derive(Debug)]
pub struct Limiter<K> {
    rate: f64,
    burst: u32,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> Limiter<K> {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Limiter {
            rate: rate_per_sec,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &K, now: Instant) -> Decision {
        let mut map = self.buckets.lock().expect("limiter lock");
        if map.len() > PRUNE_ABOVE {
            // Forget buckets that are full again: they carry no state.
            let (rate, burst) = (self.rate, self.burst as f64);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = map.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst as f64,
            at: now,
        });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst as f64);
        bucket.at = now;
        let allowed = bucket.tokens >= 1.0;
        if allowed {
            bucket.tokens -= 1.0;
        }
        let missing = self.burst as f64 - bucket.tokens;
        Decision {
            allowed,
            limit: self.burst,
            remaining: bucket.tokens.floor() as u32,
            reset: (missing / self.rate).ceil() as u64,
            retry_after: if allowed {
                0
            } else {
                ((1.0 - bucket.tokens) / self.rate).ceil().max(1.0) as u64
            },
        }
    }
}

/// Both limiters of the service.
#[derive(Debug)]
pub struct RateLimits {
    /// By key id (`api_keys.id`), verified keys only.
    pub per_key: Limiter<i64>,
    pub per_ip: Limiter<IpAddr>,
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        RateLimits {
            per_key: Limiter::new(config.rate_per_key, config.burst_per_key),
            per_ip: Limiter::new(config.rate_per_ip, config.burst_per_ip),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_drains_and_refills() {
        let l = Limiter::new(1.0, 3);
        let t0 = Instant::now();
        for left in [2, 1, 0] {
            let d = l.check(&1, t0);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.check(&1, t0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 1);
        assert!(l.check(&2, t0).allowed, "buckets are per key");
        assert!(l.check(&1, t0 + Duration::from_millis(1001)).allowed);
    }
}
