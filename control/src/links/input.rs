//! Request bodies for links, and their checks.

use super::password::LinkPassword;
use super::rules::RuleJson;
use super::utm::UtmInput;
use crate::error::{ApiError, ApiResult};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

const MAX_TAGS: usize = 32;
const MAX_TAG_LEN: usize = 64;
const MAX_TITLE_LEN: usize = 512;

/// `POST /v1/links`. `long_url` is accepted for `target`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLink {
    /// Where the link redirects: an absolute http(s) URL (`long_url` is
    /// accepted for it).
    #[serde(alias = "long_url")]
    #[schema(value_type = String, required = true, format = "uri")]
    pub target: Option<String>,
    /// The code to use instead of a random one.
    pub custom_alias: Option<String>,
    /// The redirect status (default 301).
    #[schema(schema_with = redirect_status_schema)]
    pub status: Option<u16>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Before this time the link answers as a missing code (engines send
    /// 404, or the domain's not-found redirect). Must be before
    /// `expires_at`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_since: Option<OffsetDateTime>,
    /// Where the link redirects (302) once `expires_at` has passed, instead
    /// of answering 410: an absolute http(s) URL, checked like `target`.
    #[schema(format = "uri")]
    pub expired_url: Option<String>,
    /// UTM parameters the engines add to the target's query
    /// (`utm_source=...`); `target` stays as written. Each value at most
    /// 200 characters, no control characters; `""` or `null`: none.
    #[serde(default)]
    pub utm: Option<UtmInput>,
    /// Redirect rules, in order (at most 16): the first whose conditions
    /// all hold sends the visit to its own target (see `RuleJson`);
    /// `null` or `[]`: none. Refusals name the place
    /// (`rules[1].when.country`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<RuleJson>>, max_items = 16)]
    pub rules: Option<Value>,
    /// An A/B split for visits no rule takes: two to eight variants whose
    /// weights sum to 100; `null` or `[]`: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(schema_with = super::rules::split_input_schema)]
    pub split: Option<Value>,
    /// A password visitors must enter before the redirect (4 to 256 bytes,
    /// no control characters); engines show a form. Only its argon2id hash
    /// is kept; the link then shows `password_protected: true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Password, write_only, min_length = 4, max_length = 256)]
    pub password: Option<LinkPassword>,
    /// How many times the link redirects in all, across every engine (1 to
    /// 1000000000); then it answers as an expired link (`expired_url`, else
    /// 410). `null`: unlimited. Engines serve it from visit budgets control
    /// leases them, so it never redirects more than this (docs/max-visits.md).
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub max_visits: Option<i64>,
    pub forward_query: Option<bool>,
    pub tags: Option<Vec<String>>,
    pub title: Option<String>,
    /// The domain the link goes on: one of the organization's domains
    /// (pending ones too; served once verified). Default: the deployment's
    /// default domain.
    pub domain: Option<String>,
}

/// `PATCH /v1/links/{code}`: absent fields stay; `null` clears
/// `expires_at`, `valid_since`, `expired_url`, `title`, `password`,
/// `max_visits` and `utm`
/// (all five values); `null` or `[]` clears `rules` or `split`, a list replaces them
/// whole. In a `utm` object, an absent field stays, `""` or `null` clears
/// that one, a value sets it.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchLink {
    #[serde(alias = "long_url")]
    #[schema(format = "uri")]
    pub target: Option<String>,
    #[schema(schema_with = redirect_status_schema)]
    pub status: Option<u16>,
    #[serde(default, deserialize_with = "nullable_time")]
    pub expires_at: Option<Option<OffsetDateTime>>,
    #[serde(default, deserialize_with = "nullable_time")]
    pub valid_since: Option<Option<OffsetDateTime>>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(format = "uri")]
    pub expired_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub utm: Option<Option<UtmInput>>,
    /// Replaces the rules whole; `null` or `[]`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<RuleJson>>, max_items = 16)]
    pub rules: Option<Option<Value>>,
    /// Replaces the split whole; `null` or `[]`: none.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(schema_with = super::rules::split_input_schema)]
    pub split: Option<Option<Value>>,
    /// Sets a new password; `null` removes it (the link opens to everyone).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>, format = Password, write_only, min_length = 4, max_length = 256)]
    pub password: Option<Option<LinkPassword>>,
    /// Sets the visit limit; `null` removes it (and setting one again
    /// starts the count over).
    #[serde(default, deserialize_with = "nullable")]
    #[schema(minimum = 1, maximum = 1_000_000_000)]
    pub max_visits: Option<Option<i64>>,
    pub disabled: Option<bool>,
    pub forward_query: Option<bool>,
    pub tags: Option<Vec<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub title: Option<Option<String>>,
}

