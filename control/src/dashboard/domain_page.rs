//! One domain's page: its state; while pending, exactly what to publish
//! (per the deployment's `--domain-verification`) and a Verify button whose
//! failure shows the reason; its settings (root and not-found redirects,
//! plain-HTTP mode, HSTS); its certificate and, when ACME is configured,
//! the button that orders one; and delete, behind a confirmation page.
//! Every write is `domains::actions` or `acme::api`, as over the API.

use crate::acme::api::{may_request, request_certificate};
use crate::acme::store::CertificateStatus;
use crate::dashboard::domains::{certificate_of, certificate_summary, domain_path, state_badge};
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{FormError, PageForm, PageQuery, form_level, non_empty, text_field};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::date;
use crate::dashboard::session::{OrgPage, Visitor};
use crate::dashboard::signin::CsrfForm;
use crate::domains::actions::{
    delete_domain, domain_links, get_domain, may_write, update_domain, verify_domain,
};
use crate::domains::input::{MAX_HSTS_MAX_AGE, PatchDomain};
use crate::domains::model::DomainRow;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// The settings form as typed (every field of the API's patch).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(default)]
pub struct SettingsForm {
    pub csrf: String,
    pub root_redirect: String,
    pub not_found_redirect: String,
    pub http_mode: String,
    /// Seconds, or empty: no `Strict-Transport-Security` header.
    pub hsts_max_age: String,
}

impl SettingsForm {
    fn from_row(row: &DomainRow) -> SettingsForm {
        SettingsForm {
            root_redirect: row.root_redirect.clone().unwrap_or_default(),
            not_found_redirect: row.not_found_redirect.clone().unwrap_or_default(),
            http_mode: row.http_mode.clone(),
            hsts_max_age: row.hsts_max_age.map(|a| a.to_string()).unwrap_or_default(),
            ..SettingsForm::default()
        }
    }

    /// The API's patch, setting every field (empty clears).
    fn to_patch(&self) -> Result<PatchDomain, FormError> {
        let hsts = match self.hsts_max_age.trim() {
            "" => None,
            s => Some(s.parse::<i32>().map_err(|_| {
                FormError::field(
                    "hsts_max_age",
                    format!("must be a number of seconds, 0 to {MAX_HSTS_MAX_AGE}, or empty for no header"),
                )
            })?),
        };
        Ok(PatchDomain {
            root_redirect: Some(non_empty(&self.root_redirect)),
            not_found_redirect: Some(non_empty(&self.not_found_redirect)),
            http_mode: Some(self.http_mode.trim().to_owned()),
            hsts_max_age: Some(hsts),
        })
    }
}

/// `?done=`: what the last write did, said once above the page.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DoneParams {
    pub done: String,
}

fn done_notice(done: &str) -> Option<&'static str> {
    match done {
        "claimed" => Some("Claimed. Publish the proof below, then verify."),
        "verified" => Some("Verified: the engines serve this domain's links."),
        "saved" => Some("Settings saved; the engines have them within a second or so."),
        "ordered" => Some("Certificate ordered; its state below changes once the CA answers."),
        _ => None,
    }
}

/// What the page shows beside the domain: a form as typed, and an error
/// in the part it is about.
#[derive(Debug, Default)]
struct Shown {
    settings: Option<SettingsForm>,
    settings_error: Option<FormError>,
    verify_error: Option<String>,
    certificate_error: Option<String>,
    notice: Option<&'static str>,
}

