//! The glommio backend's connection: one task per connection that reads,
//! hands the bytes to its [`Session`], writes the answers in one go, repeats.
//!
//! The connection owns two buffers for its whole life: the input buffer
//! (exactly `max_head_bytes`, so a head that does not fit is refused rather
//! than grown) and the output buffer (grows to the largest batch once). A
//! request costs a parse, a lookup, some `extend_from_slice` calls and its
//! share of one `write`: no allocation, no lock.
//!
//! Deadlines ([`Session::cutoff`]) are enforced by the core's sweeper
//! ([`super::timers`]), not by a timer per read: it shuts the socket's read
//! side, which ends the pending read, and marks why.

use super::timers::{Deadline, Sweeper};
use crate::core::Core;
use crate::core::session::{Session, timeout_answer};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A client that does not read its answers is dropped after this.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
pub(super) const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Counts the connection as open, and as busy while a request is under way.
pub(super) struct Tracker<'a> {
    core: &'a Core,
    busy: bool,
}

impl<'a> Tracker<'a> {
    pub(super) fn new(core: &'a Core) -> Self {
        core.open.set(core.open.get() + 1);
        core.metrics.connections_open.add(1);
        Tracker { core, busy: false }
    }

    pub(super) fn set_busy(&mut self, busy: bool) {
        if busy != self.busy {
            self.busy = busy;
            let count = self.core.busy.get();
            self.core.busy.set(if busy { count + 1 } else { count - 1 });
        }
    }
}

impl Drop for Tracker<'_> {
    fn drop(&mut self) {
        self.set_busy(false);
        self.core.open.set(self.core.open.get() - 1);
        self.core.metrics.connections_open.add(-1);
    }
}

/// The connection's deadline, unregistered before the socket closes.
pub(super) struct Registered<'a> {
    sweeper: &'a Sweeper,
    deadline: Rc<Deadline>,
}

impl<'a> Registered<'a> {
    pub(super) fn new(
        sweeper: &'a Sweeper,
        fd: std::os::fd::RawFd,
        first_byte_by: Instant,
    ) -> Self {
        Registered {
            sweeper,
            deadline: sweeper.register(fd, first_byte_by),
        }
    }
}

impl std::ops::Deref for Registered<'_> {
    type Target = Deadline;

    fn deref(&self) -> &Deadline {
        &self.deadline
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.sweeper.unregister(&self.deadline);
    }
}

pub async fn serve(mut stream: TcpStream, core: Rc<Core>, sweeper: Rc<Sweeper>) {
    let core = &*core;
    let mut tracker = Tracker::new(core);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = vec![0u8; core.limits.max_head].into_boxed_slice();
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut filled = 0usize;
    let accepted = Instant::now();
    let mut session = Session::new(accepted);
    let timer = Registered::new(
        &sweeper,
        stream.as_raw_fd(),
        accepted + core.crowded_first_byte,
    );
    // Click records and redirect rules need the peer (one system call per
    // connection; links with rules may arrive in any delta).
    let peer = stream.peer_addr().map_or(UNSPECIFIED, |a| a.ip());

    loop {
        let pending = session.pending(filled);
        if !pending && core.draining.get() {
            return;
        }
        // The crowded first-byte deadline is the sweeper's (it knows when
        // the core is crowded).
        timer.set(session.cutoff(core, filled, false));
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(n) if n > 0 => n,
            _ if timer.fired() && pending => {
                // Too slow: tell the client why, then hang up.
                out.clear();
                timeout_answer(core, &mut out);
                let _ = stream.write_all(&out).await;
                return;
            }
            _ => {
                if timer.fired() && session.is_fresh() {
                    core.metrics.first_byte_timeouts.inc();
                }
                return;
            }
        };
        if session.is_fresh() {
            timer.first_byte_arrived();
        }
        let arrived = Instant::now();
        session.arrived(core, filled, arrived);
        tracker.set_busy(true);
        filled += n;

        let now_ms = crate::clock::unix_ms();
        let mut start = 0usize;
        let mut answered = 0u64;
        let close = loop {
            let progress =
                session.process(core, &buf[start..filled], peer, arrived, now_ms, &mut out);
            start += progress.consumed;
            answered += progress.answered;
            if progress.close || !progress.full {
                break progress.close;
            }
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        };
        if !out.is_empty() {
            let written = stream.write_all(&out).await;
            out.clear();
            if written.is_err() {
                return;
            }
            let elapsed = arrived.elapsed().as_nanos() as u64;
            core.metrics.observe_latency(elapsed, answered);
        }
        if close || (core.draining.get() && !session.pending(filled - start)) {
            return;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if session.settle(filled) {
            tracker.set_busy(false);
        }
    }
}
