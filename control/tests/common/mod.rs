//! Shared test setup: a fresh PostgreSQL database per test, the service
//! started in-process on 127.0.0.1:0, an admin key for a fresh org and an
//! operator key.
#![allow(dead_code)]

pub mod webhooks;

use control::accounts::mailer::MemoryMailer;
use control::auth::Role;
use control::config::Config;
use control::server::{Running, start_with_mailer};
use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use std::sync::Arc;

/// The password every test user gets.
pub const PASSWORD: &str = "correct horse battery staple";

pub struct TestApp {
    pub running: Running,
    pub base: String,
    pub http: reqwest::Client,
    pub admin_key: String,
    /// The operator's key (`control keys create --operator`).
    pub operator_key: String,
    pub pg: testkit::PgDatabase,
    pub snapshot_dir: tempfile::TempDir,
    /// The key pair the relay signs with (used when a test sets `nats`).
    pub link_keys: testkit::LinkKeys,
    /// Every mail the service sent (invitations, resets).
    pub mail: Arc<MemoryMailer>,
}

/// A signed-in browser: its cookie and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct Session {
    /// `name=value`, for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
    /// The whole `Set-Cookie` the login answered.
    pub set_cookie: String,
    /// The login's JSON body.
    pub body: Value,
}

impl TestApp {
    /// Starts the service with defaults suited to tests (high rate limits).
    pub async fn start() -> TestApp {
        Self::start_with(|_| {}).await
    }

