//! Opaque page cursors for the listings (links, audit log): hex of
//! `<tag>:<last id>`. Each listing has its own tag, so a cursor from one is
//! refused by another instead of silently paging the wrong table.

use crate::error::{ApiError, ApiResult};

/// The cursor after the row `id` of the listing tagged `tag`.
pub fn encode(tag: &str, id: i64) -> String {
    hex::encode(format!("{tag}:{id}"))
}

/// The row id a cursor of the listing tagged `tag` names; 400 naming
/// `cursor` for anything else.
pub fn decode(tag: &str, cursor: &str) -> ApiResult<i64> {
    let bad = || ApiError::invalid_field("cursor", "is not a cursor this API returned");
    if cursor.len() > 64 {
        return Err(bad());
    }
    let bytes = hex::decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    text.strip_prefix(tag)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_tags_and_junk() {
        assert_eq!(decode("l1", &encode("l1", 42)).unwrap(), 42);
        assert!(decode("a1", &encode("l1", 42)).is_err());
        assert!(decode("l1", "zz").is_err());
        assert!(decode("l1", &hex::encode("x:1")).is_err());
        assert!(decode("l1", &"00".repeat(1000)).is_err());
    }
}
