//! The links list (search, tag filter, keyset pages), and the create and
//! edit forms.

use crate::auth::Scope;
use crate::dashboard::error::{PageError, PageResult};
use crate::dashboard::form::{
    FormError, LinkForm, PageForm, PageQuery, STATUSES, error_for, form_level, non_empty,
    text_field,
};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::session::{OrgPage, Visitor};
use crate::links::api::{ListQuery, create_link, delete_link, fetch, list_links, update_link};
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
    pub cursor: String,
}

/// A link's row in the list.
fn row(base: &str, short_base: &str, link: &LinkRow) -> Markup {
    let page = format!("{base}/links/{}", link.code);
    html! {
        tr data-code=(link.code) {
            td { a.code href=(page) { (link.code) } }
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
                @else { a.muted href=(format!("{short_base}/{}", link.code)) { "live" } }
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
/// (The domains branch adds a domain filter beside the tag.)
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
        ..ListQuery::default()
    };
    let (rows, next, error) = match list_links(&state, org_id, &query).await {
        Ok((rows, next)) => (rows, next, None),
        Err(e) if FormError::shows_in_form(&e) => (Vec::new(), None, Some(FormError::from_api(&e))),
        Err(e) => return Err(e.into()),
    };
    let base = page.base();
    let action = format!("{base}/links");
    let next_url = next.map(|c| {
        format!(
            "{action}?q={}&tag={}&cursor={c}",
            urlencode(&p.q),
            urlencode(&p.tag)
        )
    });
    let body = html! {
        div.toolbar {
            h1.grow { "Links" }
            @if page.can_write() {
                a.button #new-link href=(format!("{base}/links/new")) { "New link" }
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
                    a href=(format!("{action}?q={}&tag={}", urlencode(&p.q), urlencode(&p.tag))) { "← First page" }
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
fn link_form(page: &OrgPage, mode: Mode<'_>, f: &LinkForm, error: Option<&FormError>) -> Markup {
    let base = page.base();
    let (action, title) = match mode {
        Mode::New => (format!("{base}/links"), "New link".to_string()),
        Mode::Edit(code) => (format!("{base}/links/{code}"), format!("Edit {code}")),
    };
    const FIELDS: &[&str] = &[
        "target",
        "custom_alias",
        "title",
        "tags",
        "status",
        "expires_at",
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
                    (text_field("custom_alias", "Custom code", "text", &f.custom_alias, Some("Leave empty for a random code."), error))
                } @else {
                    input type="hidden" name="etag" value=(f.etag);
                    input type="hidden" name="expires_was" value=(f.expires_was);
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
                (text_field("expires_at", "Expires at (UTC)", "datetime-local", &f.expires_at, Some("Empty: never."), error))
                div.field {
                    label.check { input #forward_query type="checkbox" name="forward_query" checked[f.forward_query.is_some()]; "Forward the query string to the target" }
                }
                @if let Mode::Edit(_) = mode {
                    div.field {
                        label.check { input #disabled type="checkbox" name="disabled" checked[f.disabled.is_some()]; "Disabled (answers 410)" }
                    }
                }
                // The domains branch adds the custom domain field here.
                button #save type="submit" { "Save" }
                " "
                a.button.secondary href=(format!("{base}/links")) { "Cancel" }
            }
        }
        @if let Mode::Edit(code) = mode {
            div.card {
                h2 { "Delete" }
                p.muted { "The short link stops working at once; its code is never given out again." }
                form #delete-form method="post" action=(format!("{base}/links/{code}/delete")) {
                    input type="hidden" name="csrf" value=(page.visitor.user.csrf_token);
                    input type="hidden" name="etag" value=(f.etag);
                    button.danger #delete type="submit" { "Delete " (code) }
                }
            }
        }
    }
}

/// `GET /o/{org}/links/new`.
pub async fn new_page(visitor: Visitor, Path(org): Path<String>) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    page.auth.org(Scope::LinksWrite)?;
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
            link_form(&page, Mode::New, &f, None),
        ),
    ))
}

/// The form again, with what was typed and why it failed.
fn again(
    page: &OrgPage,
    mode: Mode<'_>,
    f: &LinkForm,
    status: StatusCode,
    e: FormError,
) -> Response {
    respond(
        status,
        org_page(
            page,
            Section::Links,
            "Link",
            link_form(page, mode, f, Some(&e)),
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
    let req = match f.to_create() {
        Ok(r) => r,
        Err(e) => return Ok(again(&page, Mode::New, &f, StatusCode::BAD_REQUEST, e)),
    };
    match create_link(&state, &page.auth, &req).await {
        Ok(row) => Ok(Redirect::to(&format!("{}/links/{}", page.base(), row.code)).into_response()),
        Err(e) if FormError::shows_in_form(&e) => {
            let status = e.status_and_code().0;
            Ok(again(&page, Mode::New, &f, status, FormError::from_api(&e)))
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /o/{org}/links/{code}/edit`.
pub async fn edit_page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksWrite)?;
    let row = fetch(&state, org_id, &code).await?;
    let f = LinkForm::from_row(&row);
    Ok(respond(
        StatusCode::OK,
        org_page(
            &page,
            Section::Links,
            "Edit link",
            link_form(&page, Mode::Edit(&row.code), &f, None),
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
                StatusCode::BAD_REQUEST,
                e,
            ));
        }
    };
    let etag = non_empty(&f.etag);
    match update_link(&state, &page.auth, None, &code, patch, etag.as_deref()).await {
        Ok(row) => Ok(Redirect::to(&format!("{}/links/{}", page.base(), row.code)).into_response()),
        Err(e) if FormError::shows_in_form(&e) => {
            let status = e.status_and_code().0;
            let mut fe = FormError::from_api(&e);
            if matches!(e, crate::error::ApiError::PreconditionFailed { .. }) {
                fe.message = "someone changed this link since the form was opened; \
                              reload the page to see their version (what you typed is kept below)"
                    .into();
            }
            Ok(again(&page, Mode::Edit(&code), &f, status, fe))
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
    delete_link(&state, &page.auth, None, &code, etag.as_deref()).await?;
    Ok(Redirect::to(&format!("{}/links", page.base())).into_response())
}
