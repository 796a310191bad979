//! Connection deadlines without a timer per read.
//!
//! Arming a glommio read timeout on every wait costs a timer insertion and
//! removal per request. Instead each connection publishes one deadline in a
//! `Cell` (a store per read), and the backend sweeps all deadlines every
//! [`SWEEP_EVERY`] ticks: an expired connection gets `shutdown(SHUT_RD)`,
//! which wakes its pending read with end-of-file, and a `fired` flag that
//! tells the connection why (slow head: answer 408; idle: close quietly).
//! Deadlines are therefore honoured to within a sweep interval (100 ms).

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
    fired: Cell<bool>,
    slot: Cell<usize>,
}

impl Deadline {
    #[inline]
    pub fn set(&self, at: Instant) {
        self.at.set(Some(at));
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
    /// Tracks a new connection (once per connection, not per request).
    pub fn register(&self, fd: RawFd) -> Rc<Deadline> {
        let mut entries = self.entries.borrow_mut();
        let deadline = Rc::new(Deadline {
            fd,
            at: Cell::new(None),
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

    /// Cuts off every connection whose deadline has passed.
    pub fn sweep(&self, now: Instant) {
        for deadline in self.entries.borrow().iter() {
            if !deadline.fired.get() && deadline.at.get().is_some_and(|at| now >= at) {
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
        let (a, b, c) = (
            sweeper.register(-1),
            sweeper.register(-1),
            sweeper.register(-1),
        );
        sweeper.unregister(&a);
        assert_eq!(sweeper.len(), 2);
        assert_eq!(c.slot.get(), 0, "the last entry moved into the hole");
        let now = Instant::now();
        b.set(now);
        c.set(now + Duration::from_secs(60));
        sweeper.sweep(now);
        assert!(b.fired() && !c.fired());
        sweeper.unregister(&c);
        sweeper.unregister(&b);
        assert!(sweeper.is_empty());
    }
}
