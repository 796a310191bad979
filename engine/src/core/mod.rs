//! One core's state: what it serves from, its connections' shared
//! settings, its counters, its click batch, and what it does on each tick.
//!
//! A core is one thread pinned to one CPU running a glommio executor; which
//! code moves the bytes of its connections is the [`crate::backend`]'s
//! business, and this module knows none of them. Every backend hands the
//! bytes of a connection to a [`session::Session`], which answers from
//! [`state::CoreState`] (the lookup) through the [`Core`]. A tick every
//! [`TICK`] ([`command::tick`]) refreshes the cached `Date` (once a second), ages
//! the click batch and drains the core's command channel ([`command`]:
//! snapshot swaps, deltas, TLS configurations, visit slices, shutdown), so cross-thread
//! messages never touch the request path. Who runs the tick is the backend's choice: a glommio timer
//! task on glommio's sockets, the ring's own loop on the io_uring backend
//! (whose glommio timers only fire when glommio's preemption timer lets its
//! reactor run, every 100 ms, which once made an idle core apply a change up
//! to 100 ms late).

pub mod command;
pub mod domains;
pub mod fxhash;
pub mod gate;
pub mod lifecycle;
pub mod rules;
pub mod session;
pub mod state;
pub mod visits;

use crate::clicks::ClickBuffer;
use crate::clicks::client_ip::Cidr;
use crate::clicks::client_ip::ClientIpHeader;
use crate::clock::CoreClock;
use crate::config::Config;
use crate::http::request::Limits;
use crate::http::response::{Canned, Preformatted};
use crate::metrics::CoreMetrics;
use snapshots::Snapshot;
use state::CoreState;
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::time::Duration;

/// How often a core looks at its command channel and the clock.
pub const TICK: Duration = Duration::from_millis(5);
/// Ticks between two sweeps of connection deadlines (5 ms ticks: 100 ms), so
/// header and idle timeouts hold to within 100 ms on either backend.
pub const SWEEP_EVERY: u32 = 20;

/// Everything a core's tasks share. Single-threaded: `Rc`, `Cell`, `RefCell`.
pub struct Core {
    pub id: usize,
    pub state: RefCell<CoreState>,
    pub pre: RefCell<Preformatted>,
    /// Unix seconds, refreshed by the tick (link expiry, the `Date` header).
    pub clock: CoreClock,
    pub metrics: Arc<CoreMetrics>,
    pub limits: Limits,
    pub gone: Canned,
    pub root_redirect: Option<Box<[u8]>>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// A new connection's first-byte deadline while the core is crowded.
    pub crowded_first_byte: Duration,
    /// Connection slots of this core.
    pub max_connections: usize,
    pub max_body: u64,
    /// Open connections.
    pub open: Cell<usize>,
    /// Connections in the middle of a request.
    pub busy: Cell<usize>,
    /// Set on shutdown: connections close after their current answer.
    pub draining: Cell<bool>,
    /// Set on shutdown, before draining: the listener closes.
    pub stop_accepting: Cell<bool>,
    /// Set when the core is done: the I/O loop ends.
    pub stopped: Cell<bool>,
    /// Set by the ring's loop when its tick was told to stop (the io_uring
    /// backend, which ticks itself).
    pub stop_requested: Cell<bool>,
    /// The core's click batch; `None` when clicks are off.
    pub clicks: RefCell<Option<ClickBuffer>>,
    /// Peers whose forwarding headers name the client.
    pub proxies: Vec<Cidr>,
    /// The one header that names the client behind them.
    pub client_ip_header: ClientIpHeader,
    /// Bits of a client address kept in click records.
    pub ipv4_prefix: u8,
    pub ipv6_prefix: u8,
    /// The TLS configuration new TLS connections start from (the latest the
    /// control thread sent, [`command::Command::Tls`]); `None` without TLS.
    /// Established connections keep the one they started with.
    pub tls: RefCell<Option<Arc<rustls::ServerConfig>>>,
    /// The GeoIP database country rules read (`--geoip`), shared by every
    /// core; `None`: country rules never match.
    pub geoip: Option<Arc<crate::geoip::GeoIp>>,
    /// Password checks and their limits ([`gate`]).
    pub gate: RefCell<gate::Gate>,
    /// This core's slices of the visits leased for links with `max_visits`
    /// ([`visits`]).
    pub visits: RefCell<visits::Slices>,
}

impl Core {
    pub fn new(
        id: usize,
        config: &Config,
        metrics: Arc<CoreMetrics>,
        snapshot: Option<Arc<Snapshot>>,
        clicks: Option<ClickBuffer>,
    ) -> Core {
        let clock = CoreClock::new();
        if let Some(s) = &snapshot {
            metrics.snapshot_sequence.set(s.sequence() as i64);
        }
        Core {
            id,
            state: RefCell::new(CoreState::new(snapshot, config.unknown_host)),
            pre: RefCell::new(Preformatted::new(config.permanent_max_age, &clock.date())),
            clock,
            metrics,
            limits: Limits {
                max_uri: config.max_uri_bytes,
                max_head: config.max_head_bytes,
            },
            gone: if config.gone_status == 404 {
                Canned::NotFound
            } else {
                Canned::Gone
            },
            root_redirect: config
                .root_redirect
                .as_ref()
                .map(|url| url.as_bytes().to_vec().into_boxed_slice()),
            header_timeout: config.header_timeout(),
            idle_timeout: config.idle_timeout(),
            crowded_first_byte: config.crowded_first_byte_timeout(),
            max_connections: config.max_connections_per_core,
            max_body: config.max_body_bytes,
            open: Cell::new(0),
            busy: Cell::new(0),
            draining: Cell::new(false),
            stop_accepting: Cell::new(false),
            stopped: Cell::new(false),
            stop_requested: Cell::new(false),
            clicks: RefCell::new(clicks),
            // Checked by Config::validate before any core starts.
            proxies: config.proxies().unwrap_or_default(),
            client_ip_header: config.client_ip_header,
            ipv4_prefix: config.click_ipv4_prefix,
            ipv6_prefix: config.click_ipv6_prefix,
            tls: RefCell::new(None),
            geoip: None,
            gate: RefCell::new(gate::Gate::default()),
            visits: RefCell::new(visits::Slices::new(id)),
        }
    }

    /// More than 3/4 of the core's connection slots are taken: new
    /// connections get the short first-byte deadline. Read by the deadline
    /// sweeps, never per request.
    #[inline]
    pub fn crowded(&self) -> bool {
        self.open.get().saturating_mul(4) > self.max_connections.saturating_mul(3)
    }
}
