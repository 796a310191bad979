//! Token-bucket rate limits per API key and per client IP.
//!
//! Every request spends one token from its IP's bucket and, when it presents
//! something shaped like a key, one from that key's bucket (keyed by the
//! visible prefix, before the key is checked, so a flood of bad keys still
//! drains only the IP's bucket and the made-up prefix's). The response carries
//! the tighter of the two as `X-RateLimit-Limit` (burst), `-Remaining` and
//! `-Reset` (seconds until full); a refusal is a 429 with `Retry-After`.
//! The client IP is the TCP peer: behind a proxy, put the limiter there or
//! teach this one to trust `X-Forwarded-For` from it.

use crate::app::AppState;
use crate::error::ApiError;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

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

/// One family of buckets (all keys, or all IPs) with the same rate.
#[derive(Debug)]
pub struct Limiter {
    rate: f64,
    burst: u32,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Limiter {
    pub fn new(rate_per_sec: f64, burst: u32) -> Self {
        Limiter {
            rate: rate_per_sec,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn check(&self, key: &str, now: Instant) -> Decision {
        let mut map = self.buckets.lock().expect("limiter lock");
        if map.len() > 100_000 {
            // Forget buckets that are full again: they carry no state.
            let (rate, burst) = (self.rate, self.burst as f64);
            map.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate < burst);
        }
        let bucket = map.entry(key.to_owned()).or_insert(Bucket {
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
    pub per_key: Limiter,
    pub per_ip: Limiter,
}

fn tighter(a: Decision, b: Option<Decision>) -> Decision {
    match b {
        None => a,
        Some(b) if !b.allowed && a.allowed => b,
        Some(b) if a.allowed == b.allowed && b.remaining < a.remaining => b,
        Some(_) => a,
    }
}

/// The middleware.
pub async fn middleware(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    let ip = state.limits.per_ip.check(&peer.ip().to_string(), now);
    let key = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .or_else(|| request.headers().get("x-api-key"))
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.trim_start_matches("Bearer ")
                .trim_start_matches("bearer ")
                .trim()
        })
        .and_then(crate::auth::presented_prefix)
        .map(|prefix| state.limits.per_key.check(prefix, now));
    let decision = tighter(ip, key);
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        state.metrics.rate_limited.inc();
        ApiError::RateLimited {
            retry_after: decision.retry_after,
        }
        .into_response()
    };
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    h.insert("x-ratelimit-reset", HeaderValue::from(decision.reset));
    response
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
            let d = l.check("k", t0);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let d = l.check("k", t0);
        assert!(!d.allowed);
        assert_eq!(d.retry_after, 1);
        assert!(l.check("other", t0).allowed, "buckets are per key");
        assert!(l.check("k", t0 + Duration::from_millis(1001)).allowed);
    }
}
