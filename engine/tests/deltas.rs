//! Link changes from a real NATS JetStream: upserts, deletes, a new snapshot
//! in between, a late start; every core converges. Only changes signed by a
//! trusted key are applied; the stream is control's, so the engine waits for
//! it and refuses one without limits.

mod common;

use common::{Engine, eventually, limited_stream, link, snapshot_dir, write_snapshot};
use snapshots::delta::LinkDelta;
use snapshots::{Link, RedirectStatus};
use std::time::Duration;
use testkit::{JetStreamScope, LinkKeys};

struct Stream {
    scope: JetStreamScope,
    name: String,
    subject: String,
    /// Control's key pair: deltas are signed with it, the engine trusts it.
    keys: LinkKeys,
    verify_key: String,
}

impl Stream {
    /// The stream's names; `create` makes it with limits as control would.
    async fn new() -> Stream {
        let stream = Self::names().await;
        stream.create().await;
        stream
    }

    async fn names() -> Stream {
        testkit::require_services().await.unwrap();
        let scope = JetStreamScope::connect().await.unwrap();
        let name = scope.stream_name("LINKS");
        let subject = scope.subject("links.changes");
        let keys = LinkKeys::new().unwrap();
        let verify_key = keys.verify_key().to_str().unwrap().to_owned();
        Stream {
            scope,
            name,
            subject,
            keys,
            verify_key,
        }
    }

    async fn create(&self) {
        self.scope
            .create_stream(limited_stream(&self.name, &self.subject))
            .await
            .unwrap();
    }

    /// Publishes a change as control's relay does: signed.
    async fn publish(&self, delta: LinkDelta) {
        let (mut headers, payload) = self.keys.signed(&delta);
        headers.insert("Nats-Msg-Id", delta.seq.to_string().as_str());
        self.publish_raw(headers, payload).await;
    }

    async fn publish_raw(&self, headers: async_nats::HeaderMap, payload: Vec<u8>) {
        self.scope
            .jetstream()
            .publish_with_headers(self.subject.clone(), headers, payload.into())
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
            "--links-verify-key",
            &self.verify_key,
            // No CLICKS stream or spool left behind by these tests.
            "--no-clicks",
        ]
    }
}

/// Starts the engine off the runtime (it blocks on the readiness line).
async fn start(args: Vec<String>) -> Engine {
    tokio::task::spawn_blocking(move || {
        Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
    })
    .await
    .unwrap()
}

fn owned(args: Vec<&str>) -> Vec<String> {
    args.into_iter().map(str::to_owned).collect()
}

/// Runs a blocking check off the runtime.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
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
    // Invalid changes (even signed ones) are skipped and counted, not fatal.
    let invalid = b"{\"v\":99}".to_vec();
    stream
        .publish_raw(stream.keys.headers(&invalid), invalid)
        .await;
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
    // A port and store for NATS, started only after the engine.
    let mut nats = testkit::PrivateNats::not_started().unwrap();
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let url = nats.url();
    let keys = LinkKeys::new().unwrap();
    let args: Vec<String> = [
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--nats",
        &url,
        "--links-verify-key",
        keys.verify_key().to_str().unwrap(),
        "--no-clicks",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let (engine, nats) = tokio::task::spawn_blocking(move || {
        // Nothing on the port yet: the engine starts and serves anyway.
        let engine = Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
        nats.restart().unwrap();
        (engine, nats)
    })
    .await
    .unwrap();
    // Control creates the stream (the engine never does); a change flows through.
    let client = async_nats::connect(&url).await.unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(limited_stream("LINKS", "links.changes"))
        .await
        .unwrap();
    let engine = tokio::task::spawn_blocking(move || {
        eventually(
            Duration::from_secs(30),
            "engine connects once NATS is up",
            || engine.metric_sum("engine_nats_connected", "") == 1.0,
        );
        engine
    })
    .await
    .unwrap();
    let (headers, payload) = keys.signed(&LinkDelta::upsert(2, Link::new("a", "https://a/2")));
    js.publish_with_headers("links.changes", headers, payload.into())
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
        "--allow-unsigned-links",
        "--no-clicks",
    ]);
    assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
    assert_eq!(engine.metric_sum("engine_nats_connected", ""), 0.0);
}

