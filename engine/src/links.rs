//! Consuming the `LINKS` change stream and fanning each change out to every
//! core.
//!
//! The stream is control's: the engine never creates it and uses it only
//! with limits ([`crate::streams`]); until it exists (or has limits) the
//! engine looks again every second, serving what it has.
//!
//! An ordered push consumer (ephemeral, no acks: the engine's position is the
//! change sequence it has, not anything the server stores) starts at the
//! first stream message newer than what the engine already has, found by a
//! binary search over stream sequences (a dozen `STREAM.MSG.GET` round trips
//! for a million messages). When the search cannot be done (a message in the
//! middle was deleted, or is not a signed change), it falls back to
//! delivering the whole stream and skipping what is covered, which costs one
//! decode per old message.
//!
//! Every change must carry a valid signature by a trusted key
//! (`snapshots::signing`, `links_verify_keys`): anyone who can publish on the
//! subject (a misconfigured account, a leaked credential) could otherwise
//! redirect any code on every engine. Unsigned, wrongly signed or
//! unknown-key changes are skipped, logged and counted
//! (`engine_deltas_refused_total{reason}`). Only with no key and
//! `allow_unsigned_links` (development) is the check off.
//!
//! NATS down at start or later: the engine keeps serving what it has and
//! reconnects with capped exponential backoff, resuming after the last
//! change it applied.

use crate::core::state::DeltaRecord;
use crate::shared::Shared;
use crate::streams::{self, StreamState};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use servicekit::nats::NatsSettings;
use snapshots::delta::LinkDelta;
use snapshots::signing::{DeltaVerifier, SIGNATURE_HEADER, SignatureError};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often a missing or unlimited stream is looked at again.
const STREAM_RECHECK: Duration = Duration::from_secs(1);

/// Runs forever on the control runtime. `verifier`: the trusted keys, or
/// `None` when unsigned changes are allowed.
pub async fn run(shared: Arc<Shared>, nats: NatsSettings, verifier: Option<DeltaVerifier>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match consume(&shared, &nats, verifier.as_ref(), &mut backoff).await {
            Ok(()) => tracing::warn!("change stream ended; reconnecting"),
            Err(e) => tracing::warn!(error = %e, retry_in = ?backoff, "change stream unavailable"),
        }
        shared.nats_connected.store(false, Relaxed);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Checks a change's signature; an error (counted by reason) means it is
/// skipped.
fn verified(
    shared: &Shared,
    verifier: Option<&DeltaVerifier>,
    payload: &[u8],
    headers: Option<&HeaderMap>,
) -> Result<(), SignatureError> {
    let Some(verifier) = verifier else {
        return Ok(());
    };
    let header = headers
        .and_then(|h| h.get(SIGNATURE_HEADER))
        .map(|v| v.as_str());
    verifier
        .verify(payload, header)
        .map(|_| ())
        .inspect_err(|e| {
            shared.deltas_refused.record(e);
        })
}

async fn consume(
    shared: &Shared,
    nats: &NatsSettings,
    verifier: Option<&DeltaVerifier>,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let config = &shared.config;
    let client = nats.connect("engine links", |options| options).await?;
    let js = jetstream::new(client.clone());
    let mut stream = loop {
        let found = streams::look_up(&js, &config.links_stream).await;
        let state = found.as_ref().err().copied().unwrap_or(StreamState::Ok);
        shared.links_stream.set(&config.links_stream, state);
        match found {
            Ok(stream) => break stream,
            Err(StreamState::Unreachable) => {
                anyhow::bail!("cannot look up stream {}", config.links_stream)
            }
            // Missing or without limits: its owner may fix that; look again.
            Err(_) => tokio::time::sleep(STREAM_RECHECK).await,
        }
    };
    let last = last_change(&mut stream, verifier).await;
    shared.links_stream_last_seq.store(last, Relaxed);
    let known = shared.known_seq();
    let start = start_sequence(&mut stream, known, verifier).await;
    tracing::info!(stream = %config.links_stream, known, last, start_stream_seq = ?start, "consuming link changes");
    let consumer = stream
        .create_consumer(consumer::push::OrderedConfig {
            deliver_subject: client.new_inbox(),
            filter_subject: config.links_subject.clone(),
            deliver_policy: match start {
                Some(start_sequence) => consumer::DeliverPolicy::ByStartSequence { start_sequence },
                None => consumer::DeliverPolicy::All,
            },
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    shared.nats_connected.store(true, Relaxed);
    *backoff = Duration::from_millis(100);
    while let Some(message) = messages.next().await {
        let message = message?;
        if let Ok(info) = message.info() {
            shared.delta_lag.store(info.pending, Relaxed);
        }
        shared.deltas_received.fetch_add(1, Relaxed);
        if let Err(e) = verified(shared, verifier, &message.payload, message.headers.as_ref()) {
            tracing::error!(error = %e, subject = %message.subject, "skipping a link change whose signature is not accepted");
            continue;
        }
        match LinkDelta::decode(&message.payload) {
            Ok(delta) => {
                shared.delta_received_seq.fetch_max(delta.seq, Relaxed);
                shared.links_stream_last_seq.fetch_max(delta.seq, Relaxed);
                // Redelivered or covered changes are skipped here once
                // rather than on every core.
                if delta.seq > shared.known_seq() {
                    shared.broadcast_delta(DeltaRecord::from(delta));
                }
            }
            Err(e) => {
                shared.deltas_invalid.fetch_add(1, Relaxed);
                tracing::error!(error = %e, subject = %message.subject, "skipping an invalid link change");
            }
        }
    }
    Ok(())
}

/// The change sequence of a stream message, if it is a signed change.
async fn change_seq(
    stream: &mut stream::Stream,
    stream_seq: u64,
    verifier: Option<&DeltaVerifier>,
) -> Option<u64> {
    let message = stream.get_raw_message(stream_seq).await.ok()?;
    if let Some(verifier) = verifier {
        let header = message.headers.get(SIGNATURE_HEADER).map(|v| v.as_str());
        verifier.verify(&message.payload, header).ok()?;
    }
    Some(LinkDelta::decode(&message.payload).ok()?.seq)
}

/// The change sequence of the stream's last message when it is a signed
/// change (0 otherwise): how far a pushed snapshot may plausibly be ahead.
async fn last_change(stream: &mut stream::Stream, verifier: Option<&DeltaVerifier>) -> u64 {
    let Ok(info) = stream.info().await else {
        return 0;
    };
    if info.state.messages == 0 {
        return 0;
    }
    let last = info.state.last_sequence;
    change_seq(stream, last, verifier).await.unwrap_or(0)
}

/// The stream sequence of the first change newer than `known`, or `None` to
/// deliver everything.
async fn start_sequence(
    stream: &mut stream::Stream,
    known: u64,
    verifier: Option<&DeltaVerifier>,
) -> Option<u64> {
    if known == 0 {
        return None;
    }
    let state = stream.info().await.ok()?.state.clone();
    if state.messages == 0 {
        return Some(state.last_sequence + 1);
    }
    let (mut lo, mut hi) = (state.first_sequence, state.last_sequence + 1);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        // A forged message must not steer the search past real changes.
        let seq = change_seq(stream, mid, verifier).await?;
        if seq > known {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(lo)
}
