//! Unique JetStream stream names and subjects per test.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, ErrorCode, context::GetStreamErrorKind, stream};

use crate::{cleanup, env_or, keep_resources, unique_name};

const DEFAULT_URL: &str = "nats://127.0.0.1:4222";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// The NATS server tests use: `TEST_NATS_URL`, or `nats://127.0.0.1:4222`.
pub fn nats_url() -> String {
    env_or("TEST_NATS_URL", DEFAULT_URL)
}

pub(crate) async fn connect(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .connection_timeout(CONNECT_TIMEOUT)
        .connect(url)
        .await
        .with_context(|| {
            format!("connecting to NATS at {url} (TEST_NATS_URL); is it up? run deploy/services.sh")
        })
}

/// A test's own corner of the shared NATS server: stream names and subjects nobody else
/// uses, and the streams deleted again when the scope is dropped.
///
/// The server here is Debian's nats-server 2.9.10: with async-nats 0.51 there are no KV
/// buckets, and consumer `filter_subjects` (plural) is silently ignored; use a single
/// `filter_subject`.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// let scope = testkit::JetStreamScope::connect().await?;
/// let stream = scope
///     .create_stream(async_nats::jetstream::stream::Config {
///         name: scope.stream_name("LINKS"),
///         subjects: vec![scope.subject("links.>")],
///         ..Default::default()
///     })
///     .await?;
/// scope.jetstream().publish(scope.subject("links.1"), "x".into()).await?.await?;
/// # drop(stream);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct JetStreamScope {
    url: String,
    token: String,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    streams: Mutex<BTreeSet<String>>,
    dropped: bool,
}

impl JetStreamScope {
    /// Connects to [`nats_url`] with a fresh token `tk_...`.
    pub async fn connect() -> anyhow::Result<Self> {
        Self::connect_with_prefix("tk").await
    }

    /// Connects with a fresh token [`unique_name(prefix)`](unique_name).
    pub async fn connect_with_prefix(prefix: &str) -> anyhow::Result<Self> {
        let url = nats_url();
        let client = connect(&url).await?;
        let token = unique_name(prefix);
        if keep_resources() {
            eprintln!("testkit: TESTKIT_KEEP is set, keeping JetStream streams *_{token}");
        }
        Ok(Self {
            url,
            jetstream: jetstream::new(client.clone()),
            client,
            token,
            streams: Mutex::new(BTreeSet::new()),
            dropped: false,
        })
    }

    /// The server URL, for the code under test to connect to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The scope's unique token (also the first subject token of [`subject`](Self::subject)).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// A connected client (the scope's own).
    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// A JetStream context on the scope's client.
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.jetstream
    }

    /// `{token}.{suffix}`: a subject (or, with wildcards, a filter) under the scope's
    /// prefix, e.g. `subject("clicks.>")`.
    pub fn subject(&self, suffix: &str) -> String {
        if suffix.is_empty() {
            self.token.clone()
        } else {
            format!("{}.{suffix}", self.token)
        }
    }

    /// `{base}_{token}`, e.g. `LINKS_tk_4242_0_k3j...`: the same name for the same base
    /// within the scope. The stream is deleted when the scope is dropped, whoever creates
    /// it (the test or the code under test). Characters not allowed in a stream name
    /// (whitespace, `.`, `*`, `>`, `/`, `\`) become `_`.
    pub fn stream_name(&self, base: &str) -> String {
        let name = format!("{}_{}", sanitize_stream_base(base), self.token);
        self.register(&name);
        name
    }

    /// Creates (or, if it exists with the same config, gets) a stream and registers its
    /// name for deletion on drop, whatever the name is.
    pub async fn create_stream(
        &self,
        config: stream::Config,
    ) -> anyhow::Result<stream::Stream<stream::Info>> {
        let name = config.name.clone();
        self.register(&name);
        self.jetstream
            .create_stream(config)
            .await
            .with_context(|| format!("creating JetStream stream {name}"))
    }

    /// Registers a stream created some other way for deletion on drop.
    pub fn register(&self, stream: &str) {
        if let Ok(mut streams) = self.streams.lock() {
            streams.insert(stream.to_owned());
        }
    }

    /// The streams that will be deleted on drop (named or created through the scope).
    pub fn streams(&self) -> Vec<String> {
        self.streams
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Deletes the streams now and reports failure, instead of warning from `Drop`.
    pub async fn cleanup(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        if keep_resources() {
            return Ok(());
        }
        delete_streams(&self.jetstream, &self.streams()).await
    }
}

impl Drop for JetStreamScope {
    fn drop(&mut self) {
        if self.dropped || keep_resources() {
            return;
        }
        self.dropped = true;
        let streams = self.streams();
        if streams.is_empty() {
            return;
        }
        let url = self.url.clone();
        let what = format!("JetStream streams {}", streams.join(", "));
        cleanup::run_blocking(&what, move || async move {
            // A new connection: the scope's client runs on the test's runtime.
            let client = connect(&url).await?;
            let result = delete_streams(&jetstream::new(client.clone()), &streams).await;
            client.drain().await.ok();
            result
        });
    }
}

/// Deletes each stream; one that does not exist (named but never created) is fine.
async fn delete_streams(js: &jetstream::Context, streams: &[String]) -> anyhow::Result<()> {
    let mut failures = Vec::new();
    for name in streams {
        match js.delete_stream(name).await {
            Ok(_) => {}
            Err(e) if is_stream_not_found(e.kind()) => {}
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        anyhow::bail!("deleting streams failed: {}", failures.join("; "))
    }
}

fn is_stream_not_found(kind: GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(e) if e.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

/// Replaces the characters a stream name may not contain with `_`.
fn sanitize_stream_base(base: &str) -> String {
    base.chars()
        .map(|c| match c {
            '.' | '*' | '>' | '/' | '\\' => '_',
            c if c.is_whitespace() || c.is_control() => '_',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn stream_bases_are_sanitized() {
        assert_eq!(super::sanitize_stream_base("LINKS"), "LINKS");
        assert_eq!(
            super::sanitize_stream_base("a.b*c>d e/f\\g"),
            "a_b_c_d_e_f_g"
        );
    }
}
