//! The load loop: per thread, one epoll instance over that thread's
//! connections, non-blocking sockets, no async runtime.
//!
//! Closed loop: each connection keeps `depth` requests in flight and sends
//! the next as soon as a response completes; latency runs from the send.
//! Open loop: each connection owns a slice of the rate, its k-th request is
//! *due* at `start + phase + k * interval`, and latency runs from that due
//! time, not from when it could actually be sent. A server that stalls
//! therefore shows the wait of every request it delayed (no coordinated
//! omission), as in wrk2.
//!
//! One clock read per wake-up serves every response parsed and every
//! request sent in it; requests are copied from the pre-encoded
//! [`Workload`], and all requests a connection may send at once go out in
//! one `write`.
//!
//! Connections are opened with a non-blocking `connect` (a full accept
//! queue must not stall the other connections) and follow the run's
//! [`Mode`]: kept open, or one request per new connection, opened when the
//! request is due so that its latency includes connecting (and the TLS
//! handshake) and dropped as soon as the response is in. TLS runs the same
//! loop through a rustls `ClientConnection` per connection: ciphertext is
//! read and written with `read_tls` / `write_tls` on the socket, the
//! decrypted responses land in the same read buffer as plain ones, and a
//! request written during the handshake is sent with the client's Finished.

use crate::keys::Workload;
use crate::mode::Mode;
use crate::response::{self, Parsed};
use crate::stats::{Summary, ThreadStats, TlsStats};
use crate::tls::TlsClient;
use anyhow::{Context, bail};
use rustls::{ClientConnection, HandshakeKind};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

/// How to drive the target.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// Must be loopback (checked again here).
    pub addr: SocketAddr,
    /// Connections in total. Default 64.
    pub connections: usize,
    /// Threads; connections are spread round-robin. Default 1.
    pub threads: usize,
    /// CPUs to pin threads to (thread i on `pin[i % len]`); empty: unpinned.
    pub pin: Vec<usize>,
    /// Requests in flight per connection (pipelining). Default 1.
    pub depth: usize,
    /// Open loop at this many requests/s in total; `None`: closed loop.
    pub rate: Option<f64>,
    /// Measured time after warm-up. The run always ends: this bounds it
    /// even when `count` is set.
    pub duration: Duration,
    /// Stop after this many requests sent in total.
    pub count: Option<u64>,
    /// Time run but not measured, first. Default 0.
    pub warmup: Duration,
    /// After the last send, how long to wait for responses still in flight.
    pub drain: Duration,
    /// How requests use connections.
    pub mode: Mode,
    /// The TLS client; required by (and only for) the TLS modes.
    pub tls: Option<Arc<TlsClient>>,
}

/// Runs the load and merges the threads' results.
pub fn run(cfg: &LoadConfig, workload: Arc<Workload>, label: &str) -> anyhow::Result<Summary> {
    if !cfg.addr.ip().is_loopback() {
        bail!(
            "refusing to load {}: only loopback targets are allowed",
            cfg.addr
        );
    }
    if cfg.threads == 0 || cfg.connections < cfg.threads || cfg.depth == 0 {
        bail!("need threads >= 1, connections >= threads, depth >= 1");
    }
    if cfg.mode.tls() != cfg.tls.is_some() {
        bail!(
            "mode {} {} a TLS client (--ca and --sni)",
            cfg.mode,
            if cfg.mode.tls() { "needs" } else { "takes no" }
        );
    }
    if cfg.mode.new_connection_per_request() && cfg.depth != 1 {
        bail!(
            "mode {} sends one request per connection: depth must be 1",
            cfg.mode
        );
    }
    if let Some(r) = cfg.rate
        && !(r > 0.0 && r.is_finite())
    {
        bail!("rate must be above 0");
    }
    if workload.is_empty() {
        bail!("empty workload");
    }
    let barrier = Arc::new(Barrier::new(cfg.threads));
    let results: Vec<anyhow::Result<ThreadStats>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..cfg.threads)
            .map(|t| {
                let (cfg, workload, barrier) = (cfg.clone(), workload.clone(), barrier.clone());
                std::thread::Builder::new()
                    .name(format!("load-{t}"))
                    .spawn_scoped(s, move || Worker::new(t, &cfg, workload)?.run(&barrier))
                    .expect("spawn load thread")
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("load thread panicked"))
            .collect()
    });
    let parts = results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let (all, window) = Summary::merge(parts);
    let ok = all.statuses.values().sum::<u64>() - all.errors.status;
    Ok(Summary {
        target: cfg.addr.to_string(),
        mode: if cfg.rate.is_some() { "open" } else { "closed" }.into(),
        connection_mode: cfg.mode.name().into(),
        rate: cfg.rate,
        connections: cfg.connections,
        threads: cfg.threads,
        pin: cfg.pin.clone(),
        depth: cfg.depth,
        workload: label.to_owned(),
        duration_s: window,
        requests: all.completed,
        ok,
        rps: if window > 0.0 {
            all.completed as f64 / window
        } else {
            0.0
        },
        errors: all.errors,
        lost: all.lost,
        reconnects: all.reconnects,
        connects: all.connects,
        tls: cfg.mode.tls().then(|| TlsStats {
            tickets: cfg.tls.as_ref().map_or(0, |t| t.tickets_received()),
            ..all.tls
        }),
        statuses: all.statuses,
        latency_us: Summary::latency(&all.hist),
        client_cpu_s: all.cpu.as_secs_f64(),
        client_cpu_ns_per_request: if all.completed > 0 {
            all.cpu.as_nanos() as f64 / all.completed as f64
        } else {
            0.0
        },
    })
}

