//! Exports of an organization's click data, as jobs (issue 15).
//!
//! # The model
//!
//! `POST /v1/exports` checks the request ([`request`]) and queues a job: a
//! row of `export_jobs` (PostgreSQL, [`store`]), which is the job's whole
//! truth. Workers ([`worker`]) run in **every** control instance, leader or
//! not (exports are reads; spreading them is the point of several
//! instances): each claims the oldest queued job with `FOR UPDATE SKIP
//! LOCKED`, streams the rows from ClickHouse ([`query`]) into a file in its
//! `export_dir` ([`file`]) and marks the job done with the rows and bytes
//! written. `GET /v1/jobs/{id}` reads the row (`GET /v1/jobs` the newest
//! ones); `GET /v1/jobs/{id}/download` streams the file from disk ([`api`]).
//!
//! **Memory stays flat**: rows come one at a time off the HTTP body of one
//! ClickHouse query (the crate's `RowCursor`), are formatted into a 256 KiB
//! buffer and written out; nothing collects rows. ClickHouse itself sorts
//! and groups past 256 MiB on its disk.
//!
//! **Restarts**: a running job's worker records its progress every 2 s (a
//! heartbeat). A job whose worker has been silent for 30 s (its process
//! stopped, or it lost the database) is taken back by any instance's
//! housekeeping and run again from the start; after three starts it fails
//! with a clear error. Every move of a running job names the instance and
//! the attempt, so a worker that was only slow cannot overwrite the new
//! run's outcome.
//!
//! **Where files live**: on the instance that wrote them (the job's
//! `instance`). A download reaching another instance finds the file if
//! `export_dir` is storage every instance shares, and otherwise answers
//! 503 (the log names the instance). One instance, or a shared directory,
//! is the simple honest setup; routing downloads to the writer is left to
//! the operator's proxy.
//!
//! **Limits**: `export_max_active` jobs queued or running per organization
//! (429 `too_many_exports` beyond), ranges of at most
//! `export_max_range_days`, files deleted `export_ttl_secs` after they
//! were done (the job then reads `expired`, its download 410), finished
//! jobs' rows a week after.

pub mod api;
pub mod cell;
pub mod file;
pub mod parquet;
pub mod query;
pub mod request;
pub mod store;
pub mod worker;
