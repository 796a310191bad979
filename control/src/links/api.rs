//! Handlers of `/v1/links`.

use super::input::{self, CreateLink, PatchLink};
use super::model::{LINK_COLUMNS, LinkJson, LinkPage, LinkRow};
use super::rules::{StoredRules, StoredSplit};
use super::store::{self, NewLink, Owner};
use super::utm::{Utm, UtmPatch};
use crate::audit::{Actor, audit};
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::extract::{Json, Path, Query};
use crate::idempotency::{self, Claim};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AssertSqlSafe;
use time::OffsetDateTime;

/// Most links one page returns.
pub const MAX_LIMIT: i64 = 1000;

/// `?domain=` on the routes of one link: the domain its code is on.
/// Absent: the deployment's default domain (what these routes meant before
/// domains, so existing callers keep their meaning).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DomainParam {
    /// A domain name of the caller's organization, or the default domain's.
    pub domain: Option<String>,
}

/// The domain id `?domain=` names for `owner`; a name that is not one of
/// its domains finds no link (404).
pub async fn domain_id(
    state: &AppState,
    conn: &mut sqlx::PgConnection,
    owner: Owner,
    domain: Option<&str>,
) -> ApiResult<i64> {
    let default = state.config.default_domain.as_deref().unwrap_or("");
    crate::domains::store::for_link(conn, owner, default, domain)
        .await
        .map_err(|e| match e {
            ApiError::UnknownDomain { .. } | ApiError::BadRequest { .. } => {
                ApiError::NotFound { what: "link" }
            }
            other => other,
        })
}

fn with_etag(status: StatusCode, row: &LinkRow, body: LinkJson) -> Response {
    let mut r = (status, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&row.etag()) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

/// Refuses a target whose host (or a parent domain) is blocklisted.
pub(super) async fn check_blocklist(conn: &mut sqlx::PgConnection, host: &str) -> ApiResult<()> {
    match store::blocked_rule(conn, host).await? {
        Some(rule) => Err(ApiError::BlockedHost {
            host: host.to_owned(),
            rule,
        }),
        None => Ok(()),
    }
}

/// What a replayed create answers. The first response is replayed as it was,
/// unless the link it created has been deleted since: then 410
/// `link_deleted` naming the code. A client retrying a create must learn
/// that its create did happen (a new key would make a second link), and must
/// not be handed a short URL that no longer works as if it did.
async fn replay(
    conn: &mut sqlx::PgConnection,
    org_id: i64,
    status: u16,
    body: serde_json::Value,
) -> ApiResult<Response> {
    // The replayed representation's ETag and Location, as the first answer
    // had them: the row's id with the replayed body's version.
    let mut etag = None;
    let mut location = None;
    if let Some(code) = body.get("code").and_then(|c| c.as_str()) {
        // The default domain's JSON name is null; its row's name is '' or
        // the configured one.
        let domain = body.get("domain").and_then(|d| d.as_str());
        let row: Option<(i64, bool)> = sqlx::query_as(
            "SELECT l.id, l.deleted_at IS NOT NULL FROM links l
              WHERE l.code = $1 AND l.org_id = $2
                AND l.domain_id = CASE WHEN $3::text IS NULL THEN 0 ELSE
                    (SELECT d.id FROM domains d WHERE d.name = $3 AND d.id = l.domain_id) END",
        )
        .bind(code)
        .bind(org_id)
        .bind(domain)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((id, false)) = row else {
            return Err(ApiError::LinkDeleted {
                code: code.to_owned(),
            });
        };
        if let Some(version) = body.get("version").and_then(|v| v.as_i64()) {
            etag = Some(format!("\"{id}.{version}\""));
        }
        location = Some(match domain {
            None => format!("/v1/links/{code}"),
            Some(d) => format!("/v1/links/{code}?domain={d}"),
        });
    }
    let mut r = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        axum::Json(body),
    )
        .into_response();
    let h = r.headers_mut();
    h.insert("idempotent-replayed", HeaderValue::from_static("true"));
    for (name, value) in [(header::ETAG, etag), (header::LOCATION, location)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    }
    Ok(r)
}