/// Pins the calling thread to one CPU.
pub fn pin_current_thread(cpu: usize) -> anyhow::Result<()> {
    // SAFETY: cpu_set_t is plain data; zeroed is the empty set, and
    // CPU_SET / sched_setaffinity only read and write that local set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            bail!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error());
        }
    }
    Ok(())
}

fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

const READ_BUF: usize = 64 * 1024;
const MAX_READ_BUF: usize = 1 << 20;
const RETRY: Duration = Duration::from_millis(10);
const EPOLLIN: u32 = libc::EPOLLIN as u32;
const EPOLLOUT: u32 = libc::EPOLLOUT as u32;

struct Conn {
    /// Index over all threads' connections: the TLS ticket slot.
    slot: usize,
    stream: Option<TcpStream>,
    /// TLS modes: the open connection's TLS state.
    tls: Option<ClientConnection>,
    /// A non-blocking `connect` not finished yet (EPOLLOUT says when).
    connecting: bool,
    /// This connection's handshake has been counted.
    handshake_counted: bool,
    /// Requests sent on this connection.
    sent: u64,
    /// Next index into the workload.
    next: usize,
    /// (workload index, intended send time) of each request in flight.
    inflight: VecDeque<(u32, Instant)>,
    rbuf: Vec<u8>,
    rstart: usize,
    rend: usize,
    /// Requests to send (plaintext; TLS encrypts them on the way out).
    wbuf: Vec<u8>,
    wpos: usize,
    /// Open loop: when the next request is due.
    due: Instant,
    retry_at: Instant,
    /// EPOLLOUT registered.
    want_out: bool,
}

/// Frees room at the end of a read buffer (moving the unparsed part
/// `start..end` to the front, else growing it); false once it is at its
/// limit. Takes the fields, not the `Conn`, so the socket and the TLS state
/// can stay borrowed.
fn make_room(buf: &mut Vec<u8>, start: &mut usize, end: &mut usize) -> bool {
    if *end < buf.len() {
        return true;
    }
    if *start > 0 {
        buf.copy_within(*start..*end, 0);
        *end -= *start;
        *start = 0;
    } else if buf.len() < MAX_READ_BUF {
        let len = buf.len() * 2;
        buf.resize(len, 0);
    } else {
        return false;
    }
    true
}

struct Worker {
    addr: SocketAddr,
    epoll: OwnedFd,
    conns: Vec<Conn>,
    workload: Arc<Workload>,
    depth: usize,
    mode: Mode,
    tls: Option<Arc<TlsClient>>,
    pin: Option<usize>,
    interval: Option<Duration>,
    /// Requests this thread may still send.
    budget: u64,
    duration: Duration,
    warmup: Duration,
    drain: Duration,
    stats: ThreadStats,
    events: Vec<libc::epoll_event>,
}

#[derive(Debug, Clone, Copy)]
enum Fail {
    Connect,
    Read,
    Write,
    Parse,
    Tls,
}

/// Why a connection is dropped.
#[derive(Debug, Clone, Copy)]
enum Why {
    /// Its one request is answered (new-connection modes).
    Done,
    /// The server closed it cleanly, nothing in flight (or said
    /// `Connection: close`) in a keep-alive mode.
    Server,
    Fail(Fail),
}

