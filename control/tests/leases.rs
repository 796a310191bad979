//! `max_visits` in control: the API field (checked, shown with what is left,
//! patched, removed) and the visit leases engines get over NATS: granted
//! in one transaction each so that concurrent grants never pass the limit,
//! signed, answering their request's nonce, unused visits given back, and
//! with the deploy's NATS users only in the asking engine node's own name.

mod common;

use common::{TestApp, error_code};
use control::leases::store;
use reqwest::Method;
use serde_json::json;
use snapshots::lease::{
    LEASE_VERSION, LeaseGrant, LeaseRequest, LeaseReturn, LeaseWant, lease_subject,
};
use snapshots::signing::{DeltaVerifier, SIGNATURE_HEADER};
use std::time::Duration;

async fn limited(app: &TestApp, max: u32) -> String {
    let link = app
        .create(json!({ "target": "https://limited.example/", "max_visits": max }))
        .await;
    assert_eq!(link["max_visits"], max, "{link}");
    assert_eq!(link["visits_left"], max, "{link}");
    link["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn max_visits_is_checked_shown_patched_and_removed() {
    let app = TestApp::start().await;
    for bad in [json!(0), json!(-1), json!(1_000_000_001_i64), json!("ten")] {
        let (status, body) = app
            .send_json(
                Method::POST,
                "/v1/links",
                &app.admin_key,
                &json!({ "target": "https://x.example/", "max_visits": bad }),
            )
            .await;
        assert_eq!(status, 400, "{bad}: {body}");
        if bad.is_number() {
            assert_eq!(error_code(&body), "bad_request", "{body}");
        }
        assert!(body.to_string().contains("max_visits"), "{bad}: {body}");
    }
    let code = limited(&app, 1_000_000_000).await;
    let path = format!("/v1/links/{code}");
    let (status, body) = app
        .send_json(
            Method::PATCH,
            &path,
            &app.admin_key,
            &json!({ "max_visits": 0 }),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("max_visits"), "{body}");
    let (status, body) = app
        .send_json(
            Method::PATCH,
            &path,
            &app.admin_key,
            &json!({ "max_visits": 5 }),
        )
        .await;
    assert_eq!((status, &body["max_visits"]), (200, &json!(5)), "{body}");
    // Engines get the limit with the link.
    let upserts = common::outbox(&app).await;
    let last = upserts.last().unwrap();
    match &last.change {
        snapshots::delta::LinkChange::Upsert { link } => assert_eq!(link.max_visits, Some(5)),
        other => panic!("{other:?}"),
    }
    let (status, body) = app
        .send_json(
            Method::PATCH,
            &path,
            &app.admin_key,
            &json!({ "max_visits": null }),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body["max_visits"].is_null() && body["visits_left"].is_null(),
        "{body}"
    );
    // Unlimited links show neither.
    let plain = app
        .create(json!({ "target": "https://plain.example/" }))
        .await;
    assert!(plain["max_visits"].is_null() && plain["visits_left"].is_null());
    // Bulk: per item, naming the field.
    let (status, body) = app
        .send_json(
            Method::POST,
            "/v1/links/bulk",
            &app.admin_key,
            &json!({ "create": [
                { "target": "https://a.example/", "max_visits": 3 },
                { "target": "https://b.example/", "max_visits": 0 },
            ] }),
        )
        .await;
    assert!(
        status == 200 || status == 207 || status == 400,
        "{status} {body}"
    );
    assert!(body.to_string().contains("max_visits"), "{body}");
}

/// Many grants at once, from several nodes, with returns among them: the
/// visits handed out and not given back never pass `max_visits`, and all of
/// them are handed out in the end.
#[tokio::test]
async fn concurrent_grants_never_pass_max_visits() {
    let app = TestApp::start().await;
    const MAX: i64 = 500;
    let code = limited(&app, MAX as u32).await;
    let db = app.running.state.db.clone();
    let ttl = time::Duration::seconds(30);
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let (db, code) = (db.clone(), code.clone());
            tokio::spawn(async move {
                let node = format!("node{}", w % 4);
                let mut held = 0i64;
                let mut round = 0u32;
                loop {
                    round += 1;
                    let want = 1 + (w as u32 * 7 + round * 13) % 23;
                    let granted = store::grant(&db, &node, 0, &code, want, ttl).await.unwrap();
                    if granted.visits == 0 {
                        return held;
                    }
                    assert!(granted.visits as u32 <= want);
                    // Every third lease comes back partly unused.
                    let unused = if round.is_multiple_of(3) {
                        granted.visits / 2
                    } else {
                        0
                    };
                    let back = store::give_back(&db, &node, granted.lease, unused as u32)
                        .await
                        .unwrap();
                    if round.is_multiple_of(3) {
                        assert_eq!(back, i64::from(unused));
                        // A repeated return credits nothing.
                        let again = store::give_back(&db, &node, granted.lease, unused as u32)
                            .await
                            .unwrap();
                        assert_eq!(again, 0);
                    }
                    held += i64::from(granted.visits) - back;
                }
            })
        })
        .collect();
    let mut total = 0;
    for worker in workers {
        total += worker.await.unwrap();
    }
    assert_eq!(total, MAX, "the visits held add up to max_visits exactly");
    let granted: i64 = sqlx::query_scalar(
        "SELECT granted FROM link_visits JOIN links ON links.id = link_id WHERE code = $1",
    )
    .bind(&code)
    .fetch_one(&db)
    .await
    .unwrap();
    assert_eq!(granted, MAX);
    let (_, shown) = app
        .call(Method::GET, &format!("/v1/links/{code}"), &app.admin_key)
        .await;
    assert_eq!(shown["visits_left"], 0, "{shown}");
    // Spent: nothing more for anyone.
    let g = store::grant(&db, "node0", 0, &code, 1, ttl).await.unwrap();
    assert_eq!(g.visits, 0);
}

