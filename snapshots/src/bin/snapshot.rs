//! `snapshot`: build, inspect and query link snapshot files.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use snapshots::input::{InputFormat, read_links};
use snapshots::{Snapshot, SnapshotBuilder};
use std::fs::File;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "snapshot",
    version,
    about = "Build, inspect and query link snapshot files"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build a snapshot from CSV (header row; columns code,target and optional
    /// status,expires_at,forward_query,disabled) or JSON lines.
    Build {
        /// Input file (`-` for standard input).
        #[arg(long)]
        input: PathBuf,
        /// Snapshot file to write (atomically replaced).
        #[arg(long)]
        output: PathBuf,
        /// Input format. Default: from the extension (.jsonl/.ndjson/.json are JSON lines, else CSV).
        #[arg(long, value_enum)]
        format: Option<Format>,
        /// Change-log sequence the snapshot includes.
        #[arg(long, default_value_t = 0)]
        sequence: u64,
        /// Sign the file with this Ed25519 private key (PKCS#8 PEM, control's
        /// `links_signing_key`): engines trusting it open the file by its
        /// signature.
        #[arg(long)]
        sign_key: Option<PathBuf>,
    },
    /// Print a snapshot's header and counts (checks the whole file, or only
    /// its signature when signed by a key given with --verify-key).
    Inspect {
        file: PathBuf,
        /// A trusted public key (SubjectPublicKeyInfo PEM); repeatable.
        #[arg(long)]
        verify_key: Vec<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print one link as JSON; exits 1 if the code is not in the snapshot.
    Get { file: PathBuf, code: String },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Csv,
    Jsonl,
}

fn main() {
    if let Err(e) = run(Cli::parse()) {
        eprintln!("snapshot: {e:#}");
        std::process::exit(2);
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Build {
            input,
            output,
            format,
            sequence,
            sign_key,
        } => build(input, output, format, sequence, sign_key),
        Command::Inspect {
            file,
            verify_key,
            json,
        } => inspect(file, &verify_key, json),
        Command::Get { file, code } => get(file, code),
    }
}

fn build(
    input: PathBuf,
    output: PathBuf,
    format: Option<Format>,
    sequence: u64,
    sign_key: Option<PathBuf>,
) -> Result<()> {
    let signer = match &sign_key {
        Some(path) => Some(std::sync::Arc::new(
            snapshots::signing::DeltaSigner::from_pem_file(path)?,
        )),
        None => None,
    };
    let started = Instant::now();
    let format = match format {
        Some(Format::Csv) => InputFormat::Csv,
        Some(Format::Jsonl) => InputFormat::JsonLines,
        None => InputFormat::from_path(&input),
    };
    let (reader, size): (Box<dyn std::io::Read>, u64) = if input.as_os_str() == "-" {
        (Box::new(std::io::stdin().lock()), 0)
    } else {
        let file =
            File::open(&input).with_context(|| format!("cannot open {}", input.display()))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    // Hidden automatically when stderr is not a terminal.
    let progress = if size > 0 {
        ProgressBar::new(size).with_style(
            ProgressStyle::with_template(
                "{bar:40} {bytes}/{total_bytes} {per_sec} eta {eta} {msg}",
            )
            .expect("static template"),
        )
    } else {
        ProgressBar::new_spinner()
    };
    // Row line numbers, kept only to name both lines of a duplicate code.
    let mut lines: Vec<u64> = Vec::new();
    let mut builder = SnapshotBuilder::new(sequence);
    if let Some(signer) = signer {
        builder = builder.signed_by(signer);
    }
    let rows = read_links(reader, format, |link, row| {
        builder.push(link).map_err(|e| e.to_string())?;
        lines.push(row.line);
        if lines.len().is_multiple_of(65_536) {
            progress.set_position(row.offset);
            progress.set_message(format!("{} links", lines.len()));
        }
        Ok(())
    })
    .with_context(|| format!("{}", input.display()))?;
    progress.set_message("writing");
    let summary = builder.write_to(&output).map_err(|e| match e {
        snapshots::BuildError::DuplicateCode {
            code,
            first,
            second,
            ..
        } => anyhow::anyhow!(
            "{}: code {code:?} appears on line {} and line {}",
            input.display(),
            lines[first as usize],
            lines[second as usize]
        ),
        other => other.into(),
    })?;
    progress.finish_and_clear();
    println!(
        "wrote {} links to {} ({} bytes, sequence {}) in {:.2?}",
        rows,
        output.display(),
        summary.file_len,
        summary.header.sequence,
        started.elapsed()
    );
    Ok(())
}

fn inspect(file: PathBuf, verify_keys: &[PathBuf], json: bool) -> Result<()> {
    let verifier = if verify_keys.is_empty() {
        None
    } else {
        Some(snapshots::signing::DeltaVerifier::from_pem_files(
            verify_keys,
        )?)
    };
    let started = Instant::now();
    let snapshot = Snapshot::open_trusting(&file, verifier.as_ref())
        .with_context(|| format!("{} refused", file.display()))?;
    let checked_in = started.elapsed();
    let checked = match snapshot.checked_by() {
        snapshots::signed::Checked::Full => "complete".to_owned(),
        snapshots::signed::Checked::Signature(key) => format!("signature of key {key}"),
    };
    let signed = header_signed(snapshot.header());
    let header = snapshot.header();
    let (mut disabled, mut forward, mut expiring) = (0u64, 0u64, 0u64);
    let mut by_status = std::collections::BTreeMap::<u16, u64>::new();
    for (_, link) in snapshot.iter() {
        disabled += link.disabled() as u64;
        forward += link.forward_query() as u64;
        expiring += link.expires_at().is_some() as u64;
        *by_status.entry(link.status().code()).or_default() += 1;
    }
    if json {
        let value = serde_json::json!({
            "file": file,
            "format_version": header.version,
            "links": header.link_count,
            "sequence": header.sequence,
            "built_at_ms": header.built_at_ms,
            "payload_bytes": header.payload_len,
            "payload_checksum": format!("{:016x}", header.payload_checksum),
            "file_bytes": snapshot.file_len(),
            "signed": signed,
            "checked_by": checked,
            "by_status": by_status,
            "disabled": disabled,
            "forward_query": forward,
            "with_expiry": expiring,
        });
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("file            {}", file.display());
    println!("format version  {}", header.version);
    println!("links           {}", header.link_count);
    println!("sequence        {}", header.sequence);
    println!("built at        {} (unix ms)", header.built_at_ms);
    println!("file bytes      {}", snapshot.file_len());
    println!("payload bytes   {}", header.payload_len);
    println!("signed          {}", if signed { "yes" } else { "no" });
    println!("checked by      {checked}");
    println!("checksum        {:016x} (xxh3-64)", header.payload_checksum);
    for (status, count) in by_status {
        println!("status {status}      {count}");
    }
    println!("disabled        {disabled}");
    println!("forward query   {forward}");
    println!("with expiry     {expiring}");
    println!("checked in      {checked_in:.2?}");
    Ok(())
}

fn get(file: PathBuf, code: String) -> Result<()> {
    let snapshot = Snapshot::open(&file).with_context(|| format!("{} refused", file.display()))?;
    // Rules read back with each rule's and variant's status resolved; a
    // password as its verifier (the PHC string), never the password.
    match snapshot.link_in(snapshots::DEFAULT_DOMAIN, &code) {
        Some(owned) => {
            println!("{}", serde_json::to_string_pretty(&owned)?);
            Ok(())
        }
        None => {
            eprintln!("snapshot: {code:?} is not in {}", file.display());
            std::process::exit(1);
        }
    }
}

fn header_signed(header: &snapshots::Header) -> bool {
    header.flags & snapshots::signed::HEADER_FLAG_SIGNED != 0
}
