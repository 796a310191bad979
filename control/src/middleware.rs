//! What runs around every handler: request metrics ([`observe`]) and the
//! rate limits with key verification ([`limit`]).

use crate::auth::verify::{Verified, verify_headers};
use crate::error::ApiError;
use crate::extract::BodyLimit;
use crate::ratelimit::Caller;
use crate::state::AppState;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use std::time::Instant;

/// The method label: the standard methods, anything else `other`, so a
/// client cannot grow the label set (and the metrics' memory) at will.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

/// The route label: a route template the router serves (the API's or the
/// dashboard's), else `unmatched`.
fn route_label(request: &Request) -> &'static str {
    let Some(path) = request.extensions().get::<MatchedPath>() else {
        return "unmatched";
    };
    crate::openapi::ROUTES
        .iter()
        .map(|r| r.path)
        .chain(crate::dashboard::routes::PATHS.iter().copied())
        .find(|p| *p == path.as_str())
        .unwrap_or("unmatched")
}

/// Counts requests by method, route template and status.
pub async fn observe(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = route_label(&request);
    let response = next.run(request).await;
    state
        .metrics
        .observe_request(method, route, response.status().as_u16());
    response
}

/// The IP's bucket first; then, for a presented key or session cookie,
/// verification and that key's or user's bucket. The verification outcome is
/// left for the [`crate::auth::Auth`] and [`crate::auth::SignedIn`] extractors.
pub async fn limit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = Instant::now();
    let mut decision = state.limits.per_ip.check(&peer.ip(), now);
    if decision.allowed {
        // Nothing presented, or a lookup error, is left to the extractor,
        // which tries again and answers for it.
        if let Ok(verified) = verify_headers(&state, request.headers()).await {
            let caller = match &verified {
                Verified::Key(auth) => Some(auth.bucket()),
                Verified::Session(user) => Some(Caller::User(user.user_id)),
                Verified::Refused | Verified::SessionRefused => None,
            };
            if let Some(caller) = caller {
                decision = decision.tighter(Some(state.limits.per_key.check(&caller, now)));
            }
            request.extensions_mut().insert(verified);
        }
    }
    request
        .extensions_mut()
        .insert(BodyLimit(state.config.max_body_bytes));
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        state.metrics.rate_limited.inc();
        ApiError::RateLimited {
            retry_after: decision.retry_after,
        }
        .into_response()
    };
    let h = response.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    h.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    h.insert("x-ratelimit-reset", HeaderValue::from(decision.reset));
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn method_labels_are_bounded() {
        let m = |s: &str| super::method_label(&s.parse().unwrap());
        assert_eq!(m("GET"), "GET");
        assert_eq!(m("FOO"), "other");
        assert_eq!(m("get"), "other");
    }
}
