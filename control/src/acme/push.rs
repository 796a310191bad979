//! Shipping certificates to engines: `PUT /certs/NAME` on each engine's
//! admin port (body: the PEM chain, leaf first, then the PEM key; the
//! engines' admin token), on issue and renewal and whenever a reconcile round
//! finds an engine that may lack them.
//!
//! An engine keeps pushed pairs in its state directory across restarts, but
//! a new engine, or one whose state directory was replaced, has none, and
//! `/readyz` does not list certificates. So the reconcile round remembers,
//! per engine, which issuance it has shipped and the load time of the
//! snapshot the engine served then: an engine unreachable in a round, seen
//! for the first time, or serving a snapshot loaded at another time
//! (restarted, or given a new snapshot) gets every pair again. A push is
//! idempotent, so the only cost of a needless one is a few kilobytes.

use super::seal::{Sealer, certificate_key_purpose};
use super::store::{self, Pair};
use anyhow::Context as _;
use snapshots::readiness::EngineReadiness;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::Duration;
use time::OffsetDateTime;

/// The engines' admin ports and how to reach them.
#[derive(Debug)]
pub struct Engines {
    addrs: Vec<String>,
    token: Option<String>,
    http: reqwest::Client,
}

impl Engines {
    pub fn new(addrs: Vec<String>, token: Option<String>) -> Engines {
        Engines {
            addrs,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("a plain HTTP client builds"),
        }
    }

    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// An engine's `/readyz` record (a 503 still carries one).
    pub async fn readiness(&self, engine: &str) -> anyhow::Result<EngineReadiness> {
        self.http
            .get(format!("http://{engine}/readyz"))
            .timeout(Duration::from_secs(2))
            .send()
            .await?
            .json()
            .await
            .context("readyz is not an engine readiness record")
    }

    /// `PUT http://ENGINE/certs/NAME`.
    pub async fn put_cert(&self, engine: &str, name: &str, body: Vec<u8>) -> Pushed {
        let url = format!("http://{engine}/certs/{name}");
        let mut put = self.http.put(&url).body(body);
        if let Some(token) = &self.token {
            put = put.bearer_auth(token);
        }
        let resp = match put.send().await {
            Ok(resp) => resp,
            Err(e) => return Pushed::Failed(format!("{url}: {e}")),
        };
        let status = resp.status();
        if status.is_success() {
            return Pushed::Installed;
        }
        // The engine's answer names what it refused, never the key.
        let text = resp.text().await.unwrap_or_default();
        let why = format!("{url} answered {status}: {}", text.trim());
        // 400 (a pair the engine refuses) and 409 (the operator's own pair
        // for the name) stay so until something changes: not retried.
        match status.is_client_error() && status.as_u16() != 401 && status.as_u16() != 403 {
            true => Pushed::Refused(why),
            false => Pushed::Failed(why),
        }
    }
}

/// The outcome of one push.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Installed,
    /// The engine refused this pair for good (until a new issuance).
    Refused(String),
    /// Not delivered (unreachable, token, engine error): tried again.
    Failed(String),
}

/// The body of a push: chain, then the opened key.
fn push_body(sealer: &Sealer, pair: &Pair) -> anyhow::Result<Vec<u8>> {
    let key = sealer.open(&certificate_key_purpose(&pair.domain), &pair.key_pem_sealed)?;
    let mut body = pair.chain_pem.clone().into_bytes();
    if !body.ends_with(b"\n") {
        body.push(b'\n');
    }
    body.extend_from_slice(&key);
    Ok(body)
}

/// Pushes one pair to one engine, logging the outcome (never the key);
/// whether it need not be pushed again.
async fn push_one(engines: &Engines, sealer: &Sealer, engine: &str, pair: &Pair) -> bool {
    let body = match push_body(sealer, pair) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(domain = pair.domain, error = %e, "certificate key does not open");
            return false;
        }
    };
    match engines.put_cert(engine, &pair.domain, body).await {
        Pushed::Installed => {
            tracing::info!(engine, domain = pair.domain, "certificate pushed");
            true
        }
        Pushed::Refused(why) => {
            tracing::warn!(
                engine,
                domain = pair.domain,
                error = why,
                "engine refused the certificate"
            );
            true
        }
        Pushed::Failed(why) => {
            tracing::warn!(
                engine,
                domain = pair.domain,
                error = why,
                "certificate push failed"
            );
            false
        }
    }
}

/// What one engine was last seen with.
#[derive(Debug, Default)]
struct Seen {
    /// The load time of the snapshot it served; another means it may have
    /// restarted.
    loaded_at_ms: Option<u64>,
    /// Domain → the issuance shipped to it.
    shipped: HashMap<String, OffsetDateTime>,
}

/// The reconcile rounds' memory of every engine.
#[derive(Debug, Default)]
pub struct Reconciler {
    seen: HashMap<String, Seen>,
}

impl Reconciler {
    /// One round: ship every issued pair an engine may lack.
    pub async fn round(
        &mut self,
        db: &PgPool,
        engines: &Engines,
        sealer: &Sealer,
    ) -> anyhow::Result<()> {
        if engines.addrs().is_empty() {
            return Ok(());
        }
        let pairs = store::issued_pairs(db).await?;
        for engine in engines.addrs() {
            let loaded_at_ms = match engines.readiness(engine).await {
                Ok(r) => r.snapshot.map(|s| s.loaded_at_ms),
                Err(e) => {
                    tracing::debug!(engine, error = format!("{e:#}"), "engine not reachable");
                    self.seen.remove(engine);
                    continue;
                }
            };
            let seen = self.seen.entry(engine.clone()).or_default();
            if seen.loaded_at_ms != loaded_at_ms {
                seen.shipped.clear();
                seen.loaded_at_ms = loaded_at_ms;
            }
            for pair in &pairs {
                if seen.shipped.get(&pair.domain) == Some(&pair.issued_at) {
                    continue;
                }
                if push_one(engines, sealer, engine, pair).await {
                    seen.shipped.insert(pair.domain.clone(), pair.issued_at);
                }
            }
        }
        Ok(())
    }
}
