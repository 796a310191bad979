//! What a run measured: per-thread counters merged into one [`Summary`],
//! printed for people and serialized as JSON for the harness.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Failures, by kind. A failed connection loses its in-flight requests
/// (counted in [`Summary::lost`]) and is reopened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Errors {
    /// `connect()` failed.
    pub connect: u64,
    /// Read failed, or the peer closed with requests in flight.
    pub read: u64,
    /// Write failed.
    pub write: u64,
    /// A response whose status was not the one expected for its code.
    pub status: u64,
    /// A response that could not be delimited, or one nobody asked for.
    pub parse: u64,
    /// A TLS handshake or record the client refused (or rustls could not
    /// start a connection).
    pub tls: u64,
}

impl Errors {
    pub fn total(&self) -> u64 {
        self.connect + self.read + self.write + self.status + self.parse + self.tls
    }

    fn add(&mut self, o: &Errors) {
        self.connect += o.connect;
        self.read += o.read;
        self.write += o.write;
        self.status += o.status;
        self.parse += o.parse;
        self.tls += o.tls;
    }
}

/// TLS handshakes completed, by kind, and what the first one negotiated.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TlsStats {
    pub handshakes: u64,
    pub full: u64,
    /// Full handshakes with a HelloRetryRequest (none expected: the client
    /// offers an X25519 key share, the only group it supports).
    pub hello_retry: u64,
    /// Handshakes the server resumed (rustls's `handshake_kind()`).
    pub resumed: u64,
    /// tls-resume: TLS 1.3 session tickets received (the other modes keep
    /// none, and count none).
    pub tickets: u64,
    /// Negotiated version, cipher suite and key exchange group, e.g.
    /// `TLSv1_3 TLS13_AES_128_GCM_SHA256 X25519`.
    pub negotiated: Option<String>,
}

impl TlsStats {
    fn add(&mut self, o: &TlsStats) {
        self.handshakes += o.handshakes;
        self.full += o.full;
        self.hello_retry += o.hello_retry;
        self.resumed += o.resumed;
        if self.negotiated.is_none() {
            self.negotiated.clone_from(&o.negotiated);
        }
    }
}

/// One thread's counters.
#[derive(Debug, Clone)]
pub struct ThreadStats {
    /// Latency in ns from the intended send time to the end of the response.
    pub hist: Histogram<u64>,
    /// Responses received whose intended send time is in the measured window.
    pub completed: u64,
    pub errors: Errors,
    pub lost: u64,
    pub reconnects: u64,
    /// Connections established.
    pub connects: u64,
    pub tls: TlsStats,
    pub statuses: BTreeMap<u16, u64>,
    /// CPU time of the thread over the run.
    pub cpu: Duration,
    /// Measured window of this thread.
    pub window: Duration,
}

impl ThreadStats {
    pub fn new() -> ThreadStats {
        ThreadStats {
            hist: Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("valid bounds"),
            completed: 0,
            errors: Errors::default(),
            lost: 0,
            reconnects: 0,
            connects: 0,
            tls: TlsStats::default(),
            statuses: BTreeMap::new(),
            cpu: Duration::ZERO,
            window: Duration::ZERO,
        }
    }
}

