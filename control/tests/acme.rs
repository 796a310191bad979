//! Certificates by ACME against a real test CA (pebble, with real HTTP-01
//! validation over loopback), real PostgreSQL and control in-process.
//!
//! Here [`StandInEngine`] plays an engine's two ports, so these tests can
//! look inside: the plain port answers challenges from the *outbox* (the
//! well-known changes control wrote, applied in sequence order, as an engine
//! applies the stream), and the admin port answers `/readyz` (an engine
//! from before the boot id: its snapshot load time tells restarts apart)
//! and records every `PUT /certs/NAME`. The same path on the real binaries
//! (engine, relay, NATS, the TLS port serving the pair, renewal without a
//! restart, withdrawal) is e2e/tests/certificates.rs.

mod common;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, put};
use common::{TestApp, error_code};
use reqwest::Method;
use serde_json::Value;
use snapshots::delta::{LinkChange, LinkDelta};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "engine-admin-token";
const DOMAIN: &str = "shop.example";

/// What the stand-in engine was pushed: name → bodies, in order.
type Pushed = Arc<Mutex<HashMap<String, Vec<String>>>>;

struct StandInEngine {
    pushed: Pushed,
    /// Its snapshot's load time in `/readyz`; a new value looks like a restart.
    loaded_at_ms: Arc<AtomicU64>,
    /// `/readyz` requests so far (each reconcile round asks once).
    readyz_hits: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for StandInEngine {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Clone)]
struct Engine {
    db: PgPool,
    pushed: Pushed,
    loaded_at_ms: Arc<AtomicU64>,
    readyz_hits: Arc<AtomicU64>,
}

/// The well-known answers after applying every outbox change in order, and
/// the newest sequence.
async fn applied(db: &PgPool) -> (HashMap<(String, String), String>, i64) {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, delta FROM link_outbox ORDER BY seq")
            .fetch_all(db)
            .await
            .unwrap();
    let mut answers = HashMap::new();
    let mut last = 0;
    for (seq, delta) in rows {
        last = seq;
        match LinkDelta::decode(&delta)
            .expect("control writes valid deltas")
            .change
        {
            LinkChange::WellKnownUpsert { answer } => {
                answers.insert((answer.host, answer.path), answer.body);
            }
            LinkChange::WellKnownDelete { host, path } => {
                answers.remove(&(host, path));
            }
            _ => {}
        }
    }
    (answers, last)
}

async fn challenge(
    State(engine): State<Engine>,
    Path(token): Path<String>,
    headers: HeaderMap,
) -> (StatusCode, String) {
    let host = headers["host"]
        .to_str()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let path = format!("/.well-known/acme-challenge/{token}");
    match applied(&engine.db).await.0.remove(&(host, path)) {
        Some(body) => (StatusCode::OK, body),
        None => (StatusCode::NOT_FOUND, String::new()),
    }
}

async fn readyz(State(engine): State<Engine>) -> axum::Json<Value> {
    let (_, seq) = applied(&engine.db).await;
    engine.readyz_hits.fetch_add(1, Ordering::Relaxed);
    axum::Json(serde_json::json!({
        "ready": true, "snapshot": {"sequence": 0, "links": 0, "built_at_ms": 0,
            "loaded_at_ms": engine.loaded_at_ms.load(Ordering::Relaxed), "source": "stand-in"},
        "nats": true, "nats_connected": true, "delta_seq": seq, "delta_lag": 0,
        "cores": [{"snapshot_sequence": 0, "delta_applied_seq": seq, "delta_entries": 0}]
    }))
}

async fn put_cert(
    State(engine): State<Engine>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: String,
) -> (StatusCode, axum::Json<Value>) {
    if headers.get("authorization").and_then(|v| v.to_str().ok())
        != Some(&format!("Bearer {TOKEN}"))
    {
        return (StatusCode::UNAUTHORIZED, axum::Json(Value::Null));
    }
    engine
        .pushed
        .lock()
        .unwrap()
        .entry(name.clone())
        .or_default()
        .push(body);
    (
        StatusCode::OK,
        axum::Json(serde_json::json!({ "installed": name })),
    )
}

