//! CORS for a dashboard served from another origin.
//!
//! Off by default (`cors_origins` empty): browsers then let only pages of
//! this origin read answers, and a preflight is refused like any other
//! unknown method. Each listed origin may call with credentials (the session
//! cookie), so the list is exact origins, never `*` (browsers refuse `*`
//! with credentials anyway, and [`crate::config`] refuses it up front). An
//! origin not listed gets no `Access-Control-Allow-Origin`, which its
//! browser treats as a refusal; cookie writes from it also fail the origin
//! check ([`crate::auth::csrf`]).

use crate::config::Config;
use axum::http::{HeaderName, HeaderValue, Method, header};
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The layer for the configured origins; `None` when there are none.
pub fn layer(config: &Config) -> Option<CorsLayer> {
    if config.cors_origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = config
        .cors_origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PATCH,
                Method::PUT,
                Method::DELETE,
            ])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                HeaderName::from_static("x-csrf-token"),
                HeaderName::from_static("x-org"),
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                header::ETAG,
                header::RETRY_AFTER,
                HeaderName::from_static("x-ratelimit-limit"),
                HeaderName::from_static("x-ratelimit-remaining"),
                HeaderName::from_static("x-ratelimit-reset"),
            ])
            .max_age(Duration::from_secs(600)),
    )
}
