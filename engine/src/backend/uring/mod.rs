//! The io_uring backend: one ring per core, driven by one glommio task.
//!
//! glommio 0.9's sockets receive and send with ordinary system calls and use
//! its rings only to wait for readiness, re-arming a poll per request, and
//! its rings interrupt the core on every completion. This backend does the
//! socket I/O itself, on a ring of its own per core:
//!
//! - one multishot accept on the core's `SO_REUSEPORT` listener;
//! - one multishot receive per connection into a provided-buffer ring
//!   (`bufring`): the kernel picks the buffer, requests are parsed straight
//!   out of it, and it goes back to the kernel before the turn ends;
//! - answers go into the connection's output buffer, and each connection's
//!   output of the whole turn is sent with one send, submitted together with
//!   everything else the turn queued in one `io_uring_enter` that also
//!   waits for the next completions;
//! - the ring is set up with `DEFER_TASKRUN` and `SINGLE_ISSUER` (or
//!   `COOP_TASKRUN`, or nothing, by kernel; [`setup`]), so completions never
//!   interrupt the core: they are run when the loop asks for them.
//!
//! The loop is a glommio task, so glommio stays the core's executor. The
//! loop runs the core's tick itself (the `Date` header, commands such as a
//! link change, click batch ages) every [`TICK`], waiting in its own ring
//! for at most the time to the next one, so an idle core applies a change
//! within 5 ms of receiving it. It does not leave the tick to a glommio timer
//! task: the loop is always runnable, so glommio's reactor (which fires
//! timers) runs only when glommio's preemption timer expires, every 100 ms,
//! and changes reached idle cores 40-100 ms late. The loop still yields to
//! glommio every tick for the core's other tasks (the shutdown sequence).
//! Nothing else on the core uses glommio's I/O.
//!
//! With TLS on, every core also has a multishot accept on its `SO_REUSEPORT`
//! TLS listener; its connections hold a `TlsConn` in their slot and take
//! the same path through the loop, with decryption and encryption around
//! the session ([`tls`]). A plain connection pays one branch per receive.
//!
//! Deadlines are swept here every 100 ms, as in the glommio backend: a
//! connection whose head is late gets 408, a silent or idle one is closed
//! (a new connection gets the shorter first-byte deadline while the core's
//! slots are more than 3/4 full), and one whose send has not finished within
//! 10 s (a client that does not read) is dropped. Back-pressure: at 64 KiB of unsent answers a connection stops
//! answering and keeps input in its stash; at 32 KiB of stash its receive is
//! cancelled until the output drains, so the TCP window closes on the client.

mod bufring;
pub mod conn;
pub mod setup;
mod tls;

use crate::clock::TurnClock;
use crate::core::command::{self, Command};
use crate::core::session::timeout_answer;
use crate::core::{Core, SWEEP_EVERY, TICK};
use crate::tls::conn::TlsConn;
use bufring::BufRing;
use conn::{Conn, Slab};
use io_uring::squeue::Entry;
use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode};
use setup::Flavor;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{BorrowedFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Bytes per provided receive buffer: a typical request head and then some;
/// a longer one arrives in several completions and is joined in the stash.
pub const BUFFER_SIZE: usize = 4096;
/// A send that has not finished after this is abandoned with its connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Stash size at which a blocked connection stops receiving: a few heads'
/// worth, so a client that pipelines without reading holds about what it
/// would on the glommio backend (its input buffer plus 64 KiB of answers).
const STASH_PAUSE: usize = 32 * 1024;
/// Accept failures (out of descriptors and the like) back off this long.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);
const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);
const BUFFER_GROUP: u16 = 0;

/// What an operation is, in the top byte of its user data.
const ACCEPT: u64 = 1;
const RECV: u64 = 2;
const SEND: u64 = 3;
/// Completions nobody waits for: closes and cancels.
const QUIET: u64 = 4;
/// The TLS listener's accept.
const TLS_ACCEPT: u64 = 5;

#[inline]
fn user_data(kind: u64, slot: u32, generation: u32) -> u64 {
    (kind << 56) | (u64::from(generation) << 24) | u64::from(slot & 0x00ff_ffff)
}

