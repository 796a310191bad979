//! The redirect node: `GET /{code}` answered from a memory-mapped link
//! snapshot plus the change stream, one pinned executor per core.
//!
//! # The model
//!
//! Each core runs a glommio `LocalExecutor` pinned to one CPU with its own
//! `SO_REUSEPORT` listener, its own connections, its own `Arc` of the current
//! snapshot, its own delta map and its own counters ([`core::Core`]). Its
//! socket I/O is done by one of two backends ([`backend`]): by default its
//! own io_uring ([`backend::uring`]: multishot accept and receive into
//! provided buffers, one send per connection per loop turn, completions that
//! never interrupt the core), or glommio's sockets ([`backend::glommio_net`]).
//! Either hands the bytes to the connection's [`core::session`]: a request is
//! parsed in place with httparse ([`http::request`]), looked up in the delta
//! map and then the snapshot ([`core::state`]), and answered from
//! preformatted bytes into the connection's reused output buffer
//! ([`http::response`]); pipelined requests received together are answered
//! with one send. Nothing on that path allocates, locks, or writes memory
//! another core writes.
//!
//! Everything else happens on one control thread ([`control`]) that talks to
//! the cores only through their bounded command channels
//! ([`core::command`], reached through [`shared`]): the admin port
//! ([`admin`]), snapshot loads and pushes ([`loader`]: checked once,
//! pre-faulted, then swapped on every core; a request in flight sees the old
//! or the new one, never neither), the `LINKS` change stream ([`links`]), and
//! signals. Why a command channel polled on a 5 ms tick rather than a wake-up
//! per message: it keeps cross-thread traffic off the request path entirely,
//! and a change applied 5 ms later is well within what the change stream
//! promises (measured publish-to-served on an idle engine: README).
//!
//! What crosses into the engine from outside is checked where it enters:
//! link changes carry control's Ed25519 signature ([`links`]); pushed
//! snapshots need the admin token, come one at a time, within a size limit
//! and a plausible sequence ([`admin`], [`loader`]); the streams the engine
//! uses are their owners', with limits ([`streams`]). What it keeps at rest
//! (pushed snapshots, the click spool) is in its own private directory
//! ([`state_dir`]), and no full client address leaves the process.
//!
//! # Layout
//! - [`config`]: the settings, their defaults, their checks (loaded with
//!   `servicekit::config`).
//! - [`server`]: start-up (CPU choice, snapshot, click publisher, the cores,
//!   readiness line) and shutdown.
//! - [`core`]: per-core state, knowing no backend: [`core::Core`] (settings,
//!   counters, click batch, flags), [`core::command`] (the tick and the
//!   commands it drains), [`core::session`] (the HTTP exchange of a
//!   connection, shared by both backends), [`core::state`] (the lookup).
//! - [`backend`]: picks the I/O backend and runs each core's thread
//!   (executor, listener, tick, shutdown); [`backend::error`] says why a core
//!   could not start. [`backend::uring`] is the io_uring backend (ring set-up,
//!   provided buffers, connection slots); [`backend::glommio_net`] is
//!   glommio's sockets (accept loop, a task per connection, the deadline
//!   sweeper).
//! - [`clock`]: the wall clock (`servicekit::clock`), each core's cached
//!   second, the per-turn clock of the uring loop.
//! - [`http`]: request parsing, response writing, the `Date` header.
//! - [`metrics`]: per-core single-writer counters.
//! - [`sched`]: cores run as normal threads, everything else `SCHED_BATCH`.
//! - [`shared`], [`control`], [`loader`], [`links`]: the control side;
//!   [`admin`] is its HTTP port (routes and handlers, [`admin::prometheus`],
//!   [`admin::error`]).
//! - [`clicks`]: per-core click batches, the publisher thread, the disk spool.
//! - [`leases`]: visit leases for links with `max_visits`: asked of control
//!   on NATS, handed to the cores in slices ([`core::visits`]), unused
//!   visits given back (docs/max-visits.md).
//! - [`state_dir`]: the engine's private directory (pushed snapshot
//!   generations, the spool): modes, lock, directory fsyncs.
//! - [`streams`]: the `LINKS` and `CLICKS` streams the engine uses but does
//!   not own: looked up, waited for, refused without limits.
//! - [`tls`]: certificates per SNI name from a directory (checked, reloaded),
//!   the node's rustls configuration (aws-lc-rs, tickets), and a
//!   buffer-driven TLS connection for the backends.
//!
//! No module imports one that imports it back (`deploy/check-cycles.sh`).

pub mod admin;
pub mod backend;
pub mod clicks;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod geoip;
pub mod http;
pub mod leases;
pub mod links;
pub mod loader;
pub mod metrics;
pub mod sched;
pub mod server;
pub mod shared;
pub mod snapshot_pull;
pub mod state_dir;
pub mod streams;
#[cfg(test)]
mod test_alloc;
pub mod tls;
pub mod tls_control;
