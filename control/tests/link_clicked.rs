//! `link.clicked` webhooks on real NATS JetStream and PostgreSQL: enriched
//! clicks published as the analytics sidecar publishes them (core NATS,
//! `<enriched_subject>.<org>`, its own record type) reach the organization's
//! endpoint signed, in events of at most `webhook_click_batch` clicks; no
//! other organization's; none lost while no control runs; none written
//! twice by two instances sharing the consumer; and the deploy's NATS users
//! are enough for it.

mod common;

use common::TestApp;
use common::webhooks::{POLL, Receiver, WAIT, endpoint_as, key_file};
use control::config::Config;
use control::webhooks::sign;
use serde_json::Value;
use snapshots::enriched::EnrichedClick;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use testkit::{JetStreamScope, Role as NatsRole};

/// The config of a control reading the scope's enriched stream, with
/// batches of `batch` clicks.
fn clicked(scope: &JetStreamScope, key: &Path, batch: usize) -> impl FnOnce(&mut Config) {
    let (prefix, stream) = (scope.subject("enriched"), scope.stream_name("ENRICHED"));
    let (links_stream, links_subject) = (scope.stream_name("LINKS"), scope.subject("links"));
    let key = key.to_owned();
    move |c: &mut Config| {
        c.nats = Some(testkit::nats_url());
        c.links_stream = links_stream;
        c.links_subject = links_subject;
        c.webhook_key_file = Some(key);
        c.allow_private_webhooks = true;
        c.webhook_poll_ms = 20;
        c.enriched_subject = Some(prefix);
        c.enriched_stream = stream;
        c.webhook_click_batch = batch;
    }
}

/// A click of `org` as the sidecar publishes it.
fn click(org: i64, n: u32) -> EnrichedClick {
    EnrichedClick {
        event_id: format!("{org:08x}{n:024x}"),
        org_id: org as u64,
        domain: String::new(),
        code: format!("c{n}"),
        ts_ms: 1_764_590_000_000 + u64::from(n),
        status: 301,
        country: "GB".into(),
        city: "London".into(),
        device: "desktop".into(),
        browser: "Chrome".into(),
        os: "Windows".into(),
        referrer_host: "news.example.com".into(),
        language: "en".into(),
        is_bot: false,
        is_preview: false,
        rule: 0,
        node: "edge-1".into(),
    }
}

/// Publishes clicks `from..to` of `org` the way `analytics::publish` does:
/// core NATS, JSON, on the organization's subject.
async fn publish(scope: &JetStreamScope, org: i64, from: u32, to: u32) {
    let prefix = scope.subject("enriched");
    for n in from..to {
        let c = click(org, n);
        let payload = serde_json::to_vec(&c).unwrap();
        scope
            .client()
            .publish(
                snapshots::enriched::subject(&prefix, c.org_id),
                payload.into(),
            )
            .await
            .unwrap();
    }
    scope.client().flush().await.unwrap();
}

/// Waits until control has made its stream: the sidecar's core publishes
/// are stored from then on.
async fn stream_ready(scope: &JetStreamScope) {
    let name = scope.stream_name("ENRICHED");
    let js = scope.jetstream();
    testkit::wait_for(WAIT, POLL, || async {
        match js.get_stream(&name).await {
            Ok(mut s) => s.info().await.is_ok_and(|i| {
                i.config.subjects == vec![format!("{}.>", scope.subject("enriched"))]
            }),
            Err(_) => false,
        }
    })
    .await
    .expect("control makes the enriched stream");
    // And its consumer (clicks stored before it exists are read too, but
    // the restart test wants it there before control stops).
    testkit::wait_for(WAIT, POLL, || async {
        js.get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
            control::webhooks::clicks::CONSUMER,
            &name,
        )
        .await
        .is_ok()
    })
    .await
    .expect("control makes its consumer");
}

/// The clicks of every `link.clicked` request `receiver` got, by click
/// event id, checking each request's signature, headers and batch size.
fn clicks_received(receiver: &Receiver, secret: &str, batch: usize) -> Vec<EnrichedClick> {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let mut out = Vec::new();
    for r in receiver.got() {
        assert_eq!(r.header(sign::EVENT_TYPE_HEADER), "link.clicked");
        sign::verify(secret, r.header(sign::SIGNATURE_HEADER), &r.body, now, 300)
            .expect("signed with the endpoint's secret");
        let body = r.json();
        assert_eq!(body["type"], "link.clicked");
        assert_eq!(body["id"], r.header(sign::EVENT_ID_HEADER));
        let clicks = body["data"]["clicks"].as_array().expect("data.clicks");
        assert!(
            !clicks.is_empty() && clicks.len() <= batch,
            "{} clicks in one event",
            clicks.len()
        );
        out.extend(
            clicks
                .iter()
                .map(|c| serde_json::from_value::<EnrichedClick>(c.clone()).unwrap()),
        );
    }
    out
}

