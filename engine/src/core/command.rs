//! The core's tick, and what the control thread asks of a core through it.
//!
//! Commands arrive on the core's bounded channel and are drained by its tick
//! ([`Core::tick`]), never on the request path.

use super::Core;
use super::state::DeltaRecord;
use crate::clock;
use crossbeam_channel::{Receiver, Sender};
use snapshots::Snapshot;
use std::sync::Arc;

/// Commands a core receives. Each core drains its channel on its clock tick.
#[derive(Debug)]
pub enum Command {
    /// Serve this snapshot from now on; report the core id on `done`.
    Snapshot {
        snapshot: Arc<Snapshot>,
        done: Sender<usize>,
    },
    /// Apply one change to the delta map.
    Delta(Arc<DeltaRecord>),
    /// Stop accepting, let in-flight requests finish, return.
    Shutdown,
}

/// Capacity of each core's command channel. Deltas beyond it make the change
/// stream wait (back-pressure), never drop.
pub const COMMAND_CAPACITY: usize = 65_536;

impl Core {
    /// One tick: click batch ages, the clock, then every queued command.
    /// Returns `false` once the core is told to stop (or every sender is
    /// gone: the process is exiting).
    pub fn tick(&self, commands: &Receiver<Command>) -> bool {
        let now_ms = clock::unix_ms();
        if let Some(clicks) = self.clicks.borrow_mut().as_mut() {
            clicks.tick(now_ms);
        }
        if self.clock.advance(now_ms) {
            self.pre.borrow_mut().set_date(&self.clock.date());
        }
        loop {
            match commands.try_recv() {
                Ok(command) => {
                    if !self.handle(command) {
                        return false;
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => return true,
                Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Carries out one command; `false` for [`Command::Shutdown`].
    pub fn handle(&self, command: Command) -> bool {
        match command {
            Command::Snapshot { snapshot, done } => {
                let sequence = snapshot.sequence();
                let old = self.state.borrow_mut().install(snapshot);
                self.metrics.snapshot_sequence.set(sequence as i64);
                self.metrics
                    .delta_entries
                    .set(self.state.borrow().delta_len() as i64);
                let _ = done.send(self.id);
                // The old mapping is unmapped here (or by the last core to
                // let go of it): a short munmap off the request path.
                drop(old);
            }
            Command::Delta(record) => {
                let mut state = self.state.borrow_mut();
                state.apply(record);
                self.metrics.delta_entries.set(state.delta_len() as i64);
                self.metrics
                    .delta_applied_seq
                    .set(state.applied_seq() as i64);
            }
            Command::Shutdown => return false,
        }
        true
    }
}
