//! `perf pages`: how long a web application's pages take, as a signed-in
//! person's browser sees them (the dashboard benchmark, `perf/dashboard.sh`).
//!
//! Unlike [`crate::load`], which drives a redirect server as hard as it can,
//! this asks for whole HTML pages one after another, the way one person
//! clicks through them, and measures each request on the client: from
//! writing the request to the last byte of its body. Every page of a list
//! is asked `warmup` times unmeasured, then `requests` times in a row on
//! one kept-alive connection (the latency a person gets), then by
//! `concurrency` connections at once (`concurrent_requests` in all: the
//! latency when a few people use it together). Any answer but 200 stops
//! the run with the page, the status and the start of the body: a
//! benchmark of error pages would measure nothing.
//!
//! Blocking sockets and a thread per connection: at a few hundred requests
//! per second nothing here is the bottleneck, and the responses can be
//! chunked (the generator's [`crate::response`] counts only sized ones).

use crate::target;
use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

/// One page: a name for the table and its path (with its query).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub name: String,
    pub path: String,
}

/// Reads `NAME<TAB>PATH` lines; blank lines and `#` comments are skipped.
pub fn load_pages(file: &Path) -> anyhow::Result<Vec<Page>> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let mut pages = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((name, path)) = line.split_once('\t') else {
            bail!("{}:{}: want NAME<TAB>PATH", file.display(), i + 1);
        };
        if !path.starts_with('/') {
            bail!("{}:{}: the path must start with /", file.display(), i + 1);
        }
        pages.push(Page {
            name: name.trim().to_owned(),
            path: path.trim().to_owned(),
        });
    }
    if pages.is_empty() {
        bail!("{}: no pages", file.display());
    }
    Ok(pages)
}

/// What to ask and how often.
#[derive(Debug, Clone)]
pub struct PagesConfig {
    pub addr: SocketAddr,
    /// The `Cookie` header sent with every request (the session).
    pub cookie: Option<String>,
    pub warmup: usize,
    /// Measured requests in a row, one connection.
    pub requests: usize,
    /// Connections of the concurrent phase (0 or 1: no such phase).
    pub concurrency: usize,
    /// Measured requests of the concurrent phase, over all connections.
    pub concurrent_requests: usize,
    /// Give up on one response after this long.
    pub timeout: Duration,
}

/// Latencies of one page in one phase, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct PageStats {
    pub name: String,
    pub path: String,
    /// `sequential` or `concurrent`.
    pub phase: &'static str,
    pub connections: usize,
    pub requests: u64,
    /// The body's size in bytes (of the last response).
    pub bytes: usize,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

/// Every page, sequential then concurrent, in the order given. Stops at
/// the first answer that is not a 200.
pub fn run(cfg: &PagesConfig, pages: &[Page]) -> anyhow::Result<Vec<PageStats>> {
    let mut out = Vec::new();
    for page in pages {
        let mut conn = Conn::new(cfg);
        for _ in 0..cfg.warmup {
            conn.get(page)?;
        }
        let mut hist = histogram();
        let mut bytes = 0;
        for _ in 0..cfg.requests {
            let (took, len) = conn.get(page)?;
            record(&mut hist, took);
            bytes = len;
        }
        out.push(stats(page, "sequential", 1, &hist, bytes));
        if cfg.concurrency > 1 && cfg.concurrent_requests > 0 {
            let (hist, bytes) = concurrent(cfg, page)?;
            out.push(stats(page, "concurrent", cfg.concurrency, &hist, bytes));
        }
        tracing::info!(page = %page.name, "done");
    }
    Ok(out)
}

/// `concurrency` connections asking `page` together, `concurrent_requests`
/// in all (each connection first asks once unmeasured, to connect).
fn concurrent(cfg: &PagesConfig, page: &Page) -> anyhow::Result<(Histogram<u64>, usize)> {
    let per = cfg.concurrent_requests.div_ceil(cfg.concurrency);
    let barrier = std::sync::Barrier::new(cfg.concurrency);
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..cfg.concurrency)
            .map(|_| {
                s.spawn(|| -> anyhow::Result<(Histogram<u64>, usize)> {
                    let mut conn = Conn::new(cfg);
                    let first = conn.get(page);
                    barrier.wait();
                    first?;
                    let mut hist = histogram();
                    let mut bytes = 0;
                    for _ in 0..per {
                        let (took, len) = conn.get(page)?;
                        record(&mut hist, took);
                        bytes = len;
                    }
                    Ok((hist, bytes))
                })
            })
            .collect();
        let mut all = histogram();
        let mut bytes = 0;
        for t in threads {
            let (h, b) = t.join().expect("a page thread panicked")?;
            all.add(&h).expect("same bounds");
            bytes = b;
        }
        Ok((all, bytes))
    })
}

