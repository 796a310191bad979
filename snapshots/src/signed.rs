//! Signed snapshots: control signs the file it built, and an engine that
//! trusts the key opens it without walking the archive.
//!
//! # Why
//! Opening a snapshot checks it completely: the xxh3 checksum, then rkyv's
//! structural check of every map entry, string and offset, then every link's
//! own rules. That is linear in the file and mostly pointer chasing: 1.42 s
//! for 10M links (1.34 GB) on the project's 2-vCPU machine, one thread, on
//! every push, pull and restart. The check exists because an engine reads the
//! archive in place without bounds checks: a malformed file must never be
//! served. But a file control built and signed *is* well-formed: its builder
//! wrote it from checked links, through rkyv's serializer. What an engine needs
//! to know is that the bytes are exactly those, and a signature tells it that
//! for the cost of one cryptographic digest, which runs at memory speed and on
//! every core.
//!
//! # What is guaranteed
//! - **Trusted key, good signature:** the header and payload are byte for byte
//!   what a holder of the links signing key wrote. The engine serves it with
//!   no structural check ([`Checked::Signature`]). This is the same trust the
//!   engine already gives that key for every change it applies: a holder of it
//!   can redirect any link anywhere. What it adds is that a holder of the
//!   private key who also writes a malformed archive on purpose could make an
//!   engine read out of bounds; the key is control's, mode 0600, and never
//!   leaves it.
//! - **Trusted key, bad signature or digest** (a bit flipped on disk or on
//!   the wire, a file edited): refused ([`SnapshotError::BadSignature`]).
//! - **No signature, or a key this engine does not trust:** the complete check,
//!   exactly as for an unsigned file ([`Checked::Full`]). A file is never
//!   trusted for claiming a signature.
//!
//! # Layout
//! Header flag [`HEADER_FLAG_SIGNED`] says a trailer of
//! [`SIGNATURE_TRAILER_LEN`] bytes follows the payload:
//!
//! ```text
//! "SSIG" | key id (4 bytes) | Ed25519 signature (64 bytes)
//! ```
//!
//! The signature is over `"shortener snapshot signature v1\0"`, the 64 header
//! bytes (flags, sequence, link count and payload length included) and the
//! payload digest. The digest is BLAKE3 over the payload's length and the
//! BLAKE3 of each [`DIGEST_CHUNK`] of it in order, so chunks hash in parallel.
//! Key ids and key files are those of [`crate::signing`].

use crate::error::SnapshotError;
use crate::header::HEADER_LEN;
use crate::signing::{DeltaSigner, DeltaVerifier, KeyId, SignatureError};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

pub use crate::header::HEADER_FLAG_SIGNED;

/// Bytes after the payload of a signed file.
pub const SIGNATURE_TRAILER_LEN: usize = 72;
/// The payload is digested in chunks of this size, in parallel.
pub const DIGEST_CHUNK: usize = 32 << 20;

const TRAILER_TAG: [u8; 4] = *b"SSIG";
const SIGNATURE_CONTEXT: &[u8] = b"shortener snapshot signature v1\0";
const DIGEST_CONTEXT: &[u8] = b"shortener snapshot payload v1\0";

/// How an opened snapshot was checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Checksum, archive structure and every link.
    Full,
    /// The signature of this trusted key over the header and payload digest.
    Signature(KeyId),
}

/// The digest of a payload as it streams out of the builder.
pub(crate) struct StreamingDigest {
    chunk: blake3::Hasher,
    in_chunk: usize,
    len: u64,
    chunks: Vec<[u8; 32]>,
}

impl StreamingDigest {
    pub(crate) fn new() -> Self {
        StreamingDigest {
            chunk: blake3::Hasher::new(),
            in_chunk: 0,
            len: 0,
            chunks: Vec::new(),
        }
    }

    pub(crate) fn update(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let take = bytes.len().min(DIGEST_CHUNK - self.in_chunk);
            self.chunk.update(&bytes[..take]);
            self.in_chunk += take;
            self.len += take as u64;
            bytes = &bytes[take..];
            if self.in_chunk == DIGEST_CHUNK {
                self.chunks.push(*self.chunk.finalize().as_bytes());
                self.chunk.reset();
                self.in_chunk = 0;
            }
        }
    }

    pub(crate) fn finish(mut self) -> [u8; 32] {
        if self.in_chunk > 0 {
            self.chunks.push(*self.chunk.finalize().as_bytes());
        }
        combine(self.len, &self.chunks)
    }
}