/// Checks a create request for `org_id`: the link to insert and its
/// target's host (for the blocklist, checked in the write's transaction).
pub fn check_create(
    state: &AppState,
    org_id: i64,
    req: &CreateLink,
) -> ApiResult<(NewLink, String)> {
    let raw_target = req
        .target
        .as_deref()
        .ok_or_else(|| ApiError::invalid_field("target", "is required (or long_url)"))?;
    let target = state.targets.check(raw_target)?;
    if let Some(alias) = &req.custom_alias {
        crate::codes::validate_alias(alias)?;
    }
    let expired = req
        .expired_url
        .as_deref()
        .map(|url| check_expired_url(state, url))
        .transpose()?;
    let expires_at = req.expires_at.map(input::check_expiry).transpose()?;
    let valid_since = req
        .valid_since
        .map(|at| super::times::check_shown("valid_since", at))
        .transpose()?;
    input::check_window(valid_since, expires_at)?;
    let utm = match &req.utm {
        Some(u) => u.checked()?,
        None => Utm::default(),
    };
    super::utm::check_merged(&target.url, &utm)?;
    let mut rule_hosts = Vec::new();
    let mut rules = super::rules::parse_rules(req.rules.as_ref().unwrap_or(&Value::Null))?;
    super::rules::check_rules(&state.targets, &mut rules, &mut rule_hosts)?;
    let mut split = super::rules::parse_split(req.split.as_ref().unwrap_or(&Value::Null))?;
    super::rules::check_split(&state.targets, &mut split, &mut rule_hosts)?;
    let new = NewLink {
        org_id,
        domain_id: 0,
        code: req.custom_alias.clone(),
        target: target.url,
        status: input::check_status(req.status.unwrap_or(301))?,
        expires_at,
        valid_since,
        expired_url: expired.as_ref().map(|t| t.url.clone()),
        expired_host: expired.map(|t| t.host),
        utm,
        rules,
        split,
        rule_hosts,
        forward_query: req.forward_query.unwrap_or(false),
        tags: input::check_tags(req.tags.clone().unwrap_or_default())?,
        title: input::check_title(req.title.clone())?,
        password: match &req.password {
            Some(p) => p.checked("password").map(|_| Some(p.clone()))?,
            None => None,
        },
        password_hash: None,
        max_visits: req.max_visits.map(input::check_max_visits).transpose()?,
    };
    Ok((new, target.host))
}

/// Checks an `expired_url` like a target (the same policy), naming the
/// field in the error.
fn check_expired_url(state: &AppState, url: &str) -> ApiResult<crate::target::Target> {
    state.targets.check(url).map_err(|e| match e {
        ApiError::InvalidUrl(message) => ApiError::invalid_field("expired_url", message),
        other => other,
    })
}

/// Inserts a checked link in `tx` with its audit entry and outbox row: the
/// one way a link is created (the API and the dashboard both come here).
pub async fn insert_checked(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    actor: Actor,
    new: &NewLink,
    host: &str,
    domain: Option<&str>,
) -> ApiResult<LinkRow> {
    let row = insert_unrecorded(tx, state, actor, new, host, domain).await?;
    store::record_change(tx, row.id).await
}

/// [`insert_checked`] without the outbox row: for writers of many links
/// (bulk), which record all their changes at once, last
/// ([`store::record_changes`]).
pub(super) async fn insert_unrecorded(
    tx: &mut sqlx::PgConnection,
    state: &AppState,
    actor: Actor,
    new: &NewLink,
    host: &str,
    domain: Option<&str>,
) -> ApiResult<LinkRow> {
    check_blocklist(tx, host).await?;
    if let Some(host) = &new.expired_host {
        check_blocklist(tx, host).await?;
    }
    for host in &new.rule_hosts {
        check_blocklist(tx, host).await?;
    }
    let default = state.config.default_domain.as_deref().unwrap_or("");
    let domain_id =
        crate::domains::store::for_link(tx, Owner::Org(new.org_id), default, domain).await?;
    let password_hash = match &new.password {
        Some(password) => Some(state.passwords.hash_link(password.expose()).await?),
        None => new.password_hash.clone(),
    };
    let new = NewLink {
        domain_id,
        password: None,
        password_hash,
        ..new.clone()
    };
    let row = store::insert(tx, &new, state.config.code_length).await?;
    audit(
        tx,
        Some(new.org_id),
        actor,
        "link.create",
        &row.code,
        json!({ "target": row.target, "domain": row.domain }),
    )
    .await?;
    Ok(row)
}

