//! What one core serves from: its own `Arc` of the current snapshot and its
//! own delta map. Only the core touches it (through a `RefCell` it never
//! borrows across an `.await`), so lookups take no lock and touch no shared
//! reference count.

use super::domains::{DomainChange, DomainTable, UnknownHost};
use super::fxhash::FxHasher;
use super::gate::Verifier;
use super::lifecycle::{Extra, Target};
use snapshots::delta::{LinkChange, LinkDelta};
use snapshots::password::PasswordValue;
use snapshots::rules::{ArchivedRulesValue, RulesBytes};
use snapshots::{RedirectStatus, Snapshot};
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

/// One change as every core holds it: decoded once by the change-stream
/// thread, shared read-only by `Arc` (each core keeps its own clone).
#[derive(Debug)]
pub struct DeltaRecord {
    pub seq: u64,
    pub change: DeltaChange,
}

/// What a change is about.
#[derive(Debug)]
pub enum DeltaChange {
    /// `(domain, code)` now reads like `link`; `None`: a tombstone.
    Link {
        domain: u32,
        code: Box<str>,
        link: Option<DeltaLink>,
    },
    /// A domain or a well-known answer changed.
    Domain(DomainChange),
}

/// An upserted link, owned.
#[derive(Debug)]
pub struct DeltaLink {
    pub target: Box<str>,
    pub status: RedirectStatus,
    /// Unix seconds; 0 means never.
    pub expires_at: i64,
    pub disabled: bool,
    pub forward_query: bool,
    /// Unix seconds; 0: none.
    pub valid_since: i64,
    /// Empty: none.
    pub expired_url: Box<str>,
    /// The owning organisation, for click records (0: unknown).
    pub org_id: u64,
    /// Redirect rules and split, archived once here so the request path
    /// reads them like a snapshot's; `None`: none.
    pub rules: Option<RulesBytes>,
    /// The password verifier, decoded once here; `None`: no password.
    pub password: Option<PasswordValue>,
    /// `max_visits`; 0: unlimited.
    pub max_visits: u32,
}

impl DeltaLink {
    fn has_extra(&self) -> bool {
        self.valid_since != 0 || !self.expired_url.is_empty()
    }
}

