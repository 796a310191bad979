//! A link-signing key pair of the test's own: control signs link changes with
//! the private half, engines trust the public half (`snapshots::signing`).

use snapshots::delta::LinkDelta;
use snapshots::signing::{DeltaSigner, SIGNATURE_HEADER};
use std::path::PathBuf;

/// Both halves as PEM files in a temporary directory (removed on drop).
#[derive(Debug)]
pub struct LinkKeys {
    dir: tempfile::TempDir,
    signer: DeltaSigner,
}

impl LinkKeys {
    /// A fresh random key pair.
    pub fn new() -> anyhow::Result<LinkKeys> {
        let dir = tempfile::Builder::new().prefix("testkit-keys-").tempdir()?;
        let (signer, private_pem) = DeltaSigner::generate();
        std::fs::write(dir.path().join("links-signing.pem"), private_pem)?;
        std::fs::write(dir.path().join("links-verify.pem"), signer.public_key_pem())?;
        Ok(LinkKeys { dir, signer })
    }

    /// The private key, for `control serve --links-signing-key`.
    pub fn signing_key(&self) -> PathBuf {
        self.dir.path().join("links-signing.pem")
    }

    /// The public key, for `engine serve --links-verify-key`.
    pub fn verify_key(&self) -> PathBuf {
        self.dir.path().join("links-verify.pem")
    }

    pub fn signer(&self) -> &DeltaSigner {
        &self.signer
    }

    /// Headers that make `payload` a signed link change, as control's relay
    /// publishes it.
    pub fn headers(&self, payload: &[u8]) -> async_nats::HeaderMap {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SIGNATURE_HEADER, self.signer.sign(payload).as_str());
        headers
    }

    /// A delta's bytes and its signed headers, ready to publish.
    pub fn signed(&self, delta: &LinkDelta) -> (async_nats::HeaderMap, Vec<u8>) {
        let payload = delta.encode();
        (self.headers(&payload), payload)
    }
}
