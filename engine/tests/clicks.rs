//! Click capture end to end on the engine side: redirects become click
//! records in JetStream with the right fields (the client address cut to its
//! prefix, named by the one configured header; unknown codes are not
//! clicks); with NATS down, or the stream missing or without limits, they
//! are spooled and replayed, and no redirect fails meanwhile.

mod common;

use common::{Engine, eventually, limited_stream, snapshot_dir};
use snapshots::Link;
use snapshots::click::ClickBatch;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use testkit::JetStreamScope;
use testkit::PrivateNats;

/// Every click event in `stream`: (subject, node, event id, status, ip, code, ua, referrer, lang, host).
type Row = (
    String,
    String,
    [u8; 16],
    u16,
    IpAddr,
    String,
    String,
    String,
    String,
    String,
);

async fn events(js: &async_nats::jetstream::Context, stream: &str) -> Vec<Row> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut rows = Vec::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let batch = ClickBatch::parse(&message.payload).expect("a valid click batch");
        let node = String::from_utf8_lossy(batch.node_id()).into_owned();
        for e in batch.events() {
            let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
            rows.push((
                message.subject.to_string(),
                node.clone(),
                e.event_id,
                e.status,
                e.ip,
                text(e.code),
                text(e.user_agent),
                text(e.referrer),
                text(e.accept_language),
                text(e.host),
            ));
        }
    }
    rows
}

