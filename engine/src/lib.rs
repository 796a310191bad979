//! The redirect node: `GET /{code}` answered from a memory-mapped link
//! snapshot plus the change stream, one pinned executor per core.
//!
//! # The model
//!
//! Each core runs a glommio `LocalExecutor` pinned to one CPU with its own
//! `SO_REUSEPORT` listener, its own connections, its own `Arc` of the current
//! snapshot, its own delta map and its own counters ([`core`]). Its socket
//! I/O is done by one of two backends: by default its own io_uring
//! ([`uring`]: multishot accept and receive into provided buffers, one send
//! per connection per loop turn, completions that never interrupt the core),
//! or glommio's sockets ([`core::conn`]). Either hands the bytes to the
//! connection's [`core::session`]: a request is parsed in place with httparse
//! ([`http::request`]), looked up in the delta map and then the snapshot
//! ([`core::state`]), and answered from preformatted bytes into the
//! connection's reused output buffer ([`http::response`]); pipelined requests
//! received together are answered with one send. Nothing on that path
//! allocates, locks, or writes memory another core writes.
//!
//! Everything else happens on one control thread ([`control`]) that talks to
//! the cores only through their bounded command channels ([`shared`]): the
//! admin port ([`admin`]), snapshot loads and pushes ([`loader`]: checked
//! once, pre-faulted, then swapped on every core; a request in flight sees
//! the old or the new one, never neither), the `LINKS` change stream
//! ([`links`]), and signals. Why a command channel polled on a 5 ms tick
//! rather than a wake-up per message: it keeps cross-thread traffic off the
//! request path entirely, and a change applied 5 ms later is well within
//! what the change stream promises.
//!
//! # Layout
//! - [`config`]: the settings, their defaults, their checks.
//! - [`server`]: start-up (CPU choice, executor checks, readiness line) and shutdown.
//! - [`core`]: executors, per-core clock, the choice of I/O backend;
//!   [`core::session`] is the HTTP exchange of a connection, shared by both
//!   backends; [`core::state`] is the lookup.
//! - [`uring`]: the io_uring backend (the default where the kernel has it):
//!   one ring per core with multishot accept and receive, provided buffers,
//!   and one send per connection per loop turn.
//! - [`core::conn`] and [`core::timers`]: the glommio backend (a task per
//!   connection, glommio's sockets) and its deadline sweeper.
//! - [`http`]: request parsing, response writing, the `Date` header.
//! - [`metrics`]: per-core single-writer counters.
//! - [`sched`]: cores run as normal threads, everything else `SCHED_BATCH`.
//! - [`shared`], [`control`], [`admin`], [`loader`], [`links`]: the control side.
//! - [`clicks`]: per-core click batches, the publisher thread, the disk spool.

pub mod admin;
pub mod backend;
pub mod clicks;
pub mod clock;
pub mod config;
pub mod control;
pub mod core;
pub mod http;
pub mod links;
pub mod loader;
pub mod metrics;
pub mod sched;
pub mod server;
pub mod shared;
#[cfg(test)]
mod test_alloc;