/// The redirect statuses a link may have (301, 302, 307, 308), or `null`
/// (the default: 301 on create, unchanged on patch).
fn redirect_status_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let statuses = (100..600u16)
        .filter(|s| snapshots::RedirectStatus::try_from(*s).is_ok())
        .map(serde_json::Value::from)
        .chain([serde_json::Value::Null]);
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Integer, Type::Null]))
        .enum_values(Some(statuses))
        .build()
}

fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn nullable_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<OffsetDateTime>>, D::Error> {
    time::serde::rfc3339::option::deserialize(d).map(Some)
}

/// Checks a visit limit: 1 to `snapshots::link::MAX_VISITS`.
pub fn check_max_visits(max: i64) -> ApiResult<i32> {
    u32::try_from(max)
        .ok()
        .filter(|&m| snapshots::link::validate_max_visits(m).is_ok())
        .map(|m| m as i32)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "max_visits",
                format!(
                    "must be between 1 and {} (null: unlimited)",
                    snapshots::link::MAX_VISITS
                ),
            )
        })
}

pub fn check_status(status: u16) -> ApiResult<i16> {
    snapshots::RedirectStatus::try_from(status)
        .map(|s| s.code() as i16)
        .map_err(|e| ApiError::invalid_field("status", e))
}

pub fn check_expiry(at: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    super::times::check_shown("expires_at", at)?;
    if at <= OffsetDateTime::now_utc() {
        return Err(ApiError::invalid_field(
            "expires_at",
            "must be in the future",
        ));
    }
    Ok(at)
}

/// Checks `valid_since` against `expires_at` (the values the link will have
/// after the write): the link must become valid before it expires.
///
/// Compared in whole seconds, the resolution snapshots and engines keep:
/// `…:00.3` and `…:00.7` are distinct here but the same second in a
/// snapshot, whose builder would then refuse the link (and every snapshot
/// after it).
pub fn check_window(
    valid_since: Option<OffsetDateTime>,
    expires_at: Option<OffsetDateTime>,
) -> ApiResult<()> {
    if let (Some(since), Some(until)) = (valid_since, expires_at)
        && since.unix_timestamp() >= until.unix_timestamp()
    {
        return Err(ApiError::invalid_field(
            "valid_since",
            "must be before expires_at",
        ));
    }
    Ok(())
}

/// Checks a tag given as a list filter (the same rules as a stored tag).
pub fn check_tag_filter(tag: &str) -> ApiResult<()> {
    crate::text::check("tag", tag, MAX_TAG_LEN)
}

/// Longest `q` search text, bytes.
pub const MAX_QUERY_LEN: usize = 256;

pub fn check_tags(tags: Vec<String>) -> ApiResult<Vec<String>> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::invalid_field(
            "tags",
            format!("{} tags; the limit is {MAX_TAGS}", tags.len()),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        let t = t.trim().to_owned();
        if t.is_empty() || t.len() > MAX_TAG_LEN || t.chars().any(char::is_control) {
            return Err(ApiError::invalid_field(
                "tags",
                format!(
                    "tag {:?} must be 1 to {MAX_TAG_LEN} bytes without control characters",
                    t.chars().take(MAX_TAG_LEN).collect::<String>()
                ),
            ));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

pub fn check_title(title: Option<String>) -> ApiResult<Option<String>> {
    if let Some(t) = &title {
        crate::text::check("title", t, MAX_TITLE_LEN)?;
    }
    Ok(title)
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    #[test]
    fn a_window_inside_one_second_is_refused() {
        let second = OffsetDateTime::from_unix_timestamp(1_796_686_640).unwrap();
        let since = second + Duration::milliseconds(300);
        let until = second + Duration::milliseconds(700);
        assert!(check_window(Some(since), Some(until)).is_err());
        assert!(check_window(Some(since), Some(until + Duration::seconds(1))).is_ok());
        assert!(check_window(Some(until), Some(since)).is_err());
        assert!(check_window(None, Some(since)).is_ok());
    }
}
