//! Click statistics from ClickHouse.
//!
//! The analytics sidecar owns and creates the tables: `<db>.clicks` (one row
//! per click, inserted once per event) and its rollups per minute, hour and
//! day. Every query here reads the rollups ([`rollups`]): a range is taken
//! in whole minutes (`from` rounded down, `to` up; the answer says which
//! range it counted) and cut into whole days, hours and minutes, each read
//! from its rollup, so a year of a busy link reads a few hundred rows per
//! key, and the numbers are those of the raw rows. Unique visitors are
//! estimates: `uniqHLL12(visitor_hash)` states merged, exact up to 16
//! visitors, within [`rollups::VISITORS_ERROR_PCT`] % above (clicks are
//! exact). Only redirect statuses count, and bots
//! are excluded unless `include_bots=true`. ClickHouse 18.16 notes: the
//! crate's validation must be off, and values are bound client-side (`?`).

pub mod filters;
pub mod rollups;

use filters::Filters;

use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Path, Query};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use clickhouse::Row;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Most buckets one series may have.
const MAX_BUCKETS: i64 = 10_000;
/// Most values listed per dimension, and most links in a summary.
const MAX_ROWS: u64 = 1000;

/// The query of both stats routes; the OpenAPI document lists, for each,
/// the parameters it takes ([`LINK_STATS_PARAMS`], [`SUMMARY_PARAMS`]).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatsQuery {
    /// Start of the range (RFC 3339; default: `to` less a day for minute
    /// buckets, 30 days for day buckets, else 7 days).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    /// End of the range (RFC 3339; default: now).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// The series' bucket (default `day`).
    #[param(schema_with = bucket_schema)]
    pub bucket: Option<String>,
    /// Breakdowns, comma-separated: country, city, device, browser, os,
    /// referrer, language, traffic (`human`, `bot`, `preview`: with
    /// `include_bots=true`), rule (which of the link's redirect rules served
    /// the visit: `0` the link's target, `1`.. rule 1.., `100`.. the split's
    /// variants from the first).
    #[param(schema_with = dimensions_schema)]
    pub dimensions: Option<String>,
    /// Cross-dimension rows: one row per bucket of the series and value of
    /// each of these dimensions (comma-separated, one to three of those
    /// `dimensions` takes), e.g. `country,device`.
    #[param(schema_with = dimensions_schema)]
    pub cross: Option<String>,
    /// Only clicks from these countries (ISO codes, comma-separated).
    pub country: Option<String>,
    /// Only clicks from these device classes (comma-separated: desktop,
    /// mobile, tablet, feature_phone, appliance, bot, other).
    pub device: Option<String>,
    /// Only clicks referred by these hosts (comma-separated).
    pub referrer: Option<String>,
    /// Only clicks whose preferred language is one of these (primary
    /// subtags such as `en`, comma-separated).
    pub language: Option<String>,
    /// Only clicks served by these rules (comma-separated numbers: `0` the
    /// link's target, `i` rule `i` counting from 1, `100 + j` the split's
    /// variant `j` counting from 0).
    #[param(pattern = r"^[\s,]*(?:[0-9]+\s*(?:,[\s,]*|$))*$")]
    pub rule: Option<String>,
    /// Count bot clicks too (default `false`).
    #[serde(default)]
    pub include_bots: bool,
    /// `json` (default) or `csv`.
    #[param(schema_with = format_schema)]
    pub format: Option<String>,
    /// How many links (summary; default 10).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// The link's domain (link stats; default: the deployment's default domain).
    pub domain: Option<String>,
}

/// The query parameters `GET /v1/links/{code}/stats` takes.
pub const LINK_STATS_PARAMS: &[&str] = &[
    "from",
    "to",
    "bucket",
    "dimensions",
    "cross",
    "include_bots",
    "format",
    "domain",
    "country",
    "device",
    "referrer",
    "language",
    "rule",
];
/// The query parameters `GET /v1/stats/summary` takes.
pub const SUMMARY_PARAMS: &[&str] = &[
    "from",
    "to",
    "limit",
    "include_bots",
    "format",
    "country",
    "device",
    "referrer",
    "language",
    "rule",
];