/// Every event's (org, rule), in stream order.
async fn owners(js: &async_nats::jetstream::Context, stream: &str) -> Vec<(u64, u16)> {
    let mut stream = js.get_stream(stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut owners = Vec::new();
    for seq in 1..=last {
        let Ok(message) = stream.get_raw_message(seq).await else {
            continue;
        };
        let batch = ClickBatch::parse(&message.payload).expect("a valid click batch");
        owners.extend(batch.events().map(|e| (e.org_id, e.rule)));
    }
    owners
}

fn links_args(scope: &JetStreamScope, keys: &testkit::LinkKeys) -> Vec<String> {
    vec![
        "--links-verify-key".into(),
        keys.verify_key().to_str().unwrap().into(),
        "--links-stream".into(),
        scope.stream_name("LINKS"),
        "--links-subject".into(),
        scope.subject("links.changes"),
        "--clicks-stream".into(),
        scope.stream_name("CLICKS"),
        "--clicks-subject-prefix".into(),
        scope.subject("clicks"),
        "--click-batch-age-ms".into(),
        "20".into(),
    ]
}

fn start(args: Vec<String>) -> Engine {
    Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The CLICKS stream as analytics makes it: with limits.
async fn clicks_stream(scope: &JetStreamScope) {
    scope
        .create_stream(limited_stream(
            &scope.stream_name("CLICKS"),
            &format!("{}.>", scope.subject("clicks")),
        ))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_become_click_records() {
    testkit::require_services().await.unwrap();
    let scope = JetStreamScope::connect().await.unwrap();
    clicks_stream(&scope).await;
    let keys = testkit::LinkKeys::new().unwrap();
    let owned = Link {
        org_id: 77,
        ..Link::new("abc", "https://example.com/abc")
    };
    let (dir, path) = snapshot_dir(1, &[owned]);
    let mut args: Vec<String> = vec![
        "--snapshot".into(),
        path.to_str().unwrap().into(),
        "--cores".into(),
        "2".into(),
        "--nats".into(),
        scope.url().into(),
        "--node-id".into(),
        "node-a".into(),
        "--trusted-proxy".into(),
        "127.0.0.0/8".into(),
        "--state-dir".into(),
        dir.path().join("state").to_str().unwrap().into(),
    ];
    args.extend(links_args(&scope, &keys));
    let engine = tokio::task::spawn_blocking(move || start(args))
        .await
        .unwrap();
    let engine = tokio::task::spawn_blocking(move || {
        for i in 0..40u32 {
            let path = if i.is_multiple_of(4) { "/nope" } else { "/abc" };
            // The proxy appends X-Forwarded-For; the client's own Forwarded
            // header passes through it untouched and must not be believed.
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: ua-{i}\r\nReferer: https://ref.example/{i}\r\n\
                 Accept-Language: fr-CH\r\nForwarded: for=6.6.6.{i}\r\n\
                 X-Forwarded-For: 6.6.6.6, 203.0.{i}.77\r\nConnection: close\r\n\r\n"
            );
            let response = common::raw(engine.listen, request.as_bytes());
            assert!(!response.is_empty());
        }
        // Not a click: methods other than GET/HEAD, and 503s.
        common::raw(engine.listen, b"POST /abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        eventually(Duration::from_secs(20), "30 clicks published", || {
            engine.metric_sum("engine_click_events_published_total", "") == 30.0
        });
        engine
    })
    .await
    .unwrap();
    let rows = events(scope.jetstream(), &scope.stream_name("CLICKS")).await;
    assert_eq!(rows.len(), 30, "unknown codes are not clicks");
    let ids: HashSet<[u8; 16]> = rows.iter().map(|r| r.2).collect();
    assert_eq!(ids.len(), 30, "event ids are unique");
    let mut seen = HashSet::new();
    for (subject, node, _, status, ip, code, ua, referrer, lang, host) in &rows {
        assert_eq!(subject, &scope.subject("clicks.node-a"));
        assert_eq!(node, "node-a");
        let i: usize = ua.strip_prefix("ua-").unwrap().parse().unwrap();
        assert!(!i.is_multiple_of(4), "a click for an unknown code");
        seen.insert(i);
        assert_eq!((*status, code.as_str()), (301, "abc"));
        // The rightmost untrusted hop of X-Forwarded-For, cut to /24: not
        // the spoofable left end, not Forwarded, not the full address.
        assert_eq!(*ip, format!("203.0.{i}.0").parse::<IpAddr>().unwrap());
        assert_eq!(referrer, &format!("https://ref.example/{i}"));
        assert_eq!((lang.as_str(), host.as_str()), ("fr-CH", "sho.rt"));
    }
    assert_eq!(seen.len(), 30);
    // The link's org rides from the snapshot into every click record.
    let owners = owners(scope.jetstream(), &scope.stream_name("CLICKS")).await;
    assert_eq!(owners, vec![(77, 0); 30]);
    assert_eq!(engine.metric_sum("engine_clicks_captured_total", ""), 30.0);
    assert_eq!(
        engine.metric_sum("engine_unknown_code_requests_total", ""),
        10.0
    );
    assert_eq!(engine.metric_sum("engine_clicks_dropped_total", ""), 0.0);
}

/// CLICKS is analytics' stream: until it exists, and while it has no
/// limits, clicks wait in the spool; once it is right they are all published.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicks_wait_for_a_stream_with_limits() {
    testkit::require_services().await.unwrap();
    let scope = JetStreamScope::connect().await.unwrap();
    let keys = testkit::LinkKeys::new().unwrap();
    let (dir, path) = snapshot_dir(1, &[Link::new("abc", "https://example.com/abc")]);
    let mut args: Vec<String> = vec![
        "--snapshot".into(),
        path.to_str().unwrap().into(),
        "--cores".into(),
        "1".into(),
        "--nats".into(),
        scope.url().into(),
        "--node-id".into(),
        "waits".into(),
        "--state-dir".into(),
        dir.path().join("state").to_str().unwrap().into(),
    ];
    args.extend(links_args(&scope, &keys));
    let clicks_state = |engine: &Engine| engine.readyz()["streams"]["clicks"].clone();
    let engine = tokio::task::spawn_blocking(move || {
        let engine = start(args);
        for _ in 0..5 {
            assert_eq!(engine.get("/abc").0, 301);
        }
        eventually(
            Duration::from_secs(20),
            "clicks spooled, stream missing",
            || {
                engine.metric_sum("engine_click_events_spooled_total", "") == 5.0
                    && clicks_state(&engine) == "missing"
            },
        );
        engine
    })
    .await
    .unwrap();
    let name = scope.stream_name("CLICKS");
    assert!(
        scope.jetstream().get_stream(&name).await.is_err(),
        "the engine must not create the stream"
    );
    let unlimited = async_nats::jetstream::stream::Config {
        max_age: Duration::ZERO,
        max_bytes: -1,
        max_messages: -1,
        ..limited_stream(&name, &format!("{}.>", scope.subject("clicks")))
    };
    scope.create_stream(unlimited.clone()).await.unwrap();
    let engine = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(20), "stream refused", || {
            clicks_state(&engine) == "no_limits"
        });
        for _ in 0..5 {
            assert_eq!(engine.get("/abc").0, 301);
        }
        eventually(Duration::from_secs(20), "more clicks spooled", || {
            engine.metric_sum("engine_click_events_spooled_total", "") == 10.0
        });
        assert_eq!(
            engine.metric_sum("engine_click_events_published_total", ""),
            0.0
        );
        engine
    })
    .await
    .unwrap();
    scope
        .jetstream()
        .update_stream(async_nats::jetstream::stream::Config {
            max_bytes: 64 << 20,
            ..unlimited
        })
        .await
        .unwrap();
    let engine = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(30), "spool replayed", || {
            engine.metric_sum("engine_click_events_published_total", "") == 10.0
                && engine.metric_sum("engine_click_spool_batches", "") == 0.0
        });
        assert_eq!(clicks_state(&engine), "ok");
        engine
    })
    .await
    .unwrap();
    assert_eq!(events(scope.jetstream(), &name).await.len(), 10);
    drop(engine);
}