impl From<LinkDelta> for DeltaRecord {
    fn from(delta: LinkDelta) -> DeltaRecord {
        let change = match delta.change {
            LinkChange::Upsert { link } => {
                let rules = link
                    .has_rules()
                    .then(|| RulesBytes::new(&link.rules, &link.split, link.status));
                // Decoding the delta checked the verifier.
                let password = link
                    .password_hash
                    .as_deref()
                    .and_then(|phc| PasswordValue::from_phc(phc).ok());
                DeltaChange::Link {
                    domain: link.domain,
                    code: link.code.into_boxed_str(),
                    link: Some(DeltaLink {
                        target: link.target.into_boxed_str(),
                        status: link.status,
                        expires_at: link.expires_at.unwrap_or(0),
                        disabled: link.disabled,
                        forward_query: link.forward_query,
                        valid_since: link.valid_since.unwrap_or(0),
                        expired_url: link.expired_url.unwrap_or_default().into_boxed_str(),
                        org_id: link.org_id,
                        rules,
                        password,
                        max_visits: link.max_visits.unwrap_or(0),
                    }),
                }
            }
            LinkChange::Delete { domain, code } => DeltaChange::Link {
                domain,
                code: code.into_boxed_str(),
                link: None,
            },
            LinkChange::DomainUpsert { domain } => DeltaChange::Domain(DomainChange::Domain {
                id: domain.id,
                domain: Some(domain),
            }),
            LinkChange::DomainDelete { id } => {
                DeltaChange::Domain(DomainChange::Domain { id, domain: None })
            }
            LinkChange::WellKnownUpsert { answer } => {
                DeltaChange::Domain(DomainChange::WellKnown {
                    host: answer.host.into_boxed_str(),
                    path: answer.path.into_boxed_str(),
                    body: Some(answer.body.into_boxed_str()),
                })
            }
            LinkChange::WellKnownDelete { host, path } => {
                DeltaChange::Domain(DomainChange::WellKnown {
                    host: host.into_boxed_str(),
                    path: path.into_boxed_str(),
                    body: None,
                })
            }
        };
        DeltaRecord {
            seq: delta.seq,
            change,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    Found(Target<'a>),
    Missing,
    /// No snapshot loaded yet: the engine cannot say a code is unknown.
    NotReady,
}

/// Delta map keys: the domain's four little-endian bytes, then the code.
type DeltaMap = HashMap<Box<[u8]>, Arc<DeltaRecord>, BuildHasherDefault<FxHasher>>;

/// Longest delta map key: a domain id and the longest code.
const MAX_KEY_LEN: usize = 4 + snapshots::link::MAX_CODE_LEN;

/// Writes `(domain, code)`'s delta map key into `buf`; `None` when the code
/// is too long to be one.
#[inline]
fn delta_key<'b>(domain: u32, code: &[u8], buf: &'b mut [u8; MAX_KEY_LEN]) -> Option<&'b [u8]> {
    let len = 4 + code.len();
    if len > MAX_KEY_LEN {
        return None;
    }
    buf[..4].copy_from_slice(&domain.to_le_bytes());
    buf[4..len].copy_from_slice(code);
    Some(&buf[..len])
}

/// The domain changes among `records`.
fn changes(records: &[(u64, Arc<DeltaRecord>)]) -> impl Iterator<Item = &DomainChange> {
    records
        .iter()
        .filter_map(|(_, record)| match &record.change {
            DeltaChange::Domain(change) => Some(change),
            DeltaChange::Link { .. } => None,
        })
}

/// One core's view of the links and domains.
#[derive(Debug, Default)]
pub struct CoreState {
    snapshot: Option<Arc<Snapshot>>,
    deltas: DeltaMap,
    /// Domain and well-known changes newer than the snapshot, in order
    /// (sequence, change): the domain table is the snapshot's with these
    /// applied.
    domain_changes: Vec<(u64, Arc<DeltaRecord>)>,
    domains: DomainTable,
    unknown_host: UnknownHost,
    applied_seq: u64,
}

impl CoreState {
    pub fn new(snapshot: Option<Arc<Snapshot>>, unknown_host: UnknownHost) -> CoreState {
        let domains = DomainTable::build(snapshot.as_deref(), std::iter::empty(), unknown_host);
        CoreState {
            snapshot,
            domains,
            unknown_host,
            ..CoreState::default()
        }
    }

    /// The host → domain index and well-known answers.
    #[inline]
    pub fn domains(&self) -> &DomainTable {
        &self.domains
    }

    /// Looks a code up on the default domain (tests, tools).
    #[inline]
    pub fn lookup(&self, code: &[u8]) -> Lookup<'_> {
        self.lookup_in(snapshots::DEFAULT_DOMAIN, code)
    }

