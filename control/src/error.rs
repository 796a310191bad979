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
    /// No credential, or one that is not an active key (`presented`: a
    /// token was sent, which the `WWW-Authenticate` challenge says).
    #[error("{}", if *presented { "the API key is not valid (unknown, revoked or expired)" } else { "an API key (Authorization: Bearer <key>) or a session (sign in: POST /v1/session) is required" })]
    Unauthorized { presented: bool },
    #[error("this API key (or your role) lacks the {required:?} scope")]
    Forbidden { required: &'static str },
    #[error("this route is the operator's; an organization's key cannot use it")]
    OperatorRequired,
    #[error("this route acts on an organization's data; an operator key has no organization")]
    OrganizationRequired,
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("the code {code:?} is already taken")]
    AliasTaken { code: String },
    #[error("{0}")]
    Conflict(String),
    #[error(
        "the request with this Idempotency-Key created the link {code:?}, which has since been deleted"
    )]
    LinkDeleted { code: String },
    #[error("the request body is larger than the limit of {limit} bytes")]
    PayloadTooLarge { limit: usize },
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

    // --- domains ---
    #[error("this organization has already claimed the domain {name:?}")]
    DomainExists { name: String },
    #[error(
        "the domain {name:?} cannot be claimed: another organization has verified it, or it is the deployment's own"
    )]
    DomainTaken { name: String },
    #[error(
        "the domain {name:?} still has {links} live links; delete them first, or delete with ?cascade=true"
    )]
    DomainInUse { name: String, links: i64 },
    #[error("the domain {name:?} is not one of this organization's domains")]
    UnknownDomain { name: String },
    #[error("the domain {name:?} could not be verified: {reason}")]
    VerificationFailed { name: String, reason: String },

    // --- accounts (users, sessions, members, one-time tokens) ---
    /// A signed-in user whose request acts on an organization without
    /// naming one (`X-Org`) while they belong to none or several.
    #[error(
        "this route acts on an organization's data: name one of yours with X-Org (its name or id); without it, only a member of exactly one acts in it"
    )]
    OrganizationNotChosen,
    #[error("you are not a member of the organization {org:?}")]
    NotMember { org: String },
    #[error("this needs the {required} role or higher in the organization")]
    RoleRequired { required: &'static str },
    #[error("{0}")]
    RoleNotAllowed(String),
    #[error("the e-mail address or the password is wrong")]
    InvalidCredentials,
    /// A route for a signed-in user, called without a live session.
    #[error(
        "sign in first (POST /v1/session): {}",
        if *presented { "the session cookie is not a live session (signed out, expired or replaced)" } else { "no session cookie was sent" }
    )]
    SessionRequired { presented: bool },
    #[error("{0}")]
    CsrfFailed(&'static str),
    #[error("the {what} token is not valid")]
    TokenInvalid { what: &'static str },
    #[error("the {what} token has been used already")]
    TokenUsed { what: &'static str },
    #[error("the {what} token has expired")]
    TokenExpired { what: &'static str },
    #[error("an organization keeps at least one owner")]
    LastOwner,
    // certificates
    #[error("the domain {name:?} is not verified yet; verify it before asking for a certificate")]
    DomainNotVerified { name: String },

    // --- exports ---
    /// A value of an export request the schema allows but the export
    /// cannot take (a range backwards or too long, an empty filter list).
    #[error("{message}")]
    InvalidExport { field: String, message: String },
    #[error("the export is {state}; its file can be downloaded once it is done")]
    ExportNotReady { state: String },
    #[error("the export failed: {error}")]
    ExportFailed { error: String },
    #[error("the export's file has expired and been deleted; start the export again")]
    ExportExpired,
    #[error(
        "the organization already has {limit} exports queued or running; wait for one to finish"
    )]
    TooManyExports { limit: u32 },
}

/// Seconds a caller with too many exports running is told to wait
/// (`Retry-After`): about how often a small export finishes.
pub const EXPORT_RETRY_AFTER: u64 = 30;

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
            ApiError::Unauthorized { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. }
            | ApiError::OperatorRequired
            | ApiError::OrganizationRequired => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::AliasTaken { .. } => (StatusCode::CONFLICT, "alias_taken"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            ApiError::LinkDeleted { .. } => (StatusCode::GONE, "link_deleted"),
            ApiError::PayloadTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
            }
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
            // domains
            ApiError::DomainExists { .. } => (StatusCode::CONFLICT, "domain_exists"),
            ApiError::DomainTaken { .. } => (StatusCode::CONFLICT, "domain_taken"),
            ApiError::DomainInUse { .. } => (StatusCode::CONFLICT, "domain_in_use"),
            ApiError::UnknownDomain { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unknown_domain"),
            ApiError::VerificationFailed { .. } => {
                (StatusCode::UNPROCESSABLE_ENTITY, "verification_failed")
            }
            // accounts
            ApiError::OrganizationNotChosen => (StatusCode::FORBIDDEN, "org_required"),
            ApiError::NotMember { .. }
            | ApiError::RoleRequired { .. }
            | ApiError::RoleNotAllowed(_) => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
            ApiError::SessionRequired { .. } => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::CsrfFailed(_) => (StatusCode::FORBIDDEN, "csrf_failed"),
            ApiError::TokenInvalid { .. } => (StatusCode::BAD_REQUEST, "token_invalid"),
            ApiError::TokenUsed { .. } => (StatusCode::GONE, "token_used"),
            ApiError::TokenExpired { .. } => (StatusCode::GONE, "token_expired"),
            ApiError::LastOwner => (StatusCode::CONFLICT, "last_owner"),
            ApiError::DomainNotVerified { .. } => (StatusCode::CONFLICT, "domain_not_verified"),
            // exports
            ApiError::InvalidExport { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_export"),
            ApiError::ExportNotReady { .. } => (StatusCode::CONFLICT, "export_not_ready"),
            ApiError::ExportFailed { .. } => (StatusCode::CONFLICT, "export_failed"),
            ApiError::ExportExpired => (StatusCode::GONE, "export_expired"),
            ApiError::TooManyExports { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_exports"),
        }
    }

    fn details(&self) -> Value {
        match self {
            ApiError::BadRequest { details, .. } => details.clone(),
            ApiError::Forbidden { required } => json!({ "required_scope": required }),
            ApiError::OperatorRequired => json!({ "required_principal": "operator" }),
            ApiError::OrganizationRequired => json!({ "required_principal": "organization" }),
            ApiError::LinkDeleted { code } => json!({ "code": code }),
            ApiError::PayloadTooLarge { limit } => json!({ "limit": limit }),
            ApiError::AliasTaken { code } => json!({ "code": code }),
            ApiError::PreconditionFailed { current, .. } => json!({ "current_etag": current }),
            ApiError::BlockedHost { host, rule } => json!({ "host": host, "rule": rule }),
            ApiError::RateLimited { retry_after } => json!({ "retry_after": retry_after }),
            ApiError::DomainExists { name }
            | ApiError::DomainTaken { name }
            | ApiError::UnknownDomain { name } => json!({ "domain": name }),
            ApiError::DomainInUse { name, links } => json!({ "domain": name, "links": links }),
            ApiError::VerificationFailed { name, reason } => {
                json!({ "domain": name, "reason": reason })
            }
            // accounts
            ApiError::OrganizationNotChosen => json!({ "header": "X-Org" }),
            ApiError::NotMember { org } => json!({ "org": org }),
            ApiError::RoleRequired { required } => json!({ "required_role": required }),
            ApiError::DomainNotVerified { name } => json!({ "domain": name }),
            // exports
            ApiError::InvalidExport { field, .. } => json!({ "field": field }),
            ApiError::ExportNotReady { state } => json!({ "state": state }),
            ApiError::ExportFailed { error } => json!({ "state": "failed", "error": error }),
            ApiError::TooManyExports { limit } => {
                json!({ "limit": limit, "retry_after": EXPORT_RETRY_AFTER })
            }
            _ => Value::Null,
        }
    }

    /// The JSON body of this error.
    pub fn body(&self) -> Value {
        let (_, code) = self.status_and_code();
        json!({ "error": { "code": code, "message": self.to_string(), "details": self.details() } })
    }
}

/// A database failure. Inputs are checked before they reach SQL (see
/// [`crate::text`]); should one still be refused by PostgreSQL as data
/// (SQLSTATE class 22: NUL in text, a value out of range, ...; or 23514, a
/// CHECK), it is the request's fault and a 400, never a 500. An unreachable
/// database is a 503.
impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if let Some(db) = e.as_database_error()
            && let Some(code) = db.code()
            && (code.starts_with("22") || code == "23514")
        {
            tracing::info!(sqlstate = %code, error = %db, "a request value refused by PostgreSQL");
            return ApiError::BadRequest {
                message: format!("a value in the request cannot be stored (SQLSTATE {code})"),
                details: json!({ "sqlstate": code }),
            };
        }
        if matches!(
            e,
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
        ) {
            tracing::warn!(error = %e, "PostgreSQL unavailable");
            return ApiError::Unavailable("PostgreSQL");
        }
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
        match self {
            ApiError::RateLimited { retry_after } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            }
            ApiError::TooManyExports { .. } => {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(EXPORT_RETRY_AFTER));
            }
            // RFC 6750 section 3: the challenge, and `invalid_token` when a
            // token was presented and refused.
            ApiError::Unauthorized { presented } => {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static(if presented {
                        r#"Bearer realm="shortener", error="invalid_token""#
                    } else {
                        r#"Bearer realm="shortener""#
                    }),
                );
            }
            _ => {}
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
