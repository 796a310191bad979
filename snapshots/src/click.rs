//! The click-event batch: what an engine publishes to the `CLICKS` stream and
//! the analytics sidecar decodes.
//!
//! The engine appends one record per redirect into a buffer it reuses, so the
//! writer never allocates once the buffer has grown to a batch's size. The
//! reader checks the whole batch once and then hands out borrowed views.
//! Layout (little-endian) is drawn in `FORMAT.md`, "Click batches".

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use thiserror::Error;

/// First four bytes of every batch.
pub const CLICK_MAGIC: [u8; 4] = *b"SHCK";
/// The batch format version this crate writes.
pub const CLICK_VERSION: u16 = 3;
/// The oldest batch version this crate reads (version 1: no domain field;
/// its events read with an empty domain; versions 1 and 2: no org and rule,
/// read as 0).
pub const OLDEST_CLICK_VERSION: u16 = 1;
/// Longest node id in bytes.
pub const MAX_NODE_ID_LEN: usize = 64;
/// Fields longer than these are cut (at a byte boundary) when recorded.
pub const MAX_USER_AGENT_LEN: usize = 512;
pub const MAX_REFERRER_LEN: usize = 1024;
pub const MAX_ACCEPT_LANGUAGE_LEN: usize = 128;
pub const MAX_HOST_LEN: usize = 255;
pub const MAX_CODE_LEN: usize = 255;
pub const MAX_DOMAIN_LEN: usize = 255;

/// Header bytes before the node id: magic 4, version 2, flags 2, count 4,
/// batch id 16, node id length 1.
const FIXED_HEADER_LEN: usize = 29;
const COUNT_AT: usize = 8;

/// Bit of a record's flags: the IP is IPv6 (16 bytes), else IPv4 (4 bytes).
const RECORD_IPV6: u8 = 1;

/// One click as captured by an engine. Header fields are raw request bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickEvent<'a> {
    /// Unique across nodes and restarts.
    pub event_id: [u8; 16],
    /// Unix milliseconds.
    pub ts_ms: u64,
    /// HTTP status served (a redirect status, 404, 410...).
    pub status: u16,
    /// The client's address (the peer, or a trusted proxy's forwarded one).
    /// Analytics truncates it before storing anything.
    pub ip: IpAddr,
    pub code: &'a [u8],
    pub user_agent: &'a [u8],
    pub referrer: &'a [u8],
    pub accept_language: &'a [u8],
    pub host: &'a [u8],
    /// The normalised name of the domain the link was served under (empty:
    /// the unnamed default domain, or a version-1 batch).
    pub domain: &'a [u8],
    /// The organisation owning the link (version 3; 0: unknown, a missing
    /// code, or an older batch), so analytics keys every row by org.
    pub org_id: u64,
    /// Which redirect rule or A/B variant served the visit (version 3):
    /// 0 the link's own target (and every older batch), `i + 1` its rule
    /// `i`, `100 + j` its split's variant `j` (`rules::VARIANT_RULE_BASE`).
    pub rule: u16,
}

/// Appends click records to a reusable buffer.
///
/// ```
/// # use snapshots::click::*;
/// # use std::net::{IpAddr, Ipv4Addr};
/// let mut writer = ClickBatchWriter::new("node-1", 64 * 1024);
/// writer.begin([1; 16]);
/// writer.push(&ClickEvent { event_id: [2; 16], ts_ms: 1, status: 301,
///     ip: IpAddr::V4(Ipv4Addr::LOCALHOST), code: b"abc", user_agent: b"curl",
///     referrer: b"", accept_language: b"", host: b"sho.rt", domain: b"sho.rt",
///     org_id: 7, rule: 0 });
/// let batch = ClickBatch::parse(writer.finish()).unwrap();
/// assert_eq!(batch.len(), 1);
/// ```
#[derive(Debug)]
pub struct ClickBatchWriter {
    buf: Vec<u8>,
    node_id: String,
    count: u32,
}

impl ClickBatchWriter {
    /// A writer for `node_id` (cut to [`MAX_NODE_ID_LEN`] bytes) whose buffer
    /// starts with `capacity` bytes.
    pub fn new(node_id: &str, capacity: usize) -> Self {
        let node_id = truncate(node_id.as_bytes(), MAX_NODE_ID_LEN);
        ClickBatchWriter {
            buf: Vec::with_capacity(capacity),
            node_id: String::from_utf8_lossy(node_id).into_owned(),
            count: 0,
        }
    }