    /// Looks `(domain, code)` up: deltas first (they are newer than the
    /// snapshot), then the snapshot.
    #[inline]
    pub fn lookup_in(&self, domain: u32, code: &[u8]) -> Lookup<'_> {
        let mut buf = [0u8; MAX_KEY_LEN];
        if !self.deltas.is_empty()
            && let Some(key) = delta_key(domain, code, &mut buf)
            && let Some(record) = self.deltas.get(key)
            && let DeltaChange::Link { link, .. } = &record.change
        {
            return match link {
                Some(link) => Lookup::Found(Target {
                    location: link.target.as_bytes(),
                    status: link.status,
                    expires_at: link.expires_at,
                    disabled: link.disabled,
                    forward_query: link.forward_query,
                    has_extra: link.has_extra(),
                    has_rules: link.rules.is_some(),
                    has_password: link.password.is_some(),
                    limited: link.max_visits != 0,
                    org_id: link.org_id,
                }),
                None => Lookup::Missing,
            };
        }
        let Some(snapshot) = &self.snapshot else {
            return Lookup::NotReady;
        };
        match snapshot.get_in(domain, code) {
            Some(view) => Lookup::Found(Target {
                location: view.target().as_bytes(),
                status: view.status(),
                expires_at: view.expires_at().unwrap_or(0),
                disabled: view.disabled(),
                forward_query: view.forward_query(),
                has_extra: view.has_extra(),
                has_rules: view.has_rules(),
                has_password: view.has_password(),
                limited: view.has_limit(),
                org_id: view.org_id(),
            }),
            None => Lookup::Missing,
        }
    }

    /// The lifecycle extras of `(domain, code)`, from where
    /// [`CoreState::lookup_in`] found the link; only for a link whose
    /// target says `has_extra` (off the plain path).
    pub fn extra_in(&self, domain: u32, code: &[u8]) -> Option<Extra<'_>> {
        let mut buf = [0u8; MAX_KEY_LEN];
        if let Some(key) = delta_key(domain, code, &mut buf)
            && let Some(record) = self.deltas.get(key)
            && let DeltaChange::Link { link, .. } = &record.change
        {
            return link.as_ref().map(|link| Extra {
                valid_since: link.valid_since,
                expired_url: link.expired_url.as_bytes(),
            });
        }
        let extra = self.snapshot.as_ref()?.extra_in(domain, code)?;
        Some(Extra {
            valid_since: extra.valid_since().unwrap_or(0),
            expired_url: extra.expired_url().unwrap_or("").as_bytes(),
        })
    }

    /// The rules of `(domain, code)`, from where [`CoreState::lookup_in`]
    /// found the link; only for a link whose target says `has_rules`.
    pub fn rules_in(&self, domain: u32, code: &[u8]) -> Option<&ArchivedRulesValue> {
        let mut buf = [0u8; MAX_KEY_LEN];
        if let Some(key) = delta_key(domain, code, &mut buf)
            && let Some(record) = self.deltas.get(key)
            && let DeltaChange::Link { link, .. } = &record.change
        {
            return link.as_ref()?.rules.as_ref().map(RulesBytes::get);
        }
        self.snapshot.as_ref()?.rules_in(domain, code)
    }

    /// The password verifier of `(domain, code)`, from where
    /// [`CoreState::lookup_in`] found the link; only for a link whose
    /// target says `has_password`.
    pub fn password_in(&self, domain: u32, code: &[u8]) -> Option<Verifier<'_>> {
        let mut buf = [0u8; MAX_KEY_LEN];
        if let Some(key) = delta_key(domain, code, &mut buf)
            && let Some(record) = self.deltas.get(key)
            && let DeltaChange::Link { link, .. } = &record.change
        {
            return link.as_ref()?.password.as_ref().map(|p| Verifier {
                m_cost: p.m_cost,
                t_cost: p.t_cost,
                salt: &p.salt,
                hash: &p.hash,
            });
        }
        let p = self.snapshot.as_ref()?.password_in(domain, code)?;
        Some(Verifier {
            m_cost: p.m_cost.to_native(),
            t_cost: p.t_cost.to_native(),
            salt: &p.salt,
            hash: &p.hash,
        })
    }

    /// Swaps the snapshot in and prunes the deltas it covers; returns the
    /// previous one so the caller decides where it is dropped (unmapped).
    pub fn install(&mut self, snapshot: Arc<Snapshot>) -> Option<Arc<Snapshot>> {
        let sequence = snapshot.sequence();
        self.deltas.retain(|_, record| record.seq > sequence);
        self.domain_changes.retain(|(seq, _)| *seq > sequence);
        self.domains = DomainTable::build(
            Some(&*snapshot),
            changes(&self.domain_changes),
            self.unknown_host,
        );
        self.snapshot.replace(snapshot)
    }

    /// Applies a change unless the snapshot or an applied change is newer.
    /// Returns whether it changed anything.
    pub fn apply(&mut self, record: Arc<DeltaRecord>) -> bool {
        let covered = self
            .snapshot
            .as_ref()
            .is_some_and(|s| record.seq <= s.sequence());
        self.applied_seq = self.applied_seq.max(record.seq);
        if covered {
            return false;
        }
        let (domain, code) = match &record.change {
            DeltaChange::Link { domain, code, .. } => (*domain, code.as_bytes()),
            DeltaChange::Domain(_) => {
                if self
                    .domain_changes
                    .last()
                    .is_some_and(|(seq, _)| *seq >= record.seq)
                {
                    return false;
                }
                self.domain_changes.push((record.seq, record));
                self.domains = DomainTable::build(
                    self.snapshot.as_deref(),
                    changes(&self.domain_changes),
                    self.unknown_host,
                );
                return true;
            }
        };
        let mut buf = [0u8; MAX_KEY_LEN];
        let Some(key) = delta_key(domain, code, &mut buf) else {
            // Decoding checked the code's length.
            return false;
        };
        match self.deltas.get_mut(key) {
            Some(existing) if existing.seq >= record.seq => false,
            Some(existing) => {
                *existing = record;
                true
            }
            None => {
                let key = key.to_vec().into_boxed_slice();
                self.deltas.insert(key, record);
                true
            }
        }
    }

    pub fn snapshot_sequence(&self) -> Option<u64> {
        self.snapshot.as_ref().map(|s| s.sequence())
    }

    pub fn delta_len(&self) -> usize {
        self.deltas.len()
    }

    /// Highest delta sequence seen (applied or covered).
    pub fn applied_seq(&self) -> u64 {
        self.applied_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::{Link, SnapshotBuilder};

    fn snapshot(seq: u64, links: &[(&str, &str)]) -> Arc<Snapshot> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(seq);
        for (code, target) in links {
            builder.push(Link::new(*code, *target)).unwrap();
        }
        builder.write_to(&path).unwrap();
        Arc::new(Snapshot::open(&path).unwrap())
    }

    fn location(state: &CoreState, code: &str) -> Option<String> {
        match state.lookup(code.as_bytes()) {
            Lookup::Found(t) => Some(String::from_utf8(t.location.to_vec()).unwrap()),
            Lookup::Missing => None,
            Lookup::NotReady => Some("not ready".into()),
        }
    }

    fn upsert(seq: u64, code: &str, target: &str) -> Arc<DeltaRecord> {
        Arc::new(LinkDelta::upsert(seq, Link::new(code, target)).into())
    }

    #[test]
    fn deltas_over_snapshots() {
        let mut state = CoreState::new(None, UnknownHost::Auto);
        assert_eq!(location(&state, "a").as_deref(), Some("not ready"));
        state.install(snapshot(10, &[("a", "https://a/1"), ("b", "https://b/1")]));
        assert_eq!(location(&state, "a").as_deref(), Some("https://a/1"));
        // Covered by the snapshot: ignored.
        assert!(!state.apply(upsert(9, "a", "https://a/old")));
        assert!(state.apply(upsert(11, "a", "https://a/2")));
        assert!(state.apply(Arc::new(LinkDelta::delete(12, "b").into())));
        assert!(
            !state.apply(upsert(11, "a", "https://a/2")),
            "redelivery is a no-op"
        );
        assert_eq!(location(&state, "a").as_deref(), Some("https://a/2"));
        assert_eq!(location(&state, "b"), None);
        assert_eq!(state.delta_len(), 2);
        // A snapshot at 11 covers the upsert, not the delete.
        state.install(snapshot(11, &[("a", "https://a/2"), ("b", "https://b/1")]));
        assert_eq!(state.delta_len(), 1);
        assert_eq!(location(&state, "b"), None);
        assert_eq!(state.applied_seq(), 12);
    }
}

