//! The pages the mails link to: accepting an invitation, setting a new
//! password with a reset token, and asking for one. The token comes in the
//! link's fragment (`#token=`, never sent to a server); `dashboard.js` puts
//! it into the form. The writes are the API's own functions.

use crate::accounts::invitations::{Accept, accept_invitation};
use crate::accounts::reset::{
    RESET_REQUESTED, ResetConfirm, ResetRequest, confirm_reset, request_reset,
};
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{FormError, PageForm, form_level, text_field};
use crate::dashboard::layout::{bare_page, respond};
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct TokenForm {
    pub token: String,
    pub password: String,
    pub email: String,
}

fn token_field() -> Markup {
    html! { input #token type="hidden" name="token" data-token-from-fragment; }
}

fn card(title: &str, body: Markup) -> Markup {
    bare_page(title, html! { div.signin.card { h1 { (title) } (body) } })
}

fn done(title: &str, message: &str) -> Response {
    respond(
        StatusCode::OK,
        card(
            title,
            html! {
                p.notice #done role="status" { (message) }
                p { a.button href="/signin" { "Sign in" } }
            },
        ),
    )
}

/// Errors about the token (invalid, used, expired) or the password show on
/// the form; anything else is an error page.
fn form_error(e: ApiError) -> Result<(StatusCode, FormError), ApiError> {
    match e {
        ApiError::TokenInvalid { .. }
        | ApiError::TokenUsed { .. }
        | ApiError::TokenExpired { .. }
        | ApiError::RateLimited { .. } => Ok((
            e.status_and_code().0,
            FormError {
                field: None,
                message: e.to_string(),
            },
        )),
        e if FormError::shows_in_form(&e) => Ok((e.status_and_code().0, FormError::from_api(&e))),
        e => Err(e),
    }
}

fn invitation_form(error: Option<&FormError>) -> Markup {
    card(
        "Accept the invitation",
        html! {
            (form_level(error, &["password"]))
            form #accept-form method="post" action="/accept-invitation" {
                (token_field())
                (text_field("password", "Choose a password", "password", "", Some("Only if you have no account yet; leave it empty to join with the account you have."), error))
                button type="submit" { "Join" }
            }
        },
    )
}

/// `GET /accept-invitation#token=...`.
pub async fn invitation_page() -> Response {
    respond(StatusCode::OK, invitation_form(None))
}

/// `POST /accept-invitation`.
pub async fn accept(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(f): PageForm<TokenForm>,
) -> PageResult<Response> {
    let req = Accept {
        token: f.token,
        password: (!f.password.is_empty()).then_some(f.password),
    };
    match accept_invitation(&state, peer, &headers, &req).await {
        Ok(a) => Ok(done(
            "Welcome",
            &format!(
                "{} is now {} of {}.",
                a.email,
                crate::accounts::members::with_article(a.role),
                a.org
            ),
        )),
        Err(e) => {
            let (status, fe) = form_error(e)?;
            Ok(respond(status, invitation_form(Some(&fe))))
        }
    }
}

fn reset_form(error: Option<&FormError>) -> Markup {
    card(
        "Set a new password",
        html! {
            (form_level(error, &["password"]))
            form #reset-form method="post" action="/reset-password" {
                (token_field())
                (text_field("password", "New password", "password", "", Some("Setting it signs you out everywhere."), error))
                button type="submit" { "Set password" }
            }
        },
    )
}

/// `GET /reset-password#token=...`.
pub async fn reset_page() -> Response {
    respond(StatusCode::OK, reset_form(None))
}

/// `POST /reset-password`.
pub async fn reset(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(f): PageForm<TokenForm>,
) -> PageResult<Response> {
    let req = ResetConfirm {
        token: f.token,
        password: f.password,
    };
    match confirm_reset(&state, peer, &headers, &req).await {
        Ok(_) => Ok(done(
            "Password set",
            "Your new password is set; every session you had has ended.",
        )),
        Err(e) => {
            let (status, fe) = form_error(e)?;
            Ok(respond(status, reset_form(Some(&fe))))
        }
    }
}

fn forgot_form(email: &str, error: Option<&FormError>) -> Markup {
    card(
        "Forgot your password?",
        html! {
            (form_level(error, &["email"]))
            form #forgot-form method="post" action="/forgot-password" {
                (text_field("email", "E-mail", "email", email, Some("We mail a link to set a new one, valid for an hour."), error))
                button type="submit" { "Send the link" }
            }
        },
    )
}

/// `GET /forgot-password`.
pub async fn forgot_page() -> Response {
    respond(StatusCode::OK, forgot_form("", None))
}

/// `POST /forgot-password`: the same answer whatever the address.
pub async fn forgot(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(f): PageForm<TokenForm>,
) -> PageResult<Response> {
    let req = ResetRequest {
        email: f.email.trim().to_owned(),
    };
    match request_reset(&state, peer, &headers, &req).await {
        Ok(()) => Ok(done(
            "Check your mail",
            &format!("{}.", capitalized(RESET_REQUESTED)),
        )),
        Err(e) => {
            let (status, fe) = form_error(e)?;
            Ok(respond(status, forgot_form(&f.email, Some(&fe))))
        }
    }
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}
