//! Link changes from a real NATS JetStream: upserts, deletes, a new snapshot
//! in between, a late start; every core converges.

mod common;

use common::{Engine, eventually, link, snapshot_dir, write_snapshot};
use snapshots::delta::LinkDelta;
use snapshots::{Link, RedirectStatus};
use std::time::Duration;
use testkit::JetStreamScope;

struct Stream {
    scope: JetStreamScope,
    name: String,
    subject: String,
}

impl Stream {
    async fn new() -> Stream {
        testkit::require_services().await.unwrap();
        let scope = JetStreamScope::connect().await.unwrap();
        let name = scope.stream_name("LINKS");
        let subject = scope.subject("links.changes");
        scope
            .create_stream(async_nats::jetstream::stream::Config {
                name: name.clone(),
                subjects: vec![subject.clone()],
                ..Default::default()
            })
            .await
            .unwrap();
        Stream {
            scope,
            name,
            subject,
        }
    }

    async fn publish(&self, delta: LinkDelta) {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", delta.seq.to_string().as_str());
        self.scope
            .jetstream()
            .publish_with_headers(self.subject.clone(), headers, delta.encode().into())
            .await
            .unwrap()
            .await
            .unwrap();
    }

    fn args<'a>(&'a self, snapshot: &'a str) -> Vec<&'a str> {
        vec![
            "--snapshot",
            snapshot,
            "--cores",
            "2",
            "--nats",
            self.scope.url(),
            "--links-stream",
            &self.name,
            "--links-subject",
            &self.subject,
            // No CLICKS stream or spool left behind by these tests.
            "--no-clicks",
        ]
    }
}