impl StandInEngine {
    /// Serves challenges on `plain` and the admin routes on `admin`.
    async fn start(
        db: PgPool,
        plain: tokio::net::TcpListener,
        admin: tokio::net::TcpListener,
    ) -> StandInEngine {
        let pushed = Pushed::default();
        let loaded_at_ms = Arc::new(AtomicU64::new(1));
        let readyz_hits = Arc::new(AtomicU64::new(0));
        let engine = Engine {
            db,
            pushed: pushed.clone(),
            loaded_at_ms: loaded_at_ms.clone(),
            readyz_hits: readyz_hits.clone(),
        };
        let plain_app = axum::Router::new()
            .route("/.well-known/acme-challenge/{token}", get(challenge))
            .with_state(engine.clone());
        let admin_app = axum::Router::new()
            .route("/readyz", get(readyz))
            .route("/certs/{name}", put(put_cert))
            .with_state(engine);
        let tasks = vec![
            tokio::spawn(async move { axum::serve(plain, plain_app).await.unwrap() }),
            tokio::spawn(async move { axum::serve(admin, admin_app).await.unwrap() }),
        ];
        StandInEngine {
            pushed,
            loaded_at_ms,
            readyz_hits,
            tasks,
        }
    }

    fn pushes(&self, name: &str) -> Vec<String> {
        self.pushed
            .lock()
            .unwrap()
            .get(name)
            .cloned()
            .unwrap_or_default()
    }
}

/// A sealing key file (0600) in `dir`.
fn key_file(dir: &std::path::Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join("acme.key");
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).unwrap();
    std::fs::write(&path, hex::encode(key)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// A verified domain of organization `org`.
async fn verified_domain(db: &PgPool, org: &str, name: &str) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO domains (org_id, name, verification_token, verified_at)
         SELECT id, $2, 'token', now() FROM organizations WHERE name = $1 RETURNING id",
    )
    .bind(org)
    .bind(name)
    .fetch_one(db)
    .await
    .unwrap()
}

/// Control with ACME on `pebble`, pushing to `engines`.
async fn control(
    pebble: &testkit::Pebble,
    dir: &std::path::Path,
    engines: Vec<String>,
    retry_base_secs: u64,
) -> TestApp {
    let key = key_file(dir);
    let directory = pebble.directory_url();
    let root = pebble.ca_root();
    TestApp::start_with(move |c| {
        c.acme_directory = Some(directory);
        c.acme_ca_root = Some(root);
        c.acme_key_file = Some(key);
        c.acme_contact = vec!["mailto:ops@example.com".into()];
        c.acme_retry_base_secs = retry_base_secs;
        c.acme_check_interval_secs = 1;
        c.acme_publish_timeout_secs = 20;
        c.engine_admin = engines;
        c.engine_admin_token = Some(TOKEN.into());
        c.reconcile_interval_secs = 1;
    })
    .await
}

/// Polls the certificate until `done` holds (60 s at most).
async fn wait_status(app: &TestApp, key: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let path = format!("/v1/domains/{DOMAIN}/certificate");
    let mut last = Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while tokio::time::Instant::now() < deadline {
        let (s, body) = app.call(Method::GET, &path, key).await;
        assert_eq!(s, 200, "{body}");
        if done(&body) {
            return body;
        }
        last = body;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("certificate never became {what}: {last}");
}

/// Verifies a PEM chain (leaf first) against `root_pem` for `name`, now.
fn verify_chain(chain_pem: &str, root_pem: &str, name: &str) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    let chain: Vec<CertificateDer> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(chain.len() >= 2, "leaf and intermediate: {chain_pem}");
    let root = CertificateDer::from_pem_slice(root_pem.as_bytes()).unwrap();
    let anchor = webpki::anchor_from_trusted_cert(&root).unwrap();
    let leaf = webpki::EndEntityCert::try_from(&chain[0]).unwrap();
    leaf.verify_for_usage(
        webpki::ALL_VERIFICATION_ALGS,
        &[anchor],
        &chain[1..],
        UnixTime::now(),
        webpki::KeyUsage::server_auth(),
        None,
        None,
    )
    .expect("the chain verifies against pebble's issuing root");
    leaf.verify_is_valid_for_subject_name(&ServerName::try_from(name).unwrap())
        .expect("the leaf covers the domain");
}

