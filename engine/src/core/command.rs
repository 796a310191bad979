//! The core's tick, and what the control thread asks of a core through it.
//!
//! Commands arrive on the core's bounded channel and are drained by its tick
//! ([`tick`]), never on the request path. These are functions of a [`Core`]
//! rather than its methods so that `Core` itself needs nothing from here.

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
    /// Start new TLS connections on this configuration (certificates or
    /// ticket keys changed); established ones keep theirs. The core id goes
    /// to `done` (which may have been dropped: a watch does not wait).
    Tls {
        config: Arc<rustls::ServerConfig>,
        done: Sender<usize>,
    },
    /// A change to the core's slices of leased visits ([`super::visits`]).
    Visits(VisitCommand),
    /// Stop accepting, let in-flight requests finish, return.
    Shutdown,
}

/// What the control thread's lease task asks of a core's visit slices.
#[derive(Debug)]
pub enum VisitCommand {
    /// Report to this from now on (sent once, before any grant).
    Reporter(super::visits::Reporter),
    /// Add `visits` of `lease`, served until `until_ms` (unix ms); a grant
    /// of 0 visits of lease 0 tracks the link without visits.
    Grant {
        key: super::visits::LinkKey,
        lease: u64,
        visits: u32,
        until_ms: u64,
    },
    /// End the link's slice now and report what it had left.
    Revoke(super::visits::LinkKey),
    /// Stop tracking the link (no longer limited).
    Forget(super::visits::LinkKey),
}

/// Capacity of each core's command channel. Deltas beyond it make the change
/// stream wait (back-pressure), never drop.
pub const COMMAND_CAPACITY: usize = 65_536;

/// One tick: click batch ages, the clock, the visit slices' ends and asks,
/// then every queued command.
/// Returns `false` once the core is told to stop (or every sender is gone:
/// the process is exiting).
pub fn tick(core: &Core, commands: &Receiver<Command>) -> bool {
    let now_ms = clock::unix_ms();
    if let Some(clicks) = core.clicks.borrow_mut().as_mut() {
        clicks.tick(now_ms);
    }
    if core.clock.advance(now_ms) {
        core.pre.borrow_mut().set_date(&core.clock.date());
    }
    core.visits.borrow_mut().tick(now_ms);
    loop {
        match commands.try_recv() {
            Ok(command) => {
                if !handle(core, command) {
                    return false;
                }
            }
            Err(crossbeam_channel::TryRecvError::Empty) => return true,
            Err(crossbeam_channel::TryRecvError::Disconnected) => return false,
        }
    }
}

/// Carries out one command; `false` for [`Command::Shutdown`].
fn handle(core: &Core, command: Command) -> bool {
    match command {
        Command::Snapshot { snapshot, done } => {
            let sequence = snapshot.sequence();
            let old = core.state.borrow_mut().install(snapshot);
            core.metrics.snapshot_sequence.set(sequence as i64);
            core.metrics
                .delta_entries
                .set(core.state.borrow().delta_len() as i64);
            let _ = done.send(core.id);
            // The old mapping is unmapped here (or by the last core to
            // let go of it): a short munmap off the request path.
            drop(old);
        }
        Command::Delta(record) => {
            let mut state = core.state.borrow_mut();
            state.apply(record);
            core.metrics.delta_entries.set(state.delta_len() as i64);
            core.metrics
                .delta_applied_seq
                .set(state.applied_seq() as i64);
        }
        Command::Tls { config, done } => {
            *core.tls.borrow_mut() = Some(config);
            let _ = done.send(core.id);
        }
        Command::Visits(command) => {
            let mut visits = core.visits.borrow_mut();
            match command {
                VisitCommand::Reporter(reporter) => visits.set_reporter(reporter),
                VisitCommand::Grant {
                    key,
                    lease,
                    visits: n,
                    until_ms,
                } => visits.grant(key, lease, n, until_ms),
                VisitCommand::Revoke(key) => visits.revoke(&key),
                VisitCommand::Forget(key) => visits.forget(&key),
            }
        }
        Command::Shutdown => return false,
    }
    true
}