#[inline]
fn split(user_data: u64) -> (u64, u32, u32) {
    (
        user_data >> 56,
        (user_data & 0x00ff_ffff) as u32,
        (user_data >> 24) as u32,
    )
}

/// Connection slots are 24 bits of the user data.
const MAX_SLOTS: u32 = 1 << 24;

/// One core's ring, its buffers, its listener and its connections. Field
/// order is drop order: the ring goes before the memory it may write.
pub struct Driver {
    ring: IoUring,
    buffers: BufRing,
    core: Rc<Core>,
    flavor: Flavor,
    listener: Option<RawFd>,
    accept_armed: bool,
    /// The TLS listener, when TLS is on.
    tls_listener: Option<RawFd>,
    tls_accept_armed: bool,
    accept_retry: Option<Instant>,
    conns: Slab,
    max_connections: usize,
    /// Connections with output to send at the end of this turn.
    dirty: Vec<u32>,
    /// Connections whose receive is re-armed at the end of this turn.
    rearm: Vec<u32>,
    /// This turn's completions, copied out of the ring.
    completions: Vec<(u64, i32, u32)>,
    clock: TurnClock,
    /// The core's command channel, drained by the loop's tick.
    commands: crossbeam_channel::Receiver<Command>,
    /// TLS connections' answers before encryption (shared: one connection
    /// at a time uses it, and leaves it empty).
    scratch: Vec<u8>,
}

impl Driver {
    /// Sets up the core's ring and buffers around a listening socket (and
    /// the TLS one, with TLS on).
    pub fn new(
        core: Rc<Core>,
        listener: RawFd,
        tls_listener: Option<RawFd>,
        buffers: u16,
        max_connections: usize,
        commands: crossbeam_channel::Receiver<Command>,
    ) -> io::Result<Driver> {
        let (ring, flavor) = setup::build(setup::SQ_ENTRIES, setup::CQ_ENTRIES)?;
        let buffers = BufRing::register(&ring.submitter(), buffers, BUFFER_SIZE, BUFFER_GROUP)?;
        Ok(Driver {
            ring,
            buffers,
            core,
            flavor,
            listener: Some(listener),
            accept_armed: false,
            tls_listener,
            tls_accept_armed: false,
            accept_retry: None,
            conns: Slab::default(),
            max_connections: max_connections.min(MAX_SLOTS as usize),
            dirty: Vec::with_capacity(1024),
            rearm: Vec::with_capacity(1024),
            completions: Vec::with_capacity(setup::CQ_ENTRIES as usize),
            clock: TurnClock::new(),
            commands,
            scratch: Vec::new(),
        })
    }

    pub fn flavor(&self) -> Flavor {
        self.flavor
    }

    /// Serves until the core is told to stop.
    pub async fn run(mut self) {
        self.arm_accept(false);
        self.arm_accept(true);
        let mut now = Instant::now();
        let mut next_tick = now + TICK;
        let mut ticks = 0u32;
        loop {
            self.enter(next_tick.saturating_duration_since(now));
            self.collect();
            now = Instant::now();
            let now_ms = self.clock.unix_ms(now);
            let mut answered = 0u64;
            for i in 0..self.completions.len() {
                let (data, result, flags) = self.completions[i];
                answered += self.dispatch(data, result, flags, now, now_ms);
            }
            self.buffers.publish();
            self.rearm_receives();
            self.flush(now);
            if answered > 0 {
                let elapsed = now.elapsed().as_nanos() as u64;
                self.core.metrics.observe_latency(elapsed, answered);
            }
            if now >= next_tick {
                next_tick = now + TICK;
                ticks = ticks.wrapping_add(1);
                self.clock = TurnClock::new();
                // Commands (changes, snapshot swaps) are applied here, on
                // time, rather than by a glommio timer task (module doc).
                if !command::tick(&self.core, &self.commands) {
                    self.core.stop_requested.set(true);
                }
                if ticks.is_multiple_of(SWEEP_EVERY) {
                    self.sweep(now);
                }
                // This turn's answers go out before glommio gets the core,
                // not after its loop iteration.
                if !self.ring.submission().is_empty()
                    && let Err(e) = self.ring.submit()
                {
                    tracing::warn!(core = self.core.id, error = %e, "io_uring submit failed");
                }
                // Let glommio run the core's other tasks (the clock, the
                // shutdown sequence) and its timers.
                glommio::executor().yield_task_queue_now().await;
                if self.core.stopped.get() {
                    break;
                }
                self.housekeeping(now);
            }
        }
        self.finish();
    }

