//! The glommio backend's TLS connection: the task of [`super::conn`] with a
//! [`TlsConn`] between the socket and the session. Each read's ciphertext
//! advances the handshake or is decrypted; the decrypted requests are
//! answered into a scratch buffer and encrypted into the output, which goes
//! out in one write per read, as on a plain connection.
//!
//! Bounded like a plain connection: the decrypted bytes waiting are at most
//! a partial head plus one read, because every read is answered before the
//! next. A handshake counts as a request under way, so the sweeper cuts it
//! off at the header deadline (counted as a `timeout` failure). A failed
//! handshake sends what rustls owes (an alert, or the `400` for plain HTTP),
//! is counted by reason, and ends this connection only.

use super::conn::{Registered, Tracker, UNSPECIFIED, WRITE_TIMEOUT};
use super::timers::Sweeper;
use crate::core::Core;
use crate::core::session::{Session, timeout_answer};
use crate::tls::conn::{HandshakeFailure, TlsConn, TlsError};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::Instant;

/// Ciphertext read at once: a full TLS record and its header.
const READ_SIZE: usize = 16 * 1024 + 512;

pub async fn serve(mut stream: TcpStream, core: Rc<Core>, sweeper: Rc<Sweeper>) {
    let core = &*core;
    let Some(config) = core.tls.borrow().clone() else {
        return;
    };
    let Ok(mut tls) = TlsConn::new(config) else {
        return;
    };
    let mut tracker = Tracker::new(core);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = vec![0u8; READ_SIZE].into_boxed_slice();
    let mut out: Vec<u8> = Vec::with_capacity(4096);
    let mut scratch: Vec<u8> = Vec::with_capacity(1024);
    let accepted = Instant::now();
    let mut session = Session::new(accepted);
    session.set_secure(true);
    let timer = Registered::new(
        &sweeper,
        stream.as_raw_fd(),
        accepted + core.crowded_first_byte,
    );
    // Click records and redirect rules need the peer.
    let peer = stream.peer_addr().map_or(UNSPECIFIED, |a| a.ip());
    // Decrypted bytes waiting, plus one while the handshake is not done.
    let buffered = |tls: &TlsConn| tls.plaintext().len() + usize::from(tls.is_handshaking());

    loop {
        let pending = session.pending(buffered(&tls));
        if !pending && core.draining.get() {
            return;
        }
        timer.set(session.cutoff(core, buffered(&tls), false));
        let n = match stream.read(&mut buf).await {
            Ok(n) if n > 0 => n,
            _ if timer.fired() && pending => {
                if tls.is_handshaking() {
                    core.metrics.tls_handshake_failures[HandshakeFailure::Timeout.index()].inc();
                    return;
                }
                // Too slow: tell the client why, then hang up.
                timeout_answer(core, &mut scratch);
                tls.send(&scratch, &mut out);
                tls.close();
                tls.take_output(&mut out);
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
        session.arrived(core, buffered(&tls), arrived);
        tracker.set_busy(true);

        let handshaking = tls.is_handshaking();
        let received = tls.receive(&buf[..n]);
        if handshaking && !tls.is_handshaking() {
            let resumed = tls.rustls().handshake_kind() == Some(rustls::HandshakeKind::Resumed);
            core.metrics.tls_handshakes[usize::from(resumed)].inc();
        }
        let mut close = match received {
            Ok(()) => false,
            // The client sends nothing more: answer what it sent, then close.
            Err(TlsError::Closed) => true,
            Err(error) => {
                if let Some(failure) = HandshakeFailure::of(&error) {
                    core.metrics.tls_handshake_failures[failure.index()].inc();
                }
                tracing::debug!(core = core.id, %error, "TLS connection failed");
                tls.take_output(&mut out);
                let _ = stream.write_all(&out).await;
                return;
            }
        };

        let now_ms = crate::clock::unix_ms();
        let mut answered = 0u64;
        while !tls.plaintext().is_empty() {
            let progress =
                session.process(core, tls.plaintext(), peer, arrived, now_ms, &mut scratch);
            tls.send(&scratch, &mut out);
            scratch.clear();
            answered += progress.answered;
            if progress.close {
                // Nothing after the last answer is looked at.
                tls.consume(tls.plaintext().len());
                tls.close();
                close = true;
                break;
            }
            tls.consume(progress.consumed);
            if !progress.full {
                break;
            }
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        // Handshake records, tickets, a close_notify.
        tls.take_output(&mut out);
        if !out.is_empty() {
            let written = stream.write_all(&out).await;
            out.clear();
            if written.is_err() {
                return;
            }
            if answered > 0 {
                let elapsed = arrived.elapsed().as_nanos() as u64;
                core.metrics.observe_latency(elapsed, answered);
            }
        }
        if close || (core.draining.get() && !session.pending(buffered(&tls))) {
            return;
        }
        if session.settle(buffered(&tls)) {
            tracker.set_busy(false);
        }
    }
}
