//! Private keys at rest: AES-256-GCM under a key from a file.
//!
//! Why in PostgreSQL, sealed, rather than in 0600 files: the certificates
//! and the account belong to the deployment, not to one control host; the
//! database is where every control process (and the leader's renewal task,
//! on whichever host leads) already finds them, and backups keep them
//! together. Sealing keeps a database dump, a replica or a reader of the
//! table from holding keys that serve (or order certificates for) every
//! domain: that takes the key file too, which lives only on control's hosts.
//!
//! Format: `1 || nonce (12 bytes, random) || ciphertext || tag (16)`. The
//! additional data names what the plaintext is for (`certificate-key:NAME`,
//! `acme-account:URL`), so a sealed value copied to another row does not open
//! there. The key file holds 32 random bytes as 64 hex digits
//! (`openssl rand -hex 32 > acme.key; chmod 600 acme.key`); a file that
//! others may read is refused.

use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::path::Path;
use thiserror::Error;

const VERSION: u8 = 1;

/// Why the sealing key could not be loaded or a value not opened.
#[derive(Debug, Error)]
pub enum SealError {
    #[error("reading the ACME key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "the ACME key file {path} may be read by others (mode {mode:o}); chmod 600 it: it protects every certificate's private key"
    )]
    Permissions { path: String, mode: u32 },
    #[error("the ACME key file {path} must hold 32 bytes as 64 hex digits (openssl rand -hex 32)")]
    Format { path: String },
    #[error(
        "a sealed value does not open with this key (another key file, or not sealed for {0:?})"
    )]
    Open(String),
}

/// The sealing key. Its `Debug` shows nothing of it.
pub struct Sealer {
    key: LessSafeKey,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

impl Sealer {
    /// Reads the key file (64 hex digits; surrounding whitespace ignored).
    pub fn from_file(path: &Path) -> Result<Sealer, SealError> {
        use std::os::unix::fs::PermissionsExt as _;
        let shown = path.display().to_string();
        let read = |source| SealError::Read {
            path: shown.clone(),
            source,
        };
        let mode = std::fs::metadata(path).map_err(read)?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(SealError::Permissions {
                path: shown,
                mode: mode & 0o777,
            });
        }
        let text = std::fs::read_to_string(path).map_err(read)?;
        let bytes = hex::decode(text.trim()).map_err(|_| SealError::Format {
            path: shown.clone(),
        })?;
        Self::from_bytes(&bytes).ok_or(SealError::Format { path: shown })
    }

    /// A sealer from 32 raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Sealer> {
        let key = UnboundKey::new(&AES_256_GCM, bytes).ok()?;
        (bytes.len() == 32).then(|| Sealer {
            key: LessSafeKey::new(key),
        })
    }

    /// Seals `plaintext` for `purpose`.
    pub fn seal(&self, purpose: &str, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random generator is available");
        let mut out = Vec::with_capacity(1 + NONCE_LEN + plaintext.len() + 16);
        out.push(VERSION);
        out.extend_from_slice(&nonce);
        let mut body = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose.as_bytes()),
                &mut body,
            )
            .expect("AES-GCM seals any length this service stores");
        out.extend_from_slice(&body);
        out
    }

    /// Opens what [`Sealer::seal`] made for the same `purpose`.
    pub fn open(&self, purpose: &str, sealed: &[u8]) -> Result<Vec<u8>, SealError> {
        let fail = || SealError::Open(purpose.to_owned());
        if sealed.len() < 1 + NONCE_LEN || sealed[0] != VERSION {
            return Err(fail());
        }
        let nonce =
            Nonce::try_assume_unique_for_key(&sealed[1..1 + NONCE_LEN]).map_err(|_| fail())?;
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose.as_bytes()), &mut body)
            .map_err(|_| fail())?;
        Ok(plain.to_vec())
    }
}

/// The purpose of a certificate's private key.
pub fn certificate_key_purpose(domain: &str) -> String {
    format!("certificate-key:{domain}")
}

/// The purpose of the ACME account's credentials.
pub fn account_purpose(directory: &str) -> String {
    format!("acme-account:{directory}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_only_for_the_same_key_and_purpose() {
        let sealer = Sealer::from_bytes(&[7; 32]).unwrap();
        let sealed = sealer.seal("certificate-key:a.example", b"-----BEGIN PRIVATE KEY-----");
        assert!(!sealed.windows(5).any(|w| w == b"BEGIN"), "not plaintext");
        assert_eq!(
            sealer.open("certificate-key:a.example", &sealed).unwrap(),
            b"-----BEGIN PRIVATE KEY-----"
        );
        assert!(sealer.open("certificate-key:b.example", &sealed).is_err());
        let other = Sealer::from_bytes(&[8; 32]).unwrap();
        assert!(other.open("certificate-key:a.example", &sealed).is_err());
        let mut tampered = sealed.clone();
        *tampered.last_mut().unwrap() ^= 1;
        assert!(sealer.open("certificate-key:a.example", &tampered).is_err());
        assert!(Sealer::from_bytes(&[7; 16]).is_none());
    }

    #[test]
    fn key_file_must_be_private_and_hex() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("acme.key");
        std::fs::write(&path, format!("{}\n", "ab".repeat(32))).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            Sealer::from_file(&path),
            Err(SealError::Permissions { mode: 0o644, .. })
        ));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        Sealer::from_file(&path).unwrap();
        std::fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            Sealer::from_file(&path),
            Err(SealError::Format { .. })
        ));
    }
}
