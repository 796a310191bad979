//! How requests use connections: keep-alive or one request per new
//! connection, in plain HTTP or over TLS.
//!
//! The five modes are the five ways issue 13 compares the engine with
//! nginx. Keep-alive modes open each connection once and send every request
//! on it; the new-connection modes open a connection for each request, send
//! it with `Connection: close`, and drop the connection once the response
//! is in, so the server pays accept, (handshake,) request and close every
//! time. `tls-full` offers no ticket, so every handshake is a full one;
//! `tls-resume` keeps the newest ticket of each connection slot and offers
//! it on that slot's next connection (see [`crate::tls`]).

use anyhow::bail;

/// One of `keepalive`, `close`, `tls-keepalive`, `tls-full`, `tls-resume`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum Mode {
    /// Plain HTTP, connections kept open.
    #[default]
    KeepAlive,
    /// Plain HTTP, one request per new connection.
    Close,
    /// TLS, connections kept open (one handshake per connection).
    TlsKeepAlive,
    /// TLS, one request per new connection, a full handshake each.
    TlsFull,
    /// TLS, one request per new connection, each resuming the slot's
    /// previous session with its ticket.
    TlsResume,
}

impl Mode {
    /// Every mode, in the order the harness runs and tabulates them.
    pub const ALL: [Mode; 5] = [
        Mode::KeepAlive,
        Mode::Close,
        Mode::TlsKeepAlive,
        Mode::TlsFull,
        Mode::TlsResume,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mode::KeepAlive => "keepalive",
            Mode::Close => "close",
            Mode::TlsKeepAlive => "tls-keepalive",
            Mode::TlsFull => "tls-full",
            Mode::TlsResume => "tls-resume",
        }
    }

    pub fn tls(self) -> bool {
        matches!(self, Mode::TlsKeepAlive | Mode::TlsFull | Mode::TlsResume)
    }

    /// One request per connection: the request says `Connection: close` and
    /// the client drops the connection after the response.
    pub fn new_connection_per_request(self) -> bool {
        matches!(self, Mode::Close | Mode::TlsFull | Mode::TlsResume)
    }

    /// Connections offer the session ticket of their slot's previous one.
    pub fn resumes(self) -> bool {
        self == Mode::TlsResume
    }
}

impl std::str::FromStr for Mode {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Mode> {
        match Mode::ALL.into_iter().find(|m| m.name() == s) {
            Some(m) => Ok(m),
            None => bail!(
                "mode {s:?}: expected one of keepalive, close, tls-keepalive, tls-full, tls-resume"
            ),
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_properties() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
        }
        assert!("tls".parse::<Mode>().is_err());
        assert!(!Mode::KeepAlive.tls() && !Mode::KeepAlive.new_connection_per_request());
        assert!(!Mode::Close.tls() && Mode::Close.new_connection_per_request());
        assert!(Mode::TlsKeepAlive.tls() && !Mode::TlsKeepAlive.new_connection_per_request());
        assert!(Mode::TlsFull.new_connection_per_request() && !Mode::TlsFull.resumes());
        assert!(Mode::TlsResume.new_connection_per_request() && Mode::TlsResume.resumes());
    }
}