#[cfg(test)]
mod domain_tests {
    use super::*;
    use snapshots::domain::{Domain, HostName, WellKnown, normalize_host};
    use snapshots::{Link, SnapshotBuilder};

    fn brand(id: u32, name: &str, verified: bool) -> Domain {
        Domain {
            id,
            verified,
            ..Domain::default_domain(name)
        }
    }

    fn resolve(state: &CoreState, host: &str) -> Option<u32> {
        let mut buf = [0u8; snapshots::domain::MAX_DOMAIN_LEN + 1];
        state
            .domains()
            .resolve(normalize_host(host.as_bytes(), &mut buf))
            .map(|d| d.id)
    }

    fn target(state: &CoreState, domain: u32, code: &str) -> Option<String> {
        match state.lookup_in(domain, code.as_bytes()) {
            Lookup::Found(t) => Some(String::from_utf8(t.location.to_vec()).unwrap()),
            _ => None,
        }
    }

    #[test]
    fn hosts_resolve_to_served_domains_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(5);
        builder
            .push_domain(Domain::default_domain("sho.rt"))
            .unwrap();
        builder
            .push_domain(brand(7, "go.brand.example", true))
            .unwrap();
        builder
            .push_domain(brand(8, "pending.example", false))
            .unwrap();
        for (domain, target) in [(0, "https://t/0"), (7, "https://t/7"), (8, "https://t/8")] {
            builder
                .push(Link {
                    domain,
                    ..Link::new("abc", target)
                })
                .unwrap();
        }
        builder.write_to(&path).unwrap();
        let mut state = CoreState::new(
            Some(Arc::new(Snapshot::open(&path).unwrap())),
            UnknownHost::Auto,
        );
        assert_eq!(resolve(&state, "Go.Brand.Example.:8080"), Some(7));
        assert_eq!(resolve(&state, "sho.rt"), Some(0));
        assert_eq!(resolve(&state, "127.0.0.1:80"), Some(0));
        assert_eq!(resolve(&state, "pending.example"), None, "not verified");
        assert_eq!(resolve(&state, "other.example"), None, "named default: 404");
        assert_eq!(target(&state, 7, "abc").as_deref(), Some("https://t/7"));
        assert_eq!(target(&state, 0, "abc").as_deref(), Some("https://t/0"));