fn string_enum(values: &[&str]) -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(values.iter().copied()))
        .build()
}

fn bucket_schema() -> utoipa::openapi::Object {
    string_enum(&BUCKETS)
}

fn format_schema() -> utoipa::openapi::Object {
    string_enum(&["json", "csv"])
}

/// What [`dimensions`] accepts: known names separated by commas, blanks
/// around them and empty items ignored.
fn dimensions_schema() -> utoipa::openapi::Object {
    let names: Vec<&str> = DIMENSIONS.iter().map(|(n, _)| *n).collect();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .pattern(Some(format!(
            r"^[\s,]*(?:(?:{})\s*(?:,[\s,]*|$))*$",
            names.join("|")
        )))
        .build()
}

/// The bucket names, finest first.
const BUCKETS: [&str; 3] = ["minute", "hour", "day"];

/// Clicks (exact) and unique visitors (an estimate).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Counts {
    pub clicks: u64,
    /// Distinct visitors (truncated address and user agent), an estimate:
    /// exact up to 16, within 6.5 % of the exact count above (a HyperLogLog
    /// sketch; clicks are exact). Clicks older than the raw clicks the
    /// analytics sidecar kept when it moved to these estimates have no
    /// visitors (0) (analytics/README.md, "Visitor states").
    pub unique_visitors: u64,
}

/// One bucket of the series.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesPoint {
    /// The bucket's start (RFC 3339).
    #[schema(format = DateTime)]
    pub t: String,
    pub clicks: u64,
    /// Distinct visitors, an estimate (as `Counts.unique_visitors`).
    pub unique_visitors: u64,
}

/// One value of a breakdown (a country, a browser, ...).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DimensionValue {
    pub value: String,
    pub clicks: u64,
    /// Distinct visitors, an estimate (as `Counts.unique_visitors`).
    pub unique_visitors: u64,
}

/// `GET /v1/links/{code}/stats` as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkStats {
    pub code: String,
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    #[schema(schema_with = bucket_schema)]
    pub bucket: &'static str,
    pub include_bots: bool,
    pub totals: Counts,
    pub series: Vec<SeriesPoint>,
    /// The requested breakdowns by name, each most clicked first.
    pub dimensions: std::collections::BTreeMap<String, Vec<DimensionValue>>,
    /// Cross-dimension rows (`cross`): by bucket, then most clicked first;
    /// empty when not asked for.
    pub cross: Vec<CrossRow>,
}

/// One bucket and one value of each `cross` dimension.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CrossRow {
    /// The bucket's start (RFC 3339).
    #[schema(format = DateTime)]
    pub t: String,
    /// The value of each `cross` dimension, by name.
    pub values: std::collections::BTreeMap<String, String>,
    pub clicks: u64,
    /// Distinct visitors, an estimate (as `Counts.unique_visitors`).
    pub unique_visitors: u64,
}

/// One of the top links.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TopLink {
    pub code: String,
    pub clicks: u64,
    /// Distinct visitors, an estimate (as `Counts.unique_visitors`).
    pub unique_visitors: u64,
}

/// `GET /v1/stats/summary` as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StatsSummary {
    #[schema(format = DateTime)]
    pub from: String,
    #[schema(format = DateTime)]
    pub to: String,
    pub include_bots: bool,
    pub links: Vec<TopLink>,
}

#[derive(Debug, Row, Deserialize)]
struct BucketRow {
    key: u32,
    clicks: u64,
    visitors: u64,
}

#[derive(Debug, Row, Deserialize)]
struct CrossRowData {
    key: u32,
    vals: Vec<String>,
    clicks: u64,
    visitors: u64,
}

#[derive(Debug, Row, Deserialize)]
struct TopVisitorsRow {
    code: String,
    visitors: u64,
}

/// A link's clicks, for ranking before its visitors are merged.
#[derive(Debug, Row, Deserialize, Serialize)]
struct TopClicksRow {
    code: String,
    clicks: u64,
}

#[derive(Debug, Row, Deserialize, Serialize)]
struct ValueRow {
    key: String,
    clicks: u64,
    visitors: u64,
}