/// What reading a connection left to do.
enum Filled {
    /// Bytes (maybe none) are in the read buffer; `eof`: the peer closed.
    Data { eof: bool },
    /// The connection was dropped.
    Closed,
}

impl Worker {
    fn new(t: usize, cfg: &LoadConfig, workload: Arc<Workload>) -> anyhow::Result<Worker> {
        // SAFETY: plain syscall; the result is checked before use.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error()).context("epoll_create1");
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let mine: Vec<usize> = (t..cfg.connections).step_by(cfg.threads).collect();
        let total = cfg.connections as u64;
        let budget = match cfg.count {
            // This thread's share, spread so the shares sum to `count`.
            Some(c) => {
                (c * (t as u64 + 1) / cfg.threads as u64) - (c * t as u64 / cfg.threads as u64)
            }
            None => u64::MAX,
        };
        let len = workload.len();
        let now = Instant::now();
        let conns = mine
            .iter()
            .map(|&c| Conn {
                slot: c,
                stream: None,
                tls: None,
                connecting: false,
                handshake_counted: false,
                sent: 0,
                next: c * len / cfg.connections,
                inflight: VecDeque::with_capacity(cfg.depth),
                rbuf: vec![0; READ_BUF],
                rstart: 0,
                rend: 0,
                wbuf: Vec::with_capacity(cfg.depth * 128),
                wpos: 0,
                due: now,
                retry_at: now,
                want_out: false,
            })
            .collect();
        Ok(Worker {
            addr: cfg.addr,
            epoll,
            conns,
            workload,
            depth: cfg.depth,
            mode: cfg.mode,
            tls: cfg.tls.clone(),
            pin: (!cfg.pin.is_empty()).then(|| cfg.pin[t % cfg.pin.len()]),
            interval: cfg.rate.map(|r| Duration::from_secs_f64(total as f64 / r)),
            budget,
            duration: cfg.duration,
            warmup: cfg.warmup,
            drain: cfg.drain,
            stats: ThreadStats::new(),
            events: vec![libc::epoll_event { events: 0, u64: 0 }; 256],
        })
    }

    fn run(mut self, barrier: &Barrier) -> anyhow::Result<ThreadStats> {
        if let Some(cpu) = self.pin {
            pin_current_thread(cpu)?;
        }
        if self.tls.is_some() {
            crate::tls::warm_up_random();
        }
        let now = Instant::now();
        if !self.mode.new_connection_per_request() {
            for i in 0..self.conns.len() {
                self.connect(i, now);
            }
        }
        barrier.wait();
        let cpu0 = thread_cpu_time();
        let start = Instant::now();
        let measure_from = start + self.warmup;
        let stop_at = measure_from + self.duration;
        let n = self.conns.len();
        if let Some(iv) = self.interval {
            // Spread the connections' schedules evenly over one interval.
            for (k, c) in self.conns.iter_mut().enumerate() {
                c.due = start + iv.mul_f64(k as f64 / n as f64);
            }
        }
        let mut last_response = start;
        let mut dirty: Vec<usize> = (0..n).collect();
        let mut now = start;
        let mut stopped: Option<Instant> = None;
        loop {
            let sending = now < stop_at && self.budget > 0;
            if !sending {
                let since = *stopped.get_or_insert(now);
                let idle = self.conns.iter().all(|c| c.inflight.is_empty());
                if idle || now >= since + self.drain {
                    break;
                }
            }
            if self.interval.is_some() {
                for i in 0..n {
                    self.pump(i, now, sending);
                }
            } else {
                for &i in &dirty {
                    self.pump(i, now, sending);
                }
            }
            dirty.clear();
            let wake = self.next_wake(now, stop_at, sending);
            let ready = self.wait(wake.saturating_duration_since(now))?;
            now = Instant::now();
            for e in 0..ready {
                let ev = self.events[e];
                let i = ev.u64 as usize;
                let hup = (libc::EPOLLHUP | libc::EPOLLERR) as u32;
                if self.conns[i].connecting && ev.events & (EPOLLOUT | hup) != 0 {
                    self.finish_connect(i, now);
                }
                if ev.events & EPOLLOUT != 0 {
                    self.flush(i, now);
                }
                if ev.events & (EPOLLIN | hup) != 0 {
                    self.read(i, now, measure_from, &mut last_response);
                }
                dirty.push(i);
            }
            // Reconnects wait for their retry time without an event.
            for (i, c) in self.conns.iter().enumerate() {
                if c.stream.is_none() && c.retry_at <= now {
                    dirty.push(i);
                }
            }
        }
        for c in &self.conns {
            self.stats.lost += c.inflight.len() as u64;
        }
        self.stats.cpu = thread_cpu_time() - cpu0;
        let end = stopped.unwrap_or(now).max(last_response);
        self.stats.window = end.saturating_duration_since(measure_from);
        Ok(self.stats)
    }