        // Verification arrives as a domain change; a link change on it too.
        assert!(
            state.apply(Arc::new(
                LinkDelta::change(
                    6,
                    LinkChange::DomainUpsert {
                        domain: brand(8, "pending.example", true)
                    }
                )
                .into()
            ))
        );
        assert_eq!(resolve(&state, "pending.example"), Some(8));
        assert!(
            state.apply(Arc::new(
                LinkDelta::upsert(
                    7,
                    Link {
                        domain: 8,
                        ..Link::new("abc", "https://t/8b")
                    }
                )
                .into()
            ))
        );
        assert_eq!(target(&state, 8, "abc").as_deref(), Some("https://t/8b"));
        assert_eq!(target(&state, 7, "abc").as_deref(), Some("https://t/7"));
        // A well-known answer, for a name that is not a domain at all.
        assert!(
            state.apply(Arc::new(
                LinkDelta::change(
                    8,
                    LinkChange::WellKnownUpsert {
                        answer: WellKnown {
                            host: "new.example".into(),
                            path: "/.well-known/links-domain-verification/t".into(),
                            body: "t".into(),
                        }
                    }
                )
                .into()
            ))
        );
        assert_eq!(
            state
                .domains()
                .well_known(b"new.example", b"/.well-known/links-domain-verification/t"),
            Some(&b"t"[..])
        );
        assert!(state.apply(Arc::new(
            LinkDelta::change(9, LinkChange::DomainDelete { id: 7 }).into()
        )));
        assert_eq!(resolve(&state, "go.brand.example"), None);
        // A snapshot at 8 keeps change 9 (domain 7 deleted) applied.
        let mut builder = SnapshotBuilder::new(8);
        builder
            .push_domain(Domain::default_domain("sho.rt"))
            .unwrap();
        builder
            .push_domain(brand(7, "go.brand.example", true))
            .unwrap();
        builder.write_to(&path).unwrap();
        state.install(Arc::new(Snapshot::open(&path).unwrap()));
        assert_eq!(resolve(&state, "go.brand.example"), None);
        let mut buf = [0u8; snapshots::domain::MAX_DOMAIN_LEN + 1];
        assert!(matches!(normalize_host(b"", &mut buf), HostName::Invalid));
    }

    #[test]
    fn extras_come_from_where_the_link_was_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(5);
        builder
            .push(Link {
                valid_since: Some(100),
                ..Link::new("a", "https://t/a")
            })
            .unwrap();
        builder.push(Link::new("b", "https://t/b")).unwrap();
        builder.write_to(&path).unwrap();
        let mut state = CoreState::new(None, UnknownHost::Auto);
        state.install(Arc::new(Snapshot::open(&path).unwrap()));
        let found = |state: &CoreState, code: &str| match state.lookup(code.as_bytes()) {
            Lookup::Found(t) => t.has_extra,
            other => panic!("{other:?}"),
        };
        assert!(found(&state, "a") && !found(&state, "b"));
        assert_eq!(
            state.extra_in(0, b"a"),
            Some(Extra {
                valid_since: 100,
                expired_url: b""
            })
        );
        assert_eq!(state.extra_in(0, b"b"), None);
        // A delta replaces the link, extras and all: "a" loses them, "b"
        // gains an expired URL.
        state.apply(Arc::new(
            LinkDelta::upsert(6, Link::new("a", "https://t/a2")).into(),
        ));
        let mut link = Link::new("b", "https://t/b");
        link.expired_url = Some("https://t/over".into());
        state.apply(Arc::new(LinkDelta::upsert(7, link).into()));
        assert!(!found(&state, "a") && found(&state, "b"));
        assert_eq!(
            state.extra_in(0, b"b"),
            Some(Extra {
                valid_since: 0,
                expired_url: b"https://t/over"
            })
        );
    }

    #[test]
    fn rules_come_from_where_the_link_was_found() {
        use snapshots::rules::{Conditions, Device, Rule};
        let mobile = |target: &str| Rule {
            when: Conditions {
                device: vec![Device::Mobile],
                ..Conditions::default()
            },
            target: target.into(),
            status: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.snap");
        let mut builder = SnapshotBuilder::new(5);
        builder
            .push(Link {
                rules: vec![mobile("https://t/m")],
                ..Link::new("a", "https://t/a")
            })
            .unwrap();
        builder.push(Link::new("b", "https://t/b")).unwrap();
        builder.write_to(&path).unwrap();
        let mut state = CoreState::new(None, UnknownHost::Auto);
        state.install(Arc::new(Snapshot::open(&path).unwrap()));
        let ruled = |state: &CoreState, code: &str| match state.lookup(code.as_bytes()) {
            Lookup::Found(t) => t.has_rules && !t.redirects_plainly(0),
            other => panic!("{other:?}"),
        };
        assert!(ruled(&state, "a") && !ruled(&state, "b"));
        let target = |state: &CoreState, code: &[u8]| {
            state
                .rules_in(0, code)
                .map(|r| r.rules[0].target.as_str().to_owned())
        };
        assert_eq!(target(&state, b"a").as_deref(), Some("https://t/m"));
        assert_eq!(target(&state, b"b"), None);
        // A delta replaces the link, rules and all.
        state.apply(Arc::new(
            LinkDelta::upsert(6, Link::new("a", "https://t/a2")).into(),
        ));
        let link = Link {
            rules: vec![mobile("https://t/m2")],
            ..Link::new("b", "https://t/b")
        };
        state.apply(Arc::new(LinkDelta::upsert(7, link).into()));
        assert!(!ruled(&state, "a") && ruled(&state, "b"));
        assert_eq!(target(&state, b"a"), None);
        assert_eq!(target(&state, b"b").as_deref(), Some("https://t/m2"));
    }

    #[test]
    fn an_unnamed_default_domain_takes_every_host() {
        let state = CoreState::new(None, UnknownHost::Auto);
        assert_eq!(resolve(&state, "anything.example"), Some(0));
        let state = CoreState::new(None, UnknownHost::NotFound);
        assert_eq!(resolve(&state, "anything.example"), None);
        assert_eq!(resolve(&state, "10.0.0.1"), Some(0));
    }
}