fn histogram() -> Histogram<u64> {
    // Microseconds, up to 10 minutes, 3 significant digits.
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

fn record(hist: &mut Histogram<u64>, took: Duration) {
    hist.saturating_record((took.as_micros() as u64).max(1));
}

fn stats(
    page: &Page,
    phase: &'static str,
    conns: usize,
    h: &Histogram<u64>,
    bytes: usize,
) -> PageStats {
    let ms = |us: u64| us as f64 / 1000.0;
    PageStats {
        name: page.name.clone(),
        path: page.path.clone(),
        phase,
        connections: conns,
        requests: h.len(),
        bytes,
        p50_ms: ms(h.value_at_quantile(0.50)),
        p95_ms: ms(h.value_at_quantile(0.95)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
    }
}

/// The results as a Markdown table, sequential and concurrent side by
/// side, with a mark on every p95 at or over `target_ms`.
pub fn table(results: &[PageStats], target_ms: f64) -> String {
    let mut s = String::from(
        "| page | p50 ms | p95 ms | p99 ms | max ms | KiB | concurrent p50 | p95 | p99 | max |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let p95 = |v: f64| {
        if v >= target_ms {
            format!("**{v:.1}** (over {target_ms})")
        } else {
            format!("{v:.1}")
        }
    };
    for r in results.iter().filter(|r| r.phase == "sequential") {
        let c = results
            .iter()
            .find(|c| c.phase == "concurrent" && c.name == r.name && c.path == r.path);
        let conc = match c {
            Some(c) => format!(
                "{:.1} | {} | {:.1} | {:.1}",
                c.p50_ms,
                p95(c.p95_ms),
                c.p99_ms,
                c.max_ms
            ),
            None => " | | | ".to_owned(),
        };
        s += &format!(
            "| {} | {:.1} | {} | {:.1} | {:.1} | {:.0} | {conc} |\n",
            r.name,
            r.p50_ms,
            p95(r.p95_ms),
            r.p99_ms,
            r.max_ms,
            r.bytes as f64 / 1024.0
        );
    }
    s
}

/// One kept-alive HTTP/1.1 connection, reopened when the server closes it.
struct Conn<'a> {
    cfg: &'a PagesConfig,
    stream: Option<TcpStream>,
    buf: Vec<u8>,
}

impl<'a> Conn<'a> {
    fn new(cfg: &'a PagesConfig) -> Self {
        Conn {
            cfg,
            stream: None,
            buf: Vec::with_capacity(1 << 16),
        }
    }

    /// Asks for `page`; its time (request written to body read) and the
    /// body's length, or an error for anything but a 200.
    fn get(&mut self, page: &Page) -> anyhow::Result<(Duration, usize)> {
        let mut req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/html\r\nUser-Agent: perf-pages\r\n",
            page.path,
            target::host_header(&self.cfg.addr)
        );
        if let Some(c) = &self.cfg.cookie {
            req += &format!("Cookie: {c}\r\n");
        }
        req += "\r\n";
        if self.stream.is_none() {
            let s = TcpStream::connect_timeout(&self.cfg.addr, self.cfg.timeout)
                .with_context(|| format!("connecting to {}", self.cfg.addr))?;
            s.set_nodelay(true)?;
            s.set_read_timeout(Some(self.cfg.timeout))?;
            self.stream = Some(s);
        }
        let start = Instant::now();
        let stream = self.stream.as_mut().expect("connected above");
        stream.write_all(req.as_bytes())?;
        self.buf.clear();
        let resp = read_response(stream, &mut self.buf)
            .with_context(|| format!("{} ({})", page.name, page.path))?;
        let took = start.elapsed();
        if resp.close {
            self.stream = None;
        }
        if resp.status != 200 {
            let body = String::from_utf8_lossy(&resp.body);
            let body: String = body.chars().take(400).collect();
            bail!(
                "{} ({}) answered {}, not 200: {body}",
                page.name,
                page.path,
                resp.status
            );
        }
        Ok((took, resp.body.len()))
    }
}

