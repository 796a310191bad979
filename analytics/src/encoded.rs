//! Rows of `clicks` kept as the RowBinary bytes the insert sends.
//!
//! Enrichment writes each row straight into one buffer per batch
//! ([`crate::enrich::Enricher::encode`]) rather than building a
//! [`ClickRow`] of thirteen `String`s that the insert then serializes: the
//! strings came from borrowed batch bytes, the GeoIP database and the
//! agent cache, so copying them once into the buffer is all the work there
//! is, and a group of 50,000 events costs a few buffer growths instead of
//! 650,000 allocations. The insert sends the buffer as it is (or the rows
//! the deduplication left, copied in order), and the lookups read the few
//! columns they need ([`RowRef`]) in place.
//!
//! Layout: the columns of [`ClickRow`] in field order, RowBinary (integers
//! little-endian, `FixedString(16)` as 16 bytes, `String` as a LEB128 length
//! and the bytes). The fixed columns come first, so the ids and `ts` sit at
//! fixed offsets; `code` follows the one variable column `node`.

use crate::rows::ClickRow;

const EVENT_ID_AT: usize = 0;
const TS_AT: usize = 16;
const TS_MS_AT: usize = 20;
const BATCH_ID_AT: usize = 28;
const NODE_AT: usize = 44;

/// Encoded rows of one batch, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClickRows {
    bytes: Vec<u8>,
    /// Where each row starts in `bytes`.
    starts: Vec<u32>,
}

impl ClickRows {
    /// Room for `rows` rows of about `row_bytes` each.
    pub fn with_capacity(rows: usize, row_bytes: usize) -> ClickRows {
        ClickRows {
            bytes: Vec::with_capacity(rows * row_bytes),
            starts: Vec::with_capacity(rows),
        }
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Every row, as the insert sends them.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Row `i`.
    pub fn get(&self, i: usize) -> RowRef<'_> {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.bytes.len(), |&s| s as usize);
        RowRef {
            bytes: &self.bytes[start..end],
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = RowRef<'_>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Keeps the first `n` rows (tests store part of a batch this way).
    pub fn truncate(&mut self, n: usize) {
        if n < self.len() {
            self.bytes.truncate(self.starts[n] as usize);
            self.starts.truncate(n);
        }
    }

    /// Drops every row and gives the memory back.
    pub fn clear(&mut self) {
        *self = ClickRows::default();
    }

    /// Appends an owned row (tools and tests; enrichment writes in place).
    pub fn push(&mut self, row: &ClickRow) {
        let mut w = self.begin_row();
        w.fixed(&row.event_id);
        w.u32(row.ts);
        w.u64(row.ts_ms);
        w.fixed(&row.batch_id);
        w.string(row.node.as_bytes());
        w.string(row.code.as_bytes());
        w.u16(row.status);
        w.string(row.host.as_bytes());
        w.string(row.domain.as_bytes());
        w.string(row.ip_prefix.as_bytes());
        w.string(row.country.as_bytes());
        w.string(row.city.as_bytes());
        w.string(row.device.as_bytes());
        w.string(row.browser.as_bytes());
        w.string(row.os.as_bytes());
        w.string(row.referrer_host.as_bytes());
        w.string(row.accept_language.as_bytes());
        w.string(row.language.as_bytes());
        w.u8(row.is_bot);
        w.u8(row.is_preview);
        w.u64(row.visitor_hash);
        w.u64(row.org_id);
        w.u16(row.rule);
    }

    /// Starts a row; the caller writes every column in order.
    pub fn begin_row(&mut self) -> RowWriter<'_> {
        let start = u32::try_from(self.bytes.len()).expect("a batch's rows fit in 4 GiB");
        self.starts.push(start);
        RowWriter {
            out: &mut self.bytes,
        }
    }
}

/// Writes one row's columns, in order, at the end of the buffer.
#[derive(Debug)]
pub struct RowWriter<'a> {
    out: &'a mut Vec<u8>,
}

