//! Click capture end to end on the engine side: redirects become click
//! records in JetStream with the right fields; with NATS down they are
//! spooled and replayed, and no redirect fails meanwhile.

mod common;

use common::{Engine, PrivateNats, eventually, snapshot_dir};
use snapshots::Link;
use snapshots::click::ClickBatch;
use std::collections::HashSet;
use std::net::IpAddr;
use std::time::Duration;
use testkit::JetStreamScope;

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

fn links_args(scope: &JetStreamScope) -> Vec<String> {
    vec![
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_become_click_records() {
    testkit::require_services().await.unwrap();
    let scope = JetStreamScope::connect().await.unwrap();
    let (dir, path) = snapshot_dir(1, &[Link::new("abc", "https://example.com/abc")]);
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
        "--click-spool-dir".into(),
        dir.path().join("spool").to_str().unwrap().into(),
    ];
    args.extend(links_args(&scope));
    let engine = tokio::task::spawn_blocking(move || start(args))
        .await
        .unwrap();
    let engine = tokio::task::spawn_blocking(move || {
        for i in 0..40u32 {
            let path = if i.is_multiple_of(4) { "/nope" } else { "/abc" };
            let request = format!(
                "GET {path} HTTP/1.1\r\nHost: sho.rt\r\nUser-Agent: ua-{i}\r\nReferer: https://ref.example/{i}\r\n\
                 Accept-Language: fr-CH\r\nX-Forwarded-For: 6.6.6.6, 203.0.113.{i}\r\nConnection: close\r\n\r\n"
            );
            let response = common::raw(engine.listen, request.as_bytes());
            assert!(!response.is_empty());
        }
        // Not a click: methods other than GET/HEAD, and 503s.
        common::raw(engine.listen, b"POST /abc HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        eventually(Duration::from_secs(20), "40 clicks published", || {
            engine.metric_sum("engine_click_events_published_total", "") == 40.0
        });
        engine
    })
    .await
    .unwrap();
    let rows = events(scope.jetstream(), &scope.stream_name("CLICKS")).await;
    assert_eq!(rows.len(), 40);
    let ids: HashSet<[u8; 16]> = rows.iter().map(|r| r.2).collect();
    assert_eq!(ids.len(), 40, "event ids are unique");
    let mut seen = HashSet::new();
    for (subject, node, _, status, ip, code, ua, referrer, lang, host) in &rows {
        assert_eq!(subject, &scope.subject("clicks.node-a"));
        assert_eq!(node, "node-a");
        let i: usize = ua.strip_prefix("ua-").unwrap().parse().unwrap();
        seen.insert(i);
        let (want_status, want_code) = if i.is_multiple_of(4) {
            (404, "nope")
        } else {
            (301, "abc")
        };
        assert_eq!((*status, code.as_str()), (want_status, want_code));
        // The rightmost untrusted hop, not the spoofable left end.
        assert_eq!(*ip, format!("203.0.113.{i}").parse::<IpAddr>().unwrap());
        assert_eq!(referrer, &format!("https://ref.example/{i}"));
        assert_eq!((lang.as_str(), host.as_str()), ("fr-CH", "sho.rt"));
    }
    assert_eq!(seen.len(), 40);
    assert_eq!(engine.metric_sum("engine_clicks_captured_total", ""), 40.0);
    assert_eq!(engine.metric_sum("engine_clicks_dropped_total", ""), 0.0);
}

#[test]
fn nats_outage_spools_then_replays_every_click() {
    let port = testkit::free_port();
    let nats = PrivateNats::start(port, tempfile::tempdir().unwrap());
    let (dir, path) = snapshot_dir(1, &[Link::new("abc", "https://example.com/abc")]);
    let url = format!("nats://127.0.0.1:{port}");
    let engine = Engine::start(&[
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "2",
        "--nats",
        &url,
        "--node-id",
        "outage",
        "--click-batch-age-ms",
        "20",
        "--click-spool-dir",
        dir.path().join("spool").to_str().unwrap(),
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
    let (port, store) = nats.stop();
    get(30);
    eventually(
        Duration::from_secs(30),
        "clicks spooled while NATS is down",
        || engine.metric_sum("engine_click_events_spooled_total", "") >= 30.0,
    );
    assert!(engine.metric_sum("engine_click_spool_bytes", "") > 0.0);
    let nats = PrivateNats::start(port, store);
    eventually(Duration::from_secs(60), "spool replayed", || {
        engine.metric_sum("engine_click_events_published_total", "") >= 50.0
            && engine.metric_sum("engine_click_spool_batches", "") == 0.0
    });
    assert_eq!(
        engine.metric_sum("engine_click_events_spool_dropped_total", ""),
        0.0
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
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