/// The dimensions one may break down by, and their columns.
pub(crate) const DIMENSIONS: &[(&str, &str)] = &[
    ("country", "country"),
    ("city", "city"),
    ("device", "device"),
    ("browser", "browser"),
    ("os", "os"),
    ("referrer", "referrer_host"),
    ("language", "language"),
    ("rule", "rule"),
    (
        "traffic",
        "multiIf(is_preview = 1, 'preview', is_bot = 1, 'bot', 'human')",
    ),
];

/// Most dimensions of cross-dimension rows.
const MAX_CROSS: usize = 3;
/// Most cross-dimension rows.
const MAX_CROSS_ROWS: u64 = 10_000;

struct Range {
    from: i64,
    to: i64,
}

/// The requested range, in whole minutes (the rollups' finest bucket):
/// `from` rounded down, `to` up. Without `from`, the last day for minute
/// buckets, the last 7 days for hour buckets (and the summary), the last 30
/// for day buckets.
fn range(q: &StatsQuery) -> ApiResult<Range> {
    let to =
        q.to.unwrap_or_else(OffsetDateTime::now_utc)
            .unix_timestamp();
    let default_span = match q.bucket.as_deref() {
        Some("minute") => 86_400,
        Some("day") => 30 * 86_400,
        _ => 7 * 86_400,
    };
    let from = q.from.map_or(to - default_span, |f| f.unix_timestamp());
    if from >= to {
        return Err(ApiError::invalid_field("from", "must be before to"));
    }
    // ClickHouse DateTime is an unsigned 32-bit Unix time.
    if from < 0 {
        return Err(ApiError::invalid_field(
            "from",
            "is before 1970, outside the DateTime range",
        ));
    }
    let (from, to) = (rollups::minute_floor(from), rollups::minute_ceil(to));
    if to > u32::MAX as i64 {
        return Err(ApiError::invalid_field(
            "to",
            "is after 2106, outside the DateTime range",
        ));
    }
    Ok(Range { from, to })
}

/// The series' bucket: its name, ClickHouse function, width and the
/// coarsest rollup that can fill it.
fn bucket(
    q: &StatsQuery,
    r: &Range,
) -> ApiResult<(&'static str, &'static str, i64, rollups::Rollup)> {
    let (name, func, rollup) = match q.bucket.as_deref().unwrap_or("day") {
        "minute" => ("minute", "toStartOfMinute", rollups::MINUTE),
        "hour" => ("hour", "toStartOfHour", rollups::HOUR),
        "day" => ("day", "toStartOfDay", rollups::DAY),
        other => {
            return Err(ApiError::invalid_field(
                "bucket",
                format!("{other:?} is not one of minute, hour, day"),
            ));
        }
    };
    let secs = rollup.secs;
    if (r.to - r.from) / secs > MAX_BUCKETS {
        return Err(ApiError::invalid_field(
            "bucket",
            format!("the range holds more than {MAX_BUCKETS} {name} buckets; use a coarser bucket"),
        ));
    }
    Ok((name, func, secs, rollup))
}

/// The dimensions named in `list` (a `dimensions` or `cross` value):
/// known names separated by commas, each once.
fn dimension_list(field: &str, list: Option<&str>) -> ApiResult<Vec<(&'static str, &'static str)>> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for d in list.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let found = DIMENSIONS.iter().find(|(n, _)| *n == d).ok_or_else(|| {
            let names: Vec<&str> = DIMENSIONS.iter().map(|(n, _)| *n).collect();
            ApiError::invalid_field(field, format!("{d:?} is not one of {}", names.join(", ")))
        })?;
        if !out.contains(found) {
            out.push(*found);
        }
    }
    Ok(out)
}

fn dimensions(q: &StatsQuery) -> ApiResult<Vec<(&'static str, &'static str)>> {
    dimension_list("dimensions", q.dimensions.as_deref())
}

