//! A domain row, its API JSON, and its record form for engines.

use crate::config::DomainVerification;
use serde::Serialize;
use snapshots::domain::{Domain, HttpMode};
use time::OffsetDateTime;

/// One row of `domains`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DomainRow {
    pub id: i64,
    pub org_id: Option<i64>,
    pub name: String,
    pub verification_token: String,
    pub verified_at: Option<OffsetDateTime>,
    pub root_redirect: Option<String>,
    pub not_found_redirect: Option<String>,
    pub http_mode: String,
    pub hsts_max_age: Option<i32>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

/// The columns of [`DomainRow`], for `SELECT`/`RETURNING`.
pub const DOMAIN_COLUMNS: &str = "id, org_id, name, verification_token, verified_at, \
    root_redirect, not_found_redirect, http_mode, hsts_max_age, created_at, updated_at";

/// How to prove control of a pending domain.
/// `GET /v1/domains`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainList {
    pub domains: Vec<DomainJson>,
}

/// `GET /v1/admin/domains`: every organization's, and the deployment's
/// default domain (`null`: unnamed).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AllDomains {
    pub default_domain: Option<String>,
    pub domains: Vec<DomainJson>,
}

#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct VerificationJson {
    pub token: String,
    /// Where the engines answer the token once the name points at them.
    pub url: String,
    /// The TXT record that holds the token: `_links-verification.<name>`.
    pub txt_record: String,
    /// What this deployment asks for: `dns-txt`, `http` or `both`.
    pub method: String,
    pub instructions: String,
}

/// A domain as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct DomainJson {
    /// Normalised: lowercase ASCII, internationalised names in punycode.
    pub name: String,
    /// `pending` (not served) or `verified`.
    pub status: String,
    /// Present while pending.
    pub verification: Option<VerificationJson>,
    pub root_redirect: Option<String>,
    pub not_found_redirect: Option<String>,
    /// `serve` or `redirect-https`.
    pub http_mode: String,
    pub hsts_max_age: Option<i32>,
    /// The owning organization's id (the operator's listing shows it).
    pub org_id: Option<i64>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub verified_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl DomainRow {
    pub fn verification_path(&self) -> String {
        format!("{}{}", super::VERIFICATION_PREFIX, self.verification_token)
    }

    /// The row's JSON; `method` is what the deployment asks as proof.
    pub fn to_json(&self, method: DomainVerification) -> DomainJson {
        let verification = self.verified_at.is_none().then(|| {
            let url = format!("http://{}{}", self.name, self.verification_path());
            let txt_record = super::dns::record_name(&self.name);
            let token = &self.verification_token;
            let point = format!(
                "point {} at the redirect engines (a CNAME to the deployment's short domain, or its addresses)",
                self.name
            );
            let txt = format!("add a TXT record {txt_record} with the value {token}");
            let then = format!("then POST /v1/domains/{}/verify", self.name);
            let (method_name, instructions) = match method {
                DomainVerification::DnsTxt => ("dns-txt", format!("To prove the name is yours, {txt}; {point}; {then}.")),
                DomainVerification::Http => ("http", format!("Point {} at the redirect engines, wait until {url} answers the token, {then}.", self.name)),
                DomainVerification::Both => ("both", format!("To prove the name is yours, {txt}; {point} and wait until {url} answers the token; {then}.")),
            };
            VerificationJson {
                token: token.clone(),
                url,
                txt_record,
                method: method_name.to_owned(),
                instructions,
            }
        });
        DomainJson {
            name: self.name.clone(),
            status: if self.verified_at.is_some() {
                "verified".into()
            } else {
                "pending".into()
            },
            verification,
            root_redirect: self.root_redirect.clone(),
            not_found_redirect: self.not_found_redirect.clone(),
            http_mode: self.http_mode.clone(),
            hsts_max_age: self.hsts_max_age,
            org_id: self.org_id,
            verified_at: self.verified_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// The record engines hold (snapshot entry or domain change).
    pub fn to_record(&self) -> Domain {
        Domain {
            id: self.id as u32,
            name: self.name.clone(),
            verified: self.verified_at.is_some(),
            root_redirect: self.root_redirect.clone(),
            not_found_redirect: self.not_found_redirect.clone(),
            http_mode: if self.http_mode == "redirect-https" {
                HttpMode::RedirectHttps
            } else {
                HttpMode::Serve
            },
            hsts_max_age: self.hsts_max_age.map(|age| age.max(0) as u32),
        }
    }
}
