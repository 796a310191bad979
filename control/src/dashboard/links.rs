//! The links list (search, tag and domain filters, keyset pages), and the
//! create and edit forms. A link on one of the organization's own domains
//! is addressed with `?domain=NAME` (codes are unique per domain only).

use crate::auth::Scope;
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::form::{
    FormError, LinkForm, PageForm, PageQuery, STATUSES, error_for, form_level, link_domain,
    link_path, non_empty, text_area, text_field, with_query,
};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::session::{OrgPage, Visitor};
use crate::links::api::{ListQuery, create_link, delete_link, fetch_in, list_links, update_link};
use crate::links::model::LinkRow;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

/// Links per page of the list.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct ListParams {
    pub q: String,
    pub tag: String,
    /// A domain name (the default domain's too); empty: every domain.
    pub domain: String,
    pub cursor: String,
}

impl ListParams {
    /// The list's URL with these filters (and no cursor).
    fn url(&self, action: &str) -> String {
        let mut url = with_query(action, "q", &self.q);
        url = with_query(&url, "tag", &self.tag);
        with_query(&url, "domain", &self.domain)
    }
}

/// `?domain=` on a link's pages: the domain its code is on (absent: the
/// default domain).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DomainParams {
    pub domain: Option<String>,
}

/// The names of the organization's live domains (pending ones too), for
/// the domain filter and the create form's choice.
pub async fn org_domains(state: &AppState, org_id: i64) -> Result<Vec<String>, PageError> {
    let mut conn = state
        .db
        .acquire()
        .await
        .map_err(crate::error::ApiError::from)?;
    let rows = crate::domains::store::list(&mut conn, Some(org_id)).await?;
    Ok(rows.into_iter().map(|d| d.name).collect())
}

/// A link's row in the list.
fn row(base: &str, short_base: &str, link: &LinkRow) -> Markup {
    let page = link_path(base, &link.code, link_domain(link), "");
    let short_url = link.to_json(short_base).short_url;
    html! {
        tr data-code=(link.code) data-domain=(link_domain(link)) {
            td {
                a.code href=(page) { (link.code) }
                @if !link_domain(link).is_empty() { br; span.muted.domain { (link.domain) } }
            }
            td.target title=(link.target) {
                @if let Some(t) = &link.title { b { (t) } br; }
                span.muted { (link.target) }
            }
            td {
                @for t in &link.tags {
                    a.tag href=(format!("{base}/links?tag={}", urlencode(t))) { (t) }
                }
            }
            td { (link.status) }
            td {
                @if link.disabled { span.badge-off { "disabled" } }
                @else if link.expires_at.is_some_and(|e| e <= time::OffsetDateTime::now_utc()) { span.badge-off { "expired" } }
                @else if link.valid_since.is_some_and(|v| v > time::OffsetDateTime::now_utc()) { span.badge-off { "scheduled" } }
                @else { a.muted href=(short_url) { "live" } }
            }
            td.muted { (date(link.created_at)) }
        }
    }
}

/// `2026-11-30 11:24` (UTC).
pub fn date(t: time::OffsetDateTime) -> String {
    let f = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]");
    t.format(f).unwrap_or_default()
}

