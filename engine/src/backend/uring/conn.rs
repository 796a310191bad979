//! One connection of the io_uring backend: its session, its buffers, which
//! of its operations the kernel holds, and how received bytes reach the
//! session ([`Conn::feed`]: straight out of the kernel's buffer when nothing
//! is stashed, through the stash otherwise).
//!
//! A connection on the TLS listener also holds its [`TlsConn`] (boxed, so a
//! plain connection's slot grows by one pointer); what differs for it is in
//! `super::tls`. Plain connections never look at it but for one branch per
//! receive.
//!
//! Slots are reused: a freed slot keeps its buffers' capacity for the next
//! connection, so a new connection allocates nothing once the core has seen
//! as many at once. A slot's generation changes on reuse and is part of every
//! operation's user data, so a completion can never be applied to the wrong
//! connection.

use crate::core::Core;
use crate::core::session::{Progress, Session};
use crate::tls::conn::TlsConn;
use std::net::IpAddr;
use std::os::fd::RawFd;
use std::time::Instant;

/// Buffer capacity a freed slot keeps for its next connection.
const KEEP_CAPACITY: usize = 16 * 1024;

#[derive(Debug)]
pub struct Conn {
    pub fd: RawFd,
    pub generation: u32,
    pub live: bool,
    pub peer: IpAddr,
    pub session: Session,
    /// Received bytes not consumed yet: a partial head, or input held while
    /// the output is full.
    pub stash: Vec<u8>,
    /// Answers not yet handed to the kernel.
    pub out: Vec<u8>,
    /// Answers the kernel is sending; never touched while a send is in flight.
    pub sending: Vec<u8>,
    /// Bytes of `sending` already sent (short sends are resumed).
    pub sent: usize,
    pub send_started: Instant,
    /// A multishot receive is armed.
    pub recv_armed: bool,
    pub send_inflight: bool,
    /// Output reached its limit: input waits in `stash` until a send ends.
    pub blocked: bool,
    /// `stash` grew too big while blocked: the receive was cancelled and is
    /// re-armed once the output drains.
    pub paused: bool,
    /// The peer sent end-of-file (or the receive failed): nothing more comes.
    pub eof: bool,
    /// Close once everything in `out` and `sending` is sent.
    pub close_after_send: bool,
    /// Shut down; freed once the kernel holds no operation of it.
    pub closing: bool,
    /// Counted in the core's busy connections.
    pub busy: bool,
    /// Listed for this turn's flush.
    pub dirty: bool,
    /// Listed for a receive re-arm at the end of this turn.
    pub rearm: bool,
    /// The TLS state of a connection on the TLS listener. While it is
    /// `Some`, `stash` holds ciphertext received while the output was full,
    /// and decrypted requests wait in the `TlsConn`.
    pub tls: Option<Box<TlsConn>>,
}

impl Conn {
    fn empty(now: Instant) -> Conn {
        Conn {
            fd: -1,
            generation: 0,
            live: false,
            peer: IpAddr::from([0, 0, 0, 0]),
            session: Session::new(now),
            stash: Vec::new(),
            out: Vec::new(),
            sending: Vec::new(),
            sent: 0,
            send_started: now,
            recv_armed: false,
            send_inflight: false,
            blocked: false,
            paused: false,
            eof: false,
            close_after_send: false,
            closing: false,
            busy: false,
            dirty: false,
            rearm: false,
            tls: None,
        }
    }

    /// Bytes of a request under way: the stash, and for TLS the decrypted
    /// bytes not answered yet, plus one while the handshake is not done (so
    /// a handshake is held to the header deadline, like a head).
    #[inline]
    pub fn buffered(&self) -> usize {
        match &self.tls {
            None => self.stash.len(),
            Some(tls) => {
                self.stash.len() + tls.plaintext().len() + usize::from(tls.is_handshaking())
            }
        }
    }

    /// Whether the connection has anything under way: a request, or output.
    pub fn is_busy(&self) -> bool {
        self.session.pending(self.buffered())
            || !self.out.is_empty()
            || self.send_inflight
            || !self.sending.is_empty()
    }

    /// Whether the kernel still holds one of the connection's operations.
    pub fn in_flight(&self) -> bool {
        self.recv_armed || self.send_inflight
    }