    /// Starts a new batch with the given id (also the JetStream message id,
    /// so a retried publish is stored once). Clears any previous content.
    pub fn begin(&mut self, batch_id: [u8; 16]) {
        self.buf.clear();
        self.count = 0;
        self.buf.extend_from_slice(&CLICK_MAGIC);
        self.buf.extend_from_slice(&CLICK_VERSION.to_le_bytes());
        self.buf.extend_from_slice(&0u16.to_le_bytes());
        self.buf.extend_from_slice(&0u32.to_le_bytes());
        self.buf.extend_from_slice(&batch_id);
        self.buf.push(self.node_id.len() as u8);
        self.buf.extend_from_slice(self.node_id.as_bytes());
    }

    /// Appends one record; over-long fields are cut to their limits.
    pub fn push(&mut self, event: &ClickEvent<'_>) {
        debug_assert!(!self.buf.is_empty(), "begin() before push()");
        let len_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        self.buf.extend_from_slice(&event.event_id);
        self.buf.extend_from_slice(&event.ts_ms.to_le_bytes());
        self.buf.extend_from_slice(&event.status.to_le_bytes());
        match event.ip {
            IpAddr::V4(ip) => {
                self.buf.push(0);
                self.buf.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                self.buf.push(RECORD_IPV6);
                self.buf.extend_from_slice(&ip.octets());
            }
        }
        self.field_u8(event.code, MAX_CODE_LEN);
        self.field_u16(event.user_agent, MAX_USER_AGENT_LEN);
        self.field_u16(event.referrer, MAX_REFERRER_LEN);
        self.field_u8(event.accept_language, MAX_ACCEPT_LANGUAGE_LEN);
        self.field_u8(event.host, MAX_HOST_LEN);
        self.field_u8(event.domain, MAX_DOMAIN_LEN);
        self.buf.extend_from_slice(&event.org_id.to_le_bytes());
        self.buf.extend_from_slice(&event.rule.to_le_bytes());
        let record_len = (self.buf.len() - len_at - 2) as u16;
        self.buf[len_at..len_at + 2].copy_from_slice(&record_len.to_le_bytes());
        self.count += 1;
    }

    fn field_u8(&mut self, bytes: &[u8], max: usize) {
        let bytes = truncate(bytes, max);
        self.buf.push(bytes.len() as u8);
        self.buf.extend_from_slice(bytes);
    }

    fn field_u16(&mut self, bytes: &[u8], max: usize) {
        let bytes = truncate(bytes, max);
        self.buf
            .extend_from_slice(&(bytes.len() as u16).to_le_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// Records in the current batch.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Bytes of the current batch so far.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// Writes the record count into the header and returns the batch bytes.
    pub fn finish(&mut self) -> &[u8] {
        self.buf[COUNT_AT..COUNT_AT + 4].copy_from_slice(&self.count.to_le_bytes());
        &self.buf
    }

    /// Finishes the batch and hands its buffer over (for another thread to
    /// publish), taking `replacement` (cleared) as the buffer for the next
    /// batch. Recycling buffers keeps the request path free of allocation.
    pub fn take(&mut self, replacement: Vec<u8>) -> Vec<u8> {
        self.finish();
        let mut next = replacement;
        next.clear();
        self.count = 0;
        std::mem::replace(&mut self.buf, next)
    }
}

fn truncate(bytes: &[u8], max: usize) -> &[u8] {
    &bytes[..bytes.len().min(max)]
}

/// Why a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClickError {
    #[error("batch is {len} bytes; cut short while reading {what}")]
    Truncated { len: usize, what: &'static str },
    #[error("not a click batch: magic is {found:02x?}")]
    BadMagic { found: [u8; 4] },
    #[error(
        "click batch version {found} is not supported (this build reads versions 1 to {supported})"
    )]
    UnsupportedVersion { found: u16, supported: u16 },
    #[error("record {index} is malformed: {what}")]
    BadRecord { index: u32, what: &'static str },
    #[error("{extra} unexpected bytes after record {count}")]
    TrailingBytes { extra: usize, count: u32 },
}

/// A checked batch; iterating it cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct ClickBatch<'a> {
    version: u16,
    node_id: &'a [u8],
    batch_id: [u8; 16],
    count: u32,
    records: &'a [u8],
}

