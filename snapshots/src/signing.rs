//! Signatures on link deltas: the control plane signs every change it
//! publishes, engines apply only changes signed by a key they trust.
//!
//! Why, when NATS already has permissions: a forged delta redirects any code
//! to any target on every engine, and is replayed from the stream after every
//! restart. Permissions keep other roles from publishing on the change
//! subject; the signature also covers a misconfigured or compromised NATS
//! server, account or credential, and it is checked where the change takes
//! effect. It costs one Ed25519 verification per change (about 50 µs, on the
//! engine's control thread, never on a core).
//!
//! # Wire form
//! The signature travels in the message header [`SIGNATURE_HEADER`], over
//! the exact payload bytes (the delta JSON, which carries its own sequence, so
//! a signature cannot be moved to another change):
//!
//! ```text
//! Links-Signature: ed25519:<key id>:<signature, 64 bytes, base64 (standard, padded)>
//! ```
//!
//! The key id is the first 8 hex digits of the SHA-256 of the raw 32-byte
//! public key; it picks the key when engines trust several (a rotation: add
//! the new public key to every engine, then switch control to the new private
//! key, then drop the old public key).
//!
//! # Key files
//! The private key is PKCS#8 PEM and the public key SubjectPublicKeyInfo PEM,
//! exactly what OpenSSL writes:
//!
//! ```sh
//! openssl genpkey -algorithm ed25519 -out links-signing.pem    # control, mode 0600
//! openssl pkey -in links-signing.pem -pubout -out links-verify.pem   # every engine
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{PrivatePkcs8KeyDer, SubjectPublicKeyInfoDer};
use std::fmt;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The NATS header carrying a delta's signature.
pub const SIGNATURE_HEADER: &str = "Links-Signature";

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): SEQUENCE,
/// AlgorithmIdentifier { 1.3.101.112 }, BIT STRING of 32 bytes.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Names a public key: the first 4 bytes of its SHA-256, as 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    fn of(public: &[u8]) -> KeyId {
        let digest = ring::digest::digest(&ring::digest::SHA256, public);
        let mut id = [0; 4];
        id.copy_from_slice(&digest.as_ref()[..4]);
        KeyId(id)
    }

    /// The 4 bytes (a signed snapshot's trailer carries them raw).
    pub fn bytes(&self) -> [u8; 4] {
        self.0
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A key file that could not be used, named.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("{path}: not a PEM {expected}: {reason}")]
    Pem {
        path: PathBuf,
        expected: &'static str,
        reason: String,
    },
    #[error("{path}: not an Ed25519 key: {reason}")]
    NotEd25519 { path: PathBuf, reason: String },
}

/// Why a delta's signature was not accepted.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the change carries no {SIGNATURE_HEADER} header")]
    Missing,
    #[error("the {SIGNATURE_HEADER} header is not ed25519:<key id>:<base64 signature>")]
    Malformed,
    #[error("signed by key {0}, which is not trusted here")]
    UnknownKey(String),
    #[error("the signature by key {0} does not match the change")]
    Invalid(KeyId),
}

/// Control's half: signs payloads.
pub struct DeltaSigner {
    pair: Ed25519KeyPair,
    id: KeyId,
}

impl fmt::Debug for DeltaSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeltaSigner").field("id", &self.id).finish()
    }
}

impl DeltaSigner {
    /// Reads a PKCS#8 PEM private key (`openssl genpkey -algorithm ed25519`).
    pub fn from_pem_file(path: &Path) -> Result<DeltaSigner, KeyError> {
        let der = PrivatePkcs8KeyDer::from_pem_file(path).map_err(|e| KeyError::Pem {
            path: path.to_owned(),
            expected: "PKCS#8 private key (BEGIN PRIVATE KEY)",
            reason: e.to_string(),
        })?;
        Self::from_pkcs8_der(der.secret_pkcs8_der()).map_err(|reason| KeyError::NotEd25519 {
            path: path.to_owned(),
            reason,
        })
    }

