//! Rows as they travel to ClickHouse (RowBinary, column order = field order
//! = the `INSERT` column list). The tables themselves are in [`crate::schema`].

use clickhouse::Row;
use serde::{Deserialize, Serialize};

/// One enriched click: a row of `clicks`.
#[derive(Debug, Clone, PartialEq, Eq, Row, Serialize, Deserialize)]
pub struct ClickRow {
    /// The engine's event id; the deduplication key.
    pub event_id: [u8; 16],
    /// `DateTime`: Unix seconds (ClickHouse 18.16 has no DateTime64).
    pub ts: u32,
    /// Unix milliseconds, for ordering within a second.
    pub ts_ms: u64,
    /// The batch the event came in (its JetStream message id, in hex).
    pub batch_id: [u8; 16],
    pub node: String,
    pub code: String,
    pub status: u16,
    pub host: String,
    /// The domain the link was served under (normalised name; empty for
    /// the unnamed default domain and version-1 batches).
    pub domain: String,
    /// `81.2.69.0/24` or `2001:db8:1::/48`; never the full address.
    pub ip_prefix: String,
    pub country: String,
    pub city: String,
    pub device: String,
    pub browser: String,
    pub os: String,
    pub referrer_host: String,
    pub accept_language: String,
    /// The preferred language's primary subtag (`en`, `pt`...), empty if none.
    pub language: String,
    /// Not a person (crawler, script, link preview): `is_bot = 0` is people.
    pub is_bot: u8,
    /// A link-preview fetcher (chat and social apps); `is_bot` is 1 too.
    pub is_preview: u8,
    pub visitor_hash: u64,
    /// The organisation owning the link (click batch version 3; 0 before).
    pub org_id: u64,
    /// The redirect rule or A/B variant that served the visit; 0: the
    /// link's own target.
    pub rule: u16,
}

/// A batch that could not be decoded, kept with its error for a person to look at.
#[derive(Debug, Clone, Row, Serialize)]
pub struct ParkedRow {
    /// `DateTime`, Unix seconds.
    pub parked_at: u32,
    pub stream: String,
    pub stream_seq: u64,
    pub subject: String,
    /// The `Nats-Msg-Id` header, if any.
    pub msg_id: String,
    pub error: String,
    /// The message body, byte for byte (a `String` column holds any bytes).
    #[serde(serialize_with = "as_bytes")]
    pub payload: Vec<u8>,
}

/// Serializes a byte vector as one `String` value rather than an array.
fn as_bytes<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bytes(bytes)
}

/// An event or batch id read back for deduplication.
#[derive(Debug, Row, Deserialize)]
pub struct IdRow {
    pub id: [u8; 16],
}
