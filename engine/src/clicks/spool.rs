//! A bounded on-disk queue of click batches for when NATS is slow or down.
//!
//! One file per batch, `<20-digit sequence>.batch`, written to a temporary
//! name, fsynced and renamed, so a crash leaves whole batches only. Files
//! left by a previous run are found at open and replayed first. When the
//! spool holds `max_bytes`, further batches are refused (and counted as
//! dropped by the caller): the disk never fills up because NATS is down.

use std::collections::VecDeque;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub struct Spool {
    /// Held open with an exclusive `flock`: one engine per spool directory.
    _lock: fs::File,
    dir: PathBuf,
    max_bytes: u64,
    bytes: u64,
    /// (sequence, length), oldest first.
    files: VecDeque<(u64, u64)>,
    next: u64,
}

impl Spool {
    /// Opens (creating) `dir` and indexes the batches already in it.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Spool> {
        fs::create_dir_all(dir)?;
        let lock = fs::File::create(dir.join(".lock"))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe {
            libc::flock(
                std::os::fd::AsRawFd::as_raw_fd(&lock),
                libc::LOCK_EX | libc::LOCK_NB,
            )
        } != 0
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WouldBlock,
                format!(
                    "spool directory {} is in use by another engine (give each its own --click-spool-dir)",
                    dir.display()
                ),
            ));
        }
        let mut files = Vec::new();
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
            }
        }
        files.sort_unstable();
        let next = files.last().map_or(0, |(seq, _)| seq + 1);
        let bytes = files.iter().map(|(_, len)| len).sum();
        Ok(Spool {
            _lock: lock,
            dir: dir.to_path_buf(),
            max_bytes,
            bytes,
            files: files.into(),
            next,
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
        let mut file = fs::File::create(&tmp)?;
        file.write_all(batch)?;
        file.sync_data()?;
        fs::rename(&tmp, self.path(seq))?;
        self.next += 1;
        self.bytes += batch.len() as u64;
        self.files.push_back((seq, batch.len() as u64));
        Ok(true)
    }

    /// The oldest batch, if any: (sequence, bytes).
    pub fn front(&self) -> std::io::Result<Option<(u64, Vec<u8>)>> {
        match self.files.front() {
            Some(&(seq, _)) => Ok(Some((seq, fs::read(self.path(seq))?))),
            None => Ok(None),
        }
    }

    /// Removes the oldest batch once it is safely published.
    pub fn pop(&mut self, seq: u64) -> std::io::Result<()> {
        if let Some(&(front, len)) = self.files.front()
            && front == seq
        {
            fs::remove_file(self.path(seq))?;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_bound_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        assert!(spool.push(b"aaaa").unwrap());
        assert!(spool.push(b"bbbb").unwrap());
        assert!(!spool.push(b"cccc").unwrap(), "over 10 bytes");
        assert_eq!(spool.bytes(), 8);
        drop(spool);
        std::fs::write(dir.path().join("x.tmp"), b"partial").unwrap();
        let mut spool = Spool::open(dir.path(), 10).unwrap();
        assert_eq!(spool.len(), 2);
        let (seq, bytes) = spool.front().unwrap().unwrap();
        assert_eq!(bytes, b"aaaa");
        spool.pop(seq).unwrap();
        assert!(spool.push(b"cccc").unwrap());
        let order: Vec<Vec<u8>> = std::iter::from_fn(|| {
            let (seq, bytes) = spool.front().unwrap()?;
            spool.pop(seq).unwrap();
            Some(bytes)
        })
        .collect();
        assert_eq!(order, vec![b"bbbb".to_vec(), b"cccc".to_vec()]);
        assert!(!dir.path().join("x.tmp").exists());
        let err = Spool::open(dir.path(), 10).unwrap_err();
        assert!(
            err.to_string().contains("in use by another engine"),
            "{err}"
        );
    }
}