/// The dimensions of cross rows: none, or one to [`MAX_CROSS`].
fn cross(q: &StatsQuery) -> ApiResult<Vec<(&'static str, &'static str)>> {
    let dims = dimension_list("cross", q.cross.as_deref())?;
    if q.cross.is_some() && dims.is_empty() {
        return Err(ApiError::invalid_field("cross", "names no dimension"));
    }
    if dims.len() > MAX_CROSS {
        return Err(ApiError::invalid_field(
            "cross",
            format!("at most {MAX_CROSS} dimensions"),
        ));
    }
    Ok(dims)
}

/// The filters of `q`.
fn filters(q: &StatsQuery) -> ApiResult<Filters> {
    Filters::parse(&[
        ("country", q.country.as_deref()),
        ("device", q.device.as_deref()),
        ("referrer", q.referrer.as_deref()),
        ("language", q.language.as_deref()),
        ("rule", q.rule.as_deref()),
    ])
}

fn wants_csv(q: &StatsQuery) -> ApiResult<bool> {
    match q.format.as_deref().unwrap_or("json") {
        "json" => Ok(false),
        "csv" => Ok(true),
        other => Err(ApiError::invalid_field(
            "format",
            format!("{other:?} is not json or csv"),
        )),
    }
}

/// What every stats query counts: redirects, and people only unless bots
/// are asked for. Column names shared by `clicks` and its rollups.
fn counted(include_bots: bool) -> &'static str {
    if include_bots {
        "status IN (301, 302, 307, 308)"
    } else {
        "status IN (301, 302, 307, 308) AND is_bot = 0"
    }
}

/// What a merged query counts per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Measures {
    /// Clicks and the merged visitor estimate.
    ClicksAndVisitors,
    /// Clicks only, visitors 0: the visitor states are then neither read
    /// nor merged, which is most of the time of a query over a busy link's
    /// wide rows (merging half a million states takes 3-4x as long as
    /// counting their clicks: perf/README.md, "The link page asks for
    /// less").
    Clicks,
}

/// `SELECT key, countMerge(c), uniqHLL12Merge(v)` over the rollup rows of `parts`
/// matching `filter`, grouped by `key` and finished by `tail` (`ORDER
/// BY`...). `bind` binds the filter's `?` values; it runs once per part.
#[allow(clippy::too_many_arguments)]
async fn merged<T>(
    ch: &clickhouse::Client,
    parts: &[rollups::Part],
    source: rollups::Source,
    key: rollups::Key<'_>,
    measures: Measures,
    filter: &str,
    bind: impl Fn(clickhouse::query::Query) -> clickhouse::query::Query,
    tail: &str,
) -> ApiResult<Vec<T>>
where
    T: clickhouse::RowOwned + clickhouse::RowRead,
{
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    // The parts still select `v`; ClickHouse reads only the columns the
    // outer query uses.
    let visitors = match measures {
        Measures::ClicksAndVisitors => format!("{}(v)", rollups::VISITORS_MERGE),
        Measures::Clicks => "toUInt64(0)".to_owned(),
    };
    let sql = format!(
        "SELECT {columns}, countMerge(c) AS clicks, {visitors} AS visitors
           FROM ({union}) GROUP BY {columns} {tail}",
        columns = key.columns(),
        union = rollups::union(parts, source, key, filter)
    );
    let mut query = ch.query(&sql);
    for _ in parts {
        query = bind(query);
    }
    query.fetch_all().await.map_err(ch_error)
}

/// ClickHouse down or slow is a 503 (as without ClickHouse at all); any other
/// failure is ours.
pub(crate) fn ch_error(e: clickhouse::error::Error) -> ApiError {
    match e {
        clickhouse::error::Error::Network(_) | clickhouse::error::Error::TimedOut => {
            tracing::warn!(error = %e, "ClickHouse unavailable");
            ApiError::Unavailable("ClickHouse")
        }
        e => ApiError::Internal(anyhow::anyhow!("ClickHouse: {e}")),
    }
}

pub(crate) fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

fn csv_response(name: &str, rows: Vec<Vec<String>>) -> ApiResult<Response> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r).map_err(anyhow::Error::from)?;
    }
    let bytes = w.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}.csv\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// One value of a breakdown: `(value, clicks, visitors)`.