    /// From PKCS#8 DER (v1, as OpenSSL writes, or v2 with the public key).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<DeltaSigner, String> {
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(|e| e.to_string())?;
        let id = KeyId::of(pair.public_key().as_ref());
        Ok(DeltaSigner { pair, id })
    }

    /// A new random key (tests, and tools that make keys without OpenSSL),
    /// with its PKCS#8 PEM to store.
    pub fn generate() -> (DeltaSigner, String) {
        let rng = ring::rand::SystemRandom::new();
        let der = Ed25519KeyPair::generate_pkcs8(&rng).expect("the system RNG works");
        let signer = Self::from_pkcs8_der(der.as_ref()).expect("a key ring just made");
        (signer, pem("PRIVATE KEY", der.as_ref()))
    }

    /// The public key as SubjectPublicKeyInfo PEM, for engines.
    pub fn public_key_pem(&self) -> String {
        let mut der = ED25519_SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.pair.public_key().as_ref());
        pem("PUBLIC KEY", &der)
    }

    pub fn key_id(&self) -> KeyId {
        self.id
    }

    /// A bare signature over `message`, with the key's id (signed
    /// snapshots, [`crate::signed`]).
    pub fn sign_raw(&self, message: &[u8]) -> (KeyId, [u8; 64]) {
        let mut out = [0u8; 64];
        out.copy_from_slice(self.pair.sign(message).as_ref());
        (self.id, out)
    }

    /// The [`SIGNATURE_HEADER`] value for `payload`.
    pub fn sign(&self, payload: &[u8]) -> String {
        let signature = self.pair.sign(payload);
        format!(
            "ed25519:{}:{}",
            self.id,
            STANDARD.encode(signature.as_ref())
        )
    }
}

/// An engine's half: the public keys it trusts.
#[derive(Debug, Clone, Default)]
pub struct DeltaVerifier {
    keys: Vec<(KeyId, [u8; 32])>,
}

impl DeltaVerifier {
    /// Reads SubjectPublicKeyInfo PEM files (`openssl pkey -pubout`).
    pub fn from_pem_files(paths: &[PathBuf]) -> Result<DeltaVerifier, KeyError> {
        let mut verifier = DeltaVerifier::default();
        for path in paths {
            let der = SubjectPublicKeyInfoDer::from_pem_file(path).map_err(|e| KeyError::Pem {
                path: path.clone(),
                expected: "public key (BEGIN PUBLIC KEY)",
                reason: e.to_string(),
            })?;
            verifier
                .trust_spki_der(der.as_ref())
                .map_err(|reason| KeyError::NotEd25519 {
                    path: path.clone(),
                    reason,
                })?;
        }
        Ok(verifier)
    }

    /// Adds a key from SubjectPublicKeyInfo DER.
    pub fn trust_spki_der(&mut self, der: &[u8]) -> Result<KeyId, String> {
        let raw = der
            .strip_prefix(&ED25519_SPKI_PREFIX[..])
            .filter(|raw| raw.len() == 32)
            .ok_or("the key's algorithm is not Ed25519 (OID 1.3.101.112)")?;
        let mut key = [0; 32];
        key.copy_from_slice(raw);
        let id = KeyId::of(&key);
        self.keys.push((id, key));
        Ok(id)
    }

    /// Adds a signer's public key (tests).
    pub fn trust(&mut self, signer: &DeltaSigner) -> KeyId {
        let mut key = [0; 32];
        key.copy_from_slice(signer.pair.public_key().as_ref());
        self.keys.push((signer.id, key));
        signer.id
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key ids trusted, for logs and readiness.
    pub fn key_ids(&self) -> impl Iterator<Item = KeyId> + '_ {
        self.keys.iter().map(|(id, _)| *id)
    }

    /// Whether the key with this id is trusted.
    pub fn trusts(&self, id: [u8; 4]) -> bool {
        self.keys.iter().any(|(key_id, _)| key_id.0 == id)
    }

    /// Checks a bare signature by the key `id` over `message` (signed
    /// snapshots, [`crate::signed`]).
    pub fn verify_raw(
        &self,
        id: [u8; 4],
        message: &[u8],
        signature: &[u8],
    ) -> Result<KeyId, SignatureError> {
        let (key_id, key) = self
            .keys
            .iter()
            .find(|(key_id, _)| key_id.0 == id)
            .ok_or_else(|| SignatureError::UnknownKey(KeyId(id).to_string()))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(message, signature)
            .map_err(|_| SignatureError::Invalid(*key_id))?;
        Ok(*key_id)
    }

