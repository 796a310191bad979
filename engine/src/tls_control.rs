//! The control thread's side of TLS: the node's [`CertStore`], its reloads
//! handed to every core, and pairs pushed to the admin port.
//!
//! One store per node, behind a mutex that only the control thread's
//! blocking tasks take (never a core): the watch ([`TlsControl::poll`],
//! every `watch_interval_ms`) and `PUT /certs/NAME`
//! ([`TlsControl::install`]) each hold it for a whole reload, so a push's
//! two files are never seen half-renamed. A reload that changes what is
//! served sends the new `Arc<ServerConfig>` to every core's command channel
//! ([`Command::Tls`]); each core starts its next TLS connections on it and
//! established connections keep the one they started with.
//!
//! Pushed pairs live in the state directory's `certs/` (0700, files 0600),
//! beside the operator's `--tls-certs` directory, which wins for a name in
//! both (`tls::certs::load_dirs`).

use crate::core::command::Command;
use crate::state_dir::{fsync_dir, private_file};
use crate::tls::certs::{CertError, check_pair, is_pair_name};
use crate::tls::config::{TlsSettings, provider};
use crate::tls::store::{self as cert_store, CertStore, Reload, StoreError};
use crossbeam_channel::{Receiver, Sender};
use rustls::ServerConfig;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

/// Largest body `PUT /certs/NAME` takes: a chain of a few certificates and
/// a key (an RSA-4096 chain of three is about 7 KiB of PEM).
pub const MAX_PUSH_BYTES: usize = 64 * 1024;

