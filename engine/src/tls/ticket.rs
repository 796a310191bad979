//! Session-ticket keys shared by every node: a key file.
//!
//! Within a node the cores share one ticketer through the one
//! `ServerConfig`. Across nodes a client resumes on whichever node the load
//! balancer picks, so the nodes must share keys. [`KeyFileTicketer`] reads
//! them from a file that control writes and distributes (the same way as
//! the certificate directory), and the [`super::store::CertStore`] re-reads
//! it when it changes.
//!
//! File format: text, one key per line, each 48 random bytes in hex (96
//! characters, `openssl rand -hex 48`): 16 bytes of key name, then a 32-byte
//! AES-256-GCM key. `#` comments and blank lines are ignored. The first key
//! seals new tickets; every key in the file opens them.
//!
//! Rotation, done by whoever writes the file (control): add the new key on
//! the *second* line first (every node can open tickets sealed with it),
//! wait for every node to have read the file (a few poll periods), then
//! move it to the first line; drop a key once it has not been first for
//! the ticket lifetime. Nodes that have not read the file yet simply do a
//! full handshake for a ticket they cannot open; nothing fails. Replace the
//! file by rename; keep it readable by the engine only (mode 0600).
//!
//! Ticket layout: key name (16) | nonce (12) | sealed state | tag (16), with
//! the key name as additional data.

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use rustls::server::ProducesTickets;
use std::fmt;
use std::path::{Path, PathBuf};

const NAME_LEN: usize = 16;
const KEY_LEN: usize = 32;
const TAG_LEN: usize = 16;
/// Keys in one file at most: a current one, a staged one, a few old ones.
pub const MAX_KEYS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum TicketKeyError {
    #[error("ticket key file {path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("ticket key file {path}, line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: &'static str,
    },
    #[error("ticket key file {path}: no key in it")]
    Empty { path: PathBuf },
    #[error("ticket key file {path}: more than {MAX_KEYS} keys")]
    TooMany { path: PathBuf },
}

struct TicketKey {
    name: [u8; NAME_LEN],
    key: LessSafeKey,
}

/// Seals tickets with the first key of a key file, opens them with any.
pub struct KeyFileTicketer {
    keys: Vec<TicketKey>,
    lifetime: u32,
    rng: SystemRandom,
}

impl fmt::Debug for KeyFileTicketer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys.
        f.debug_struct("KeyFileTicketer")
            .field("keys", &self.keys.len())
            .field("lifetime", &self.lifetime)
            .finish()
    }
}

impl KeyFileTicketer {
    /// Reads `path`; tickets say they live `lifetime` seconds.
    pub fn load(path: &Path, lifetime: u32) -> Result<KeyFileTicketer, TicketKeyError> {
        let text = std::fs::read_to_string(path).map_err(|source| TicketKeyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        KeyFileTicketer::parse(path, &text, lifetime)
    }

    fn parse(path: &Path, text: &str, lifetime: u32) -> Result<KeyFileTicketer, TicketKeyError> {
        let mut keys = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = |reason| TicketKeyError::Line {
                path: path.to_path_buf(),
                line: i + 1,
                reason,
            };
            if keys.len() == MAX_KEYS {
                return Err(TicketKeyError::TooMany {
                    path: path.to_path_buf(),
                });
            }
            let mut raw = [0u8; NAME_LEN + KEY_LEN];
            if line.len() != raw.len() * 2 {
                return Err(bad("expected 96 hex characters (48 bytes)"));
            }
            for (byte, pair) in raw.iter_mut().zip(line.as_bytes().chunks(2)) {
                let hex = std::str::from_utf8(pair).ok();
                *byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| bad("not hexadecimal"))?;
            }
            let mut name = [0u8; NAME_LEN];
            name.copy_from_slice(&raw[..NAME_LEN]);
            if keys.iter().any(|k: &TicketKey| k.name == name) {
                return Err(bad("key name (first 32 characters) used twice"));
            }
            let key = UnboundKey::new(&AES_256_GCM, &raw[NAME_LEN..])
                .map_err(|_| bad("not an AES-256 key"))?;
            keys.push(TicketKey {
                name,
                key: LessSafeKey::new(key),
            });
        }
        if keys.is_empty() {
            return Err(TicketKeyError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(KeyFileTicketer {
            keys,
            lifetime,
            rng: SystemRandom::new(),
        })
    }
}

impl ProducesTickets for KeyFileTicketer {
    fn enabled(&self) -> bool {
        true
    }

