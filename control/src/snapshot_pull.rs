//! `GET /engine/snapshot`: engines pull the latest snapshot generation.
//!
//! Pulling scales where pushing does not: control answers what each engine
//! asks for when it asks, so a hundred engines cost a hundred conditional
//! requests (most answered `304` from one row of PostgreSQL), and a file is
//! sent only to an engine that needs it. The answer streams from the file in
//! [`CHUNK`]-byte reads, so memory stays flat however many engines download
//! at once (the page cache holds the file once).
//!
//! The request, from `engine serve --pull-snapshot URL`:
//! - `Authorization: Bearer <token>`: the engines' admin token
//!   (`engine_admin_token`, the one control pushes with). Without a
//!   configured token the route does not exist (`404`): a snapshot is every
//!   organization's links and must not be readable by anyone who can reach
//!   the API.
//! - `?have=S`: the change sequence the engine serves (its lowest core's),
//!   sent while it follows the change stream. When the latest generation is
//!   not newer, or the changes since S are fewer bytes (at
//!   [`DELTA_BYTES`] each) than the file, the answer is `304` with no body:
//!   the engine takes those changes from the `LINKS` stream. That assumes
//!   the stream still holds them, as an engine restarting on its own
//!   snapshot does; keep the stream's `max_age` longer than any engine stays
//!   away.
//! - `If-None-Match: ETAG`: `304` when the latest generation is that one.
//! - `Range: bytes=N-` with `If-Range: ETAG`: the rest of an interrupted
//!   download (`206`), when the generation is still the latest; any other
//!   range form is ignored (the whole file, `200`).
//!
//! Generation files live on the disk of the control instance that built
//! them (the leader): another instance answers `503` until it has built
//! one itself, so point engines at the leader's address, or at several
//! instances behind a balancer that retries.
//!
//! The `ETag` is `"<sequence>-<payload checksum, 16 hex digits>"`, read from
//! the file's own header, so it names exactly the bytes sent; the engine
//! checks the whole file (header, checksum, structure, every link) before
//! it serves anything from it, so a corrupt or truncated transfer is
//! refused, never served.

use crate::error::ApiError;
use crate::state::AppState;
use anyhow::Context as _;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use snapshots::header::{HEADER_LEN, Header};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _};

/// Bytes read from the file per body chunk.
pub const CHUNK: usize = 256 * 1024;

/// What one change costs an engine to take from the stream, bytes: a
/// delta's JSON with a 100-byte target and its signature header is about
/// 300 bytes; more is assumed, for the message framing.
pub const DELTA_BYTES: u64 = 400;

#[derive(Debug, serde::Deserialize)]
pub struct PullQuery {
    /// The change sequence the engine serves now.
    have: Option<u64>,
}

/// The handler.
pub async fn latest(
    State(state): State<AppState>,
    Query(query): Query<PullQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = state.config.engine_admin_token.as_deref() else {
        return Err(ApiError::NotFound { what: "route" });
    };
    authorize(token, &headers)?;
    let Some(generation) = state.snapshots.latest().await? else {
        return Err(ApiError::NotFound { what: "snapshot" });
    };
    let latest = generation.seq as u64;
    if let Some(have) = query.have
        && latest.saturating_sub(have).saturating_mul(DELTA_BYTES) < generation.bytes as u64
    {
        state.metrics.snapshot_pulls_not_modified.inc();
        return Ok(StatusCode::NOT_MODIFIED.into_response());
    }
    let mut file = match tokio::fs::File::open(&generation.path).await {
        Ok(file) => file,
        // Built by another control instance (the leader that was), on its
        // disk: this one has no copy until it builds its own.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::Unavailable(
                "this instance's copy of the latest snapshot",
            ));
        }
        Err(e) => {
            return Err(anyhow::Error::new(e)
                .context(format!("opening {}", generation.path))
                .into());
        }
    };
    let mut head = [0u8; HEADER_LEN];
    file.read_exact(&mut head)
        .await
        .with_context(|| format!("reading the header of {}", generation.path))?;
    let parsed = Header::decode(&head).context("a generation's header")?;
    let etag = format!("\"{}-{:016x}\"", parsed.sequence, parsed.payload_checksum);
    let len = file.metadata().await.context("a generation's size")?.len();
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == etag.as_bytes())
    {
        state.metrics.snapshot_pulls_not_modified.inc();
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let start = resume_from(&headers, &etag).filter(|&start| start < len);
    let from = start.unwrap_or(0);
    file.seek(std::io::SeekFrom::Start(from))
        .await
        .context("seeking in a generation")?;
    state.metrics.snapshot_pulls.inc();
    let body = Body::from_stream(chunks(file, len - from));
    let mut response = Response::new(body);
    let h = response.headers_mut();
    h.insert(header::ETAG, HeaderValue::from_str(&etag).expect("ascii"));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len - from));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert("snapshot-sequence", HeaderValue::from(parsed.sequence));
    if start.is_some() {
        *response.status_mut() = StatusCode::PARTIAL_CONTENT;
        let range = format!("bytes {from}-{}/{len}", len - 1);
        response.headers_mut().insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range).expect("ascii"),
        );
    }
    Ok(response.into_response())
}

