//! The request path piece by piece, with the engine's own code: request
//! parsing (a browser's head, a minimal one, a pipelined batch; raw
//! httparse on the same bytes as the floor), response encoding (redirect,
//! 404), click-record encoding, and user-agent enrichment with and without
//! the analytics cache. Snapshot lookups are in `benches/snapshot.rs`.
//!
//! `cargo bench -p bench --bench hotpath` (pin it for steadier numbers:
//! `taskset -c 1 cargo bench ...`).

use analytics::enrich::agent::{AgentCache, parse as parse_agent};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use engine::http::date;
use engine::http::request::{Limits, Parse, parse};
use engine::http::response::{Canned, Persist, Preformatted};
use snapshots::RedirectStatus;
use snapshots::click::{ClickBatchWriter, ClickEvent};
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

/// What Chrome sends for a short link clicked in a web mail (708 bytes, 15 headers).
const BROWSER: &[u8] = b"GET /aZ3kP9q HTTP/1.1\r\n\
Host: sho.rt\r\n\
Connection: keep-alive\r\n\
sec-ch-ua: \"Chromium\";v=\"130\", \"Google Chrome\";v=\"130\", \"Not?A_Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Windows\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
Sec-Fetch-Site: none\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-GB,en;q=0.9,fr;q=0.8\r\n\
Referer: https://mail.example.com/\r\n\r\n";

/// What a load generator sends.
const MINIMAL: &[u8] = b"GET /aZ3kP9q HTTP/1.1\r\nHost: sho.rt\r\n\r\n";

const PIPELINED: usize = 16;

fn request_parsing(c: &mut Criterion) {
    let limits = Limits::default();
    let mut batch = Vec::new();
    for _ in 0..PIPELINED {
        batch.extend_from_slice(MINIMAL);
    }
    let mut g = c.benchmark_group("request_parse");
    g.throughput(Throughput::Elements(1));
    for (name, req) in [("browser", BROWSER), ("minimal", MINIMAL)] {
        g.bench_function(format!("engine/{name}"), |b| {
            b.iter(|| match parse(black_box(req), &limits) {
                Parse::Complete(r) => r.head_len,
                _ => unreachable!("bench requests are complete"),
            })
        });
        // The floor: httparse alone, no field extraction or checks.
        g.bench_function(format!("httparse/{name}"), |b| {
            b.iter(|| {
                let mut headers = [httparse::EMPTY_HEADER; 64];
                let mut r = httparse::Request::new(&mut headers);
                r.parse(black_box(req)).expect("valid")
            })
        });
    }
    g.throughput(Throughput::Elements(PIPELINED as u64));
    g.bench_function(format!("engine/pipelined_{PIPELINED}"), |b| {
        b.iter(|| {
            let mut buf = black_box(&batch[..]);
            let mut n = 0;
            while let Parse::Complete(r) = parse(buf, &limits) {
                buf = &buf[r.head_len..];
                n += 1;
            }
            assert_eq!(n, PIPELINED);
        })
    });
    g.finish();
}

fn response_encoding(c: &mut Criterion) {
    let pre = Preformatted::new(3600, &date::format(1_763_769_600));
    let target = b"https://example.com/campaigns/2026/autumn/landing?utm_source=newsletter";
    let mut out = Vec::with_capacity(4096);
    let mut g = c.benchmark_group("response_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("redirect_301", |b| {
        b.iter(|| {
            out.clear();
            pre.redirect(
                &mut out,
                RedirectStatus::MovedPermanently,
                black_box(target),
                b"",
                Persist::KeepAlive11,
            );
            out.len()
        })
    });
    g.bench_function("redirect_302_query_merge", |b| {
        b.iter(|| {
            out.clear();
            pre.redirect(
                &mut out,
                RedirectStatus::Found,
                black_box(target),
                b"ref=tw&x=1",
                Persist::KeepAlive11,
            );
            out.len()
        })
    });
    g.bench_function("not_found", |b| {
        b.iter(|| {
            out.clear();
            pre.canned(
                &mut out,
                black_box(Canned::NotFound),
                false,
                Persist::KeepAlive11,
            );
            out.len()
        })
    });
    g.bench_function("date_format", |b| {
        b.iter(|| date::format(black_box(1_763_769_600)))
    });
    g.finish();
}

fn click_encoding(c: &mut Criterion) {
    let mut writer = ClickBatchWriter::new("engine-bench-node", 1 << 20);
    writer.begin([1; 16]);
    let event = ClickEvent {
        event_id: [7; 16],
        ts_ms: 1_763_769_600_123,
        status: 301,
        ip: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
        code: b"aZ3kP9q",
        user_agent: b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
        referrer: b"https://mail.example.com/",
        accept_language: b"en-GB,en;q=0.9,fr;q=0.8",
        host: b"sho.rt",
        domain: b"sho.rt",
        org_id: 0,
        rule: 0,
    };
    let mut g = c.benchmark_group("click_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("push", |b| {
        b.iter(|| {
            // A batch is cut at about 1 MiB, as the engine does; begin() reuses the buffer.
            if writer.byte_len() > (1 << 20) - 512 {
                writer.begin([2; 16]);
            }
            writer.push(black_box(&event));
        })
    });
    g.finish();
}

const AGENTS: [&str; 6] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.6 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.6; rv:131.0) Gecko/20100101 Firefox/131.0",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.6723.58 Mobile Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "curl/8.5.0",
];

fn agent_enrichment(c: &mut Criterion) {
    let mut cache = AgentCache::new(10_000);
    for a in AGENTS {
        cache.get(a.as_bytes());
    }
    let mut g = c.benchmark_group("user_agent");
    g.throughput(Throughput::Elements(AGENTS.len() as u64));
    // Bot rules + uap-core (the sidecar's parse on a cache miss).
    g.bench_function("parse_uncached", |b| {
        b.iter(|| {
            for a in AGENTS {
                black_box(parse_agent(black_box(a.as_bytes())));
            }
        })
    });
    g.bench_function("cache_hit", |b| {
        b.iter(|| {
            for a in AGENTS {
                black_box(cache.get(black_box(a.as_bytes())));
            }
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    request_parsing,
    response_encoding,
    click_encoding,
    agent_enrichment
);
criterion_main!(benches);
