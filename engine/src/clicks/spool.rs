//! A bounded on-disk queue of click batches for when NATS is slow or down.
//!
//! One file per batch, `<20-digit sequence>.batch` (mode 0600), written to a
//! temporary name, fsynced, renamed, and the directory fsynced, so a crash
//! leaves whole batches only and a batch counted as spooled survives a power
//! cut; removals are fsynced the same way. Files left by a previous run are
//! found at open and replayed first. When the spool holds `max_bytes`,
//! further batches are refused (and counted as dropped by the caller): the
//! disk never fills up because NATS is down.
//!
//! A spooled file that cannot be read or is not a valid click batch (a disk
//! error, a file damaged or put there by hand) would otherwise sit at the
//! front forever, blocking replay until the spool fills and clicks are
//! dropped: [`Spool::front`] moves it to `quarantine/` instead (counted,
//! logged once, kept for a person to look at, outside the size bound) and
//! carries on with the next one.
//!
//! The directory is inside the engine's locked state directory
//! ([`crate::state_dir`]), so one engine owns it.

use crate::state_dir::{fsync_dir, private_dir, private_file};
use snapshots::click::ClickBatch;
use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    /// (sequence, length), oldest first.
    files: VecDeque<(u64, u64)>,
    next: u64,
    /// Files moved to `quarantine/` since open.
    quarantined: u64,
}

