//! Shipping certificates to engines: `PUT /certs/NAME` on each engine's
//! admin port (body: the PEM chain, leaf first, then the PEM key; the
//! engines' admin token), on issue and renewal and whenever a reconcile round
//! finds an engine that may lack them; `DELETE /certs/NAME` for the
//! certificate of a domain that was deleted.
//!
//! An engine keeps pushed pairs in its state directory across restarts, but
//! a new engine, or one whose state directory was replaced, has none, and
//! `/readyz` does not list certificates. So the reconcile round remembers,
//! per engine, which issuance it has shipped and which withdrawals it made,
//! under the engine's boot id (`/readyz`): an engine unreachable in a round,
//! seen for the first time, or with another boot id (restarted) gets every
//! pair again, and every withdrawal. Both are idempotent (a withdrawal of a
//! pair the engine lacks is a 404), so the only cost of a needless one is a
//! request. An engine older than the boot id is tracked by its snapshot's
//! load time instead, which also changes on every snapshot push.

use super::seal::{Sealer, certificate_key_purpose};
use super::store::{self, Pair};
use anyhow::Context as _;
use snapshots::readiness::EngineReadiness;
use sqlx::PgPool;
use std::collections::{HashMap, HashSet};
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

    /// `DELETE http://ENGINE/certs/NAME`: whether the engine no longer has
    /// it (removed, or never had it).
    pub async fn delete_cert(&self, engine: &str, name: &str) -> Result<(), String> {
        let url = format!("http://{engine}/certs/{name}");
        let mut delete = self.http.delete(&url);
        if let Some(token) = &self.token {
            delete = delete.bearer_auth(token);
        }
        let resp = delete.send().await.map_err(|e| format!("{url}: {e}"))?;
        match resp.status().as_u16() {
            200 | 404 => Ok(()),
            status => {
                let text = resp.text().await.unwrap_or_default();
                Err(format!("{url} answered {status}: {}", text.trim()))
            }
        }
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
    /// Its boot id (or, from an engine without one, the load time of the
    /// snapshot it served); another means it may have restarted.
    incarnation: Option<String>,
    /// Domain → the issuance shipped to it.
    shipped: HashMap<String, OffsetDateTime>,
    /// Withdrawn names it is known not to serve.
    withdrawn: HashSet<String>,
}

/// What tells one run of an engine from the next.
fn incarnation(readiness: &EngineReadiness) -> Option<String> {
    match &readiness.boot_id {
        Some(id) => Some(id.clone()),
        None => readiness
            .snapshot
            .as_ref()
            .map(|s| format!("loaded_at_ms:{}", s.loaded_at_ms)),
    }
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
        let withdrawn = store::withdrawn_names(db).await?;
        for engine in engines.addrs() {
            let incarnation = match engines.readiness(engine).await {
                Ok(r) => incarnation(&r),
                Err(e) => {
                    tracing::debug!(engine, error = format!("{e:#}"), "engine not reachable");
                    self.seen.remove(engine);
                    continue;
                }
            };
            let seen = self.seen.entry(engine.clone()).or_default();
            if seen.incarnation != incarnation {
                seen.shipped.clear();
                seen.withdrawn.clear();
                seen.incarnation = incarnation;
            }
            for name in &withdrawn {
                if seen.withdrawn.contains(name) {
                    continue;
                }
                match engines.delete_cert(engine, name).await {
                    Ok(()) => {
                        tracing::info!(engine, domain = name, "certificate withdrawn");
                        seen.shipped.remove(name);
                        seen.withdrawn.insert(name.clone());
                    }
                    Err(why) => tracing::warn!(
                        engine,
                        domain = name,
                        error = why,
                        "certificate withdrawal failed"
                    ),
                }
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
