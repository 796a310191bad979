//! The glommio backend: glommio's sockets, one task per connection.
//!
//! An accept loop on the core's listener spawns a task per connection
//! ([`conn`]), which reads, hands the bytes to its session, and writes the
//! answers in one go. Deadlines are not a timer per read: each connection
//! publishes one in the core's [`timers::Sweeper`], which a task of its own
//! sweeps every [`SWEEP_EVERY`] ticks. With TLS on, a second accept loop on
//! the core's TLS listener spawns [`tls`] connection tasks.

pub mod conn;
pub mod timers;
pub mod tls;

use crate::core::{Core, SWEEP_EVERY, TICK};
use glommio::Task;
use glommio::net::TcpListener;
use socket2::Socket;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};
use timers::Sweeper;

/// The backend's tasks on one core.
pub struct Io {
    /// `None` once accepting stopped (cancelling it closed the listener).
    accept: Option<Task<()>>,
    /// The TLS listener's accept loop, with TLS on.
    tls_accept: Option<Task<()>>,
    sweeper: Task<()>,
}

impl Io {
    /// Starts accepting on `listener` (bound and listening), and on
    /// `tls_listener` if given, and sweeping.
    pub fn start(
        core: Rc<Core>,
        listener: Socket,
        tls_listener: Option<Socket>,
        max_connections: usize,
    ) -> Io {
        // SAFETY: the fds are freshly created, bound, listening TCP sockets
        // that nothing else owns.
        let listener = unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) };
        // SAFETY: as above.
        let tls_listener =
            tls_listener.map(|l| unsafe { TcpListener::from_raw_fd(l.into_raw_fd()) });
        let sweeper = Rc::new(Sweeper::default());
        let tls_accept = tls_listener.map(|listener| {
            glommio::spawn_local(accept_loop(
                listener,
                core.clone(),
                sweeper.clone(),
                max_connections,
                true,
            ))
        });
        let core_for_sweep = core.clone();
        Io {
            accept: Some(glommio::spawn_local(accept_loop(
                listener,
                core,
                sweeper.clone(),
                max_connections,
                false,
            ))),
            tls_accept,
            sweeper: glommio::spawn_local(sweep_loop(sweeper, core_for_sweep)),
        }
    }

    /// Closes the listeners; open connections carry on.
    pub async fn stop_accepting(&mut self) {
        for accept in [self.accept.take(), self.tls_accept.take()]
            .into_iter()
            .flatten()
        {
            accept.cancel().await;
        }
    }

    /// The core has stopped: no more sweeping.
    pub async fn finish(mut self) {
        self.stop_accepting().await;
        self.sweeper.cancel().await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    core: Rc<Core>,
    sweeper: Rc<Sweeper>,
    max_connections: usize,
    secure: bool,
) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if core.open.get() >= max_connections {
                    core.metrics.connections_refused.inc();
                    drop(stream);
                    continue;
                }
                core.metrics.connections_accepted.inc();
                let (core, sweeper) = (core.clone(), sweeper.clone());
                match secure {
                    false => glommio::spawn_local(conn::serve(stream, core, sweeper)).detach(),
                    true => glommio::spawn_local(tls::serve(stream, core, sweeper)).detach(),
                };
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly
                // instead of spinning.
                tracing::warn!(core = core.id, error = %e, "accept failed");
                glommio::timer::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Cuts off late, silent and idle connections every [`SWEEP_EVERY`] ticks.
async fn sweep_loop(sweeper: Rc<Sweeper>, core: Rc<Core>) {
    loop {
        glommio::timer::sleep(TICK * SWEEP_EVERY).await;
        sweeper.sweep(Instant::now(), core.crowded());
    }
}
