//! How click batches get from the cores to the publisher thread: a bounded
//! crossbeam channel plus a doorbell, so the publisher sleeps until a batch
//! is there instead of polling the channel.
//!
//! The publisher used to look at the channel every 2 ms: 500 wake-ups a
//! second on every node, busy or idle, each a context switch and a turn of
//! its tokio runtime. Profiled on one core (`perf/profile.sh`), that thread
//! was 4.5-5.5% of the engine's CPU under load, most of it waking up to find
//! nothing. Now it sleeps on an eventfd until a core hands over a batch
//! (every `click_batch_events` clicks or `click_batch_age_ms`).
//!
//! Lost wake-ups are ruled out the usual way: the sleeper sets `asleep`,
//! then looks at the channel; a core puts its batch in, then looks at
//! `asleep`; a full fence on each side between the two steps means at least
//! one of them sees the other's. A core writes the eventfd (one system call)
//! only when it finds the publisher asleep, so at most once per sleep, and
//! never waits: the eventfd is non-blocking and its counter cannot fill up
//! at one write per sleep.

use crossbeam_channel::{Receiver, Sender, TryRecvError, TrySendError};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering, fence};
use std::time::Duration;
use tokio::io::unix::AsyncFd;

struct Doorbell {
    fd: OwnedFd,
    /// The publisher is (about to be) waiting on `fd`.
    asleep: AtomicBool,
}

impl Doorbell {
    fn new() -> io::Result<Doorbell> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new
        // descriptor that nothing else owns.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(Doorbell {
            // SAFETY: as above.
            fd: unsafe { OwnedFd::from_raw_fd(fd) },
            asleep: AtomicBool::new(false),
        })
    }

    /// Wakes the publisher if it sleeps (after a batch went in, or a sender
    /// went away).
    #[inline]
    fn ring(&self) {
        fence(Ordering::SeqCst);
        if self.asleep.load(Ordering::Relaxed) && self.asleep.swap(false, Ordering::Relaxed) {
            let one = 1u64.to_ne_bytes();
            // SAFETY: writes 8 bytes from a live buffer to our own
            // descriptor. It cannot block (EFD_NONBLOCK); failing means the
            // counter is full, which already wakes the reader.
            unsafe { libc::write(self.fd.as_raw_fd(), one.as_ptr().cast(), one.len()) };
        }
    }

    /// Empties the eventfd's counter.
    fn drain(&self) {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live buffer; non-blocking.
        unsafe { libc::read(self.fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
    }
}

/// The descriptor tokio watches (the doorbell stays shared with the cores).
struct BellFd(Arc<Doorbell>);

impl AsRawFd for BellFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.fd.as_raw_fd()
    }
}

/// A channel of `capacity` batches from the cores to the publisher, and one
/// back of the same size for the publisher to return emptied buffers.
pub fn channel(capacity: usize) -> io::Result<(BatchSender, BatchReceiver)> {
    let bell = Arc::new(Doorbell::new()?);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    Ok((
        BatchSender {
            tx: Some(tx),
            bell: bell.clone(),
        },
        BatchReceiver {
            rx,
            bell,
            held: None,
            watch: None,
        },
    ))
}

/// A core's end: never blocks.
pub struct BatchSender {
    /// `None` only while being dropped.
    tx: Option<Sender<Vec<u8>>>,
    bell: Arc<Doorbell>,
}

impl Clone for BatchSender {
    fn clone(&self) -> BatchSender {
        BatchSender {
            tx: self.tx.clone(),
            bell: self.bell.clone(),
        }
    }
}

impl BatchSender {
    /// Hands a batch over; gives it back if the channel is full.
    #[inline]
    pub fn try_send(&self, batch: Vec<u8>) -> Result<(), TrySendError<Vec<u8>>> {
        let tx = self.tx.as_ref().expect("a sender is live until dropped");
        tx.try_send(batch)?;
        self.bell.ring();
        Ok(())
    }
}

impl Drop for BatchSender {
    fn drop(&mut self) {
        // The channel closes when the last sender is gone: the publisher
        // must wake to see it (and finish), so the sender goes first.
        drop(self.tx.take());
        self.bell.ring();
    }
}

/// The publisher's end.
pub struct BatchReceiver {
    rx: Receiver<Vec<u8>>,
    bell: Arc<Doorbell>,
    /// A batch taken off the channel while checking it before a sleep.
    held: Option<Vec<u8>>,
    /// Registered with the publisher's runtime on its first sleep.
    watch: Option<AsyncFd<BellFd>>,
}

