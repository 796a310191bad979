//! The engine on a nats-server with the deploy's users and permissions
//! (`deploy/nats/auth.conf.template`): connected as its node's user
//! (`engine-<node>`, for the node id it runs as) it consumes link
//! changes and publishes clicks with only that role's rights; it applies the
//! changes control signed and refuses what the operator user (who may publish
//! anything) sends without control's signature. With another node's user it
//! may not ask for visit leases.

mod common;

use common::{Engine, eventually, limited_stream, snapshot_dir};
use futures::StreamExt as _;
use snapshots::Link;
use snapshots::click::ClickBatch;
use snapshots::delta::LinkDelta;
use std::time::Duration;
use testkit::{LinkKeys, PrivateNats, Role, StreamNames};

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
    let args: Vec<String> = [
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--nats",
        // A list, as for a cluster; the first one is down.
        &format!("nats://127.0.0.1:1,{}", nats.url()),
        "--nats-user",
        &Role::ENGINE.user(),
        "--nats-password-file",
        nats.password_file(Role::ENGINE).to_str().unwrap(),
        "--links-verify-key",
        keys.verify_key().to_str().unwrap(),
        "--node-id",
        testkit::ENGINE_NODE,
        "--click-batch-age-ms",
        "20",
        "--trusted-proxy",
        "127.0.0.1",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
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
        // into the CLICKS stream.
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
        let batch = ClickBatch::parse(&message.payload).unwrap();
        addresses.extend(batch.events().map(|e| e.ip.to_string()));
    }
    addresses.sort();
    assert_eq!(addresses, ["127.0.0.0", "127.0.0.0", "198.51.100.0"]);
    drop(engine);
}

/// An engine run with another node's NATS user (the deploy makes one per
/// node, `engine-<node id>`, allowed to ask for visit leases on its own
/// node's subject only): the server refuses its lease requests, so nothing
/// reaches control's subject, it serves none of a limited link's visits,
/// and its log says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_another_nodes_user_it_gets_no_lease_and_says_why() {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth_nodes(&names, &["edge-a"]).unwrap();
    let js = async_nats::jetstream::new(nats.connect_as(Role::Operator).await.unwrap());
    js.create_stream(limited_stream(&names.links_stream, &names.links_subject))
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
    let user = Role::Engine("edge-a");
    let args: Vec<String> = [
        "--snapshot",
        path.to_str().unwrap(),
        "--cores",
        "1",
        "--nats",
        &nats.url(),
        "--nats-user",
        &user.user(),
        "--nats-password-file",
        nats.password_file(user).to_str().unwrap(),
        "--links-verify-key",
        keys.verify_key().to_str().unwrap(),
        "--node-id",
        "edge-b",
        "--state-dir",
        dir.path().join("state").to_str().unwrap(),
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
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
        engine
    })
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_millis(300), requests.next()).await;
    assert!(!matches!(got, Ok(Some(_))), "a request reached control");
    drop(engine);
}
