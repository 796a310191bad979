//! The provided-buffer ring that multishot receives fill.
//!
//! The kernel picks a free buffer for each receive completion and names it in
//! the completion; the driver parses straight out of it and hands it back
//! before the loop turn ends. So a connection holds no receive buffer while
//! it waits, and a turn's receives cost no buffer management beyond one
//! 16-byte ring entry each. The ring of entries lives in its own page-aligned
//! anonymous mapping (the kernel requires page alignment); the buffers are one
//! plain heap block.

use io_uring::types::BufRingEntry;
use std::io;
use std::sync::atomic::{AtomicU16, Ordering};

/// Receive buffers of one core: `count` buffers of `size` bytes, group `group`.
pub struct BufRing {
    entries: *mut BufRingEntry,
    map_len: usize,
    /// `count * size` bytes the kernel writes into behind our back, hence a
    /// raw pointer rather than a `Box` we would hold references into.
    data: *mut u8,
    data_len: usize,
    size: usize,
    mask: u16,
    /// Our copy of the ring's tail; published by [`BufRing::publish`].
    tail: u16,
}

impl BufRing {
    /// Maps and registers the ring, then hands every buffer to the kernel.
    /// `count` must be a power of two, at most 32768.
    pub fn register(
        submitter: &io_uring::Submitter<'_>,
        count: u16,
        size: usize,
        group: u16,
    ) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= 32768);
        let map_len = usize::from(count) * std::mem::size_of::<BufRingEntry>();
        // SAFETY: an anonymous private mapping; checked for failure below.
        let entries = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if entries == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mut ring = BufRing {
            entries: entries.cast(),
            map_len,
            data: Box::into_raw(vec![0u8; usize::from(count) * size].into_boxed_slice()).cast(),
            data_len: usize::from(count) * size,
            size,
            mask: count - 1,
            tail: 0,
        };
        // SAFETY: the mapping lives until `ring` is dropped, and the ring is
        // dropped after the io_uring it is registered with (the driver's
        // field order), so the kernel never sees it unmapped.
        unsafe { submitter.register_buf_ring_with_flags(entries as u64, count, group, 0)? };
        for bid in 0..count {
            ring.give(bid);
        }
        ring.publish();
        Ok(ring)
    }

    /// The first `len` bytes of buffer `bid`, as a completion reported them.
    #[inline]
    pub fn get(&self, bid: u16, len: usize) -> &[u8] {
        let start = usize::from(bid) * self.size;
        assert!(start < self.data_len, "buffer id {bid} out of range");
        // SAFETY: in bounds (checked), and the kernel does not write buffer
        // `bid` again until it is given back, which needs `&mut self`.
        unsafe { std::slice::from_raw_parts(self.data.add(start), len.min(self.size)) }
    }

    /// Queues buffer `bid` for reuse; the kernel sees it after [`publish`].
    ///
    /// [`publish`]: BufRing::publish
    #[inline]
    pub fn give(&mut self, bid: u16) {
        let addr = self.data as u64 + (usize::from(bid) * self.size) as u64;
        // SAFETY: the index is masked into the mapping, and the kernel only
        // reads entries between its head and the published tail, which this
        // one is not yet.
        let entry = unsafe { &mut *self.entries.add(usize::from(self.tail & self.mask)) };
        entry.set_addr(addr);
        entry.set_len(self.size as u32);
        entry.set_bid(bid);
        self.tail = self.tail.wrapping_add(1);
    }

    /// Makes every buffer given back so far visible to the kernel.
    #[inline]
    pub fn publish(&self) {
        // SAFETY: the tail field sits in the first entry of the live mapping;
        // the release store orders the entry writes before it, as the
        // kernel's acquire load of the tail expects.
        unsafe {
            let tail = BufRingEntry::tail(self.entries).cast::<AtomicU16>();
            (*tail).store(self.tail, Ordering::Release);
        }
    }
}

impl Drop for BufRing {
    fn drop(&mut self) {
        // SAFETY: the mapping and the block made in `register`, freed once.
        unsafe {
            libc::munmap(self.entries.cast(), self.map_len);
            drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(
                self.data,
                self.data_len,
            )));
        }
    }
}
