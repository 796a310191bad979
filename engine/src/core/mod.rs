//! One executor per core: its listener, its connections, its state.
//!
//! A core is a glommio `LocalExecutor` pinned to one CPU. It binds its own
//! `SO_REUSEPORT` listener on the shared address (the kernel spreads
//! connections across the cores), accepts, and serves each connection in a
//! local task ([`conn`]). A clock task ticks every few milliseconds: it
//! refreshes the cached `Date` (once a second) and drains the core's command
//! channel (snapshot swaps, deltas, shutdown), so cross-thread messages never
//! touch the request path.

pub mod conn;
pub mod session;
pub mod state;
pub mod timers;

use crate::clicks::ClickBuffer;
use crate::clicks::client_ip::Cidr;
use crate::config::Config;
use crate::http::date;
use crate::http::request::Limits;
use crate::http::response::{Canned, Preformatted};
use crate::metrics::CoreMetrics;
use crate::shared::Command;
use crossbeam_channel::Receiver;
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use snapshots::Snapshot;
use socket2::{Domain, Protocol, Socket, Type};
use state::CoreState;
use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::os::fd::{FromRawFd, IntoRawFd};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a core looks at its command channel and the clock.
pub const TICK: Duration = Duration::from_millis(5);

/// Everything a core's tasks share. Single-threaded: `Rc`, `Cell`, `RefCell`.
pub struct Core {
    pub id: usize,
    pub state: RefCell<CoreState>,
    pub pre: RefCell<Preformatted>,
    /// Unix seconds, refreshed by the clock tick (link expiry checks).
    pub now_secs: Cell<i64>,
    pub metrics: Arc<CoreMetrics>,
    pub limits: Limits,
    pub gone: Canned,
    pub root_redirect: Option<Box<[u8]>>,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_body: u64,
    /// Open connections.
    pub open: Cell<usize>,
    /// Connections in the middle of a request.
    pub busy: Cell<usize>,
    /// Set on shutdown: connections close after their current answer.
    pub draining: Cell<bool>,
    /// Set on shutdown, before draining: the listener closes.
    pub stop_accepting: Cell<bool>,
    /// Set when the core is done: the I/O loop ends.
    pub stopped: Cell<bool>,
    /// The core's click batch; `None` when clicks are off.
    pub clicks: RefCell<Option<ClickBuffer>>,
    /// Peers whose forwarding headers name the client.
    pub proxies: Vec<Cidr>,
    /// Every connection's deadline.
    pub sweeper: timers::Sweeper,
}

impl Core {
    fn new(
        id: usize,
        config: &Config,
        metrics: Arc<CoreMetrics>,
        snapshot: Option<Arc<Snapshot>>,
        clicks: Option<ClickBuffer>,
    ) -> Core {
        let now = unix_secs();
        if let Some(s) = &snapshot {
            metrics.snapshot_sequence.set(s.sequence() as i64);
        }
        Core {
            id,
            state: RefCell::new(CoreState::new(snapshot)),
            pre: RefCell::new(Preformatted::new(
                config.permanent_max_age,
                &date::format(now),
            )),
            now_secs: Cell::new(now),
            metrics,
            limits: Limits {
                max_uri: config.max_uri_bytes,
                max_head: config.max_head_bytes,
            },
            gone: if config.gone_status == 404 {
                Canned::NotFound
            } else {
                Canned::Gone
            },
            root_redirect: config
                .root_redirect
                .as_ref()
                .map(|url| url.as_bytes().to_vec().into_boxed_slice()),
            header_timeout: config.header_timeout(),
            idle_timeout: config.idle_timeout(),
            max_body: config.max_body_bytes,
            open: Cell::new(0),
            busy: Cell::new(0),
            draining: Cell::new(false),
            stop_accepting: Cell::new(false),
            stopped: Cell::new(false),
            clicks: RefCell::new(clicks),
            // Checked by Config::validate before any core starts.
            proxies: config.proxies().unwrap_or_default(),
            sweeper: timers::Sweeper::default(),
        }
    }

