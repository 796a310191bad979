//! Serving one connection: read, answer every complete request in the
//! buffer, write the answers in one go, repeat.
//!
//! The connection owns two buffers for its whole life: the input buffer
//! (exactly `max_head_bytes`, so a head that does not fit is refused rather
//! than grown) and the output buffer (grows to the largest batch once). A
//! request costs a parse, a lookup, some `extend_from_slice` calls and its
//! share of one `write`: no allocation, no lock.
//!
//! Timeouts: while a request is incomplete, its header deadline (set when its
//! first byte arrived) applies, so a client trickling bytes is cut off with
//! 408; between requests the idle timeout applies and the connection is
//! closed silently. Deadlines are enforced by the core's sweeper
//! ([`super::timers`]), not by a timer per read.

use super::Core;
use super::state::Lookup;
use super::timers::Deadline;
use crate::clicks::Capture;
use crate::clicks::client_ip::client_ip;
use crate::http::request::{self, Body, Method, Parse, Reject, Request};
use crate::http::response::{Canned, Persist, status_index};
use futures::{AsyncReadExt, AsyncWriteExt};
use glommio::net::TcpStream;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A client that does not read its answers is dropped after this.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Flush mid-batch when this much output is pending.
const MAX_PENDING_OUTPUT: usize = 64 * 1024;
const UNSPECIFIED: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

/// Counts the connection as open, and as busy while a request is under way.
struct Tracker<'a> {
    core: &'a Core,
    busy: bool,
}

impl<'a> Tracker<'a> {
    fn new(core: &'a Core) -> Self {
        core.open.set(core.open.get() + 1);
        core.metrics.connections_open.add(1);
        Tracker { core, busy: false }
    }

