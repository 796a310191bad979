//! A link row, its API JSON, and its snapshot/delta form.

use super::rules::{RuleJson, StoredRules, StoredSplit};
use super::utm::Utm;
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
    pub domain_id: i64,
    /// The domain's name (empty: the unnamed default domain).
    pub domain: String,
    pub valid_since: Option<OffsetDateTime>,
    pub expired_url: Option<String>,
    /// UTM values (`utm_source` ... `utm_content`), merged into the target
    /// engines get ([`LinkRow::to_snapshot_link`]).
    #[sqlx(flatten)]
    pub utm: Utm,
    /// Redirect rules (`links.rules`), in the model's form.
    #[sqlx(try_from = "Option<serde_json::Value>")]
    pub rules: StoredRules,
    /// The A/B split (`links.split`).
    #[sqlx(try_from = "Option<serde_json::Value>")]
    pub split: StoredSplit,
    /// The password's argon2id verifier; `None`: not protected. Never shown.
    pub password_hash: Option<String>,
    /// The visit limit; `None`: unlimited.
    pub max_visits: Option<i32>,
    /// Visits leased to engines and not given back (`link_visits`).
    pub visits_leased: i64,
}

/// The columns of [`LinkRow`], for `SELECT`/`RETURNING` on `links`.
pub const LINK_COLUMNS: &str = "id, code, org_id, target, status, expires_at, disabled, \
    forward_query, tags, title, created_at, updated_at, deleted_at, version, seq, domain_id, \
    (SELECT name FROM domains WHERE domains.id = links.domain_id) AS domain, valid_since, \
    expired_url, utm_source, utm_medium, utm_campaign, utm_term, utm_content, rules, split, \
    password_hash, max_visits, \
    coalesce((SELECT granted FROM link_visits WHERE link_id = links.id), 0) AS visits_leased";

/// [`LINK_COLUMNS`] qualified by the table, for statements that join
/// another relation with a column of the same name.
pub const LINK_COLUMNS_QUALIFIED: &str = "links.id, links.code, links.org_id, links.target, \
    links.status, links.expires_at, links.disabled, links.forward_query, links.tags, links.title, \
    links.created_at, links.updated_at, links.deleted_at, links.version, links.seq, \
    links.domain_id, (SELECT name FROM domains WHERE domains.id = links.domain_id) AS domain, \
    links.valid_since, links.expired_url, links.utm_source, links.utm_medium, links.utm_campaign, \
    links.utm_term, links.utm_content, links.rules, links.split, links.password_hash, \
    links.max_visits, \
    coalesce((SELECT granted FROM link_visits WHERE link_id = links.id), 0) AS visits_leased";

/// A link as the API shows it. The same field names are accepted on input.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, utoipa::ToSchema)]
pub struct LinkJson {
    pub code: String,
    /// The domain the code lives on; `null`: the deployment's unnamed
    /// default domain.
    #[serde(default)]
    pub domain: Option<String>,
    pub short_url: String,
    /// The target as written. Engines redirect to it with `utm`'s values
    /// merged into its query (`utm_source=...`); this field never holds
    /// them.
    pub target: String,
    /// UTM parameters merged into the target engines redirect to; `null`:
    /// none.
    #[serde(default)]
    pub utm: Option<Utm>,
    pub status: u16,
    #[serde(with = "time::serde::rfc3339::option")]
    pub expires_at: Option<OffsetDateTime>,
    /// Before this time the link answers as a missing code; `null`: valid
    /// from its creation.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub valid_since: Option<OffsetDateTime>,
    /// Where the link redirects (302) once `expires_at` has passed, instead
    /// of answering 410; `null`: none.
    #[serde(default)]
    pub expired_url: Option<String>,
    /// Redirect rules, in order: the first whose conditions all hold
    /// sends the visit to its target; `[]`: none.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub rules: Vec<RuleJson>,
    /// The A/B split for visits no rule takes; `[]`: none.
    #[serde(default)]
    #[schema(schema_with = super::rules::split_schema)]
    pub split: Vec<snapshots::rules::Variant>,
    /// Whether visitors must enter a password before the redirect (set
    /// with `password`; the password itself is never shown).
    #[serde(default)]
    pub password_protected: bool,
    /// How many times the link redirects in all, across every engine;
    /// `null`: unlimited.
    #[serde(default)]
    pub max_visits: Option<u32>,
    /// Visits of `max_visits` not yet leased to engines (visits leased and
    /// not served come back when the lease ends); `null` when unlimited.
    /// At 0 the link answers as expired once the engines' leases are used.
    #[serde(default)]
    pub visits_left: Option<u64>,
    pub disabled: bool,
    pub forward_query: bool,
    pub tags: Vec<String>,
    pub title: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    pub version: i64,
    /// Clicks on the link so far, from the analytics rollups (at most
    /// `--click-totals-ttl` old, 60 s by default); `null` when they could
    /// not be read (ClickHouse down) or on a write's answer.
    #[serde(default)]
    pub clicks: Option<u64>,
    /// The last click's time, as `clicks`; `null` also when it has none.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub last_click_at: Option<OffsetDateTime>,
}

