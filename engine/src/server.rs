//! Start-up and shutdown of `engine serve`: pick CPUs, open the state
//! directory, load the snapshot, start one executor per core and check each
//! one started, start the control thread, print the readiness line, wait for
//! a signal, drain, exit.

use crate::backend;
use crate::config::Config;
use crate::control;
use crate::loader::Initial;
use crate::shared::Shared;
use crate::state_dir::StateDir;
use anyhow::{Context, bail};
use socket2::{Domain, Protocol, Socket, Type};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// What the main thread waits for.
enum Event {
    /// SIGTERM / SIGINT: drain and exit 0.
    Stop,
    /// A core's thread ended.
    CoreExited(usize),
}

/// Runs the engine until a signal stops it. Returns an error (non-zero exit)
/// when start-up fails or a core dies on its own. `config` is validated
/// ([`servicekit::config::load`] does it).
pub fn serve(config: Config) -> anyhow::Result<()> {
    // Every thread started from here on is background work, but the cores.
    crate::sched::background();
    let config = Arc::new(config);
    let cpus = pick_cpus(config.cores)?;
    let backend = backend::pick(config.io)?;

    let state_path = config.state_dir();
    let state = StateDir::open(&state_path)?;
    tracing::info!(dir = %state_path.display(), "state directory");
    // TLS: every pair checked before any core starts; none usable is an
    // error naming each file refused.
    let tls = match config.tls_settings() {
        None => None,
        Some(settings) => {
            let settings = crate::tls::config::TlsSettings {
                pushed_dir: Some(state.certs()),
                ..settings
            };
            let dir = settings.cert_dir.clone();
            let (control, tls_config) = crate::tls_control::TlsControl::open(settings)
                .with_context(|| format!("cannot serve TLS from --tls-certs {}", dir.display()))?;
            Some((control, tls_config))
        }
    };
    let initial =
        crate::loader::at_start(&config, &state).with_context(|| match &config.snapshot {
            Some(path) => format!("cannot serve snapshot {}", path.display()),
            None => "cannot load a snapshot".to_owned(),
        })?;
    match &initial {
        Some(i) => {
            tracing::info!(source = %i.source, sequence = i.snapshot.sequence(), links = i.snapshot.len(), "snapshot loaded")
        }
        None => tracing::warn!(
            "no --snapshot and none pushed before: answering 503 until one is pushed to PUT /snapshot"
        ),
    }
    let snapshot = initial.as_ref().map(|i| i.snapshot.clone());

    // With port 0 the port is chosen once here; every core then binds that
    // same port with SO_REUSEPORT. The probe socket never listens, so the
    // kernel never hands it a connection.
    let probe = reserve(config.listen)?;
    let listen = probe.local_addr()?.as_socket().context("listen address")?;
    let tls_probe = config.tls_listen.map(reserve).transpose()?;
    let tls_listen = match &tls_probe {
        Some(probe) => Some(
            probe
                .local_addr()?
                .as_socket()
                .context("TLS listen address")?,
        ),
        None => None,
    };
    let (tls_control, tls_config) = match tls {
        Some((control, config)) => (Some(control), Some(config)),
        None => (None, None),
    };

    // Opened once, before any core starts: a bad file stops the start with
    // its reason rather than silently disabling country rules.
    let geoip = match &config.geoip {
        Some(path) => {
            let db = crate::geoip::GeoIp::open(path)?;
            tracing::info!(path = %path.display(), ?db, "GeoIP database for country rules");
            Some(Arc::new(db))
        }
        None => None,
    };

    let spool_dir = state.spool();
    let (shared, receivers) = Shared::new(config.clone(), cpus.len(), state, tls_control);
    *shared.watched.lock().expect("fresh lock") = config
        .snapshot
        .as_deref()
        .and_then(crate::shared::fingerprint);
    if let Some(Initial {
        snapshot: s,
        source,
    }) = initial
    {
        shared.leases.snapshot(&s);
        *shared.snapshot.lock().expect("fresh lock") = Some(crate::shared::LoadedSnapshot {
            sequence: s.sequence(),
            links: s.len() as u64,
            built_at_ms: s.header().built_at_ms,
            file_len: s.file_len(),
            loaded_at_ms: crate::clock::unix_ms(),
            source,
            by_signature: s.checked_by() != snapshots::signed::Checked::Full,
        });
    }

    // Clicks: one bounded channel from every core to the publisher, and one
    // back for recycled buffers.
    let node_id = crate::clicks::node_id(config.node_id.as_deref());
    let prefix = crate::clicks::process_prefix();
    let (click_tx, click_rx) = crate::clicks::handoff::channel(config.click_channel_batches)
        .context("cannot create the click hand-over's eventfd")?;
    let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(config.click_channel_batches);
    let publisher = match (&shared.clicks, config.nats_settings()) {
        (Some(stats), Some(nats)) => {
            tracing::info!(node_id, spool = %spool_dir.display(), "click capture on");
            let handle = crate::clicks::publisher::spawn(
                crate::clicks::publisher::PublisherConfig {
                    nats,
                    stream: config.clicks_stream.clone(),
                    subject_prefix: config.clicks_subject_prefix.clone(),
                    node_id: node_id.clone(),
                    spool_dir: spool_dir.clone(),
                    spool_max_bytes: config.click_spool_max_bytes,
                },
                stats.clone(),
                click_rx,
                recycle_tx,
            )
            .with_context(|| format!("cannot open the click spool {}", spool_dir.display()))?;
            Some(handle)
        }
        _ => None,
    };

    let (events, event_rx) = mpsc::channel::<Event>();
    let (started_tx, started_rx) = mpsc::channel();
    for (id, (&cpu, commands)) in cpus.iter().zip(receivers).enumerate() {
        let events = events.clone();
        let started = started_tx.clone();
        let metrics = shared.metrics[id].clone();
        let clicks = publisher.as_ref().map(|_| {
            crate::clicks::ClickBuffer::new(
                &node_id,
                prefix,
                id,
                config.click_batch_events,
                config.click_batch_age_ms,
                click_tx.clone(),
                recycle_rx.clone(),
                metrics.clone(),
            )
        });
        let handle = backend::spawn(
            id,
            cpu,
            config.clone(),
            backend,
            listen,
            tls_listen.zip(tls_config.clone()),
            commands,
            metrics,
            snapshot.clone(),
            clicks,
            geoip.clone(),
            started,
        )?;
        // Tell the main thread when the core's thread ends, however it ends.
        std::thread::Builder::new()
            .name(format!("engine-watch-{id}"))
            .spawn(move || {
                if handle.join().is_err() {
                    tracing::error!(core = id, "core thread panicked");
                }
                let _ = events.send(Event::CoreExited(id));
            })?;
    }
    drop(started_tx);
    drop(snapshot);
    // Only the cores hold click senders now: when they are gone, the
    // publisher drains and ends.
    drop(click_tx);
    let mut failures = Vec::new();
    for _ in 0..cpus.len() {
        match started_rx.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => failures.push(error.to_string()),
            Err(_) => {
                failures.push("a core exited during start-up".to_owned());
                break;
            }
        }
    }
    if !failures.is_empty() {
        shared.shutdown();
        bail!("{}", failures.join("\n"));
    }
    drop(probe);
    drop(tls_probe);

    let (stop_tx, stop_rx) = mpsc::channel();
    let admin = control::spawn(shared.clone(), stop_tx)?;
    {
        let events = events.clone();
        std::thread::spawn(move || {
            if stop_rx.recv().is_ok() {
                let _ = events.send(Event::Stop);
            }
        });
    }
    let mut ready = serde_json::Map::new();
    ready.insert("listen".into(), listen.to_string().into());
    ready.insert("admin".into(), admin.to_string().into());
    if let Some(tls_listen) = tls_listen {
        ready.insert("tls_listen".into(), tls_listen.to_string().into());
    }
    ready.insert("cores".into(), cpus.len().into());
    ready.insert("io".into(), backend.name().into());
    servicekit::ready::announce(ready);
    tracing::info!(%listen, ?tls_listen, %admin, cores = cpus.len(), io = backend.name(), "engine ready");

    let mut running = cpus.len();
    let mut stopping = false;
    while running > 0 {
        match event_rx.recv() {
            Ok(Event::Stop) if !stopping => {
                stopping = true;
                // A bound on the whole drain, whatever a core does.
                let grace = config.shutdown_grace() + Duration::from_secs(1);
                std::thread::spawn(move || {
                    std::thread::sleep(grace);
                    tracing::warn!("cores did not stop in time; exiting anyway");
                    std::process::exit(0);
                });
            }
            Ok(Event::Stop) => {}
            Ok(Event::CoreExited(id)) => {
                running -= 1;
                if !stopping {
                    shared.shutdown();
                    bail!("core {id} stopped unexpectedly");
                }
            }
            Err(_) => break,
        }
    }
    tracing::info!("all cores stopped");
    if let Some(publisher) = publisher {
        // The cores flushed their batches; give the publisher a moment to
        // send or spool them (the process-wide deadline still applies).
        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = publisher.join();
            let _ = done_tx.send(());
        });
        if done_rx.recv_timeout(Duration::from_secs(3)).is_err() {
            tracing::warn!("click publisher did not finish in time");
        }
    }
    Ok(())
}

/// Binds (without listening) to learn the port when it is 0, and to fail
/// early with a clear message when the address is unusable.
fn reserve(addr: SocketAddr) -> anyhow::Result<Socket> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_port(true)?;
    socket.set_reuse_address(true)?;
    socket
        .bind(&addr.into())
        .with_context(|| format!("cannot bind {addr}"))?;
    Ok(socket)
}

/// The first `cores` CPUs this process may run on (all when `None`).
fn pick_cpus(cores: Option<usize>) -> anyhow::Result<Vec<usize>> {
    let allowed = allowed_cpus()?;
    match cores {
        None => Ok(allowed),
        Some(n) if n <= allowed.len() => Ok(allowed[..n].to_vec()),
        Some(n) => bail!(
            "--cores {n}: only {} CPUs are available to this process ({:?})",
            allowed.len(),
            allowed
        ),
    }
}

fn allowed_cpus() -> anyhow::Result<Vec<usize>> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity fills it for the
    // calling thread and we pass its exact size.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
        }
        set
    };
    // SAFETY: CPU_ISSET only reads the set, for indices below CPU_SETSIZE.
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect();
    if cpus.is_empty() {
        bail!("no CPU available to this process");
    }
    Ok(cpus)
}