/// Why a pushed pair was refused.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    #[error("{0:?} is not a certificate name (a DNS name, or _.DOMAIN for a wildcard)")]
    BadName(String),
    #[error(
        "the body has no `BEGIN CERTIFICATE` block (expected the chain, leaf first, then the key, PEM)"
    )]
    NoCertificate,
    #[error(
        "the body has no `BEGIN ... PRIVATE KEY` block (expected the chain, then the key, PEM)"
    )]
    NoKey,
    #[error("the body has {0} private keys; one pair at a time")]
    ManyKeys(usize),
    #[error("{0}")]
    Refused(String),
    /// The operator's directory has a pair for the name, which would keep
    /// being served instead.
    #[error(
        "{0} exists: the operator's --tls-certs pair for this name is served instead of a pushed one; remove it there first"
    )]
    Shadowed(PathBuf),
    #[error("storing the pair in {dir} failed ({step}): {source}")]
    Store {
        step: &'static str,
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The store, and what its last load refused.
#[derive(Debug)]
struct Watched {
    store: CertStore,
    /// The last load's refusals (their messages): a file that stays bad is
    /// reloaded while its timestamp is too recent to trust (`tls::store`),
    /// and is logged and counted once, not at every look.
    refused: Vec<String>,
}

/// The node's TLS certificates and what their reloads found.
#[derive(Debug)]
pub struct TlsControl {
    store: Mutex<Watched>,
    /// New configurations sent to the cores.
    pub reloads: AtomicU64,
    /// Pairs refused by a load (counted per load that refused them).
    pub refusals: AtomicU64,
    /// Key files that could not be used.
    pub ticket_key_errors: AtomicU64,
    /// Names served (exact and wildcard).
    pub names: AtomicU64,
}

impl TlsControl {
    /// Loads the certificates; an error if none loads (naming every file
    /// refused) or the key file is bad. Returns the first configuration.
    pub fn open(settings: TlsSettings) -> Result<(TlsControl, Arc<ServerConfig>), StoreError> {
        let (store, refused) = CertStore::open(settings)?;
        let refusals = refused.len() as u64;
        let messages = refused.iter().map(|r| r.error.to_string()).collect();
        cert_store::log(
            store.settings(),
            &Reload {
                refused,
                ..Reload::default()
            },
        );
        let config = store.config();
        tracing::info!(
            dir = %store.settings().cert_dir.display(),
            names = ?store.certs().names(),
            "TLS certificates loaded"
        );
        let control = TlsControl {
            names: AtomicU64::new(store.certs().len() as u64),
            store: Mutex::new(Watched {
                store,
                refused: messages,
            }),
            reloads: AtomicU64::new(0),
            refusals: AtomicU64::new(refusals),
            ticket_key_errors: AtomicU64::new(0),
        };
        Ok((control, config))
    }

    /// Looks for changed files; a new configuration goes to every core.
    /// Blocking (stats and reads files, may wait on full channels).
    pub fn poll(&self, cores: &[Sender<Command>]) {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        // A watch does not wait for the cores to take it.
        let _ = self.reload(&mut store, cores);
    }

    /// Reloads; returns the cores' acknowledgements of a new configuration
    /// (`None` if nothing new was sent).
    fn reload(&self, watched: &mut Watched, cores: &[Sender<Command>]) -> Option<Receiver<usize>> {
        let store = &mut watched.store;
        let mut reload = store.poll();
        // A load happened if it refused something or changed what is served
        // (a look that found nothing changed has neither).
        if !reload.refused.is_empty() || reload.config.is_some() {
            let messages: Vec<String> =
                reload.refused.iter().map(|r| r.error.to_string()).collect();
            reload
                .refused
                .retain(|r| !watched.refused.contains(&r.error.to_string()));
            watched.refused = messages;
        }
        cert_store::log(store.settings(), &reload);
        self.refusals
            .fetch_add(reload.refused.len() as u64, Relaxed);
        if reload.ticket_keys.is_some() {
            self.ticket_key_errors.fetch_add(1, Relaxed);
        }
        self.names.store(store.certs().len() as u64, Relaxed);
        let config = reload.config?;
        self.reloads.fetch_add(1, Relaxed);
        let (done, acks) = crossbeam_channel::bounded(cores.len());
        for core in cores {
            // A closed channel: the core is shutting down.
            let _ = core.send(Command::Tls {
                config: config.clone(),
                done: done.clone(),
            });
        }
        Some(acks)
    }

    /// Installs a pushed pair under `name` (the body: the PEM chain, leaf
    /// first, and its PEM key) once it passes every check a pair in the
    /// directory gets, then reloads. Returns the names served after it.
    /// Blocking.
    pub fn install(
        &self,
        name: &str,
        body: &[u8],
        dir: &Path,
        cores: &[Sender<Command>],
    ) -> Result<Vec<String>, PushError> {
        if !is_pair_name(name) {
            return Err(PushError::BadName(name.to_owned()));
        }
        let (chain, key) = split_pem(body)?;
        // One install or reload at a time, from staging to the reload.
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let filed = name.to_ascii_lowercase();
        let operator = store.store.settings().cert_dir.join(format!("{filed}.crt"));
        if operator.exists() {
            return Err(PushError::Shadowed(operator));
        }
        let store_error = |step| {
            let dir = dir.to_path_buf();
            move |source| PushError::Store { step, dir, source }
        };
        // Hidden names: the directory's loads ignore them.
        let staged = Staged {
            crt: dir.join(format!(".{filed}.crt.push")),
            key: dir.join(format!(".{filed}.key.push")),
        };
        staged.remove();
        for (path, text) in [(&staged.crt, &chain), (&staged.key, &key)] {
            let mut file = private_file(path).map_err(store_error("create"))?;
            file.write_all(text.as_bytes())
                .map_err(store_error("write"))?;
            file.sync_all().map_err(store_error("fsync"))?;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        check_pair(&filed, &staged.crt, &staged.key, &provider(), now)
            .map_err(|e| PushError::Refused(staged.describe(&e)))?;

        // Key first: a load in between (another process's; this node's
        // wait for the lock) would see the new key with the old chain and
        // keep the old pair, never serve a mismatch.
        std::fs::rename(&staged.key, dir.join(format!("{filed}.key")))
            .map_err(store_error("rename"))?;
        std::fs::rename(&staged.crt, dir.join(format!("{filed}.crt")))
            .map_err(store_error("rename"))?;
        fsync_dir(dir).map_err(store_error("fsync"))?;
        // Served by every core's next connection once this returns.
        self.reload_and_wait(&mut store, cores);
        Ok(store.store.certs().names())
    }

    /// Removes the pushed pair `name` (control withdrew it: the domain was
    /// deleted), then reloads; new connections no longer get it once this
    /// returns. `Ok(None)` if no pair was pushed under the name; the
    /// operator's own pair for it is never touched ([`PushError::Shadowed`]).
    /// Returns the names served after it. Blocking.
    pub fn remove(
        &self,
        name: &str,
        dir: &Path,
        cores: &[Sender<Command>],
    ) -> Result<Option<Vec<String>>, PushError> {
        if !is_pair_name(name) {
            return Err(PushError::BadName(name.to_owned()));
        }
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let filed = name.to_ascii_lowercase();
        let operator = store.store.settings().cert_dir.join(format!("{filed}.crt"));
        if operator.exists() {
            return Err(PushError::Shadowed(operator));
        }
        let store_error = |step| {
            let dir = dir.to_path_buf();
            move |source| PushError::Store { step, dir, source }
        };
        let (crt, key) = (
            dir.join(format!("{filed}.crt")),
            dir.join(format!("{filed}.key")),
        );
        if !crt.exists() && !key.exists() {
            return Ok(None);
        }
        // Chain first: a load in between sees a key without its chain and
        // skips the name, never a chain without its key.
        for path in [&crt, &key] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(store_error("remove")(e)),
            }
        }
        fsync_dir(dir).map_err(store_error("fsync"))?;
        self.reload_and_wait(&mut store, cores);
        Ok(Some(store.store.certs().names()))
    }

    /// Reloads and waits (up to 10 s) for every core to take a new
    /// configuration, so the change is served once the caller answers.
    fn reload_and_wait(&self, store: &mut Watched, cores: &[Sender<Command>]) {
        if let Some(acks) = self.reload(store, cores) {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            for _ in cores {
                if acks.recv_deadline(deadline).is_err() {
                    tracing::warn!("a core did not confirm the new TLS configuration in time");
                    break;
                }
            }
        }
    }
}

