//! The deploy's NATS users and permissions (`deploy/nats/auth.conf.template`)
//! on a real nats-server: each role can do its job and nothing else, each
//! engine node only in its own name, and a client without credentials cannot
//! connect at all.

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt as _;
use std::time::Duration;
use testkit::{PrivateNats, Role, StreamNames};
use tokio::sync::mpsc;

/// Short enough that a refused publish (the server drops it; no ack ever
/// comes) fails the test quickly, long enough for a loaded machine.
const ACK_WAIT: Duration = Duration::from_secs(2);

fn js(client: async_nats::Client) -> jetstream::Context {
    let mut context = jetstream::new(client);
    context.set_timeout(ACK_WAIT);
    context
}

async fn setup() -> anyhow::Result<(PrivateNats, StreamNames)> {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth(&names)?;
    // The owners create their streams, as control and analytics do.
    js(nats.connect_as(Role::Control).await?)
        .create_stream(stream::Config {
            name: names.links_stream.clone(),
            subjects: vec![names.links_subject.clone()],
            ..Default::default()
        })
        .await?;
    js(nats.connect_as(Role::Analytics).await?)
        .create_stream(stream::Config {
            name: names.clicks_stream.clone(),
            subjects: vec![format!("{}.>", names.clicks_subject_prefix)],
            ..Default::default()
        })
        .await?;
    Ok((nats, names))
}

/// The click subject of [`Role::ENGINE`]'s node, the only one it may publish on.
fn own_clicks_subject(names: &StreamNames) -> String {
    format!("{}.{}", names.clicks_subject_prefix, testkit::ENGINE_NODE)
}

async fn stream_len(nats: &PrivateNats, name: &str) -> anyhow::Result<u64> {
    let js = js(nats.connect_as(Role::Operator).await?);
    Ok(js.get_stream(name).await?.info().await?.state.messages)
}

#[tokio::test]
async fn a_client_without_credentials_is_refused() -> anyhow::Result<()> {
    let (nats, _) = setup().await?;
    let anonymous = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.url())
        .await;
    assert!(anonymous.is_err(), "anonymous connection accepted");
    let wrong = async_nats::ConnectOptions::new()
        .user_and_password(Role::ENGINE.user(), "not-the-password".into())
        .connection_timeout(Duration::from_secs(2))
        .connect(nats.url())
        .await;
    assert!(wrong.is_err(), "a wrong password was accepted");
    Ok(())
}

#[tokio::test]
async fn only_control_publishes_link_changes() -> anyhow::Result<()> {
    let (nats, names) = setup().await?;
    js(nats.connect_as(Role::Control).await?)
        .publish(names.links_subject.clone(), "change".into())
        .await?
        .await?;
    for role in [Role::ENGINE, Role::Analytics] {
        let refused = js(nats.connect_as(role).await?)
            .publish(names.links_subject.clone(), "forged".into())
            .await?
            .await;
        assert!(refused.is_err(), "{} published a link change", role.user());
    }
    assert_eq!(stream_len(&nats, &names.links_stream).await?, 1);
    Ok(())
}

#[tokio::test]
async fn only_engines_publish_clicks() -> anyhow::Result<()> {
    let (nats, names) = setup().await?;
    let subject = own_clicks_subject(&names);
    js(nats.connect_as(Role::ENGINE).await?)
        .publish(subject.clone(), "batch".into())
        .await?
        .await?;
    for role in [Role::Control, Role::Analytics] {
        let refused = js(nats.connect_as(role).await?)
            .publish(subject.clone(), "forged".into())
            .await?
            .await;
        assert!(refused.is_err(), "{} published clicks", role.user());
    }
    assert_eq!(stream_len(&nats, &names.clicks_stream).await?, 1);
    Ok(())
}

