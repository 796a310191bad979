//! Certificates per SNI name, loaded from a directory.
//!
//! The directory holds one pair per name: `NAME.crt` (the PEM chain, leaf
//! first) and `NAME.key` (its PEM private key: PKCS#8, SEC1 or RSA). NAME is
//! the DNS name the pair serves, matched exactly (case-insensitively). A
//! file name starting with `_.` is a wildcard: `_.example.com.crt` serves
//! `a.example.com` but neither `example.com` nor `a.b.example.com`, as a
//! `*.example.com` certificate does (`_` rather than `*` so that shells and
//! file tools need no quoting). Files whose name starts with `.` are
//! ignored, so a pair can be written under a hidden name and renamed into
//! place; other extensions are ignored too.
//!
//! A pair is refused, with the file at fault named, when its certificate or
//! key does not parse, the key does not match the certificate, a
//! certificate of the chain has expired or is not yet valid, the leaf does
//! not cover the name it is filed under, or one file of the pair is
//! missing. A refused pair never stops the others: [`load_dir`] returns the
//! set that loaded and the list of refusals. Given the previous set (a
//! reload), a name whose new pair is refused keeps its previous
//! certificate.
//!
//! Choice: exact name, then the wildcard of its parent domain, then the
//! `default` name if one is configured (for clients that send no SNI or an
//! unknown name); with none, rustls ends the handshake with an
//! `access_denied` alert.

use super::validity::{self, validity};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why a pair (or the directory) was refused. Every message names the file.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    #[error("cannot read certificate directory {dir}: {source}")]
    Dir {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: `{name}` is not a DNS name to serve")]
    BadName { path: PathBuf, name: String },
    #[error("{path}: no {missing} beside it")]
    Unpaired { path: PathBuf, missing: PathBuf },
    #[error("{path}: not a PEM certificate chain: {reason}")]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{path}: not a PEM private key (PKCS#8, SEC1 or RSA): {reason}")]
    BadKey { path: PathBuf, reason: String },
    #[error("{key}: private key does not match the certificate in {cert}")]
    KeyMismatch { key: PathBuf, cert: PathBuf },
    #[error("{path}: certificate {index} of the chain expired at {not_after}")]
    Expired {
        path: PathBuf,
        index: usize,
        not_after: String,
    },
    #[error("{path}: certificate {index} of the chain is not valid before {not_before}")]
    NotYetValid {
        path: PathBuf,
        index: usize,
        not_before: String,
    },
    #[error("{path}: the certificate does not cover {name}")]
    WrongName { path: PathBuf, name: String },
    #[error("default certificate name {name} has no valid pair in {dir}")]
    NoDefault { dir: PathBuf, name: String },
}

/// A refused pair, and whether its name still serves the previous one.
#[derive(Debug)]
pub struct Refusal {
    /// The name the pair was filed under (`_.example.com` for a wildcard).
    pub name: String,
    pub error: CertError,
    /// A reload kept the name's previous certificate.
    pub kept_previous: bool,
}

/// The certificates of one load, keyed by name; rustls's resolver.
#[derive(Debug, Clone, Default)]
pub struct CertSet {
    /// Exact names, lower case.
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Wildcards by parent domain: `example.com` for `_.example.com`.
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertSet {
    /// The certificate a client asking for `sni` gets.
    pub fn choose(&self, sni: Option<&str>) -> Option<&Arc<CertifiedKey>> {
        sni.and_then(|name| self.lookup(name))
            .or(self.default.as_ref())
    }

    fn lookup(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        // rustls hands over SNI in lower case already.
        if let Some(key) = self.exact.get(name) {
            return Some(key);
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent)
    }

    /// Pairs loaded (exact and wildcard).
    pub fn len(&self) -> usize {
        self.exact.len() + self.wildcard.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names served, as filed (`_.example.com` for a wildcard), sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.exact.keys().cloned().collect();
        names.extend(self.wildcard.keys().map(|d| format!("_.{d}")));
        names.sort();
        names
    }

    /// Whether `other` serves the same chains under the same names (keys
    /// are not compared: a new key comes with a new certificate).
    pub fn same_as(&self, other: &CertSet) -> bool {
        type Names = HashMap<String, Arc<CertifiedKey>>;
        fn same(a: &Names, b: &Names) -> bool {
            a.len() == b.len()
                && a.iter()
                    .all(|(name, k)| b.get(name).is_some_and(|o| o.cert == k.cert))
        }
        same(&self.exact, &other.exact)
            && same(&self.wildcard, &other.wildcard)
            && self.default.as_ref().map(|k| &k.cert) == other.default.as_ref().map(|k| &k.cert)
    }

    fn get_filed(&self, filed: &str) -> Option<&Arc<CertifiedKey>> {
        match filed.strip_prefix("_.") {
            Some(parent) => self.wildcard.get(parent),
            None => self.exact.get(filed),
        }
    }

    fn insert_filed(&mut self, filed: String, key: Arc<CertifiedKey>) {
        match filed.strip_prefix("_.") {
            Some(parent) => self.wildcard.insert(parent.to_string(), key),
            None => self.exact.insert(filed, key),
        };
    }
}

impl ResolvesServerCert for CertSet {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.choose(hello.server_name()).cloned()
    }
}