#[test]
fn nats_outage_spools_then_replays_every_click() {
    let mut nats = PrivateNats::start().unwrap();
    let (dir, path) = snapshot_dir(1, &[Link::new("abc", "https://example.com/abc")]);
    let url = nats.url();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        async_nats::jetstream::new(client)
            .create_stream(limited_stream("CLICKS", "clicks.>"))
            .await
            .unwrap();
    });
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--nats",
        &url,
        "--allow-unsigned-links",
        "--node-id",
        "outage",
        "--click-batch-age-ms",
        "20",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]);
    let get = |n: usize| {
        for _ in 0..n {
            assert_eq!(
                engine.get("/abc").0,
                301,
                "a redirect never fails because of clicks"
            );
        }
    };
    get(20);
    eventually(Duration::from_secs(20), "first clicks published", || {
        engine.metric_sum("engine_click_events_published_total", "") == 20.0
    });
    nats.stop();
    get(30);
    eventually(
        Duration::from_secs(30),
        "clicks spooled while NATS is down",
        || engine.metric_sum("engine_click_events_spooled_total", "") >= 30.0,
    );
    assert!(engine.metric_sum("engine_click_spool_bytes", "") > 0.0);
    nats.restart().unwrap();
    eventually(Duration::from_secs(60), "spool replayed", || {
        engine.metric_sum("engine_click_events_published_total", "") >= 50.0
            && engine.metric_sum("engine_click_spool_batches", "") == 0.0
    });
    assert_eq!(
        engine.metric_sum("engine_click_events_spool_dropped_total", ""),
        0.0
    );
    let rows = runtime.block_on(async {
        let client = async_nats::connect(&url).await.unwrap();
        events(&async_nats::jetstream::new(client), "CLICKS").await
    });
    let ids: HashSet<[u8; 16]> = rows.iter().map(|r| r.2).collect();
    assert_eq!(
        ids.len(),
        50,
        "every click exactly once in the stream ({} records)",
        rows.len()
    );
    drop(nats);
}