#[tokio::test]
async fn engines_read_link_changes_and_analytics_reads_clicks() -> anyhow::Result<()> {
    let (nats, names) = setup().await?;
    js(nats.connect_as(Role::Control).await?)
        .publish(names.links_subject.clone(), "change".into())
        .await?
        .await?;
    js(nats.connect_as(Role::ENGINE).await?)
        .publish(own_clicks_subject(&names), "batch".into())
        .await?
        .await?;

    // The engine's ordered consumer on LINKS, as engine/src/links.rs makes it.
    let engine = nats.connect_as(Role::ENGINE).await?;
    let links = js(engine.clone()).get_stream(&names.links_stream).await?;
    let mut changes = links
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: engine.new_inbox(),
            filter_subject: names.links_subject.clone(),
            ..Default::default()
        })
        .await?
        .messages()
        .await?;
    let first = tokio::time::timeout(ACK_WAIT, changes.next()).await?;
    assert_eq!(&first.expect("a message")?.payload[..], b"change");

    // Analytics' durable pull consumer on CLICKS, acked.
    let analytics = js(nats.connect_as(Role::Analytics).await?);
    let clicks = analytics.get_stream(&names.clicks_stream).await?;
    let durable = clicks
        .get_or_create_consumer(
            &names.clicks_consumer,
            consumer::pull::Config {
                durable_name: Some(names.clicks_consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut batch = durable.fetch().max_messages(1).messages().await?;
    let message = tokio::time::timeout(ACK_WAIT, batch.next())
        .await?
        .expect("a message")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(&message.payload[..], b"batch");
    message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;

    // Nobody else reads the clicks: the engine cannot make a consumer on CLICKS.
    let engine_js = js(nats.connect_as(Role::ENGINE).await?);
    let stolen = engine_js
        .create_consumer_on_stream(
            consumer::pull::Config {
                durable_name: Some("stolen".into()),
                ..Default::default()
            },
            names.clicks_stream.clone(),
        )
        .await;
    assert!(stolen.is_err(), "the engine made a consumer on CLICKS");
    Ok(())
}

#[tokio::test]
async fn a_role_cannot_read_another_roles_replies_or_raw_subjects() -> anyhow::Result<()> {
    let (nats, names) = setup().await?;
    let engine = nats.connect_as(Role::ENGINE).await?;
    // Subscriptions outside its inbox are refused by the server (nothing arrives).
    let mut others = engine.subscribe("_INBOX_control.>").await?;
    let mut raw_clicks = engine
        .subscribe(format!("{}.>", names.clicks_subject_prefix))
        .await?;
    engine.flush().await?;
    js(nats.connect_as(Role::Control).await?)
        .get_stream(&names.links_stream)
        .await?
        .info()
        .await?;
    js(nats.connect_as(Role::ENGINE).await?)
        .publish(own_clicks_subject(&names), "batch".into())
        .await?
        .await?;
    // Nothing may arrive: either nothing comes (timeout) or the client ends
    // the refused subscription (None).
    for sub in [&mut others, &mut raw_clicks] {
        let got = tokio::time::timeout(Duration::from_millis(300), sub.next()).await;
        assert!(
            !matches!(got, Ok(Some(_))),
            "the engine read another role's traffic"
        );
    }
    Ok(())
}

#[tokio::test]
async fn analytics_publishes_enriched_clicks_and_only_control_reads_them() -> anyhow::Result<()> {
    let (nats, names) = setup().await?;
    // Control keeps the stream and reads it through its durable consumer
    // (control/src/webhooks/clicks.rs).
    let control = js(nats.connect_as(Role::Control).await?);
    let subjects = format!("{}.>", names.enriched_subject);
    let stream = control
        .create_stream(stream::Config {
            name: names.enriched_stream.clone(),
            subjects: vec![subjects.clone()],
            ..Default::default()
        })
        .await?;
    let durable = stream
        .get_or_create_consumer(
            &names.enriched_consumer,
            consumer::pull::Config {
                durable_name: Some(names.enriched_consumer.clone()),
                ack_policy: consumer::AckPolicy::Explicit,
                filter_subject: subjects,
                ..Default::default()
            },
        )
        .await?;
    // The sidecar publishes on core NATS, as analytics/src/publish.rs does;
    // the others may not (the server drops their publishes).
    let subject = format!("{}.42", names.enriched_subject);
    for role in [Role::ENGINE, Role::Control] {
        let c = nats.connect_as(role).await?;
        c.publish(subject.clone(), "forged".into()).await?;
        c.flush().await?;
    }
    let analytics = nats.connect_as(Role::Analytics).await?;
    analytics.publish(subject.clone(), "click".into()).await?;
    analytics.flush().await?;
    // A core publish is stored a moment after the server took it.
    let mut batch = durable
        .batch()
        .max_messages(1)
        .expires(ACK_WAIT)
        .messages()
        .await?;
    let message = tokio::time::timeout(ACK_WAIT, batch.next())
        .await?
        .expect("a message")
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(&message.payload[..], b"click");
    message.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    assert_eq!(
        stream_len(&nats, &names.enriched_stream).await?,
        1,
        "only the sidecar's"
    );

    // Nobody else reads them: no consumer on ENRICHED for the engine or analytics.
    for role in [Role::ENGINE, Role::Analytics] {
        let stolen = js(nats.connect_as(role).await?)
            .create_consumer_on_stream(
                consumer::pull::Config {
                    durable_name: Some("stolen".into()),
                    ..Default::default()
                },
                names.enriched_stream.clone(),
            )
            .await;
        assert!(
            stolen.is_err(),
            "{} made a consumer on ENRICHED",
            role.user()
        );
    }
    Ok(())
}

/// Visit leases (`snapshots::lease`): an engine asks on `links.lease.<node>`
/// and control answers on the engine's inbox (responses only); no other
/// role may ask, and control may not publish on the engines' inboxes
/// unasked.
#[tokio::test]
async fn engines_ask_control_for_visit_leases() -> anyhow::Result<()> {
    let (nats, _) = setup().await?;
    let control = nats.connect_as(Role::Control).await?;
    let mut requests = control.subscribe("links.lease.*").await?;
    control.flush().await?;
    let answering = control.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            if let Some(reply) = request.reply {
                let _ = answering.publish(reply, "granted".into()).await;
                let _ = answering.flush().await;
            }
        }
    });
    let engine = nats.connect_as(Role::ENGINE).await?;
    let reply = tokio::time::timeout(ACK_WAIT, engine.request("links.lease.node1", "want".into()))
        .await??;
    assert_eq!(&reply.payload[..], b"granted");
    for role in [Role::Analytics, Role::Control] {
        let client = nats.connect_as(role).await?;
        let asked = tokio::time::timeout(
            Duration::from_millis(500),
            client.request("links.lease.node1", "want".into()),
        )
        .await;
        assert!(
            !matches!(asked, Ok(Ok(_))),
            "{} asked for a lease",
            role.user()
        );
    }
    // Control cannot write to an engine's inbox it was not asked on.
    let unasked = format!("_INBOX_{}.unasked", Role::ENGINE.user());
    let mut inbox = engine.subscribe(unasked.clone()).await?;
    engine.flush().await?;
    control.publish(unasked, "forged".into()).await?;
    control.flush().await?;
    let got = tokio::time::timeout(Duration::from_millis(300), inbox.next()).await;
    assert!(
        !matches!(got, Ok(Some(_))),
        "control wrote to an engine's inbox"
    );
    Ok(())
}