/// The leaf's serial and whether `key_pem` is its key.
fn leaf_serial_and_key_match(chain_pem: &str, key_pem: &str) -> (Vec<u8>, bool) {
    let (_, pem) = x509_parser::pem::parse_x509_pem(chain_pem.as_bytes()).unwrap();
    let leaf = pem.parse_x509().unwrap();
    let key = rcgen::KeyPair::from_pem(key_pem).unwrap();
    let matches = leaf.public_key().subject_public_key.data.as_ref() == key.public_key_raw();
    (leaf.raw_serial().to_vec(), matches)
}

/// Splits a push body into (chain, key).
fn split_push(body: &str) -> (&str, &str) {
    let at = body
        .find("-----BEGIN PRIVATE KEY-----")
        .expect("a key after the chain");
    (&body[..at], &body[at..])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issues_through_http_01_stores_sealed_ships_and_renews() {
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let pebble = testkit::Pebble::start(plain.local_addr().unwrap().port()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The stand-in reads the test database's outbox, so it starts after
    // control, on listeners bound before (connections wait in the backlog).
    let engines = vec![admin.local_addr().unwrap().to_string()];
    let app = control(&pebble, dir.path(), engines, 300).await;
    let db = app.running.state.db.clone();
    let engine = StandInEngine::start(db.clone(), plain, admin).await;
    verified_domain(&db, "acme", DOMAIN).await;

    let path = format!("/v1/domains/{DOMAIN}/certificate");
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 202, "{body}");
    assert_eq!(body["status"], "pending", "{body}");
    let issued = wait_status(&app, &app.admin_key, "issued", |b| b["status"] == "issued").await;
    let text = issued.to_string();
    assert!(!text.contains("PRIVATE KEY"), "no key in the API: {text}");
    let chain = issued["chain_pem"].as_str().unwrap();
    let root = pebble.issuing_root_pem().unwrap();
    verify_chain(chain, &root, DOMAIN);
    assert_eq!(issued["failures"], 0);
    assert!(issued["last_error"].is_null(), "{issued}");
    // Renewal 2/3 into the lifetime.
    let nb = time::OffsetDateTime::parse(
        issued["not_before"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let na = time::OffsetDateTime::parse(
        issued["not_after"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let renew = time::OffsetDateTime::parse(
        issued["renew_at"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let off: time::Duration = renew - control::acme::store::renewal_time(nb, na);
    assert!(off.abs() < time::Duration::seconds(2), "{issued}");
    assert!(na - nb > time::Duration::days(1), "{issued}");

    // At rest: the key is sealed, not PEM.
    let (sealed,): (Vec<u8>,) =
        sqlx::query_as("SELECT key_pem_sealed FROM certificates WHERE domain = $1")
            .bind(DOMAIN)
            .fetch_one(&db)
            .await
            .unwrap();
    assert!(
        !sealed.windows(7).any(|w| w == b"PRIVATE"),
        "sealed at rest"
    );
    let (account,): (Vec<u8>,) = sqlx::query_as("SELECT credentials_sealed FROM acme_accounts")
        .fetch_one(&db)
        .await
        .unwrap();
    assert!(
        !account.windows(6).any(|w| w == b"key_pk"),
        "account sealed at rest"
    );

    // The challenge answer went out through the outbox and is gone again.
    let (answers, _) = applied(&db).await;
    assert!(answers.is_empty(), "answers removed: {answers:?}");
    let published: i64 = sqlx::query_scalar("SELECT count(*) FROM link_outbox WHERE code = $1")
        .bind(DOMAIN)
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(published, 2, "one upsert and one delete");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM well_known_answers")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(left, 0);

    // Shipped to the engine: the same chain, and the key of its leaf.
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { !engine.pushes(DOMAIN).is_empty() },
    )
    .await
    .unwrap();
    let first_push = engine.pushes(DOMAIN)[0].clone();
    let (pushed_chain, pushed_key) = split_push(&first_push);
    assert_eq!(pushed_chain.trim(), chain.trim());
    let (serial, matches) = leaf_serial_and_key_match(chain, pushed_key);
    assert!(matches, "the pushed key is the leaf's");
    // Shipped once, not on every reconcile round...
    let hits = engine.readyz_hits.load(Ordering::Relaxed);
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { engine.readyz_hits.load(Ordering::Relaxed) >= hits + 3 },
    )
    .await
    .unwrap();
    assert_eq!(
        engine.pushes(DOMAIN).len(),
        1,
        "one push per engine and issuance"
    );
    // ...and again when the engine looks restarted (it may have lost its state).
    engine.loaded_at_ms.store(2, Ordering::Relaxed);
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async { engine.pushes(DOMAIN).len() == 2 },
    )
    .await
    .unwrap();
    assert_eq!(engine.pushes(DOMAIN)[1], first_push);

    // Renewal on demand replaces it: a new leaf, a new key, pushed again.
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 202, "{body}");
    let first_issued_at = issued["issued_at"].clone();
    let renewed = wait_status(&app, &app.admin_key, "renewed", |b| {
        b["status"] == "issued" && b["issued_at"] != first_issued_at
    })
    .await;
    let new_chain = renewed["chain_pem"].as_str().unwrap();
    verify_chain(new_chain, &root, DOMAIN);
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            engine
                .pushes(DOMAIN)
                .iter()
                .any(|b| split_push(b).0.trim() == new_chain.trim())
        },
    )
    .await
    .unwrap();
    let pushes = engine.pushes(DOMAIN);
    let latest = pushes
        .iter()
        .find(|b| split_push(b).0.trim() == new_chain.trim())
        .unwrap();
    let (new_serial, matches) = leaf_serial_and_key_match(new_chain, split_push(latest).1);
    assert!(matches, "the renewed key is the new leaf's");
    assert_ne!(new_serial, serial, "a new certificate");
    assert_ne!(split_push(latest).1, pushed_key, "a fresh key");
    drop(pebble);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_challenge_is_recorded_and_retried_with_backoff() {
    // Nothing listens on the challenge port at first.
    let port = testkit::free_port();
    let pebble = testkit::Pebble::start(port).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = control(&pebble, dir.path(), Vec::new(), 1).await;
    let db = app.running.state.db.clone();
    verified_domain(&db, "acme", DOMAIN).await;
    let path = format!("/v1/domains/{DOMAIN}/certificate");
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 202, "{body}");

    let failing = wait_status(&app, &app.admin_key, "failing twice", |b| {
        b["failures"].as_i64().unwrap_or(0) >= 2
    })
    .await;
    assert_eq!(failing["status"], "failing", "{failing}");
    let error = failing["last_error"].as_str().unwrap();
    assert!(
        error.contains(DOMAIN),
        "the error names the domain: {error}"
    );
    assert!(failing["chain_pem"].is_null());
    let parse = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().unwrap(),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
    };
    assert!(
        error.contains("could not validate") && error.contains("connection refused"),
        "the CA's own reason: {error}"
    );
    // The wait doubles per failure from the 1 s base (both stamped by one statement).
    let failures = failing["failures"].as_i64().unwrap() as u32;
    assert_eq!(
        parse(&failing["renew_at"]) - parse(&failing["last_error_at"]),
        time::Duration::seconds(1 << (failures - 1)),
        "the next try waits: {failing}"
    );
    // No answer is left behind by a failed order.
    testkit::wait_for(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let (answers, _) = applied(&db).await;
            let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM well_known_answers")
                .fetch_one(&db)
                .await
                .unwrap();
            answers.is_empty() && rows == 0
        },
    )
    .await
    .unwrap();

    // Control is still up, and once the challenge is served, a retry succeeds.
    let plain = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let admin = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _engine = StandInEngine::start(db.clone(), plain, admin).await;
    let issued = wait_status(&app, &app.admin_key, "issued", |b| b["status"] == "issued").await;
    assert_eq!(issued["failures"], 0, "{issued}");
    assert!(issued["last_error"].is_null(), "{issued}");
    verify_chain(
        issued["chain_pem"].as_str().unwrap(),
        &pebble.issuing_root_pem().unwrap(),
        DOMAIN,
    );
}

