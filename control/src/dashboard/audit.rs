//! The audit log, newest first, a page at a time (admins and owners).

use crate::audit_log::{AuditQuery, read};
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{PageQuery, non_empty};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::{date, urlencode};
use crate::dashboard::session::Visitor;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct AuditParams {
    pub action: String,
    pub cursor: String,
}

/// `GET /o/{org}/audit`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
    PageQuery(p): PageQuery<AuditParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let q = AuditQuery {
        limit: Some(100),
        cursor: non_empty(&p.cursor),
        action: non_empty(&p.action),
        ..AuditQuery::default()
    };
    let log = read(&state, &page.auth, &q).await?;
    let action = format!("{}/audit", page.base());
    let body = html! {
        h1 { "Audit log" }
        form.toolbar method="get" action=(action) {
            div.grow {
                label for="action" { "Action (or family, e.g. link)" }
                input #action type="text" name="action" value=(p.action);
            }
            button.secondary type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "When (UTC)" } th { "Who" } th { "Action" } th { "Subject" } th { "From" } } }
            tbody {
                @for e in &log.entries {
                    tr {
                        td.muted { (date(e.at)) }
                        td {
                            @if let Some(m) = &e.actor.email { (m) }
                            @else if let Some(k) = &e.actor.key_prefix { "key " code { (k) } }
                            @else { (e.actor.kind) }
                        }
                        td { code { (e.action) } }
                        td { (e.subject) }
                        td.muted { (e.ip.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
        div.pager {
            @if let Some(c) = &log.next_cursor {
                a href=(format!("{action}?action={}&cursor={c}", urlencode(&p.action))) { "Older →" }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        org_page(&page, Section::Audit, "Audit log", body),
    ))
}