impl<'a> ClickBatch<'a> {
    /// Checks the header and every record.
    pub fn parse(bytes: &'a [u8]) -> Result<ClickBatch<'a>, ClickError> {
        let short = |what| ClickError::Truncated {
            len: bytes.len(),
            what,
        };
        if bytes.len() < 6 {
            return Err(short("header"));
        }
        let magic: [u8; 4] = bytes[0..4].try_into().expect("4 bytes");
        if magic != CLICK_MAGIC {
            return Err(ClickError::BadMagic { found: magic });
        }
        let version = u16::from_le_bytes([bytes[4], bytes[5]]);
        if !(OLDEST_CLICK_VERSION..=CLICK_VERSION).contains(&version) {
            return Err(ClickError::UnsupportedVersion {
                found: version,
                supported: CLICK_VERSION,
            });
        }
        if bytes.len() < FIXED_HEADER_LEN {
            return Err(short("header"));
        }
        let count = u32::from_le_bytes(bytes[COUNT_AT..COUNT_AT + 4].try_into().expect("4"));
        let batch_id: [u8; 16] = bytes[12..28].try_into().expect("16 bytes");
        let node_len = bytes[28] as usize;
        let node_end = FIXED_HEADER_LEN + node_len;
        if bytes.len() < node_end {
            return Err(short("node id"));
        }
        let batch = ClickBatch {
            version,
            node_id: &bytes[FIXED_HEADER_LEN..node_end],
            batch_id,
            count,
            records: &bytes[node_end..],
        };
        let mut rest = batch.records;
        for index in 0..count {
            let (_, after) =
                read_record(rest, version).map_err(|what| ClickError::BadRecord { index, what })?;
            rest = after;
        }
        if !rest.is_empty() {
            return Err(ClickError::TrailingBytes {
                extra: rest.len(),
                count,
            });
        }
        Ok(batch)
    }

    /// The batch's format version (1 to 3).
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The node that captured the batch (lossless bytes; usually ASCII).
    pub fn node_id(&self) -> &'a [u8] {
        self.node_id
    }