impl BatchReceiver {
    pub fn try_recv(&mut self) -> Result<Vec<u8>, TryRecvError> {
        match self.held.take() {
            Some(batch) => Ok(batch),
            None => self.rx.try_recv(),
        }
    }

    /// Blocks the thread until a batch comes; an error once every sender is
    /// gone and the channel is empty.
    pub fn recv_blocking(&mut self) -> Result<Vec<u8>, crossbeam_channel::RecvError> {
        match self.held.take() {
            Some(batch) => Ok(batch),
            None => self.rx.recv(),
        }
    }

    /// Sleeps until a batch may be there, every sender is gone, or
    /// `timeout` passes. Must run inside the tokio runtime that polls it.
    pub async fn wait(&mut self, timeout: Duration) {
        if self.held.is_some() {
            return;
        }
        self.bell.asleep.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        match self.rx.try_recv() {
            Ok(batch) => {
                self.held = Some(batch);
                self.bell.asleep.store(false, Ordering::Relaxed);
                return;
            }
            Err(TryRecvError::Disconnected) => {
                self.bell.asleep.store(false, Ordering::Relaxed);
                return;
            }
            Err(TryRecvError::Empty) => {}
        }
        if self.watch.is_none() {
            let bell = BellFd(self.bell.clone());
            // SAFETY: the descriptor is the doorbell's own, open as long as
            // the `Arc` that `BellFd` holds, and `as_raw_fd` always gives it.
            match unsafe { AsyncFd::register_with_interest(bell, tokio::io::Interest::READABLE) } {
                Ok(watch) => self.watch = Some(watch),
                Err(e) => {
                    let e = io::Error::from(e);
                    // Without the reactor's help, fall back to the timeout.
                    tracing::warn!(error = %e, "cannot watch the click doorbell; polling");
                    tokio::time::sleep(timeout.min(Duration::from_millis(2))).await;
                    self.bell.asleep.store(false, Ordering::Relaxed);
                    return;
                }
            }
        }
        let watch = self.watch.as_ref().expect("registered above");
        if let Ok(Ok(mut ready)) = tokio::time::timeout(timeout, watch.readable()).await {
            self.bell.drain();
            ready.clear_ready();
        }
        self.bell.asleep.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    /// Far longer than any wake-up takes: a wait that lasts this long was
    /// not woken.
    const FALLBACK: Duration = Duration::from_secs(30);

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn a_batch_sent_while_the_publisher_sleeps_wakes_it_at_once() {
        let (tx, mut rx) = channel(4).unwrap();
        let sender = std::thread::spawn(move || {
            // Wait until the receiver is asleep, so this is the ring that
            // has to wake it.
            while !tx.bell.asleep.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            tx.try_send(vec![1, 2, 3]).unwrap();
            tx
        });
        let started = Instant::now();
        runtime().block_on(rx.wait(FALLBACK));
        // Woken by the ring, not by the fallback timeout.
        assert!(started.elapsed() < FALLBACK);
        assert_eq!(rx.try_recv().unwrap(), vec![1, 2, 3]);
        drop(sender.join().unwrap());
    }

    #[test]
    fn a_batch_already_there_is_not_slept_on() {
        let (tx, mut rx) = channel(4).unwrap();
        tx.try_send(vec![9]).unwrap();
        runtime().block_on(rx.wait(FALLBACK));
        assert_eq!(rx.try_recv().unwrap(), vec![9]);
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn the_last_sender_going_away_wakes_the_publisher() {
        let (tx, mut rx) = channel(4).unwrap();
        let dropper = std::thread::spawn(move || {
            while !tx.bell.asleep.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            drop(tx);
        });
        let started = Instant::now();
        runtime().block_on(rx.wait(FALLBACK));
        assert!(started.elapsed() < FALLBACK);
        dropper.join().unwrap();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
    }

    #[test]
    fn with_nothing_sent_the_wait_ends_at_its_timeout() {
        let (_tx, mut rx) = channel(4).unwrap();
        let started = Instant::now();
        runtime().block_on(rx.wait(Duration::from_millis(20)));
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Empty)));
    }

    #[test]
    fn a_full_channel_gives_the_batch_back() {
        let (tx, _rx) = channel(1).unwrap();
        tx.try_send(vec![1]).unwrap();
        let Err(TrySendError::Full(batch)) = tx.try_send(vec![2]) else {
            panic!("a full channel takes nothing");
        };
        assert_eq!(batch, vec![2]);
    }
}