pub type ValueCount = (String, u64, u64);

/// What a [`LinkReport`] holds besides what its [`StatsQuery`] asks for:
/// the stats API's answer ([`ReportOptions::API`]) or the dashboard's link
/// page ([`ReportOptions::PAGE`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportOptions {
    /// Unique visitors per breakdown value (else 0): the API documents
    /// them; the page's bars are clicks, and leaving the visitor states
    /// out makes a busy link's breakdowns 3-4x cheaper ([`Measures`]).
    pub breakdown_visitors: bool,
    /// The bot clicks of the range too ([`LinkReport::bot_clicks`]): one
    /// more query, on the series rollups, rather than a second report with
    /// `include_bots`.
    pub bot_clicks: bool,
    /// Most values per breakdown, most clicked first.
    pub breakdown_rows: u64,
}

impl ReportOptions {
    pub const API: ReportOptions = ReportOptions {
        breakdown_visitors: true,
        bot_clicks: false,
        breakdown_rows: MAX_ROWS,
    };
    /// The page draws the top [`ReportOptions::PAGE_ROWS`] of each breakdown.
    pub const PAGE: ReportOptions = ReportOptions {
        breakdown_visitors: false,
        bot_clicks: true,
        breakdown_rows: Self::PAGE_ROWS,
    };
    pub const PAGE_ROWS: u64 = 10;
}

