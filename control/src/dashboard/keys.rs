//! API keys: the list, a new key (its secret shown once, on the answer to
//! the form, never again), revoking.

use crate::auth::Scope;
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{FormError, PageForm, form_level, text_field, utc_time_field};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::date;
use crate::dashboard::session::{OrgPage, Visitor};
use crate::keys::{CreateKey, KeyInfo, create_key, list_keys, revoke_key};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The new-key form as typed. Scopes are one checkbox each.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct KeyForm {
    pub csrf: String,
    pub name: String,
    pub scope_links_read: Option<String>,
    pub scope_links_write: Option<String>,
    pub scope_stats_read: Option<String>,
    pub scope_admin: Option<String>,
    /// `YYYY-MM-DDTHH:MM` in UTC (a `datetime-local` input), or empty: never.
    pub expires_at: String,
}

impl KeyForm {
    fn scopes(&self) -> Vec<String> {
        [
            (&self.scope_links_read, Scope::LinksRead),
            (&self.scope_links_write, Scope::LinksWrite),
            (&self.scope_stats_read, Scope::StatsRead),
            (&self.scope_admin, Scope::Admin),
        ]
        .into_iter()
        .filter(|(on, _)| on.is_some())
        .map(|(_, s)| s.as_str().to_owned())
        .collect()
    }

    fn checked(&self, scope: Scope) -> bool {
        match scope {
            Scope::LinksRead => self.scope_links_read.is_some(),
            Scope::LinksWrite => self.scope_links_write.is_some(),
            Scope::StatsRead => self.scope_stats_read.is_some(),
            Scope::Admin => self.scope_admin.is_some(),
        }
    }
}

fn field_name(scope: Scope) -> &'static str {
    match scope {
        Scope::LinksRead => "scope_links_read",
        Scope::LinksWrite => "scope_links_write",
        Scope::StatsRead => "scope_stats_read",
        Scope::Admin => "scope_admin",
    }
}

fn body(
    page: &OrgPage,
    keys: &[KeyInfo],
    form: &KeyForm,
    error: Option<&FormError>,
    secret: Option<&(KeyInfo, String)>,
) -> Markup {
    let base = page.base();
    html! {
        h1 { "API keys" }
        @if let Some((info, secret)) = secret {
            div.notice #new-key role="status" {
                p { "The key " b { (info.name) } " (" (info.prefix) "). Copy it now: it is not shown again." }
                p { code.secret #secret { (secret) } }
            }
        }
        table #keys {
            thead { tr { th { "Name" } th { "Prefix" } th { "Scopes" } th { "Created" } th { "Last used" } th { "Expires" } th {} } }
            tbody {
                @for k in keys {
                    tr data-prefix=(k.prefix) {
                        td { (k.name) }
                        td { code { (k.prefix) } }
                        td { (k.scopes.join(", ")) }
                        td.muted { (date(k.created_at)) }
                        td.muted { (k.last_used_at.map(date).unwrap_or_else(|| "never".into())) }
                        td.muted { (k.expires_at.map(date).unwrap_or_else(|| "never".into())) }
                        td {
                            @if let Some(at) = k.revoked_at {
                                span.badge-off { "revoked " (date(at)) }
                            } @else {
                                form.inline method="post" action=(format!("{base}/keys/{}/revoke", k.id)) {
                                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if keys.is_empty() { p.muted { "No keys yet." } }
        h2 { "New key" }
        div.card {
            (form_level(error, &["name", "scopes", "expires_at"]))
            form #key-form method="post" action=(format!("{base}/keys")) {
                input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                (text_field("name", "Name", "text", &form.name, Some("Who or what uses it."), error))
                div.field {
                    label { "Scopes" }
                    @for s in Scope::ALL {
                        label.check { input type="checkbox" name=(field_name(s)) checked[form.checked(s)]; (s.as_str()) }
                    }
                    @if let Some(m) = crate::dashboard::form::error_for(error, "scopes") { div.error #scopes-error { (m) } }
                }
                (text_field("expires_at", "Expires at (UTC)", "datetime-local", &form.expires_at, Some("Empty: never. A key past it is refused like a revoked one."), error))
                button #create-key type="submit" { "Create key" }
            }
        }
    }
}

/// `GET /o/{org}/keys`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let keys = list_keys(&state, &page.auth).await?;
    let form = KeyForm {
        scope_links_read: Some("on".into()),
        ..KeyForm::default()
    };
    Ok(respond(
        StatusCode::OK,
        org_page(
            &page,
            Section::Keys,
            "API keys",
            body(&page, &keys, &form, None, None),
        ),
    ))
}

/// `POST /o/{org}/keys`: the new key's secret on this answer only.
pub async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageForm(f): PageForm<KeyForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let (status, created, error) = match utc_time_field("expires_at", &f.expires_at) {
        Err(e) => (StatusCode::BAD_REQUEST, None, Some(e)),
        Ok(expires_at) => {
            let req = CreateKey {
                name: f.name.trim().to_owned(),
                scopes: f.scopes(),
                expires_at,
            };
            match create_key(&state, &page.auth, &req).await {
                Ok(created) => (StatusCode::CREATED, Some(created), None),
                Err(e) if FormError::shows_in_form(&e) => {
                    (e.status_and_code().0, None, Some(FormError::from_api(&e)))
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    let keys = list_keys(&state, &page.auth).await?;
    let form = if created.is_some() {
        KeyForm::default()
    } else {
        f
    };
    Ok(respond(
        status,
        org_page(
            &page,
            Section::Keys,
            "API keys",
            body(&page, &keys, &form, error.as_ref(), created.as_ref()),
        ),
    ))
}

#[derive(Debug, Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    pub csrf: String,
}

/// `POST /o/{org}/keys/{id}/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, id)): Path<(String, i64)>,
    PageForm(f): PageForm<RevokeForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    revoke_key(&state, &page.auth, id).await?;
    Ok(Redirect::to(&format!("{}/keys", page.base())).into_response())
}
