//! Liveness, readiness, metrics and the OpenAPI document.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(json!({ "status": "ok" }))
}

/// Ready when PostgreSQL answers and the relay is not refusing the links
/// stream. A failure's details go to the log, not to whoever asks: the
/// database's error text can name hosts, users and databases.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({ "ready": false, "reason": reason })),
        )
            .into_response()
    };
    let seq = match sqlx::query_scalar::<_, i64>("SELECT seq FROM outbox_counter")
        .fetch_one(&state.db)
        .await
    {
        Ok(seq) => seq,
        Err(e) => {
            tracing::warn!(error = %e, "readyz: PostgreSQL does not answer");
            return not_ready("the database is not reachable");
        }
    };
    if let Some(problem) = state.metrics.links_stream_problem.get() {
        return not_ready(&problem);
    }
    axum::Json(json!({
        "ready": true,
        "outbox_seq": seq,
        "relay_published_seq": state.metrics.relay_published_seq.get(),
        "latest_snapshot_seq": state.metrics.latest_snapshot_seq.get(),
    }))
    .into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

pub async fn openapi() -> axum::Json<serde_json::Value> {
    axum::Json(crate::openapi::document("/"))
}