    /// Hands received bytes to the connection's session; returns the requests
    /// answered.
    pub fn feed(&mut self, core: &Core, data: &[u8], now: Instant, now_ms: u64) -> u64 {
        if self.closing || self.close_after_send {
            // Input after the last answer is never looked at.
            return 0;
        }
        self.session.arrived(core, self.stash.len(), now);
        if self.blocked || !self.stash.is_empty() {
            self.stash.extend_from_slice(data);
            if self.blocked {
                return 0;
            }
            return self.process_stash(core, now, now_ms);
        }
        // The common case: whole requests, parsed straight out of the kernel's
        // buffer; only a partial tail is copied.
        let progress = self
            .session
            .process(core, data, self.peer, now, now_ms, &mut self.out);
        if progress.close {
            self.close_after_send = true;
        } else {
            self.stash.extend_from_slice(&data[progress.consumed..]);
            self.blocked = progress.full;
        }
        self.session.settle(self.stash.len());
        progress.answered
    }

    /// Answers what the stash holds.
    pub fn process_stash(&mut self, core: &Core, now: Instant, now_ms: u64) -> u64 {
        let Progress {
            consumed,
            answered,
            close,
            full,
        } = self
            .session
            .process(core, &self.stash, self.peer, now, now_ms, &mut self.out);
        if close {
            self.close_after_send = true;
            self.stash.clear();
        } else {
            self.stash.drain(..consumed);
            self.blocked = full;
        }
        self.session.settle(self.stash.len());
        answered
    }
}

/// An old connection's buffer, emptied, with its capacity.
fn reuse(buffer: &mut Vec<u8>) -> Vec<u8> {
    let mut buffer = std::mem::take(buffer);
    buffer.clear();
    buffer
}

/// Every connection of one core.
#[derive(Debug, Default)]
pub struct Slab {
    conns: Vec<Conn>,
    free: Vec<u32>,
    live: usize,
}

impl Slab {
    /// A slot for a new connection on `fd`, reusing a freed one if any;
    /// `tls` for one on the TLS listener.
    pub fn insert(
        &mut self,
        fd: RawFd,
        peer: IpAddr,
        now: Instant,
        tls: Option<Box<TlsConn>>,
    ) -> u32 {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.conns.push(Conn::empty(now));
                (self.conns.len() - 1) as u32
            }
        };
        let old = &mut self.conns[slot as usize];
        // Everything starts afresh but the generation and the buffers'
        // capacity.
        let mut fresh = Conn {
            fd,
            live: true,
            peer,
            generation: old.generation,
            stash: reuse(&mut old.stash),
            out: reuse(&mut old.out),
            sending: reuse(&mut old.sending),
            ..Conn::empty(now)
        };
        fresh.session.set_secure(tls.is_some());
        fresh.tls = tls;
        *old = fresh;
        self.live += 1;
        slot
    }

    /// Frees a slot whose operations have all completed; returns its fd,
    /// which the caller closes.
    pub fn remove(&mut self, slot: u32) -> RawFd {
        let conn = &mut self.conns[slot as usize];
        debug_assert!(conn.live && !conn.in_flight());
        conn.live = false;
        conn.generation = conn.generation.wrapping_add(1);
        conn.tls = None;
        // A slot keeps its buffers for the next connection, unless a
        // pipelining client grew them past the usual size.
        for buffer in [&mut conn.stash, &mut conn.out, &mut conn.sending] {
            if buffer.capacity() > KEEP_CAPACITY {
                *buffer = Vec::new();
            }
        }
        self.free.push(slot);
        self.live -= 1;
        std::mem::replace(&mut conn.fd, -1)
    }

    #[inline]
    pub fn get_mut(&mut self, slot: u32) -> &mut Conn {
        &mut self.conns[slot as usize]
    }

    /// The live connection in `slot` if it is still generation `generation`.
    #[inline]
    pub fn current(&mut self, slot: u32, generation: u32) -> Option<&mut Conn> {
        self.conns
            .get_mut(slot as usize)
            .filter(|c| c.live && c.generation == generation)
    }

    /// Number of slots ever used (live or free).
    pub fn slots(&self) -> u32 {
        self.conns.len() as u32
    }

    pub fn live(&self) -> usize {
        self.live
    }
}
