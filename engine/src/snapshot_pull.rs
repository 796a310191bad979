//! Pulling snapshots from control (`pull_snapshot`): the engine asks, so
//! control serves a hundred engines with conditional requests instead of
//! pushing a file to each.
//!
//! Every `pull_interval_ms` (with ±20% jitter, so engines started together
//! do not ask together) the engine sends `GET pull_snapshot` with its
//! admin token, `If-None-Match` naming the file it last installed from
//! control, and `?have=S` with the change sequence it serves when it follows
//! the change stream (so control can answer `304` when the changes since S
//! are cheaper to take from the stream than the file). A `200` streams to a
//! file in the state directory (memory stays flat), which is then checked
//! and installed exactly as a pushed one is ([`loader::install_pushed`]: the
//! whole file checked, the sequence-lead guard, kept as a generation). A
//! download cut short is resumed with `Range` + `If-Range` on the next
//! round, when control still offers the same file.
//!
//! Failures (control unreachable, a refused file, a broken transfer) double
//! the delay up to [`MAX_BACKOFF`]; a success resets it. A pull and a push
//! never run at once: both take the engine's one upload slot.

use crate::loader::{self, LoadError};
use crate::shared::Shared;
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, ETAG, IF_NONE_MATCH, IF_RANGE, RANGE};
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::{AcqRel, Relaxed, Release};
use std::time::Duration;

/// The longest wait between pulls after failures.
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// What one round did.
#[derive(Debug, PartialEq, Eq)]
pub enum Pulled {
    /// Control had nothing newer worth taking (`304`).
    NotModified,
    /// A file was installed: its sequence and link count.
    Installed { sequence: u64, links: u64 },
    /// A push was being installed; try again next round.
    Busy,
}

/// A download that broke off: the bytes so far and the file they are of.
struct Partial {
    file: tempfile::NamedTempFile,
    etag: String,
    len: u64,
}

/// The puller's memory between rounds.
#[derive(Default)]
pub struct Puller {
    /// The `ETag` of the file last installed from control.
    installed: Option<String>,
    partial: Option<Partial>,
}

/// Runs forever on the control runtime.
pub async fn run(shared: Arc<Shared>, url: String) {
    let client = match reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .build()
    {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(error = %e, "snapshot pulls are off: no HTTP client");
            return;
        }
    };
    let every = Duration::from_millis(shared.config.pull_interval_ms);
    let mut puller = Puller::default();
    let mut delay = Duration::ZERO;
    loop {
        tokio::time::sleep(jitter(delay)).await;
        match puller.pull_once(&shared, &client, &url).await {
            Ok(pulled) => {
                if let Pulled::Installed { sequence, links } = pulled {
                    tracing::info!(sequence, links, "pulled snapshot installed");
                }
                delay = every;
            }
            Err(e) => {
                shared.snapshot_pull_errors.fetch_add(1, Relaxed);
                delay = (delay * 2).clamp(every, MAX_BACKOFF);
                tracing::warn!(error = format!("{e:#}"), retry_in = ?delay, "snapshot pull failed");
            }
        }
    }
}

/// `d` ± 20%, from the clock's low bits (no generator needed for this).
fn jitter(d: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |t| t.subsec_nanos());
    let permille = 800 + u64::from(nanos % 401);
    d * permille as u32 / 1000
}

impl Puller {
    /// One conditional request, and the download and install it leads to.
    pub async fn pull_once(
        &mut self,
        shared: &Arc<Shared>,
        client: &reqwest::Client,
        url: &str,
    ) -> anyhow::Result<Pulled> {
        let token = shared
            .config
            .admin_token
            .as_deref()
            .expect("validated: pull_snapshot needs admin_token");
        let readiness = crate::admin::readiness(shared);
        let target = match readiness.served_sequence() {
            Some(have) if readiness.nats_connected => {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}have={have}")
            }
            _ => url.to_owned(),
        };
        let mut request = client
            .get(&target)
            .header(AUTHORIZATION, format!("Bearer {token}"));
        if let Some(etag) = &self.installed {
            request = request.header(IF_NONE_MATCH, etag);
        }
        if let Some(partial) = &self.partial {
            request = request
                .header(RANGE, format!("bytes={}-", partial.len))
                .header(IF_RANGE, &partial.etag);
        }
        let mut response = request.send().await?;
        let status = response.status();
        if status == StatusCode::NOT_MODIFIED {
            return Ok(Pulled::NotModified);
        }
        if status != StatusCode::OK && status != StatusCode::PARTIAL_CONTENT {
            let text = response.text().await.unwrap_or_default();
            anyhow::bail!("{url} answered {status}: {}", text.trim());
        }
        let etag = response
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| anyhow::anyhow!("{url} sent a snapshot without an ETag"))?;
        if shared
            .upload_busy
            .compare_exchange(false, true, AcqRel, Relaxed)
            .is_err()
        {
            return Ok(Pulled::Busy);
        }
        let result = self.download(shared, &mut response, status, etag).await;
        shared.upload_busy.store(false, Release);
        result
    }

    async fn download(
        &mut self,
        shared: &Arc<Shared>,
        response: &mut reqwest::Response,
        status: StatusCode,
        etag: String,
    ) -> anyhow::Result<Pulled> {
        let mut partial = match self.partial.take() {
            Some(p) if status == StatusCode::PARTIAL_CONTENT && p.etag == etag => p,
            _ => Partial {
                // Mode 0600 in the state directory, removed on drop.
                file: tempfile::Builder::new()
                    .prefix(loader::UPLOAD_PREFIX)
                    .suffix(".tmp")
                    .tempfile_in(shared.state.snapshots())?,
                etag: etag.clone(),
                len: 0,
            },
        };
        let max = shared.config.max_snapshot_bytes;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    partial.len += chunk.len() as u64;
                    if partial.len > max {
                        anyhow::bail!("the snapshot is larger than max_snapshot_bytes ({max})");
                    }
                    partial.file.write_all(&chunk)?;
                }
                Ok(None) => break,
                Err(e) => {
                    // Keep what arrived: the next round asks for the rest.
                    let got = partial.len;
                    self.partial = Some(partial);
                    return Err(anyhow::anyhow!(
                        "the download broke off after {got} bytes: {e}"
                    ));
                }
            }
        }
        partial.file.as_file().sync_all()?;
        let worker = shared.clone();
        let installed = tokio::task::spawn_blocking(move || {
            loader::install_pushed(&worker, partial.file, false)
        })
        .await?;
        match installed {
            Ok((sequence, links)) => {
                self.installed = Some(etag);
                shared.snapshot_pulls.fetch_add(1, Relaxed);
                Ok(Pulled::Installed { sequence, links })
            }
            Err(LoadError::Stale { .. }) => {
                // Pushed or caught up past it meanwhile: nothing to take,
                // and no reason to fetch the same file again.
                self.installed = Some(etag);
                Ok(Pulled::NotModified)
            }
            Err(e @ (LoadError::Invalid(_) | LoadError::Implausible { .. })) => {
                Err(anyhow::anyhow!("pulled snapshot refused: {e}"))
            }
            Err(e) => Err(e.into()),
        }
    }
}
