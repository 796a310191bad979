//! FxHash, for the core's maps whose keys are compared, not chosen, by
//! clients: the delta map (keys from the control plane) and the domain
//! table (names from the control plane; a client's `Host` only looks up).

use std::hash::Hasher;

/// FxHash: codes are short and the map's keys come from the control plane,
/// not from clients, so a fast non-keyed hash is fine here.
#[derive(Default, Clone, Copy)]
pub struct FxHasher(u64);

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let word = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
            self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