/// The bearer token, compared over SHA-256 digests so that neither its bytes
/// nor its length leak through timing.
fn authorize(token: &str, headers: &HeaderMap) -> Result<(), ApiError> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let Some(presented) = presented else {
        return Err(ApiError::Unauthorized { presented: false });
    };
    let (a, b) = (Sha256::digest(presented), Sha256::digest(token));
    if !crate::auth::csrf::constant_time_eq(&a, &b) {
        return Err(ApiError::Unauthorized { presented: true });
    }
    Ok(())
}

/// Where a resumed download starts: `Range: bytes=N-` when `If-Range` names
/// the generation being sent (a range of another generation's bytes would
/// splice two files).
fn resume_from(headers: &HeaderMap, etag: &str) -> Option<u64> {
    let if_range = headers.get(header::IF_RANGE)?;
    if if_range.as_bytes() != etag.as_bytes() {
        return None;
    }
    let range = headers.get(header::RANGE)?.to_str().ok()?;
    let start = range.strip_prefix("bytes=")?.strip_suffix('-')?;
    start.parse().ok()
}

/// The file's next `remaining` bytes as body chunks, one read at a time.
pub(crate) fn chunks(
    file: tokio::fs::File,
    remaining: u64,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> {
    futures::stream::try_unfold((file, remaining), |(mut file, remaining)| async move {
        if remaining == 0 {
            return Ok(None);
        }
        let mut buf = vec![0u8; (remaining as usize).min(CHUNK)];
        file.read_exact(&mut buf).await?;
        let left = remaining - buf.len() as u64;
        Ok(Some((buf, (file, left))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_resume_needs_the_same_generation_and_an_open_range() {
        let etag = "\"7-00000000000000aa\"";
        let both = headers(&[("if-range", etag), ("range", "bytes=100-")]);
        assert_eq!(resume_from(&both, etag), Some(100));
        let other = headers(&[("if-range", "\"6-1\""), ("range", "bytes=100-")]);
        assert_eq!(
            resume_from(&other, etag),
            None,
            "another generation's range"
        );
        let bare = headers(&[("range", "bytes=100-")]);
        assert_eq!(resume_from(&bare, etag), None, "no If-Range: whole file");
        let closed = headers(&[("if-range", etag), ("range", "bytes=100-200")]);
        assert_eq!(resume_from(&closed, etag), None);
    }

    #[test]
    fn the_token_must_match() {
        assert!(authorize("s3cret", &headers(&[("authorization", "Bearer s3cret")])).is_ok());
        assert!(matches!(
            authorize("s3cret", &headers(&[("authorization", "Bearer s3cre")])),
            Err(ApiError::Unauthorized { presented: true })
        ));
        assert!(matches!(
            authorize("s3cret", &HeaderMap::new()),
            Err(ApiError::Unauthorized { presented: false })
        ));
    }
}