/// Percent-encodes a query value.
pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /o/{org}/links`. The search box asks again as one types (htmx
/// swaps only `#links`); without script it is an ordinary GET form.
pub async fn list_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageQuery(p): PageQuery<ListParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksRead)?;
    let query = ListQuery {
        limit: Some(PAGE_SIZE),
        cursor: non_empty(&p.cursor),
        tag: non_empty(&p.tag),
        q: non_empty(&p.q),
        domain: non_empty(&p.domain),
        ..ListQuery::default()
    };
    let domains = org_domains(&state, org_id).await?;
    let default_domain = state.config.default_domain.clone().unwrap_or_default();
    let (rows, next, error) = match list_links(&state, org_id, &query).await {
        Ok((rows, next)) => (rows, next, None),
        Err(e) if FormError::shows_in_form(&e) => (Vec::new(), None, Some(FormError::from_api(&e))),
        Err(e) => return Err(e.into()),
    };
    let base = page.base();
    let action = format!("{base}/links");
    let next_url = next.map(|c| with_query(&p.url(&action), "cursor", &c));
    let body = html! {
        div.toolbar {
            h1.grow { "Links" }
            @if page.can_write() {
                a.button #new-link href=(format!("{base}/new-link")) { "New link" }
            }
        }
        form.toolbar method="get" action=(action) {
            div.grow {
                label for="q" { "Search targets and titles" }
                input #q type="search" name="q" value=(p.q) placeholder="example.com"
                    hx-get=(action) hx-trigger="input changed delay:300ms, search"
                    hx-target="#links" hx-select="#links" hx-swap="outerHTML"
                    hx-push-url="true" hx-include="closest form";
            }
            div {
                label for="tag" { "Tag" }
                input #tag type="text" name="tag" value=(p.tag);
            }
            div {
                label for="domain" { "Domain" }
                select #domain name="domain" {
                    option value="" selected[p.domain.is_empty()] { "All domains" }
                    @if !default_domain.is_empty() {
                        option value=(default_domain) selected[p.domain == default_domain] { (default_domain) " (default)" }
                    }
                    @for d in &domains {
                        option value=(d) selected[&p.domain == d] { (d) }
                    }
                }
            }
            button.secondary type="submit" { "Filter" }
        }
        div #links {
            (form_level(error.as_ref(), &[]))
            table {
                thead { tr { th { "Code" } th { "Target" } th { "Tags" } th { "Status" } th { "State" } th { "Created (UTC)" } } }
                tbody {
                    @for l in &rows { (row(&base, state.short_base(), l)) }
                }
            }
            @if rows.is_empty() { p.muted #no-links { "No links match." } }
            div.pager {
                @if !p.cursor.is_empty() {
                    a href=(p.url(&action)) { "← First page" }
                }
                @if let Some(n) = next_url { a #next-page href=(n) { "Next page →" } }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        org_page(&page, Section::Links, "Links", body),
    ))
}

/// Whether a form creates a link or edits `code`.
enum Mode<'a> {
    New,
    Edit(&'a str),
}