/// Visits an engine moves from an older lease into its newer one are
/// moved between the two rows (once), so a dead engine's rows say what it
/// held and the newer lease's return can give them all back; a return
/// never credits more than its row holds.
#[tokio::test]
async fn moved_visits_follow_their_lease_and_come_back_with_it() {
    let app = TestApp::start().await;
    let code = limited(&app, 100).await;
    let db = app.running.state.db.clone();
    let ttl = time::Duration::seconds(30);
    let rows = |db: sqlx::PgPool| async move {
        sqlx::query_as::<_, (i64, i32)>("SELECT id, visits FROM visit_leases ORDER BY id")
            .fetch_all(&db)
            .await
            .unwrap()
    };
    let granted = |db: sqlx::PgPool, code: String| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT granted FROM link_visits JOIN links ON links.id = link_id WHERE code = $1",
        )
        .bind(code)
        .fetch_one(&db)
        .await
        .unwrap()
    };
    let a = store::grant(&db, "n1", 0, &code, 10, ttl).await.unwrap();
    let b = store::grant(&db, "n1", 0, &code, 10, ttl).await.unwrap();
    let other = store::grant(&db, "n2", 0, &code, 10, ttl).await.unwrap();
    // Not another node's lease, not into another node's, not more than held.
    assert!(
        !store::move_visits(&db, "n2", a.lease, b.lease, 4)
            .await
            .unwrap()
    );
    assert!(
        !store::move_visits(&db, "n1", a.lease, other.lease, 4)
            .await
            .unwrap()
    );
    assert!(
        !store::move_visits(&db, "n1", a.lease, b.lease, 11)
            .await
            .unwrap()
    );
    assert!(
        store::move_visits(&db, "n1", a.lease, b.lease, 4)
            .await
            .unwrap()
    );
    // A repeated move (a request sent again) changes nothing.
    assert!(
        !store::move_visits(&db, "n1", a.lease, b.lease, 4)
            .await
            .unwrap()
    );
    assert_eq!(
        rows(db.clone()).await,
        vec![(a.lease, 6), (b.lease, 14), (other.lease, 10)]
    );
    assert_eq!(
        granted(db.clone(), code.clone()).await,
        30,
        "a move keeps the budget"
    );
    // The newer lease gives back what moved into it, unused.
    assert_eq!(store::give_back(&db, "n1", b.lease, 14).await.unwrap(), 14);
    assert_eq!(store::give_back(&db, "n1", a.lease, 0).await.unwrap(), 0);
    // More than the row holds: only the row is credited.
    assert_eq!(
        store::give_back(&db, "n2", other.lease, 50).await.unwrap(),
        10
    );
    assert_eq!(granted(db.clone(), code.clone()).await, 6, "a's 6 served");
    assert!(rows(db.clone()).await.is_empty());
}