/// One link's clicks over a range: what `GET /v1/links/{code}/stats` and
/// the dashboard's link page show.
#[derive(Debug)]
pub struct LinkReport {
    /// `minute`, `hour` or `day`.
    pub bucket: &'static str,
    /// The bucket's width, seconds.
    pub bucket_secs: i64,
    /// Unix seconds, `from` inclusive, `to` exclusive.
    pub from: i64,
    pub to: i64,
    pub total_clicks: u64,
    pub total_visitors: u64,
    /// `(bucket start, clicks, visitors)`, buckets without clicks left out.
    pub series: Vec<(i64, u64, u64)>,
    /// Bot clicks of the range (link-preview fetchers included), with
    /// [`ReportOptions::bot_clicks`]; whatever `include_bots` says.
    pub bot_clicks: Option<u64>,
    /// Per asked dimension: `(value, clicks, visitors)`, most clicks first
    /// (visitors 0 without [`ReportOptions::breakdown_visitors`]).
    pub breakdown: Vec<(&'static str, Vec<ValueCount>)>,
    /// Whether `breakdown` counts visitors.
    pub breakdown_visitors: bool,
    /// The dimensions of `cross` rows, in their order.
    pub cross_dimensions: Vec<&'static str>,
    /// `(bucket start, a value per cross dimension, clicks, visitors)`, by
    /// bucket, then most clicks first.
    pub cross: Vec<(i64, Vec<String>, u64, u64)>,
}

/// The one stats query of a link, for `org_id` (the caller's checked
/// `stats:read`): the range, bucket and dimensions checked as the API
/// documents, 404 for a link that is not a live link of the organization,
/// 503 without ClickHouse.
pub async fn link_report(
    state: &AppState,
    org_id: i64,
    code: &str,
    q: &StatsQuery,
    options: ReportOptions,
) -> ApiResult<LinkReport> {
    crate::text::check_code(code)?;
    let r = range(q)?;
    let (bucket_name, bucket_fn, bucket_secs, series_rollup) = bucket(q, &r)?;
    let dims = dimensions(q)?;
    let cross_dims = cross(q)?;
    let filters = filters(q)?;
    // The link must be a live link of the caller's organization: a deleted
    // link is gone (404), as it is for every other link route.
    let link = crate::links::api::fetch_in(state, org_id, q.domain.as_deref(), code).await?;
    // Clicks carry the name of the domain they were served under; the
    // default domain's may also carry none (before domains, or unnamed).
    let mut domains = vec![link.domain.clone()];
    if link.domain_id == 0 && !link.domain.is_empty() {
        domains.push(String::new());
    }
    let ch = state
        .clickhouse
        .as_ref()
        .ok_or(ApiError::Unavailable("ClickHouse"))?;
    // The org first: a range of the rollups' sort key. Org 0 too: clicks
    // stored before click records carried the org.
    // The link's rows that `counting` selects, with the query's filters;
    // `bind` binds them.
    let link_rows = |counting: &str| {
        format!(
            "org_id IN (0, ?) AND code = ? AND has(?, domain) AND {counting}{}",
            filters.sql()
        )
    };
    let filter = link_rows(counted(q.include_bots));
    let org = u64::try_from(org_id).unwrap_or(0);
    let bind =
        |query: clickhouse::query::Query| filters.bind(query.bind(org).bind(code).bind(&domains));
    // The series reads rollups no coarser than its bucket; totals and
    // breakdowns the coarsest (the same numbers, fewer rows).
    let series_parts = rollups::plan(r.from, r.to, series_rollup);
    let parts = rollups::plan(r.from, r.to, rollups::DAY);
    // Every query of the report at once: each is a round trip and a parse
    // on the server, and a page waits for the slowest, not for their sum.
    // Without filters, totals, the series and the traffic split read the
    // series rollups (the same numbers from far fewer rows); a filter names
    // a wide column, so everything reads the wide ones then.
    let filtered = !filters.is_empty();
    let narrow = if filtered {
        rollups::Source::Wide
    } else {
        rollups::Source::Series
    };
    let both = Measures::ClicksAndVisitors;
    let series = merged::<BucketRow>(
        ch,
        &series_parts,
        narrow,
        rollups::Key::Bucket(bucket_fn),
        both,
        &filter,
        bind,
        "ORDER BY key",
    );
    let totals = merged::<BucketRow>(
        ch,
        &parts,
        narrow,
        rollups::Key::None,
        both,
        &filter,
        bind,
        "",
    );
    let bots_filter = link_rows(&format!("{} AND is_bot = 1", counted(true)));
    let bots = async {
        if !options.bot_clicks {
            return Ok(None);
        }
        let key = rollups::Key::None;
        let rows: Vec<BucketRow> = merged(
            ch,
            &parts,
            narrow,
            key,
            Measures::Clicks,
            &bots_filter,
            bind,
            "",
        )
        .await?;
        ApiResult::Ok(Some(rows.first().map_or(0, |r| r.clicks)))
    };
    let breakdown_order = format!(
        "ORDER BY clicks DESC, key LIMIT {}",
        options.breakdown_rows.min(MAX_ROWS)
    );
    let breakdown_measures = if options.breakdown_visitors {
        both
    } else {
        Measures::Clicks
    };
    let breakdown = futures::future::try_join_all(dims.iter().map(|(name, column)| {
        let order = &breakdown_order;
        let filter = &filter;
        let parts = &parts;
        async move {
            let source = rollups::Source::for_breakdown(name, filtered);
            let key = rollups::Key::Column(column);
            let rows: Vec<ValueRow> = merged(
                ch,
                parts,
                source,
                key,
                breakdown_measures,
                filter,
                bind,
                order,
            )
            .await?;
            ApiResult::Ok((
                *name,
                rows.into_iter()
                    .map(|v| (v.key, v.clicks, v.visitors))
                    .collect::<Vec<_>>(),
            ))
        }
    }));
    let cross_columns: Vec<&str> = cross_dims.iter().map(|(_, c)| *c).collect();
    let cross_order = format!("ORDER BY key, clicks DESC, vals LIMIT {MAX_CROSS_ROWS}");
    let cross_rows = async {
        if cross_columns.is_empty() {
            return Ok(Vec::new());
        }
        merged::<CrossRowData>(
            ch,
            &series_parts,
            rollups::Source::Wide,
            rollups::Key::Cross(bucket_fn, &cross_columns),
            both,
            &filter,
            bind,
            &cross_order,
        )
        .await
    };
    let (series, totals, bot_clicks, breakdown, cross_rows) =
        tokio::try_join!(series, totals, bots, breakdown, cross_rows)?;
    let (total_clicks, total_visitors) = totals.first().map_or((0, 0), |t| (t.clicks, t.visitors));
    Ok(LinkReport {
        bucket: bucket_name,
        bucket_secs,
        from: r.from,
        to: r.to,
        total_clicks,
        total_visitors,
        series: series
            .into_iter()
            .map(|b| (b.key as i64, b.clicks, b.visitors))
            .collect(),
        bot_clicks,
        breakdown,
        breakdown_visitors: options.breakdown_visitors,
        cross_dimensions: cross_dims.iter().map(|(n, _)| *n).collect(),
        cross: cross_rows
            .into_iter()
            .map(|c| (c.key as i64, c.vals, c.clicks, c.visitors))
            .collect(),
    })
}

/// `GET /v1/links/{code}/stats`.
pub async fn link_stats(
    State(state): State<AppState>,
    auth: Auth,
    Path(code): Path<String>,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::StatsRead)?;
    crate::text::check_code(&code)?;
    let csv = wants_csv(&q)?;
    let LinkReport {
        bucket: bucket_name,
        from,
        to,
        total_clicks,
        total_visitors,
        series,
        breakdown,
        cross_dimensions,
        cross,
        ..
    } = link_report(&state, org_id, &code, &q, ReportOptions::API).await?;
    if csv {
        let mut rows = vec![vec![
            "kind".to_string(),
            "key".into(),
            "clicks".into(),
            "unique_visitors".into(),
        ]];
        rows.push(vec![
            "total".into(),
            String::new(),
            total_clicks.to_string(),
            total_visitors.to_string(),
        ]);
        for (t, clicks, visitors) in &series {
            rows.push(vec![
                bucket_name.into(),
                rfc3339(*t),
                clicks.to_string(),
                visitors.to_string(),
            ]);
        }
        for (name, values) in &breakdown {
            for (value, clicks, visitors) in values {
                rows.push(vec![
                    (*name).into(),
                    value.clone(),
                    clicks.to_string(),
                    visitors.to_string(),
                ]);
            }
        }
        // A cross row's key: its bucket, then `name=value` per dimension.
        for (t, values, clicks, visitors) in &cross {
            let mut key = rfc3339(*t);
            for (name, value) in cross_dimensions.iter().zip(values) {
                key.push_str(&format!(" {name}={value}"));
            }
            rows.push(vec![
                "cross".into(),
                key,
                clicks.to_string(),
                visitors.to_string(),
            ]);
        }
        return csv_response(&format!("{code}-stats"), rows);
    }
    let cross = cross
        .into_iter()
        .map(|(t, values, clicks, unique_visitors)| CrossRow {
            t: rfc3339(t),
            values: cross_dimensions
                .iter()
                .map(|n| (*n).to_owned())
                .zip(values)
                .collect(),
            clicks,
            unique_visitors,
        })
        .collect();
    let series = series
        .into_iter()
        .map(|(t, clicks, unique_visitors)| SeriesPoint {
            t: rfc3339(t),
            clicks,
            unique_visitors,
        })
        .collect();
    let dimensions = breakdown
        .into_iter()
        .map(|(name, values)| {
            let values = values
                .into_iter()
                .map(|(value, clicks, unique_visitors)| DimensionValue {
                    value,
                    clicks,
                    unique_visitors,
                })
                .collect();
            (name.to_owned(), values)
        })
        .collect();
    Ok(axum::Json(LinkStats {
        code,
        from: rfc3339(from),
        to: rfc3339(to),
        bucket: bucket_name,
        include_bots: q.include_bots,
        totals: Counts {
            clicks: total_clicks,
            unique_visitors: total_visitors,
        },
        series,
        dimensions,
        cross,
    })
    .into_response())
}