/// One user per engine node: node A's credential asks for leases on its own
/// subject and control answers, but the server refuses A's publishes on node
/// B's subject (a permissions violation; control never sees them), so A
/// cannot ask for, or give back, B's leases. Nor can A read B's replies.
#[tokio::test]
async fn an_engine_asks_for_leases_in_its_own_nodes_name_only() -> anyhow::Result<()> {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth_nodes(&names, &["edge-a", "edge-b"])?;
    let (a_node, b_node) = (Role::Engine("edge-a"), Role::Engine("edge-b"));
    let subject = |node: &str| format!("{}.{node}", names.lease_subject);

    // Control answers every request with the subject it came on.
    let control = nats.connect_as(Role::Control).await?;
    let mut requests = control
        .subscribe(format!("{}.*", names.lease_subject))
        .await?;
    control.flush().await?;
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let answering = control.clone();
    tokio::spawn(async move {
        while let Some(request) = requests.next().await {
            let _ = seen_tx.send(request.subject.to_string());
            if let Some(reply) = request.reply {
                let _ = answering
                    .publish(reply, request.subject.as_bytes().to_vec().into())
                    .await;
                let _ = answering.flush().await;
            }
        }
    });

    // A, with the server's errors in view.
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let options = nats.options_as(a_node).event_callback(move |event| {
        let errors_tx = errors_tx.clone();
        async move {
            if let async_nats::Event::ServerError(error) = event {
                let _ = errors_tx.send(error.to_string().to_ascii_lowercase());
            }
        }
    });
    let a = nats.connect_with(a_node, options).await?;
    let reply =
        tokio::time::timeout(ACK_WAIT, a.request(subject("edge-a"), "want".into())).await??;
    assert_eq!(reply.payload, subject("edge-a").as_bytes());

    // B's subject: a return of B's leases in B's name, refused.
    let b_inbox = format!("_INBOX_{}.>", b_node.user());
    let mut b_replies = a.subscribe(b_inbox.clone()).await?;
    a.publish(subject("edge-b"), "return".into()).await?;
    a.flush().await?;
    let mut refused = Vec::new();
    while refused.len() < 2 {
        let error = tokio::time::timeout(ACK_WAIT, errors.recv())
            .await?
            .expect("a server error");
        assert!(error.contains("permissions violation"), "{error}");
        refused.push(error);
    }
    assert!(
        refused
            .iter()
            .any(|e| e.contains("publish") && e.contains("links.lease.edge-b")),
        "{refused:?}"
    );
    assert!(
        refused
            .iter()
            .any(|e| e.contains("subscription") && e.contains(&b_inbox.to_ascii_lowercase())),
        "{refused:?}"
    );

    // B asks in its own name; A reads nothing of it.
    let b = nats.connect_as(b_node).await?;
    let reply =
        tokio::time::timeout(ACK_WAIT, b.request(subject("edge-b"), "want".into())).await??;
    assert_eq!(reply.payload, subject("edge-b").as_bytes());
    let got = tokio::time::timeout(Duration::from_millis(300), b_replies.next()).await;
    assert!(!matches!(got, Ok(Some(_))), "A read B's reply");

    // Control saw A's own request and B's, and nothing of A's in B's name
    // (the server handles A's publish before the flush that followed it).
    let mut subjects = Vec::new();
    while let Ok(subject) = seen.try_recv() {
        subjects.push(subject);
    }
    assert_eq!(subjects, [subject("edge-a"), subject("edge-b")]);
    Ok(())
}