    /// Submits what the turn queued and waits up to `wait` for a completion.
    fn enter(&mut self, wait: Duration) {
        let timeout = Timespec::new()
            .sec(wait.as_secs())
            .nsec(wait.subsec_nanos());
        let args = SubmitArgs::new().timespec(&timeout);
        if let Err(e) = self.ring.submitter().submit_with_args(1, &args) {
            match e.raw_os_error() {
                Some(libc::ETIME | libc::EINTR | libc::EBUSY | libc::EAGAIN) => {}
                _ => tracing::warn!(core = self.core.id, error = %e, "io_uring_enter failed"),
            }
        }
    }

    fn collect(&mut self) {
        self.completions.clear();
        for cqe in self.ring.completion() {
            self.completions
                .push((cqe.user_data(), cqe.result(), cqe.flags()));
        }
    }

    /// Queues an operation, submitting early if the queue is full.
    fn push(&mut self, entry: &Entry) {
        loop {
            // SAFETY: every operation's memory (a connection's `sending`
            // buffer, the buffer ring) outlives it: connections are freed
            // only once none of their operations is in flight, and the ring
            // is dropped before the buffers.
            if unsafe { self.ring.submission().push(entry) }.is_ok() {
                return;
            }
            if let Err(e) = self.ring.submit() {
                tracing::warn!(core = self.core.id, error = %e, "io_uring submit failed");
            }
        }
    }

    fn dispatch(&mut self, data: u64, result: i32, flags: u32, now: Instant, now_ms: u64) -> u64 {
        let (kind, slot, generation) = split(data);
        match kind {
            ACCEPT => {
                self.on_accept(false, result, flags, now);
                0
            }
            TLS_ACCEPT => {
                self.on_accept(true, result, flags, now);
                0
            }
            RECV => self.on_recv(slot, generation, result, flags, now, now_ms),
            SEND => self.on_send(slot, generation, result, now, now_ms),
            _ => 0,
        }
    }

    /// The plain or the TLS listener, and whether its accept is armed.
    fn listener(&mut self, secure: bool) -> (Option<RawFd>, &mut bool) {
        match secure {
            false => (self.listener, &mut self.accept_armed),
            true => (self.tls_listener, &mut self.tls_accept_armed),
        }
    }

    fn arm_accept(&mut self, secure: bool) {
        let (Some(listener), armed) = self.listener(secure) else {
            return;
        };
        if *armed {
            return;
        }
        *armed = true;
        let kind = if secure { TLS_ACCEPT } else { ACCEPT };
        let entry = opcode::AcceptMulti::new(Fd(listener))
            .build()
            .user_data(user_data(kind, 0, 0));
        self.push(&entry);
    }

