//! The organization's custom domains: the list (state, certificate state
//! and expiry) and the form that claims a name. One domain's page is
//! [`super::domain_page`]. Both call `domains::actions` and
//! `acme::api`, the functions behind `/v1/domains`, so the rules (who may,
//! which names) are the API's.

use crate::acme::api::certificate_status;
use crate::acme::store::CertificateStatus;
use crate::auth::Auth;
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{FormError, PageForm, PageQuery, form_level, text_field};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::date;
use crate::dashboard::session::{OrgPage, Visitor};
use crate::domains::actions::{create_domain, list_domains, may_write};
use crate::domains::model::DomainRow;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The claim form as typed.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClaimForm {
    pub csrf: String,
    pub name: String,
}

/// `?deleted=NAME`: the list after a delete says what went.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListParams {
    pub deleted: String,
}

/// A domain's page (`suffix`: `""`, `"/verify"`, `"/delete"`...).
pub fn domain_path(page: &OrgPage, name: &str, suffix: &str) -> String {
    format!("{}/domains/{name}{suffix}", page.base())
}

/// The certificate of a verified domain, if https was ever asked for
/// (read through the API's own check; a pending domain has none to show).
pub async fn certificate_of(
    state: &AppState,
    auth: &Auth,
    row: &DomainRow,
) -> PageResult<Option<CertificateStatus>> {
    if row.verified_at.is_none() {
        return Ok(None);
    }
    match certificate_status(state, auth, &row.name).await {
        Ok(c) => Ok(Some(c)),
        Err(ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// The domain's state as a badge.
pub fn state_badge(row: &DomainRow) -> Markup {
    html! {
        @if row.verified_at.is_some() {
            span.badge-ok { "verified" }
        } @else {
            span.badge-wait { "pending" }
        }
    }
}

/// A certificate's state, with its expiry when it has one.
pub fn certificate_summary(row: &DomainRow, cert: Option<&CertificateStatus>) -> Markup {
    html! {
        @if row.verified_at.is_none() {
            span.muted { "after verification" }
        } @else if let Some(c) = cert {
            @if c.status == "failing" { span.badge-off { (c.status) } } @else { (c.status) }
            @if let Some(end) = c.not_after { br; span.muted { "expires " (date(end)) } }
        } @else {
            span.muted { "none" }
        }
    }
}

fn body(
    page: &OrgPage,
    rows: &[(DomainRow, Option<CertificateStatus>)],
    form: &ClaimForm,
    error: Option<&FormError>,
    notice: Option<String>,
) -> Markup {
    let can_write = may_write(&page.auth).is_ok();
    html! {
        h1 { "Domains" }
        @if let Some(n) = notice { div.notice #notice role="status" { (n) } }
        p.muted { "Short links on the organization's own names (go.brand.example/launch). A domain is served once it is verified." }
        table #domains {
            thead { tr { th { "Domain" } th { "State" } th { "Certificate" } th { "Claimed (UTC)" } } }
            tbody {
                @for (d, cert) in rows {
                    tr data-domain=(d.name) {
                        td { a href=(domain_path(page, &d.name, "")) { (d.name) } }
                        td.state { (state_badge(d)) }
                        td.certificate { (certificate_summary(d, cert.as_ref())) }
                        td.muted { (date(d.created_at)) }
                    }
                }
            }
        }
        @if rows.is_empty() { p.muted #no-domains { "No domains yet." } }
        @if can_write {
            h2 { "Claim a domain" }
            div.card {
                (form_level(error, &["name"]))
                form #claim-form method="post" action=(format!("{}/domains", page.base())) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    (text_field("name", "Domain name", "text", &form.name, Some("A host name whose zone you control, e.g. go.brand.example. Its links are not served until it is verified."), error))
                    button #claim type="submit" { "Claim" }
                }
            }
        }
    }
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    status: StatusCode,
    form: &ClaimForm,
    error: Option<&FormError>,
    notice: Option<String>,
) -> PageResult<Response> {
    let mut rows = Vec::new();
    for d in list_domains(state, &page.auth).await? {
        let cert = certificate_of(state, &page.auth, &d).await?;
        rows.push((d, cert));
    }
    Ok(respond(
        status,
        org_page(
            page,
            Section::Domains,
            "Domains",
            body(page, &rows, form, error, notice),
        ),
    ))
}

/// `GET /o/{org}/domains`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageQuery(p): PageQuery<ListParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    // Only a host name is echoed back (no text of the URL's choosing).
    let notice = crate::domains::input::normalize_name("deleted", &p.deleted)
        .ok()
        .map(|name| format!("Deleted {name}."));
    render(
        &state,
        &page,
        StatusCode::OK,
        &ClaimForm::default(),
        None,
        notice,
    )
    .await
}

/// `POST /o/{org}/domains`: the API's claim; to the new domain's page,
/// which says what to publish.
pub async fn claim(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageForm(f): PageForm<ClaimForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    match create_domain(&state, &page.auth, &f.name).await {
        Ok(row) => {
            let to = format!("{}?done=claimed", domain_path(&page, &row.name, ""));
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) if FormError::shows_in_form(&e) => {
            let fe = FormError::from_api(&e);
            render(&state, &page, e.status_and_code().0, &f, Some(&fe), None).await
        }
        Err(e) => Err(e.into()),
    }
}