    fn lifetime(&self) -> u32 {
        self.lifetime
    }

    fn encrypt(&self, plain: &[u8]) -> Option<Vec<u8>> {
        let current = &self.keys[0];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).ok()?;
        let mut ticket = Vec::with_capacity(NAME_LEN + NONCE_LEN + plain.len() + TAG_LEN);
        ticket.extend_from_slice(&current.name);
        ticket.extend_from_slice(&nonce);
        ticket.extend_from_slice(plain);
        let tag = current
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&current.name),
                &mut ticket[NAME_LEN + NONCE_LEN..],
            )
            .ok()?;
        ticket.extend_from_slice(tag.as_ref());
        Some(ticket)
    }

    fn decrypt(&self, ticket: &[u8]) -> Option<Vec<u8>> {
        if ticket.len() < NAME_LEN + NONCE_LEN + TAG_LEN {
            return None;
        }
        let (name, rest) = ticket.split_at(NAME_LEN);
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let key = self.keys.iter().find(|k| k.name == name)?;
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut out = sealed.to_vec();
        let len = key
            .key
            .open_in_place(nonce, Aad::from(&key.name), &mut out)
            .ok()?
            .len();
        out.truncate(len);
        Some(out)
    }
}

#[cfg(test)]
pub(crate) fn random_key_line() -> String {
    let mut raw = [0u8; NAME_LEN + KEY_LEN];
    SystemRandom::new().fill(&mut raw).unwrap();
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticketer(text: &str) -> Result<KeyFileTicketer, TicketKeyError> {
        KeyFileTicketer::parse(Path::new("/etc/keys"), text, 3600)
    }

    #[test]
    fn seals_with_the_first_key_and_opens_with_any() {
        let (a, b) = (random_key_line(), random_key_line());
        let old = ticketer(&format!("# rotated hourly\n{a}\n")).unwrap();
        let staged = ticketer(&format!("{a}\n\n{b}\n")).unwrap();
        let promoted = ticketer(&format!("{b}\n{a}\n")).unwrap();
        let dropped = ticketer(&format!("{b}\n")).unwrap();

        let t = old.encrypt(b"session state").unwrap();
        assert_eq!(staged.decrypt(&t).unwrap(), b"session state");
        assert_eq!(promoted.decrypt(&t).unwrap(), b"session state");
        assert_eq!(dropped.decrypt(&t), None);
        // A ticket sealed with the promoted key opens where it was staged.
        let t = promoted.encrypt(b"newer").unwrap();
        assert_eq!(staged.decrypt(&t).unwrap(), b"newer");
        assert_eq!(old.decrypt(&t), None);
        assert_ne!(
            promoted.encrypt(b"newer").unwrap(),
            t,
            "fresh nonce each time"
        );
    }

    #[test]
    fn tampered_or_short_tickets_do_not_open() {
        let k = ticketer(&random_key_line()).unwrap();
        let mut t = k.encrypt(b"state").unwrap();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert_eq!(k.decrypt(&t), None);
        assert_eq!(k.decrypt(&t[..20]), None);
        assert_eq!(k.decrypt(b""), None);
    }

    #[test]
    fn bad_files_are_refused_with_the_line() {
        let key = random_key_line();
        let msg = |text: &str| ticketer(text).unwrap_err().to_string();
        assert_eq!(
            msg("# nothing\n"),
            "ticket key file /etc/keys: no key in it"
        );
        assert_eq!(
            msg(&format!("{key}\nabc\n")),
            "ticket key file /etc/keys, line 2: expected 96 hex characters (48 bytes)"
        );
        assert_eq!(
            msg(&format!("z{}\n", &key[1..])),
            "ticket key file /etc/keys, line 1: not hexadecimal"
        );
        assert_eq!(
            msg(&format!("{key}\n{key}\n")),
            "ticket key file /etc/keys, line 2: key name (first 32 characters) used twice"
        );
        let nine: String = (0..9).map(|_| random_key_line() + "\n").collect();
        assert_eq!(msg(&nine), "ticket key file /etc/keys: more than 8 keys");
        let missing = KeyFileTicketer::load(Path::new("/nonexistent/keys"), 60).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("ticket key file /nonexistent/keys: cannot read:")
        );
    }
}
