//! TLS on the server side, in memory: full TLS 1.3 and TLS 1.2 handshakes
//! and resumed TLS 1.3 handshakes for each of rustls's providers, then the
//! cost of one keep-alive request/answer on an established connection
//! (rustls buffered API, unbuffered API, and the engine's `TlsConn`). Only
//! the server's calls are timed (see `bench::tls` for how); allocations per
//! keep-alive exchange are printed before the timings.
//!
//! `cargo bench -p bench --bench tls` (pin it: `taskset -c 1 cargo bench ...`).
//! Instruction counts, steadier on a shared machine: `src/bin/tls-instructions.rs`.

use bench::tls::{
    Handshakes, KeepAlive, Kind, Pki, Provider, RESPONSE, Unbuffered, client, client_flush,
    client_receive, server_config, tls_server_unbuffered,
};
use criterion::{Criterion, criterion_group, criterion_main};
use engine::tls::conn::TlsConn;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counts allocations, to print how many one keep-alive exchange makes.
struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn handshakes(c: &mut Criterion) {
    let pki = Pki::new();
    let mut g = c.benchmark_group("tls_handshake");
    g.sample_size(30);
    for provider in Provider::ALL {
        for kind in Kind::ALL {
            let mut h = Handshakes::new(provider, kind, &pki);
            eprintln!("{} {}: {}", provider.name(), kind.name(), h.suite());
            g.bench_function(format!("{}/{}", provider.name(), h.kind().name()), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| h.run()).sum())
            });
        }
    }
    g.finish();
}

/// One exchange on the engine's `TlsConn`: server side timed.
struct EngineConn {
    client: rustls::ClientConnection,
    server: TlsConn,
    c2s: Vec<u8>,
    out: Vec<u8>,
}

impl EngineConn {
    fn new(provider: Provider, pki: &Pki) -> EngineConn {
        let mut e = EngineConn {
            client: client(provider, pki),
            server: TlsConn::new(server_config(provider, pki)).expect("conn"),
            c2s: Vec::with_capacity(16 * 1024),
            out: Vec::with_capacity(16 * 1024),
        };
        while e.client.is_handshaking() || e.client.wants_write() {
            client_flush(&mut e.client, &mut e.c2s);
            e.out.clear();
            e.server.receive(&e.c2s).expect("handshake");
            e.server.take_output(&mut e.out);
            client_receive(&mut e.client, &e.out);
        }
        e.exchange();
        e
    }

    fn exchange(&mut self) -> Duration {
        self.client
            .writer()
            .write_all(bench::tls::REQUEST)
            .expect("request");
        client_flush(&mut self.client, &mut self.c2s);
        self.out.clear();
        let t = Instant::now();
        self.server.receive(&self.c2s).expect("request");
        let n = self.server.plaintext().len();
        self.server.consume(n);
        self.server.send(RESPONSE, &mut self.out);
        let spent = t.elapsed();
        assert_eq!(n, bench::tls::REQUEST.len());
        client_receive(&mut self.client, &self.out);
        let mut answer = [0u8; 512];
        let got = self.client.reader().read(&mut answer).expect("answer");
        assert_eq!(&answer[..got], RESPONSE);
        spent
    }
}

/// One exchange on the unbuffered API: server side timed.
struct UnbufferedConn {
    client: rustls::ClientConnection,
    server: Unbuffered,
    c2s: Vec<u8>,
    plain: Vec<u8>,
    s2c: Vec<u8>,
}

impl UnbufferedConn {
    fn new(provider: Provider, pki: &Pki) -> UnbufferedConn {
        let (client, server) = Unbuffered::established(provider, pki);
        let mut u = UnbufferedConn {
            client,
            server,
            c2s: Vec::with_capacity(16 * 1024),
            plain: Vec::with_capacity(16 * 1024),
            s2c: Vec::with_capacity(16 * 1024),
        };
        u.exchange();
        u
    }

    fn exchange(&mut self) -> Duration {
        self.client
            .writer()
            .write_all(bench::tls::REQUEST)
            .expect("request");
        client_flush(&mut self.client, &mut self.c2s);
        self.plain.clear();
        let t = Instant::now();
        let out = tls_server_unbuffered(&mut self.server, &self.c2s, &mut self.plain, RESPONSE);
        let spent = t.elapsed();
        self.s2c.clear();
        self.s2c.extend_from_slice(out);
        assert_eq!(self.plain, bench::tls::REQUEST);
        client_receive(&mut self.client, &self.s2c);
        let mut answer = [0u8; 512];
        let got = self.client.reader().read(&mut answer).expect("answer");
        assert_eq!(&answer[..got], RESPONSE);
        spent
    }
}

/// Allocations per exchange, the client's included (counted once with
/// the client alone and subtracted would need another pass; the client
/// side is the same for all three, so the differences are the servers').
fn allocations(mut exchange: impl FnMut() -> Duration) -> f64 {
    const N: u64 = 100;
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for _ in 0..N {
        exchange();
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64
}

fn keepalive(c: &mut Criterion) {
    let pki = Pki::new();
    let mut g = c.benchmark_group("tls_keepalive");
    for provider in Provider::ALL {
        let mut buffered = KeepAlive::new(provider, &pki);
        let mut unbuffered = UnbufferedConn::new(provider, &pki);
        let mut engine = EngineConn::new(provider, &pki);
        eprintln!(
            "{} allocations per keep-alive exchange (client + server): buffered {:.1}, unbuffered {:.1}, engine TlsConn {:.1}",
            provider.name(),
            allocations(|| buffered.exchange()),
            allocations(|| unbuffered.exchange()),
            allocations(|| engine.exchange()),
        );
        g.bench_function(format!("{}/buffered", provider.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| buffered.exchange()).sum())
        });
        g.bench_function(format!("{}/unbuffered", provider.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| unbuffered.exchange()).sum())
        });
        g.bench_function(format!("{}/engine_tlsconn", provider.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| engine.exchange()).sum())
        });
    }
    g.finish();
}

criterion_group!(benches, handshakes, keepalive);
criterion_main!(benches);