fn publish_card(state: &AppState, page: &OrgPage, row: &DomainRow, shown: &Shown) -> Markup {
    let method = state.config.domain_verification;
    let Some(v) = row.to_json(method).verification else {
        return html! {};
    };
    html! {
        div.card #publish {
            h2 { "Prove the name is yours" }
            @if method.needs_dns() {
                p { "Publish this TXT record in " b { (row.name) } "'s zone:" }
                dl.props {
                    dt { "Name" } dd { code #txt-name { (v.txt_record) } }
                    dt { "Type" } dd { "TXT" }
                    dt { "Value" } dd { code #txt-value { (v.token) } }
                }
            }
            @if method.needs_http() {
                p { "Point " b { (row.name) } " at the redirect engines (a CNAME to the deployment's short domain, or its addresses). Once it does, this URL answers the token:" }
                dl.props {
                    dt { "URL" } dd { code #verify-url { (v.url) } }
                    dt { "Answers" } dd { code #verify-token { (v.token) } }
                }
            } @else {
                p.muted { "Point " (row.name) " at the redirect engines too (a CNAME to the deployment's short domain, or its addresses), so that they receive its visitors." }
            }
            @if let Some(reason) = &shown.verify_error {
                p.form-error #verify-error role="alert" { (reason) }
            }
            @if may_write(&page.auth).is_ok() {
                form.inline #verify-form method="post" action=(domain_path(page, &row.name, "/verify")) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    button #verify type="submit" { "Verify now" }
                }
            }
        }
    }
}

fn settings_card(page: &OrgPage, row: &DomainRow, shown: &Shown) -> Markup {
    let stored = SettingsForm::from_row(row);
    let f = shown.settings.as_ref().unwrap_or(&stored);
    let error = shown.settings_error.as_ref();
    const FIELDS: &[&str] = &[
        "root_redirect",
        "not_found_redirect",
        "http_mode",
        "hsts_max_age",
    ];
    let shown_or = |v: &Option<String>| v.clone().unwrap_or_else(|| "none".into());
    html! {
        div.card #settings {
            h2 { "Settings" }
            @if may_write(&page.auth).is_ok() {
                (form_level(error, FIELDS))
                form #settings-form method="post" action=(domain_path(page, &row.name, "")) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    (text_field("root_redirect", "Root redirect", "text", &f.root_redirect, Some(&format!("Where {}/ itself redirects (302). Empty: not found.", row.name)), error))
                    (text_field("not_found_redirect", "Not-found redirect", "text", &f.not_found_redirect, Some("Where an unknown code redirects (302). Empty: a plain 404."), error))
                    div.field {
                        label for="http_mode" { "Plain HTTP" }
                        select #http_mode name="http_mode" {
                            option value="serve" selected[f.http_mode == "serve"] { "Serve links over plain HTTP too" }
                            option value="redirect-https" selected[f.http_mode == "redirect-https"] { "Redirect plain HTTP to https (308)" }
                        }
                        @if let Some(m) = crate::dashboard::form::error_for(error, "http_mode") { div.error #http_mode-error { (m) } }
                    }
                    (text_field("hsts_max_age", "HSTS max-age (seconds)", "text", &f.hsts_max_age, Some("Strict-Transport-Security on https answers, e.g. 31536000 (a year). Empty: no header."), error))
                    button #save-settings type="submit" { "Save settings" }
                }
            } @else {
                dl.props #settings-view {
                    dt { "Root redirect" } dd { (shown_or(&row.root_redirect)) }
                    dt { "Not-found redirect" } dd { (shown_or(&row.not_found_redirect)) }
                    dt { "Plain HTTP" } dd { (row.http_mode) }
                    dt { "HSTS max-age" } dd { (row.hsts_max_age.map(|a| a.to_string()).unwrap_or_else(|| "no header".into())) }
                }
            }
        }
    }
}

