//! Creating a core's ring with the best set-up flags the kernel has, and
//! checking up front that the kernel can run the backend at all.
//!
//! The flags matter for the cores, not for speed alone: without them every
//! completion is run as task work that interrupts the core it lands on (the
//! measured 0.8 cross-core interrupts per request of glommio 0.9's rings).
//! `DEFER_TASKRUN` (6.1) with `SINGLE_ISSUER` defers that work until the
//! core itself asks for completions; `COOP_TASKRUN` (5.19) at least stops
//! the interrupt. Older kernels get a plain ring.

use io_uring::{IoUring, Probe, opcode};
use std::io;

/// Submission queue entries per ring; a loop turn that queues more submits
/// early and carries on.
pub const SQ_ENTRIES: u32 = 1024;
/// Completion queue entries: multishot receives can complete many times per
/// submission.
pub const CQ_ENTRIES: u32 = 8192;

/// Which set-up the ring got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    DeferTaskrun,
    CoopTaskrun,
    Plain,
}

impl Flavor {
    pub fn name(self) -> &'static str {
        match self {
            Flavor::DeferTaskrun => "defer_taskrun",
            Flavor::CoopTaskrun => "coop_taskrun",
            Flavor::Plain => "plain",
        }
    }
}

/// Builds a ring with the first set-up the kernel accepts.
pub fn build(entries: u32, cq_entries: u32) -> io::Result<(IoUring, Flavor)> {
    let defer = IoUring::builder()
        .setup_cqsize(cq_entries)
        .setup_submit_all()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .build(entries);
    if let Ok(ring) = defer {
        return Ok((ring, Flavor::DeferTaskrun));
    }
    let coop = IoUring::builder()
        .setup_cqsize(cq_entries)
        .setup_submit_all()
        .setup_coop_taskrun()
        .setup_taskrun_flag()
        .build(entries);
    if let Ok(ring) = coop {
        return Ok((ring, Flavor::CoopTaskrun));
    }
    let ring = IoUring::builder().setup_cqsize(cq_entries).build(entries)?;
    Ok((ring, Flavor::Plain))
}

/// Whether this kernel can run the io_uring backend; the reason if not.
///
/// Needs: io_uring at all (not disabled by `kernel.io_uring_disabled` or a
/// seccomp filter), the accept, receive, send, cancel and close operations,
/// provided-buffer rings (5.19) and multishot receive (6.0, which has no
/// feature bit, so the kernel release is read).
pub fn check() -> Result<Flavor, String> {
    let (ring, flavor) = build(8, 16).map_err(|e| format!("cannot create an io_uring ({e})"))?;
    let mut probe = Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .map_err(|e| format!("cannot probe io_uring operations ({e})"))?;
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::AsyncCancel::CODE, "async cancel"),
        (opcode::Close::CODE, "close"),
    ] {
        if !probe.is_supported(code) {
            return Err(format!("io_uring has no {name} operation"));
        }
    }
    let release = kernel_release();
    if release < (6, 0) {
        return Err(format!(
            "kernel {}.{} has no multishot receive (needs 6.0)",
            release.0, release.1
        ));
    }
    let buffers = super::bufring::BufRing::register(&ring.submitter(), 2, 64, 0)
        .map_err(|e| format!("cannot register a provided-buffer ring ({e})"))?;
    // The ring goes first, so the kernel lets go of the buffers before
    // they are unmapped.
    drop(ring);
    drop(buffers);
    Ok(flavor)
}

/// The running kernel's (major, minor), (0, 0) if it cannot be read.
fn kernel_release() -> (u32, u32) {
    // SAFETY: utsname is plain bytes; all zeroes is a valid value.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uname fills the struct it is given and nothing else.
    if unsafe { libc::uname(&mut name) } != 0 {
        return (0, 0);
    }
    let release: Vec<u8> = name
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    parse_release(&String::from_utf8_lossy(&release))
}

fn parse_release(release: &str) -> (u32, u32) {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases() {
        assert_eq!(parse_release("6.18.44-fc-v669"), (6, 18));
        assert_eq!(parse_release("5.15.0-91-generic"), (5, 15));
        assert_eq!(parse_release("garbage"), (0, 0));
    }
}