/// The link form, filled with `f`, `error` beside its field.
/// `domains`: the organization's domain names the create form offers.
fn link_form(
    page: &OrgPage,
    mode: Mode<'_>,
    f: &LinkForm,
    domains: &[String],
    error: Option<&FormError>,
) -> Markup {
    let base = page.base();
    let (action, title) = match mode {
        Mode::New => (format!("{base}/links"), "New link".to_string()),
        Mode::Edit(code) => (
            link_path(&base, code, &f.domain, ""),
            format!("Edit {code}"),
        ),
    };
    const FIELDS: &[&str] = &[
        "target",
        "custom_alias",
        "title",
        "tags",
        "status",
        "expires_at",
        "valid_since",
        "expired_url",
        "max_visits",
        "utm_source",
        "utm_medium",
        "utm_campaign",
        "utm_term",
        "utm_content",
        "rules",
        "split",
        "password",
        "domain",
    ];
    let status_err = error_for(error, "status");
    html! {
        h1 { (title) }
        div.card {
            (form_level(error, FIELDS))
            form #link-form method="post" action=(action) {
                input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                (text_field("target", "Target URL", "text", &f.target, Some("Where the short link redirects (http or https)."), error))
                @if let Mode::New = mode {
                    div.field {
                        label for="domain" { "Domain" }
                        select #domain name="domain" .invalid[error_for(error, "domain").is_some()] {
                            option value="" selected[f.domain.is_empty()] { "The default domain" }
                            @for d in domains {
                                option value=(d) selected[&f.domain == d] { (d) }
                            }
                        }
                        div.hint { "One of the organization's domains; a pending one is served once verified." }
                        @if let Some(m) = error_for(error, "domain") { div.error #domain-error { (m) } }
                    }
                    (text_field("custom_alias", "Custom code", "text", &f.custom_alias, Some("Leave empty for a random code."), error))
                } @else {
                    input type="hidden" name="etag" value=(f.etag);
                    input type="hidden" name="expires_was" value=(f.expires_was);
                    input type="hidden" name="valid_since_was" value=(f.valid_since_was);
                    input type="hidden" name="domain" value=(f.domain);
                }
                (text_field("title", "Title", "text", &f.title, None, error))
                (text_field("tags", "Tags", "text", &f.tags, Some("Comma-separated."), error))
                div.field {
                    label for="status" { "Redirect status" }
                    select #status name="status" .invalid[status_err.is_some()] {
                        @for (code, label) in STATUSES {
                            option value=(code) selected[f.status == code.to_string()] { (label) }
                        }
                    }
                    @if let Some(m) = status_err { div.error #status-error { (m) } }
                }
                (text_field("valid_since", "Valid from (UTC)", "datetime-local", &f.valid_since, Some("Empty: at once. Before it the short link answers as if it did not exist."), error))
                (text_field("expires_at", "Expires at (UTC)", "datetime-local", &f.expires_at, Some("Empty: never."), error))
                (text_field("expired_url", "After expiry, redirect to", "text", &f.expired_url, Some("Empty: an expired link answers 410. Else an http or https URL."), error))
                (text_field("max_visits", "Visit limit", "text", &f.max_visits, Some("Empty: no limit. Else 1 to 1000000000 redirects in all; then the link answers as expired. Removing the limit and setting it again starts the count over."), error))
                fieldset #utm {
                    legend { "UTM parameters" }
                    div.hint { "Added to the target's query when the short link redirects (utm_source=…), replacing a parameter of the same name; the target above stays as written. Each empty: none." }
                    (text_field("utm_source", "Source (utm_source)", "text", &f.utm_source, None, error))
                    (text_field("utm_medium", "Medium (utm_medium)", "text", &f.utm_medium, None, error))
                    (text_field("utm_campaign", "Campaign (utm_campaign)", "text", &f.utm_campaign, None, error))
                    (text_field("utm_term", "Term (utm_term)", "text", &f.utm_term, None, error))
                    (text_field("utm_content", "Content (utm_content)", "text", &f.utm_content, None, error))
                }
                fieldset #routing {
                    legend { "Rules and split" }
                    div.hint { "JSON lists as the API takes them (docs/redirect-rules.md). Empty: none." }
                    (text_area("rules", "Rules", &f.rules, Some(r#"In order; the first whose conditions all hold wins, e.g. [{"when": {"country": ["DE"]}, "target": "https://example.com/de"}]. Conditions: device, os, language, country, query, from, until."#), error))
                    (text_area("split", "Split", &f.split, Some(r#"Variants for visits no rule takes, weights summing to 100, e.g. [{"target": "https://example.com/a", "weight": 50}, {"target": "https://example.com/b", "weight": 50}]."#), error))
                }
                fieldset #protection {
                    legend { "Password" }
                    @if f.password_protected {
                        div.hint #password-state { "This link asks visitors for a password. Enter a new one to change it." }
                    } @else {
                        div.hint #password-state { "Visitors enter it on a small page before the redirect. Empty: no password." }
                    }
                    // Never filled back in: the field starts empty every time.
                    (text_field("password", "New password", "password", "", Some("4 to 256 bytes. Only a hash is kept."), error))
                    @if f.password_protected {
                        div.field {
                            label.check { input #remove_password type="checkbox" name="remove_password"; "Remove the password" }
                        }
                    }
                }
                div.field {
                    label.check { input #forward_query type="checkbox" name="forward_query" checked[f.forward_query.is_some()]; "Forward the query string to the target" }
                }
                @if let Mode::Edit(_) = mode {
                    div.field {
                        label.check { input #disabled type="checkbox" name="disabled" checked[f.disabled.is_some()]; "Disabled (answers 410)" }
                    }
                }
                button #save type="submit" { "Save" }
                " "
                a.button.secondary href=(format!("{base}/links")) { "Cancel" }
            }
        }
        @if let Mode::Edit(code) = mode {
            div.card {
                h2 { "Delete" }
                p.muted { "The short link stops working at once; its code is never given out again." }
                form #delete-form method="post" action=(link_path(&base, code, &f.domain, "/delete")) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    input type="hidden" name="etag" value=(f.etag);
                    button.danger #delete type="submit" { "Delete " (code) }
                }
            }
        }
    }
}

/// `GET /o/{org}/new-link` (not under `links/`, where `new` is a code like
/// any other).
pub async fn new_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksWrite)?;
    let domains = org_domains(&state, org_id).await?;
    let f = LinkForm {
        status: "301".into(),
        ..LinkForm::default()
    };
    Ok(respond(
        StatusCode::OK,
        org_page(
            &page,
            Section::Links,
            "New link",
            link_form(&page, Mode::New, &f, &domains, None),
        ),
    ))
}

/// The form again, with what was typed and why it failed.
fn again(
    page: &OrgPage,
    mode: Mode<'_>,
    f: &LinkForm,
    domains: &[String],
    status: StatusCode,
    e: FormError,
) -> Response {
    respond(
        status,
        org_page(
            page,
            Section::Links,
            "Link",
            link_form(page, mode, f, domains, Some(&e)),
        ),
    )
}

/// `POST /o/{org}/links`: the API's create; to the new link's page.
pub async fn create(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageForm(f): PageForm<LinkForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksWrite)?;
    let req = match f.to_create() {
        Ok(r) => r,
        Err(e) => {
            let domains = org_domains(&state, org_id).await?;
            return Ok(again(
                &page,
                Mode::New,
                &f,
                &domains,
                StatusCode::BAD_REQUEST,
                e,
            ));
        }
    };
    match create_link(&state, &page.auth, &req).await {
        Ok(row) => {
            let to = link_path(&page.base(), &row.code, link_domain(&row), "");
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) if FormError::shows_in_form(&e) => {
            let status = e.status_and_code().0;
            let domains = org_domains(&state, org_id).await?;
            Ok(again(
                &page,
                Mode::New,
                &f,
                &domains,
                status,
                FormError::from_api(&e),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /o/{org}/links/{code}/edit` (`?domain=`).
pub async fn edit_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
    PageQuery(at): PageQuery<DomainParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksWrite)?;
    let row = fetch_in(&state, org_id, at.domain.as_deref(), &code).await?;
    let f = LinkForm::from_row(&row);
    Ok(respond(
        StatusCode::OK,
        org_page(
            &page,
            Section::Links,
            "Edit link",
            link_form(&page, Mode::Edit(&row.code), &f, &[], None),
        ),
    ))
}

/// `POST /o/{org}/links/{code}`: the API's patch, with the version the
/// form showed as `If-Match`; to the link's page.
pub async fn update(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
    PageForm(f): PageForm<LinkForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let patch = match f.to_patch() {
        Ok(p) => p,
        Err(e) => {
            return Ok(again(
                &page,
                Mode::Edit(&code),
                &f,
                &[],
                StatusCode::BAD_REQUEST,
                e,
            ));
        }
    };
    let etag = non_empty(&f.etag);
    match update_link(
        &state,
        &page.auth,
        f.domain(),
        &code,
        patch,
        etag.as_deref(),
    )
    .await
    {
        Ok(row) => {
            let to = link_path(&page.base(), &row.code, link_domain(&row), "");
            Ok(Redirect::to(&to).into_response())
        }
        Err(e) if FormError::shows_in_form(&e) => {
            let status = e.status_and_code().0;
            let mut fe = FormError::from_api(&e);
            if matches!(e, crate::error::ApiError::PreconditionFailed { .. }) {
                fe.message = "someone changed this link since the form was opened; \
                              reload the page to see their version (what you typed is kept below)"
                    .into();
            }
            Ok(again(&page, Mode::Edit(&code), &f, &[], status, fe))
        }
        Err(e) => Err(PageError::from(e)),
    }
}

/// `POST /o/{org}/links/{code}/delete`: the API's delete, with the version
/// the page showed; to the list.
pub async fn delete(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
    PageForm(f): PageForm<LinkForm>,
) -> PageResult<Response> {
    visitor.check_csrf(&state, &f.csrf)?;
    let page = visitor.in_org(&org)?;
    let etag = non_empty(&f.etag);
    delete_link(&state, &page.auth, f.domain(), &code, etag.as_deref()).await?;
    Ok(Redirect::to(&format!("{}/links", page.base())).into_response())
}