/// Creates a link for `auth` (`links:write`), without idempotency.
pub async fn create_link(state: &AppState, auth: &Auth, req: &CreateLink) -> ApiResult<LinkRow> {
    let org_id = auth.org(Scope::LinksWrite)?;
    let (new, host) = check_create(state, org_id, req)?;
    let mut tx = state.db.begin().await?;
    let row = insert_checked(
        &mut tx,
        state,
        auth.actor(),
        &new,
        &host,
        req.domain.as_deref(),
    )
    .await?;
    tx.commit().await?;
    state.metrics.links_written.inc();
    Ok(row)
}

pub async fn create(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Json(req): Json<CreateLink>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::LinksWrite)?;
    let idem_key = idempotency::key_from(&headers)?;
    let (new, host) = check_create(&state, org_id, &req)?;

    let mut tx = state.db.begin().await?;
    // A replay answers what the first request got (see `replay`).
    if let Some(key) = &idem_key {
        let hash = idempotency::request_hash(&req);
        if let Claim::Replay { status, body } =
            idempotency::claim(&mut tx, org_id, key, &hash).await?
        {
            let r = replay(&mut tx, org_id, status, body).await;
            tx.rollback().await?;
            return r;
        }
    }
    let row = insert_checked(
        &mut tx,
        &state,
        auth.actor(),
        &new,
        &host,
        req.domain.as_deref(),
    )
    .await?;
    let body = row.to_json(state.short_base());
    if let Some(key) = &idem_key {
        let value = serde_json::to_value(&body).map_err(anyhow::Error::from)?;
        idempotency::store(&mut tx, org_id, key, 201, &value).await?;
    }
    tx.commit().await?;
    state.metrics.links_written.inc();
    let mut r = with_etag(StatusCode::CREATED, &row, body);
    let location = match row.domain_id {
        0 => format!("/v1/links/{}", row.code),
        _ => format!("/v1/links/{}?domain={}", row.code, row.domain),
    };
    if let Ok(v) = HeaderValue::from_str(&location) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    Ok(r)
}

/// A live link of the caller's organization on the default domain. A code
/// that breaks the code rules is a 400 naming `code` (it cannot exist, and
/// must not reach SQL).
pub async fn fetch(state: &AppState, org_id: i64, code: &str) -> ApiResult<LinkRow> {
    fetch_in(state, org_id, None, code).await
}

/// [`fetch`] on the domain `?domain=` names (`None`: the default domain).
pub async fn fetch_in(
    state: &AppState,
    org_id: i64,
    domain: Option<&str>,
    code: &str,
) -> ApiResult<LinkRow> {
    crate::text::check_code(code)?;
    let mut conn = state.db.acquire().await?;
    let domain_id = domain_id(state, &mut conn, Owner::Org(org_id), domain).await?;
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM links
          WHERE code = $1 AND org_id = $2 AND domain_id = $3 AND deleted_at IS NULL"
    );
    sqlx::query_as(AssertSqlSafe(sql))
        .bind(code)
        .bind(org_id)
        .bind(domain_id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or(ApiError::NotFound { what: "link" })
}

pub async fn get(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(on): Query<DomainParam>,
) -> ApiResult<Response> {
    let org_id = auth.org(Scope::LinksRead)?;
    let row = fetch_in(&state, org_id, on.domain.as_deref(), &code).await?;
    let etag = row.etag();
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        let mut r = StatusCode::NOT_MODIFIED.into_response();
        r.headers_mut().insert(
            header::ETAG,
            HeaderValue::from_str(&etag).expect("ascii etag"),
        );
        return Ok(r);
    }
    // The ETag versions the link's settings; its click totals change
    // without a new version (see `links::clicks`).
    let mut json = [row.to_json(state.short_base())];
    let ch = state.clickhouse.as_ref();
    super::clicks::fill(
        &state.click_totals,
        ch,
        std::slice::from_ref(&row),
        &mut json,
    )
    .await;
    let [json] = json;
    Ok(with_etag(StatusCode::OK, &row, json))
}

/// Fails with 412 unless `given` (an `If-Match` value) names the row's
/// current version.
pub(super) fn check_version(given: &str, row: &LinkRow) -> ApiResult<()> {
    let given = given.trim().to_owned();
    let current = row.etag();
    if given == "*" || given.split(',').any(|t| t.trim() == current) {
        Ok(())
    } else {
        Err(ApiError::PreconditionFailed { given, current })
    }
}