/// The organization's `limit` most clicked links over `q`'s range:
/// `(code, clicks, visitors)`. The one query behind `GET /v1/stats/summary`
/// and the dashboard's overview.
pub async fn top_links(
    state: &AppState,
    org_id: i64,
    q: &StatsQuery,
    limit: u64,
) -> ApiResult<Vec<(String, u64, u64)>> {
    let r = range(q)?;
    let ch = state
        .clickhouse
        .as_ref()
        .ok_or(ApiError::Unavailable("ClickHouse"))?;
    // Clicks carry their link's org and every rollup's sort key starts
    // with it, so this reads one range per part however many links the
    // organization has (no list of its codes). Clicks stored before click
    // records carried the org have org 0 and are not counted here
    // (analytics/README.md, "Organisations").
    let filters = filters(q)?;
    let filter = format!(
        "org_id = ? AND {}{}",
        counted(q.include_bots),
        filters.sql()
    );
    let parts = rollups::plan(r.from, r.to, rollups::DAY);
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    // Without filters, the series rollups: a row per link, day and flags
    // rather than per dimension combination.
    let source = if filters.is_empty() {
        rollups::Source::Series
    } else {
        rollups::Source::Wide
    };
    let org = u64::try_from(org_id).unwrap_or(0);
    // Two steps: rank every link by clicks alone (merging count states is
    // cheap), then merge the unique-visitor states of the top ones only.
    // Merging visitor states for every link of a large organization was most
    // of the overview's time (perf/README.md, the dashboard benchmark).
    let sql = format!(
        "SELECT key AS code, countMerge(c) AS clicks
           FROM ({union})
          GROUP BY code ORDER BY clicks DESC, code LIMIT {limit}",
        union = rollups::union(&parts, source, rollups::Key::Column("code"), &filter)
    );
    let mut query = ch.query(&sql);
    for _ in &parts {
        query = filters.bind(query.bind(org));
    }
    let top: Vec<TopClicksRow> = query.fetch_all().await.map_err(ch_error)?;
    if top.is_empty() {
        return Ok(Vec::new());
    }
    // `code IN (?, ...)`, not `has(?, code)`: with the org, the sort key's
    // leading columns, so this reads only the top links' granules.
    let placeholders = vec!["?"; top.len()].join(", ");
    let visitors_filter = format!("{filter} AND code IN ({placeholders})");
    let sql = format!(
        "SELECT key AS code, {merge}(v) AS visitors
           FROM ({union})
          GROUP BY code",
        merge = rollups::VISITORS_MERGE,
        union = rollups::union(
            &parts,
            source,
            rollups::Key::Column("code"),
            &visitors_filter
        )
    );
    let mut query = ch.query(&sql);
    for _ in &parts {
        query = filters.bind(query.bind(org));
        for t in &top {
            query = query.bind(t.code.as_str());
        }
    }
    let visitors: std::collections::HashMap<String, u64> = query
        .fetch_all::<TopVisitorsRow>()
        .await
        .map_err(ch_error)?
        .into_iter()
        .map(|v| (v.code, v.visitors))
        .collect();
    Ok(top
        .into_iter()
        .map(|t| {
            let v = visitors.get(&t.code).copied().unwrap_or(0);
            (t.code, t.clicks, v)
        })
        .collect())
}

