//! The JetStream side: the click stream the sidecar owns, the durable pull
//! consumer it reads, the consumer-lag watcher.
//!
//! The sidecar is the one owner of the `CLICKS` stream's settings: it creates
//! the stream with explicit limits (max age, max bytes, file storage, the
//! duplicate window), because batches hold full client addresses and must
//! not be kept for ever. A stream that already exists with other settings —
//! typically one created by someone else without limits (`max_age` 0,
//! `max_bytes` -1) — is refused with the differences spelled out, unless
//! `adopt_stream` says to update it to the sidecar's settings.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::{CreateStreamErrorKind, GetStreamErrorKind},
    stream::{self, DiscardPolicy, RetentionPolicy, StorageType},
};
use thiserror::Error;

use crate::config::{Config, DUPLICATE_WINDOW};
use crate::metrics::Metrics;

/// Why the click stream or consumer is not there.
#[derive(Debug, Error)]
pub enum StreamError {
    /// NATS did not answer or failed a request: retried with backoff.
    #[error("{0}")]
    Unavailable(String),
    /// The stream exists with settings the sidecar did not give it.
    #[error(
        "stream {name} exists with settings other than this sidecar's: {differences}; \
         refusing to start. Start with --adopt-stream (adopt_stream = true) to update \
         the stream to these settings, or change the sidecar's clicks_* settings to match"
    )]
    Differs { name: String, differences: String },
    /// JetStream refused to create or update the stream (for example a
    /// storage change, or more `max_bytes` than the server can reserve).
    #[error("JetStream refused to {action} stream {name}: {reason}")]
    Refused {
        action: &'static str,
        name: String,
        reason: String,
    },
}

impl StreamError {
    /// Whether trying again later can help.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StreamError::Unavailable(_))
    }
}

/// Connects to NATS, retrying in the background if it is down at start.
pub async fn connect(
    config: &Config,
) -> Result<async_nats::Client, servicekit::nats::ConnectError> {
    config
        .nats_settings()
        .connect("analytics", |options| options.retry_on_initial_connect())
        .await
}

/// The click stream's configuration, as the sidecar creates it.
pub fn stream_config(config: &Config) -> stream::Config {
    stream::Config {
        name: config.stream.clone(),
        description: Some("click batches from the engines; owned by the analytics sidecar".into()),
        subjects: vec![config.subjects.clone()],
        storage: StorageType::File,
        retention: RetentionPolicy::Limits,
        duplicate_window: DUPLICATE_WINDOW,
        max_age: config.clicks_max_age(),
        max_bytes: config.clicks_max_bytes,
        discard: DiscardPolicy::Old,
        num_replicas: config.clicks_replicas,
        ..Default::default()
    }
}

/// How `have` (an existing stream's configuration) differs from `want` in
/// the settings the sidecar owns; empty when it does not.
pub fn differences(want: &stream::Config, have: &stream::Config) -> Vec<String> {
    let mut out = Vec::new();
    if have.max_age.is_zero() && have.max_bytes < 0 {
        out.push("it has no limits (max_age 0, max_bytes -1)".to_owned());
    }
    let mut want_subjects = want.subjects.clone();
    let mut have_subjects = have.subjects.clone();
    want_subjects.sort();
    have_subjects.sort();
    if want_subjects != have_subjects {
        out.push(format!(
            "subjects {have_subjects:?}, want {want_subjects:?}"
        ));
    }
    if have.max_age != want.max_age {
        out.push(format!(
            "max_age {}s, want {}s",
            have.max_age.as_secs(),
            want.max_age.as_secs()
        ));
    }
    if have.max_bytes != want.max_bytes {
        out.push(format!(
            "max_bytes {}, want {}",
            have.max_bytes, want.max_bytes
        ));
    }
    if have.duplicate_window != want.duplicate_window {
        out.push(format!(
            "duplicate_window {}s, want {}s",
            have.duplicate_window.as_secs(),
            want.duplicate_window.as_secs()
        ));
    }
    // The server reports a stream created without a count as 1.
    if have.num_replicas.max(1) != want.num_replicas.max(1) {
        out.push(format!(
            "replicas {}, want {}",
            have.num_replicas.max(1),
            want.num_replicas.max(1)
        ));
    }
    if have.storage != want.storage {
        out.push(format!(
            "storage {:?}, want {:?}",
            have.storage, want.storage
        ));
    }
    if have.retention != want.retention {
        out.push(format!(
            "retention {:?}, want {:?}",
            have.retention, want.retention
        ));
    }
    if have.discard != want.discard {
        out.push(format!(
            "discard {:?}, want {:?}",
            have.discard, want.discard
        ));
    }
    out
}