/// A change on the stream redirects every code on every engine: only those
/// signed by a key the engine trusts are applied; the rest are skipped and
/// counted by reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_changes_signed_by_a_trusted_key_are_applied() {
    let stream = Stream::new().await;
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let engine = start(owned(stream.args(path.to_str().unwrap()))).await;
    let forged = |seq| LinkDelta::upsert(seq, Link::new("a", format!("https://evil/{seq}")));
    // Unsigned.
    stream
        .publish_raw(async_nats::HeaderMap::new(), forged(2).encode())
        .await;
    // Signed by a key the engine does not know.
    let stranger = LinkKeys::new().unwrap();
    let (headers, payload) = stranger.signed(&forged(3));
    stream.publish_raw(headers, payload).await;
    // A trusted signature moved onto another change.
    let (headers, _) = stream
        .keys
        .signed(&LinkDelta::upsert(4, Link::new("a", "https://a/1")));
    stream.publish_raw(headers, forged(4).encode()).await;
    // Not a signature at all.
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(snapshots::signing::SIGNATURE_HEADER, "ed25519:zz");
    stream.publish_raw(headers, forged(5).encode()).await;
    // And one real change.
    stream
        .publish(LinkDelta::upsert(6, Link::new("b", "https://b/1")))
        .await;
    blocking(move || {
        converged(
            &engine,
            6,
            &[("a", Some("https://a/1")), ("b", Some("https://b/1"))],
        );
        for reason in ["missing", "unknown_key", "invalid", "malformed"] {
            assert_eq!(
                engine.metric_sum(
                    "engine_deltas_refused_total",
                    &format!("reason=\"{reason}\"")
                ),
                1.0,
                "{reason}"
            );
        }
    })
    .await;
}

/// The links stream is control's: the engine waits for it rather than
/// create it, and refuses one without limits until it has some.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waits_for_its_stream_and_refuses_one_without_limits() {
    let stream = Stream::names().await;
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let engine = start(owned(stream.args(path.to_str().unwrap()))).await;
    let state = |engine: &Engine| engine.readyz()["streams"]["links"].clone();
    let engine = blocking(move || {
        eventually(Duration::from_secs(10), "stream reported missing", || {
            state(&engine) == "missing"
        });
        assert_eq!(engine.get("/a"), (301, Some("https://a/1".into())));
        engine
    })
    .await;
    assert!(
        stream
            .scope
            .jetstream()
            .get_stream(&stream.name)
            .await
            .is_err(),
        "the engine must not create the stream"
    );
    let unlimited = async_nats::jetstream::stream::Config {
        max_age: Duration::ZERO,
        max_bytes: -1,
        max_messages: -1,
        ..limited_stream(&stream.name, &stream.subject)
    };
    stream.scope.create_stream(unlimited.clone()).await.unwrap();
    stream
        .publish(LinkDelta::upsert(2, Link::new("a", "https://a/2")))
        .await;
    let engine = blocking(move || {
        eventually(Duration::from_secs(10), "stream refused", || {
            state(&engine) == "no_limits"
                && engine.metric_sum("engine_stream_refusals_total", "stream=\"links\"") >= 1.0
        });
        assert_eq!(engine.metric_sum("engine_nats_connected", ""), 0.0);
        engine
    })
    .await;
    // Its owner gives it limits: the change waiting in it is applied.
    stream
        .scope
        .jetstream()
        .update_stream(async_nats::jetstream::stream::Config {
            max_age: Duration::from_secs(3600),
            ..unlimited
        })
        .await
        .unwrap();
    blocking(move || {
        converged(&engine, 2, &[("a", Some("https://a/2"))]);
        assert_eq!(state(&engine), "ok");
    })
    .await;
}

/// The sequence lead of a pushed snapshot counts from the newest change the
/// engine knows from the stream, not only from its own snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_snapshot_may_lead_the_changes_the_engine_knows_by_the_configured_lead() {
    let stream = Stream::new().await;
    let (_dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let mut args = owned(stream.args(path.to_str().unwrap()));
    args.extend(owned(vec!["--snapshot-sequence-max-lead", "10"]));
    let engine = start(args).await;
    for seq in 2..=30 {
        stream
            .publish(LinkDelta::upsert(
                seq,
                Link::new("a", format!("https://a/{seq}")),
            ))
            .await;
    }
    let engine = blocking(move || {
        converged(&engine, 30, &[("a", Some("https://a/30"))]);
        engine
    })
    .await;
    let push = |sequence: u64| {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.snap");
        write_snapshot(&p, sequence, &[Link::new("a", "https://a/snap")]);
        let body = std::fs::read(p).unwrap();
        let url = engine.admin_url("/snapshot");
        async move {
            reqwest::Client::new()
                .put(url)
                .body(body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    // 41 is 11 past change 30 (and 40 past the snapshot): refused.
    assert_eq!(push(41).await, 409);
    // 40 is 10 past change 30 (39 past the snapshot, which alone would refuse it).
    assert_eq!(push(40).await, 200);
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
