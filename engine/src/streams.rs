//! The JetStream streams the engine uses but does not own.
//!
//! Control owns `LINKS` and analytics owns `CLICKS`: each creates its stream
//! with explicit limits and is the one place those settings are decided. The
//! engine only looks them up (`STREAM.INFO`, which its NATS role may do) and
//! never creates either: a stream created by whichever process came first,
//! with that process's defaults, is how a stream ended up without limits.
//!
//! What the engine does with a stream depends on what it finds
//! ([`StreamState`]): a missing stream is waited for (retrying, logged once,
//! `/readyz` and `/metrics` say so), and a stream without any limit (no
//! `max_age`, no `max_bytes`, no `max_msgs`: it would grow until the disk is
//! full, holding every click's address forever) is refused the same way,
//! counted, until its owner gives it limits. Meanwhile changes are not
//! consumed and clicks are spooled.

use async_nats::jetstream::stream;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering::Relaxed};

/// What the engine last found when it looked for a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamState {
    /// Not looked up yet (or no NATS configured).
    Unknown = 0,
    /// Found, with limits: in use.
    Ok = 1,
    /// The stream does not exist (yet): waiting for its owner to create it.
    Missing = 2,
    /// It exists without any limit: refused until its owner sets some.
    NoLimits = 3,
    /// NATS could not be asked.
    Unreachable = 4,
}

impl StreamState {
    pub const ALL: [StreamState; 5] = [
        StreamState::Unknown,
        StreamState::Ok,
        StreamState::Missing,
        StreamState::NoLimits,
        StreamState::Unreachable,
    ];

    /// The name in `/readyz` and in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            StreamState::Unknown => "unknown",
            StreamState::Ok => "ok",
            StreamState::Missing => "missing",
            StreamState::NoLimits => "no_limits",
            StreamState::Unreachable => "unreachable",
        }
    }

    fn from_u8(value: u8) -> StreamState {
        StreamState::ALL
            .into_iter()
            .find(|s| *s as u8 == value)
            .unwrap_or(StreamState::Unknown)
    }
}

/// One stream's state as its user (the change consumer, the click
/// publisher) last found it; read by the admin port.
#[derive(Debug, Default)]
pub struct StreamWatch {
    state: AtomicU8,
    /// Look-ups that found the stream without limits.
    pub refused_no_limits: AtomicU64,
}

impl StreamWatch {
    pub fn state(&self) -> StreamState {
        StreamState::from_u8(self.state.load(Relaxed))
    }

    /// Records what was found; logs only when it changed, so a stream
    /// waited for every second is said once, not every second.
    pub fn set(&self, stream: &str, state: StreamState) {
        if state == StreamState::NoLimits {
            self.refused_no_limits.fetch_add(1, Relaxed);
        }
        let before = StreamState::from_u8(self.state.swap(state as u8, Relaxed));
        if before == state {
            return;
        }
        match state {
            StreamState::Ok => tracing::info!(stream, "stream found, with limits"),
            StreamState::Missing => tracing::warn!(
                stream,
                "stream does not exist; waiting for its owner to create it (control owns LINKS, analytics owns CLICKS)"
            ),
            StreamState::NoLimits => tracing::error!(
                stream,
                "stream has no limits (max_age 0, max_bytes -1, max_msgs -1); refusing it until its owner sets some"
            ),
            StreamState::Unreachable | StreamState::Unknown => {}
        }
    }
}

/// Whether a stream's settings bound what it keeps at all.
pub fn has_limits(config: &stream::Config) -> bool {
    !(config.max_age.is_zero() && config.max_bytes < 0 && config.max_messages < 0)
}

/// Looks `name` up and classifies it; the stream handle when it is usable.
pub async fn look_up(
    js: &async_nats::jetstream::Context,
    name: &str,
) -> Result<stream::Stream, StreamState> {
    use async_nats::jetstream::ErrorCode;
    use async_nats::jetstream::context::GetStreamErrorKind;
    match js.get_stream(name).await {
        Ok(stream) if has_limits(&stream.cached_info().config) => Ok(stream),
        Ok(_) => Err(StreamState::NoLimits),
        Err(e) => match e.kind() {
            GetStreamErrorKind::JetStream(error)
                if error.error_code() == ErrorCode::STREAM_NOT_FOUND =>
            {
                Err(StreamState::Missing)
            }
            _ => {
                tracing::debug!(stream = name, error = %e, "stream look-up failed");
                Err(StreamState::Unreachable)
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn limits_are_any_of_age_bytes_or_messages() {
        let unlimited = stream::Config {
            max_bytes: -1,
            max_messages: -1,
            ..Default::default()
        };
        assert!(!has_limits(&unlimited));
        for limited in [
            stream::Config {
                max_age: Duration::from_secs(3600),
                ..unlimited.clone()
            },
            stream::Config {
                max_bytes: 1 << 30,
                ..unlimited.clone()
            },
            stream::Config {
                max_messages: 1000,
                ..unlimited.clone()
            },
        ] {
            assert!(has_limits(&limited), "{limited:?}");
        }
        let watch = StreamWatch::default();
        assert_eq!(watch.state(), StreamState::Unknown);
        watch.set("X", StreamState::NoLimits);
        watch.set("X", StreamState::NoLimits);
        assert_eq!(watch.state(), StreamState::NoLimits);
        assert_eq!(watch.refused_no_limits.load(Relaxed), 2);
    }
}
