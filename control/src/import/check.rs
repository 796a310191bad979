//! The checks an imported link gets: the same as the API's for a create
//! (target policy, code rules, tags, title), minus the blocklist, which the
//! writer checks for a whole batch in one query.

use super::formats::Record;
use crate::links::utm::{Utm, UtmInput};
use crate::target::TargetPolicy;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A record that passed the checks.
#[derive(Debug, Clone)]
pub struct Row {
    pub line: u64,
    pub code: Option<String>,
    pub target: String,
    /// The target's host, for the blocklist.
    pub host: String,
    pub title: Option<String>,
    pub tags: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub valid_since: Option<OffsetDateTime>,
    pub expired_url: Option<String>,
    /// `expired_url`'s host, for the blocklist.
    pub expired_host: Option<String>,
    /// Checked, and checked merged into `target`.
    pub utm: Utm,
    /// Checked as the API checks them (targets normalised), and their
    /// targets' hosts, for the blocklist.
    pub rules: Vec<snapshots::rules::Rule>,
    pub split: Vec<snapshots::rules::Variant>,
    pub rule_hosts: Vec<String>,
    /// The API's `max_visits` (none: unlimited).
    pub max_visits: Option<i32>,
}

/// `Ok(row)`, or why the record is an invalid row.
pub fn check(policy: &TargetPolicy, rec: Record) -> Result<Row, String> {
    if rec.target.is_empty() {
        return Err("no target URL".into());
    }
    let target = policy.check(&rec.target).map_err(|e| e.to_string())?;
    if let Some(code) = &rec.code {
        crate::codes::validate_alias(code)
            .map_err(|e| e.to_string().replacen("custom_alias", "code", 1))?;
    }
    let tags = crate::links::input::check_tags(rec.tags).map_err(|e| e.to_string())?;
    let title = crate::links::input::check_title(rec.title).map_err(|e| e.to_string())?;
    // Lifecycle: the API's rules. A link already expired in its source is
    // an invalid row rather than one brought back to life.
    let expires_at = time_field("expires_at", rec.expires_at.as_deref())?
        .map(crate::links::input::check_expiry)
        .transpose()
        .map_err(|e| e.to_string())?;
    let valid_since = time_field("valid_since", rec.valid_since.as_deref())?;
    crate::links::input::check_window(valid_since, expires_at).map_err(|e| e.to_string())?;
    let expired = rec
        .expired_url
        .as_deref()
        .map(|url| policy.check(url))
        .transpose()
        .map_err(|e| format!("expired_url: {e}"))?;
    // UTM: the API's rules, the merged target included.
    let given = |i: usize| rec.utm[i].clone().map(Some);
    let utm = UtmInput {
        source: given(0),
        medium: given(1),
        campaign: given(2),
        term: given(3),
        content: given(4),
    }
    .checked()
    .and_then(|utm| crate::links::utm::check_merged(&target.url, &utm).map(|()| utm))
    .map_err(|e| e.to_string())?;
    // Rules and split: JSON cells, the API's reading and checks.
    let json = |name: &str, text: Option<&str>| -> Result<serde_json::Value, String> {
        text.map_or(Ok(serde_json::Value::Null), |t| {
            serde_json::from_str(t).map_err(|e| format!("{name}: not JSON: {e}"))
        })
    };
    let mut rule_hosts = Vec::new();
    let mut rules = crate::links::rules::parse_rules(&json("rules", rec.rules.as_deref())?)
        .map_err(|e| e.to_string())?;
    crate::links::rules::check_rules(policy, &mut rules, &mut rule_hosts)
        .map_err(|e| e.to_string())?;
    let mut split = crate::links::rules::parse_split(&json("split", rec.split.as_deref())?)
        .map_err(|e| e.to_string())?;
    crate::links::rules::check_split(policy, &mut split, &mut rule_hosts)
        .map_err(|e| e.to_string())?;
    let max_visits = rec
        .max_visits
        .as_deref()
        .map(|v| {
            v.parse::<i64>()
                .map_err(|_| format!("max_visits: {v:?} is not a whole number"))
                .and_then(|n| crate::links::input::check_max_visits(n).map_err(|e| e.to_string()))
        })
        .transpose()?;
    Ok(Row {
        line: rec.line,
        code: rec.code,
        target: target.url,
        host: target.host,
        title,
        tags,
        expires_at,
        valid_since,
        expired_host: expired.as_ref().map(|t| t.host.clone()),
        expired_url: expired.map(|t| t.url),
        utm,
        rules,
        split,
        rule_hosts,
        max_visits,
    })
}

/// An RFC 3339 time (`2026-12-31T23:59:59Z`, `…+01:00`), as every product
/// here writes them.
fn time_field(name: &str, value: Option<&str>) -> Result<Option<OffsetDateTime>, String> {
    value
        .map(|v| {
            let at = OffsetDateTime::parse(v, &Rfc3339)
                .map_err(|_| format!("{name} {v:?} is not an RFC 3339 time"))?;
            crate::links::times::check_shown(name, at).map_err(|e| e.to_string())
        })
        .transpose()
}
