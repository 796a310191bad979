//! Token buckets: one family per client IP, one per verified API key or
//! signed-in user, and the sign-in families (per IP, per e-mail address).
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
//!
//! Sign-in (and password-reset requests) spend from buckets of their own,
//! much smaller ([`LoginLimits`]): per client IP, and per e-mail address
//! (lowercased) whether or not an account has it, so a refusal says nothing
//! about which addresses exist. A bucket refills at its rate whatever
//! happens, so draining someone's e-mail bucket locks them out only while the
//! attacker keeps paying for it from their own IP buckets; once they stop,
//! the next attempt is allowed within one refill interval (a minute by
//! default) and the bucket is full again within burst/rate. A password reset
//! has its own e-mail bucket, so it stays open while sign-in is drained.

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
        self.spend(key, 1, now)
    }

    /// Spends `cost` tokens at once (a request that does the work of many,
    /// such as a bulk write), or none when the bucket holds fewer. A cost
    /// above the burst is charged as the burst, so the request can pass
    /// once the bucket is full.
    pub fn spend(&self, key: &K, cost: u32, now: Instant) -> Decision {
        let cost = f64::from(cost.clamp(1, self.burst.max(1)));
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
        let allowed = bucket.tokens >= cost;
        if allowed {
            bucket.tokens -= cost;
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
                ((cost - bucket.tokens) / self.rate).ceil().max(1.0) as u64
            },
        }
    }
}

/// A verified caller's bucket: its key, or the user all of whose sessions
/// share one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Caller {
    Key(i64),
    User(i64),
}

/// The limiters of the service.
#[derive(Debug)]
pub struct RateLimits {
    /// By key id (`api_keys.id`) or user id, verified callers only; the
    /// `rate_per_key` settings.
    pub per_key: Limiter<Caller>,
    pub per_ip: Limiter<IpAddr>,
    pub login: LoginLimits,
}

/// Sign-in and password-reset attempts.
#[derive(Debug)]
pub struct LoginLimits {
    pub per_ip: Limiter<IpAddr>,
    /// Sign-in attempts by lowercased e-mail address.
    pub per_email: Limiter<String>,
    /// Reset requests by lowercased e-mail address.
    pub reset_per_email: Limiter<String>,
}

impl LoginLimits {
    /// Spends one attempt for `ip` and `email` (the IP first, so a refused
    /// IP costs the address nothing). The refusal, if any, as `RateLimited`.
    pub fn check(
        &self,
        family: &Limiter<String>,
        ip: IpAddr,
        email: &str,
        now: Instant,
    ) -> Result<(), u64> {
        let d = self.per_ip.check(&ip, now);
        if !d.allowed {
            return Err(d.retry_after);
        }
        let d = family.check(&email.to_lowercase(), now);
        if !d.allowed {
            return Err(d.retry_after);
        }
        Ok(())
    }
}

impl RateLimits {
    pub fn new(config: &Config) -> Self {
        let per_email = || Limiter::new(config.login_rate_per_email, config.login_burst_per_email);
        RateLimits {
            per_key: Limiter::new(config.rate_per_key, config.burst_per_key),
            per_ip: Limiter::new(config.rate_per_ip, config.burst_per_ip),
            login: LoginLimits {
                per_ip: Limiter::new(config.login_rate_per_ip, config.login_burst_per_ip),
                per_email: per_email(),
                reset_per_email: per_email(),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_costly_request_spends_many_tokens_or_none() {
        let l = Limiter::new(1.0, 10);
        let t0 = Instant::now();
        assert_eq!(l.spend(&1, 7, t0).remaining, 3);
        let d = l.spend(&1, 7, t0);
        assert!(!d.allowed);
        assert_eq!((d.remaining, d.retry_after), (3, 4), "nothing spent");
        assert!(l.spend(&1, 3, t0).allowed);
        assert!(l.spend(&2, 50, t0).allowed, "capped at the burst");
    }

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

    #[test]
    fn a_drained_email_refills() {
        let limits = RateLimits::new(&Config {
            login_rate_per_email: 1.0 / 60.0,
            login_burst_per_email: 2,
            ..Config::default()
        });
        let l = &limits.login;
        let (ip, other_ip) = ("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap());
        let t0 = Instant::now();
        assert!(l.check(&l.per_email, ip, "Bob@x.example", t0).is_ok());
        assert!(l.check(&l.per_email, other_ip, "bob@x.example", t0).is_ok());
        // Drained for every IP, whatever the spelling.
        assert_eq!(
            l.check(&l.per_email, other_ip, "BOB@x.example", t0),
            Err(60)
        );
        // Reset requests have a bucket of their own.
        assert!(l.check(&l.reset_per_email, ip, "bob@x.example", t0).is_ok());
        // A minute later, one attempt again.
        let later = t0 + Duration::from_secs(61);
        assert!(l.check(&l.per_email, ip, "bob@x.example", later).is_ok());
        assert!(l.check(&l.per_email, ip, "bob@x.example", later).is_err());
    }
}