    fn on_accept(&mut self, secure: bool, result: i32, flags: u32, now: Instant) {
        let (listener, armed) = self.listener(secure);
        if !cqueue::more(flags) {
            *armed = false;
        }
        let armed = *armed;
        if result < 0 {
            if result != -libc::ECANCELED {
                let error = io::Error::from_raw_os_error(-result);
                tracing::warn!(core = self.core.id, %error, "accept failed");
                self.accept_retry = Some(now + ACCEPT_BACKOFF);
            }
            return;
        }
        if !armed && self.accept_retry.is_none() {
            self.arm_accept(secure);
        }
        let fd = result;
        let core = &*self.core;
        if listener.is_none() || self.conns.live() >= self.max_connections {
            if listener.is_some() {
                core.metrics.connections_refused.inc();
            }
            // SAFETY: a descriptor the kernel just gave us and nobody else has.
            unsafe { libc::close(fd) };
            return;
        }
        let tls = match secure {
            false => None,
            true => match core.tls.borrow().clone().map(TlsConn::new) {
                Some(Ok(tls)) => Some(Box::new(tls)),
                // A TLS listener exists only with a configuration, and a
                // server connection cannot fail to start on one.
                _ => {
                    // SAFETY: as above.
                    unsafe { libc::close(fd) };
                    return;
                }
            },
        };
        core.metrics.connections_accepted.inc();
        core.metrics.connections_open.add(1);
        core.open.set(core.open.get() + 1);
        // Click records and redirect rules (a country, a split's visitor)
        // need the peer: one system call per connection. Links with rules
        // may arrive in any delta, so every connection reads it.
        let peer = peer_ip(fd);
        let slot = self.conns.insert(fd, peer, now, tls);
        self.arm_recv(slot);
    }

    fn arm_recv(&mut self, slot: u32) {
        let conn = self.conns.get_mut(slot);
        conn.recv_armed = true;
        let entry = opcode::RecvMulti::new(Fd(conn.fd), BUFFER_GROUP)
            .build()
            .user_data(user_data(RECV, slot, conn.generation));
        self.push(&entry);
    }

    fn on_recv(
        &mut self,
        slot: u32,
        generation: u32,
        result: i32,
        flags: u32,
        now: Instant,
        now_ms: u64,
    ) -> u64 {
        let bid = cqueue::buffer_select(flags);
        let core = &*self.core;
        let Some(conn) = self.conns.current(slot, generation) else {
            debug_assert!(false, "receive completion for a freed connection");
            if let Some(bid) = bid {
                self.buffers.give(bid);
            }
            return 0;
        };
        if !cqueue::more(flags) {
            conn.recv_armed = false;
        }
        let mut answered = 0;
        if result > 0 {
            let bid = bid.expect("a receive with data names its buffer");
            let data = self.buffers.get(bid, result as usize);
            answered = match conn.tls.is_none() {
                true => conn.feed(core, data, now, now_ms),
                false => conn.feed_tls(core, data, now, now_ms, &mut self.scratch),
            };
        }
        // The bytes are parsed or copied: the buffer goes back at once.
        if let Some(bid) = bid {
            self.buffers.give(bid);
        }
        if result > 0 {
            if conn.blocked && conn.stash.len() >= STASH_PAUSE && !conn.paused && conn.recv_armed {
                conn.paused = true;
                let entry = opcode::AsyncCancel::new(user_data(RECV, slot, generation))
                    .build()
                    .user_data(user_data(QUIET, slot, generation));
                self.push(&entry);
            }
        } else {
            let expected = result == -libc::ENOBUFS || (result == -libc::ECANCELED && conn.paused);
            if !expected && !conn.closing {
                // End of file, or the connection failed: whatever is
                // answered already is still sent, then it closes.
                conn.eof = true;
                conn.close_after_send = true;
                if result < 0 {
                    conn.out.clear();
                }
            }
        }
        self.settle(slot);
        answered
    }

    fn on_send(
        &mut self,
        slot: u32,
        generation: u32,
        result: i32,
        now: Instant,
        now_ms: u64,
    ) -> u64 {
        let core = &*self.core;
        let Some(conn) = self.conns.current(slot, generation) else {
            debug_assert!(false, "send completion for a freed connection");
            return 0;
        };
        conn.send_inflight = false;
        if conn.closing {
            self.settle(slot);
            return 0;
        }
        if result < 0 {
            // The client is gone (reset, broken pipe): nothing more to say.
            conn.out.clear();
            conn.sending.clear();
            conn.close_after_send = true;
            self.settle(slot);
            return 0;
        }
        conn.sent += result as usize;
        if conn.sent < conn.sending.len() {
            let entry = send_entry(slot, conn);
            self.push(&entry);
            return 0;
        }
        conn.sending.clear();
        conn.sent = 0;
        let mut answered = 0;
        if conn.blocked && !conn.close_after_send {
            conn.blocked = false;
            answered = match conn.tls.is_none() {
                true => conn.process_stash(core, now, now_ms),
                false => conn.resume_tls(core, now, now_ms, &mut self.scratch),
            };
        }
        if conn.paused && !conn.blocked {
            conn.paused = false;
        }
        self.settle(slot);
        answered
    }

