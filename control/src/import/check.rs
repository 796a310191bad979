//! The checks an imported link gets: the same as the API's for a create
//! (target policy, code rules, tags, title), minus the blocklist, which the
//! writer checks for a whole batch in one query.

use super::formats::Record;
use crate::target::TargetPolicy;

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
    Ok(Row {
        line: rec.line,
        code: rec.code,
        target: target.url,
        host: target.host,
        title,
        tags,
    })
}