    /// Starts the service after `tweak` adjusts the config.
    /// [`TestApp::start_with`] with the outbox relay on: publishing to the
    /// machine's NATS on `stream` and `subject` (the test's own), then `tweak`.
    pub async fn start_relaying(
        stream: &str,
        subject: &str,
        tweak: impl FnOnce(&mut Config),
    ) -> TestApp {
        let (stream, subject) = (stream.to_owned(), subject.to_owned());
        Self::start_with(move |c| {
            c.nats = Some(testkit::nats_url());
            c.links_stream = stream;
            c.links_subject = subject;
            tweak(c);
        })
        .await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
        testkit::require_services().await.expect("services up");
        let pg = testkit::PgDatabase::create_with_prefix("ctl")
            .await
            .expect("database");
        let snapshot_dir = tempfile::tempdir().expect("tempdir");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            database_url: pg.url().to_owned(),
            short_base: "https://sho.rt".into(),
            snapshot_dir: snapshot_dir.path().to_owned(),
            rate_per_key: 10_000.0,
            burst_per_key: 10_000,
            rate_per_ip: 10_000.0,
            burst_per_ip: 10_000,
            login_rate_per_ip: 10_000.0,
            login_burst_per_ip: 10_000,
            login_rate_per_email: 10_000.0,
            login_burst_per_email: 10_000,
            ..Config::default()
        };
        tweak(&mut config);
        let link_keys = testkit::LinkKeys::new().expect("link keys");
        if config.nats.is_some() && config.links_signing_key.is_none() {
            config.links_signing_key = Some(link_keys.signing_key());
        }
        let mail = Arc::new(MemoryMailer::default());
        let running = start_with_mailer(config, mail.clone())
            .await
            .expect("control starts");
        let (_, admin_key) =
            control::keys::bootstrap_key(&running.state.db, "acme", &["admin".to_string()], "test")
                .await
                .expect("bootstrap key");
        let operator_key = control::keys::bootstrap_operator_key(&running.state.db, "test")
            .await
            .expect("operator key");
        TestApp {
            base: format!("http://{}", running.addr),
            running,
            http: reqwest::Client::new(),
            admin_key,
            operator_key,
            pg,
            snapshot_dir,
            link_keys,
            mail,
        }
    }

    /// A user with [`PASSWORD`], a member of `org` (created if missing)
    /// with `role` if given; returns the user's id.
    pub async fn user(&self, email: &str, org: Option<(&str, Role)>) -> i64 {
        control::accounts::users::create_user(
            &self.running.state.db,
            &self.running.state.passwords,
            control::accounts::users::NewUser {
                email,
                password: PASSWORD,
                operator: false,
                org,
            },
        )
        .await
        .expect("user")
    }

    /// Adds an existing user to `org` with `role`.
    pub async fn add_member(&self, user_id: i64, org: &str, role: Role) {
        sqlx::query("INSERT INTO organizations (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(org)
            .execute(&self.running.state.db)
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO memberships (org_id, user_id, role)
             SELECT id, $2, $3 FROM organizations WHERE name = $1",
        )
        .bind(org)
        .bind(user_id)
        .bind(role.as_str())
        .execute(&self.running.state.db)
        .await
        .unwrap();
    }

    /// `POST /v1/session`: the status, the body, and the response itself's
    /// `Set-Cookie` (if any).
    pub async fn try_login(&self, email: &str, password: &str) -> (u16, Value, Option<String>) {
        let r = self
            .http
            .post(format!("{}/v1/session", self.base))
            .json(&serde_json::json!({ "email": email, "password": password }))
            .send()
            .await
            .unwrap();
        let set_cookie = r
            .headers()
            .get("set-cookie")
            .map(|v| v.to_str().unwrap().to_owned());
        let (s, b) = status_json(r).await;
        (s, b, set_cookie)
    }

    /// Signs in (asserting success).
    pub async fn login(&self, email: &str, password: &str) -> Session {
        let (s, body, set_cookie) = self.try_login(email, password).await;
        assert_eq!(s, 200, "login {email}: {body}");
        let set_cookie = set_cookie.expect("a Set-Cookie");
        Session {
            cookie: set_cookie.split(';').next().unwrap().to_owned(),
            csrf: body["csrf_token"].as_str().expect("csrf_token").to_owned(),
            set_cookie,
            body,
        }
    }

    /// A request as a signed-in browser (cookie and CSRF token).
    pub fn as_user(&self, method: Method, path: &str, session: &Session) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .header("x-csrf-token", &session.csrf)
    }

    /// Sends a request as a signed-in browser, with a JSON body if given.
    pub async fn user_call(
        &self,
        method: Method,
        path: &str,
        session: &Session,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let mut r = self.as_user(method, path, session);
        if let Some(body) = body {
            r = r.json(body);
        }
        status_json(r.send().await.unwrap()).await
    }

    /// The token in the `n`th mail to `to` (from 0).
    pub async fn mailed_token(&self, to: &str, n: usize) -> String {
        let mail = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            self.mail.wait_for(to, n),
        )
        .await
        .expect("a mail within 10 s");
        let at = mail.body.find("#token=").expect("a link with a token") + 7;
        mail.body[at..at + 43].to_owned()
    }

    /// A key with `scopes` in organization `org` (created if missing).
    pub async fn key(&self, org: &str, scopes: &[&str]) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        control::keys::bootstrap_key(&self.running.state.db, org, &scopes, "test")
            .await
            .expect("key")
            .1
    }

    pub fn req(&self, method: Method, path: &str, key: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key)
    }

    /// Sends a bodiless request and returns its status and JSON body.
    pub async fn call(&self, method: Method, path: &str, key: &str) -> (u16, Value) {
        status_json(self.req(method, path, key).send().await.unwrap()).await
    }

    /// The path of a listed snapshot generation (the API shows its file name).
    pub fn snapshot_path(&self, generation: &Value) -> std::path::PathBuf {
        let file = generation["file"].as_str().expect("a file name");
        assert!(!file.contains('/'), "a name, not a path: {file}");
        self.snapshot_dir.path().join(file)
    }

    /// Sends a JSON body and returns the status and JSON body.
    pub async fn send_json(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: &Value,
    ) -> (u16, Value) {
        status_json(self.req(method, path, key).json(body).send().await.unwrap()).await
    }

    /// Creates a link as the admin key and returns its JSON.
    pub async fn create(&self, body: Value) -> Value {
        let r = self
            .req(Method::POST, "/v1/links", &self.admin_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "create {body}");
        r.json().await.unwrap()
    }
}