/// The responder over NATS: signed grants for the request's nonce, the
/// budget shared between nodes, unused visits given back going to the next
/// asker, nothing for unknown or unlimited links.
#[tokio::test]
async fn engines_get_signed_leases_over_nats() {
    let names = testkit::JetStreamScope::connect().await.unwrap();
    let (stream, subject) = (names.stream_name("LINKS"), names.subject("links.changes"));
    let lease_prefix = names.subject("links.lease");
    let prefix = lease_prefix.clone();
    let app = TestApp::start_relaying(&stream, &subject, move |c| c.lease_subject = prefix).await;
    let code = limited(&app, 10).await;
    app.create(json!({ "target": "https://plain.example/", "custom_alias": "plain" }))
        .await;
    let mut verifier = DeltaVerifier::default();
    verifier.trust(app.link_keys.signer());
    let nats = async_nats::connect(testkit::nats_url()).await.unwrap();
    // The responder subscribes at start; wait until it answers.
    let ask =
        |node: &'static str, nonce: u64, want: Vec<(String, u32)>, returns: Vec<LeaseReturn>| {
            let (nats, prefix, verifier) = (nats.clone(), lease_prefix.clone(), verifier.clone());
            async move {
                let request = LeaseRequest {
                    v: LEASE_VERSION,
                    node: node.into(),
                    nonce,
                    want: want
                        .into_iter()
                        .map(|(code, visits)| LeaseWant {
                            domain: 0,
                            code,
                            visits,
                        })
                        .collect(),
                    returns,
                    moves: Vec::new(),
                };
                let reply = nats
                    .request(lease_subject(&prefix, node), request.encode().into())
                    .await
                    .map_err(|e| e.to_string())?;
                let header = reply
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(SIGNATURE_HEADER))
                    .map(|v| v.as_str());
                verifier
                    .verify(&reply.payload, header)
                    .expect("the grant is signed by control's key");
                Ok::<_, String>(LeaseGrant::decode(&reply.payload, nonce).unwrap())
            }
        };
    // The responder subscribes at start: ask for nothing until it answers.
    let probe = testkit::wait_for_some(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async move { ask("edge-a", 99, vec![], vec![]).await.ok() },
    )
    .await
    .unwrap();
    assert!(probe.leases.is_empty());
    let ask = |node: &'static str,
               nonce: u64,
               want: Vec<(String, u32)>,
               returns: Vec<LeaseReturn>| {
        async move { ask(node, nonce, want, returns).await.unwrap() }
    };
    let first = ask("edge-a", 1, vec![(code.clone(), 6)], vec![]).await;
    assert_eq!(first.nonce, 1);
    let a = &first.leases[0];
    assert_eq!((a.visits, a.ttl_ms), (6, 30_000));
    let second = ask(
        "edge-b",
        2,
        vec![(code.clone(), 6), ("plain".into(), 5), ("nope".into(), 5)],
        vec![],
    )
    .await;
    let visits: Vec<u32> = second.leases.iter().map(|l| l.visits).collect();
    assert_eq!(
        visits,
        vec![4, 0, 0],
        "the rest, and nothing for unlimited or unknown"
    );
    let spent = ask("edge-b", 3, vec![(code.clone(), 1)], vec![]).await;
    assert_eq!(spent.leases[0].visits, 0);
    // edge-a gives 2 back; edge-b's next ask gets them in the same round
    // as another node's return... but only edge-a's own lease counts.
    let forged = ask(
        "edge-b",
        4,
        vec![],
        vec![LeaseReturn {
            lease: a.lease,
            unused: 6,
        }],
    )
    .await;
    assert!(forged.leases.is_empty());
    let back = ask(
        "edge-a",
        5,
        vec![(code.clone(), 5)],
        vec![LeaseReturn {
            lease: a.lease,
            unused: 2,
        }],
    )
    .await;
    assert_eq!(back.leases[0].visits, 2);
    let (_, shown) = app
        .call(Method::GET, &format!("/v1/links/{code}"), &app.admin_key)
        .await;
    assert_eq!(shown["visits_left"], 0, "{shown}");
}

