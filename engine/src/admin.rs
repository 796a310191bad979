//! The admin port: health, readiness, Prometheus metrics, snapshot push.
//!
//! Plain HTTP on its own thread (axum on the control runtime); nothing here
//! is on the request path. `/metrics` reads every core's counters with
//! relaxed loads.

use crate::clock;
use crate::http::response::STATUSES;
use crate::loader::{self, LoadError};
use crate::metrics::LATENCY_BOUNDS_US;
use crate::shared::Shared;
use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use futures::StreamExt;
use serde_json::json;
use std::fmt::Write as _;
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

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (
        status,
        axum::Json(json!({"error": {"code": code, "message": message, "details": {}}})),
    )
        .into_response()
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let loaded = shared.loaded();
    let body = json!({
        "ready": loaded.is_some(),
        "snapshot": loaded.as_ref().map(|s| json!({
            "sequence": s.sequence,
            "links": s.links,
            "built_at_ms": s.built_at_ms,
            "loaded_at_ms": s.loaded_at_ms,
            "source": s.source,
        })),
        "nats": shared.config.nats.is_some(),
        "nats_connected": shared.nats_connected.load(Relaxed),
        "delta_seq": shared.delta_sent_seq.load(Relaxed),
        "delta_lag": shared.delta_lag.load(Relaxed),
        "cores": shared.metrics.iter().map(|m| json!({
            "snapshot_sequence": m.snapshot_sequence.get(),
            "delta_applied_seq": m.delta_applied_seq.get(),
            "delta_entries": m.delta_entries.get(),
        })).collect::<Vec<_>>(),
    });
    let status = if loaded.is_some() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn put_snapshot(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(token) = &shared.config.admin_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if given != Some(token.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "a valid bearer token is required".into(),
            );
        }
    }
    let dir = shared.config.push_dir();
    let mut temp = match tempfile::Builder::new()
        .prefix(".push-")
        .suffix(".snap")
        .tempfile_in(&dir)
    {
        Ok(temp) => temp,
        Err(e) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                format!("cannot create a file in {}: {e}", dir.display()),
            );
        }
    };
    let mut stream = body.into_data_stream();
    let mut received = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "body_error",
                    format!("reading the body failed: {e}"),
                );
            }
        };
        received += chunk.len() as u64;
        if received > MAX_PUSH_BYTES {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("a snapshot is at most {MAX_PUSH_BYTES} bytes"),
            );
        }
        if let Err(e) = temp.write_all(&chunk) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "store_failed",
                format!("writing the body failed: {e}"),
            );
        }
    }
    if let Err(e) = temp.as_file().sync_all() {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            format!("fsync failed: {e}"),
        );
    }
    let worker = shared.clone();
    let result = tokio::task::spawn_blocking(move || loader::install_pushed(&worker, temp)).await;
    match result {
        Ok(Ok((sequence, links))) => (
            StatusCode::OK,
            axum::Json(
                json!({"installed": true, "sequence": sequence, "links": links, "bytes": received}),
            ),
        )
            .into_response(),
        Ok(Err(e @ LoadError::Invalid(_))) => {
            tracing::warn!(error = %e, "pushed snapshot refused");
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_snapshot",
                e.to_string(),
            )
        }
        Ok(Err(e @ LoadError::Stale { .. })) => {
            error(StatusCode::CONFLICT, "stale_snapshot", e.to_string())
        }
        Ok(Err(e @ LoadError::Store { .. })) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "store_failed",
            e.to_string(),
        ),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()),
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        render(&shared),
    )
        .into_response()
}

