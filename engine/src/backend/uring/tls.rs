//! What a connection on the TLS listener does differently: received bytes
//! are ciphertext for its [`TlsConn`], requests are answered out of the
//! decrypted bytes into the core's scratch buffer, and the answers are
//! encrypted into the connection's output. Everything else (slots, sends,
//! back-pressure, deadlines, closing) is the plain connection's.
//!
//! The handshake is driven by the same completions as requests: each
//! receive advances it, its records go out with the turn's send, and the
//! core never waits on it. It counts as a request under way
//! ([`Conn::buffered`]), so the header deadline bounds it: a handshake not
//! done within the header timeout of the accept is cut off (counted as a
//! `timeout` failure).
//!
//! Back-pressure: with 64 KiB of output waiting the connection stops
//! answering, as a plain one does, leaving decrypted requests in the
//! `TlsConn` and further ciphertext in the stash (not decrypted: it only
//! waits), whose size pauses the receive as for plain connections.
//!
//! A failed handshake (garbage, an old protocol version, a name without a
//! certificate, plain HTTP) closes that connection only, after what rustls
//! owes the client (an alert; for plain HTTP a `400` saying to use
//! `https://`), and is counted by reason.

use super::conn::Conn;
use crate::core::Core;
use crate::core::session::{MAX_PENDING_OUTPUT, timeout_answer};
use crate::tls::conn::{HandshakeFailure, TlsError};
use std::time::Instant;

impl Conn {
    /// Received ciphertext of a TLS connection; returns requests answered.
    pub fn feed_tls(
        &mut self,
        core: &Core,
        data: &[u8],
        now: Instant,
        now_ms: u64,
        scratch: &mut Vec<u8>,
    ) -> u64 {
        if self.closing || self.close_after_send {
            return 0;
        }
        self.session.arrived(core, self.buffered(), now);
        if self.blocked {
            self.stash.extend_from_slice(data);
            return 0;
        }
        self.decrypt_and_answer(core, data, now, now_ms, scratch)
    }

    /// After the output drained: answers what was decrypted, then decrypts
    /// and answers what was stashed meanwhile.
    pub fn resume_tls(
        &mut self,
        core: &Core,
        now: Instant,
        now_ms: u64,
        scratch: &mut Vec<u8>,
    ) -> u64 {
        let mut answered = self.answer_tls(core, now, now_ms, scratch);
        if !self.blocked && !self.close_after_send && !self.stash.is_empty() {
            let mut stash = std::mem::take(&mut self.stash);
            answered += self.decrypt_and_answer(core, &stash, now, now_ms, scratch);
            stash.clear();
            self.stash = stash;
        }
        answered
    }

    /// A late head or handshake (the sweep): a handshake is cut off, a
    /// head gets its `408`, encrypted, and the connection closes after it.
    /// Returns whether to close at once.
    pub fn timeout_tls(&mut self, core: &Core, scratch: &mut Vec<u8>) -> bool {
        let Some(tls) = self.tls.as_deref_mut() else {
            return true;
        };
        if tls.is_handshaking() {
            core.metrics.tls_handshake_failures[HandshakeFailure::Timeout.index()].inc();
            return true;
        }
        self.stash.clear();
        // Records already made stay: dropping one would break the
        // sequence of the records after it.
        timeout_answer(core, scratch);
        tls.send(scratch, &mut self.out);
        scratch.clear();
        tls.close();
        tls.take_output(&mut self.out);
        self.close_after_send = true;
        false
    }

    fn decrypt_and_answer(
        &mut self,
        core: &Core,
        data: &[u8],
        now: Instant,
        now_ms: u64,
        scratch: &mut Vec<u8>,
    ) -> u64 {
        let tls = self.tls.as_deref_mut().expect("a TLS connection");
        let handshaking = tls.is_handshaking();
        let received = tls.receive(data);
        if handshaking && !tls.is_handshaking() {
            let resumed = tls.rustls().handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            core.metrics.tls_handshakes[usize::from(resumed)].inc();
        }
        let closed = match received {
            Ok(()) => false,
            // The client sends nothing more: answer what it sent, then close.
            Err(TlsError::Closed) => true,
            Err(error) => {
                if let Some(failure) = HandshakeFailure::of(&error) {
                    core.metrics.tls_handshake_failures[failure.index()].inc();
                }
                tracing::debug!(core = core.id, %error, "TLS connection failed");
                tls.take_output(&mut self.out);
                self.close_after_send = true;
                self.stash.clear();
                return 0;
            }
        };
        let answered = self.answer_tls(core, now, now_ms, scratch);
        if closed {
            self.close_after_send = true;
        }
        // Handshake records, tickets.
        if let Some(tls) = self.tls.as_deref_mut() {
            tls.take_output(&mut self.out);
        }
        answered
    }

    /// Answers the decrypted requests, encrypting the answers into `out`,
    /// until they are answered or the output is full.
    fn answer_tls(&mut self, core: &Core, now: Instant, now_ms: u64, scratch: &mut Vec<u8>) -> u64 {
        let Conn {
            tls,
            session,
            out,
            peer,
            blocked,
            close_after_send,
            ..
        } = self;
        let tls = tls.as_deref_mut().expect("a TLS connection");
        let mut answered = 0;
        *blocked = false;
        while !tls.plaintext().is_empty() {
            if out.len() >= MAX_PENDING_OUTPUT {
                *blocked = true;
                break;
            }
            let progress = session.process(core, tls.plaintext(), *peer, now, now_ms, scratch);
            tls.send(scratch, out);
            scratch.clear();
            answered += progress.answered;
            if progress.close {
                // Nothing after the last answer is looked at.
                tls.consume(tls.plaintext().len());
                tls.close();
                tls.take_output(out);
                *close_after_send = true;
                break;
            }
            tls.consume(progress.consumed);
            if !progress.full {
                break;
            }
        }
        let buffered = self.buffered();
        self.session.settle(buffered);
        answered
    }
}