fn certificate_card(
    state: &AppState,
    page: &OrgPage,
    row: &DomainRow,
    cert: Option<&CertificateStatus>,
    shown: &Shown,
) -> Markup {
    let verified = row.verified_at.is_some();
    let may_order = state.acme.is_some() && verified && may_request(&page.auth).is_ok();
    html! {
        div.card #certificate {
            h2 { "Certificate (https)" }
            dl.props {
                dt { "State" } dd #certificate-state { (certificate_summary(row, cert)) }
                @if let Some(c) = cert {
                    @if let Some(end) = c.not_after { dt { "Expires (UTC)" } dd #certificate-expiry { (date(end)) } }
                    dt { "Next order (UTC)" } dd { (date(c.renew_at)) }
                    @if let Some(e) = &c.last_error { dt { "Last error" } dd #certificate-error { (e) } }
                }
            }
            @if let Some(e) = &shown.certificate_error {
                p.form-error #order-error role="alert" { (e) }
            }
            @if state.acme.is_none() {
                p.muted { "This deployment does not order certificates (no ACME CA is configured)." }
            } @else if !verified {
                p.muted { "A certificate can be ordered once the domain is verified." }
            } @else if may_order {
                form.inline method="post" action=(domain_path(page, &row.name, "/certificate")) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    button #order-certificate type="submit" {
                        @if cert.is_some_and(|c| c.chain_pem.is_some()) { "Renew now" } @else { "Order a certificate" }
                    }
                }
            } @else {
                p.muted { "An admin of the organization orders certificates." }
            }
        }
    }
}

async fn render(
    state: &AppState,
    page: &OrgPage,
    row: &DomainRow,
    status: StatusCode,
    shown: Shown,
) -> PageResult<Response> {
    let cert = certificate_of(state, &page.auth, row).await?;
    let body = html! {
        div.toolbar {
            h1.grow #domain-name { (row.name) }
            @if may_write(&page.auth).is_ok() {
                a.button.danger #delete-domain href=(domain_path(page, &row.name, "/delete")) { "Delete…" }
            }
        }
        @if let Some(n) = shown.notice { div.notice #notice role="status" { (n) } }
        dl.props.summary {
            dt { "State" } dd #domain-state { (state_badge(row)) }
            @if let Some(at) = row.verified_at { dt { "Verified (UTC)" } dd { (date(at)) } }
            dt { "Claimed (UTC)" } dd { (date(row.created_at)) }
            dt { "Links" } dd { a href=(format!("{}/links?domain={}", page.base(), row.name)) { "this domain's links" } }
        }
        (publish_card(state, page, row, &shown))
        (settings_card(page, row, &shown))
        (certificate_card(state, page, row, cert.as_ref(), &shown))
        p { a href=(format!("{}/domains", page.base())) { "← All domains" } }
    };
    Ok(respond(
        status,
        org_page(page, Section::Domains, &row.name, body),
    ))
}

/// To the domain's page after a write, which says what it did.
fn to_the_page(page: &OrgPage, name: &str, done: &str) -> Response {
    Redirect::to(&format!("{}?done={done}", domain_path(page, name, ""))).into_response()
}

/// `GET /o/{org}/domains/{name}`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
    PageQuery(p): PageQuery<DoneParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let row = get_domain(&state, &page.auth, &name).await?;
    let shown = Shown {
        notice: done_notice(&p.done),
        ..Shown::default()
    };
    render(&state, &page, &row, StatusCode::OK, shown).await
}