impl RowWriter<'_> {
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// A `FixedString(16)`.
    pub fn fixed(&mut self, v: &[u8; 16]) {
        self.out.extend_from_slice(v);
    }

    /// A `String` of bytes already valid UTF-8.
    pub fn string(&mut self, v: &[u8]) {
        self.len(v.len());
        self.out.extend_from_slice(v);
    }

    /// A `String` of bytes ASCII-lowercased (UTF-8 stays UTF-8).
    pub fn string_lowercase(&mut self, v: &[u8]) {
        self.len(v.len());
        self.out.extend(v.iter().map(u8::to_ascii_lowercase));
    }

    /// A `String` of raw header bytes: as they are when they are UTF-8 (the
    /// common case, no copy but into the buffer), else with invalid
    /// sequences replaced, as `String::from_utf8_lossy` does.
    pub fn string_lossy(&mut self, v: &[u8]) {
        match std::str::from_utf8(v) {
            Ok(_) => self.string(v),
            Err(_) => self.string(String::from_utf8_lossy(v).as_bytes()),
        }
    }

    /// [`string_lossy`](Self::string_lossy), ASCII-lowercased.
    pub fn string_lossy_lowercase(&mut self, v: &[u8]) {
        match std::str::from_utf8(v) {
            Ok(_) => self.string_lowercase(v),
            Err(_) => self.string_lowercase(String::from_utf8_lossy(v).as_bytes()),
        }
    }

    /// Column bytes encoded elsewhere (e.g. an agent's cached columns).
    pub fn raw(&mut self, v: &[u8]) {
        self.out.extend_from_slice(v);
    }

    /// A `String` column's length: unsigned LEB128.
    fn len(&mut self, mut n: usize) {
        while n >= 0x80 {
            self.out.push((n as u8) | 0x80);
            n >>= 7;
        }
        self.out.push(n as u8);
    }
}

/// Appends a `String` column to `out` (for column bytes cached apart from a
/// row, such as an agent's).
pub fn put_string(out: &mut Vec<u8>, v: &[u8]) {
    RowWriter { out }.string(v);
}

/// One encoded row, read in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowRef<'a> {
    bytes: &'a [u8],
}

impl<'a> RowRef<'a> {
    /// The row as the insert sends it.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    pub fn event_id(&self) -> [u8; 16] {
        self.fixed(EVENT_ID_AT)
    }

    pub fn batch_id(&self) -> [u8; 16] {
        self.fixed(BATCH_ID_AT)
    }

    pub fn ts(&self) -> u32 {
        u32::from_le_bytes(self.bytes[TS_AT..TS_AT + 4].try_into().expect("4 bytes"))
    }

    /// The short code (the column after `node`).
    pub fn code(&self) -> &'a str {
        let mut r = Reader {
            bytes: self.bytes,
            at: NODE_AT,
        };
        r.string();
        r.string()
    }

    /// The row decoded into owned fields.
    pub fn to_row(&self) -> ClickRow {
        let mut r = Reader {
            bytes: self.bytes,
            at: TS_MS_AT,
        };
        let ts_ms = r.u64();
        r.at = NODE_AT;
        ClickRow {
            event_id: self.event_id(),
            ts: self.ts(),
            ts_ms,
            batch_id: self.batch_id(),
            node: r.string().to_owned(),
            code: r.string().to_owned(),
            status: r.u16(),
            host: r.string().to_owned(),
            domain: r.string().to_owned(),
            ip_prefix: r.string().to_owned(),
            country: r.string().to_owned(),
            city: r.string().to_owned(),
            device: r.string().to_owned(),
            browser: r.string().to_owned(),
            os: r.string().to_owned(),
            referrer_host: r.string().to_owned(),
            accept_language: r.string().to_owned(),
            language: r.string().to_owned(),
            is_bot: r.u8(),
            is_preview: r.u8(),
            visitor_hash: r.u64(),
            org_id: r.u64(),
            rule: r.u16(),
        }
    }

    fn fixed(&self, at: usize) -> [u8; 16] {
        self.bytes[at..at + 16].try_into().expect("16 bytes")
    }
}