/// A [`LinkRow::relative_short_url`] made absolute: `/CODE` on
/// `short_base`, `//DOMAIN/CODE` with `short_base`'s scheme.
pub fn absolute_short_url(short_base: &str, relative: &str) -> String {
    if relative.starts_with("//") {
        let scheme = short_base.split_once("://").map_or("https", |(s, _)| s);
        format!("{scheme}:{relative}")
    } else {
        format!("{}{relative}", short_base.trim_end_matches('/'))
    }
}

/// One page of `GET /v1/links`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LinkPage {
    pub links: Vec<LinkJson>,
    /// Pass as `cursor` for the next page; `null` on the last one.
    pub next_cursor: Option<String>,
}

impl LinkRow {
    /// The strong ETag: the row id and its version.
    pub fn etag(&self) -> String {
        format!("\"{}.{}\"", self.id, self.version)
    }

    /// The link's JSON. Its short URL is on `short_base` for the default
    /// domain, else on the link's own domain with `short_base`'s scheme.
    pub fn to_json(&self, short_base: &str) -> LinkJson {
        let short_url = absolute_short_url(short_base, &self.relative_short_url());
        LinkJson {
            code: self.code.clone(),
            domain: (!self.domain.is_empty()).then(|| self.domain.clone()),
            short_url,
            target: self.target.clone(),
            utm: self.utm.to_json(),
            status: self.status as u16,
            expires_at: self.expires_at,
            valid_since: self.valid_since,
            expired_url: self.expired_url.clone(),
            rules: super::rules::rules_json(&self.rules.0),
            split: self.split.0.clone(),
            password_protected: self.password_hash.is_some(),
            max_visits: self.max_visits.map(|m| m.max(0) as u32),
            visits_left: self
                .max_visits
                .map(|m| (i64::from(m) - self.visits_leased).max(0) as u64),
            disabled: self.disabled,
            forward_query: self.forward_query,
            tags: self.tags.clone(),
            title: self.title.clone(),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
            clicks: None,
            last_click_at: None,
        }
    }

    /// The short URL without the deployment's base: `/CODE` on the default
    /// domain, scheme-relative `//DOMAIN/CODE` on a custom one. Webhook
    /// events store this form (written where no configuration is at hand)
    /// and [`absolute_short_url`] completes it when sent.
    pub fn relative_short_url(&self) -> String {
        if self.domain_id == 0 {
            format!("/{}", self.code)
        } else {
            format!("//{}/{}", self.domain, self.code)
        }
    }

    /// The target engines redirect to: the stored one with the link's UTM
    /// values merged ([`super::utm::merge`]; the same string when it has
    /// none). Writes check the merge ([`super::utm::check_merged`]); a row
    /// that fails it anyway (written around the API) keeps its plain
    /// target rather than keep every snapshot from being built.
    pub fn served_target(&self) -> String {
        if self.utm.is_empty() {
            return self.target.clone();
        }
        let merged = super::utm::merge(&self.target, &self.utm);
        match snapshots::link::validate_target(&merged) {
            Ok(()) => merged,
            Err(e) => {
                tracing::warn!(code = %self.code, domain = self.domain_id, error = %e,
                    "the target with UTM values merged is refused; serving the plain target");
                self.target.clone()
            }
        }
    }