/// Applies a patch to a row; `false` when nothing changed.
pub(super) fn apply_patch(row: &mut LinkRow, patch: Patch) -> bool {
    let before = (
        row.target.clone(),
        row.status,
        (row.expires_at, row.valid_since, row.expired_url.clone()),
        row.utm.clone(),
        (row.rules.clone(), row.split.clone()),
        (row.password_hash.clone(), row.max_visits),
        row.disabled,
        row.forward_query,
        row.tags.clone(),
        row.title.clone(),
    );
    if let Some(max) = patch.max_visits {
        row.max_visits = max;
    }
    if let Some(hash) = patch.password_hash {
        row.password_hash = hash;
    }
    if let Some(t) = patch.target {
        row.target = t;
    }
    if let Some(s) = patch.status {
        row.status = s;
    }
    if let Some(e) = patch.expires_at {
        row.expires_at = e;
    }
    if let Some(v) = patch.valid_since {
        row.valid_since = v;
    }
    if let Some(u) = patch.expired_url {
        row.expired_url = u;
    }
    patch.utm.apply(&mut row.utm);
    if let Some(rules) = patch.rules {
        row.rules = StoredRules(rules);
    }
    if let Some(split) = patch.split {
        row.split = StoredSplit(split);
    }
    if let Some(d) = patch.disabled {
        row.disabled = d;
    }
    if let Some(f) = patch.forward_query {
        row.forward_query = f;
    }
    if let Some(t) = patch.tags {
        row.tags = t;
    }
    if let Some(t) = patch.title {
        row.title = t;
    }
    before
        != (
            row.target.clone(),
            row.status,
            (row.expires_at, row.valid_since, row.expired_url.clone()),
            row.utm.clone(),
            (row.rules.clone(), row.split.clone()),
            (row.password_hash.clone(), row.max_visits),
            row.disabled,
            row.forward_query,
            row.tags.clone(),
            row.title.clone(),
        )
}

/// Checks a patch: the patch to apply and the hosts of the URLs it sets
/// (target, expired URL) for the blocklist, checked in the write's
/// transaction. Whether `valid_since` is before `expires_at` depends on the
/// row too: [`apply_patch`]'s caller checks it ([`check_row`]), and so
/// whether the UTM values still merge into the target.
pub(super) fn check_patch(state: &AppState, req: PatchLink) -> ApiResult<(Patch, Vec<String>)> {
    let target = req
        .target
        .as_deref()
        .map(|t| state.targets.check(t))
        .transpose()?;
    let expired = match &req.expired_url {
        Some(Some(url)) => Some(check_expired_url(state, url)?),
        _ => None,
    };
    let mut blocklist_hosts: Vec<String> = target
        .iter()
        .chain(expired.iter())
        .map(|t| t.host.clone())
        .collect();
    // `null` and `[]` clear; a list replaces.
    let rules = match &req.rules {
        None => None,
        Some(value) => {
            let mut rules = super::rules::parse_rules(value.as_ref().unwrap_or(&Value::Null))?;
            super::rules::check_rules(&state.targets, &mut rules, &mut blocklist_hosts)?;
            Some(rules)
        }
    };
    let split = match &req.split {
        None => None,
        Some(value) => {
            let mut split = super::rules::parse_split(value.as_ref().unwrap_or(&Value::Null))?;
            super::rules::check_split(&state.targets, &mut split, &mut blocklist_hosts)?;
            Some(split)
        }
    };
    let patch = Patch {
        target: target.map(|t| t.url),
        status: req.status.map(input::check_status).transpose()?,
        expires_at: match req.expires_at {
            Some(Some(at)) => Some(Some(input::check_expiry(at)?)),
            other => other,
        },
        valid_since: match req.valid_since {
            Some(Some(at)) => Some(Some(super::times::check_shown("valid_since", at)?)),
            other => other,
        },
        expired_url: match req.expired_url {
            Some(Some(_)) => Some(expired.map(|t| t.url)),
            other => other,
        },
        utm: match &req.utm {
            None => UtmPatch::default(),
            Some(None) => UtmPatch::clear_all(),
            Some(Some(u)) => u.check()?,
        },
        rules,
        split,
        password: match &req.password {
            None => None,
            Some(None) => Some(None),
            Some(Some(p)) => Some(Some(p.checked("password")?.to_owned())),
        },
        password_hash: None,
        max_visits: req
            .max_visits
            .map(|max| max.map(input::check_max_visits).transpose())
            .transpose()?,
        disabled: req.disabled,
        forward_query: req.forward_query,
        tags: req.tags.map(input::check_tags).transpose()?,
        title: req.title.map(input::check_title).transpose()?,
    };
    Ok((patch, blocklist_hosts))
}

