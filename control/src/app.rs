//! The shared state and the router.

use crate::config::Config;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::ratelimit::{Limiter, RateLimits};
use crate::snapshot::SnapshotService;
use crate::{admin, keys, links, qr, stats};
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use sqlx::PgPool;
use std::sync::Arc;

/// What every handler can reach. Cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState {
    pub db: PgPool,
    pub config: Arc<Config>,
    /// The short domain's host: targets there would loop.
    pub short_host: Option<String>,
    pub clickhouse: Option<clickhouse::Client>,
    pub limits: Arc<RateLimits>,
    pub metrics: Arc<Metrics>,
    pub snapshots: Arc<SnapshotService>,
}

impl AppState {
    pub fn new(db: PgPool, config: Config, metrics: Arc<Metrics>) -> Self {
        let clickhouse = config
            .clickhouse
            .as_deref()
            .map(|url| crate::stats::client(url, &config.clickhouse_database));
        let snapshots = Arc::new(SnapshotService::new(
            db.clone(),
            config.snapshot_dir.clone(),
            config.snapshot_keep,
            config.engine_admin.clone(),
            config.engine_admin_token.clone(),
            metrics.clone(),
        ));
        AppState {
            short_host: config.short_host(),
            limits: Arc::new(RateLimits {
                per_key: Limiter::new(config.rate_per_key, config.burst_per_key),
                per_ip: Limiter::new(config.rate_per_ip, config.burst_per_ip),
            }),
            config: Arc::new(config),
            db,
            clickhouse,
            metrics,
            snapshots,
        }
    }

    pub fn short_base(&self) -> &str {
        self.config.short_base_trimmed()
    }
}

/// Every route of the service. [`crate::openapi`] describes the same table.
pub fn router(state: AppState) -> Router {
    let v1 = Router::new()
        .route("/links", post(links::api::create).get(links::api::list))
        .route(
            "/links/{code}",
            get(links::api::get)
                .patch(links::api::patch)
                .delete(links::api::delete),
        )
        .route("/links/{code}/stats", get(stats::link_stats))
        .route("/links/{code}/qr", get(qr::qr))
        .route("/stats/summary", get(stats::summary))
        .route("/keys", post(keys::create).get(keys::list))
        .route("/keys/{id}", delete(keys::revoke))
        .route("/admin/blocklist", post(admin::block).get(admin::blocklist))
        .route("/admin/blocklist/{host}", delete(admin::unblock))
        .route("/admin/links/{code}/disable", post(admin::disable))
        .route(
            "/admin/snapshots",
            post(admin::build_snapshot).get(admin::snapshots),
        );
    Router::new()
        .nest("/v1", v1)
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::ratelimit::middleware,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    state
        .metrics
        .observe_request(&method, &route, response.status().as_u16());
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound { what: "route" }
}

async fn method_not_allowed() -> Response {
    let body = serde_json::json!({ "error": {
        "code": "method_not_allowed",
        "message": "this method is not allowed on this route",
        "details": null
    }});
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({ "status": "ok" }))
}

/// Ready when PostgreSQL answers.
async fn readyz(State(state): State<AppState>) -> Response {
    match sqlx::query_scalar::<_, i64>("SELECT seq FROM outbox_counter")
        .fetch_one(&state.db)
        .await
    {
        Ok(seq) => axum::Json(serde_json::json!({
            "ready": true,
            "outbox_seq": seq,
            "relay_published_seq": state.metrics.relay_published_seq.get(),
            "latest_snapshot_seq": state.metrics.latest_snapshot_seq.get(),
        }))
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(serde_json::json!({ "ready": false, "error": e.to_string() })),
        )
            .into_response(),
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let mut r = state.metrics.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

async fn openapi() -> axum::Json<serde_json::Value> {
    axum::Json(crate::openapi::document("/"))
}