/// Prometheus text exposition of every core's counters and the engine's state.
pub fn render(shared: &Shared) -> String {
    let mut out = String::with_capacity(8192);
    let cores = &shared.metrics;
    macro_rules! per_core {
        ($name:literal, $kind:literal, $help:literal, |$m:ident| $value:expr) => {{
            let _ = writeln!(
                out,
                "# HELP {} {}\n# TYPE {} {}",
                $name, $help, $name, $kind
            );
            for (core, $m) in cores.iter().enumerate() {
                let _ = writeln!(out, "{}{{core=\"{}\"}} {}", $name, core, $value);
            }
        }};
    }
    let _ = writeln!(
        out,
        "# HELP engine_responses_total Responses written, by status and core.\n# TYPE engine_responses_total counter"
    );
    for (core, m) in cores.iter().enumerate() {
        for (i, status) in STATUSES.iter().enumerate() {
            let _ = writeln!(
                out,
                "engine_responses_total{{core=\"{core}\",status=\"{status}\"}} {}",
                m.responses[i].get()
            );
        }
    }
    per_core!(
        "engine_connections_open",
        "gauge",
        "Open client connections.",
        |m| m.connections_open.get()
    );
    per_core!(
        "engine_connections_accepted_total",
        "counter",
        "Connections accepted.",
        |m| m.connections_accepted.get()
    );
    per_core!(
        "engine_connections_refused_total",
        "counter",
        "Connections closed on accept at the per-core limit.",
        |m| m.connections_refused.get()
    );
    per_core!(
        "engine_parse_errors_total",
        "counter",
        "Request heads refused (400, 414, 431).",
        |m| m.parse_errors.get()
    );
    per_core!(
        "engine_header_timeouts_total",
        "counter",
        "Connections cut off for slow request heads (408).",
        |m| m.header_timeouts.get()
    );
    per_core!(
        "engine_core_snapshot_sequence",
        "gauge",
        "Sequence of the snapshot the core serves (-1: none).",
        |m| m.snapshot_sequence.get()
    );
    per_core!(
        "engine_delta_entries",
        "gauge",
        "Upserts and tombstones in the core's delta map.",
        |m| m.delta_entries.get()
    );
    per_core!(
        "engine_core_delta_applied_seq",
        "gauge",
        "Highest change sequence the core has applied.",
        |m| m.delta_applied_seq.get()
    );

    let _ = writeln!(
        out,
        "# HELP engine_request_duration_seconds Time from the read completing a request to its answer written.\n# TYPE engine_request_duration_seconds histogram"
    );
    for (core, m) in cores.iter().enumerate() {
        let mut cumulative = 0u64;
        for (i, bound) in LATENCY_BOUNDS_US.iter().enumerate() {
            cumulative += m.latency_buckets[i].get();
            let _ = writeln!(
                out,
                "engine_request_duration_seconds_bucket{{core=\"{core}\",le=\"{}\"}} {cumulative}",
                *bound as f64 / 1e6
            );
        }
        cumulative += m.latency_buckets[LATENCY_BOUNDS_US.len()].get();
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_bucket{{core=\"{core}\",le=\"+Inf\"}} {cumulative}"
        );
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_sum{{core=\"{core}\"}} {}",
            m.latency_sum_ns.get() as f64 / 1e9
        );
        let _ = writeln!(
            out,
            "engine_request_duration_seconds_count{{core=\"{core}\"}} {cumulative}"
        );
    }

    per_core!(
        "engine_clicks_captured_total",
        "counter",
        "Click events recorded by the core.",
        |m| m.clicks_captured.get()
    );
    per_core!(
        "engine_clicks_dropped_total",
        "counter",
        "Click events dropped because the publisher's channel was full.",
        |m| m.clicks_dropped.get()
    );
    per_core!(
        "engine_click_batches_sent_total",
        "counter",
        "Click batches handed to the publisher.",
        |m| m.click_batches_sent.get()
    );

    let loaded = shared.loaded();
    let gauge = |out: &mut String, name: &str, help: &str, kind: &str, value: String| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
        );
    };
    gauge(
        &mut out,
        "engine_ready",
        "1 when a snapshot is loaded.",
        "gauge",
        u8::from(loaded.is_some()).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_sequence",
        "Change sequence of the served snapshot (-1: none).",
        "gauge",
        loaded
            .as_ref()
            .map_or(-1, |s| s.sequence as i64)
            .to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_links",
        "Links in the served snapshot.",
        "gauge",
        loaded.as_ref().map_or(0, |s| s.links).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_age_seconds",
        "Seconds since the served snapshot was built.",
        "gauge",
        loaded
            .as_ref()
            .map_or(0.0, |s| {
                (clock::unix_ms() as i64 - s.built_at_ms) as f64 / 1e3
            })
            .to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_loads_total",
        "Snapshots installed.",
        "counter",
        shared.snapshot_loads.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_snapshot_refusals_total",
        "Snapshots refused (invalid or stale).",
        "counter",
        shared.snapshot_refusals.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_delta_seq",
        "Highest change sequence sent to the cores.",
        "gauge",
        shared.delta_sent_seq.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_delta_lag",
        "Changes in the stream not yet received.",
        "gauge",
        shared.delta_lag.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_deltas_received_total",
        "Changes received from the stream.",
        "counter",
        shared.deltas_received.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_deltas_invalid_total",
        "Changes refused as malformed (logged and skipped).",
        "counter",
        shared.deltas_invalid.load(Relaxed).to_string(),
    );
    gauge(
        &mut out,
        "engine_nats_connected",
        "1 while the change stream is being consumed.",
        "gauge",
        u8::from(shared.nats_connected.load(Relaxed)).to_string(),
    );
    if let Some(clicks) = &shared.clicks {
        for (name, kind, help, value) in [
            (
                "engine_click_events_published_total",
                "counter",
                "Click events acknowledged by JetStream.",
                &clicks.events_published,
            ),
            (
                "engine_click_batches_published_total",
                "counter",
                "Click batches acknowledged by JetStream.",
                &clicks.batches_published,
            ),
            (
                "engine_click_events_spooled_total",
                "counter",
                "Click events written to the disk spool.",
                &clicks.events_spooled,
            ),
            (
                "engine_click_events_replayed_total",
                "counter",
                "Spooled click events published later.",
                &clicks.events_replayed,
            ),
            (
                "engine_click_events_spool_dropped_total",
                "counter",
                "Click events dropped because the spool was full.",
                &clicks.events_dropped,
            ),
            (
                "engine_click_publish_failures_total",
                "counter",
                "Click batch publishes that failed or timed out.",
                &clicks.publish_failures,
            ),
            (
                "engine_click_spool_bytes",
                "gauge",
                "Bytes in the click spool.",
                &clicks.spool_bytes,
            ),
            (
                "engine_click_spool_batches",
                "gauge",
                "Batches in the click spool.",
                &clicks.spool_batches,
            ),
            (
                "engine_click_nats_connected",
                "gauge",
                "1 while the click stream accepts batches.",
                &clicks.connected,
            ),
            (
                "engine_click_publish_seconds_count",
                "counter",
                "Publish windows (pipelined batches, acks awaited).",
                &clicks.publish_latency_count,
            ),
        ] {
            gauge(&mut out, name, help, kind, value.load(Relaxed).to_string());
        }
        gauge(
            &mut out,
            "engine_click_publish_seconds_sum",
            "Time spent publishing windows and awaiting their acks.",
            "counter",
            (clicks.publish_latency_us_sum.load(Relaxed) as f64 / 1e6).to_string(),
        );
    }
    gauge(
        &mut out,
        "engine_uptime_seconds",
        "Seconds since start.",
        "gauge",
        shared.started.elapsed().as_secs_f64().to_string(),
    );
    out
}
