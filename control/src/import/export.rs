//! `control export`: an organization's live links, streamed from PostgreSQL
//! (flat memory) as CSV in the columns `control import --from csv` reads,
//! or as JSON lines of the API's link objects.

use crate::links::model::{LINK_COLUMNS, LinkRow};
use futures::TryStreamExt;
use sqlx::{AssertSqlSafe, PgPool};
use std::io::Write;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Csv,
    Jsonl,
}

/// The CSV header; `tags` are `|`-separated; times are RFC 3339, empty for
/// none; `target` as written, the UTM values in their own columns (empty:
/// none); `rules` and `split` as the API's JSON (empty: none); `max_visits`
/// a number (empty: unlimited).
pub const CSV_HEADER: [&str; 20] = [
    "code",
    "domain",
    "target",
    "title",
    "tags",
    "status",
    "expires_at",
    "disabled",
    "forward_query",
    "created_at",
    "valid_since",
    "expired_url",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "rules",
    "split",
    "max_visits",
];

/// A list as a JSON cell; empty for none.
fn json_cell<T: serde::Serialize>(list: &[T]) -> String {
    if list.is_empty() {
        return String::new();
    }
    serde_json::to_string(list).unwrap_or_default()
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Writes the live links of `org_id` to `out`, oldest first; returns how
/// many. `short_base` makes the JSON's `short_url`.
pub async fn export(
    db: &PgPool,
    org_id: i64,
    format: ExportFormat,
    short_base: &str,
    out: impl Write,
) -> anyhow::Result<u64> {
    let sql = format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE org_id = $1 AND deleted_at IS NULL ORDER BY id"
    );
    let mut rows = sqlx::query_as::<_, LinkRow>(AssertSqlSafe(sql))
        .bind(org_id)
        .fetch(db);
    let mut n = 0u64;
    match format {
        ExportFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record(CSV_HEADER)?;
            while let Some(row) = rows.try_next().await? {
                w.write_record([
                    row.code.as_str(),
                    row.domain.as_str(),
                    row.target.as_str(),
                    row.title.as_deref().unwrap_or(""),
                    &row.tags.join("|"),
                    &row.status.to_string(),
                    &row.expires_at.map(rfc3339).unwrap_or_default(),
                    &row.disabled.to_string(),
                    &row.forward_query.to_string(),
                    &rfc3339(row.created_at),
                    &row.valid_since.map(rfc3339).unwrap_or_default(),
                    row.expired_url.as_deref().unwrap_or(""),
                    row.utm.source.as_deref().unwrap_or(""),
                    row.utm.medium.as_deref().unwrap_or(""),
                    row.utm.campaign.as_deref().unwrap_or(""),
                    row.utm.term.as_deref().unwrap_or(""),
                    row.utm.content.as_deref().unwrap_or(""),
                    &json_cell(&crate::links::rules::rules_json(&row.rules.0)),
                    &json_cell(&row.split.0),
                    &row.max_visits.map(|m| m.to_string()).unwrap_or_default(),
                ])?;
                n += 1;
            }
            w.flush()?;
        }
        ExportFormat::Jsonl => {
            let mut out = std::io::BufWriter::new(out);
            while let Some(row) = rows.try_next().await? {
                serde_json::to_writer(&mut out, &row.to_json(short_base))?;
                out.write_all(b"\n")?;
                n += 1;
            }
            out.flush()?;
        }
    }
    Ok(n)
}