    /// Decides what a connection needs after an event: flushing, closing,
    /// a receive re-arm, its busy count.
    fn settle(&mut self, slot: u32) {
        let core = &*self.core;
        let conn = self.conns.get_mut(slot);
        if conn.closing {
            if !conn.in_flight() {
                self.free(slot);
            }
            return;
        }
        let busy = conn.is_busy();
        if busy != conn.busy {
            conn.busy = busy;
            let count = core.busy.get();
            core.busy.set(if busy { count + 1 } else { count - 1 });
        }
        if !conn.out.is_empty() && !conn.dirty {
            conn.dirty = true;
            self.dirty.push(slot);
        }
        if conn.close_after_send && conn.out.is_empty() && !conn.send_inflight {
            self.close(slot);
            return;
        }
        if !conn.recv_armed && !conn.rearm && !conn.eof && !conn.paused && !conn.close_after_send {
            conn.rearm = true;
            self.rearm.push(slot);
        }
    }

    /// Shuts a connection down; it is freed once the kernel lets go of it.
    fn close(&mut self, slot: u32) {
        let conn = self.conns.get_mut(slot);
        if conn.closing {
            return;
        }
        conn.closing = true;
        // Counted closed now, when the client can see it closed, as the
        // glommio backend does; the slot itself waits for the kernel.
        let core = &*self.core;
        core.open.set(core.open.get() - 1);
        core.metrics.connections_open.add(-1);
        if conn.in_flight() {
            // Ends the armed receive (end of file) and any send (broken
            // pipe); their completions free the slot. A system call, not an
            // `IORING_OP_SHUTDOWN` on the ring: that was tried (2026-11-30)
            // and lost 0.2-0.3% of answers on new connections under load
            // (the client read a reset or an early end), so the one system
            // call per connection stays.
            // SAFETY: the descriptor is open until the slot is freed.
            unsafe { libc::shutdown(conn.fd, libc::SHUT_RDWR) };
        } else {
            self.free(slot);
        }
    }

    fn free(&mut self, slot: u32) {
        let core = &*self.core;
        let conn = self.conns.get_mut(slot);
        if conn.busy {
            core.busy.set(core.busy.get() - 1);
        }
        let fd = self.conns.remove(slot);
        let entry = opcode::Close::new(Fd(fd))
            .build()
            .user_data(user_data(QUIET, slot, 0));
        self.push(&entry);
    }

    fn rearm_receives(&mut self) {
        for i in 0..self.rearm.len() {
            let slot = self.rearm[i];
            let conn = self.conns.get_mut(slot);
            if !conn.live || !conn.rearm {
                continue;
            }
            conn.rearm = false;
            if conn.recv_armed || conn.closing || conn.eof || conn.paused {
                continue;
            }
            self.arm_recv(slot);
        }
        self.rearm.clear();
    }

    /// Sends each connection's output of this turn with one send.
    fn flush(&mut self, now: Instant) {
        for i in 0..self.dirty.len() {
            let slot = self.dirty[i];
            let conn = self.conns.get_mut(slot);
            if !conn.live || !conn.dirty {
                continue;
            }
            conn.dirty = false;
            if conn.closing || conn.send_inflight || conn.out.is_empty() {
                continue;
            }
            std::mem::swap(&mut conn.out, &mut conn.sending);
            conn.sent = 0;
            conn.send_started = now;
            let entry = send_entry(slot, conn);
            self.push(&entry);
        }
        self.dirty.clear();
    }

