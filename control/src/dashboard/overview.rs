//! An organization's overview: its totals and its most clicked links.

use crate::auth::Scope;
use crate::dashboard::error::PageResult;
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::session::Visitor;
use crate::error::ApiError;
use crate::state::AppState;
use crate::stats::{StatsQuery, top_links};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use maud::html;

/// `(live links, disabled links, tagged links, members)`: each an index
/// scan of the organization's rows.
type Totals = (i64, i64, i64, i64);

/// `GET /o/{org}`.
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path(org): Path<String>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksRead)?;
    let (links, disabled, tagged, members): Totals = sqlx::query_as(
        "SELECT count(*),
                count(*) FILTER (WHERE disabled),
                count(*) FILTER (WHERE cardinality(tags) > 0),
                (SELECT count(*) FROM memberships WHERE org_id = $1)
           FROM links WHERE org_id = $1 AND deleted_at IS NULL",
    )
    .bind(org_id)
    .fetch_one(&state.db)
    .await?;
    // The last 7 days, as `GET /v1/stats/summary` by default: one read of
    // the organization's range of the rollups, whatever its size.
    let top = match page.auth.org(Scope::StatsRead) {
        Ok(_) => match cached_top_links(&state, org_id).await {
            Ok(top) => Ok(top),
            Err(e @ ApiError::Unavailable(_)) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        },
        Err(e) => Err(e.to_string()),
    };
    let base = page.base();
    let body = html! {
        h1 { "Overview" }
        div.stats {
            div.stat { b #total-links { (links) } span { "live links" } }
            div.stat { b { (disabled) } span { "disabled" } }
            div.stat { b { (tagged) } span { "tagged" } }
            div.stat { b { (members) } span { "members" } }
        }
        h2 { "Most clicked, last 7 days" }
        @match &top {
            Err(why) => p.form-error { "Stats are not available: " (why) },
            Ok(top) if top.is_empty() => p.muted { "No clicks in the last 7 days." },
            Ok(top) => table #top-links {
                thead { tr { th { "Code" } th { "Clicks" } th { "Unique visitors" } } }
                tbody {
                    @for (code, clicks, visitors) in top {
                        tr { td { a href=(format!("{base}/links/{code}")) { (code) } } td { (clicks) } td { (visitors) } }
                    }
                }
            },
        }
    };
    Ok(respond(
        StatusCode::OK,
        org_page(&page, Section::Overview, "Overview", body),
    ))
}

/// The organization's top 10 over the last 7 days, reused for the cache's
/// lifetime (`top_cache`).
async fn cached_top_links(
    state: &AppState,
    org_id: i64,
) -> Result<crate::dashboard::top_cache::TopLinks, ApiError> {
    if let Some(top) = state.top_links.get(org_id) {
        return Ok(top);
    }
    let top = top_links(state, org_id, &StatsQuery::default(), 10).await?;
    state.top_links.put(org_id, &top);
    Ok(top)
}