/// What one load produced.
#[derive(Debug)]
pub struct Loaded {
    pub set: CertSet,
    pub refused: Vec<Refusal>,
}

/// Loads every pair in `dir`. `previous` is the set being replaced (a
/// reload): a name whose new pair is refused keeps its previous
/// certificate. `now` is unix seconds, for the validity check. Only an
/// unreadable directory is an error; refused pairs are in
/// [`Loaded::refused`].
pub fn load_dir(
    dir: &Path,
    default: Option<&str>,
    previous: Option<&CertSet>,
    provider: &CryptoProvider,
    now: i64,
) -> Result<Loaded, CertError> {
    load_dirs(dir, None, default, previous, provider, now)
}

/// [`load_dir`] over the operator's directory and, if given, the directory
/// of pushed pairs (`pushed`, which may not exist yet). A name with a pair
/// in `dir` is served from there, whatever `pushed` holds for it.
pub fn load_dirs(
    dir: &Path,
    pushed: Option<&Path>,
    default: Option<&str>,
    previous: Option<&CertSet>,
    provider: &CryptoProvider,
    now: i64,
) -> Result<Loaded, CertError> {
    let mut loaded = load_pairs(dir, previous, provider, now)?;
    if let Some(pushed) = pushed
        && pushed.exists()
    {
        let more = load_pairs(pushed, previous, provider, now)?;
        for (filed, key) in more.set.exact.into_iter() {
            loaded.set.exact.entry(filed).or_insert(key);
        }
        for (parent, key) in more.set.wildcard.into_iter() {
            loaded.set.wildcard.entry(parent).or_insert(key);
        }
        loaded.refused.extend(more.refused);
    }
    if let Some(name) = default {
        let name = name.to_ascii_lowercase();
        loaded.set.default = loaded.set.get_filed(&name).cloned();
        if loaded.set.default.is_none() {
            loaded.refused.push(Refusal {
                name: name.clone(),
                error: CertError::NoDefault {
                    dir: dir.to_path_buf(),
                    name,
                },
                kept_previous: false,
            });
        }
    }
    Ok(loaded)
}

/// Every pair in one directory, without the default.
fn load_pairs(
    dir: &Path,
    previous: Option<&CertSet>,
    provider: &CryptoProvider,
    now: i64,
) -> Result<Loaded, CertError> {
    let dir_error = |source| CertError::Dir {
        dir: dir.to_path_buf(),
        source,
    };
    // File stem -> (has .crt, has .key), in name order.
    let mut stems: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).map_err(dir_error)? {
        let path = entry.map_err(dir_error)?.path();
        let (Some(stem), Some(ext)) = (
            path.file_stem().and_then(|s| s.to_str()),
            path.extension().and_then(|s| s.to_str()),
        ) else {
            continue;
        };
        if stem.starts_with('.') {
            continue;
        }
        let slot = stems.entry(stem.to_string());
        match ext {
            "crt" => slot.or_default().0 = true,
            "key" => slot.or_default().1 = true,
            _ => {}
        }
    }

    let mut set = CertSet::default();
    let mut refused = Vec::new();
    for (stem, (has_crt, has_key)) in stems {
        let crt = dir.join(format!("{stem}.crt"));
        let key = dir.join(format!("{stem}.key"));
        let filed = stem.to_ascii_lowercase();
        let result = match (has_crt, has_key) {
            (true, true) => load_pair(&filed, &crt, &key, provider, now),
            (true, false) => Err(CertError::Unpaired {
                path: crt,
                missing: key,
            }),
            _ => Err(CertError::Unpaired {
                path: key,
                missing: crt,
            }),
        };
        match result {
            Ok(certified) => set.insert_filed(filed, Arc::new(certified)),
            Err(error) => {
                let kept = previous.and_then(|p| p.get_filed(&filed)).cloned();
                let kept_previous = kept.is_some();
                if let Some(kept) = kept {
                    set.insert_filed(filed.clone(), kept);
                }
                refused.push(Refusal {
                    name: filed,
                    error,
                    kept_previous,
                });
            }
        }
    }
    Ok(Loaded { set, refused })
}

