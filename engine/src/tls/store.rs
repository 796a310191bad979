//! The node's current TLS configuration, re-read when its files change.
//!
//! [`CertStore`] owns the certificate set, the ticketer and the session
//! cache, and the `Arc<ServerConfig>` made of them. [`CertStore::poll`]
//! looks at the certificate directory and the ticket key file (names,
//! sizes, modification times, inodes: a few `stat`s) and, when something
//! changed, reloads and returns a new config if what is served differs.
//! [`CertStore::watch`] polls on its own thread ([`POLL_EVERY`]: once a
//! second) and hands each new config to a callback: the engine's control
//! thread passes it to every core over the command channel, a core keeps
//! the latest for new connections, and established connections keep the
//! one they started with. Nothing is locked per request; per handshake,
//! rustls's rotating ticketer takes a read lock and its TLS 1.2 session
//! cache a mutex, both shared by the node's cores.
//!
//! Why polling rather than inotify: it is what the snapshot watcher does,
//! it works the same for a directory replaced by a symlink swap (the way
//! Kubernetes updates secrets), and a second's delay is nothing for a
//! certificate. File timestamps are as coarse as the kernel's tick, so a
//! file rewritten within one tick of the previous look could go unnoticed;
//! as git does, a look that saw a file changed within the last two seconds
//! counts as "maybe changed" and the next poll reloads and compares.

use super::certs::{CertError, CertSet, Refusal, load_dirs};
use super::config::{TlsSettings, provider, server_config, ticketer};
use super::ticket::TicketKeyError;
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ProducesTickets, ServerSessionMemoryCache, StoresServerSessions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How often [`CertStore::watch`] should look, unless a caller has reason
/// to look more often.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Certs(#[from] CertError),
    #[error(transparent)]
    TicketKeys(#[from] TicketKeyError),
    /// Nothing to serve: every pair was refused (each refusal says why).
    #[error("no usable certificate in {dir}: {}", list(.refused))]
    NoCertificates { dir: PathBuf, refused: Vec<Refusal> },
}

/// The refused pairs, leaving out the missing default (which follows).
fn list(refused: &[Refusal]) -> String {
    let pairs: Vec<String> = refused
        .iter()
        .filter(|r| !matches!(r.error, CertError::NoDefault { .. }))
        .map(|r| r.error.to_string())
        .collect();
    if pairs.is_empty() {
        return "no NAME.crt + NAME.key pair in it".to_string();
    }
    pairs.join("; ")
}

/// What a reload found.
#[derive(Debug, Default)]
pub struct Reload {
    /// The new configuration, if what is served changed.
    pub config: Option<Arc<ServerConfig>>,
    /// Pairs refused by this load (with whether the name kept its previous
    /// certificate).
    pub refused: Vec<Refusal>,
    /// The key file could not be used; the previous keys stay.
    pub ticket_keys: Option<TicketKeyError>,
    /// The certificate directory could not be read; the previous set stays.
    pub dir: Option<CertError>,
}

/// A directory's or file's identity as `stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Stamp {
    files: Vec<(PathBuf, u64, i64, i64, u64)>, // path, size, mtime s, mtime ns, inode
    /// A file changed too recently to trust its timestamp.
    racy: bool,
}

fn stamp(paths: impl Iterator<Item = PathBuf>) -> Stamp {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let mut s = Stamp::default();
    for path in paths {
        // `metadata` follows symlinks: a swapped link target is a change.
        if let Ok(m) = std::fs::metadata(&path) {
            s.racy |= m.mtime() >= now - 2;
            s.files
                .push((path, m.size(), m.mtime(), m.mtime_nsec(), m.ino()));
        }
    }
    s.files.sort();
    s
}

fn dir_stamp(dir: &Path) -> Stamp {
    let entries = std::fs::read_dir(dir).into_iter().flatten().flatten();
    let mut s = stamp(entries.map(|e| e.path()));
    // The directory itself: a symlink swap changes its inode.
    if let Ok(m) = std::fs::metadata(dir) {
        s.files.push((dir.to_path_buf(), 0, 0, 0, m.ino()));
    }
    s
}