    fn set_busy(&mut self, busy: bool) {
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
struct Registered<'a> {
    core: &'a Core,
    deadline: Rc<Deadline>,
}

impl<'a> Registered<'a> {
    fn new(core: &'a Core, fd: std::os::fd::RawFd) -> Self {
        Registered {
            core,
            deadline: core.sweeper.register(fd),
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
        self.core.sweeper.unregister(&self.deadline);
    }
}

pub async fn serve(mut stream: TcpStream, core: Rc<Core>) {
    let core = &*core;
    let mut tracker = Tracker::new(core);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let mut buf = vec![0u8; core.limits.max_head].into_boxed_slice();
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut filled = 0usize;
    // Body bytes of the last request still to be skipped.
    let mut discard = 0u64;
    let mut deadline: Option<Instant> = None;
    let mut last_activity = Instant::now();
    let timer = Registered::new(core, stream.as_raw_fd());
    // Only click records need the peer (one system call per connection).
    let peer = match core.clicks.borrow().is_some() {
        true => stream.peer_addr().map_or(UNSPECIFIED, |a| a.ip()),
        false => UNSPECIFIED,
    };

    loop {
        let pending = filled > 0 || discard > 0;
        if !pending && core.draining.get() {
            return;
        }
        timer.set(match deadline {
            Some(at) if pending => at,
            _ => last_activity + core.idle_timeout,
        });
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(n) if n > 0 => n,
            _ if timer.fired() && pending => {
                // Too slow: tell the client why, then hang up.
                core.metrics.header_timeouts.inc();
                out.clear();
                core.pre
                    .borrow()
                    .canned(&mut out, Canned::RequestTimeout, false, Persist::Close);
                count(core, 408);
                let _ = stream.write_all(&out).await;
                return;
            }
            _ => return,
        };
        let arrived = Instant::now();
        last_activity = arrived;
        if !pending {
            deadline = Some(arrived + core.header_timeout);
        }
        tracker.set_busy(true);
        filled += n;

        let mut start = 0usize;
        let mut answered = 0u64;
        let mut close = false;
        loop {
            if discard > 0 {
                let skip = discard.min((filled - start) as u64);
                start += skip as usize;
                discard -= skip;
                if discard > 0 {
                    break;
                }
                // The next request's clock starts now.
                deadline = Some(arrived + core.header_timeout);
            }
            if start == filled {
                break;
            }
            match request::parse(&buf[start..filled], &core.limits) {
                Parse::Complete(req) => {
                    start += req.head_len;
                    answered += 1;
                    let (status, keep) = answer(core, &req, peer, &mut out);
                    count(core, status);
                    if let Body::Length(n) = req.body {
                        discard = n;
                    }
                    if !keep {
                        close = true;
                        break;
                    }
                    deadline = Some(arrived + core.header_timeout);
                    if out.len() >= MAX_PENDING_OUTPUT {
                        if stream.write_all(&out).await.is_err() {
                            return;
                        }
                        out.clear();
                    }
                }
                Parse::Partial => break,
                Parse::Error(reject) => {
                    let canned = match reject {
                        Reject::BadRequest => Canned::BadRequest,
                        Reject::UriTooLong => Canned::UriTooLong,
                        Reject::HeadersTooLarge => Canned::HeadersTooLarge,
                    };
                    core.metrics.parse_errors.inc();
                    core.pre
                        .borrow()
                        .canned(&mut out, canned, false, Persist::Close);
                    count(core, canned.status());
                    answered += 1;
                    close = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            let written = stream.write_all(&out).await;
            out.clear();
            if written.is_err() {
                return;
            }
            let elapsed = arrived.elapsed().as_nanos() as u64;
            core.metrics.observe_latency(elapsed, answered);
        }
        if close || (core.draining.get() && start == filled && discard == 0) {
            return;
        }
        buf.copy_within(start..filled, 0);
        filled -= start;
        if filled == 0 && discard == 0 {
            deadline = None;
            tracker.set_busy(false);
        }
    }
}

#[inline]
fn count(core: &Core, status: u16) {
    core.metrics.responses[status_index(status)].inc();
}

/// Writes the answer to `req` into `out`; returns the status and whether the
/// connection may carry another request.
#[inline]
fn answer(core: &Core, req: &Request<'_>, peer: IpAddr, out: &mut Vec<u8>) -> (u16, bool) {
    let pre = core.pre.borrow();
    let head_only = req.method == Method::Head;
    // A body is skipped only up to a limit, and a chunked one not at all:
    // in both cases the connection ends after this answer.
    let body_ok = match req.body {
        Body::None => true,
        Body::Length(n) => n <= core.max_body,
        Body::Chunked => false,
    };
    if let Body::Length(n) = req.body
        && n > core.max_body
    {
        pre.canned(out, Canned::PayloadTooLarge, head_only, Persist::Close);
        return (413, false);
    }
    let keep = req.keep_alive && body_ok && !core.draining.get();
    let persist = Persist::new(keep, req.http11);
    if req.method == Method::Other {
        pre.canned(out, Canned::MethodNotAllowed, false, persist);
        return (405, keep);
    }
    let code = match req.path {
        [b'/', code @ ..] => code,
        _ => &b""[..],
    };
    if code.is_empty() {
        return match &core.root_redirect {
            Some(url) => {
                pre.redirect(out, snapshots::RedirectStatus::Found, url, b"", persist);
                (302, keep)
            }
            None => {
                pre.canned(out, Canned::NotFound, head_only, persist);
                (404, keep)
            }
        };
    }
    let state = core.state.borrow();
    let canned = match state.lookup(code) {
        Lookup::Found(target) if !target.is_gone(core.now_secs.get()) => {
            let query = if target.forward_query { req.query } else { b"" };
            pre.redirect(out, target.status, target.location, query, persist);
            let status = target.status.code();
            capture(core, req, peer, code, status);
            return (status, keep);
        }
        Lookup::Found(_) => core.gone,
        Lookup::Missing => Canned::NotFound,
        Lookup::NotReady => Canned::NotReady,
    };
    pre.canned(out, canned, head_only, persist);
    let status = canned.status();
    if canned != Canned::NotReady {
        capture(core, req, peer, code, status);
    }
    (status, keep)
}

/// Records a click for a redirect, 404 or 410 when capture is on.
#[inline]
fn capture(core: &Core, req: &Request<'_>, peer: IpAddr, code: &[u8], status: u16) {
    let mut clicks = core.clicks.borrow_mut();
    if let Some(buffer) = clicks.as_mut() {
        let ip = client_ip(peer, &core.proxies, req.forwarded, req.x_forwarded_for);
        buffer.record(
            super::unix_ms(),
            &Capture {
                status,
                ip,
                code,
                user_agent: req.user_agent,
                referer: req.referer,
                accept_language: req.accept_language,
                host: req.host,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clicks::ClickBuffer;
    use crate::config::Config;
    use crate::core::state::DeltaRecord;
    use crate::metrics::CoreMetrics;
    use crate::test_alloc;
    use snapshots::delta::LinkDelta;
    use snapshots::{Link, Snapshot, SnapshotBuilder};
    use std::sync::Arc;

    /// The request path (parse, lookup in deltas and snapshot, answer,
    /// click record) allocates nothing once the buffers have their size.
    #[test]
    fn request_path_does_not_allocate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(1);
        builder
            .push(Link {
                forward_query: true,
                ..Link::new("abc", "https://example.com/a?x=1#f")
            })
            .unwrap();
        builder
            .push(Link::new("old", "https://example.com/old"))
            .unwrap();
        builder.write_to(&path).unwrap();
        let snapshot = Arc::new(Snapshot::open(&path).unwrap());
        let (tx, _rx) = crossbeam_channel::bounded(4);
        let (_recycle_tx, recycle_rx) = crossbeam_channel::bounded(4);
        let metrics = Arc::new(CoreMetrics::new());
        let clicks = ClickBuffer::new(
            "n",
            [7; 8],
            0,
            10_000,
            1_000_000,
            tx,
            recycle_rx,
            metrics.clone(),
        );
        let core = Core::new(0, &Config::default(), metrics, Some(snapshot), Some(clicks));
        core.state
            .borrow_mut()
            .apply(Arc::new(DeltaRecord::from(LinkDelta::upsert(
                2,
                Link::new("new", "https://n/1"),
            ))));
        core.state
            .borrow_mut()
            .apply(Arc::new(DeltaRecord::from(LinkDelta::delete(3, "old"))));
        let requests: [&[u8]; 6] = [
            b"GET /abc?utm=1 HTTP/1.1\r\nHost: h\r\nUser-Agent: x\r\nReferer: r\r\n\r\n",
            b"HEAD /new HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /old HTTP/1.1\r\nHost: h\r\n\r\n",
            b"GET /missing HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            b"POST /abc HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
        ];
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let mut out = Vec::with_capacity(64 * 1024);
        let run = |out: &mut Vec<u8>| {
            out.clear();
            for raw in requests {
                let Parse::Complete(req) = request::parse(raw, &core.limits) else {
                    panic!("parse");
                };
                let (status, _) = answer(&core, &req, peer, out);
                count(&core, status);
            }
        };
        run(&mut out);
        let allocations = test_alloc::count(|| {
            for _ in 0..1000 {
                run(&mut out);
            }
        });
        assert_eq!(allocations, 0);
        let text = String::from_utf8_lossy(&out);
        assert!(
            text.contains("Location: https://example.com/a?x=1&utm=1#f"),
            "{text}"
        );
        assert_eq!(core.metrics.clicks_captured.get(), 1001 * 4);
    }
}
