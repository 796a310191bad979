//! The range of times a link may hold: what the API can show back.

use crate::error::{ApiError, ApiResult};
use time::OffsetDateTime;

/// The last second the API can show: it writes times in UTC with RFC 3339's
/// four-digit years (9999-12-31T23:59:59Z).
pub const LAST_SHOWN_UNIX: i64 = 253_402_300_799;

/// Refuses a time the API could not show back: after the year 9999 in UTC
/// (`9999-12-31T23:59:59-01:00` is one). Before this check such a time
/// reached PostgreSQL's encoder, which panics on it.
pub fn check_shown(field: &str, at: OffsetDateTime) -> ApiResult<OffsetDateTime> {
    if at.unix_timestamp() > LAST_SHOWN_UNIX {
        return Err(ApiError::invalid_field(
            field,
            "is after the year 9999 in UTC",
        ));
    }
    Ok(at)
}
