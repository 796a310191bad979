//! `control import` and `control export`: moving an organization's links in
//! from other shorteners' exports, and out as CSV or JSON lines.
//!
//! An import streams its file: a reader thread parses and checks records
//! ([`formats`], [`check`]) and hands batches of [`BATCH`] lines to the
//! writer ([`batch`]), which inserts each batch with one multi-row statement
//! and writes every new link's outbox row in the same transaction (one
//! write per link: see [`batch`] for how the sequences are taken), so the
//! engines get imported links like any other. Memory stays flat whatever the
//! file's size. Codes are kept where they are free on the domain; a taken
//! one is a clash, reported with its line, never overwritten. A batch
//! commits together with the import's progress record ([`progress`]), keyed
//! by the file's SHA-256: a second run of an interrupted import starts after
//! the last committed line, makes nothing twice, and its report still lists
//! the problems of the earlier run. A line that cannot be read at all (the
//! file is not in the format given) stops the import there, with its line
//! number, after reporting what was imported before it.

pub mod batch;
pub mod check;
pub mod export;
pub mod formats;
pub mod progress;

use crate::links::store::Owner;
use crate::target::TargetPolicy;
use anyhow::Context as _;
use formats::{Format, ReadError, Reader};
use progress::Problem;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::io::Read;
use std::path::PathBuf;

/// Lines per batch (one transaction each).
pub const BATCH: usize = 5000;

/// What to import, and how links are checked.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    pub format: Format,
    pub file: PathBuf,
    /// The organization's name.
    pub org: String,
    /// One of the organization's domains; `None`: the default domain.
    pub domain: Option<String>,
    /// The public base of short links (targets on its host are refused).
    pub short_base: String,
    pub allow_private_targets: bool,
    pub code_length: usize,
    pub batch_size: usize,
    /// Stop after this many batches, as an interruption would (tests).
    pub max_batches: Option<usize>,
}

impl ImportOptions {
    pub fn new(format: Format, file: PathBuf, org: &str) -> Self {
        let defaults = crate::config::Config::default();
        ImportOptions {
            format,
            file,
            org: org.to_owned(),
            domain: None,
            short_base: defaults.short_base,
            allow_private_targets: false,
            code_length: defaults.code_length,
            batch_size: BATCH,
            max_batches: None,
        }
    }
}

/// What an import did, over all its runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub import_id: i64,
    /// Links made, over all runs of this import.
    pub imported: i64,
    /// The line this run started after (0: from the start).
    pub resumed_after: i64,
    /// The file was imported completely before this run.
    pub already_done: bool,
    /// Every line not imported, by line.
    pub problems: Vec<Problem>,
    /// Where the file stopped being readable, if it did.
    pub stopped: Option<ReadError>,
    /// The whole file is done.
    pub finished: bool,
}

impl ImportReport {
    pub fn count(&self, kind: &str) -> usize {
        self.problems.iter().filter(|p| p.kind == kind).count()
    }

    /// The report as people read it: one line per problem, then a summary.
    pub fn write_to(&self, out: &mut impl std::io::Write) -> std::io::Result<()> {
        for p in &self.problems {
            writeln!(out, "line {}: {}: {}", p.line, p.kind, p.message)?;
        }
        if let Some(e) = &self.stopped {
            writeln!(out, "stopped: {e}")?;
        }
        writeln!(
            out,
            "imported {} links; {} clashes, {} invalid rows{}{}",
            self.imported,
            self.count("clash"),
            self.count("invalid"),
            if self.resumed_after > 0 {
                format!("; resumed after line {}", self.resumed_after)
            } else {
                String::new()
            },
            if self.already_done {
                "; this file was already imported"
            } else if !self.finished {
                "; not finished: run the same command again to go on"
            } else {
                ""
            }
        )
    }
}

/// The SHA-256 of a file, read in pieces.
fn file_sha256(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    let mut f = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().to_vec())
}

/// The organization named `name`.
pub async fn org_id(db: &PgPool, name: &str) -> anyhow::Result<i64> {
    sqlx::query_scalar("SELECT id FROM organizations WHERE name = $1")
        .bind(name)
        .fetch_optional(db)
        .await?
        .with_context(|| format!("there is no organization named {name:?}"))
}

/// What the reader thread sends: a batch, or the line it could not read.
enum Piece {
    Batch(batch::Batch),
    Stop(ReadError),
}