struct Response {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// Reads one response (sized or chunked) from `stream` into `buf`.
fn read_response(stream: &mut TcpStream, buf: &mut Vec<u8>) -> anyhow::Result<Response> {
    let mut chunk = [0u8; 1 << 16];
    let mut more = |buf: &mut Vec<u8>| -> anyhow::Result<()> {
        let n = stream.read(&mut chunk).context("reading the response")?;
        if n == 0 {
            bail!("the server closed the connection mid-response");
        }
        buf.extend_from_slice(&chunk[..n]);
        Ok(())
    };
    let (head_len, status, close, framing) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut headers);
        match resp.parse(buf).context("not an HTTP response")? {
            httparse::Status::Complete(n) => {
                let status = resp.code.unwrap_or(0);
                let mut close = resp.version == Some(0);
                let mut framing = Framing::Sized(0);
                for h in resp.headers.iter() {
                    if h.name.eq_ignore_ascii_case("content-length") {
                        let v = std::str::from_utf8(h.value)?.trim();
                        framing = Framing::Sized(v.parse().context("Content-Length")?);
                    } else if h.name.eq_ignore_ascii_case("transfer-encoding")
                        && h.value.eq_ignore_ascii_case(b"chunked")
                    {
                        framing = Framing::Chunked;
                    } else if h.name.eq_ignore_ascii_case("connection") {
                        close = h.value.eq_ignore_ascii_case(b"close");
                    }
                }
                break (n, status, close, framing);
            }
            httparse::Status::Partial => more(buf)?,
        }
    };
    let body = match framing {
        Framing::Sized(len) => {
            while buf.len() < head_len + len {
                more(buf)?;
            }
            buf[head_len..head_len + len].to_vec()
        }
        Framing::Chunked => {
            let mut body = Vec::new();
            let mut at = head_len;
            loop {
                let (size_len, size) = loop {
                    match httparse::parse_chunk_size(&buf[at..]) {
                        Ok(httparse::Status::Complete(x)) => break x,
                        Ok(httparse::Status::Partial) => more(buf)?,
                        Err(_) => bail!("a bad chunk size"),
                    }
                };
                at += size_len;
                let size = usize::try_from(size)?;
                // The chunk and its CRLF (the last chunk: the final CRLF,
                // no trailers expected).
                while buf.len() < at + size + 2 {
                    more(buf)?;
                }
                body.extend_from_slice(&buf[at..at + size]);
                at += size + 2;
                if size == 0 {
                    break body;
                }
            }
        }
    };
    Ok(Response {
        status,
        close,
        body,
    })
}

enum Framing {
    Sized(usize),
    Chunked,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::BufRead;
    use std::net::TcpListener;

    /// A server answering each request on one connection with the next of
    /// `answers`.
    fn serve(answers: Vec<&'static str>) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            let (s, _) = l.accept().unwrap();
            let mut r = std::io::BufReader::new(s.try_clone().unwrap());
            let mut w = s;
            for a in answers {
                let mut line = String::new();
                while r.read_line(&mut line).unwrap() > 0 && !line.ends_with("\r\n\r\n") {}
                w.write_all(a.as_bytes()).unwrap();
            }
        });
        addr
    }

    fn cfg(addr: SocketAddr) -> PagesConfig {
        PagesConfig {
            addr,
            cookie: Some("session=x".into()),
            warmup: 0,
            requests: 2,
            concurrency: 0,
            concurrent_requests: 0,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn reads_sized_and_chunked_bodies_on_one_connection() {
        let addr = serve(vec![
            "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        ]);
        let c = cfg(addr);
        let page = Page {
            name: "p".into(),
            path: "/".into(),
        };
        let r = run(&c, std::slice::from_ref(&page)).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].requests, 2);
        assert_eq!(r[0].bytes, 7, "the chunked body, decoded");
    }

    #[test]
    fn a_page_that_is_not_200_stops_the_run() {
        let addr = serve(vec![
            "HTTP/1.1 303 See Other\r\nLocation: /signin\r\nContent-Length: 0\r\n\r\n",
        ]);
        let page = Page {
            name: "overview".into(),
            path: "/o/1".into(),
        };
        let err = run(&cfg(addr), &[page]).unwrap_err().to_string();
        assert!(err.contains("overview (/o/1) answered 303"), "{err}");
    }

    #[test]
    fn page_lists_are_name_tab_path() {
        let dir = tempfile_dir();
        let f = dir.join("pages.tsv");
        std::fs::write(&f, "# comment\nlinks\t/o/1/links?q=a b\n\n").unwrap();
        assert_eq!(
            load_pages(&f).unwrap(),
            [Page {
                name: "links".into(),
                path: "/o/1/links?q=a b".into()
            }]
        );
        std::fs::write(&f, "links /o/1/links\n").unwrap();
        assert!(load_pages(&f).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn tempfile_dir() -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("perf-pages-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }
}
