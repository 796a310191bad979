//! `perf-hyper-ref`: the "ordinary Rust server" reference of the harness.
//!
//! tokio + hyper 1 (HTTP/1.1 only) and a std `HashMap` from code to a
//! ready `Location` value, loaded from the same `links.csv` as the engine's
//! snapshot: `GET /CODE` is 301 with the target, anything else 404. One
//! runtime thread by default (`current_thread`), to compare core for core
//! with `engine --cores 1` and a one-worker nginx.
//!
//! Prints `{"event":"ready","listen":"ADDR","links":N}` on stdout when it accepts.

use anyhow::Context;
use clap::Parser;
use http_body_util::Empty;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, LOCATION};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "perf-hyper-ref",
    about = "tokio+hyper redirect server with a HashMap (comparison only)"
)]
struct Args {
    /// CSV of `code,target` (a `code,...` header line is skipped).
    #[arg(long)]
    input: PathBuf,
    /// Listen address; port 0 picks one.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Runtime threads; 1 runs tokio's current-thread runtime.
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

type Links = HashMap<Box<str>, HeaderValue>;

fn load(path: &PathBuf) -> anyhow::Result<Links> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut links = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.is_empty() || (i == 0 && line.starts_with("code")) {
            continue;
        }
        let (code, target) = line
            .split_once(',')
            .with_context(|| format!("{}:{}: expected code,target", path.display(), i + 1))?;
        let value = HeaderValue::from_str(target).with_context(|| {
            format!("{}:{}: target is not a header value", path.display(), i + 1)
        })?;
        links.insert(code.into(), value);
    }
    Ok(links)
}

async fn answer(
    links: Arc<Links>,
    req: Request<Incoming>,
) -> Result<Response<Empty<Bytes>>, Infallible> {
    let code = req.uri().path().strip_prefix('/').unwrap_or("");
    let mut resp = Response::new(Empty::new());
    match links.get(code) {
        Some(target) => {
            *resp.status_mut() = StatusCode::MOVED_PERMANENTLY;
            resp.headers_mut().insert(LOCATION, target.clone());
        }
        None => *resp.status_mut() = StatusCode::NOT_FOUND,
    }
    Ok(resp)
}

async fn serve(listener: tokio::net::TcpListener, links: Arc<Links>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let links = links.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(links.clone(), req));
            let _ = http1::Builder::new()
                .keep_alive(true)
                .pipeline_flush(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let links = Arc::new(load(&args.input)?);
    let rt = if args.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads)
            .enable_all()
            .build()?
    };
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!(
            "{}",
            serde_json::json!({"event": "ready", "listen": addr.to_string(), "links": links.len()})
        );
        tracing::info!(%addr, links = links.len(), "perf-hyper-ref ready");
        serve(listener, links).await;
        Ok(())
    })
}
