//! Prometheus metrics in the text exposition format, from plain atomics:
//! a handful of counters and gauges do not need a metrics framework.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// A monotonically increasing counter.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicU64);

impl Gauge {
    pub fn set(&self, v: u64) {
        self.0.store(v, Ordering::Relaxed);
    }
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A short text that is set while something is wrong (for `/readyz`).
#[derive(Debug, Default)]
pub struct Problem(Mutex<Option<String>>);

impl Problem {
    pub fn set(&self, problem: Option<String>) {
        *self.0.lock().expect("problem lock") = problem;
    }
    pub fn get(&self) -> Option<String> {
        self.0.lock().expect("problem lock").clone()
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests by (method, route template, status). The labels are static
    /// strings from closed sets ([`crate::middleware`]), so the map stays small
    /// whatever clients send.
    requests: Mutex<BTreeMap<(&'static str, &'static str, u16), u64>>,
    pub links_written: Counter,
    pub rate_limited: Counter,
    pub relay_published: Counter,
    pub relay_errors: Counter,
    /// Publishes refused because something else moved the stream.
    pub relay_resyncs: Counter,
    pub relay_published_seq: Gauge,
    pub snapshots_built: Counter,
    pub snapshot_pushes: Counter,
    pub snapshot_push_errors: Counter,
    /// Snapshot files sent to pulling engines, and pulls answered 304.
    pub snapshot_pulls: Counter,
    pub snapshot_pulls_not_modified: Counter,
    pub latest_snapshot_seq: Gauge,
    /// 1 while this instance holds the leadership lock (`crate::leader`).
    pub leader: Gauge,
    /// Why the relay refuses the links stream (its settings differ), if it does.
    pub links_stream_problem: Problem,
    // accounts
    /// argon2 runs (hashing a new password, or verifying one, real or dummy).
    pub password_hashes: Counter,
    /// Sign-ins refused for a wrong e-mail or password.
    pub logins_failed: Counter,
    // webhooks (this instance's attempts)
    /// Attempts answered 2xx.
    pub webhook_delivered: Counter,
    /// Attempts that failed (another status, a timeout, no connection).
    pub webhook_failed: Counter,
    /// Deliveries that used their last attempt (dead letters).
    pub webhook_dead: Counter,
    /// Times an endpoint's breaker opened (or reopened after a probe).
    pub webhook_breaker_opened: Counter,
    /// Endpoints whose breaker is open now (every instance's view).
    pub webhook_breakers_open: Gauge,
    /// Deliveries waiting to be sent (due or not).
    pub webhook_pending: Gauge,
    /// Enriched clicks this instance read from the enriched stream
    /// (`crate::webhooks::clicks`).
    pub webhook_clicks_read: Counter,
    /// Of those, clicks written into `link.clicked` events (their
    /// organization has an endpoint for them).
    pub webhook_clicks_evented: Counter,
    /// Messages on the enriched subjects that are not an enriched click of
    /// the organization their subject names (dropped).
    pub webhook_clicks_refused: Counter,
    /// Delivered deliveries and finished events removed by the pruning
    /// task (`crate::webhooks::prune`).
    pub webhook_pruned: Counter,
    // visit leases (this instance's answers, `crate::leases`)
    pub lease_requests: Counter,
    /// Requests refused (malformed, another node's subject).
    pub lease_refused: Counter,
    pub lease_visits_granted: Counter,
    pub lease_visits_returned: Counter,
    /// Expired leases never given back, forgotten (visits stay counted).
    pub lease_swept: Counter,
}

impl Metrics {
    pub fn observe_request(&self, method: &'static str, route: &'static str, status: u16) {
        let mut map = self.requests.lock().expect("metrics lock");
        *map.entry((method, route, status)).or_default() += 1;
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        out.push_str("# TYPE control_http_requests_total counter\n");
        for ((method, route, status), n) in self.requests.lock().expect("metrics lock").iter() {
            let _ = writeln!(
                out,
                "control_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {n}"
            );
        }
        let counters = [
            ("control_links_written_total", self.links_written.get()),
            ("control_rate_limited_total", self.rate_limited.get()),
            ("control_relay_published_total", self.relay_published.get()),
            ("control_relay_errors_total", self.relay_errors.get()),
            ("control_relay_resyncs_total", self.relay_resyncs.get()),
            ("control_snapshots_built_total", self.snapshots_built.get()),
            ("control_snapshot_pushes_total", self.snapshot_pushes.get()),
            (
                "control_snapshot_push_errors_total",
                self.snapshot_push_errors.get(),
            ),
            ("control_snapshot_pulls_total", self.snapshot_pulls.get()),
            (
                "control_snapshot_pulls_not_modified_total",
                self.snapshot_pulls_not_modified.get(),
            ),
            ("control_password_hashes_total", self.password_hashes.get()),
            ("control_logins_failed_total", self.logins_failed.get()),
            (
                "control_webhook_deliveries_total",
                self.webhook_delivered.get(),
            ),
            ("control_webhook_failures_total", self.webhook_failed.get()),
            (
                "control_webhook_dead_letters_total",
                self.webhook_dead.get(),
            ),
            (
                "control_webhook_breaker_opened_total",
                self.webhook_breaker_opened.get(),
            ),
            (
                "control_webhook_clicks_read_total",
                self.webhook_clicks_read.get(),
            ),
            (
                "control_webhook_clicks_evented_total",
                self.webhook_clicks_evented.get(),
            ),
            (
                "control_webhook_clicks_refused_total",
                self.webhook_clicks_refused.get(),
            ),
            ("control_webhook_pruned_total", self.webhook_pruned.get()),
            ("control_lease_requests_total", self.lease_requests.get()),
            (
                "control_lease_requests_refused_total",
                self.lease_refused.get(),
            ),
            (
                "control_lease_visits_granted_total",
                self.lease_visits_granted.get(),
            ),
            (
                "control_lease_visits_returned_total",
                self.lease_visits_returned.get(),
            ),
            ("control_leases_swept_total", self.lease_swept.get()),
        ];
        for (name, v) in counters {
            let _ = writeln!(out, "# TYPE {name} counter\n{name} {v}");
        }
        let gauges = [
            (
                "control_relay_published_seq",
                self.relay_published_seq.get(),
            ),
            (
                "control_latest_snapshot_seq",
                self.latest_snapshot_seq.get(),
            ),
            ("control_leader", self.leader.get()),
            (
                "control_links_stream_mismatch",
                u64::from(self.links_stream_problem.get().is_some()),
            ),
            (
                "control_webhook_breakers_open",
                self.webhook_breakers_open.get(),
            ),
            ("control_webhook_pending", self.webhook_pending.get()),
        ];
        for (name, v) in gauges {
            let _ = writeln!(out, "# TYPE {name} gauge\n{name} {v}");
        }
        out
    }
}
