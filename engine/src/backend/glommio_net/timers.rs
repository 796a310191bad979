//! Connection deadlines without a timer per read.
//!
//! Arming a glommio read timeout on every wait costs a timer insertion and
//! removal per request. Instead each connection publishes one deadline in a
//! `Cell` (a store per read), and the backend sweeps all deadlines every
//! [`SWEEP_EVERY`] ticks: an expired connection gets `shutdown(SHUT_RD)`,
//! which wakes its pending read with end-of-file, and a `fired` flag that
//! tells the connection why (slow head: answer 408; silent or idle: close
//! quietly). A new connection also carries its crowded first-byte deadline,
//! which the sweep applies only while the core's slots are more than 3/4
//! full. Deadlines are therefore honoured to within a sweep interval
//! (100 ms).

#[cfg(doc)]
use crate::core::SWEEP_EVERY;
use std::cell::{Cell, RefCell};
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::Instant;

/// One connection's deadline.
#[derive(Debug)]
pub struct Deadline {
    fd: RawFd,
    at: Cell<Option<Instant>>,
    /// Until the first byte: when a crowded core cuts the connection off.
    first_byte_by: Cell<Option<Instant>>,
    fired: Cell<bool>,
    slot: Cell<usize>,
}

impl Deadline {
    #[inline]
    pub fn set(&self, at: Instant) {
        self.at.set(Some(at));
    }

    /// The connection sent its first byte: no crowded first-byte deadline.
    #[inline]
    pub fn first_byte_arrived(&self) {
        self.first_byte_by.set(None);
    }

    /// Whether the sweeper cut the connection off.
    pub fn fired(&self) -> bool {
        self.fired.get()
    }
}

/// Every open connection's deadline on one core.
#[derive(Debug, Default)]
pub struct Sweeper {
    entries: RefCell<Vec<Rc<Deadline>>>,
}

impl Sweeper {
    /// Tracks a new connection (once per connection, not per request)
    /// whose first byte is due by `first_byte_by` when the core is crowded.
    pub fn register(&self, fd: RawFd, first_byte_by: Instant) -> Rc<Deadline> {
        let mut entries = self.entries.borrow_mut();
        let deadline = Rc::new(Deadline {
            fd,
            at: Cell::new(None),
            first_byte_by: Cell::new(Some(first_byte_by)),
            fired: Cell::new(false),
            slot: Cell::new(entries.len()),
        });
        entries.push(deadline.clone());
        deadline
    }

    /// Stops tracking a connection (before its socket is closed).
    pub fn unregister(&self, deadline: &Deadline) {
        let mut entries = self.entries.borrow_mut();
        let slot = deadline.slot.get();
        entries.swap_remove(slot);
        if let Some(moved) = entries.get(slot) {
            moved.slot.set(slot);
        }
    }

    /// Cuts off every connection whose deadline has passed, and, when the
    /// core is `crowded`, every one silent past its first-byte deadline.
    pub fn sweep(&self, now: Instant, crowded: bool) {
        for deadline in self.entries.borrow().iter() {
            let due = deadline.at.get().is_some_and(|at| now >= at)
                || (crowded && deadline.first_byte_by.get().is_some_and(|at| now >= at));
            if !deadline.fired.get() && due {
                deadline.fired.set(true);
                // SAFETY: the fd belongs to a connection that is still
                // registered, so it is open; shutdown does not close it.
                unsafe {
                    libc::shutdown(deadline.fd, libc::SHUT_RD);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn register_unregister_sweep() {
        let sweeper = Sweeper::default();
        let now = Instant::now();
        let later = now + Duration::from_secs(60);
        let (a, b, c) = (
            sweeper.register(-1, later),
            sweeper.register(-1, later),
            sweeper.register(-1, now),
        );
        sweeper.unregister(&a);
        assert_eq!(sweeper.len(), 2);
        assert_eq!(c.slot.get(), 0, "the last entry moved into the hole");
        b.set(now);
        c.set(later);
        sweeper.sweep(now, false);
        assert!(b.fired() && !c.fired());
        // Crowded: c's first-byte deadline has passed.
        sweeper.sweep(now, true);
        assert!(c.fired());
        sweeper.unregister(&c);
        sweeper.unregister(&b);
        assert!(sweeper.is_empty());
    }
}