/// What a patched row must still hold: `valid_since` before `expires_at`,
/// a target that the UTM values merge into (either may have changed), and
/// rules and split that make a valid record together (each was checked
/// alone; this is the snapshot's own check of the pair).
pub(super) fn check_row(row: &LinkRow) -> ApiResult<()> {
    input::check_window(row.valid_since, row.expires_at)?;
    super::utm::check_merged(&row.target, &row.utm)?;
    snapshots::rules::validate_rules(&row.rules.0, &row.split.0)
        .map_err(|e| super::rules::rules_error(&e))
}

/// A checked [`PatchLink`].
pub(super) struct Patch {
    target: Option<String>,
    status: Option<i16>,
    expires_at: Option<Option<OffsetDateTime>>,
    valid_since: Option<Option<OffsetDateTime>>,
    expired_url: Option<Option<String>>,
    utm: UtmPatch,
    /// Replaces the rules (`[]`: clears).
    rules: Option<Vec<snapshots::rules::Rule>>,
    /// Replaces the split (`[]`: clears).
    split: Option<Vec<snapshots::rules::Variant>>,
    /// A new password (checked, not yet hashed), or `None` to remove it.
    password: Option<Option<String>>,
    /// What [`Patch::hash_password`] made of `password`.
    password_hash: Option<Option<String>>,
    /// A new visit limit, or `None` to remove it.
    max_visits: Option<Option<i32>>,
    disabled: Option<bool>,
    forward_query: Option<bool>,
    tags: Option<Vec<String>>,
    title: Option<Option<String>>,
}

impl Patch {
    /// Hashes a new password into `password_hash` (a removal passes
    /// through); argon2 runs on the bounded blocking pool.
    pub(super) async fn hash_password(&mut self, state: &AppState) -> ApiResult<()> {
        self.password_hash = match self.password.take() {
            None => None,
            Some(None) => Some(None),
            Some(Some(password)) => Some(Some(state.passwords.hash_link(&password).await?)),
        };
        Ok(())
    }
}

/// `PATCH /v1/links/{code}`. A patch that changes nothing (`{}`, or values
/// equal to the current ones) answers 200 with the same version and ETag and
/// writes nothing: no version bump, no audit entry, no change for engines.
pub async fn patch(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(on): Query<DomainParam>,
    Json(req): Json<PatchLink>,
) -> ApiResult<Response> {
    let if_match = match headers.get(header::IF_MATCH) {
        Some(v) => Some(v.to_str().unwrap_or("")),
        None => None,
    };
    let row = update_link(&state, &auth, on.domain.as_deref(), &code, req, if_match).await?;
    Ok(with_etag(
        StatusCode::OK,
        &row,
        row.to_json(state.short_base()),
    ))
}

/// Applies `req` to the link `code` for `auth` (`links:write`): the one way
/// a link is edited (the API and the dashboard both come here). `if_match`
/// is an `If-Match` value (the dashboard sends the ETag of the version its
/// form showed, so an edit made meanwhile is not overwritten unseen).
pub async fn update_link(
    state: &AppState,
    auth: &Auth,
    domain: Option<&str>,
    code: &str,
    req: PatchLink,
    if_match: Option<&str>,
) -> ApiResult<LinkRow> {
    let org_id = auth.org(Scope::LinksWrite)?;
    crate::text::check_code(code)?;
    // Validate (and hash a new password) before taking any lock.
    let (mut patch, blocklist_hosts) = check_patch(state, req)?;
    patch.hash_password(state).await?;
    let mut tx = state.db.begin().await?;
    for host in &blocklist_hosts {
        check_blocklist(&mut tx, host).await?;
    }
    let domain_id = domain_id(state, &mut tx, Owner::Org(org_id), domain).await?;
    let mut row = store::lock(&mut tx, Owner::Org(org_id), domain_id, code).await?;
    if let Some(given) = if_match {
        check_version(given, &row)?;
    }
    if !apply_patch(&mut row, patch) {
        tx.rollback().await?;
        return Ok(row);
    }
    check_row(&row)?;
    let row = store::save(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "link.update",
        &row.code,
        json!({ "version": row.version }),
    )
    .await?;
    let row = store::record_change(&mut tx, row.id).await?;
    tx.commit().await?;
    state.metrics.links_written.inc();
    Ok(row)
}

