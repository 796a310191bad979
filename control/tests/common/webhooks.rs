//! A webhook receiver on loopback and the endpoint helpers the webhook
//! tests share.

use super::TestApp;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const WAIT: Duration = Duration::from_secs(20);
pub const POLL: Duration = Duration::from_millis(20);

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .to_str()
            .unwrap()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Script {
    /// Statuses to answer first, in order.
    first: VecDeque<u16>,
    /// The status after those.
    then: u16,
    got: Vec<Received>,
}

/// A webhook receiver on 127.0.0.1.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    script: Arc<Mutex<Script>>,
}

impl Receiver {
    pub async fn start(first: &[u16], then: u16) -> Receiver {
        let script = Arc::new(Mutex::new(Script {
            first: first.iter().copied().collect(),
            then,
            got: Vec::new(),
        }));
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post({
                let script = script.clone();
                move |headers: HeaderMap, body: Bytes| {
                    let script = script.clone();
                    async move {
                        let mut s = script.lock().unwrap();
                        s.got.push(Received { headers, body });
                        let status = s.first.pop_front().unwrap_or(s.then);
                        StatusCode::from_u16(status).unwrap()
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver {
            url: format!("http://{addr}/hook"),
            script,
        }
    }

    pub fn got(&self) -> Vec<Received> {
        self.script.lock().unwrap().got.clone()
    }

    pub fn answer(&self, status: u16) {
        self.script.lock().unwrap().then = status;
    }

    /// Waits until at least `n` requests came, and returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        testkit::wait_for(WAIT, POLL, || async { self.got().len() >= n })
            .await
            .unwrap_or_else(|_| panic!("{n} requests, got {:?}", self.got().len()));
        self.got()
    }
}

/// The sealing key file (mode 0600) in its own directory.
pub fn key_file() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("webhooks.key");
    std::fs::write(&path, "ab".repeat(32)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    (dir, path)
}

/// Creates an endpoint as the admin key; returns its JSON and secret.
pub async fn endpoint(app: &TestApp, url: &str, events: &[&str]) -> (Value, String) {
    endpoint_as(app, &app.admin_key, url, events).await
}

/// Creates an endpoint with `key` (its organization's); returns its JSON
/// and secret.
pub async fn endpoint_as(app: &TestApp, key: &str, url: &str, events: &[&str]) -> (Value, String) {
    let (s, b) = app
        .send_json(
            Method::POST,
            "/v1/webhooks",
            key,
            &json!({ "url": url, "events": events }),
        )
        .await;
    assert_eq!(s, 201, "{b}");
    let secret = b["secret"].as_str().unwrap().to_owned();
    (b["webhook"].clone(), secret)
}
