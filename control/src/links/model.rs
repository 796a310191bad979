//! A link row, its API JSON, and its snapshot/delta form.

use serde::Serialize;
use time::OffsetDateTime;

/// One row of `links`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct LinkRow {
    pub id: i64,
    pub code: String,
    pub org_id: i64,
    pub target: String,
    pub status: i16,
    pub expires_at: Option<OffsetDateTime>,
    pub disabled: bool,
    pub forward_query: bool,
    pub tags: Vec<String>,
    pub title: Option<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    pub deleted_at: Option<OffsetDateTime>,
    pub version: i64,
    pub seq: i64,
}

/// The columns of [`LinkRow`], for `SELECT`/`RETURNING`.
pub const LINK_COLUMNS: &str = "id, code, org_id, target, status, expires_at, disabled, \
    forward_query, tags, title, created_at, updated_at, deleted_at, version, seq";

/// A link as the API shows it. The same field names are accepted on input.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LinkJson {
    pub code: String,
    pub short_url: String,
    pub target: String,
    pub status: u16,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    pub disabled: bool,
    pub forward_query: bool,
    pub tags: Vec<String>,
    pub title: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
}

impl LinkRow {
    /// The strong ETag: the row id and its version.
    pub fn etag(&self) -> String {
        format!("\"{}.{}\"", self.id, self.version)
    }

    pub fn to_json(&self, short_base: &str) -> LinkJson {
        LinkJson {
            code: self.code.clone(),
            short_url: format!("{short_base}/{}", self.code),
            target: self.target.clone(),
            status: self.status as u16,
            expires_at: self.expires_at,
            disabled: self.disabled,
            forward_query: self.forward_query,
            tags: self.tags.clone(),
            title: self.title.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }

    /// The record engines serve (snapshot entry or delta upsert).
    pub fn to_snapshot_link(&self) -> snapshots::Link {
        snapshots::Link {
            code: self.code.clone(),
            target: self.target.clone(),
            status: snapshots::RedirectStatus::try_from(self.status as u16).unwrap_or_default(),
            expires_at: self.expires_at.map(|t| t.unix_timestamp().max(1)),
            disabled: self.disabled,
            forward_query: self.forward_query,
            seq: self.seq as u64,
            // The branch point's snapshots crate has domains, this control not
            // yet: every link is the default domain's (the domains branch sets it).
            domain: snapshots::DEFAULT_DOMAIN,
        }
    }
}