/// Reads columns of a row this module wrote (so it panics on anything else).
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let v = &self.bytes[self.at..self.at + n];
        self.at += n;
        v
    }

    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }

    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().expect("2 bytes"))
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }

    fn string(&mut self) -> &'a str {
        let mut n = 0usize;
        let mut shift = 0;
        loop {
            let b = self.u8();
            n |= usize::from(b & 0x7f) << shift;
            if b < 0x80 {
                break;
            }
            shift += 7;
        }
        std::str::from_utf8(self.take(n)).expect("rows are written as UTF-8")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(i: u8) -> ClickRow {
        ClickRow {
            event_id: [i; 16],
            ts: 1_700_000_000 + u32::from(i),
            ts_ms: 1_700_000_000_123,
            batch_id: [9; 16],
            node: "node-a".into(),
            code: format!("code{i}"),
            status: 301,
            host: "sho.rt".into(),
            domain: "sho.rt".into(),
            ip_prefix: "81.2.69.0/24".into(),
            country: "GB".into(),
            city: "London".into(),
            device: "desktop".into(),
            browser: "Chrome".into(),
            os: "Windows".into(),
            referrer_host: "news.example.com".into(),
            // Long enough for a two-byte length.
            accept_language: "en-GB,".repeat(40),
            language: "en".into(),
            is_bot: 0,
            is_preview: 1,
            visitor_hash: 0x0123_4567_89ab_cdef,
            org_id: 42,
            rule: 7,
        }
    }

    #[test]
    fn rows_read_back_as_written() {
        let mut rows = ClickRows::default();
        for i in 0..3 {
            rows.push(&row(i));
        }
        assert_eq!(rows.len(), 3);
        for (i, r) in rows.iter().enumerate() {
            let want = row(i as u8);
            assert_eq!(r.to_row(), want);
            assert_eq!(r.event_id(), want.event_id);
            assert_eq!(r.batch_id(), want.batch_id);
            assert_eq!(r.ts(), want.ts);
            assert_eq!(r.code(), want.code);
        }
        rows.truncate(1);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows.bytes(), rows.get(0).bytes());
        assert_eq!(rows.get(0).to_row(), row(0));
    }

    /// The bytes are RowBinary as the clickhouse crate writes a `ClickRow`
    /// (what the inserts sent before rows were encoded in place), spelled
    /// out for the fixed columns and the first strings.
    #[test]
    fn the_layout_is_rowbinary() {
        let mut rows = ClickRows::default();
        rows.push(&row(1));
        let b = rows.bytes();
        assert_eq!(&b[..16], &[1; 16]);
        assert_eq!(&b[16..20], &(1_700_000_001u32).to_le_bytes());
        assert_eq!(&b[20..28], &1_700_000_000_123u64.to_le_bytes());
        assert_eq!(&b[28..44], &[9; 16]);
        assert_eq!(&b[44..51], b"\x06node-a");
        assert_eq!(&b[51..57], b"\x05code1");
        assert_eq!(&b[57..59], &301u16.to_le_bytes());
        // 240 bytes of Accept-Language: LEB128 0xf0 0x01.
        let at = b.windows(3).position(|w| w == b"en-").unwrap();
        assert_eq!(&b[at - 2..at], &[0xf0, 0x01]);
        assert_eq!(&b[b.len() - 18..], {
            let mut tail = Vec::new();
            tail.extend_from_slice(&0x0123_4567_89ab_cdefu64.to_le_bytes());
            tail.extend_from_slice(&42u64.to_le_bytes());
            tail.extend_from_slice(&7u16.to_le_bytes());
            tail
        });
    }
}
