//! A link's page: its settings, its QR code (SVG and PNG downloads) and its
//! clicks: over time by minute, hour or day, by country, city, device,
//! browser, OS and referrer, with bots counted apart.

use crate::auth::Scope;
use crate::dashboard::chart;
use crate::dashboard::error::PageResult;
use crate::dashboard::form::{PageQuery, link_domain, link_path, with_query};
use crate::dashboard::layout::{Section, org_page, respond};
use crate::dashboard::links::{date, urlencode};
use crate::dashboard::session::Visitor;
use crate::error::ApiError;
use crate::links::api::fetch_in;
use crate::qr::qr_image;
use crate::state::AppState;
use crate::stats::{LinkReport, ReportOptions, StatsQuery, link_report};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct PeriodParams {
    /// `minute` (the last day), `hour` (the last 7 days, the default) or
    /// `day` (the last 30 days): see [`period`].
    pub bucket: String,
    /// The link's domain (absent: the default domain).
    pub domain: Option<String>,
}

const BUCKETS: [(&str, &str); 3] = [
    ("minute", "Last 24 hours, per minute"),
    ("hour", "Last 7 days, per hour"),
    ("day", "Last 30 days, per day (UTC)"),
];

/// The range of `bucket`'s chart at `now` (Unix seconds): the last day of
/// minutes, up to now; the last 7 days of whole hours and the last 30 whole
/// UTC days, both up to the end of the current one. Whole buckets read
/// fewer rollups: 30 days are one part of the day rollup, where a range
/// ending now is five (minutes, hours, days, hours, minutes), each one more
/// read per query for every link, however few its clicks.
fn period(bucket: &str, now: i64) -> (i64, i64) {
    let up_to = |step: i64| (now + step - 1).div_euclid(step) * step;
    match bucket {
        "minute" => {
            let to = up_to(60);
            (to - 86_400, to)
        }
        "day" => {
            let to = up_to(86_400);
            (to - 30 * 86_400, to)
        }
        _ => {
            let to = up_to(3600);
            (to - 7 * 86_400, to)
        }
    }
}

/// The page's report: its series, totals, bot clicks and breakdowns (bars
/// of clicks), in one round of concurrent queries.
async fn clicks(
    state: &AppState,
    org_id: i64,
    domain: Option<&str>,
    code: &str,
    bucket: &str,
) -> Result<LinkReport, ApiError> {
    let (from, to) = period(bucket, time::OffsetDateTime::now_utc().unix_timestamp());
    let at = |t: i64| time::OffsetDateTime::from_unix_timestamp(t).ok();
    let q = StatsQuery {
        from: at(from),
        to: at(to),
        bucket: Some(bucket.to_owned()),
        dimensions: Some("country,city,device,browser,os,referrer".into()),
        domain: domain.map(str::to_owned),
        ..StatsQuery::default()
    };
    link_report(state, org_id, code, &q, ReportOptions::PAGE).await
}