/// Both certificate directories.
fn dirs_stamp(settings: &TlsSettings) -> Stamp {
    let mut s = dir_stamp(&settings.cert_dir);
    if let Some(pushed) = &settings.pushed_dir {
        let p = dir_stamp(pushed);
        s.racy |= p.racy;
        s.files.extend(p.files);
    }
    s
}

#[derive(Debug)]
pub struct CertStore {
    settings: TlsSettings,
    provider: CryptoProvider,
    certs: Arc<CertSet>,
    ticketer: Arc<dyn ProducesTickets>,
    sessions: Arc<dyn StoresServerSessions>,
    config: Arc<ServerConfig>,
    dir_stamp: Stamp,
    key_stamp: Stamp,
    key_text: Option<Vec<u8>>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl CertStore {
    /// Loads the certificates and ticket keys. Refused pairs are returned
    /// for logging; it is an error only if none loads, the directory cannot
    /// be read or the key file is bad.
    pub fn open(settings: TlsSettings) -> Result<(CertStore, Vec<Refusal>), StoreError> {
        let provider = provider();
        let dir_stamp = dirs_stamp(&settings);
        let key_stamp = key_stamp(&settings);
        let loaded = load_dirs(
            &settings.cert_dir,
            settings.pushed_dir.as_deref(),
            settings.default_name.as_deref(),
            None,
            &provider,
            unix_now(),
        )?;
        if loaded.set.is_empty() {
            return Err(StoreError::NoCertificates {
                dir: settings.cert_dir.clone(),
                refused: loaded.refused,
            });
        }
        let key_text = read_key_text(&settings);
        let ticketer = ticketer(&settings)?;
        let sessions: Arc<dyn StoresServerSessions> =
            ServerSessionMemoryCache::new(settings.session_cache);
        let certs = Arc::new(loaded.set);
        let config = server_config(certs.clone(), ticketer.clone(), sessions.clone());
        let store = CertStore {
            settings,
            provider,
            certs,
            ticketer,
            sessions,
            config,
            dir_stamp,
            key_stamp,
            key_text,
        };
        Ok((store, loaded.refused))
    }

    /// The configuration new connections should use.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.config.clone()
    }

    pub fn settings(&self) -> &TlsSettings {
        &self.settings
    }

    /// The certificates being served.
    pub fn certs(&self) -> &CertSet {
        &self.certs
    }

    /// Reloads if the directory or the key file changed (or may have).
    pub fn poll(&mut self) -> Reload {
        let dir_stamp = dirs_stamp(&self.settings);
        let key_stamp = key_stamp(&self.settings);
        let dir_changed = dir_stamp != self.dir_stamp || self.dir_stamp.racy;
        let keys_changed = key_stamp != self.key_stamp || self.key_stamp.racy;
        self.dir_stamp = dir_stamp;
        self.key_stamp = key_stamp;
        let mut reload = Reload::default();
        let mut changed = false;

        if keys_changed {
            let text = read_key_text(&self.settings);
            if text != self.key_text {
                match ticketer(&self.settings) {
                    Ok(t) => {
                        self.ticketer = t;
                        self.key_text = text;
                        changed = true;
                    }
                    Err(e) => reload.ticket_keys = Some(e),
                }
            }
        }
        if dir_changed {
            match load_dirs(
                &self.settings.cert_dir,
                self.settings.pushed_dir.as_deref(),
                self.settings.default_name.as_deref(),
                Some(&self.certs),
                &self.provider,
                unix_now(),
            ) {
                Ok(loaded) => {
                    reload.refused = loaded.refused;
                    if !loaded.set.same_as(&self.certs) {
                        self.certs = Arc::new(loaded.set);
                        changed = true;
                    }
                }
                Err(e) => reload.dir = Some(e),
            }
        }
        if changed {
            self.config = server_config(
                self.certs.clone(),
                self.ticketer.clone(),
                self.sessions.clone(),
            );
            reload.config = Some(self.config.clone());
        }
        reload
    }