/// `GET /v1/stats/summary`: the organization's top links over a range.
pub async fn summary(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<StatsQuery>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::StatsRead)?;
    let r = range(&q)?;
    let csv = wants_csv(&q)?;
    let limit = q.limit.unwrap_or(10);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_ROWS}"),
        ));
    }
    if q.bucket.is_some() || q.dimensions.is_some() || q.cross.is_some() {
        return Err(ApiError::bad_request(format!(
            "summary takes {}",
            SUMMARY_PARAMS.join(", ")
        )));
    }
    let top = top_links(&state, org_id, &q, limit).await?;
    if csv {
        let mut rows = vec![vec![
            "code".to_string(),
            "clicks".into(),
            "unique_visitors".into(),
        ]];
        for (code, clicks, visitors) in &top {
            rows.push(vec![code.clone(), clicks.to_string(), visitors.to_string()]);
        }
        return csv_response("summary", rows);
    }
    let links = top
        .into_iter()
        .map(|(code, clicks, unique_visitors)| TopLink {
            code,
            clicks,
            unique_visitors,
        })
        .collect();
    Ok(axum::Json(StatsSummary {
        from: rfc3339(r.from),
        to: rfc3339(r.to),
        include_bots: q.include_bots,
        links,
    })
    .into_response())
}