    /// Cuts off late heads (408), silent and idle connections and stuck
    /// sends.
    fn sweep(&mut self, now: Instant) {
        let core = self.core.clone();
        let crowded = core.crowded();
        for slot in 0..self.conns.slots() {
            let conn = self.conns.get_mut(slot);
            if !conn.live || conn.closing {
                continue;
            }
            if conn.send_inflight {
                if now >= conn.send_started + WRITE_TIMEOUT {
                    self.close(slot);
                }
                continue;
            }
            let buffered = conn.buffered();
            if conn.close_after_send || now < conn.session.cutoff(&core, buffered, crowded) {
                continue;
            }
            if conn.session.is_fresh() {
                core.metrics.first_byte_timeouts.inc();
                self.close(slot);
            } else if conn.tls.is_some() && conn.session.pending(buffered) {
                if conn.timeout_tls(&core, &mut self.scratch) {
                    self.close(slot);
                } else {
                    self.settle(slot);
                }
            } else if conn.session.pending(buffered) {
                // Too slow: tell the client why, then hang up.
                conn.stash.clear();
                conn.out.clear();
                timeout_answer(&core, &mut conn.out);
                conn.close_after_send = true;
                self.settle(slot);
            } else {
                self.close(slot);
            }
        }
    }

    /// Per tick: accept retries, the stop of accepting, draining.
    fn housekeeping(&mut self, now: Instant) {
        if self.core.stop_accepting.get() {
            for (listener, armed, kind) in [
                (self.listener.take(), self.accept_armed, ACCEPT),
                (self.tls_listener.take(), self.tls_accept_armed, TLS_ACCEPT),
            ] {
                let Some(listener) = listener else {
                    continue;
                };
                if armed {
                    let entry = opcode::AsyncCancel::new(user_data(kind, 0, 0))
                        .build()
                        .user_data(user_data(QUIET, 0, 0));
                    self.push(&entry);
                }
                let entry = opcode::Close::new(Fd(listener))
                    .build()
                    .user_data(user_data(QUIET, 0, 0));
                self.push(&entry);
            }
        } else if self.accept_retry.is_some_and(|at| now >= at) {
            self.accept_retry = None;
            self.arm_accept(false);
            self.arm_accept(true);
        }
        if self.core.draining.get() {
            // Connections between requests close now; busy ones close after
            // their answer (which says `Connection: close`).
            for slot in 0..self.conns.slots() {
                let conn = self.conns.get_mut(slot);
                if conn.live && !conn.closing && !conn.is_busy() {
                    self.close(slot);
                }
            }
        }
    }

    /// The core is stopping: hand the ring back. The process is exiting, so
    /// the buffers the kernel might still hold for a cancelled operation are
    /// left to it rather than freed under it.
    fn finish(self) {
        let Driver {
            ring,
            buffers,
            conns,
            listener,
            tls_listener,
            ..
        } = self;
        // Dropping the ring cancels its accepts, which lets go of the
        // listeners; closing them then makes the ports refuse.
        drop(ring);
        for listener in [listener, tls_listener].into_iter().flatten() {
            // SAFETY: the listener's descriptor, owned by the driver.
            unsafe { libc::close(listener) };
        }
        std::mem::forget(buffers);
        std::mem::forget(conns);
    }
}

fn send_entry(slot: u32, conn: &mut Conn) -> Entry {
    conn.send_inflight = true;
    let rest = &conn.sending[conn.sent..];
    opcode::Send::new(Fd(conn.fd), rest.as_ptr(), rest.len() as u32)
        .flags(libc::MSG_NOSIGNAL)
        .build()
        .user_data(user_data(SEND, slot, conn.generation))
}

fn peer_ip(fd: RawFd) -> IpAddr {
    // SAFETY: the descriptor is open for the duration of the call.
    let fd = unsafe { BorrowedFd::borrow_raw(fd) };
    socket2::SockRef::from(&fd)
        .peer_addr()
        .ok()
        .and_then(|a| a.as_socket())
        .map_or(UNSPECIFIED, |a| a.ip())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_data_round_trips() {
        for (kind, slot, generation) in [
            (ACCEPT, 0, 0),
            (RECV, 0xff_ffff, u32::MAX),
            (SEND, 7, 9),
            (TLS_ACCEPT, 0, 0),
        ] {
            assert_eq!(
                split(user_data(kind, slot, generation)),
                (kind, slot, generation)
            );
        }
    }
}