    fn handle(&self, command: Command) -> bool {
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

/// What a core reports when it is listening, or why it could not start.
pub type Started = Result<usize, String>;

/// Which code moves the bytes of redirect connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The engine's own ring per core ([`crate::uring`]).
    Uring,
    /// glommio's sockets, a task per connection ([`conn`]).
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
    commands: Receiver<Command>,
    metrics: Arc<CoreMetrics>,
    snapshot: Option<Arc<Snapshot>>,
    clicks: Option<ClickBuffer>,
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
                    let _ = started.send(Err(describe_start_error(id, cpu, io_memory, &e)));
                    return;
                }
            };
            executor.run(async move {
                let socket = match bind(listen, config.backlog) {
                    Ok(socket) => socket,
                    Err(e) => {
                        let _ =
                            started.send(Err(format!("core {id}: cannot listen on {listen}: {e}")));
                        return;
                    }
                };
                let core = Rc::new(Core::new(id, &config, metrics, snapshot, clicks));
                let io = match backend {
                    Backend::Glommio => {
                        // SAFETY: the fd is a freshly created, bound,
                        // listening TCP socket that nothing else owns.
                        let listener = unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) };
                        glommio::spawn_local(accept_loop(
                            listener,
                            core.clone(),
                            config.max_connections_per_core,
                        ))
                    }
                    Backend::Uring => {
                        let driver = match crate::uring::Driver::new(
                            core.clone(),
                            socket.into_raw_fd(),
                            config.uring_buffers,
                            config.max_connections_per_core,
                        ) {
                            Ok(driver) => driver,
                            Err(e) => {
                                let _ = started.send(Err(format!(
                                    "core {id} (cpu {cpu}) could not set up its io_uring: {e} \
                                     (try --io glommio)"
                                )));
                                return;
                            }
                        };
                        tracing::debug!(core = id, ring = driver.flavor().name(), "io_uring ready");
                        glommio::spawn_local(driver.run())
                    }
                };
                let _ = started.send(Ok(id));
                clock(&core, &commands).await;
                // Shutdown: stop accepting (cancelling the glommio accept
                // task closes its listener; the ring closes its own), then let
                // busy connections finish their answer.
                core.stop_accepting.set(true);
                let io = match backend {
                    Backend::Glommio => {
                        io.cancel().await;
                        None
                    }
                    Backend::Uring => Some(io),
                };
                core.draining.set(true);
                let deadline = Instant::now() + config.shutdown_grace();
                while core.busy.get() > 0 && Instant::now() < deadline {
                    glommio::timer::sleep(TICK).await;
                }
                if let Some(clicks) = core.clicks.borrow_mut().as_mut() {
                    clicks.flush();
                }
                core.stopped.set(true);
                if let Some(io) = io {
                    io.await;
                }
                tracing::debug!(core = id, busy = core.busy.get(), "core stopped");
            });
        })
}

fn describe_start_error(
    id: usize,
    cpu: usize,
    io_memory: usize,
    e: &glommio::GlommioError<()>,
) -> String {
    let text = e.to_string();
    let hint = if text.contains("MemLock") || text.contains("memlock") || text.contains("locked") {
        format!(
            "; each core registers {io_memory} bytes of I/O memory with io_uring, which counts \
             against RLIMIT_MEMLOCK: raise the limit (systemd LimitMEMLOCK=, see engine/README.md), \
             grant CAP_IPC_LOCK, or lower io_memory_kib"
        )
    } else if text.contains("io_uring")
        || text.contains("ENOSYS")
        || text.contains("Function not implemented")
    {
        "; io_uring is unavailable (old kernel, or disabled by seccomp / kernel.io_uring_disabled)"
            .to_owned()
    } else {
        String::new()
    };
    format!("core {id} (cpu {cpu}) could not start its executor: {text}{hint}")
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

async fn accept_loop(listener: TcpListener, core: Rc<Core>, max_connections: usize) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                if core.open.get() >= max_connections {
                    core.metrics.connections_refused.inc();
                    drop(stream);
                    continue;
                }
                core.metrics.connections_accepted.inc();
                glommio::spawn_local(conn::serve(stream, core.clone())).detach();
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

/// Ticks until shutdown: the `Date` header and the command channel.
async fn clock(core: &Core, commands: &Receiver<Command>) {
    let mut last = core.now_secs.get();
    let mut ticks = 0u32;
    loop {
        glommio::timer::sleep(TICK).await;
        ticks = ticks.wrapping_add(1);
        if ticks.is_multiple_of(timers::SWEEP_EVERY) {
            core.sweeper.sweep(Instant::now());
        }
        let now_ms = unix_ms();
        if let Some(clicks) = core.clicks.borrow_mut().as_mut() {
            clicks.tick(now_ms);
        }
        let now = (now_ms / 1000) as i64;
        if now != last {
            last = now;
            core.now_secs.set(now);
            core.pre.borrow_mut().set_date(&date::format(now));
        }
        loop {
            match commands.try_recv() {
                Ok(command) => {
                    if !core.handle(command) {
                        return;
                    }
                }
                Err(crossbeam_channel::TryRecvError::Empty) => break,
                // Every sender is gone: the process is exiting.
                Err(crossbeam_channel::TryRecvError::Disconnected) => return,
            }
        }
    }
}

/// Unix milliseconds (click timestamps, batch ages).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
