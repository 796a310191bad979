//! The admin port: health, readiness, Prometheus metrics, snapshot push.
//!
//! Plain HTTP on its own thread (axum on the control runtime); nothing here
//! is on the request path. This module is the routes and their handlers;
//! `/metrics` is rendered by [`prometheus`], and every failure is an
//! [`AdminError`] with one status and one code ([`error`]).
//!
//! `PUT /certs/NAME` installs a TLS certificate pair pushed by control
//! (body: the PEM chain, leaf first, then the PEM key; at most
//! [`crate::tls_control::MAX_PUSH_BYTES`]) behind the same token: checked as
//! a pair in the directory is, written 0600 into the state directory's
//! `certs/`, then served by every core's new connections; a bad pair is
//! `400` naming what is wrong, and nothing is written.
//!
//! `PUT /snapshot` changes what is served, so it is guarded:
//! a bearer token (required off loopback, [`crate::config`]) compared in
//! constant time over its SHA-256 (so neither its bytes nor its length leak
//! through timing); one upload at a time (another gets `429` with
//! `Retry-After`, so uploads cannot pile up on disk); a size limit
//! (`max_snapshot_bytes`) checked against `Content-Length` before anything is
//! written and again while reading; the upload goes to the state directory
//! (0700), never a shared temp directory, and a refused or failed upload
//! leaves no file behind.

pub mod error;
pub mod prometheus;

use crate::loader::{self, LoadError};
use crate::shared::Shared;
use axum::Router;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use error::AdminError;
use futures::StreamExt;
use serde_json::json;
use snapshots::readiness::{CoreReadiness, EngineReadiness, ServedSnapshot};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};

/// What a client that finds an upload under way is told to wait, seconds.
pub const BUSY_RETRY_AFTER_SECS: u64 = 5;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/snapshot", put(put_snapshot))
        .route("/certs/{name}", put(put_cert).delete(delete_cert))
        .with_state(shared)
}

/// The `/readyz` body: the [`EngineReadiness`] contract plus what the
/// engine found of the streams it uses (readers ignore fields they do not
/// know).
#[derive(serde::Serialize)]
struct Readyz {
    #[serde(flatten)]
    readiness: EngineReadiness,
    /// `links` / `clicks`: `ok`, `missing`, `no_limits`, `unreachable`,
    /// `unknown` ([`crate::streams::StreamState`]).
    streams: std::collections::BTreeMap<&'static str, &'static str>,
}

/// `GET /readyz`: the [`EngineReadiness`] record, 200 once a snapshot is
/// loaded, 503 before.
async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let readiness = readiness(&shared);
    let status = if readiness.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let mut streams = std::collections::BTreeMap::new();
    if shared.config.nats.is_some() {
        streams.insert("links", shared.links_stream.state().name());
    }
    if let Some(clicks) = &shared.clicks {
        streams.insert("clicks", clicks.stream.state().name());
    }
    (status, axum::Json(Readyz { readiness, streams })).into_response()
}

/// The engine's state as `/readyz` reports it.
pub fn readiness(shared: &Shared) -> EngineReadiness {
    let snapshot = shared.loaded().map(|s| ServedSnapshot {
        sequence: s.sequence,
        links: s.links,
        built_at_ms: s.built_at_ms,
        loaded_at_ms: s.loaded_at_ms,
        source: s.source,
    });
    EngineReadiness {
        ready: snapshot.is_some(),
        snapshot,
        nats: shared.config.nats.is_some(),
        nats_connected: shared.nats_connected.load(Relaxed),
        delta_seq: shared.delta_sent_seq.load(Relaxed),
        delta_lag: shared.delta_lag.load(Relaxed),
        cores: shared
            .metrics
            .iter()
            .map(|m| CoreReadiness {
                snapshot_sequence: m.snapshot_sequence.get(),
                delta_applied_seq: m.delta_applied_seq.get(),
                delta_entries: m.delta_entries.get(),
            })
            .collect(),
        boot_id: Some(shared.boot_id.clone()),
    }
}

/// Checks `Authorization: Bearer <token>` (the scheme in any case, RFC
/// 9110) when a token is configured.
fn authorize(shared: &Shared, headers: &HeaderMap) -> Result<(), AdminError> {
    let Some(token) = &shared.config.admin_token else {
        return Ok(());
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, rest) = v.trim().split_once([' ', '\t'])?;
            scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
        })
        .ok_or(AdminError::Unauthorized)?;
    if tokens_equal(given, token) {
        Ok(())
    } else {
        Err(AdminError::Unauthorized)
    }
}

/// Constant-time equality of two tokens: their SHA-256 digests (equal
/// length whatever the tokens' lengths) compared with `CRYPTO_memcmp`.
fn tokens_equal(given: &str, expected: &str) -> bool {
    use aws_lc_rs::digest::{SHA256, digest};
    let (a, b) = (
        digest(&SHA256, given.as_bytes()),
        digest(&SHA256, expected.as_bytes()),
    );
    aws_lc_rs::constant_time::verify_slices_are_equal(a.as_ref(), b.as_ref()).is_ok()
}