/// Waits until `receiver` has `n` clicks in all.
async fn wait_clicks(receiver: &Receiver, secret: &str, batch: usize, n: usize) {
    testkit::wait_for(WAIT, POLL, || async {
        clicks_received(receiver, secret, batch).len() >= n
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{n} clicks, got {}",
            clicks_received(receiver, secret, batch).len()
        )
    });
}

/// Clicks in the `link.clicked` events of `org` in PostgreSQL.
async fn clicks_in_events(app: &TestApp, org: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT coalesce(sum(jsonb_array_length(data->'clicks')), 0)::bigint
           FROM webhook_events WHERE type = 'link.clicked' AND org_id = $1",
    )
    .bind(org)
    .fetch_one(&app.running.state.db)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_organizations_clicks_arrive_signed_in_batches_and_no_one_elses() {
    let scope = JetStreamScope::connect().await.unwrap();
    let (_dir, key) = key_file();
    let app = TestApp::start_with(clicked(&scope, &key, 100)).await;
    let acme = app.org_id("acme").await;
    let other_key = app.key("other", &["admin"]).await;
    let other = app.org_id("other").await;
    // A third organization, without an endpoint.
    app.key("quiet", &["admin"]).await;
    let quiet = app.org_id("quiet").await;

    let acme_hook = Receiver::start(&[], 200).await;
    let other_hook = Receiver::start(&[], 200).await;
    let (_, acme_secret) =
        endpoint_as(&app, &app.admin_key, &acme_hook.url, &["link.clicked"]).await;
    let (_, other_secret) = endpoint_as(
        &app,
        &other_key,
        &other_hook.url,
        &["link.clicked", "link.created"],
    )
    .await;
    stream_ready(&scope).await;

    publish(&scope, acme, 0, 150).await;
    publish(&scope, other, 0, 20).await;
    publish(&scope, quiet, 0, 30).await;

    wait_clicks(&acme_hook, &acme_secret, 100, 150).await;
    wait_clicks(&other_hook, &other_secret, 100, 20).await;
    // Every click of acme's once, as published, and only acme's.
    let got = clicks_received(&acme_hook, &acme_secret, 100);
    let by_id: HashMap<&str, &EnrichedClick> =
        got.iter().map(|c| (c.event_id.as_str(), c)).collect();
    assert_eq!(by_id.len(), 150, "no click twice");
    for n in 0..150 {
        assert_eq!(by_id[click(acme, n).event_id.as_str()], &click(acme, n));
    }
    assert!(
        acme_hook.got().len() >= 2,
        "150 clicks need two events of at most 100"
    );
    let theirs = clicks_received(&other_hook, &other_secret, 100);
    assert!(
        theirs.iter().all(|c| c.org_id == other as u64),
        "{theirs:?}"
    );
    assert_eq!(
        theirs
            .iter()
            .map(|c| &c.event_id)
            .collect::<HashSet<_>>()
            .len(),
        20
    );
    // The organization without an endpoint has no events at all.
    assert_eq!(clicks_in_events(&app, quiet).await, 0);
    // Each event id once per endpoint (one delivery each, delivered once).
    let ids: HashSet<String> = acme_hook
        .got()
        .iter()
        .map(|r| r.header(sign::EVENT_ID_HEADER).to_owned())
        .collect();
    assert_eq!(ids.len(), acme_hook.got().len());
    assert!(ids.iter().all(|id| id.starts_with("evt_")));
    let body: Value = acme_hook.got()[0].json();
    assert_eq!(body["data"]["clicks"][0]["country"], "GB");
    scope.cleanup().await.unwrap();
}

