//! Liveness, readiness and metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// `GET /healthz`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// Always `ok`.
    pub status: &'static str,
}

/// `GET /readyz`: with 200 the sequence numbers, with 503 the reason.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Readiness {
    pub ready: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Whether this instance is the leader (runs the relay, snapshot builds,
    /// reconcile, purges, certificate renewals); every instance serves the API.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<bool>,
    /// The last change written to the outbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outbox_seq: Option<i64>,
    /// The last change the relay published to the links stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relay_published_seq: Option<u64>,
    /// The change the newest snapshot holds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_snapshot_seq: Option<u64>,
}

pub async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

/// Ready when PostgreSQL answers and the relay is not refusing the links
/// stream. A failure's details go to the log, not to whoever asks: the
/// database's error text can name hosts, users and databases.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let not_ready = |reason: &str| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Readiness {
                ready: false,
                reason: Some(reason.to_owned()),
                leader: None,
                outbox_seq: None,
                relay_published_seq: None,
                latest_snapshot_seq: None,
            }),
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
    axum::Json(Readiness {
        ready: true,
        reason: None,
        leader: Some(state.metrics.leader.get() == 1),
        outbox_seq: Some(seq),
        relay_published_seq: Some(state.metrics.relay_published_seq.get()),
        latest_snapshot_seq: Some(state.metrics.latest_snapshot_seq.get()),
    })
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