/// Waits until every core has applied `seq`, then checks answers over many
/// fresh connections (which the kernel spreads over both cores).
fn converged(engine: &Engine, seq: u64, expect: &[(&str, Option<&str>)]) {
    eventually(
        Duration::from_secs(15),
        &format!("every core at change {seq}"),
        || {
            let text = engine.metrics();
            let per_core = common::metric_values(&text, "engine_core_delta_applied_seq", "");
            per_core.len() == engine.cores && per_core.iter().all(|&s| s >= seq as f64)
        },
    );
    for _ in 0..16 {
        for (code, target) in expect {
            let (status, location) = engine.get(&format!("/{code}"));
            match target {
                Some(target) => assert_eq!(
                    (status, location.as_deref()),
                    (301, Some(*target)),
                    "{code}"
                ),
                None => assert_eq!(status, 404, "{code}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upserts_deletes_and_a_snapshot_in_between() {
    let stream = Stream::new().await;
    let (_dir, path) = snapshot_dir(
        10,
        &[
            Link::new("keep", "https://k/1"),
            Link::new("gone", "https://g/1"),
        ],
    );
    // A change the snapshot already covers is published first: it must be skipped.
    stream
        .publish(LinkDelta::upsert(9, Link::new("keep", "https://k/stale")))
        .await;
    let path_str = path.to_str().unwrap().to_owned();
    let engine = tokio::task::spawn_blocking({
        let args: Vec<String> = stream
            .args(&path_str)
            .into_iter()
            .map(str::to_owned)
            .collect();
        move || Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap();

    stream
        .publish(LinkDelta::upsert(11, Link::new("new", "https://n/1")))
        .await;
    stream.publish(LinkDelta::delete(12, "gone")).await;
    stream
        .publish(LinkDelta::upsert(13, Link::new("keep", "https://k/2")))
        .await;
    let check = |engine: Engine, seq, expect: Vec<(&'static str, Option<&'static str>)>| {
        tokio::task::spawn_blocking(move || {
            converged(&engine, seq, &expect);
            engine
        })
    };
    let engine = check(
        engine,
        13,
        vec![
            ("keep", Some("https://k/2")),
            ("gone", None),
            ("new", Some("https://n/1")),
        ],
    )
    .await
    .unwrap();

    // A snapshot at 12 arrives (it has "new" and the delete, not change 13):
    // change 13 must survive the prune, 11 and 12 are now covered.
    let snap12 = {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.snap");
        write_snapshot(
            &p,
            12,
            &[
                Link::new("keep", "https://k/1"),
                Link::new("new", "https://n/1"),
            ],
        );
        std::fs::read(p).unwrap()
    };
    let admin = engine.admin_url("/snapshot");
    let response = reqwest::Client::new()
        .put(admin)
        .body(snap12)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let text = tokio::task::spawn_blocking({
        let url = engine.admin_url("/metrics");
        move || metrics_text(&url)
    });
    let metrics = text.await.unwrap();
    assert_eq!(
        common::metric_values(&metrics, "engine_delta_entries", ""),
        vec![1.0, 1.0],
        "only change 13 is left"
    );

    stream
        .publish(LinkDelta::upsert(
            14,
            link("new", "https://n/2", RedirectStatus::MovedPermanently),
        ))
        .await;
    stream.publish(LinkDelta::delete(15, "keep")).await;
    stream
        .publish(LinkDelta::upsert(16, Link::new("later", "https://l/1")))
        .await;
    // Invalid changes are skipped and counted, not fatal.
    stream
        .scope
        .jetstream()
        .publish(stream.subject.clone(), b"{\"v\":99}".to_vec().into())
        .await
        .unwrap()
        .await
        .unwrap();
    stream
        .publish(LinkDelta::upsert(17, Link::new("last", "https://z/1")))
        .await;
    let engine = check(
        engine,
        17,
        vec![
            ("keep", None),
            ("gone", None),
            ("new", Some("https://n/2")),
            ("later", Some("https://l/1")),
            ("last", Some("https://z/1")),
        ],
    )
    .await
    .unwrap();
    assert_eq!(engine.metric_sum("engine_deltas_invalid_total", ""), 1.0);
    assert_eq!(engine.metric_sum("engine_delta_lag", ""), 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_after_the_snapshot_sequence_in_a_long_stream() {
    let stream = Stream::new().await;
    // 200 changes already in the stream; the snapshot covers the first 150.
    for seq in 1..=200u64 {
        stream
            .publish(LinkDelta::upsert(
                seq,
                Link::new(format!("c{}", seq % 20), format!("https://x/{seq}")),
            ))
            .await;
    }
    let links: Vec<Link> = (0..20)
        .map(|i| Link::new(format!("c{i}"), format!("https://snap/{i}")))
        .collect();
    let (_dir, path) = snapshot_dir(150, &links);
    let path_str = path.to_str().unwrap().to_owned();
    let args: Vec<String> = stream
        .args(&path_str)
        .into_iter()
        .map(str::to_owned)
        .collect();
    tokio::task::spawn_blocking(move || {
        let engine = Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        // Codes c0..c19 were last changed by seqs 181..200.
        let expect: Vec<(String, String)> = (181..=200u64)
            .map(|seq| (format!("c{}", seq % 20), format!("https://x/{seq}")))
            .collect();
        let expect: Vec<(&str, Option<&str>)> = expect
            .iter()
            .map(|(c, t)| (c.as_str(), Some(t.as_str())))
            .collect();
        converged(&engine, 200, &expect);
        // Only the 50 newer changes were delivered: the binary search found
        // the start instead of replaying the whole stream.
        assert_eq!(engine.metric_sum("engine_deltas_received_total", ""), 50.0);
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_down_at_start_then_up() {
    let port = testkit::free_port();
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let url = format!("nats://127.0.0.1:{port}");
    let args: Vec<String> = [
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--nats",
        &url,
        "--no-clicks",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let (engine, nats) = tokio::task::spawn_blocking(move || {
        // Nothing on the port yet: the engine starts and serves anyway.
        let engine = Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
        let nats = common::PrivateNats::start(port, tempfile::tempdir().unwrap());
        eventually(
            Duration::from_secs(30),
            "engine connects once NATS is up",
            || engine.metric_sum("engine_nats_connected", "") == 1.0,
        );
        (engine, nats)
    })
    .await
    .unwrap();
    // The engine created the LINKS stream itself; a change flows through.
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.publish(
        "links.changes",
        LinkDelta::upsert(2, Link::new("a", "https://a/2"))
            .encode()
            .into(),
    )
    .await
    .unwrap()
    .await
    .unwrap();
    tokio::task::spawn_blocking(move || {
        converged(&engine, 2, &[("a", Some("https://a/2"))]);
        drop(nats);
    })
    .await
    .unwrap();
}

#[test]
fn keeps_serving_when_nats_is_unreachable() {
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    // Nothing listens on port 1: the engine starts, serves, and retries.
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--nats",
        "nats://127.0.0.1:1",
        "--no-clicks",
    ]);
    assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
    assert_eq!(engine.metric_sum("engine_nats_connected", ""), 0.0);
}

/// `/metrics` of the admin port at `url` (blocking).
fn metrics_text(url: &str) -> String {
    let authority = url.trim_start_matches("http://").split('/').next().unwrap();
    let addr: std::net::SocketAddr = authority.parse().unwrap();
    let response = common::raw(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    );
    String::from_utf8_lossy(&response).into_owned()
}