    fn next_wake(&self, now: Instant, stop_at: Instant, sending: bool) -> Instant {
        if !sending {
            return now + Duration::from_millis(10);
        }
        let open_per_request = self.mode.new_connection_per_request() && self.interval.is_some();
        let mut wake = stop_at.min(now + Duration::from_millis(50));
        for c in &self.conns {
            if c.stream.is_none() {
                // A new-connection request is opened when it is due.
                wake = wake.min(if open_per_request {
                    c.retry_at.max(c.due)
                } else {
                    c.retry_at
                });
            } else if self.interval.is_some() && c.inflight.len() < self.depth {
                wake = wake.min(c.due);
            }
        }
        wake
    }

    fn wait(&mut self, timeout: Duration) -> anyhow::Result<usize> {
        let ts = libc::timespec {
            tv_sec: timeout.as_secs() as libc::time_t,
            tv_nsec: timeout.subsec_nanos() as libc::c_long,
        };
        // SAFETY: events is a valid buffer of the length passed; ts lives
        // for the call; a null sigmask means none.
        let n = unsafe {
            libc::epoll_pwait2(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                &ts,
                std::ptr::null(),
            )
        };
        if n < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == ErrorKind::Interrupted {
                return Ok(0);
            }
            return Err(err).context("epoll_pwait2");
        }
        Ok(n as usize)
    }

    /// Starts a non-blocking connect (and, in TLS modes, the TLS client
    /// whose ClientHello goes out once it is established).
    fn connect(&mut self, i: usize, now: Instant) {
        let socket = Socket::new(
            Domain::for_address(self.addr),
            Type::STREAM.nonblocking(),
            Some(Protocol::TCP),
        )
        .and_then(|s| {
            s.set_tcp_nodelay(true)?;
            Ok(s)
        });
        let connecting = socket.and_then(|s| match s.connect(&SockAddr::from(self.addr)) {
            Ok(()) => Ok((s, false)),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok((s, true)),
            Err(e) => Err(e),
        });
        let Ok((socket, connecting)) = connecting else {
            self.stats.errors.connect += 1;
            self.conns[i].retry_at = now + RETRY;
            return;
        };
        let tls = match &self.tls {
            Some(client) => match client.connect(self.conns[i].slot) {
                Ok(conn) => Some(conn),
                Err(_) => {
                    self.stats.errors.tls += 1;
                    self.conns[i].retry_at = now + RETRY;
                    return;
                }
            },
            None => None,
        };
        let stream = TcpStream::from(socket);
        let mut ev = libc::epoll_event {
            events: EPOLLIN | if connecting { EPOLLOUT } else { 0 },
            u64: i as u64,
        };
        // SAFETY: both descriptors are open; ev lives for the call.
        let rc = unsafe {
            libc::epoll_ctl(
                self.epoll.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                stream.as_raw_fd(),
                &mut ev,
            )
        };
        if rc != 0 {
            self.stats.errors.connect += 1;
            self.conns[i].retry_at = now + RETRY;
            return;
        }
        if !connecting {
            self.stats.connects += 1;
        }
        let c = &mut self.conns[i];
        c.stream = Some(stream);
        c.tls = tls;
        c.connecting = connecting;
        c.handshake_counted = false;
        c.sent = 0;
        c.rstart = 0;
        c.rend = 0;
        c.wbuf.clear();
        c.wpos = 0;
        c.want_out = connecting;
    }

    /// EPOLLOUT (or an error) on a connecting socket: connected, or failed.
    fn finish_connect(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_ref() else {
            return;
        };
        match stream.take_error() {
            Ok(None) => {
                c.connecting = false;
                self.stats.connects += 1;
            }
            _ => self.close(i, now, Why::Fail(Fail::Connect)),
        }
    }

    /// Drops the connection; what was in flight is lost. It is reopened on
    /// the next pump (at once unless it failed).
    fn close(&mut self, i: usize, now: Instant, why: Why) {
        match why {
            Why::Fail(Fail::Connect) => self.stats.errors.connect += 1,
            Why::Fail(Fail::Read) => self.stats.errors.read += 1,
            Why::Fail(Fail::Write) => self.stats.errors.write += 1,
            Why::Fail(Fail::Parse) => self.stats.errors.parse += 1,
            Why::Fail(Fail::Tls) => self.stats.errors.tls += 1,
            Why::Server => self.stats.reconnects += 1,
            Why::Done => {}
        }
        let c = &mut self.conns[i];
        self.stats.lost += c.inflight.len() as u64;
        c.inflight.clear();
        // No close_notify: like a browser done with a `Connection: close`
        // response, the client just closes. Closing the fd also removes it
        // from the epoll set.
        c.tls = None;
        c.stream = None;
        c.connecting = false;
        c.retry_at = if matches!(why, Why::Fail(_)) {
            now + RETRY
        } else {
            now
        };
    }

    /// Opens the connection if needed, queues what is due, then writes.
    fn pump(&mut self, i: usize, now: Instant, sending: bool) {
        let per_request = self.mode.new_connection_per_request();
        if self.conns[i].stream.is_none() {
            // `sending` is from the start of this round of pumps: an
            // earlier connection may have taken the last of the budget.
            if !sending || self.budget == 0 || self.conns[i].retry_at > now {
                return;
            }
            // A new-connection request's latency includes connecting: the
            // connection is opened when the request is due, not before.
            if per_request && self.interval.is_some() && self.conns[i].due > now {
                return;
            }
            self.connect(i, now);
            if self.conns[i].stream.is_none() {
                return;
            }
        }
        if sending {
            let per_conn = if per_request { 1 } else { u64::MAX };
            let w = &*self.workload;
            let c = &mut self.conns[i];
            if c.wpos == c.wbuf.len() {
                c.wbuf.clear();
                c.wpos = 0;
            }
            while c.inflight.len() < self.depth && self.budget > 0 && c.sent < per_conn {
                let intended = match self.interval {
                    None => now,
                    Some(iv) if c.due <= now => {
                        let d = c.due;
                        c.due += iv;
                        d
                    }
                    Some(_) => break,
                };
                c.wbuf.extend_from_slice(w.request(c.next));
                c.inflight.push_back((c.next as u32, intended));
                c.sent += 1;
                c.next += 1;
                if c.next == w.len() {
                    c.next = 0;
                }
                self.budget -= 1;
            }
        }
        self.flush(i, now);
    }

    fn flush(&mut self, i: usize, now: Instant) {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return;
        };
        if c.connecting {
            return; // EPOLLOUT is registered: finish_connect comes first.
        }
        let want_out = if let Some(tls) = c.tls.as_mut() {
            loop {
                // rustls keeps plaintext written during the handshake and
                // sends it after the client's Finished.
                while c.wpos < c.wbuf.len() {
                    match tls.writer().write(&c.wbuf[c.wpos..]) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => c.wpos += n,
                    }
                }
                if !tls.wants_write() {
                    break;
                }
                match tls.write_tls(stream) {
                    Ok(_) => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return self.close(i, now, Why::Fail(Fail::Write)),
                }
            }
            tls.wants_write()
        } else {
            while c.wpos < c.wbuf.len() {
                match stream.write(&c.wbuf[c.wpos..]) {
                    Ok(n) => c.wpos += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return self.close(i, now, Why::Fail(Fail::Write)),
                }
            }
            c.wpos < c.wbuf.len()
        };
        if want_out != c.want_out {
            c.want_out = want_out;
            let mut ev = libc::epoll_event {
                events: EPOLLIN | if want_out { EPOLLOUT } else { 0 },
                u64: i as u64,
            };
            // SAFETY: both descriptors are open; ev lives for the call.
            unsafe {
                libc::epoll_ctl(
                    self.epoll.as_raw_fd(),
                    libc::EPOLL_CTL_MOD,
                    stream.as_raw_fd(),
                    &mut ev,
                )
            };
        }
    }

    /// One read from the socket into the connection's read buffer; for TLS,
    /// the records read are processed and their plaintext appended.
    fn fill(&mut self, i: usize, now: Instant) -> Filled {
        let c = &mut self.conns[i];
        let Some(stream) = c.stream.as_mut() else {
            return Filled::Closed;
        };
        if c.connecting {
            return Filled::Data { eof: false };
        }
        let Some(tls) = c.tls.as_mut() else {
            if !make_room(&mut c.rbuf, &mut c.rstart, &mut c.rend) {
                self.close(i, now, Why::Fail(Fail::Parse));
                return Filled::Closed;
            }
            return match stream.read(&mut c.rbuf[c.rend..]) {
                Ok(0) => Filled::Data { eof: true },
                Ok(n) => {
                    c.rend += n;
                    Filled::Data { eof: false }
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                    Filled::Data { eof: false }
                }
                Err(_) => {
                    self.close(i, now, Why::Fail(Fail::Read));
                    Filled::Closed
                }
            };
        };
        let mut eof = match tls.read_tls(stream) {
            Ok(0) => true,
            Ok(_) => false,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) => {
                return Filled::Data { eof: false };
            }
            Err(_) => {
                self.close(i, now, Why::Fail(Fail::Read));
                return Filled::Closed;
            }
        };
        if tls.process_new_packets().is_err() {
            self.close(i, now, Why::Fail(Fail::Tls));
            return Filled::Closed;
        }
        if !c.handshake_counted && !tls.is_handshaking() {
            c.handshake_counted = true;
            let t = &mut self.stats.tls;
            t.handshakes += 1;
            match tls.handshake_kind() {
                Some(HandshakeKind::Resumed) => t.resumed += 1,
                Some(HandshakeKind::FullWithHelloRetryRequest) => {
                    t.full += 1;
                    t.hello_retry += 1;
                }
                _ => t.full += 1,
            }
            if t.negotiated.is_none() {
                t.negotiated = Some(format!(
                    "{:?} {:?} {:?}",
                    tls.protocol_version()
                        .unwrap_or(rustls::ProtocolVersion::Unknown(0)),
                    tls.negotiated_cipher_suite().map(|s| s.suite()),
                    tls.negotiated_key_exchange_group().map(|g| g.name()),
                ));
            }
        }
        loop {
            if !make_room(&mut c.rbuf, &mut c.rstart, &mut c.rend) {
                self.close(i, now, Why::Fail(Fail::Parse));
                return Filled::Closed;
            }
            match tls.reader().read(&mut c.rbuf[c.rend..]) {
                Ok(0) => {
                    // close_notify
                    eof = true;
                    break;
                }
                Ok(n) => c.rend += n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The peer closed without close_notify.
                Err(_) => {
                    eof = true;
                    break;
                }
            }
        }
        Filled::Data { eof }
    }

    fn read(&mut self, i: usize, now: Instant, measure_from: Instant, last: &mut Instant) {
        let Filled::Data { eof } = self.fill(i, now) else {
            return;
        };
        let per_request = self.mode.new_connection_per_request();
        let w = &*self.workload;
        let c = &mut self.conns[i];
        let mut close_after = None;
        while c.rstart < c.rend {
            match response::parse(&c.rbuf[c.rstart..c.rend]) {
                Parsed::Partial => break,
                Parsed::Invalid => return self.close(i, now, Why::Fail(Fail::Parse)),
                Parsed::Complete { status, len, close } => {
                    c.rstart += len;
                    let Some((idx, intended)) = c.inflight.pop_front() else {
                        // A response nobody asked for.
                        return self.close(i, now, Why::Fail(Fail::Parse));
                    };
                    if intended >= measure_from {
                        self.stats.completed += 1;
                        *self.stats.statuses.entry(status).or_default() += 1;
                        if status != w.expect[idx as usize] {
                            self.stats.errors.status += 1;
                        }
                        let ns = now.saturating_duration_since(intended).as_nanos() as u64;
                        self.stats.hist.saturating_record(ns.max(1));
                        *last = now;
                    }
                    if per_request && c.inflight.is_empty() {
                        // Its one request is answered: a new connection
                        // takes the next one.
                        close_after = Some(Why::Done);
                        break;
                    }
                    if close {
                        // The server ends the connection after this
                        // response: anything pipelined behind it is lost,
                        // a fresh connection takes over.
                        close_after = Some(Why::Server);
                        break;
                    }
                }
            }
        }
        if c.rstart == c.rend {
            c.rstart = 0;
            c.rend = 0;
        }
        if close_after.is_none() && eof {
            close_after = Some(if c.inflight.is_empty() {
                Why::Server
            } else {
                Why::Fail(Fail::Read)
            });
        }
        if let Some(why) = close_after {
            self.close(i, now, why);
        }
    }
}