/// Whether `filed` names a pair this module would load: a DNS name, or
/// `_.` and one (a wildcard), as a file stem.
pub fn is_pair_name(filed: &str) -> bool {
    let probe = match filed.strip_prefix("_.") {
        Some(parent) => format!("wildcard-probe.{parent}"),
        None => filed.to_string(),
    };
    !filed.starts_with('.')
        && !filed.contains('/')
        && matches!(
            ServerName::try_from(probe.as_str()),
            Ok(ServerName::DnsName(_))
        )
}

/// Checks one pair as [`load_dir`] would (the files `crt` and `key`, filed
/// under `filed`), for a pair that is about to be installed.
pub fn check_pair(
    filed: &str,
    crt: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<(), CertError> {
    load_pair(&filed.to_ascii_lowercase(), crt, key, provider, now).map(|_| ())
}

/// One `NAME.crt` + `NAME.key` pair, checked.
fn load_pair(
    filed: &str,
    crt: &Path,
    key: &Path,
    provider: &CryptoProvider,
    now: i64,
) -> Result<CertifiedKey, CertError> {
    // The name the certificate must cover: for a wildcard, any one label
    // under its domain.
    let probe = match filed.strip_prefix("_.") {
        Some(parent) => format!("wildcard-probe.{parent}"),
        None => filed.to_string(),
    };
    let server_name = match ServerName::try_from(probe.as_str()) {
        Ok(name @ ServerName::DnsName(_)) => name,
        _ => {
            return Err(CertError::BadName {
                path: crt.to_path_buf(),
                name: filed.to_string(),
            });
        }
    };

    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| CertError::Read {
            path: path.to_path_buf(),
            source,
        })
    };
    let bad_cert = |reason: String| CertError::BadCertificate {
        path: crt.to_path_buf(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(crt)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad_cert(e.to_string()))?;
    if chain.is_empty() {
        return Err(bad_cert("no `BEGIN CERTIFICATE` block".to_string()));
    }
    for (i, cert) in chain.iter().enumerate() {
        let index = i + 1;
        let Some(v) = validity(cert) else {
            return Err(bad_cert(format!("certificate {index} is not X.509 DER")));
        };
        if now > v.not_after {
            return Err(CertError::Expired {
                path: crt.to_path_buf(),
                index,
                not_after: validity::format(v.not_after),
            });
        }
        if now < v.not_before {
            return Err(CertError::NotYetValid {
                path: crt.to_path_buf(),
                index,
                not_before: validity::format(v.not_before),
            });
        }
    }
    let leaf = webpki::EndEntityCert::try_from(&chain[0])
        .map_err(|e| bad_cert(format!("leaf certificate: {e}")))?;
    if leaf.verify_is_valid_for_subject_name(&server_name).is_err() {
        let name = match filed.strip_prefix("_.") {
            Some(parent) => format!("*.{parent}"),
            None => filed.to_string(),
        };
        return Err(CertError::WrongName {
            path: crt.to_path_buf(),
            name,
        });
    }

    let private = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| CertError::BadKey {
        path: key.to_path_buf(),
        reason: e.to_string(),
    })?;
    let signing = provider
        .key_provider
        .load_private_key(private)
        .map_err(|e| CertError::BadKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
    let certified = CertifiedKey::new(chain, signing);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        // The provider could not tell (no public key to compare): the
        // handshake's own signature is then the check.
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => Ok(certified),
        Err(_) => Err(CertError::KeyMismatch {
            key: key.to_path_buf(),
            cert: crt.to_path_buf(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::testpki::{TestCa, now};

    fn load(dir: &Path, default: Option<&str>, previous: Option<&CertSet>) -> Loaded {
        load_dir(
            dir,
            default,
            previous,
            &crate::tls::config::provider(),
            now(),
        )
        .unwrap()
    }

    fn message(loaded: &Loaded, name: &str) -> String {
        loaded
            .refused
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.error.to_string())
            .unwrap_or_else(|| panic!("{name} was not refused: {:?}", loaded.refused))
    }

    #[test]
    fn picks_by_exact_name_then_wildcard_then_default() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        ca.write_pair(dir.path(), "B.test", &["b.test"]);
        ca.write_pair(dir.path(), "_.w.test", &["*.w.test"]);
        let loaded = load(dir.path(), Some("a.test"), None);
        assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
        let set = loaded.set;
        assert_eq!(set.names(), ["_.w.test", "a.test", "b.test"]);
        let leaf = |sni| TestCa::dns_names(&set.choose(sni).unwrap().cert[0]);
        assert_eq!(leaf(Some("a.test")), ["a.test"]);
        assert_eq!(leaf(Some("b.test")), ["b.test"]);
        assert_eq!(leaf(Some("x.w.test")), ["*.w.test"]);
        // Not covered by the wildcard: the default.
        assert_eq!(leaf(Some("w.test")), ["a.test"]);
        assert_eq!(leaf(Some("x.y.w.test")), ["a.test"]);
        assert_eq!(leaf(None), ["a.test"]);
        // Without a default, unknown names get nothing.
        let set = load(dir.path(), None, None).set;
        assert!(set.choose(Some("other.test")).is_none());
        assert!(set.choose(None).is_none());
    }

    #[test]
    fn refuses_bad_pairs_naming_the_file_and_keeps_the_rest() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ca.write_pair(d, "good.test", &["good.test"]);
        // Garbage certificate, garbage key.
        ca.write_pair(d, "garbage-cert.test", &["garbage-cert.test"]);
        std::fs::write(d.join("garbage-cert.test.crt"), "hello").unwrap();
        ca.write_pair(d, "garbage-key.test", &["garbage-key.test"]);
        std::fs::write(
            d.join("garbage-key.test.key"),
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .unwrap();
        // Key of another pair.
        ca.write_pair(d, "mismatch.test", &["mismatch.test"]);
        std::fs::copy(d.join("good.test.key"), d.join("mismatch.test.key")).unwrap();
        // Out of its validity period.
        ca.write_pair_dated(d, "expired.test", &["expired.test"], -20, -10);
        ca.write_pair_dated(d, "future.test", &["future.test"], 10, 20);
        // Filed under a name it does not cover; a lone certificate.
        ca.write_pair(d, "misfiled.test", &["other.test"]);
        ca.write_pair(d, "lonely.test", &["lonely.test"]);
        std::fs::remove_file(d.join("lonely.test.key")).unwrap();
        // Ignored: hidden files and other extensions.
        std::fs::write(d.join(".tmp.test.crt"), "partial").unwrap();
        std::fs::write(d.join("README"), "notes").unwrap();

        let loaded = load(d, None, None);
        assert_eq!(loaded.set.names(), ["good.test"]);
        let path = |f: &str| d.join(f).display().to_string();
        let m = message(&loaded, "garbage-cert.test");
        assert!(m.starts_with(&path("garbage-cert.test.crt")), "{m}");
        assert!(m.contains("no `BEGIN CERTIFICATE` block"), "{m}");
        let m = message(&loaded, "garbage-key.test");
        assert!(m.starts_with(&path("garbage-key.test.key")), "{m}");
        let m = message(&loaded, "mismatch.test");
        assert_eq!(
            m,
            format!(
                "{}: private key does not match the certificate in {}",
                path("mismatch.test.key"),
                path("mismatch.test.crt")
            )
        );
        let m = message(&loaded, "expired.test");
        assert!(
            m.starts_with(&format!(
                "{}: certificate 1 of the chain expired at ",
                path("expired.test.crt")
            )),
            "{m}"
        );
        let m = message(&loaded, "future.test");
        assert!(
            m.contains("future.test.crt: certificate 1 of the chain is not valid before"),
            "{m}"
        );
        let m = message(&loaded, "misfiled.test");
        assert_eq!(
            m,
            format!(
                "{}: the certificate does not cover misfiled.test",
                path("misfiled.test.crt")
            )
        );
        let m = message(&loaded, "lonely.test");
        assert_eq!(
            m,
            format!(
                "{}: no {} beside it",
                path("lonely.test.crt"),
                path("lonely.test.key")
            )
        );
        assert_eq!(loaded.refused.len(), 7, "{:?}", loaded.refused);
        assert!(loaded.refused.iter().all(|r| !r.kept_previous));
    }

    #[test]
    fn expired_intermediate_is_refused() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        // Append an expired certificate to the chain (leaf, CA, this one).
        let old = TestCa::new_dated(-20, -10);
        let mut chain = std::fs::read_to_string(dir.path().join("a.test.crt")).unwrap();
        chain.push_str(&old.cert_pem());
        std::fs::write(dir.path().join("a.test.crt"), chain).unwrap();
        let loaded = load(dir.path(), None, None);
        assert!(message(&loaded, "a.test").contains("certificate 3 of the chain expired"));
    }

    #[test]
    fn reload_keeps_the_previous_pair_for_a_bad_new_one() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        ca.write_pair(d, "a.test", &["a.test"]);
        ca.write_pair(d, "b.test", &["b.test"]);
        ca.write_pair(d, "gone.test", &["gone.test"]);
        let first = load(d, Some("a.test"), None).set;
        let a_before = first.choose(Some("a.test")).unwrap().clone();

        // a.test: new certificate, old key (half-way through a copy).
        let other = TestCa::new();
        other.write_pair(d, "new.tmp", &["a.test"]);
        std::fs::rename(d.join("new.tmp.crt"), d.join("a.test.crt")).unwrap();
        std::fs::remove_file(d.join("new.tmp.key")).unwrap();
        // b.test: replaced by a good one. gone.test: removed.
        ca.write_pair(d, "b.test", &["b.test"]);
        std::fs::remove_file(d.join("gone.test.crt")).unwrap();
        std::fs::remove_file(d.join("gone.test.key")).unwrap();

        let loaded = load(d, Some("a.test"), Some(&first));
        assert_eq!(loaded.refused.len(), 1, "{:?}", loaded.refused);
        assert!(loaded.refused[0].kept_previous);
        assert!(matches!(
            loaded.refused[0].error,
            CertError::KeyMismatch { .. }
        ));
        let set = loaded.set;
        assert_eq!(set.names(), ["a.test", "b.test"]);
        assert!(Arc::ptr_eq(set.choose(Some("a.test")).unwrap(), &a_before));
        assert!(Arc::ptr_eq(set.choose(None).unwrap(), &a_before));
        assert!(!Arc::ptr_eq(
            set.choose(Some("b.test")).unwrap(),
            first.choose(Some("b.test")).unwrap()
        ));
    }

    #[test]
    fn missing_default_and_directory_are_reported() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        let loaded = load(dir.path(), Some("nope.test"), None);
        assert_eq!(
            message(&loaded, "nope.test"),
            format!(
                "default certificate name nope.test has no valid pair in {}",
                dir.path().display()
            )
        );
        let missing = dir.path().join("missing");
        let err =
            load_dir(&missing, None, None, &crate::tls::config::provider(), now()).unwrap_err();
        assert!(err.to_string().starts_with(&format!(
            "cannot read certificate directory {}",
            missing.display()
        )));
    }

    #[test]
    fn keys_in_every_pem_form_load() {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new();
        // PKCS#8 (what rcgen writes), SEC1 and RSA PKCS#1 (rewrapped).
        ca.write_pair(dir.path(), "pkcs8.test", &["pkcs8.test"]);
        ca.write_pair_sec1(dir.path(), "sec1.test", &["sec1.test"]);
        ca.write_pair_rsa(dir.path(), "rsa.test", &["rsa.test"]);
        let loaded = load(dir.path(), None, None);
        assert!(loaded.refused.is_empty(), "{:?}", loaded.refused);
        assert_eq!(loaded.set.names(), ["pkcs8.test", "rsa.test", "sec1.test"]);
    }
}
