//! The hasher of the per-event maps (the agent cache, the group's event
//! ids): XXH3 of the key's bytes with a seed drawn once per process.
//!
//! These maps are looked up once per event, with keys of 16 bytes (event
//! ids) to a few hundred (agents), where std's SipHash-1-3 costs several
//! times what XXH3 does. User agents are chosen by
//! whoever sends the request, so the seed is random (from std's own
//! per-process keys): colliding agents cannot be precomputed.

use std::hash::{BuildHasher, Hasher, RandomState};
use std::sync::OnceLock;

use xxhash_rust::xxh3::xxh3_64_with_seed;

/// Builds [`BytesHasher`]s with the process's seed.
#[derive(Debug, Clone, Copy)]
pub struct SeededXxh3 {
    seed: u64,
}

impl Default for SeededXxh3 {
    fn default() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        SeededXxh3 {
            seed: *SEED.get_or_init(|| RandomState::new().hash_one(0x5eed_u64)),
        }
    }
}

impl BuildHasher for SeededXxh3 {
    type Hasher = BytesHasher;

    fn build_hasher(&self) -> BytesHasher {
        BytesHasher(self.seed)
    }
}

/// Hashes byte keys (`[u8]`, `[u8; N]`, `Box<[u8]>`): each `write` chains
/// one XXH3 with the state so far as its seed; integers (a slice's length
/// prefix) are mixed in with one multiply.
#[derive(Debug)]
pub struct BytesHasher(u64);

impl Hasher for BytesHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.0 = xxh3_64_with_seed(bytes, self.0);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn keys_hash_by_content_and_differ() {
        let s = SeededXxh3::default();
        let a: &[u8] = b"Mozilla/5.0";
        let boxed: Box<[u8]> = a.into();
        assert_eq!(s.hash_one(a), s.hash_one(&*boxed));
        assert_ne!(s.hash_one(a), s.hash_one(&b"Mozilla/5.1"[..]));
        assert_ne!(s.hash_one([1u8; 16]), s.hash_one([2u8; 16]));
        let mut m: HashMap<Box<[u8]>, u32, SeededXxh3> = HashMap::default();
        m.insert(boxed, 1);
        assert_eq!(m.get(a), Some(&1));
    }
}
