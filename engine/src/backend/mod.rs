//! Which code moves the bytes of redirect connections, and the core threads
//! that host it.
//!
//! Every core is a glommio `LocalExecutor` pinned to one CPU ([`spawn`]). It
//! binds its own `SO_REUSEPORT` listener on the shared address (the kernel
//! spreads connections across the cores), starts one I/O backend on it, and
//! has the core's tick ([`crate::core::command::tick`]) run every [`TICK`]
//! until it is told to stop: by a glommio timer task on glommio's sockets, by
//! the ring's own loop on the io_uring backend (there, glommio's timers fire
//! only when its 100 ms preemption timer lets its reactor run, so a timer
//! task would tick every 100 ms, not every 5). Two backends, picked once for
//! the process ([`pick`]):
//!
//! - [`uring`]: the engine's own io_uring per core (multishot accept and
//!   receive into provided buffers, one send per connection per loop turn,
//!   completions that never interrupt the core), the default where the kernel
//!   has what it needs;
//! - [`glommio_net`]: glommio's sockets, a task per connection.
//!
//! Both hand the bytes to the connection's [`crate::core::session::Session`],
//! which is why they answer alike; neither is known to [`crate::core`].

pub mod error;
pub mod glommio_net;
pub mod uring;

use crate::clicks::ClickBuffer;
use crate::config::{Config, IoChoice};
use crate::core::command::{self, Command};
use crate::core::{Core, TICK};
use crate::metrics::CoreMetrics;
use crossbeam_channel::Receiver;
use error::{StartError, Started};
use glommio::{LocalExecutorBuilder, Placement};
use snapshots::Snapshot;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::os::fd::IntoRawFd;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Instant;

/// Which code moves the bytes of redirect connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The engine's own ring per core ([`uring`]).
    Uring,
    /// glommio's sockets, a task per connection ([`glommio_net`]).
    Glommio,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Uring => "uring",
            Backend::Glommio => "glommio",
        }
    }
}

/// The I/O backend: uring when asked for or, for `auto`, when this kernel can
/// run it; an explicit `uring` the kernel cannot run is a start-up error.
pub fn pick(choice: IoChoice) -> Result<Backend, StartError> {
    if choice == IoChoice::Glommio {
        return Ok(Backend::Glommio);
    }
    match uring::setup::check() {
        Ok(flavor) => {
            tracing::info!(ring = flavor.name(), "io_uring backend");
            Ok(Backend::Uring)
        }
        Err(reason) if choice == IoChoice::Uring => Err(StartError::UringUnsupported { reason }),
        Err(reason) => {
            tracing::warn!(%reason, "io_uring backend unavailable, using glommio's sockets");
            Ok(Backend::Glommio)
        }
    }
}

/// A backend's work on a running core.
enum Running {
    /// The accept loop (cancelled to close the listener) and the deadline
    /// sweeper.
    Glommio(glommio_net::Io),
    /// The ring's loop, which closes its own listener and ends when the core
    /// has stopped.
    Uring(glommio::Task<()>),
}

/// Starts core `id` pinned to `cpu` on its own thread. It reports on
/// `started` once its listener is bound (or why it failed), then serves
/// until it receives [`Command::Shutdown`].
#[allow(clippy::too_many_arguments)]
pub fn spawn(
    id: usize,
    cpu: usize,
    config: Arc<Config>,
    backend: Backend,
    listen: SocketAddr,
    tls: Option<(SocketAddr, Arc<rustls::ServerConfig>)>,
    commands: Receiver<Command>,
    metrics: Arc<CoreMetrics>,
    snapshot: Option<Arc<Snapshot>>,
    clicks: Option<ClickBuffer>,
    geoip: Option<Arc<crate::geoip::GeoIp>>,
    started: mpsc::Sender<Started>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("engine-core-{id}"))
        .spawn(move || {
            crate::sched::foreground();
            let io_memory = config.io_memory_kib * 1024;
            let executor = match LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&format!("core{id}"))
                .io_memory(io_memory)
                .make()
            {
                Ok(executor) => executor,
                Err(e) => {
                    let limit = error::memlock_limit();
                    let _ = started.send(Err(StartError::executor(id, cpu, io_memory, e, limit)));
                    return;
                }
            };
            executor.run(async move {
                let socket = match bind(listen, config.backlog) {
                    Ok(socket) => socket,
                    Err(source) => {
                        let _ = started.send(Err(StartError::Listen {
                            core: id,
                            addr: listen,
                            source,
                        }));
                        return;
                    }
                };
                let tls_socket = match &tls {
                    None => None,
                    Some((addr, _)) => match bind(*addr, config.backlog) {
                        Ok(socket) => Some(socket),
                        Err(source) => {
                            let _ = started.send(Err(StartError::Listen {
                                core: id,
                                addr: *addr,
                                source,
                            }));
                            return;
                        }
                    },
                };
                let core = Rc::new(Core {
                    geoip,
                    ..Core::new(id, &config, metrics, snapshot, clicks)
                });
                *core.tls.borrow_mut() = tls.map(|(_, config)| config);
                // The ring's loop ticks itself and takes the channel; on
                // glommio's sockets the timer task below ticks.
                let mut commands = Some(commands);
                let mut running = match backend {
                    Backend::Glommio => Running::Glommio(glommio_net::Io::start(
                        core.clone(),
                        socket,
                        tls_socket,
                        config.max_connections_per_core,
                    )),
                    Backend::Uring => {
                        let driver = match uring::Driver::new(
                            core.clone(),
                            socket.into_raw_fd(),
                            tls_socket.map(IntoRawFd::into_raw_fd),
                            config.uring_buffers,
                            config.max_connections_per_core,
                            commands.take().expect("the channel is still here"),
                        ) {
                            Ok(driver) => driver,
                            Err(source) => {
                                let _ = started.send(Err(StartError::Ring {
                                    core: id,
                                    cpu,
                                    source,
                                }));
                                return;
                            }
                        };
                        tracing::debug!(core = id, ring = driver.flavor().name(), "io_uring ready");
                        Running::Uring(glommio::spawn_local(driver.run()))
                    }
                };
                let _ = started.send(Ok(id));
                loop {
                    glommio::timer::sleep(TICK).await;
                    let running = match &commands {
                        Some(commands) => command::tick(&core, commands),
                        // The ring's loop ticks; this only notices the stop.
                        None => !core.stop_requested.get(),
                    };
                    if !running {
                        break;
                    }
                }
                // Shutdown: stop accepting (cancelling the glommio accept
                // task closes its listener; the ring closes its own), then let
                // busy connections finish their answer.
                core.stop_accepting.set(true);
                if let Running::Glommio(io) = &mut running {
                    io.stop_accepting().await;
                }
                core.draining.set(true);
                let deadline = Instant::now() + config.shutdown_grace();
                while core.busy.get() > 0 && Instant::now() < deadline {
                    glommio::timer::sleep(TICK).await;
                }
                if let Some(clicks) = core.clicks.borrow_mut().as_mut() {
                    clicks.flush();
                }
                core.stopped.set(true);
                match running {
                    Running::Glommio(io) => io.finish().await,
                    Running::Uring(ring) => ring.await,
                }
                tracing::debug!(core = id, busy = core.busy.get(), "core stopped");
            });
        })
}

/// A listening socket exactly like glommio's own, plus `TCP_NODELAY`
/// (inherited by accepted sockets) and a configurable backlog.
fn bind(addr: SocketAddr, backlog: u32) -> std::io::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket.set_tcp_nodelay(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket)
}
