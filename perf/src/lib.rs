//! The perf lab: a load generator that is never the bottleneck, the
//! reference servers and the side-by-side harness's summary.
//!
//! # The model
//!
//! A run is a pre-encoded request sequence ([`keys::Workload`]: codes drawn
//! uniformly or Zipf-distributed from a list or a snapshot, with a share of
//! unknown codes expecting 404) played by a few threads, each owning an
//! epoll instance and a set of connection slots ([`load`]). Nothing is
//! formatted or allocated per request; each response is delimited and its
//! status checked against the one expected for its code ([`response`]).
//! Closed loop measures the ceiling; open loop sends at a fixed rate and
//! records latency from each request's *intended* send time, so a stalled
//! server cannot hide its queue (coordinated omission). Latencies go into
//! an hdrhistogram; [`stats::Summary`] is printed and written as JSON.
//!
//! Why epoll and not tokio: the generator must out-drive the servers it
//! measures on one core, and a runtime's task machinery costs more per
//! request than the redirect server being measured (see README.md, "The
//! generator against wrk").
//!
//! Connections follow a [`mode::Mode`]: kept open or one request per new
//! connection, plain or over TLS ([`tls`]: a rustls client on aws-lc-rs,
//! the engine's provider, driven by the same epoll loop).
//!
//! Only loopback targets are accepted ([`target`]): load on any other
//! address is forbidden on this machine.
//!
//! # Layout
//! - [`target`]: address resolution and the loopback rule.
//! - [`keys`]: code lists, distributions, the pre-encoded sequence.
//! - [`zipf`], [`rng`]: sampling used while building the sequence.
//! - [`load`]: the per-thread epoll loop, pinning, the run.
//! - [`mode`]: keep-alive or new connections, plain or TLS.
//! - [`tls`]: the rustls client config and the per-slot ticket store.
//! - [`response`]: delimiting responses.
//! - [`stats`]: counters, percentiles, the JSON summary.
//! - [`summary`]: the harness's table from a results directory; [`svg`] its plot.
//! - [`pages`]: a web application's pages, one signed-in person's requests
//!   (`perf pages`, the dashboard benchmark `perf/dashboard.sh`).

pub mod keys;
pub mod load;
pub mod mode;
pub mod pages;
pub mod response;
pub mod rng;
pub mod stats;
pub mod summary;
pub mod svg;
pub mod target;
pub mod tls;
pub mod zipf;
