//! The admin port: health, readiness, Prometheus metrics, snapshot push.
//!
//! Plain HTTP on its own thread (axum on the control runtime); nothing here
//! is on the request path. This module is the routes and their handlers;
//! `/metrics` is rendered by [`prometheus`], and every failure is an
//! [`AdminError`] with one status and one code ([`error`]).

pub mod error;
pub mod prometheus;

use crate::loader::{self, LoadError};
use crate::shared::Shared;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use error::AdminError;
use futures::StreamExt;
use serde_json::json;
use snapshots::readiness::{CoreReadiness, EngineReadiness, ServedSnapshot};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Largest body `PUT /snapshot` accepts: the format's limit plus the header.
const MAX_PUSH_BYTES: u64 = snapshots::builder::MAX_PAYLOAD_LEN + 64;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/snapshot", put(put_snapshot))
        .with_state(shared)
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
    (status, axum::Json(readiness)).into_response()
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
    }
}

/// `PUT /snapshot`: the body is written to a file beside the served one,
/// checked off the cores, then installed on every core before the answer.
async fn put_snapshot(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    if let Some(token) = &shared.config.admin_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return Err(AdminError::Unauthorized);
        }
    }
    let dir = shared.config.push_dir();
    let spool = |step| {
        let dir = dir.clone();
        move |source| AdminError::Spool { step, dir, source }
    };
    let mut temp = tempfile::Builder::new()
        .prefix(".push-")
        .suffix(".snap")
        .tempfile_in(&dir)
        .map_err(spool("create a file"))?;
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(AdminError::Body)?;
        received += chunk.len() as u64;
        if received > MAX_PUSH_BYTES {
            return Err(AdminError::TooLarge {
                max: MAX_PUSH_BYTES,
            });
        }
        temp.write_all(&chunk).map_err(spool("write"))?;
    }
    temp.as_file().sync_all().map_err(spool("fsync"))?;
    let worker = shared.clone();
    let (sequence, links) =
        tokio::task::spawn_blocking(move || loader::install_pushed(&worker, temp))
            .await
            .map_err(|e| AdminError::Internal(e.to_string()))?
            .inspect_err(|e| {
                if let LoadError::Invalid(_) = e {
                    tracing::warn!(error = %e, "pushed snapshot refused");
                }
            })?;
    let body = json!({"installed": true, "sequence": sequence, "links": links, "bytes": received});
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        prometheus::render(&shared),
    )
        .into_response()
}
