//! `GET /` (to the user's organization), `GET`/`POST /signin`, `POST /signout`.

use crate::accounts::sessions::{Login, sign_in, sign_out};
use crate::auth::SignedIn;
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::form::PageForm;
use crate::dashboard::layout::{bare_page, respond, sign_out as sign_out_button};
use crate::dashboard::session::Visitor;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use serde::Deserialize;
use std::net::SocketAddr;

/// `GET /`: the first organization's overview.
pub async fn root(visitor: Visitor) -> Response {
    match visitor.user.memberships.first() {
        Some(m) => Redirect::to(&format!("/o/{}", m.org_id)).into_response(),
        None => respond(
            StatusCode::OK,
            bare_page(
                "No organization",
                html! {
                    h1 { "You belong to no organization yet" }
                    p { "Signed in as " (visitor.user.email) ". Ask an organization's admin for an invitation." }
                    (sign_out_button(&visitor))
                },
            ),
        ),
    }
}

/// The sign-in form, with the address typed and the error, if any.
fn form(email: &str, error: Option<&str>) -> maud::Markup {
    bare_page(
        "Sign in",
        html! {
            div.signin.card {
                h1 { "Sign in" }
                @if let Some(e) = error {
                    p.form-error #signin-error role="alert" { (e) }
                }
                form method="post" action="/signin" {
                    div.field {
                        label for="email" { "E-mail" }
                        input #email type="email" name="email" value=(email) required autocomplete="username" autofocus;
                    }
                    div.field {
                        label for="password" { "Password" }
                        input #password type="password" name="password" required autocomplete="current-password";
                    }
                    button type="submit" { "Sign in" }
                }
                p { a href="/forgot-password" { "Forgot your password?" } }
            }
        },
    )
}

/// `GET /signin`: the form, or home when already signed in.
pub async fn page(visitor: Result<Visitor, PageError>) -> Response {
    match visitor {
        Ok(_) => Redirect::to("/").into_response(),
        Err(_) => respond(StatusCode::OK, form("", None)),
    }
}

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    #[serde(default)]
    pub email: String,
    #[serde(default)]
    pub password: String,
}

/// `POST /signin`: the API's sign-in; home with the cookie, or the form
/// again with the address kept and the reason.
pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    PageForm(f): PageForm<SignInForm>,
) -> PageResult<Response> {
    let login = Login {
        email: f.email.clone(),
        password: f.password,
    };
    match sign_in(&state, peer, &headers, &login).await {
        Ok((_, cookie)) => {
            let mut r = Redirect::to("/").into_response();
            r.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
            );
            Ok(r)
        }
        Err(e @ ApiError::Internal(_)) | Err(e @ ApiError::Unavailable(_)) => Err(e.into()),
        Err(e) => {
            let (status, _) = e.status_and_code();
            Ok(respond(status, form(&f.email, Some(&e.to_string()))))
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /signout`: ends the session, back to the sign-in page.
pub async fn sign_out_submit(
    State(state): State<AppState>,
    visitor: Visitor,
    PageForm(f): PageForm<CsrfForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let cookie = sign_out(
        &state,
        &SignedIn {
            user: visitor.user.clone(),
            ip: visitor.ip,
        },
    )
    .await?;
    let mut r = Redirect::to("/signin").into_response();
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(r)
}
