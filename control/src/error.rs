//! The one API error type. Every failure a handler can return is a variant
//! here, and [`ApiError::status_and_code`] is the single place that maps a
//! variant to an HTTP status and a stable machine-readable code. The body is
//! always `{"error":{"code":..,"message":..,"details":..}}`, including for
//! axum's own extractor rejections (see [`crate::extract`]).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { message: String, details: Value },
    #[error("invalid target URL: {0}")]
    InvalidUrl(String),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key lacks the {required:?} scope")]
    Forbidden { required: &'static str },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("the code {code:?} is already taken")]
    AliasTaken { code: String },
    #[error("{0}")]
    Conflict(String),
    #[error("If-Match {given} does not match the current ETag {current}")]
    PreconditionFailed { given: String, current: String },
    #[error("this Idempotency-Key was used with a different request body")]
    IdempotencyMismatch,
    #[error("the host {host:?} is blocked ({rule:?})")]
    BlockedHost { host: String, rule: String },
    #[error("rate limit exceeded; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    #[error("{0} is not configured or not reachable")]
    Unavailable(&'static str),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 400 with a message and no details.
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            message: message.into(),
            details: Value::Null,
        }
    }

    /// A 400 about one field.
    pub fn invalid_field(field: &str, message: impl std::fmt::Display) -> Self {
        ApiError::BadRequest {
            message: format!("{field}: {message}"),
            details: json!({ "field": field }),
        }
    }

    /// The HTTP status and the stable error code, in one place.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { .. } => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::InvalidUrl(_) => (StatusCode::BAD_REQUEST, "invalid_url"),
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::AliasTaken { .. } => (StatusCode::CONFLICT, "alias_taken"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::PreconditionFailed { .. } => {
                (StatusCode::PRECONDITION_FAILED, "precondition_failed")
            }
            ApiError::IdempotencyMismatch => {
                (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused")
            }
            ApiError::BlockedHost { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "blocked_host"),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::BadRequest { details, .. } => details.clone(),
            ApiError::Forbidden { required } => json!({ "required_scope": required }),
            ApiError::AliasTaken { code } => json!({ "code": code }),
            ApiError::PreconditionFailed { current, .. } => json!({ "current_etag": current }),
            ApiError::BlockedHost { host, rule } => json!({ "host": host, "rule": rule }),
            ApiError::RateLimited { retry_after } => json!({ "retry_after": retry_after }),
            _ => Value::Null,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Value {
        let (_, code) = self.status_and_code();
        json!({ "error": { "code": code, "message": self.to_string(), "details": self.details() } })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, _) = self.status_and_code();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = format!("{e:#}"), "internal error");
        }
        let mut response = (status, axum::Json(self.body())).into_response();
        if let ApiError::RateLimited { retry_after } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