/// `POST /o/{org}/domains/{name}`: the settings (the API's patch).
pub async fn save_settings(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
    PageForm(f): PageForm<SettingsForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    may_write(&page.auth)?;
    let result = match f.to_patch() {
        Ok(patch) => update_domain(&state, &page.auth, &name, patch).await,
        Err(fe) => {
            let row = get_domain(&state, &page.auth, &name).await?;
            let shown = Shown {
                settings: Some(f),
                settings_error: Some(fe),
                ..Shown::default()
            };
            return render(&state, &page, &row, StatusCode::BAD_REQUEST, shown).await;
        }
    };
    match result {
        Ok(row) => Ok(to_the_page(&page, &row.name, "saved")),
        Err(e) if FormError::shows_in_form(&e) => {
            let row = get_domain(&state, &page.auth, &name).await?;
            let shown = Shown {
                settings: Some(f),
                settings_error: Some(FormError::from_api(&e)),
                ..Shown::default()
            };
            render(&state, &page, &row, e.status_and_code().0, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /o/{org}/domains/{name}/verify`: the API's verify; a failure
/// shows its reason in the card that says what to publish.
pub async fn verify(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
    PageForm(f): PageForm<CsrfForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    match verify_domain(&state, &page.auth, &name).await {
        Ok(row) => Ok(to_the_page(&page, &row.name, "verified")),
        Err(e @ (ApiError::VerificationFailed { .. } | ApiError::DomainTaken { .. })) => {
            let row = get_domain(&state, &page.auth, &name).await?;
            let shown = Shown {
                verify_error: Some(e.to_string()),
                ..Shown::default()
            };
            render(&state, &page, &row, e.status_and_code().0, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /o/{org}/domains/{name}/certificate`: the API's order.
pub async fn order_certificate(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
    PageForm(f): PageForm<CsrfForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    match request_certificate(&state, &page.auth, &name).await {
        Ok(status) => Ok(to_the_page(&page, &status.domain, "ordered")),
        Err(e @ (ApiError::DomainNotVerified { .. } | ApiError::Unavailable(_))) => {
            let row = get_domain(&state, &page.auth, &name).await?;
            let shown = Shown {
                certificate_error: Some(e.to_string()),
                ..Shown::default()
            };
            render(&state, &page, &row, e.status_and_code().0, shown).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The delete form: `cascade` when the domain's links go with it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeleteForm {
    pub csrf: String,
    pub cascade: Option<String>,
}

fn confirm_body(page: &OrgPage, row: &DomainRow, links: i64, error: Option<&str>) -> Markup {
    html! {
        h1 { "Delete " (row.name) "?" }
        div.card #confirm {
            p { "The engines stop answering " b { (row.name) } " at once, and its certificate is withdrawn. Claimed again later, it is a new domain with a new token." }
            @if let Some(e) = error { p.form-error #delete-error role="alert" { (e) } }
            form #delete-form method="post" action=(domain_path(page, &row.name, "/delete")) {
                input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                @if links > 0 {
                    div.field {
                        label.check {
                            input #cascade type="checkbox" name="cascade";
                            "Also delete its " b #link-count { (links) } " live link" @if links != 1 { "s" } " (their codes are never given out again)"
                        }
                    }
                } @else {
                    p.muted #link-count data-links="0" { "No live links use it." }
                }
                button.danger #confirm-delete type="submit" { "Delete " (row.name) }
                " "
                a.button.secondary href=(domain_path(page, &row.name, "")) { "Cancel" }
            }
        }
    }
}

/// `GET /o/{org}/domains/{name}/delete`: the confirmation step.
pub async fn confirm_delete(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    may_write(&page.auth)?;
    let row = get_domain(&state, &page.auth, &name).await?;
    let links = domain_links(&state, &page.auth, &row).await?;
    Ok(respond(
        StatusCode::OK,
        org_page(
            &page,
            Section::Domains,
            "Delete a domain",
            confirm_body(&page, &row, links, None),
        ),
    ))
}

/// `POST /o/{org}/domains/{name}/delete`: the API's delete; live links
/// go with it only when the box was ticked. To the list.
pub async fn delete(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, name)): Path<(String, String)>,
    PageForm(f): PageForm<DeleteForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    match delete_domain(&state, &page.auth, &name, f.cascade.is_some()).await {
        Ok(_) => {
            let to = crate::dashboard::form::with_query(
                &format!("{}/domains", page.base()),
                "deleted",
                &crate::domains::actions::path_name(&name)?,
            );
            Ok(Redirect::to(&to).into_response())
        }
        Err(ApiError::DomainInUse { name: n, links }) => {
            let row = get_domain(&state, &page.auth, &n).await?;
            let message = format!(
                "{n} still has {links} live link{}: tick the box to delete them with it",
                if links == 1 { "" } else { "s" }
            );
            Ok(respond(
                StatusCode::CONFLICT,
                org_page(
                    &page,
                    Section::Domains,
                    "Delete a domain",
                    confirm_body(&page, &row, links, Some(message.as_str())),
                ),
            ))
        }
        Err(e) => Err(e.into()),
    }
}
