//! What a caller may do with an organization's domains, and doing it: the
//! one implementation behind `/v1/domains` ([`super::api`]) and the
//! dashboard's domains pages (`dashboard::domains`), so the two cannot
//! drift apart.
//!
//! The rules, here and nowhere else:
//! - reading (list, one domain, what to publish) is for whoever may read
//!   links ([`READ`]: viewers, `links:read` keys);
//! - claiming, verifying, changing settings and deleting is for whoever may
//!   write links ([`WRITE`]: editors and up, `links:write` keys);
//! - another organization's domain does not exist for the caller (404);
//! - a name is normalised once ([`input::normalize_name`]); a name from a
//!   URL path that cannot be a domain is a 404 (it cannot exist);
//! - the deployment's own names and names another organization has verified
//!   cannot be claimed; settings are checked like link targets.
//!
//! Certificates have their own rule (an admin orders one):
//! `acme::api::request_certificate`.

use super::input::{self, PatchDomain};
use super::model::DomainRow;
use super::store;
use super::{dns, verify};
use crate::audit::audit;
use crate::auth::{Auth, Scope};
use crate::error::{ApiError, ApiResult};
use crate::links::store::Owner;
use crate::state::AppState;
use serde_json::json;
use snapshots::delta::LinkChange;

/// Length of a verification token (base62: about 190 bits).
const TOKEN_LEN: usize = 32;

/// The scope that reads an organization's domains.
pub const READ: Scope = Scope::LinksRead;
/// The scope that claims, verifies, changes and deletes them.
pub const WRITE: Scope = Scope::LinksWrite;

/// The caller's organization, when it may read its domains.
pub fn may_read(auth: &Auth) -> ApiResult<i64> {
    auth.org(READ)
}

/// The caller's organization, when it may change its domains.
pub fn may_write(auth: &Auth) -> ApiResult<i64> {
    auth.org(WRITE)
}

/// Names nobody may claim: the deployment's own and their subdomains.
fn reserved(state: &AppState, name: &str) -> bool {
    let short_host = url::Url::parse(&state.config.short_base)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let default = state.config.default_domain.as_deref().unwrap_or("");
    input::within(name, default) || input::within(name, &short_host)
}

/// A name from a URL path, normalised; one that cannot be a domain is a
/// 404 (it cannot exist), never a query with it.
pub fn path_name(raw: &str) -> ApiResult<String> {
    input::normalize_name("name", raw).map_err(|_| ApiError::NotFound { what: "domain" })
}