/// A pushed pair's files before they are renamed into place; removed on
/// drop if still there.
struct Staged {
    crt: PathBuf,
    key: PathBuf,
}

impl Staged {
    fn remove(&self) {
        let _ = std::fs::remove_file(&self.crt);
        let _ = std::fs::remove_file(&self.key);
    }

    /// The refusal, with the staged files called what the client sent.
    fn describe(&self, error: &CertError) -> String {
        error
            .to_string()
            .replace(&self.crt.display().to_string(), "the pushed chain")
            .replace(&self.key.display().to_string(), "the pushed key")
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The certificate blocks and the one key block of a PEM body, as text.
fn split_pem(body: &[u8]) -> Result<(String, String), PushError> {
    let text = String::from_utf8_lossy(body);
    let mut chain = String::new();
    let mut keys = Vec::new();
    let mut rest = &*text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let block = &rest[start..];
        let Some(label_end) = block["-----BEGIN ".len()..].find("-----") else {
            break;
        };
        let label = &block["-----BEGIN ".len()..][..label_end];
        let end_marker = format!("-----END {label}-----");
        let Some(end) = block.find(&end_marker) else {
            break;
        };
        let whole = &block[..end + end_marker.len()];
        if label == "CERTIFICATE" {
            chain.push_str(whole);
            chain.push('\n');
        } else if label.ends_with("PRIVATE KEY") {
            keys.push(format!("{whole}\n"));
        }
        rest = &block[end + end_marker.len()..];
    }
    if chain.is_empty() {
        return Err(PushError::NoCertificate);
    }
    match keys.len() {
        0 => Err(PushError::NoKey),
        1 => Ok((chain, keys.remove(0))),
        n => Err(PushError::ManyKeys(n)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_chain_and_key() {
        let body = b"junk\n-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n\
-----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----\n";
        let (chain, key) = split_pem(body).unwrap();
        assert_eq!(
            chain,
            "-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n\
-----BEGIN CERTIFICATE-----\nBBB\n-----END CERTIFICATE-----\n"
        );
        assert_eq!(
            key,
            "-----BEGIN PRIVATE KEY-----\nKKK\n-----END PRIVATE KEY-----\n"
        );
        assert!(matches!(
            split_pem(b"nothing"),
            Err(PushError::NoCertificate)
        ));
        let no_key = b"-----BEGIN CERTIFICATE-----\nAAA\n-----END CERTIFICATE-----\n";
        assert!(matches!(split_pem(no_key), Err(PushError::NoKey)));
        let two = [
            &body[..],
            b"-----BEGIN EC PRIVATE KEY-----\nX\n-----END EC PRIVATE KEY-----\n",
        ]
        .concat();
        assert!(matches!(split_pem(&two), Err(PushError::ManyKeys(2))));
    }
}