/// Creates the click stream, or checks an existing one against
/// [`stream_config`] and, if it differs, refuses ([`StreamError::Differs`])
/// or, with `adopt_stream`, updates it (keeping its settings the sidecar does
/// not own, such as a description).
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &Config,
) -> Result<stream::Stream, StreamError> {
    let want = stream_config(config);
    let name = config.stream.clone();
    let existing = match js.get_stream(&name).await {
        Ok(stream) => stream,
        Err(e) if matches!(e.kind(), GetStreamErrorKind::JetStream(ref j) if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
        {
            tracing::info!(stream = %name, max_age_secs = want.max_age.as_secs(), max_bytes = want.max_bytes, "creating the click stream");
            return js
                .create_stream(want)
                .await
                .map_err(|e| create_error("create", &name, e));
        }
        Err(e) => {
            return Err(StreamError::Unavailable(format!(
                "getting stream {name}: {e}"
            )));
        }
    };
    let have = existing.cached_info().config.clone();
    let differences = differences(&want, &have);
    if differences.is_empty() {
        return Ok(existing);
    }
    let differences = differences.join("; ");
    if !config.adopt_stream {
        return Err(StreamError::Differs { name, differences });
    }
    tracing::warn!(stream = %name, %differences, "adopting the click stream: updating it to the sidecar's settings");
    let adopted = stream::Config {
        subjects: want.subjects,
        storage: want.storage,
        retention: want.retention,
        duplicate_window: want.duplicate_window,
        max_age: want.max_age,
        max_bytes: want.max_bytes,
        discard: want.discard,
        num_replicas: want.num_replicas,
        ..have
    };
    js.update_stream(&adopted)
        .await
        .map_err(|e| create_error("update", &name, e))?;
    js.get_stream(&name)
        .await
        .map_err(|e| StreamError::Unavailable(format!("getting stream {name}: {e}")))
}

/// JetStream's own refusals are final; anything else (no answer) is retried.
fn create_error(
    action: &'static str,
    name: &str,
    e: jetstream::context::CreateStreamError,
) -> StreamError {
    match e.kind() {
        CreateStreamErrorKind::JetStream(j) => StreamError::Refused {
            action,
            name: name.to_owned(),
            reason: j.to_string(),
        },
        _ => StreamError::Unavailable(format!("trying to {action} stream {name}: {e}")),
    }
}

/// The durable consumer's configuration: explicit acks, every message of the
/// stream, unlimited redeliveries (a batch is parked, never dropped, when it
/// cannot be stored), enough acks outstanding for a group plus the prefetch.
pub fn consumer_config(config: &Config) -> pull::Config {
    pull::Config {
        durable_name: Some(config.consumer.clone()),
        name: Some(config.consumer.clone()),
        description: Some("analytics sidecar: click batches into ClickHouse".into()),
        deliver_policy: DeliverPolicy::All,
        ack_policy: AckPolicy::Explicit,
        ack_wait: config.ack_wait(),
        max_deliver: -1,
        max_ack_pending: (config.max_group_batches as i64 * 4).max(1024),
        ..Default::default()
    }
}

/// Ensures the stream ([`ensure_stream`]), then gets or creates the durable
/// consumer (an existing consumer is used as it is).
pub async fn consumer(
    js: &jetstream::Context,
    config: &Config,
) -> Result<PullConsumer, StreamError> {
    let stream = ensure_stream(js, config).await?;
    stream
        .get_or_create_consumer(&config.consumer, consumer_config(config))
        .await
        .map_err(|e| {
            StreamError::Unavailable(format!(
                "getting or creating consumer {}: {e}",
                config.consumer
            ))
        })
}

/// Polls the consumer's info once a second and publishes the lag as metrics.
/// Runs until dropped; errors (NATS down) just skip a sample.
pub async fn watch_lag(js: jetstream::Context, config: Config, metrics: Arc<Metrics>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut consumer: Option<PullConsumer> = None;
    loop {
        tick.tick().await;
        if consumer.is_none() {
            consumer = js
                .get_consumer_from_stream(&config.consumer, &config.stream)
                .await
                .ok();
        }
        let Some(c) = &consumer else { continue };
        match c.get_info().await {
            Ok(info) => {
                metrics.consumer_pending.store(info.num_pending, Relaxed);
                metrics
                    .consumer_ack_pending
                    .store(info.num_ack_pending as u64, Relaxed);
            }
            Err(_) => consumer = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_created_stream_has_limits_and_matches_itself() {
        let c = Config::default();
        let want = stream_config(&c);
        assert_eq!(want.max_age, Duration::from_secs(72 * 3600));
        assert_eq!(want.max_bytes, 1 << 30);
        assert_eq!(want.storage, StorageType::File);
        assert_eq!(want.duplicate_window, DUPLICATE_WINDOW);
        assert!(differences(&want, &want).is_empty());
    }

    #[test]
    fn a_stream_without_limits_or_with_other_settings_differs() {
        let want = stream_config(&Config::default());
        let unlimited = stream::Config {
            max_age: Duration::ZERO,
            max_bytes: -1,
            ..want.clone()
        };
        let d = differences(&want, &unlimited);
        assert_eq!(d[0], "it has no limits (max_age 0, max_bytes -1)");
        assert!(d.contains(&"max_age 0s, want 259200s".to_owned()), "{d:?}");
        assert!(
            d.contains(&"max_bytes -1, want 1073741824".to_owned()),
            "{d:?}"
        );
        let other = stream::Config {
            subjects: vec!["other.>".into()],
            storage: StorageType::Memory,
            ..want.clone()
        };
        let d = differences(&want, &other);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].starts_with("subjects"), "{d:?}");
        assert!(d[1].starts_with("storage Memory"), "{d:?}");
    }
}