/// `force=true` in the query: skip the sequence-lead check.
fn force(query: Option<&str>) -> Result<bool, AdminError> {
    let mut force = false;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("force", "true" | "1") => force = true,
            ("force", "false" | "0") => force = false,
            ("force", other) => {
                return Err(AdminError::BadQuery(format!(
                    "force must be true or false, not {other:?}"
                )));
            }
            (name, _) => {
                return Err(AdminError::BadQuery(format!(
                    "unknown parameter {name:?} (only force)"
                )));
            }
        }
    }
    Ok(force)
}

/// The upload slot, released on drop however the upload ends.
struct UploadSlot<'a>(&'a Shared);

impl<'a> UploadSlot<'a> {
    fn take(shared: &'a Shared) -> Result<UploadSlot<'a>, AdminError> {
        match shared
            .upload_busy
            .compare_exchange(false, true, AcqRel, Relaxed)
        {
            Ok(_) => Ok(UploadSlot(shared)),
            Err(_) => Err(AdminError::Busy {
                retry_after: BUSY_RETRY_AFTER_SECS,
            }),
        }
    }
}

impl Drop for UploadSlot<'_> {
    fn drop(&mut self) {
        self.0.upload_busy.store(false, Release);
    }
}

/// `PUT /snapshot[?force=true]`: the body is written to a file in the state
/// directory, checked off the cores, kept as a generation, then installed on
/// every core before the answer.
async fn put_snapshot(
    State(shared): State<Arc<Shared>>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    authorize(&shared, &headers)?;
    let force = force(query.as_deref())?;
    let max = shared.config.max_snapshot_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max) {
        return Err(AdminError::TooLarge { max });
    }
    let _slot = UploadSlot::take(&shared)?;
    let dir = shared.state.snapshots();
    let spool = |step| {
        let dir = dir.clone();
        move |source| AdminError::Spool { step, dir, source }
    };
    // Mode 0600, removed on drop: a refused or failed upload leaves nothing.
    let mut temp = tempfile::Builder::new()
        .prefix(loader::UPLOAD_PREFIX)
        .suffix(".tmp")
        .tempfile_in(&dir)
        .map_err(spool("create a file"))?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(AdminError::Body)?;
        received += chunk.len() as u64;
        if received > max {
            return Err(AdminError::TooLarge { max });
        }
        temp.write_all(&chunk).map_err(spool("write"))?;
    }
    temp.as_file().sync_all().map_err(spool("fsync"))?;
    let worker = shared.clone();
    let (sequence, links) =
        tokio::task::spawn_blocking(move || loader::install_pushed(&worker, temp, force))
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?
            .inspect_err(|e| {
                if let LoadError::Invalid(_) | LoadError::Implausible { .. } = e {
                    tracing::warn!(error = %e, "pushed snapshot refused");
                }
            })?;
    let body = json!({"installed": true, "sequence": sequence, "links": links, "bytes": received});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `PUT /certs/NAME`: a TLS pair pushed by control, installed and served
/// before the answer.
async fn put_cert(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    use crate::tls_control::MAX_PUSH_BYTES;
    authorize(&shared, &headers)?;
    if shared.tls.is_none() {
        return Err(AdminError::TlsOff);
    }
    let body = axum::body::to_bytes(body, MAX_PUSH_BYTES)
        .await
        .map_err(|_| AdminError::CertTooLarge {
            max: MAX_PUSH_BYTES,
        })?;
    let worker = shared.clone();
    let installed = name.clone();
    let names = tokio::task::spawn_blocking(move || {
        let tls = worker.tls.as_ref().expect("checked above");
        tls.install(&installed, &body, &worker.state.certs(), &worker.senders)
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?
    .inspect_err(|e| tracing::warn!(name, error = %e, "pushed certificate pair refused"))?;
    tracing::info!(name, "pushed certificate pair installed");
    let body = json!({"installed": name, "names": names});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// `DELETE /certs/NAME`: withdraws a pair control pushed (its domain was
/// deleted); new connections no longer get it once this answers. `404` if
/// no pair was pushed under the name, `409` for the operator's own pair.
async fn delete_cert(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    authorize(&shared, &headers)?;
    if shared.tls.is_none() {
        return Err(AdminError::TlsOff);
    }
    let worker = shared.clone();
    let removed = name.clone();
    let names = tokio::task::spawn_blocking(move || {
        let tls = worker.tls.as_ref().expect("checked above");
        tls.remove(&removed, &worker.state.certs(), &worker.senders)
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?
    .inspect_err(|e| tracing::warn!(name, error = %e, "certificate removal refused"))?
    .ok_or_else(|| AdminError::NoSuchCert(name.clone()))?;
    tracing::info!(name, "pushed certificate pair removed");
    let body = json!({"removed": name, "names": names});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus::render(&shared),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole_and_only_whole() {
        assert!(tokens_equal("s3cret", "s3cret"));
        for other in ["", "s3cre", "s3cret ", "S3cret", "s3cret-longer"] {
            assert!(!tokens_equal(other, "s3cret"), "{other:?}");
        }
    }

    #[test]
    fn force_parameter() {
        assert!(!force(None).unwrap());
        assert!(force(Some("force=true")).unwrap());
        assert!(!force(Some("force=false")).unwrap());
        assert!(force(Some("force=yes")).is_err());
        assert!(force(Some("forse=true")).is_err());
    }
}