/// The deploy's NATS users (one per engine node, `deploy/nats/auth.conf.template`):
/// control answers node A's credential on A's subject, but a return of node
/// B's lease sent with A's credential in B's name (which control would take:
/// the subject and the request name B) is refused by the server, so it never
/// credits visits B may still serve; B's own return does.
#[tokio::test]
async fn an_engine_credential_gives_back_only_its_own_nodes_leases() {
    let names = testkit::StreamNames::default();
    let nats = testkit::PrivateNats::with_auth_nodes(&names, &["edge-a", "edge-b"]).unwrap();
    let app = TestApp::start_with(|c| {
        c.nats = Some(nats.url());
        c.nats_user = Some(testkit::Role::Control.user());
        c.nats_password_file = Some(nats.password_file(testkit::Role::Control));
        c.lease_subject = names.lease_subject.clone();
    })
    .await;
    let code = limited(&app, 10).await;
    let a = nats
        .connect_as(testkit::Role::Engine("edge-a"))
        .await
        .unwrap();
    let b = nats
        .connect_as(testkit::Role::Engine("edge-b"))
        .await
        .unwrap();
    let request = |node: &str, nonce: u64, visits: u32, returns: Vec<LeaseReturn>| LeaseRequest {
        v: LEASE_VERSION,
        node: node.into(),
        nonce,
        want: vec![LeaseWant {
            domain: 0,
            code: code.clone(),
            visits,
        }],
        returns,
        moves: Vec::new(),
    };
    let ask = |client: &async_nats::Client, request: LeaseRequest| {
        let (client, prefix) = (client.clone(), names.lease_subject.clone());
        async move {
            let reply = client
                .request(
                    lease_subject(&prefix, &request.node),
                    request.encode().into(),
                )
                .await
                .ok()?;
            Some(LeaseGrant::decode(&reply.payload, request.nonce).unwrap())
        }
    };
    // The responder subscribes at start: B asks until it answers, and takes
    // every visit.
    let taken = testkit::wait_for_some(Duration::from_secs(10), Duration::from_millis(50), || {
        ask(&b, request("edge-b", 1, 10, vec![]))
    })
    .await
    .expect("control answers B");
    let b_lease = &taken.leases[0];
    assert_eq!(b_lease.visits, 10);
    let visits_left = || async {
        let (_, shown) = app
            .call(Method::GET, &format!("/v1/links/{code}"), &app.admin_key)
            .await;
        shown["visits_left"].clone()
    };
    assert_eq!(visits_left().await, 0);

    // A returns B's lease, all of it unused, in B's name: the server drops it
    // (control, which answers every request it gets, never answers).
    let forged = request(
        "edge-b",
        2,
        0,
        vec![LeaseReturn {
            lease: b_lease.lease,
            unused: 10,
        }],
    );
    let refused = tokio::time::timeout(Duration::from_secs(2), ask(&a, forged)).await;
    assert!(
        !matches!(refused, Ok(Some(_))),
        "control answered A's request in B's name"
    );
    // Control answers A in its own name (nothing left), after which the
    // forged return would have been applied had it arrived.
    let own = ask(&a, request("edge-a", 3, 5, vec![]))
        .await
        .expect("control answers A");
    assert_eq!(own.leases[0].visits, 0);
    assert_eq!(visits_left().await, 0, "B's lease was given back by A");

    // B gives back 4 of its own.
    let back = ask(
        &b,
        request(
            "edge-b",
            4,
            0,
            vec![LeaseReturn {
                lease: b_lease.lease,
                unused: 4,
            }],
        ),
    )
    .await
    .expect("control answers B");
    assert_eq!(back.nonce, 4);
    assert_eq!(visits_left().await, 4);
}