pub async fn delete(
    State(state): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    Path(code): Path<String>,
    Query(on): Query<DomainParam>,
) -> ApiResult<StatusCode> {
    let if_match = match headers.get(header::IF_MATCH) {
        Some(v) => Some(v.to_str().unwrap_or("")),
        None => None,
    };
    delete_link(&state, &auth, on.domain.as_deref(), &code, if_match).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes the link `code` for `auth` (`links:write`), if `if_match` (an
/// `If-Match` value) names its version when given: the one way, for the
/// API and the dashboard.
pub async fn delete_link(
    state: &AppState,
    auth: &Auth,
    domain: Option<&str>,
    code: &str,
    if_match: Option<&str>,
) -> ApiResult<()> {
    let org_id = auth.org(Scope::LinksWrite)?;
    crate::text::check_code(code)?;
    let mut tx = state.db.begin().await?;
    let domain_id = domain_id(state, &mut tx, Owner::Org(org_id), domain).await?;
    let mut row = store::lock(&mut tx, Owner::Org(org_id), domain_id, code).await?;
    if let Some(given) = if_match {
        check_version(given, &row)?;
    }
    row.deleted_at = Some(OffsetDateTime::now_utc());
    let row = store::save(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "link.delete",
        &row.code,
        json!({}),
    )
    .await?;
    store::record_change(&mut tx, row.id).await?;
    tx.commit().await?;
    state.metrics.links_written.inc();
    Ok(())
}

/// Disables or re-enables a link at once, whatever its ETag. Already in that
/// state: the row as it is, nothing written. `domain`: the `?domain=` name
/// (`None`: the default domain).
pub async fn set_disabled(
    state: &AppState,
    owner: Owner,
    actor: Actor,
    domain: Option<&str>,
    code: &str,
    disabled: bool,
) -> ApiResult<LinkRow> {
    crate::text::check_code(code)?;
    let mut tx = state.db.begin().await?;
    let domain = domain_id(state, &mut tx, owner, domain).await?;
    let mut row = store::lock(&mut tx, owner, domain, code).await?;
    if row.disabled == disabled {
        tx.rollback().await?;
        return Ok(row);
    }
    row.disabled = disabled;
    let row = store::save(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(row.org_id),
        actor,
        if disabled {
            "link.disable"
        } else {
            "link.enable"
        },
        &row.code,
        json!({}),
    )
    .await?;
    let row = store::record_change(&mut tx, row.id).await?;
    tx.commit().await?;
    state.metrics.links_written.inc();
    Ok(row)
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Page size (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Only links with this tag.
    pub tag: Option<String>,
    /// Only disabled (`true`) or enabled (`false`) links.
    pub disabled: Option<bool>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_after: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub created_before: Option<OffsetDateTime>,
    /// Search text in the target and the title (case-insensitive).
    pub q: Option<String>,
    /// Only links on this domain (a name of the organization's, or the
    /// default domain's).
    pub domain: Option<String>,
}

/// The links listing's cursor tag. Pages run newest first by id, so links
/// created while a client pages land before its position and never shift or
/// repeat what it has yet to read.
const CURSOR_TAG: &str = "l1";

/// Escapes `%`, `_` and `\` for a LIKE pattern.
fn like_pattern(q: &str) -> String {
    let mut out = String::with_capacity(q.len() + 2);
    out.push('%');
    for c in q.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// One page of an organization's live links, newest first, and the cursor
/// of the next page: the one listing (the API and the dashboard both come
/// here). Keyset pagination on `links_org_live (org_id, id DESC)`, so a
/// page costs the same however deep it is.
pub async fn list_links(
    state: &AppState,
    org_id: i64,
    q: &ListQuery,
) -> ApiResult<(Vec<LinkRow>, Option<String>)> {
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::invalid_field(
            "limit",
            format!("must be 1 to {MAX_LIMIT}"),
        ));
    }
    let after_id = q
        .cursor
        .as_deref()
        .map(|c| crate::cursor::decode(CURSOR_TAG, c))
        .transpose()?;
    if let Some(tag) = &q.tag {
        input::check_tag_filter(tag)?;
    }
    if let Some(text) = &q.q {
        crate::text::check("q", text, input::MAX_QUERY_LEN)?;
    }
    // Only the filters given are in the statement (values stay bound), so
    // each shape gets a plan that can use its index: `links_org_live` for
    // the order, the GIN indexes for a tag (`@>`) and for `q` (trigrams,
    // migration 0007). A generic plan of `($n IS NULL OR ...)` could not.
    let domain = match q.domain.as_deref() {
        Some(name) => {
            let mut conn = state.db.acquire().await?;
            Some(domain_id(state, &mut conn, Owner::Org(org_id), Some(name)).await?)
        }
        None => None,
    };
    let mut sql =
        format!("SELECT {LINK_COLUMNS} FROM links WHERE org_id = $1 AND deleted_at IS NULL");
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if after_id.is_some() {
        sql += &format!(" AND id < ${}", next());
    }
    if q.tag.is_some() {
        sql += &format!(" AND tags @> ARRAY[${}::text]", next());
    }
    if q.disabled.is_some() {
        sql += &format!(" AND disabled = ${}", next());
    }
    if q.created_after.is_some() {
        sql += &format!(" AND created_at >= ${}", next());
    }
    if q.created_before.is_some() {
        sql += &format!(" AND created_at < ${}", next());
    }
    if domain.is_some() {
        sql += &format!(" AND domain_id = ${}", next());
    }
    if q.q.is_some() {
        let i = next();
        sql += &format!(" AND (target ILIKE ${i} OR title ILIKE ${i})");
    }
    sql += &format!(" ORDER BY id DESC LIMIT ${}", next());
    let mut query = sqlx::query_as::<_, LinkRow>(AssertSqlSafe(sql)).bind(org_id);
    if let Some(id) = after_id {
        query = query.bind(id);
    }
    if let Some(tag) = &q.tag {
        query = query.bind(tag);
    }
    if let Some(d) = q.disabled {
        query = query.bind(d);
    }
    if let Some(t) = q.created_after {
        query = query.bind(t);
    }
    if let Some(t) = q.created_before {
        query = query.bind(t);
    }
    if let Some(id) = domain {
        query = query.bind(id);
    }
    if let Some(text) = &q.q {
        query = query.bind(like_pattern(text));
    }
    // A search is planned with its text each time (an unnamed statement):
    // a cached generic plan cannot tell a rare text, for which the trigram
    // index wins, from a common one, for which walking ids does.
    let mut rows: Vec<LinkRow> = query
        .bind(limit + 1)
        .persistent(q.q.is_none())
        .fetch_all(&state.db)
        .await?;
    let next_cursor = if rows.len() as i64 > limit {
        rows.truncate(limit as usize);
        rows.last().map(|r| crate::cursor::encode(CURSOR_TAG, r.id))
    } else {
        None
    };
    Ok((rows, next_cursor))
}

pub async fn list(
    State(state): State<AppState>,
    auth: Auth,
    Query(q): Query<ListQuery>,
) -> ApiResult<axum::Json<LinkPage>> {
    let org_id = auth.org(Scope::LinksRead)?;
    let (rows, next_cursor) = list_links(&state, org_id, &q).await?;
    let mut links: Vec<LinkJson> = rows.iter().map(|r| r.to_json(state.short_base())).collect();
    super::clicks::fill(
        &state.click_totals,
        state.clickhouse.as_ref(),
        &rows,
        &mut links,
    )
    .await;
    Ok(axum::Json(LinkPage { links, next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trip_and_refusal() {
        let decode = |c: &str| crate::cursor::decode(CURSOR_TAG, c);
        assert_eq!(decode(&crate::cursor::encode(CURSOR_TAG, 42)).unwrap(), 42);
        assert!(decode("zz").is_err());
        assert!(decode(&hex::encode("x:1")).is_err());
        assert!(decode(&"00".repeat(1000)).is_err());
        assert_eq!(like_pattern("a%b_"), "%a\\%b\\_%");
    }
}
