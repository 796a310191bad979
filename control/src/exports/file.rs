//! Writing an export's rows to its file, one row at a time.
//!
//! Rows are formatted into a small buffer that goes to the file (async
//! writes) whenever it holds [`FLUSH_AT`] bytes, so memory stays the buffer
//! and one row whatever the export's size. CSV is RFC 4180 with a header
//! line, a field quoted when it holds a comma, a quote or a line break;
//! NDJSON is one JSON object per line with the same names as the CSV header;
//! Parquet goes to [`ParquetSink`] a row group at a time.

use super::cell::Cell;
use super::parquet::ParquetSink;
use super::request::ExportFormat;
use serde_json::{Map, Value};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use tokio::io::AsyncWriteExt as _;

/// The buffer's size before it is written out.
const FLUSH_AT: usize = 256 * 1024;

/// How far a running export is: read by the heartbeat (which records it)
/// and told by it to stop when the job is no longer this worker's.
#[derive(Debug, Default)]
pub struct Progress {
    pub rows: AtomicU64,
    pub bytes: AtomicU64,
    pub cancelled: AtomicBool,
}

/// An export file being written.
pub struct ExportWriter {
    /// CSV and NDJSON go through `buf` into it; `None` for Parquet.
    file: Option<tokio::fs::File>,
    /// Parquet's writer, which owns the file.
    parquet: Option<ParquetSink>,
    format: ExportFormat,
    columns: Vec<&'static str>,
    buf: Vec<u8>,
    progress: Arc<Progress>,
}

impl ExportWriter {
    /// Starts the file with its header (CSV) for `columns`.
    pub async fn new(
        file: tokio::fs::File,
        format: ExportFormat,
        columns: Vec<&'static str>,
        progress: Arc<Progress>,
    ) -> anyhow::Result<ExportWriter> {
        let (file, parquet) = match format {
            ExportFormat::Parquet => (
                None,
                Some(ParquetSink::new(file.into_std().await, columns.clone())),
            ),
            _ => (Some(file), None),
        };
        let mut w = ExportWriter {
            file,
            parquet,
            format,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            columns,
            progress,
        };
        if format == ExportFormat::Csv {
            for (i, name) in w.columns.iter().enumerate() {
                if i > 0 {
                    w.buf.push(b',');
                }
                csv_field(&mut w.buf, name);
            }
            w.buf.push(b'\n');
        }
        Ok(w)
    }

    /// Appends one row, its cells in the columns' order.
    pub async fn row(&mut self, cells: &[Cell<'_>]) -> anyhow::Result<()> {
        debug_assert_eq!(cells.len(), self.columns.len());
        match self.format {
            ExportFormat::Parquet => {
                let sink = self
                    .parquet
                    .as_mut()
                    .expect("a Parquet export has its sink");
                self.progress.rows.fetch_add(1, Ordering::Relaxed);
                if let Some(bytes) = sink.row(cells)? {
                    self.progress.bytes.store(bytes, Ordering::Relaxed);
                    if self.cancelled() {
                        anyhow::bail!("the job was taken back from this worker");
                    }
                }
                return Ok(());
            }
            ExportFormat::Csv => {
                let mut numbers = [0u8; 20];
                for (i, cell) in cells.iter().enumerate() {
                    if i > 0 {
                        self.buf.push(b',');
                    }
                    match cell {
                        Cell::Text(s) => csv_field(&mut self.buf, s),
                        Cell::Owned(s) => csv_field(&mut self.buf, s),
                        Cell::Number(n) => self.buf.extend_from_slice(format_u64(*n, &mut numbers)),
                    }
                }
                self.buf.push(b'\n');
            }
            ExportFormat::Ndjson => {
                let mut object = Map::with_capacity(cells.len());
                for (name, cell) in self.columns.iter().zip(cells) {
                    let value = match cell {
                        Cell::Text(s) => Value::from(*s),
                        Cell::Owned(s) => Value::from(s.as_str()),
                        Cell::Number(n) => Value::from(*n),
                    };
                    object.insert((*name).to_owned(), value);
                }
                serde_json::to_writer(&mut self.buf, &object)?;
                self.buf.push(b'\n');
            }
        }
        self.progress.rows.fetch_add(1, Ordering::Relaxed);
        if self.buf.len() >= FLUSH_AT {
            self.write_out().await?;
        }
        Ok(())
    }

    /// Whether the heartbeat said to stop.
    pub fn cancelled(&self) -> bool {
        self.progress.cancelled.load(Ordering::Relaxed)
    }

    async fn write_out(&mut self) -> anyhow::Result<()> {
        let file = self.file.as_mut().expect("a text export has its file");
        file.write_all(&self.buf).await?;
        self.progress
            .bytes
            .fetch_add(self.buf.len() as u64, Ordering::Relaxed);
        self.buf.clear();
        if self.cancelled() {
            anyhow::bail!("the job was taken back from this worker");
        }
        Ok(())
    }

    /// Writes what is buffered and syncs the file to disk.
    pub async fn finish(mut self) -> anyhow::Result<()> {
        if let Some(sink) = self.parquet.take() {
            let bytes = sink.finish()?;
            self.progress.bytes.store(bytes, Ordering::Relaxed);
            return Ok(());
        }
        self.write_out().await?;
        let file = self.file.as_mut().expect("a text export has its file");
        file.flush().await?;
        file.sync_all().await?;
        Ok(())
    }
}

/// One CSV field (RFC 4180): quoted, its quotes doubled, when it holds a
/// comma, a quote or a line break.
fn csv_field(out: &mut Vec<u8>, field: &str) {
    if field
        .bytes()
        .any(|b| matches!(b, b',' | b'"' | b'\n' | b'\r'))
    {
        out.push(b'"');
        for b in field.bytes() {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field.as_bytes());
    }
}

/// `n` in decimal, without allocating.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Unix milliseconds as `2026-01-01T10:00:01.250Z` (always three digits,
/// so the column sorts as text too).
pub fn millis_rfc3339(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return String::new();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_times() {
        let mut buf = [0u8; 20];
        assert_eq!(format_u64(0, &mut buf), b"0");
        assert_eq!(format_u64(u64::MAX, &mut buf), b"18446744073709551615");
        assert_eq!(
            millis_rfc3339(1_767_261_601_250),
            "2026-01-01T10:00:01.250Z"
        );
        assert_eq!(
            millis_rfc3339(1_767_261_601_000),
            "2026-01-01T10:00:01.000Z"
        );
    }

    #[tokio::test]
    async fn csv_quotes_and_ndjson_types() {
        let dir = tempfile::tempdir().unwrap();
        for (format, want) in [
            (ExportFormat::Csv, "a,n\n\"x,\"\"y\"\"\",7\n"),
            (ExportFormat::Ndjson, "{\"a\":\"x,\\\"y\\\"\",\"n\":7}\n"),
        ] {
            let path = dir.path().join(format.as_str());
            let file = tokio::fs::File::create(&path).await.unwrap();
            let progress = Arc::new(Progress::default());
            let mut w = ExportWriter::new(file, format, vec!["a", "n"], progress.clone())
                .await
                .unwrap();
            w.row(&[Cell::Text("x,\"y\""), Cell::Number(7)])
                .await
                .unwrap();
            w.finish().await.unwrap();
            assert_eq!(std::fs::read_to_string(&path).unwrap(), want);
            assert_eq!(progress.rows.load(Ordering::Relaxed), 1);
            assert_eq!(progress.bytes.load(Ordering::Relaxed), want.len() as u64);
        }
    }
}