/// One user per engine node for click batches too: node A's credential
/// publishes batches on its own subject, `clicks.<A>`, and the server
/// refuses them on node B's (a permissions violation; nothing is stored),
/// so A cannot send clicks in B's name. (A batch on A's subject that names
/// B inside is the sidecar's to refuse: analytics/tests/nats_role.rs.)
#[tokio::test]
async fn an_engine_publishes_clicks_in_its_own_nodes_name_only() -> anyhow::Result<()> {
    let names = StreamNames::default();
    let nats = PrivateNats::with_auth_nodes(&names, &["edge-a", "edge-b"])?;
    js(nats.connect_as(Role::Analytics).await?)
        .create_stream(stream::Config {
            name: names.clicks_stream.clone(),
            subjects: vec![format!("{}.>", names.clicks_subject_prefix)],
            ..Default::default()
        })
        .await?;
    let subject = |node: &str| format!("{}.{node}", names.clicks_subject_prefix);
    let (a_node, b_node) = (Role::Engine("edge-a"), Role::Engine("edge-b"));

    // A, with the server's errors in view.
    let (errors_tx, mut errors) = mpsc::unbounded_channel();
    let options = nats.options_as(a_node).event_callback(move |event| {
        let errors_tx = errors_tx.clone();
        async move {
            if let async_nats::Event::ServerError(error) = event {
                let _ = errors_tx.send(error.to_string().to_ascii_lowercase());
            }
        }
    });
    let a = js(nats.connect_with(a_node, options).await?);
    a.publish(subject("edge-a"), "a's batch".into())
        .await?
        .await?;
    // B's subject, and one below it: refused, no ack ever comes.
    for forged in [subject("edge-b"), format!("{}.core0", subject("edge-a"))] {
        let refused = a.publish(forged.clone(), "forged".into()).await?.await;
        assert!(refused.is_err(), "A published clicks on {forged}");
        let error = tokio::time::timeout(ACK_WAIT, errors.recv())
            .await?
            .expect("a server error");
        assert!(
            error.contains("permissions violation") && error.contains(&forged),
            "{error}"
        );
    }
    // B publishes in its own name.
    js(nats.connect_as(b_node).await?)
        .publish(subject("edge-b"), "b's batch".into())
        .await?
        .await?;

    let operator = js(nats.connect_as(Role::Operator).await?);
    let mut clicks = operator.get_stream(&names.clicks_stream).await?;
    let stored = clicks.info().await?.state.messages;
    let mut got = Vec::new();
    for seq in 1..=stored {
        let message = clicks.get_raw_message(seq).await?;
        got.push((message.subject.to_string(), message.payload.to_vec()));
    }
    assert_eq!(
        got,
        [
            (subject("edge-a"), b"a's batch".to_vec()),
            (subject("edge-b"), b"b's batch".to_vec()),
        ]
    );
    Ok(())
}