/// The payload digest, chunks hashed on up to `available_parallelism`
/// threads (the caller is off the serving cores: a load, not a request).
pub fn payload_digest(payload: &[u8]) -> [u8; 32] {
    let chunks: Vec<&[u8]> = payload.chunks(DIGEST_CHUNK).collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(chunks.len())
        .max(1);
    let next = AtomicUsize::new(0);
    let mut hashes = vec![[0u8; 32]; chunks.len()];
    let done: Vec<Vec<(usize, [u8; 32])>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Relaxed);
                        let Some(chunk) = chunks.get(i) else {
                            return out;
                        };
                        out.push((i, *blake3::hash(chunk).as_bytes()));
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a digest thread does not panic"))
            .collect()
    });
    for (i, hash) in done.into_iter().flatten() {
        hashes[i] = hash;
    }
    combine(payload.len() as u64, &hashes)
}

fn combine(len: u64, chunks: &[[u8; 32]]) -> [u8; 32] {
    let mut outer = blake3::Hasher::new();
    outer.update(DIGEST_CONTEXT);
    outer.update(&len.to_le_bytes());
    for chunk in chunks {
        outer.update(chunk);
    }
    *outer.finalize().as_bytes()
}

fn message(header: &[u8], digest: &[u8; 32]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGNATURE_CONTEXT.len() + HEADER_LEN + 32);
    message.extend_from_slice(SIGNATURE_CONTEXT);
    message.extend_from_slice(&header[..HEADER_LEN]);
    message.extend_from_slice(digest);
    message
}

/// The trailer signing `header` (the 64 encoded bytes, flag set) and a
/// payload of `digest`.
pub(crate) fn trailer(
    signer: &DeltaSigner,
    header: &[u8],
    digest: &[u8; 32],
) -> [u8; SIGNATURE_TRAILER_LEN] {
    let (id, signature) = signer.sign_raw(&message(header, digest));
    let mut out = [0u8; SIGNATURE_TRAILER_LEN];
    out[..4].copy_from_slice(&TRAILER_TAG);
    out[4..8].copy_from_slice(&id.bytes());
    out[8..].copy_from_slice(&signature);
    out
}

/// Checks a signed file's trailer against `verifier`: `Ok(Some(key))` when a
/// trusted key signed exactly these bytes, `Ok(None)` when the key is not
/// trusted here (the caller checks the file completely), an error when the
/// trailer is malformed or the signature does not match.
pub(crate) fn verify(
    verifier: &DeltaVerifier,
    header: &[u8],
    payload: &[u8],
    trailer: &[u8],
) -> Result<Option<KeyId>, SnapshotError> {
    if trailer.len() != SIGNATURE_TRAILER_LEN || trailer[..4] != TRAILER_TAG {
        return Err(SnapshotError::BadSignature {
            reason: "the signature trailer is malformed".into(),
        });
    }
    let id: [u8; 4] = trailer[4..8].try_into().expect("4 bytes");
    if !verifier.trusts(id) {
        return Ok(None);
    }
    let digest = payload_digest(payload);
    match verifier.verify_raw(id, &message(header, &digest), &trailer[8..]) {
        Ok(key) => Ok(Some(key)),
        Err(SignatureError::UnknownKey(_)) => Ok(None),
        Err(e) => Err(SnapshotError::BadSignature {
            reason: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streaming_digest_is_the_parallel_one() {
        let payload: Vec<u8> = (0..(2 * DIGEST_CHUNK + 12_345))
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let mut streaming = StreamingDigest::new();
        for piece in payload.chunks(1_000_003) {
            streaming.update(piece);
        }
        assert_eq!(streaming.finish(), payload_digest(&payload));
        let mut one_more = payload.clone();
        one_more.push(0);
        assert_ne!(payload_digest(&one_more), payload_digest(&payload));
        assert_eq!(StreamingDigest::new().finish(), payload_digest(&[]));
    }
}