impl Spool {
    /// Opens (creating, 0700) `dir` and indexes the batches already in it.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        private_dir(dir)?;
        let mut files = Vec::new();
        let mut removed = false;
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if let Some(seq) = name
                .strip_suffix(".batch")
                .and_then(|s| s.parse::<u64>().ok())
            {
                files.push((seq, entry.metadata()?.len()));
            } else if name.ends_with(".tmp") {
                // A write cut short by a crash: never renamed, never counted.
                let _ = fs::remove_file(entry.path());
                removed = true;
            }
        }
        if removed {
            fsync_dir(dir)?;
        }
        files.sort_unstable();
        let next = files.last().map_or(0, |(seq, _)| seq + 1);
        let bytes = files.iter().map(|(_, len)| len).sum();
        Ok(Spool {
            dir: dir.to_path_buf(),
            max_bytes,
            bytes,
            files: files.into(),
            next,
            quarantined: 0,
        })
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.batch"))
    }

    /// Stores a batch at the end. `Ok(false)`: the spool is full.
    pub fn push(&mut self, batch: &[u8]) -> std::io::Result<bool> {
        if self.bytes + batch.len() as u64 > self.max_bytes {
            return Ok(false);
        }
        let seq = self.next;
        let tmp = self.dir.join(format!("{seq:020}.tmp"));
        // A leftover of a failed write under this name is never a batch.
        let _ = fs::remove_file(&tmp);
        let mut file = private_file(&tmp)?;
        file.write_all(batch)?;
        file.sync_data()?;
        fs::rename(&tmp, self.path(seq))?;
        fsync_dir(&self.dir)?;
        self.next += 1;
        self.bytes += batch.len() as u64;
        self.files.push_back((seq, batch.len() as u64));
        Ok(true)
    }

    /// The oldest readable batch, if any: (sequence, bytes). Older files
    /// that cannot be read or are not click batches are quarantined on the
    /// way; an error means the spool directory itself failed.
    pub fn front(&mut self) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        while let Some(&(seq, len)) = self.files.front() {
            let path = self.path(seq);
            let problem = match fs::read(&path) {
                Ok(bytes) => match ClickBatch::parse(&bytes) {
                    Ok(_) => return Ok(Some((seq, bytes))),
                    Err(e) => format!("not a click batch: {e}"),
                },
                Err(e) => format!("unreadable: {e}"),
            };
            self.quarantine(&path, &problem)?;
            self.files.pop_front();
            self.bytes -= len;
        }
        Ok(None)
    }

    fn quarantine(&mut self, path: &Path, problem: &str) -> std::io::Result<()> {
        let aside = self.dir.join("quarantine");
        private_dir(&aside)?;
        let name = path.file_name().unwrap_or_default();
        fs::rename(path, aside.join(name))?;
        fsync_dir(&aside)?;
        fsync_dir(&self.dir)?;
        self.quarantined += 1;
        tracing::error!(
            file = %path.display(),
            moved_to = %aside.display(),
            problem,
            "a spooled click batch cannot be replayed; set aside, replay goes on"
        );
        Ok(())
    }

    /// Removes the oldest batch once it is safely published.
    pub fn pop(&mut self, seq: u64) -> std::io::Result<()> {
        if let Some(&(front, len)) = self.files.front()
            && front == seq
        {
            fs::remove_file(self.path(seq))?;
            fsync_dir(&self.dir)?;
            self.files.pop_front();
            self.bytes -= len;
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Files set aside since open.
    pub fn quarantined(&self) -> u64 {
        self.quarantined
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snapshots::click::{ClickBatchWriter, ClickEvent};
    use std::os::unix::fs::PermissionsExt;

    fn batch(tag: u8) -> Vec<u8> {
        let mut writer = ClickBatchWriter::new("n", 1024);
        writer.begin([tag; 16]);
        writer.push(&ClickEvent {
            event_id: [tag; 16],
            ts_ms: 1,
            status: 301,
            ip: "192.0.2.0".parse().unwrap(),
            code: b"abc",
            user_agent: b"",
            referrer: b"",
            accept_language: b"",
            host: b"",
            domain: b"",
            org_id: 0,
            rule: 0,
        });
        writer.take(Vec::new())
    }

    fn drain(spool: &mut Spool) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| {
            let (seq, bytes) = spool.front().unwrap()?;
            spool.pop(seq).unwrap();
            Some(bytes)
        })
        .collect()
    }

    #[test]
    fn order_bound_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (batch(1), batch(2), batch(3));
        let max = (a.len() * 2) as u64;
        let mut spool = Spool::open(dir.path(), max).unwrap();
        assert!(spool.push(&a).unwrap());
        assert!(spool.push(&b).unwrap());
        assert!(!spool.push(&c).unwrap(), "over the bound");
        assert_eq!(spool.bytes(), max);
        drop(spool);
        std::fs::write(dir.path().join("x.tmp"), b"partial").unwrap();
        let mut spool = Spool::open(dir.path(), max).unwrap();
        assert_eq!(spool.len(), 2);
        let (seq, bytes) = spool.front().unwrap().unwrap();
        assert_eq!(bytes, a);
        spool.pop(seq).unwrap();
        assert!(spool.push(&c).unwrap());
        assert_eq!(drain(&mut spool), vec![b, c]);
        assert!(!dir.path().join("x.tmp").exists());
    }

    #[test]
    fn files_are_private() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("spool");
        let mut spool = Spool::open(&dir, 1 << 20).unwrap();
        spool.push(&batch(1)).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join(format!("{:020}.batch", 0))), 0o600);
    }

    /// An unreadable or damaged oldest file no longer blocks the ones after it.
    #[test]
    fn unreadable_and_damaged_files_are_quarantined() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        for tag in 1..=4 {
            spool.push(&batch(tag)).unwrap();
        }
        drop(spool);
        // Batch 0 becomes unreadable (a directory where the file was: fails
        // to read even as root), batch 2 damaged.
        let path = |seq: u64| dir.path().join(format!("{seq:020}.batch"));
        std::fs::remove_file(path(0)).unwrap();
        std::fs::create_dir(path(0)).unwrap();
        std::fs::write(path(2), b"not a batch").unwrap();
        let mut spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(drain(&mut spool), vec![batch(2), batch(4)]);
        assert_eq!(spool.quarantined(), 2);
        assert_eq!(spool.bytes(), 0);
        let aside = dir.path().join("quarantine");
        assert!(aside.join(format!("{:020}.batch", 0)).is_dir());
        assert_eq!(
            std::fs::read(aside.join(format!("{:020}.batch", 2))).unwrap(),
            b"not a batch"
        );
        // Reopening does not count the quarantine as spooled batches.
        let spool = Spool::open(dir.path(), 1 << 20).unwrap();
        assert!(spool.is_empty());
    }
}