    /// The batch id (also its JetStream message id).
    pub fn batch_id(&self) -> [u8; 16] {
        self.batch_id
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether the batch has no event.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The events, in capture order.
    pub fn events(&self) -> impl Iterator<Item = ClickEvent<'a>> + 'a {
        let mut rest = self.records;
        let version = self.version;
        (0..self.count).map(move |_| {
            let (event, after) = read_record(rest, version).expect("checked in parse");
            rest = after;
            event
        })
    }
}

/// Reads one record; unknown trailing bytes inside a record (a later minor
/// addition) are skipped thanks to the length prefix.
fn read_record(bytes: &[u8], version: u16) -> Result<(ClickEvent<'_>, &[u8]), &'static str> {
    let mut cursor = Cursor(bytes);
    let record_len =
        u16::from_le_bytes(cursor.take(2, "record length")?.try_into().expect("2")) as usize;
    let record = cursor.take(record_len, "record body")?;
    let after = cursor.0;

    let mut r = Cursor(record);
    let event_id: [u8; 16] = r.take(16, "event id")?.try_into().expect("16");
    let ts_ms = u64::from_le_bytes(r.take(8, "time")?.try_into().expect("8"));
    let status = u16::from_le_bytes(r.take(2, "status")?.try_into().expect("2"));
    let flags = r.take(1, "flags")?[0];
    let ip = if flags & RECORD_IPV6 != 0 {
        let octets: [u8; 16] = r.take(16, "ipv6 address")?.try_into().expect("16");
        IpAddr::V6(Ipv6Addr::from(octets))
    } else {
        let octets: [u8; 4] = r.take(4, "ipv4 address")?.try_into().expect("4");
        IpAddr::V4(Ipv4Addr::from(octets))
    };
    let code = r.field_u8("code")?;
    let user_agent = r.field_u16("user agent")?;
    let referrer = r.field_u16("referrer")?;
    let accept_language = r.field_u8("accept-language")?;
    let host = r.field_u8("host")?;
    let domain = if version >= 2 {
        r.field_u8("domain")?
    } else {
        &[]
    };
    let (org_id, rule) = if version >= 3 {
        let org = u64::from_le_bytes(r.take(8, "org id")?.try_into().expect("8"));
        let rule = u16::from_le_bytes(r.take(2, "rule")?.try_into().expect("2"));
        (org, rule)
    } else {
        (0, 0)
    };
    Ok((
        ClickEvent {
            event_id,
            ts_ms,
            status,
            ip,
            code,
            user_agent,
            referrer,
            accept_language,
            host,
            domain,
            org_id,
            rule,
        },
        after,
    ))
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err(what);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn field_u8(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let len = self.take(1, what)?[0] as usize;
        self.take(len, what)
    }

    fn field_u16(&mut self, what: &'static str) -> Result<&'a [u8], &'static str> {
        let len = u16::from_le_bytes(self.take(2, what)?.try_into().expect("2")) as usize;
        self.take(len, what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(i: u8, ip: IpAddr) -> ClickEvent<'static> {
        ClickEvent {
            event_id: [i; 16],
            ts_ms: 1_700_000_000_000 + i as u64,
            status: 301,
            ip,
            code: b"abc",
            user_agent: b"Mozilla/5.0",
            referrer: b"https://news.example/",
            accept_language: b"en-GB",
            host: b"sho.rt",
            domain: b"sho.rt",
            org_id: 42 + i as u64,
            rule: i as u16,
        }
    }

    #[test]
    fn round_trip_v4_and_v6() {
        let mut writer = ClickBatchWriter::new("node-a", 1024);
        writer.begin([9; 16]);
        let a = event(1, IpAddr::V4(Ipv4Addr::new(81, 2, 69, 142)));
        let b = event(2, "2001:db8::1".parse().unwrap());
        writer.push(&a);
        writer.push(&b);
        let bytes = writer.finish().to_vec();
        let batch = ClickBatch::parse(&bytes).unwrap();
        assert_eq!(batch.node_id(), b"node-a");
        assert_eq!(batch.batch_id(), [9; 16]);
        assert_eq!(batch.events().collect::<Vec<_>>(), vec![a, b]);
    }

    #[test]
    fn long_fields_are_cut_not_refused() {
        let ua = vec![b'x'; 5000];
        let mut writer = ClickBatchWriter::new("n", 0);
        writer.begin([0; 16]);
        writer.push(&ClickEvent {
            user_agent: &ua,
            ..event(1, IpAddr::V4(Ipv4Addr::LOCALHOST))
        });
        let bytes = writer.finish().to_vec();
        let batch = ClickBatch::parse(&bytes).unwrap();
        assert_eq!(
            batch.events().next().unwrap().user_agent.len(),
            MAX_USER_AGENT_LEN
        );
    }

    #[test]
    fn take_recycles_buffers() {
        let mut writer = ClickBatchWriter::new("n", 256);
        writer.begin([1; 16]);
        writer.push(&event(1, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let full = writer.take(Vec::with_capacity(256));
        assert_eq!(ClickBatch::parse(&full).unwrap().len(), 1);
        writer.begin([2; 16]);
        assert_eq!(ClickBatch::parse(writer.finish()).unwrap().len(), 0);
    }

    #[test]
    fn refusals() {
        let mut writer = ClickBatchWriter::new("n", 0);
        writer.begin([0; 16]);
        writer.push(&event(1, IpAddr::V4(Ipv4Addr::LOCALHOST)));
        let good = writer.finish().to_vec();

        assert!(matches!(
            ClickBatch::parse(b"SH"),
            Err(ClickError::Truncated { .. })
        ));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            ClickBatch::parse(&bad),
            Err(ClickError::BadMagic { .. })
        ));
        let mut bad = good.clone();
        bad[4] = 4;
        assert!(matches!(
            ClickBatch::parse(&bad),
            Err(ClickError::UnsupportedVersion { found: 4, .. })
        ));
        for cut in 0..good.len() {
            assert!(ClickBatch::parse(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad.push(0);
        assert!(matches!(
            ClickBatch::parse(&bad),
            Err(ClickError::TrailingBytes { .. })
        ));
        let mut bad = good;
        bad[COUNT_AT] = 2;
        assert!(matches!(
            ClickBatch::parse(&bad),
            Err(ClickError::BadRecord { index: 1, .. })
        ));
    }
}