/// Claims `raw_name` (as typed) for the caller's organization: a pending
/// domain, its verification answer published to the engines.
pub async fn create_domain(state: &AppState, auth: &Auth, raw_name: &str) -> ApiResult<DomainRow> {
    let org_id = may_write(auth)?;
    let name = input::normalize_name("name", raw_name)?;
    if reserved(state, &name) {
        return Err(ApiError::DomainTaken { name });
    }
    let token = crate::codes::random_base62(TOKEN_LEN);
    let mut tx = state.db.begin().await?;
    if store::verified_elsewhere(&mut tx, &name, org_id).await? {
        return Err(ApiError::DomainTaken { name });
    }
    let row = store::insert(&mut tx, org_id, &name, &token).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.create",
        &row.name,
        json!({ "id": row.id }),
    )
    .await?;
    // Engines learn of the pending domain (so a deployment without a named
    // default domain stops answering unknown names as the default domain)
    // and of its verification answer.
    store::announce(&mut tx, &row).await?;
    store::record_change(
        &mut tx,
        &row.name,
        LinkChange::WellKnownUpsert {
            answer: store::verification_answer(&row),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

/// The caller's organization's live domains, oldest first.
pub async fn list_domains(state: &AppState, auth: &Auth) -> ApiResult<Vec<DomainRow>> {
    let org_id = may_read(auth)?;
    let mut conn = state.db.acquire().await?;
    store::list(&mut conn, Some(org_id)).await
}

/// One of the caller's organization's domains, by a name from a path.
pub async fn get_domain(state: &AppState, auth: &Auth, raw_name: &str) -> ApiResult<DomainRow> {
    let org_id = may_read(auth)?;
    let name = path_name(raw_name)?;
    let mut conn = state.db.acquire().await?;
    store::find(&mut conn, Owner::Org(org_id), &name, false).await
}

/// Live links on one of the caller's domains (what a delete takes with it).
pub async fn domain_links(state: &AppState, auth: &Auth, row: &DomainRow) -> ApiResult<i64> {
    may_read(auth)?;
    let mut conn = state.db.acquire().await?;
    store::live_links(&mut conn, row.id).await
}

/// Changes a domain's settings (absent fields stay, `Some(None)` clears).
/// A patch that changes nothing writes nothing.
pub async fn update_domain(
    state: &AppState,
    auth: &Auth,
    raw_name: &str,
    req: PatchDomain,
) -> ApiResult<DomainRow> {
    let org_id = may_write(auth)?;
    let name = path_name(raw_name)?;
    let check_url = |field: &str, url: Option<String>| -> ApiResult<Option<String>> {
        url.map(|u| {
            state
                .targets
                .check(&u)
                .map(|t| t.url)
                .map_err(|e| ApiError::invalid_field(field, e))
        })
        .transpose()
    };
    let root = req
        .root_redirect
        .map(|u| check_url("root_redirect", u))
        .transpose()?;
    let not_found = req
        .not_found_redirect
        .map(|u| check_url("not_found_redirect", u))
        .transpose()?;
    let mode = req
        .http_mode
        .as_deref()
        .map(input::check_http_mode)
        .transpose()?;
    let hsts = req
        .hsts_max_age
        .map(|age| age.map(input::check_hsts).transpose())
        .transpose()?;

    let mut tx = state.db.begin().await?;
    let mut row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    let before = (
        row.root_redirect.clone(),
        row.not_found_redirect.clone(),
        row.http_mode.clone(),
        row.hsts_max_age,
    );
    if let Some(v) = root {
        row.root_redirect = v;
    }
    if let Some(v) = not_found {
        row.not_found_redirect = v;
    }
    if let Some(v) = mode {
        row.http_mode = v;
    }
    if let Some(v) = hsts {
        row.hsts_max_age = v;
    }
    let after = (
        row.root_redirect.clone(),
        row.not_found_redirect.clone(),
        row.http_mode.clone(),
        row.hsts_max_age,
    );
    if before == after {
        tx.rollback().await?;
        return Ok(row);
    }
    let row = store::save_settings(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.update",
        &row.name,
        json!({
            "root_redirect": row.root_redirect,
            "not_found_redirect": row.not_found_redirect,
            "http_mode": row.http_mode,
            "hsts_max_age": row.hsts_max_age,
        }),
    )
    .await?;
    store::announce(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Checks the proof the deployment asks for (the TXT record, the token
/// fetched from the name, or both); once proven the domain is verified and
/// engines serve it. Already verified: the domain as it is. A failed check
/// is 422 `verification_failed` with the reason.
pub async fn verify_domain(state: &AppState, auth: &Auth, raw_name: &str) -> ApiResult<DomainRow> {
    let org_id = may_write(auth)?;
    let name = path_name(raw_name)?;
    let row = {
        let mut conn = state.db.acquire().await?;
        store::find(&mut conn, Owner::Org(org_id), &name, false).await?
    };
    if row.verified_at.is_some() {
        return Ok(row);
    }
    // The checks happen outside any transaction: they may take seconds.
    let method = state.config.domain_verification;
    let failed = |reason| ApiError::VerificationFailed {
        name: row.name.clone(),
        reason,
    };
    if method.needs_dns() {
        dns::check(state.config.dns_server, &row.name, &row.verification_token)
            .await
            .map_err(failed)?;
    }
    if method.needs_http() {
        verify::check(
            &state.config.verify_resolve,
            &row.name,
            &row.verification_path(),
            &row.verification_token,
        )
        .await
        .map_err(failed)?;
    }
    let mut tx = state.db.begin().await?;
    let row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    if row.verified_at.is_some() {
        tx.rollback().await?;
        return Ok(row);
    }
    let row = store::set_verified(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.verify",
        &row.name,
        json!({ "id": row.id }),
    )
    .await?;
    store::announce(&mut tx, &row).await?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a domain; refused (409 `domain_in_use`) while live links use it
/// unless `cascade`, which deletes them with it. Returns how many links went.
pub async fn delete_domain(
    state: &AppState,
    auth: &Auth,
    raw_name: &str,
    cascade: bool,
) -> ApiResult<i64> {
    let org_id = may_write(auth)?;
    let name = path_name(raw_name)?;
    let mut tx = state.db.begin().await?;
    let row = store::find(&mut tx, Owner::Org(org_id), &name, true).await?;
    let links = store::live_links(&mut tx, row.id).await?;
    if links > 0 && !cascade {
        return Err(ApiError::DomainInUse {
            name: row.name,
            links,
        });
    }
    let answers = store::delete(&mut tx, &row).await?;
    audit(
        &mut tx,
        Some(org_id),
        auth.actor(),
        "domain.delete",
        &row.name,
        json!({ "id": row.id, "links_deleted": links }),
    )
    .await?;
    store::record_change(
        &mut tx,
        &row.name,
        LinkChange::DomainDelete { id: row.id as u32 },
    )
    .await?;
    for (host, path) in answers {
        store::record_change(
            &mut tx,
            &host,
            LinkChange::WellKnownDelete {
                host: host.clone(),
                path,
            },
        )
        .await?;
    }
    tx.commit().await?;
    if links > 0 {
        state.metrics.links_written.inc();
    }
    Ok(links)
}