/// An `application/x-www-form-urlencoded` body, as a browser's form sends.
pub fn form_body<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        s.append_pair(k.as_ref(), v.as_ref());
    }
    s.finish()
}

/// A client that shows redirects instead of following them (a form's
/// answer is a 303 to the next page).
pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A dashboard page's answer: status, `Location` (of a redirect), HTML.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub html: String,
}

impl Page {
    async fn of(r: Response) -> Page {
        Page {
            status: r.status().as_u16(),
            location: r
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned()),
            html: r.text().await.unwrap(),
        }
    }
}

/// The ETag a dashboard edit form carries (its hidden `etag` field, which
/// maud escapes), as an `If-Match` value.
pub fn form_etag(html: &str) -> String {
    html.split("name=\"etag\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("the form carries its version")
        .replace("&quot;", "\"")
}

impl TestApp {
    /// `GET` a dashboard page as `session`'s browser (no redirect followed).
    pub async fn page(&self, session: &Session, path: &str) -> Page {
        let r = no_redirects()
            .get(format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .send()
            .await
            .unwrap();
        Page::of(r).await
    }

    /// A dashboard form's `POST` as `session`'s browser, its `csrf` field
    /// added (no redirect followed).
    pub async fn submit(&self, session: &Session, path: &str, pairs: &[(&str, &str)]) -> Page {
        let mut pairs = pairs.to_vec();
        pairs.push(("csrf", session.csrf.as_str()));
        let r = no_redirects()
            .post(format!("{}{path}", self.base))
            .header("cookie", &session.cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&pairs))
            .send()
            .await
            .unwrap();
        Page::of(r).await
    }

    /// `control export` of organization `org`'s links, as text.
    pub async fn export(&self, org: &str, format: control::import::export::ExportFormat) -> String {
        let mut out = Vec::new();
        let org = self.org_id(org).await;
        control::import::export::export(
            &self.running.state.db,
            org,
            format,
            "https://sho.rt",
            &mut out,
        )
        .await
        .unwrap();
        String::from_utf8(out).unwrap()
    }

    /// The id of organization `name`.
    pub async fn org_id(&self, name: &str) -> i64 {
        sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
            .bind(name)
            .fetch_one(&self.running.state.db)
            .await
            .unwrap()
    }
}

/// The status and JSON body of a response.
pub async fn status_json(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    };
    (status, body)
}

/// Asserts the one error shape and returns the code.
pub fn error_code(body: &Value) -> &str {
    let e = &body["error"];
    assert!(e["message"].is_string(), "error shape: {body}");
    assert!(e.get("details").is_some(), "error shape: {body}");
    e["code"]
        .as_str()
        .unwrap_or_else(|| panic!("error shape: {body}"))
}

/// Every change in the outbox, decoded, in sequence order; each one's
/// sequence is its row's.
pub async fn outbox(app: &TestApp) -> Vec<snapshots::delta::LinkDelta> {
    let rows: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT seq, delta FROM link_outbox ORDER BY seq")
            .fetch_all(&app.running.state.db)
            .await
            .unwrap();
    rows.iter()
        .map(|(seq, d)| {
            let d = snapshots::delta::LinkDelta::decode(d).unwrap();
            assert_eq!(d.seq, *seq as u64);
            d
        })
        .collect()
}

/// A ClickHouse database of the test's own with the analytics sidecar's
/// tables and rollup views (`analytics::schema`, the real schema, not a
/// copy), its name starting with `prefix`.
pub async fn clickhouse_with_schema(prefix: &str) -> testkit::ClickHouseDatabase {
    let ch = testkit::ClickHouseDatabase::create_with_prefix(prefix)
        .await
        .unwrap();
    let db = ch.name().to_owned();
    for sql in analytics::schema::statements(&db)
        .into_iter()
        .chain(analytics::schema::views(&db))
    {
        ch.query(&sql).await.unwrap();
    }
    ch
}