impl Default for ThreadStats {
    fn default() -> Self {
        ThreadStats::new()
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

/// The result of a run, as written by `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub target: String,
    /// `closed` (as fast as responses come back) or `open` (fixed rate).
    pub mode: String,
    /// How requests use connections ([`crate::mode::Mode`]): `keepalive`,
    /// `close`, `tls-keepalive`, `tls-full` or `tls-resume`.
    pub connection_mode: String,
    /// Requested rate of an open-loop run, requests/s.
    pub rate: Option<f64>,
    pub connections: usize,
    pub threads: usize,
    pub pin: Vec<usize>,
    pub depth: usize,
    /// Distribution, unknown share and key count.
    pub workload: String,
    /// Measured window, seconds (warm-up excluded).
    pub duration_s: f64,
    /// Responses received.
    pub requests: u64,
    /// Responses with the expected status.
    pub ok: u64,
    pub rps: f64,
    pub errors: Errors,
    /// Requests in flight on connections that failed.
    pub lost: u64,
    /// Connections the server closed (`Connection: close` or EOF) with
    /// nothing in flight, outside the new-connection modes.
    pub reconnects: u64,
    /// Connections established over the whole run (warm-up included).
    pub connects: u64,
    /// TLS modes: handshakes over the whole run (warm-up included).
    pub tls: Option<TlsStats>,
    pub statuses: BTreeMap<u16, u64>,
    pub latency_us: Latency,
    /// CPU time of the load generator's threads.
    pub client_cpu_s: f64,
    /// Client CPU time per response, ns: the generator's own cost.
    pub client_cpu_ns_per_request: f64,
}

impl Summary {
    pub fn merge(parts: Vec<ThreadStats>) -> (ThreadStats, f64) {
        let mut all = ThreadStats::new();
        let mut window = 0f64;
        for p in parts {
            all.hist.add(&p.hist).expect("same bounds");
            all.completed += p.completed;
            all.errors.add(&p.errors);
            all.lost += p.lost;
            all.reconnects += p.reconnects;
            all.connects += p.connects;
            all.tls.add(&p.tls);
            for (s, n) in p.statuses {
                *all.statuses.entry(s).or_default() += n;
            }
            all.cpu += p.cpu;
            window = window.max(p.window.as_secs_f64());
        }
        (all, window)
    }

    pub fn latency(hist: &Histogram<u64>) -> Latency {
        let us = |ns: u64| ns as f64 / 1000.0;
        if hist.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: us(hist.value_at_quantile(0.5)),
            p90: us(hist.value_at_quantile(0.9)),
            p99: us(hist.value_at_quantile(0.99)),
            p999: us(hist.value_at_quantile(0.999)),
            max: us(hist.max()),
            mean: hist.mean() / 1000.0,
        }
    }

    /// The human-readable report.
    pub fn print(&self) -> String {
        let l = &self.latency_us;
        let mut s = format!(
            "{} {}, {} loop{}, {} connections on {} threads (pin {:?}), depth {}, {}\n",
            self.target,
            self.connection_mode,
            self.mode,
            self.rate
                .map(|r| format!(" at {r:.0} req/s"))
                .unwrap_or_default(),
            self.connections,
            self.threads,
            self.pin,
            self.depth,
            self.workload
        );
        s += &format!(
            "  {:.0} requests/s ({} responses in {:.2}s, {} as expected)\n",
            self.rps, self.requests, self.duration_s, self.ok
        );
        s += &format!(
            "  latency us: p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  mean {:.1}\n",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        let e = &self.errors;
        s += &format!(
            "  errors: connect {} read {} write {} status {} parse {} tls {}; lost {} reconnects {}; {} connections opened\n",
            e.connect,
            e.read,
            e.write,
            e.status,
            e.parse,
            e.tls,
            self.lost,
            self.reconnects,
            self.connects
        );
        if let Some(t) = &self.tls {
            s += &format!(
                "  TLS: {} handshakes, {} full ({} with hello retry), {} resumed ({:.1}%), {} tickets kept; {}\n",
                t.handshakes,
                t.full,
                t.hello_retry,
                t.resumed,
                if t.handshakes > 0 {
                    t.resumed as f64 * 100.0 / t.handshakes as f64
                } else {
                    0.0
                },
                t.tickets,
                t.negotiated.as_deref().unwrap_or("nothing negotiated")
            );
        }
        s += &format!("  statuses: {:?}\n", self.statuses);
        s += &format!(
            "  client CPU {:.2}s = {:.0} ns per request\n",
            self.client_cpu_s, self.client_cpu_ns_per_request
        );
        s
    }
}