#[tokio::test]
async fn who_may_ask_for_and_read_a_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let key = key_file(dir.path());
    // The CA is never reached here: every request is about who may ask.
    let app = TestApp::start_with(move |c| {
        c.acme_directory = Some("https://127.0.0.1:9/dir".into());
        c.acme_key_file = Some(key);
        c.acme_check_interval_secs = 3600;
    })
    .await;
    let db = app.running.state.db.clone();
    verified_domain(&db, "acme", DOMAIN).await;
    let viewer = app.key("acme", &["links:read"]).await;
    let editor = app.key("acme", &["links:write"]).await;
    let other = app.key("other", &["admin"]).await;
    verified_domain(&db, "other", "other.example").await;
    sqlx::query(
        "INSERT INTO domains (org_id, name, verification_token)
         SELECT id, 'pending.example', 'token' FROM organizations WHERE name = 'acme'",
    )
    .execute(&db)
    .await
    .unwrap();
    let path = format!("/v1/domains/{DOMAIN}/certificate");

    // Neither a viewer nor an editor may order; nothing is recorded.
    for key in [&viewer, &editor] {
        let (s, body) = app.call(Method::POST, &path, key).await;
        assert_eq!(s, 403, "{body}");
        assert_eq!(error_code(&body), "forbidden");
    }
    let (s, body) = app.call(Method::GET, &path, &viewer).await;
    assert_eq!(s, 404, "never requested: {body}");
    // Another organization's admin sees no such domain.
    let (s, body) = app.call(Method::POST, &path, &other).await;
    assert_eq!(s, 404, "{body}");
    assert_eq!(error_code(&body), "not_found");
    // A pending domain must be verified first; a bad name is a 400.
    let (s, body) = app
        .call(
            Method::POST,
            "/v1/domains/pending.example/certificate",
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 409, "{body}");
    assert_eq!(error_code(&body), "domain_not_verified");
    let (s, body) = app
        .call(
            Method::POST,
            "/v1/domains/not_a_name/certificate",
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 400, "{body}");

    // The organization's admin may; so may the operator, for any domain.
    let (s, body) = app.call(Method::POST, &path, &app.admin_key).await;
    assert_eq!(s, 202, "{body}");
    let (s, body) = app
        .call(
            Method::POST,
            "/v1/domains/other.example/certificate",
            &app.operator_key,
        )
        .await;
    assert_eq!(s, 202, "{body}");
    // A viewer reads the status; another organization does not.
    let (s, body) = app.call(Method::GET, &path, &viewer).await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(body["domain"], DOMAIN);
    let (s, _) = app.call(Method::GET, &path, &other).await;
    assert_eq!(s, 404);
    let audited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'certificate.request'")
            .fetch_one(&db)
            .await
            .unwrap();
    assert_eq!(audited, 2);
}

#[tokio::test]
async fn without_acme_the_routes_say_so() {
    let app = TestApp::start().await;
    verified_domain(&app.running.state.db, "acme", DOMAIN).await;
    let (s, body) = app
        .call(
            Method::POST,
            &format!("/v1/domains/{DOMAIN}/certificate"),
            &app.admin_key,
        )
        .await;
    assert_eq!(s, 503, "{body}");
    assert_eq!(error_code(&body), "unavailable");
}
