//! The engine on a nats-server with the deploy's users and permissions
//! (`deploy/nats/auth.conf.template`): connected as its node's user
//! (`engine-<node>`, for the node id it runs as) it consumes link
//! changes and publishes clicks with only that role's rights; it applies the
//! changes control signed and refuses what the operator user (who may publish
//! anything) sends without control's signature. With another node's user it
//! may neither ask for visit leases nor publish clicks.

mod common;

use common::{Engine, eventually, limited_stream, snapshot_dir};
use futures::StreamExt as _;
use snapshots::Link;
use snapshots::click::ClickBatch;
use snapshots::delta::LinkDelta;
use std::path::Path;
use std::time::Duration;
use testkit::{LinkKeys, PrivateNats, Role, StreamNames};

/// The engine's command line on `nats` (`urls`: its URL, or a list naming
/// it) as `user`, running as node `node_id`, with control's verify key, the
/// snapshot at `snapshot` and its state under `dir`; batches handed over
/// after 20 ms, and the loopback a trusted proxy.
fn engine_args(
    nats: &PrivateNats,
    urls: &str,
    user: Role,
    node_id: &str,
    keys: &LinkKeys,
    dir: &Path,
    snapshot: &Path,
) -> Vec<String> {
    [
        "--snapshot",
        snapshot.to_str().unwrap(),
        "--cores",
        "1",
        "--nats",
        urls,
        "--nats-user",
        &user.user(),
        "--nats-password-file",
        nats.password_file(user).to_str().unwrap(),
        "--links-verify-key",
        keys.verify_key().to_str().unwrap(),
        "--node-id",
        node_id,
        "--click-batch-age-ms",
        "20",
        "--trusted-proxy",
        "127.0.0.1",
        "--state-dir",
        dir.join("state").to_str().unwrap(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_its_role_it_applies_control_s_changes_and_refuses_forged_ones() {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth(&names).unwrap();
    let operator = nats.connect_as(Role::Operator).await.unwrap();
    let js = async_nats::jetstream::new(operator);
    // Each stream made by its owner, with limits (operator stands in here).
    js.create_stream(limited_stream(&names.links_stream, &names.links_subject))
        .await
        .unwrap();
    js.create_stream(limited_stream(
        &names.clicks_stream,
        &format!("{}.>", names.clicks_subject_prefix),
    ))
    .await
    .unwrap();

    let keys = LinkKeys::new().unwrap();
    let (dir, path) = snapshot_dir(1, &[Link::new("a", "https://a/1")]);
    let args = engine_args(
        &nats,
        // A list, as for a cluster; the first one is down.
        &format!("nats://127.0.0.1:1,{}", nats.url()),
        Role::ENGINE,
        testkit::ENGINE_NODE,
        &keys,
        dir.path(),
        &path,
    );
    let engine = tokio::task::spawn_blocking(move || {
        let engine = Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        eventually(Duration::from_secs(30), "consuming as engine", || {
            engine.metric_sum("engine_nats_connected", "") == 1.0
        });
        engine
    })
    .await
    .unwrap();

    // The operator may publish anything on the subject: unsigned, or signed
    // by some other key.
    let forged = LinkDelta::upsert(2, Link::new("a", "https://evil/2"));
    js.publish(names.links_subject.clone(), forged.encode().into())
        .await
        .unwrap()
        .await
        .unwrap();
    let (headers, payload) = LinkKeys::new().unwrap().signed(&forged);
    js.publish_with_headers(names.links_subject.clone(), headers, payload.into())
        .await
        .unwrap()
        .await
        .unwrap();
    // Control publishes signed changes, with its own rights.
    let control = async_nats::jetstream::new(nats.connect_as(Role::Control).await.unwrap());
    for delta in [
        LinkDelta::upsert(3, Link::new("b", "https://b/3")),
        LinkDelta::upsert(4, Link::new("a", "https://a/4")),
    ] {
        let (headers, payload) = keys.signed(&delta);
        control
            .publish_with_headers(names.links_subject.clone(), headers, payload.into())
            .await
            .unwrap()
            .await
            .unwrap();
    }
    let engine = tokio::task::spawn_blocking(move || {
        eventually(Duration::from_secs(15), "change 4 applied", || {
            engine.metric_sum("engine_core_delta_applied_seq", "") >= 4.0
        });
        assert_eq!(engine.get("/a"), (301, Some("https://a/4".into())));
        assert_eq!(engine.get("/b"), (301, Some("https://b/3".into())));
        assert_eq!(
            engine.metric_sum("engine_deltas_refused_total", "reason=\"missing\""),
            1.0
        );
        assert_eq!(
            engine.metric_sum("engine_deltas_refused_total", "reason=\"unknown_key\""),
            1.0
        );
        // Clicks (those two and one through a proxy), published as engine
        // into the CLICKS stream, on its own node's subject.
        let request = b"GET /a HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.23\r\nConnection: close\r\n\r\n";
        assert!(!common::raw(engine.listen, request).is_empty());
        eventually(Duration::from_secs(20), "clicks published", || {
            engine.metric_sum("engine_click_events_published_total", "") == 3.0
        });
        engine
    })
    .await
    .unwrap();
    let mut stream = js.get_stream(&names.clicks_stream).await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut addresses = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        assert_eq!(message.subject.as_str(), "clicks.node1");
        let batch = ClickBatch::parse(&message.payload).unwrap();
        addresses.extend(batch.events().map(|e| e.ip.to_string()));
    }
    addresses.sort();
    assert_eq!(addresses, ["127.0.0.0", "127.0.0.0", "198.51.100.0"]);
    drop(engine);
}

/// An engine run with another node's NATS user (the deploy makes one per
/// node, `engine-<node id>`, allowed to ask for visit leases and publish
/// clicks on its own node's subjects only): the server refuses its lease
/// requests, so nothing reaches control's subject, it serves none of a
/// limited link's visits, and its log says why; and it refuses the click
/// batches of those visits, which stay in the engine's spool.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_another_nodes_user_it_gets_no_lease_nor_publishes_clicks() {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth_nodes(&names, &["edge-a"]).unwrap();
    let js = async_nats::jetstream::new(nats.connect_as(Role::Operator).await.unwrap());
    js.create_stream(limited_stream(&names.links_stream, &names.links_subject))
        .await
        .unwrap();
    // The click stream exists, so the engine does try to publish.
    js.create_stream(limited_stream(
        &names.clicks_stream,
        &format!("{}.>", names.clicks_subject_prefix),
    ))
    .await
    .unwrap();
    // Control's subjects, watched as control: nothing may arrive.
    let watcher = nats.connect_as(Role::Control).await.unwrap();
    let mut requests = watcher
        .subscribe(format!("{}.*", names.lease_subject))
        .await
        .unwrap();
    watcher.flush().await.unwrap();

    let keys = LinkKeys::new().unwrap();
    let limited = Link {
        max_visits: Some(5),
        ..Link::new("m", "https://m/1")
    };
    let (dir, path) = snapshot_dir(1, &[limited]);
    let args = engine_args(
        &nats,
        &nats.url(),
        Role::Engine("edge-a"),
        "edge-b",
        &keys,
        dir.path(),
        &path,
    );
    let engine = tokio::task::spawn_blocking(move || {
        let engine = Engine::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let (status, _) = engine.get("/m");
        assert_eq!(status, 410, "served without a lease");
        eventually(Duration::from_secs(20), "the refusal in the log", || {
            engine.process.log_tail(50).contains("links.lease.edge-b")
        });
        let log = engine.process.log_tail(50).to_ascii_lowercase();
        assert!(log.contains("permissions violation"), "{log}");
        assert_eq!(engine.get("/m").0, 410);
        // The two visits' clicks, on clicks.edge-b: no ack comes, so they
        // are spooled.
        eventually(
            Duration::from_secs(20),
            "clicks refused and spooled",
            || {
                engine.metric_sum("engine_click_publish_failures_total", "") >= 1.0
                    && engine.metric_sum("engine_click_events_spooled_total", "") >= 1.0
            },
        );
        assert_eq!(
            engine.metric_sum("engine_click_events_published_total", ""),
            0.0
        );
        engine
    })
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_millis(300), requests.next()).await;
    assert!(!matches!(got, Ok(Some(_))), "a request reached control");
    let mut clicks = js.get_stream(&names.clicks_stream).await.unwrap();
    assert_eq!(clicks.info().await.unwrap().state.messages, 0);
    drop(engine);
}
