//! Cross-site request forgery checks for cookie-authenticated requests.
//!
//! A browser attaches the session cookie to any request to this host, also
//! one a foreign page starts. So every request with an unsafe method (POST,
//! PATCH, PUT, DELETE) that a session authenticates must carry
//! `X-CSRF-Token` equal to **that session's** token, stored with it
//! server-side (login answers it, `GET /v1/session` repeats it). A token
//! copied from another session, or a cookie/header pair an attacker planted
//! (double submit), does not match. Custom headers also cannot be sent
//! cross-origin without a CORS preflight, which only `cors_origins` pass.
//!
//! Second check: when the browser says where the request comes from, it
//! must be this service. `Origin` (if present) must be `public_url`'s origin
//! or one of `cors_origins`; without `Origin`, `Sec-Fetch-Site` (if present)
//! must be `same-origin` (or `none`, a request the user typed). Requests
//! without either (not a browser, or an old one) rely on the token alone.
//! The same origin check guards sign-in and the other unauthenticated
//! writes (login CSRF: signing a victim into the attacker's account).
//!
//! API-key requests need neither: a browser never adds a bearer key by itself.

use crate::config::Config;
use crate::error::{ApiError, ApiResult};
use axum::http::{HeaderMap, Method, header};

/// The header that carries the token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Whether `method` changes something (and so needs the checks).
pub fn unsafe_method(method: &Method) -> bool {
    !matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// The origin check alone: `Origin`, else `Sec-Fetch-Site`, when present.
pub fn check_origin(headers: &HeaderMap, config: &Config) -> ApiResult<()> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let allowed =
            origin == config.public_origin() || config.cors_origins.iter().any(|o| o == origin);
        return if allowed {
            Ok(())
        } else {
            Err(ApiError::CsrfFailed(
                "the request's Origin is neither this service (public_url) nor one of cors_origins",
            ))
        };
    }
    match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
        None | Some(b"same-origin") | Some(b"none") => Ok(()),
        Some(_) => Err(ApiError::CsrfFailed(
            "the request comes from another site (Sec-Fetch-Site)",
        )),
    }
}

/// Both checks for a session-authenticated request with `method`, the
/// token taken from the `X-CSRF-Token` header.
pub fn check(method: &Method, headers: &HeaderMap, config: &Config, token: &str) -> ApiResult<()> {
    if !unsafe_method(method) {
        return Ok(());
    }
    let Some(sent) = headers.get(CSRF_HEADER) else {
        return Err(ApiError::CsrfFailed(
            "X-CSRF-Token is missing: a signed-in write needs the session's token (GET /v1/session)",
        ));
    };
    check_sent(headers, config, token, sent.as_bytes())
}

/// Both checks for a write whose token came some other way (the
/// dashboard's forms carry it as a hidden field, as a header cannot be set
/// on a plain form post): `sent` must be the session's `token`, and the
/// origin must be allowed.
pub fn check_sent(headers: &HeaderMap, config: &Config, token: &str, sent: &[u8]) -> ApiResult<()> {
    if !constant_time_eq(sent, token.as_bytes()) {
        return Err(ApiError::CsrfFailed(
            "the CSRF token (X-CSRF-Token, or the form's csrf field) does not match this session's token",
        ));
    }
    check_origin(headers, config)
}

/// Compares without an early exit, so the time taken says nothing about
/// how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn token_and_origin() {
        let config = Config {
            cors_origins: vec!["https://dash.example.com".into()],
            ..Config::default()
        };
        let post = Method::POST;
        assert!(check(&Method::GET, &headers(&[]), &config, "t").is_ok());
        assert!(check(&post, &headers(&[]), &config, "t").is_err());
        assert!(check(&post, &headers(&[("x-csrf-token", "u")]), &config, "t").is_err());
        assert!(check(&post, &headers(&[("x-csrf-token", "t")]), &config, "t").is_ok());
        for (origin, ok) in [
            ("http://127.0.0.1:8000", true),
            ("https://dash.example.com", true),
            ("https://evil.example", false),
            ("null", false),
        ] {
            let h = headers(&[("x-csrf-token", "t"), ("origin", origin)]);
            assert_eq!(check(&post, &h, &config, "t").is_ok(), ok, "{origin}");
        }
        for (site, ok) in [
            ("same-origin", true),
            ("none", true),
            ("same-site", false),
            ("cross-site", false),
        ] {
            let h = headers(&[("x-csrf-token", "t"), ("sec-fetch-site", site)]);
            assert_eq!(check(&post, &h, &config, "t").is_ok(), ok, "{site}");
        }
        assert!(!constant_time_eq(b"ab", b"abc"));
    }
}