#[tokio::test]
async fn clicks_published_while_control_is_down_arrive_and_two_instances_write_each_once() {
    let scope = JetStreamScope::connect().await.unwrap();
    let (_dir, key) = key_file();
    let app = TestApp::start_with(clicked(&scope, &key, 10)).await;
    let acme = app.org_id("acme").await;
    let hook = Receiver::start(&[], 200).await;
    let (_, secret) = endpoint_as(&app, &app.admin_key, &hook.url, &["link.clicked"]).await;
    stream_ready(&scope).await;
    // Control stops: these clicks wait in the stream.
    app.running.abort();
    publish(&scope, acme, 0, 100).await;

    // Two instances on the database, sharing the consumer.
    let start = |n: u32| {
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: app.pg.url().to_owned(),
            short_base: "https://sho.rt".into(),
            snapshot_dir: app.snapshot_dir.path().join(format!("instance-{n}")),
            links_signing_key: Some(app.link_keys.signing_key()),
            ..Config::default()
        };
        clicked(&scope, &key, 10)(&mut config);
        control::server::start_with_mailer(
            config,
            Arc::new(control::accounts::mailer::MemoryMailer::default()),
        )
    };
    let first = start(1).await.expect("a control starts");
    let second = start(2).await.expect("another control starts");
    publish(&scope, acme, 100, 300).await;

    // The stopped instance's last pull request may still be open at the
    // server and take the first clicks, for nobody: they come again after
    // the ack wait.
    testkit::wait_for(control::webhooks::clicks::ACK_WAIT + WAIT, POLL, || async {
        let got = clicks_received(&hook, &secret, 10);
        got.iter()
            .map(|c| c.event_id.as_str())
            .collect::<HashSet<_>>()
            .len()
            >= 300
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "300 clicks, got {}",
            clicks_received(&hook, &secret, 10).len()
        )
    });
    // Once everything is acknowledged nothing can come again: then the
    // events in PostgreSQL hold each click exactly once. A message the
    // stopped instance's pull request took stays unacknowledged for the
    // ack wait, whoever got its click since.
    let js = scope.jetstream();
    let stream = scope.stream_name("ENRICHED");
    testkit::wait_for(control::webhooks::clicks::ACK_WAIT + WAIT, POLL, || async {
        let mut c: async_nats::jetstream::consumer::PullConsumer = js
            .get_consumer_from_stream(control::webhooks::clicks::CONSUMER, &stream)
            .await
            .unwrap();
        c.info()
            .await
            .is_ok_and(|i| i.num_pending == 0 && i.num_ack_pending == 0)
    })
    .await
    .expect("every click acknowledged");
    assert_eq!(clicks_in_events(&app, acme).await, 300);
    let got = clicks_received(&hook, &secret, 10);
    let ids: HashSet<&str> = got.iter().map(|c| c.event_id.as_str()).collect();
    assert_eq!(ids.len(), 300, "every click");
    assert_eq!(got.len(), 300, "none twice");
    // Both instances read clicks (the consumer is shared, not owned).
    let read = |m: String| -> u64 {
        m.lines()
            .find_map(|l| l.strip_prefix("control_webhook_clicks_read_total "))
            .map_or(0, |n| n.parse().unwrap())
    };
    let metrics = |addr: std::net::SocketAddr| async move {
        reqwest::get(format!("http://{addr}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let (a, b) = (
        read(metrics(first.addr).await),
        read(metrics(second.addr).await),
    );
    assert_eq!(a + b, 300, "each click read once: {a} + {b}");
    drop((first, second));
    scope.cleanup().await.unwrap();
}

#[tokio::test]
async fn the_deploys_nats_users_are_enough_for_link_clicked() {
    // The deploy's users and permissions (deploy/nats/auth.conf.template),
    // with its names: control keeps ENRICHED and reads it as `control`, the
    // sidecar publishes as `analytics`.
    let names = testkit::StreamNames::default();
    let nats = testkit::PrivateNats::with_auth(&names).unwrap();
    let (_dir, key) = key_file();
    let app = TestApp::start_with(|c| {
        c.nats = Some(nats.url());
        c.nats_user = Some(NatsRole::Control.user());
        c.nats_password_file = Some(nats.password_file(NatsRole::Control));
        c.webhook_key_file = Some(key.clone());
        c.allow_private_webhooks = true;
        c.webhook_poll_ms = 20;
        c.enriched_subject = Some(names.enriched_subject.clone());
    })
    .await;
    assert_eq!(
        app.running.state.config.enriched_stream,
        names.enriched_stream
    );
    assert_eq!(control::webhooks::clicks::CONSUMER, names.enriched_consumer);
    let acme = app.org_id("acme").await;
    let hook = Receiver::start(&[], 200).await;
    let (_, secret) = endpoint_as(&app, &app.admin_key, &hook.url, &["link.clicked"]).await;
    let operator = async_nats::jetstream::new(nats.connect_as(NatsRole::Operator).await.unwrap());
    testkit::wait_for(WAIT, POLL, || async {
        operator
            .get_consumer_from_stream::<async_nats::jetstream::consumer::pull::Config, _, _>(
                &names.enriched_consumer,
                &names.enriched_stream,
            )
            .await
            .is_ok()
    })
    .await
    .expect("control makes its stream and consumer as the control user");
    let sidecar = nats.connect_as(NatsRole::Analytics).await.unwrap();
    for n in 0..30 {
        let c = click(acme, n);
        sidecar
            .publish(
                snapshots::enriched::subject(&names.enriched_subject, c.org_id),
                serde_json::to_vec(&c).unwrap().into(),
            )
            .await
            .unwrap();
    }
    sidecar.flush().await.unwrap();
    wait_clicks(&hook, &secret, 100, 30).await;
    assert_eq!(clicks_received(&hook, &secret, 100).len(), 30);
}