    /// The rules and split engines get: the stored ones, their targets
    /// with the link's UTM values merged as the link's own target is (each
    /// kept plain if the merge would take it past what snapshots accept);
    /// none when they fail the checks the snapshot applies (a row written
    /// around the API; writes check them), rather than keep every snapshot
    /// from being built.
    fn served_rules(&self) -> (Vec<snapshots::rules::Rule>, Vec<snapshots::rules::Variant>) {
        let with_utm = |target: &str| {
            if self.utm.is_empty() {
                return target.to_owned();
            }
            let merged = super::utm::merge(target, &self.utm);
            match snapshots::link::validate_target(&merged) {
                Ok(()) => merged,
                Err(_) => target.to_owned(),
            }
        };
        let rules: Vec<_> = self
            .rules
            .0
            .iter()
            .map(|rule| snapshots::rules::Rule {
                target: with_utm(&rule.target),
                ..rule.clone()
            })
            .collect();
        let split: Vec<_> = self
            .split
            .0
            .iter()
            .map(|variant| snapshots::rules::Variant {
                target: with_utm(&variant.target),
                ..variant.clone()
            })
            .collect();
        match snapshots::rules::validate_rules(&rules, &split) {
            Ok(()) => (rules, split),
            Err(e) => {
                tracing::warn!(code = %self.code, domain = self.domain_id, error = %e,
                    "the stored rules are refused; serving the link without them");
                (Vec::new(), Vec::new())
            }
        }
    }

    /// The record engines serve (snapshot entry or delta upsert).
    pub fn to_snapshot_link(&self) -> snapshots::Link {
        let (rules, split) = self.served_rules();
        snapshots::Link {
            domain: self.domain_id as u32,
            code: self.code.clone(),
            target: self.served_target(),
            status: snapshots::RedirectStatus::try_from(self.status as u16).unwrap_or_default(),
            expires_at: self.expires_at.map(|t| t.unix_timestamp().max(1)),
            disabled: self.disabled
                || (self.password_hash.is_some() && self.served_password().is_none()),
            forward_query: self.forward_query,
            seq: self.seq as u64,
            // Rows written before the API compared whole seconds may hold a
            // window inside one second, which the snapshot refuses (and with
            // it every build): such a link opens its last second.
            valid_since: self.valid_since.map(|t| {
                let since = t.unix_timestamp().max(1);
                match self.expires_at.map(|e| e.unix_timestamp().max(1)) {
                    Some(until) if since >= until => (until - 1).max(1),
                    _ => since,
                }
            }),
            expired_url: self.expired_url.clone(),
            // Carried into every click record so analytics reads stats by
            // org. The snapshot keeps 32 bits: an org id past them (not
            // reachable by a bigserial in practice) rides as 0 rather than
            // failing every build.
            org_id: u64::try_from(self.org_id)
                .ok()
                .filter(|&org| org <= u64::from(u32::MAX))
                .unwrap_or(0),
            rules,
            split,
            password_hash: self.served_password(),
            // The column's CHECK keeps it within what snapshots accept.
            max_visits: self
                .max_visits
                .and_then(|m| u32::try_from(m).ok())
                .filter(|&m| snapshots::link::validate_max_visits(m).is_ok()),
        }
    }

    /// The verifier engines get. One that snapshots would refuse (a row
    /// written around the API) must not open the link to everyone, nor keep
    /// every snapshot from being built: the link is served disabled.
    fn served_password(&self) -> Option<String> {
        let phc = self.password_hash.as_ref()?;
        match snapshots::password::PasswordValue::from_phc(phc) {
            Ok(_) => Some(phc.clone()),
            Err(e) => {
                tracing::warn!(code = %self.code, domain = self.domain_id, error = %e,
                    "the stored password hash is refused; serving the link disabled");
                None
            }
        }
    }
}
