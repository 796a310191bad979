//! The click pipeline as child processes: an engine serving a fixed snapshot
//! and publishing clicks, the analytics sidecar storing them in ClickHouse,
//! a private nats-server a test may stop, and a request plan whose every
//! request has a known expected row.
//!
//! Each request carries its index in `Accept-Language` (stored raw by the
//! sidecar), so a test compares every stored row with the row its request
//! must have produced, not only the totals.

use crate::{Proc, spawn_engine};
use anyhow::Context as _;
use snapshots::{Link, RedirectStatus, SnapshotBuilder};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const CHROME_WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";
pub const SAFARI_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
pub const SLACKBOT: &str = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)";

/// The links every pipeline test serves: one per redirect status.
pub const LINKS: [(&str, RedirectStatus); 4] = [
    ("r301", RedirectStatus::MovedPermanently),
    ("r302", RedirectStatus::Found),
    ("r307", RedirectStatus::TemporaryRedirect),
    ("r308", RedirectStatus::PermanentRedirect),
];

/// MaxMind's test City database (in it 175.16.199.0/24 is Changchun, CN; the
/// engine sends only /24 prefixes, and its London entries are smaller).
pub fn geoip_fixture() -> PathBuf {
    testkit::fixtures::geoip_city()
}

/// Writes the snapshot of [`LINKS`] (and a disabled link, `gone`) into `dir`
/// and returns its path.
pub fn write_snapshot(dir: &Path) -> anyhow::Result<PathBuf> {
    let mut builder = SnapshotBuilder::new(1);
    for (code, status) in LINKS {
        builder.push(Link {
            status,
            ..Link::new(code, format!("https://example.com/{code}"))
        })?;
    }
    builder.push(Link {
        disabled: true,
        ..Link::new("gone", "https://example.com/gone")
    })?;
    let path = dir.join("links.snap");
    builder.write_to(&path)?;
    Ok(path)
}

/// One planned request and the `clicks` row it must become.
#[derive(Debug, Clone)]
pub struct Planned {
    pub path: String,
    pub user_agent: &'static str,
    pub referer: Option<String>,
    pub forwarded_for: Option<&'static str>,
    pub accept_language: String,
    /// Tab-separated `accept_language, code, status, country, city, device,
    /// browser, os, referrer_host, is_bot, ip_prefix`, as [`ROW_SQL`] prints it.
    pub row: String,
    pub status: u16,
}

/// The query whose lines [`Planned::row`] predicts, ordered like [`plan`].
pub const ROW_SQL: &str = "SELECT accept_language, code, status, country, city, device, browser, os, \
     referrer_host, is_bot, ip_prefix FROM clicks ORDER BY toUInt64(substring(accept_language, 2))";

/// Request `i` of a run (each index gives a distinct `Accept-Language`):
/// every tenth is for the disabled link (410, still a click: the code is a
/// real one; an unknown code is no click at all), the rest cycle through the
/// four redirect codes; agents cycle Chrome/Windows, Safari/iPhone,
/// Slackbot; even requests come through the trusted proxy with
/// `X-Forwarded-For: 6.6.6.6, 175.16.199.77` (the spoofable left end must be
/// ignored; the engine keeps /24), odd ones straight from 127.0.0.1; every
/// fifth has no referrer.
pub fn planned(i: usize) -> Planned {
    let (code, status) = if i % 10 == 9 {
        ("gone".to_owned(), 410)
    } else {
        let (code, status) = LINKS[i % 4];
        (code.to_owned(), status as u16)
    };
    let (user_agent, device, browser, os, is_bot) = match i % 3 {
        0 => (CHROME_WINDOWS, "desktop", "Chrome", "Windows", 0),
        1 => (SAFARI_IPHONE, "mobile", "Mobile Safari", "iOS", 0),
        _ => (SLACKBOT, "bot", "Slackbot-LinkExpanding", "", 1),
    };
    let (forwarded_for, country, city, prefix) = if i.is_multiple_of(2) {
        (
            Some("6.6.6.6, 175.16.199.77"),
            "CN",
            "Changchun",
            "175.16.199.0/24",
        )
    } else {
        (None, "", "", "127.0.0.0/24")
    };
    let (referer, referrer_host) = if i.is_multiple_of(5) {
        (None, "")
    } else {
        (
            Some(format!("https://News.Example.com/p/{i}")),
            "news.example.com",
        )
    };
    let accept_language = format!("i{i}");
    let row = [
        accept_language.as_str(),
        &code,
        &status.to_string(),
        country,
        city,
        device,
        browser,
        os,
        referrer_host,
        &is_bot.to_string(),
        prefix,
    ]
    .join("\t");
    Planned {
        path: format!("/{code}"),
        user_agent,
        referer,
        forwarded_for,
        accept_language,
        row,
        status,
    }
}