/// Imports `opts.file` (or goes on with an interrupted import of it).
pub async fn run(db: &PgPool, opts: &ImportOptions) -> anyhow::Result<ImportReport> {
    let org_id = org_id(db, &opts.org).await?;
    let domain_id = {
        let mut conn = db.acquire().await?;
        let default: String = sqlx::query_scalar("SELECT name FROM domains WHERE id = 0")
            .fetch_one(&mut *conn)
            .await?;
        crate::domains::store::for_link(
            &mut conn,
            Owner::Org(org_id),
            &default,
            opts.domain.as_deref(),
        )
        .await
        .map_err(|e| anyhow::anyhow!("--domain: {e}"))?
    };
    let sha = file_sha256(&opts.file)?;
    let file_name = opts
        .file
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let progress =
        progress::open(db, org_id, &sha, domain_id, opts.format.name(), &file_name).await?;
    let mut report = ImportReport {
        import_id: progress.id,
        imported: progress.imported,
        resumed_after: progress.done_line,
        already_done: progress.finished,
        problems: Vec::new(),
        stopped: None,
        finished: progress.finished,
    };
    if progress.finished {
        report.problems = progress::problems(db, progress.id).await?;
        return Ok(report);
    }

    let (tx, mut rx) = tokio::sync::mpsc::channel::<Piece>(2);
    let reader = {
        let file = std::fs::File::open(&opts.file)?;
        let policy = TargetPolicy::new(&opts.short_base, opts.allow_private_targets);
        let (format, skip, size) = (opts.format, progress.done_line as u64, opts.batch_size);
        tokio::task::spawn_blocking(move || read_batches(format, file, &policy, skip, size, tx))
    };
    let target = batch::Target {
        import_id: progress.id,
        org_id,
        domain_id,
        code_length: opts.code_length,
        file_name,
        format: opts.format.name(),
    };
    let mut done_line = progress.done_line;
    let mut batches = 0;
    while let Some(piece) = rx.recv().await {
        match piece {
            Piece::Batch(b) => {
                let last = b.last_line as i64;
                let made = batch::write(db, &target, done_line, &b).await?;
                done_line = last;
                report.imported += made as i64;
                batches += 1;
                if opts.max_batches.is_some_and(|m| batches >= m) {
                    break;
                }
            }
            Piece::Stop(e) => {
                report.stopped = Some(e);
                break;
            }
        }
    }
    drop(rx);
    let read_to_end = reader.await.context("the reader thread")?;
    if read_to_end && report.stopped.is_none() && opts.max_batches.is_none_or(|m| batches < m) {
        progress::finish(db, progress.id).await?;
        report.finished = true;
    }
    report.problems = progress::problems(db, progress.id).await?;
    Ok(report)
}

/// The reader thread: records after line `skip`, checked, in batches of
/// `size` lines (a line's records stay in one batch). Returns whether it
/// read the whole file.
fn read_batches(
    format: Format,
    file: std::fs::File,
    policy: &TargetPolicy,
    skip: u64,
    size: usize,
    tx: tokio::sync::mpsc::Sender<Piece>,
) -> bool {
    let input = std::io::BufReader::with_capacity(1 << 16, file);
    let mut reader = match Reader::new(format, input) {
        Ok(r) => r,
        Err(e) => {
            let _ = tx.blocking_send(Piece::Stop(e));
            return false;
        }
    };
    let mut current = batch::Batch::default();
    let mut lines_in_batch = 0usize;
    while let Some(next) = reader.next_record() {
        let rec = match next {
            Ok(r) => r,
            Err(e) => {
                if !current.rows.is_empty() || !current.problems.is_empty() {
                    let _ = tx.blocking_send(Piece::Batch(current));
                }
                let _ = tx.blocking_send(Piece::Stop(e));
                return false;
            }
        };
        if rec.line <= skip {
            continue;
        }
        if rec.line != current.last_line {
            if lines_in_batch >= size {
                let full = std::mem::take(&mut current);
                if tx.blocking_send(Piece::Batch(full)).is_err() {
                    return false;
                }
                lines_in_batch = 0;
            }
            lines_in_batch += 1;
        }
        current.last_line = rec.line;
        let line = rec.line;
        match check::check(policy, rec) {
            Ok(row) => current.rows.push(row),
            Err(message) => current.problems.push(Problem {
                line: line as i64,
                kind: "invalid".into(),
                message,
            }),
        }
    }
    if lines_in_batch > 0 && tx.blocking_send(Piece::Batch(current)).is_err() {
        return false;
    }
    true
}