    /// Checks `header` (the [`SIGNATURE_HEADER`] value, if any) over `payload`.
    pub fn verify(&self, payload: &[u8], header: Option<&str>) -> Result<KeyId, SignatureError> {
        let header = header.ok_or(SignatureError::Missing)?;
        let mut parts = header.trim().splitn(3, ':');
        let (Some("ed25519"), Some(id), Some(signature)) =
            (parts.next(), parts.next(), parts.next())
        else {
            return Err(SignatureError::Malformed);
        };
        let signature = STANDARD
            .decode(signature)
            .map_err(|_| SignatureError::Malformed)?;
        let (key_id, key) = self
            .keys
            .iter()
            .find(|(key_id, _)| key_id.to_string() == id)
            .ok_or_else(|| SignatureError::UnknownKey(id.chars().take(16).collect()))?;
        UnparsedPublicKey::new(&ED25519, key)
            .verify(payload, &signature)
            .map_err(|_| SignatureError::Invalid(*key_id))?;
        Ok(*key_id)
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Made with `openssl genpkey -algorithm ed25519` and `openssl pkey -pubout`
    /// (a test key; it signs nothing real).
    const OPENSSL_PRIVATE: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIFzs91TWS2nn7JpwScq6MG/2f0M5zRIwH92zImJskes3
-----END PRIVATE KEY-----
";

    const OPENSSL_PUBLIC: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAQ75BCOJ8AHutrrUwhwu61QbmVqnqksJipYEQ7tIbdVQ=
-----END PUBLIC KEY-----
";

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        std::io::Write::write_all(&mut f, text.as_bytes()).unwrap();
        f
    }

    #[test]
    fn a_signed_change_verifies_and_any_other_does_not() {
        let (signer, _) = DeltaSigner::generate();
        let mut verifier = DeltaVerifier::default();
        let id = verifier.trust(&signer);
        let payload = br#"{"v":1,"seq":7,"op":"delete","code":"abc"}"#;
        let header = signer.sign(payload);
        assert_eq!(verifier.verify(payload, Some(&header)), Ok(id));

        let forged = br#"{"v":1,"seq":8,"op":"delete","code":"abc"}"#;
        assert_eq!(
            verifier.verify(forged, Some(&header)),
            Err(SignatureError::Invalid(id))
        );
        assert_eq!(verifier.verify(payload, None), Err(SignatureError::Missing));
        assert_eq!(
            verifier.verify(payload, Some("ed25519:zz")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verifier.verify(payload, Some(&format!("ed25519:{id}:not base64!"))),
            Err(SignatureError::Malformed)
        );
        let (other, _) = DeltaSigner::generate();
        assert!(matches!(
            verifier.verify(payload, Some(&other.sign(payload))),
            Err(SignatureError::UnknownKey(_))
        ));
    }

    #[test]
    fn openssl_key_files_load_and_generated_ones_round_trip() {
        let private = file(OPENSSL_PRIVATE);
        let signer = DeltaSigner::from_pem_file(private.path()).unwrap();
        assert_eq!(signer.public_key_pem(), OPENSSL_PUBLIC);
        let public = file(OPENSSL_PUBLIC);
        let verifier = DeltaVerifier::from_pem_files(&[public.path().into()]).unwrap();
        assert_eq!(
            verifier.key_ids().collect::<Vec<_>>(),
            vec![signer.key_id()]
        );
        assert!(verifier.verify(b"x", Some(&signer.sign(b"x"))).is_ok());

        let (generated, pem) = DeltaSigner::generate();
        let reloaded = DeltaSigner::from_pem_file(file(&pem).path()).unwrap();
        assert_eq!(reloaded.key_id(), generated.key_id());
    }

    #[test]
    fn wrong_files_are_named() {
        let not_pem = file("hello");
        let err = DeltaSigner::from_pem_file(not_pem.path()).unwrap_err();
        assert!(
            err.to_string().contains(&*not_pem.path().to_string_lossy()),
            "{err}"
        );
        // A private key where a public one belongs.
        let private = file(OPENSSL_PRIVATE);
        let err = DeltaVerifier::from_pem_files(&[private.path().into()]).unwrap_err();
        assert!(matches!(err, KeyError::Pem { .. }), "{err}");
    }
}