/// An HTTP client that does not follow redirects (each request is one click).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Sends planned request `i` to the engine at `listen` and returns the status.
pub async fn send(http: &reqwest::Client, listen: &str, i: usize) -> anyhow::Result<u16> {
    let p = planned(i);
    let mut request = http
        .get(format!("http://{listen}{}", p.path))
        .header("user-agent", p.user_agent)
        .header("accept-language", &p.accept_language);
    if let Some(referer) = &p.referer {
        request = request.header("referer", referer);
    }
    if let Some(xff) = p.forwarded_for {
        request = request.header("x-forwarded-for", xff);
    }
    Ok(request.send().await?.status().as_u16())
}

/// Prometheus text from `http://{addr}/metrics`, summed per metric name
/// (labels dropped: per-core series add up).
pub async fn metrics(addr: &str) -> anyhow::Result<HashMap<String, f64>> {
    Ok(testkit::prometheus::totals(
        &testkit::prometheus::scrape(addr).await?,
    ))
}

/// Where the engine and the sidecar find NATS, and the per-test names.
#[derive(Debug, Clone)]
pub struct Names {
    pub nats_url: String,
    pub links_stream: String,
    pub links_subject: String,
    pub clicks_stream: String,
    pub clicks_prefix: String,
}

impl Names {
    pub fn new(nats_url: &str, scope: &testkit::JetStreamScope) -> Names {
        Names {
            nats_url: nats_url.to_owned(),
            links_stream: scope.stream_name("LINKS"),
            links_subject: scope.subject("links.changes"),
            clicks_stream: scope.stream_name("CLICKS"),
            clicks_prefix: scope.subject("clicks"),
        }
    }

    /// Unique names on a server of the test's own (a private nats-server
    /// goes away with its store directory, so nothing needs cleaning up).
    pub fn unique(nats_url: &str) -> Names {
        let p = testkit::unique_name("e2e");
        Names {
            nats_url: nats_url.to_owned(),
            links_stream: format!("LINKS_{p}"),
            links_subject: format!("{p}.links.changes"),
            clicks_stream: format!("CLICKS_{p}"),
            clicks_prefix: format!("{p}.clicks"),
        }
    }
}

/// Starts `engine serve` on one core with click capture into `names`,
/// trusting 127.0.0.0/8 as a proxy, its state (click spool) in `state`;
/// batches age out after 20 ms (tests do not wait for the 100 ms default).
pub async fn start_engine(names: &Names, snapshot: &Path, state: &Path) -> anyhow::Result<Proc> {
    start_engine_with_age(names, snapshot, state, 20).await
}

/// [`start_engine`] with the batch age limit `batch_age_ms`.
pub async fn start_engine_with_age(
    names: &Names,
    snapshot: &Path,
    state: &Path,
    batch_age_ms: u64,
) -> anyhow::Result<Proc> {
    let age = batch_age_ms.to_string();
    // No link changes flow in these runs, but an engine on NATS trusts only
    // signed ones: a key of its own (read at start, then not needed).
    let keys = testkit::LinkKeys::new()?;
    spawn_engine(
        "127.0.0.1:0",
        &[
            "--snapshot",
            path_str(snapshot)?,
            "--nats",
            &names.nats_url,
            "--links-stream",
            &names.links_stream,
            "--links-subject",
            &names.links_subject,
            "--links-verify-key",
            path_str(&keys.verify_key())?,
            "--clicks-stream",
            &names.clicks_stream,
            "--clicks-subject-prefix",
            &names.clicks_prefix,
            "--node-id",
            "e2e",
            "--trusted-proxy",
            "127.0.0.0/8",
            "--click-batch-age-ms",
            &age,
            "--state-dir",
            path_str(state)?,
        ],
    )
    .await
}

/// Starts `analytics run` into `database` with the GeoIP test database and
/// a short ack wait, so batches a killed sidecar held come back quickly.
pub async fn start_sidecar(
    names: &Names,
    ch: &testkit::ClickHouseDatabase,
) -> anyhow::Result<Proc> {
    let subjects = format!("{}.>", names.clicks_prefix);
    Proc::spawn(
        "analytics",
        &[
            "run",
            "--nats",
            &names.nats_url,
            "--clickhouse",
            ch.url(),
            "--database",
            ch.name(),
            "--metrics",
            "127.0.0.1:0",
            "--stream",
            &names.clicks_stream,
            "--subjects",
            &subjects,
            "--geoip",
            path_str(&geoip_fixture())?,
            "--ack-wait-secs",
            "2",
        ],
    )
    .await
}

fn path_str(path: &Path) -> anyhow::Result<&str> {
    path.to_str().context("path is not UTF-8")
}
