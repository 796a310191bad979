//! What a dashboard page answers when it cannot be shown: a redirect to
//! sign in, or an HTML page with the API's status and message.

use crate::error::ApiError;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::html;

/// A page's failure.
#[derive(Debug)]
pub enum PageError {
    /// No live session: to the sign-in page.
    SignIn,
    /// The API's error, shown as a page with its status.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::SessionRequired { .. } | ApiError::Unauthorized { .. } => PageError::SignIn,
            e => PageError::Api(e),
        }
    }
}

impl From<sqlx::Error> for PageError {
    fn from(e: sqlx::Error) -> Self {
        PageError::Api(e.into())
    }
}

pub type PageResult<T> = Result<T, PageError>;

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let e = match self {
            PageError::SignIn => return Redirect::to("/signin").into_response(),
            PageError::Api(e) => e,
        };
        let (status, code) = e.status_and_code();
        if let ApiError::Internal(inner) = &e {
            tracing::error!(
                error = format!("{inner:#}"),
                "internal error on a dashboard page"
            );
        }
        let title = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            (maud::DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    title { (title) }
                    link rel="stylesheet" href=(crate::dashboard::assets::url("dashboard.css"));
                }
                body {
                    main {
                        h1 { (status.as_u16()) " " (title) }
                        p.form-error data-code=(code) { (e.to_string()) }
                        p { a href="/" { "Back to the dashboard" } }
                    }
                }
            }
        };
        let mut r = (status, Html(body.into_string())).into_response();
        if let ApiError::RateLimited { retry_after } = e {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
        }
        r
    }
}