/// `GET /o/{org}/links/{code}` (`?domain=`).
pub async fn page(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
    PageQuery(p): PageQuery<PeriodParams>,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksRead)?;
    let row = fetch_in(&state, org_id, p.domain.as_deref(), &code).await?;
    let domain = link_domain(&row);
    let bucket = BUCKETS
        .iter()
        .find(|(b, _)| *b == p.bucket)
        .map_or("hour", |(b, _)| b);
    let stats = match page.auth.org(Scope::StatsRead) {
        Ok(_) => match clicks(&state, org_id, p.domain.as_deref(), &row.code, bucket).await {
            Ok(s) => Ok(s),
            Err(e @ ApiError::Unavailable(_)) => Err(e.to_string()),
            Err(e) => return Err(e.into()),
        },
        Err(e) => Err(e.to_string()),
    };
    let at = |suffix: &str| link_path(&page.base(), &row.code, domain, suffix);
    let short = row.to_json(state.short_base()).short_url;
    let body = html! {
        div.toolbar {
            h1.grow #link-title { (row.title.as_deref().unwrap_or(&row.code)) }
            @if page.can_write() {
                a.button #edit-link href=(at("/edit")) { "Edit" }
            }
        }
        div.cols {
            div.card {
                dl.props {
                    dt { "Short URL" } dd { a #short-url href=(short) { (short) } }
                    dt { "Domain" } dd #domain { (if domain.is_empty() { "the default domain" } else { domain }) }
                    dt { "Target" } dd #target { (row.target) }
                    dt { "Status" } dd { (row.status) }
                    dt { "State" } dd #state {
                        @if row.disabled { span.badge-off { "disabled" } } @else { "enabled" }
                    }
                    dt { "Valid from (UTC)" } dd #valid-since { (row.valid_since.map(date).unwrap_or_else(|| "creation".into())) }
                    dt { "Expires (UTC)" } dd { (row.expires_at.map(date).unwrap_or_else(|| "never".into())) }
                    @if let Some(url) = &row.expired_url {
                        dt { "After expiry" } dd #expired-url { (url) }
                    }
                    @if let Some(max) = row.max_visits {
                        dt { "Visit limit" } dd #max-visits {
                            (max) " in all; " ((i64::from(max) - row.visits_leased).max(0)) " not yet leased to engines"
                        }
                    }
                    @if !row.utm.is_empty() {
                        dt { "UTM parameters" } dd #utm {
                            @for (name, value) in row.utm.values() {
                                @if let Some(v) = value { code { (name) "=" (v) } " " }
                            }
                        }
                        dt { "Redirects to" } dd #served-target { (row.served_target()) }
                    }
                    @if !row.rules.0.is_empty() {
                        dt { "Rules" } dd {
                            ol #rules {
                                @for rule in &row.rules.0 {
                                    li {
                                        (crate::links::rules::describe(&rule.when)) " → "
                                        code { (rule.target) }
                                        @if let Some(s) = rule.status { " (" (s) ")" }
                                    }
                                }
                            }
                        }
                    }
                    @if !row.split.0.is_empty() {
                        dt { "Split" } dd {
                            ul #split {
                                @for v in &row.split.0 {
                                    li {
                                        (v.weight) " % → " code { (v.target) }
                                        @if let Some(s) = v.status { " (" (s) ")" }
                                    }
                                }
                            }
                        }
                    }
                    dt { "Query string" } dd { (if row.forward_query { "forwarded" } else { "dropped" }) }
                    dt { "Tags" } dd {
                        @for t in &row.tags { a.tag href=(format!("{}/links?tag={}", page.base(), urlencode(t))) { (t) } }
                    }
                    dt { "Created (UTC)" } dd { (date(row.created_at)) }
                    dt { "Updated (UTC)" } dd { (date(row.updated_at)) " · version " (row.version) }
                }
            }
            div.card.qr {
                img #qr src=(at("/qr.svg")) alt=(format!("QR code of {short}"));
                p {
                    "Download: "
                    a #qr-svg href=(with_query(&at("/qr.svg"), "download", "1")) { "SVG" } " · "
                    a #qr-png href=(with_query(&at("/qr.png"), "download", "1")) { "PNG" }
                }
            }
        }
        h2 { "Clicks" }
        p.periods {
            @for (b, label) in BUCKETS {
                a.current[b == bucket] href=(with_query(&at(""), "bucket", b)) { (label) }
            }
        }
        @match &stats {
            Err(why) => p.form-error #stats-unavailable { "Stats are not available: " (why) },
            Ok(r) => {
                div.stats {
                    div.stat { b #total-clicks { (r.total_clicks) } span { "clicks" } }
                    div.stat {
                        b #total-visitors { (r.total_visitors) }
                        span title="an estimate: exact up to 16, within 6.5 % above" { "unique visitors (est.)" }
                    }
                    div.stat { b #bot-clicks { (r.bot_clicks.unwrap_or(0)) } span { "bot clicks (not counted)" } }
                }
                div.card { (chart::series(r)) }
                div.grid {
                    @for (name, rows) in &r.breakdown {
                        div.card {
                            h2 { (title_of(name)) }
                            (chart::bars(name, rows, ReportOptions::PAGE_ROWS as usize, r.breakdown_visitors))
                        }
                    }
                }
            }
        }
    };
    Ok(respond(
        StatusCode::OK,
        org_page(&page, Section::Links, &row.code, body),
    ))
}

fn title_of(dimension: &str) -> &'static str {
    match dimension {
        "country" => "Countries",
        "city" => "Cities",
        "device" => "Devices",
        "browser" => "Browsers",
        "os" => "Operating systems",
        "referrer" => "Referrers",
        _ => "Other",
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct QrParams {
    pub download: Option<String>,
    /// The link's domain (absent: the default domain).
    pub domain: Option<String>,
}

/// `GET /o/{org}/links/{code}/qr.svg` (`?download=1` as a file).
pub async fn qr_svg(
    state: State<AppState>,
    visitor: Visitor,
    path: Path<(String, String)>,
    query: PageQuery<QrParams>,
) -> PageResult<Response> {
    qr(state, visitor, path, query, "svg").await
}

/// `GET /o/{org}/links/{code}/qr.png` (`?download=1` as a file).
pub async fn qr_png(
    state: State<AppState>,
    visitor: Visitor,
    path: Path<(String, String)>,
    query: PageQuery<QrParams>,
) -> PageResult<Response> {
    qr(state, visitor, path, query, "png").await
}

async fn qr(
    State(state): State<AppState>,
    visitor: Visitor,
    Path((org, code)): Path<(String, String)>,
    PageQuery(p): PageQuery<QrParams>,
    format: &'static str,
) -> PageResult<Response> {
    let page = visitor.in_org(&org)?;
    let org_id = page.auth.org(Scope::LinksRead)?;
    let (bytes, content_type) =
        qr_image(&state, org_id, p.domain.as_deref(), &code, format, 512).await?;
    let mut r = bytes.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    if p.download.is_some()
        && let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{code}.{format}\""))
    {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::period;

    /// 2026-01-01T00:00:00Z.
    const D0: i64 = 1_767_225_600;

    #[test]
    fn charts_end_with_their_current_bucket() {
        let now = D0 + 10 * 86_400 + 5 * 3600 + 7 * 60 + 30;
        assert_eq!(period("minute", now), (now + 30 - 86_400, now + 30));
        let hour_end = D0 + 10 * 86_400 + 6 * 3600;
        assert_eq!(period("hour", now), (hour_end - 7 * 86_400, hour_end));
        assert_eq!(period("day", now), (D0 - 19 * 86_400, D0 + 11 * 86_400));
        // A bucket's first second is in it, and a boundary ends the range.
        assert_eq!(period("day", D0).1, D0);
        assert_eq!(period("day", D0 + 1).1, D0 + 86_400);
        assert_eq!(
            period("hour", D0 + 3600),
            (D0 + 3600 - 7 * 86_400, D0 + 3600)
        );
    }
}