    /// Polls every `every` on a thread of its own, logging what was refused
    /// and handing each new configuration to `publish`. Stops when the
    /// returned [`Watcher`] is dropped.
    pub fn watch(
        mut self,
        every: Duration,
        mut publish: impl FnMut(Arc<ServerConfig>) + Send + 'static,
    ) -> std::io::Result<Watcher> {
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let thread = std::thread::Builder::new()
            .name("tls-certs".to_string())
            .spawn(move || {
                // A disconnected channel (the watcher dropped) ends the wait.
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(every)
                {
                    let reload = self.poll();
                    log(&self.settings, &reload);
                    if let Some(config) = reload.config {
                        publish(config);
                    }
                }
            })?;
        Ok(Watcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

/// Logs what a reload refused and whether it published a new configuration.
pub fn log(settings: &TlsSettings, reload: &Reload) {
    for r in &reload.refused {
        if r.kept_previous {
            tracing::warn!(
                "{}; still serving the previous certificate for {}",
                r.error,
                r.name
            );
        } else {
            tracing::warn!("{}", r.error);
        }
    }
    if let Some(e) = &reload.ticket_keys {
        tracing::warn!("{e}; keeping the previous ticket keys");
    }
    if let Some(e) = &reload.dir {
        tracing::warn!("{e}; keeping the certificates loaded before");
    }
    if reload.config.is_some() {
        tracing::info!(dir = %settings.cert_dir.display(), "TLS configuration reloaded");
    }
}

fn key_stamp(settings: &TlsSettings) -> Stamp {
    stamp(settings.ticket_key_file.iter().cloned())
}

fn read_key_text(settings: &TlsSettings) -> Option<Vec<u8>> {
    settings
        .ticket_key_file
        .as_ref()
        .and_then(|p| std::fs::read(p).ok())
}

/// Stops the watching thread when dropped.
#[derive(Debug)]
pub struct Watcher {
    stop: Option<crossbeam_channel::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::conn::TlsConn;
    use crate::tls::testpki::{TestCa, exchange, handshake};
    use crate::tls::ticket::random_key_line;
    use rustls::{ClientConfig, HandshakeKind};

    fn settings(dir: &Path) -> TlsSettings {
        TlsSettings {
            default_name: Some("a.test".to_string()),
            ..TlsSettings::new(dir)
        }
    }

    /// A full client round: handshake on `config`, one request; returns
    /// the names on the certificate presented and the handshake kind.
    fn visit(
        client_config: &Arc<ClientConfig>,
        config: &Arc<ServerConfig>,
        sni: &str,
    ) -> (Vec<String>, HandshakeKind) {
        let mut client = TestCa::client(client_config, sni);
        let mut server = TlsConn::new(config.clone()).unwrap();
        handshake(&mut client, &mut server).unwrap();
        exchange(&mut client, &mut server, &mut Vec::new());
        let names = TestCa::dns_names(&client.peer_certificates().unwrap()[0]);
        (names, server.rustls().handshake_kind().unwrap())
    }

    #[test]
    fn open_refuses_a_directory_with_nothing_usable() {
        let dir = tempfile::tempdir().unwrap();
        let err = CertStore::open(settings(dir.path())).unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "no usable certificate in {}: no NAME.crt + NAME.key pair in it",
                dir.path().display()
            )
        );
        std::fs::write(dir.path().join("a.test.crt"), "junk").unwrap();
        std::fs::write(dir.path().join("a.test.key"), "junk").unwrap();
        let err = CertStore::open(settings(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a.test.crt: not a PEM certificate chain"),
            "{err}"
        );
    }

    #[test]
    fn reload_publishes_new_pairs_and_keeps_connections_and_tickets() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        let (mut store, refused) = CertStore::open(settings(dir.path())).unwrap();
        assert!(refused.is_empty());
        let client_config = Arc::new(ca.client_config());
        let first = store.config();
        assert_eq!(
            visit(&client_config, &first, "a.test").1,
            HandshakeKind::Full
        );

        // Nothing changed: nothing published (even though the files are new
        // enough for their timestamps to be doubted).
        let reload = store.poll();
        assert!(reload.config.is_none() && reload.refused.is_empty());

        // A connection established before the reload.
        let mut old_client = TestCa::client(&client_config, "a.test");
        let mut old_conn = TlsConn::new(first.clone()).unwrap();
        handshake(&mut old_client, &mut old_conn).unwrap();

        ca.write_pair(dir.path(), "b.test", &["b.test"]);
        let reload = store.poll();
        let second = reload.config.expect("a new pair is published");
        assert!(!Arc::ptr_eq(&first, &second));
        assert_eq!(store.certs().names(), ["a.test", "b.test"]);
        assert_eq!(visit(&client_config, &second, "b.test").0, ["b.test"]);
        // The old config still serves what it served; the old connection
        // carries on; the ticket from before the reload resumes after it.
        assert_eq!(visit(&client_config, &first, "a.test").0, ["a.test"]);
        exchange(&mut old_client, &mut old_conn, &mut Vec::new());
        assert_eq!(
            visit(&client_config, &second, "a.test").1,
            HandshakeKind::Resumed
        );

        // A bad replacement keeps the good pair; nothing new to publish.
        std::fs::write(dir.path().join("b.test.key"), "junk").unwrap();
        let reload = store.poll();
        assert!(reload.config.is_none());
        assert_eq!(reload.refused.len(), 1);
        assert!(reload.refused[0].kept_previous);
        assert_eq!(
            visit(&client_config, &store.config(), "b.test").0,
            ["b.test"]
        );
    }

    #[test]
    fn nodes_sharing_a_key_file_resume_each_others_tickets() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        ca.write_pair(&certs, "a.test", &["a.test"]);
        let keys = dir.path().join("ticket.keys");
        let (k1, k2) = (random_key_line(), random_key_line());
        std::fs::write(&keys, format!("{k1}\n")).unwrap();
        let settings = TlsSettings {
            ticket_key_file: Some(keys.clone()),
            ..settings(&certs)
        };
        let (mut node_a, _) = CertStore::open(settings.clone()).unwrap();
        let (node_b, _) = CertStore::open(settings.clone()).unwrap();
        let local = TlsSettings {
            ticket_key_file: None,
            ..settings
        };
        let (node_c, _) = CertStore::open(local).unwrap();
        // Each check starts from a client with no ticket: `first` gives it
        // one, `then` shows whether that ticket resumes.
        let resumes = |first: &CertStore, then: &CertStore| {
            let client_config = Arc::new(ca.client_config());
            assert_eq!(
                visit(&client_config, &first.config(), "a.test").1,
                HandshakeKind::Full
            );
            visit(&client_config, &then.config(), "a.test").1 == HandshakeKind::Resumed
        };
        assert!(resumes(&node_a, &node_b));
        assert!(resumes(&node_b, &node_a));
        assert!(resumes(&node_a, &node_a));
        // A node with its own keys cannot open them, nor they its own.
        assert!(!resumes(&node_a, &node_c));
        assert!(!resumes(&node_c, &node_b));

        // Rotation seen by node A only: k2 seals, k1 still opens.
        std::fs::write(&keys, format!("{k2}\n{k1}\n")).unwrap();
        let reload = node_a.poll();
        assert!(reload.config.is_some() && reload.ticket_keys.is_none());
        assert!(resumes(&node_b, &node_a));
        assert!(!resumes(&node_a, &node_b));

        // A broken key file keeps the keys in use.
        std::fs::write(&keys, "nonsense\n").unwrap();
        let reload = node_a.poll();
        assert!(reload.config.is_none());
        let err = reload.ticket_keys.unwrap().to_string();
        assert!(
            err.ends_with("line 1: expected 96 hex characters (48 bytes)"),
            "{err}"
        );
        assert!(resumes(&node_b, &node_a));
        assert!(resumes(&node_a, &node_a));
    }

    #[test]
    fn watcher_publishes_changes_and_stops_when_dropped() {
        let ca = TestCa::new();
        let dir = tempfile::tempdir().unwrap();
        ca.write_pair(dir.path(), "a.test", &["a.test"]);
        let (store, _) = CertStore::open(settings(dir.path())).unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let watcher = store
            .watch(Duration::from_millis(20), move |config| {
                let _ = tx.send(config);
            })
            .unwrap();
        ca.write_pair(dir.path(), "b.test", &["b.test"]);
        let config = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("the new pair is published");
        let client_config = Arc::new(ca.client_config());
        assert_eq!(visit(&client_config, &config, "b.test").0, ["b.test"]);
        drop(watcher);
        // The thread is gone: its end of the channel is closed.
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected)
        ));
    }
}
