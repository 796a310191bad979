//! Every way an admin request fails, each with its one status and one code.
//!
//! Handlers return `Result<_, AdminError>`; [`AdminError::status`] is the
//! only place a failure becomes a status and a code, and every error body has
//! the same shape: `{"error":{"code":..,"message":..,"details":{}}}`.

use crate::loader::LoadError;
use crate::tls_control::PushError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// `PUT /snapshot` without the configured bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// The request body could not be read.
    #[error("reading the body failed: {0}")]
    Body(#[source] axum::Error),
    /// A pushed body longer than `max_snapshot_bytes`.
    #[error("a pushed snapshot is at most {max} bytes (--max-snapshot-bytes)")]
    TooLarge { max: u64 },
    /// Another upload is under way.
    #[error("another snapshot upload is under way; retry in {retry_after} s")]
    Busy { retry_after: u64 },
    /// The query string is not understood.
    #[error("{0}")]
    BadQuery(String),
    /// The pushed file could not be written down before checking it.
    #[error("storing the pushed snapshot in {dir} failed ({step}): {source}")]
    Spool {
        /// What failed: creating the file, writing, or fsync.
        step: &'static str,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The pushed snapshot was refused or could not be installed.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The install task died (a bug, not the request).
    #[error("{0}")]
    Internal(String),
    /// `PUT /certs/NAME` on an engine without `--tls-listen`.
    #[error("TLS is off on this engine (no --tls-listen)")]
    TlsOff,
    /// A pushed certificate pair larger than the limit.
    #[error("a pushed certificate pair is at most {max} bytes")]
    CertTooLarge { max: usize },
    /// `DELETE /certs/NAME` for a name nothing was pushed under.
    #[error("no pushed certificate pair named {0:?}")]
    NoSuchCert(String),
    /// A pushed certificate pair was refused or could not be stored.
    #[error(transparent)]
    Cert(#[from] crate::tls_control::PushError),
}

impl AdminError {
    /// The answer's status and its machine-readable code.
    pub fn status(&self) -> (StatusCode, &'static str) {
        match self {
            AdminError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AdminError::Body(_) => (StatusCode::BAD_REQUEST, "body_error"),
            AdminError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AdminError::Busy { .. } => (StatusCode::TOO_MANY_REQUESTS, "push_in_progress"),
            AdminError::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            AdminError::Load(LoadError::Implausible { .. }) => {
                (StatusCode::CONFLICT, "implausible_sequence")
            }
            AdminError::Load(LoadError::Invalid(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "invalid_snapshot")
            }
            AdminError::Load(LoadError::Stale { .. }) => (StatusCode::CONFLICT, "stale_snapshot"),
            AdminError::Spool { .. } | AdminError::Load(LoadError::Store { .. }) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
            }
            AdminError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AdminError::TlsOff => (StatusCode::NOT_FOUND, "tls_off"),
            AdminError::CertTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
            AdminError::NoSuchCert(_) => (StatusCode::NOT_FOUND, "no_such_certificate"),
            AdminError::Cert(PushError::Store { .. }) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "store_failed")
            }
            AdminError::Cert(PushError::Shadowed(_)) => (StatusCode::CONFLICT, "shadowed"),
            AdminError::Cert(_) => (StatusCode::BAD_REQUEST, "invalid_certificate"),
        }
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let (status, code) = self.status();
        let details = match &self {
            AdminError::Load(LoadError::Implausible {
                offered,
                known,
                lead,
            }) => json!({"offered": offered, "known": known, "max_lead": lead}),
            _ => json!({}),
        };
        let body =
            json!({"error": {"code": code, "message": self.to_string(), "details": details}});
        let mut response = (status, axum::Json(body)).into_response();
        if let AdminError::Busy { retry_after } = self {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_status_and_code() {
        let stale = AdminError::from(LoadError::Stale {
            offered: 1,
            served: 2,
        });
        assert_eq!(stale.status(), (StatusCode::CONFLICT, "stale_snapshot"));
        assert_eq!(
            stale.to_string(),
            "snapshot sequence 1 is older than the served sequence 2"
        );
        assert_eq!(
            AdminError::TooLarge { max: 9 }.status(),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        assert_eq!(
            AdminError::Unauthorized.status(),
            (StatusCode::UNAUTHORIZED, "unauthorized")
        );
        let implausible = AdminError::from(LoadError::Implausible {
            offered: u64::MAX,
            known: 7,
            lead: 100_000,
        });
        assert_eq!(
            implausible.status(),
            (StatusCode::CONFLICT, "implausible_sequence")
        );
        let busy = AdminError::Busy { retry_after: 5 }.into_response();
        assert_eq!(busy.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(busy.headers()["retry-after"], "5");
    }
}
