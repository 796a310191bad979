//! Which domain a request is for, and what the domain answers beyond links.
//!
//! A core resolves every request by `(Host, code)`. The `Host` header is
//! normalised on the stack ([`snapshots::domain::normalize_host`]: ASCII
//! case, port, one trailing dot) and looked up in [`DomainTable`], a small
//! map from the names of *served* (verified) domains to their settings. The
//! table is rebuilt off the request path whenever the snapshot or a domain
//! change arrives (each core builds its own on its tick: domains are few and
//! change rarely), so a request only hashes and compares bytes.
//!
//! A request whose host names no served domain:
//! - with no `Host` (HTTP/1.0) or an IP literal: the default domain (the
//!   client named no brand);
//! - with another name: [`UnknownHost`] decides. `auto` (the default) sends
//!   it to the default domain only while the deployment has not configured
//!   domains at all (an unnamed default domain and no other: today's
//!   single-domain behaviour); otherwise an unknown name is answered 404.
//!   Serving it as the default domain would answer a pending or foreign
//!   brand name with the deployment's links, which is neither what the
//!   brand nor the deployment meant.
//!
//! Well-known answers (domain verification tokens, later ACME HTTP-01
//! challenges) are keyed by host name and path and answered for any host,
//! verified or not, before anything else: they are how a domain gets
//! verified.

use super::fxhash::FxHasher;
pub use crate::config::UnknownHost;
use snapshots::Snapshot;
use snapshots::domain::{DEFAULT_DOMAIN, Domain, HostName, HttpMode, WellKnown};
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasherDefault;

/// A change to the domain table or the well-known answers, as a core keeps
/// it (inside its `state::DeltaRecord`).
#[derive(Debug)]
pub enum DomainChange {
    /// A domain now reads like this; `None`: it is gone.
    Domain { id: u32, domain: Option<Domain> },
    /// A well-known answer; `None`: removed.
    WellKnown {
        host: Box<str>,
        path: Box<str>,
        body: Option<Box<str>>,
    },
}

/// A served domain as a core answers for it; everything preformatted.
#[derive(Debug)]
pub struct DomainEntry {
    pub id: u32,
    /// Normalised name (empty: the unnamed default domain); also what click
    /// records carry.
    pub name: Box<[u8]>,
    pub root_redirect: Option<Box<[u8]>>,
    pub not_found_redirect: Option<Box<[u8]>>,
    /// Plain-HTTP requests get a 308 to `https://`.
    pub redirect_https: bool,
    /// `Strict-Transport-Security: max-age=N\r\n`, or empty; sent on TLS
    /// connections only.
    pub hsts_line: Box<[u8]>,
}

impl DomainEntry {
    fn new(domain: &Domain) -> DomainEntry {
        let bytes = |s: &Option<String>| s.as_ref().map(|s| s.as_bytes().into());
        DomainEntry {
            id: domain.id,
            name: domain.name.as_bytes().into(),
            root_redirect: bytes(&domain.root_redirect),
            not_found_redirect: bytes(&domain.not_found_redirect),
            redirect_https: domain.http_mode == HttpMode::RedirectHttps,
            hsts_line: match domain.hsts_max_age {
                Some(age) => format!("Strict-Transport-Security: max-age={age}\r\n")
                    .into_bytes()
                    .into(),
                None => Box::default(),
            },
        }
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// One host's well-known answers: path → body.
type Answers = FxMap<Box<[u8]>, Box<[u8]>>;

/// One core's host → domain index and well-known answers.
#[derive(Debug, Default)]
pub struct DomainTable {
    by_host: FxMap<Box<[u8]>, std::sync::Arc<DomainEntry>>,
    default: Option<std::sync::Arc<DomainEntry>>,
    unknown_to_default: bool,
    /// host → path → body.
    well_known: FxMap<Box<[u8]>, Answers>,
}

impl DomainTable {
    /// The snapshot's domains and answers with `changes` (domain and
    /// well-known changes newer than the snapshot, in order) applied.
    pub fn build<'a>(
        snapshot: Option<&Snapshot>,
        changes: impl IntoIterator<Item = &'a DomainChange>,
        unknown: UnknownHost,
    ) -> DomainTable {
        let mut domains: BTreeMap<u32, Domain> = BTreeMap::new();
        let mut answers: BTreeMap<(String, String), String> = BTreeMap::new();
        if let Some(snapshot) = snapshot {
            for domain in snapshot.domains() {
                domains.insert(domain.id, domain);
            }
            for WellKnown { host, path, body } in snapshot.well_known() {
                answers.insert((host, path), body);
            }
        }
        for change in changes {
            match change {
                DomainChange::Domain { id, domain } => match domain {
                    Some(domain) => {
                        domains.insert(*id, domain.clone());
                    }
                    None => {
                        domains.remove(id);
                    }
                },
                DomainChange::WellKnown { host, path, body } => {
                    let key = (host.to_string(), path.to_string());
                    match body {
                        Some(body) => answers.insert(key, body.to_string()),
                        None => answers.remove(&key),
                    };
                }
            }
        }
        let mut table = DomainTable::default();
        for domain in domains.values().filter(|d| d.served()) {
            let entry = std::sync::Arc::new(DomainEntry::new(domain));
            if domain.id == DEFAULT_DOMAIN {
                table.default = Some(entry.clone());
            }
            if !domain.name.is_empty() {
                table.by_host.insert(domain.name.as_bytes().into(), entry);
            }
        }
        // Only a deployment that has not configured domains at all (an
        // unnamed default domain and no other, pending or verified) answers
        // any name as the default domain: once a name is claimed, answering
        // it with the default domain's links would serve them under a
        // brand's name.
        let single_domain = table.default.as_ref().is_none_or(|d| d.name.is_empty())
            && domains.keys().all(|&id| id == DEFAULT_DOMAIN);
        table.unknown_to_default = match unknown {
            UnknownHost::Auto => single_domain,
            UnknownHost::DefaultDomain => true,
            UnknownHost::NotFound => false,
        };
        if table.default.is_none() {
            table.default = Some(std::sync::Arc::new(DomainEntry::new(
                &Domain::default_domain(""),
            )));
        }
        for ((host, path), body) in answers {
            table
                .well_known
                .entry(host.into_bytes().into())
                .or_default()
                .insert(path.into_bytes().into(), body.into_bytes().into());
        }
        table
    }

    /// The served domain a request is for, or `None` (answer 404).
    #[inline]
    pub fn resolve(&self, host: HostName<'_>) -> Option<&DomainEntry> {
        match host {
            HostName::Name(name) => match self.by_host.get(name) {
                Some(entry) => Some(entry),
                None if self.unknown_to_default => self.default.as_deref(),
                None => None,
            },
            HostName::Address => self.default.as_deref(),
            HostName::Invalid if self.unknown_to_default => self.default.as_deref(),
            HostName::Invalid => None,
        }
    }

    /// The default domain (for requests without a `Host`).
    #[inline]
    pub fn default_domain(&self) -> Option<&DomainEntry> {
        self.default.as_deref()
    }

    /// The body answered for `GET http://<host><path>`, if any.
    #[inline]
    pub fn well_known(&self, host: &[u8], path: &[u8]) -> Option<&[u8]> {
        if self.well_known.is_empty() {
            return None;
        }
        self.well_known.get(host)?.get(path).map(|b| &b[..])
    }

    /// Served named domains (for metrics and tests).
    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }
}
